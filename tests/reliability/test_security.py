"""Security: what reaches the wire, what the server reads, who can read a stream.

A real ``trio-stream serve`` process runs ``security_app.py``:

- with ``create_run(expose_errors=False)``, no exception text reaches the
  client, in any format, while the server log has the full traceback under
  the reference the client was given;
- request bodies are bounded and validated before anything is streamed;
- resumable stream ids are unguessable and checked before any store lookup;
- CORS is never configured as ``*`` together with credentials in the docs or
  the examples.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trio_stream.resumable import STREAM_ID_HEADER
from trio_stream.resumable._ids import new_stream_id

from ..serving import ROOT, running_cli
from .figures import Figures
from .security_app import SECRET

FORMATS = ["data-stream", "assistant-transport", "ui-message-stream", "openai"]
REFERENCE = re.compile(r"\(error reference ([0-9a-f]{12})\)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("security") / "server.log"
    with running_cli(log, "serve", "tests.reliability.security_app:app") as url:
        yield url, log


@pytest.mark.parametrize("fmt", FORMATS)
def test_hidden_errors_leave_the_secret_in_the_log_under_the_reference_the_client_saw(
    server: tuple[str, Path], fmt: str, figures: Figures
) -> None:
    url, log = server
    response = httpx.post(f"{url}/fail/{fmt}", timeout=30)
    assert response.status_code == 200
    body = response.text
    assert SECRET not in body
    assert "10.1.2.3" not in body
    references = REFERENCE.findall(body)
    # One for the tool's result, one for the run's failure; OpenAI chunks
    # carry no tool results.
    assert len(references) == (1 if fmt == "openai" else 2), body
    assert ("the tool failed on the server" in body) is (fmt != "openai")
    assert "the response failed on the server" in body
    for reference in references:
        assert_logged_with_traceback(log, reference)
    figures.add("security", "hidden failures checked in the server log", len(references))


def assert_logged_with_traceback(log: Path, reference: str, timeout: float = 10) -> None:
    """The log holds a traceback with the secret in it, then ``reference`` as its note."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text()
        at = text.find(f"error reference {reference}")
        if at != -1:
            break
        assert time.monotonic() < deadline, (
            f"reference {reference} not in the log:\n{text[-3000:]}"
        )
        time.sleep(0.05)
    traceback_start = text.rfind("Traceback (most recent call last)", 0, at)
    assert traceback_start != -1
    assert SECRET in text[traceback_start:at]


def test_exposed_errors_are_the_default_and_show_the_message(server: tuple[str, Path]) -> None:
    url, _ = server
    body = httpx.post(f"{url}/fail/data-stream", params={"expose": "1"}, timeout=30).text
    assert f"query failed on {SECRET}" in body
    assert REFERENCE.search(body) is None


@pytest.mark.parametrize(
    ("content", "headers", "status", "detail"),
    [
        (b"x" * (2 << 20), {"content-type": "application/json"}, 413, "larger than"),
        (b"{}", {"content-type": "text/plain"}, 415, "must be JSON"),
        (b"{nope", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"}, 400, "deep"),
        (b'{"messages": []}', {"content-type": "application/json"}, 422, "messages"),
        (b'{"a": "\xff"}', {"content-type": "application/json"}, 400, "UTF-8"),
    ],
)
def test_bad_request_bodies_get_a_4xx_json_answer(
    server: tuple[str, Path],
    content: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
    figures: Figures,
) -> None:
    url, _ = server
    response = httpx.post(f"{url}/chat", content=content, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert detail in json.dumps(response.json()["detail"])
    figures.add("security", "bad request bodies refused", 1)


def test_a_chunked_body_is_cut_off_at_the_bound_not_read_to_its_end(
    server: tuple[str, Path],
) -> None:
    url, _ = server
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        piece = b" " * 65536
        for _ in range(1024):  # 64 MiB, if the server read it all
            sent += len(piece)
            yield piece

    try:
        response = httpx.post(
            f"{url}/chat",
            content=endless(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError:
        pass  # the server answered and closed while the body was still going
    else:
        assert response.status_code == 413
    assert sent < 64 << 20
    # The server is unharmed.
    ok = httpx.post(f"{url}/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200


def test_generated_stream_ids_are_unguessable() -> None:
    ids = [new_stream_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(len(i) == 32 and set(i) <= alphabet for i in ids)
    # 192 random bits: every position takes many values, none is a counter.
    for position in range(32):
        assert len({i[position] for i in ids}) > 50


@pytest.mark.parametrize(
    "stream_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "short",
        "a" * 129,
        "abc def ghijk",
        "stream*id*glob",
        "ünïcødé-stream",
        "abcdefgh%00nul",
        "abcdefgh:other-key",
    ],
)
def test_malformed_stream_ids_are_refused_before_any_lookup(
    server: tuple[str, Path], stream_id: str, figures: Figures
) -> None:
    url, _ = server
    response = httpx.get(f"{url}/streams/{stream_id}", timeout=30)
    assert response.status_code == 400, response.text
    assert "a stream id is 8 to 128 letters" in response.json()["detail"]
    figures.add("security", "malformed stream ids refused", 1)


def test_a_stream_is_found_by_its_own_id_only(server: tuple[str, Path]) -> None:
    url, _ = server
    started = httpx.post(f"{url}/streams", timeout=30)
    stream_id = started.headers[STREAM_ID_HEADER]
    assert httpx.get(f"{url}/streams/{stream_id}").status_code == 200
    guess = secrets.token_urlsafe(24)
    assert httpx.get(f"{url}/streams/{guess}").status_code == 404
    assert httpx.get(f"{url}/streams/{stream_id[:-1]}").status_code == 404


CORS_CALL = re.compile(r"CORSMiddleware\s*,(?P<arguments>[^)]*)\)", re.S)


def test_cors_in_docs_and_examples_never_pairs_any_origin_with_credentials() -> None:
    """Browsers refuse ``*`` with credentials; Starlette then reflects any origin instead,
    which lets every site read a signed-in user's streams."""
    found = 0
    for path in [
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "examples").glob("*.py"),
        ROOT / "README.md",
    ]:
        for match in CORS_CALL.finditer(path.read_text()):
            found += 1
            arguments = match["arguments"]
            any_origin = re.search(r"allow_origins\s*=\s*\[\s*[\"']\*[\"']", arguments)
            any_regex = "allow_origin_regex" in arguments
            credentials = re.search(r"allow_credentials\s*=\s*True", arguments)
            assert not ((any_origin or any_regex) and credentials), (path, arguments)
    assert found >= 2  # the FastAPI example and the security page
