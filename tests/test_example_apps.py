"""The example web apps (examples/fastapi_app.py, examples/starlette_app.py), served for real."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from .clients import decode, sse_events
from .serving import running

EXAMPLES = Path(__file__).parent.parent / "examples"
FRONT_END = "http://localhost:3000"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: pydantic resolves names there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fastapi_url() -> Iterator[str]:
    with running(load("fastapi_app.py").app) as url:
        yield url


QUESTION = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Oslo?"}]}]}


def test_fastapi_data_stream_reads_in_assistant_ui(fastapi_url: str) -> None:
    output = decode("data-stream", url=f"{fastapi_url}/api/data-stream", post=QUESTION)
    parts = output["message"]["parts"]
    assert [part["type"] for part in parts] == ["text", "tool-call", "text"]
    assert parts[0]["text"] == "You asked: Oslo? "
    assert parts[1]["result"] == {"city": "Oslo", "celsius": 12}
    assert parts[2]["text"] == "It is 12 °C in Oslo."


def test_fastapi_every_transport_streams_the_same_answer(fastapi_url: str) -> None:
    transport = decode(
        "assistant-transport",
        url=f"{fastapi_url}/api/assistant-transport",
        post={
            "commands": [
                {
                    "type": "add-message",
                    "message": {"role": "user", "parts": [{"type": "text", "text": "Oslo?"}]},
                }
            ]
        },
    )
    ui = decode(
        "ai-ui-message-stream",
        url=f"{fastapi_url}/api/ui-message-stream",
        post={
            "id": "c",
            "messages": [
                {"id": "m", "role": "user", "parts": [{"type": "text", "text": "Oslo?"}]}
            ],
        },
    )
    completion = httpx.post(
        f"{fastapi_url}/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "Oslo?"}]},
    )
    content = "".join(
        event["choices"][0]["delta"].get("content", "")
        for event in sse_events(completion.content)
        if isinstance(event, dict) and event["choices"]
    )
    last = "It is 12 °C in Oslo."
    assert transport["message"]["parts"][-1]["text"] == last
    assert ui["message"]["parts"][-1]["text"] == last
    assert content == "You asked: Oslo? " + last


def test_fastapi_validates_bodies_with_the_request_models(fastapi_url: str) -> None:
    response = httpx.post(f"{fastapi_url}/api/ui-message-stream", json={"messages": []})
    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "id"] in locations
    assert ["body", "messages"] in locations


def test_fastapi_cors_admits_the_named_origin_with_credentials_only(fastapi_url: str) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    allowed = httpx.options(
        f"{fastapi_url}/api/data-stream", headers={"origin": FRONT_END, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == FRONT_END
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = httpx.options(
        f"{fastapi_url}/api/data-stream", headers={"origin": "https://evil.example", **preflight}
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    reply = httpx.post(
        f"{fastapi_url}/api/data-stream", json=QUESTION, headers={"origin": FRONT_END}
    )
    assert reply.headers["access-control-allow-origin"] == FRONT_END
    assert "x-vercel-ai-data-stream" in reply.headers["access-control-expose-headers"]
    assert reply.headers["x-vercel-ai-data-stream"] == "v1"


def test_starlette_app_streams_and_answers_bad_bodies_with_json() -> None:
    with running(load("starlette_app.py").app) as url:
        body = {
            "id": "c1",
            "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}],
        }
        output = decode("ai-ui-message-stream", url=f"{url}/chat", post=body)
        assert output["message"]["parts"][-1]["text"] == "You said: Hi "
        too_big = httpx.post(f"{url}/chat", content=json.dumps({"x": "y" * 70_000}))
        assert too_big.status_code == 413
        assert too_big.json() == {"detail": "the request body is larger than 65536 bytes"}
        wrong = httpx.post(f"{url}/chat", json={"id": "c1", "messages": [{"id": "m1"}]})
        assert wrong.status_code == 422
        assert {tuple(e["loc"]) for e in wrong.json()["detail"]} == {
            ("body", "messages", 0, "role"),
            ("body", "messages", 0, "parts"),
        }
