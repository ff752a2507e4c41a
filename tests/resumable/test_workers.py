"""Two hypercorn worker processes on Trio sharing one Redis: a client starts a run on
worker A, leaves mid-stream, and resumes on worker B.

Each worker is ``trio-stream serve tests.resumable.app:app``, a separate
process with its own ``RedisStore``; the only thing they share is the Redis
server the test started.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trio_stream.resumable import STREAM_ID_HEADER

from ..clients import decode
from ..serving import running_cli
from .client import leave_after, resume
from .redis_server import RedisServer

Workers = tuple[str, str, Path, Path]


@pytest.fixture(scope="module")
def workers(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    env = {
        "TEST_REDIS_URL": redis.url,
        "TEST_REDIS_PREFIX": f"workers-{secrets.token_hex(4)}:",
        "TEST_PACE": "0.1",  # a turn of about 0.6 s
    }
    logs = tmp_path_factory.mktemp("workers")
    arguments = ("serve", "tests.resumable.app:app")
    with (
        running_cli(logs / "a.log", *arguments, env=env) as a,
        running_cli(logs / "b.log", *arguments, env=env) as b,
    ):
        yield a, b, logs / "a.log", logs / "b.log"


@pytest.mark.parametrize("fmt", ["data-stream", "ui-message-stream"])
def test_a_run_started_on_a_resumes_on_b_without_gaps_or_duplicates(
    workers: Workers, fmt: str
) -> None:
    a, b, log_a, _ = workers
    typical = httpx.post(f"{a}/start/{fmt}", timeout=30).content
    # Leave after the first frame, in the middle, and before the last frame.
    for at_least in (1, len(typical) // 2, len(typical) - 40):
        stream_id, received = leave_after(a, fmt, at_least)
        rest = resume(b, stream_id, len(received))
        assert rest.status_code == 200
        assert rest.headers[STREAM_ID_HEADER] == stream_id
        # What an uninterrupted client of this stream receives, read on B.
        uninterrupted = resume(b, stream_id).content
        assert received + rest.content == uninterrupted
        assert b"Done. " in uninterrupted
        decoder = "data-stream" if fmt == "data-stream" else "ai-ui-message-stream"
        assert (
            decode(decoder, body=received + rest.content)["message"]
            == decode(decoder, body=uninterrupted)["message"]
        )
    assert "client left resumable stream" in log_a.read_text()


def test_after_the_end_a_resume_on_either_worker_gets_the_rest(workers: Workers) -> None:
    a, b, _, _ = workers
    started = httpx.post(f"{a}/start/data-stream", timeout=30)
    stream_id, whole = started.headers[STREAM_ID_HEADER], started.content
    assert resume(b, stream_id).content == whole
    assert resume(b, stream_id, len(whole)).content == b""
    assert resume(a, stream_id, len(whole) - 1).content == whole[-1:]
    assert resume(b, stream_id, len(whole) + 1).status_code == 416


def test_a_run_on_a_is_cancelled_from_b(workers: Workers) -> None:
    a, b, log_a, _ = workers
    stream_id, received = leave_after(a, "data-stream", 1, pace=1)  # a six-second run
    assert httpx.delete(f"{b}/streams/{stream_id}").json() == {"cancelled": True}
    rest = resume(b, stream_id, len(received)).content
    assert b"Done. " not in rest
    assert f"resumable stream {stream_id} ended: cancelled" in log_a.read_text()


def test_an_unknown_stream_is_404_on_every_worker(workers: Workers) -> None:
    for url in workers[:2]:
        response = resume(url, "no-such-stream")
        assert response.status_code == 404
        assert response.json()["detail"].startswith("no stream 'no-such-stream'")
