"""The demo app over real HTTP: every endpoint, read by the official clients.

The agent runs at a fiftieth of its pace, so a whole turn takes about a
tenth of a second.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from trio_stream.demo import ScriptedAgent, create_app

from ..clients import JS, decode, summarize
from ..serving import running

TOOLS = ["get_weather", "get_weather", "search_docs", "get_stock_quote", "calculate"]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(create_app(agent=ScriptedAgent(pace=0.02))) as base:
        yield base


def user_turn(format_name: str, text: str) -> dict[str, Any]:
    """The body each front-end posts for a first user message."""
    if format_name == "data-stream":
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
    if format_name == "assistant-transport":
        return {
            "commands": [
                {
                    "type": "add-message",
                    "message": {"role": "user", "parts": [{"type": "text", "text": text}]},
                    "parentId": None,
                    "sourceId": None,
                }
            ],
            "state": None,
        }
    return {
        "id": "chat-1",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
    }


@pytest.mark.parametrize("format_name", ["data-stream", "assistant-transport"])
def test_one_turn_holds_everything_the_library_expresses(url: str, format_name: str) -> None:
    output = decode(
        format_name, url=f"{url}/api/chat/{format_name}", post=user_turn(format_name, "Hi")
    )
    assert output["status"] == 200
    assert output["warnings"] == []
    parts = summarize(output["message"]["parts"])
    kinds = [part[0] for part in parts]
    top = [part for part in parts if part[-1] is None]

    assert [part[1] for part in top if part[0] == "tool-call"] == TOOLS
    calls = {part[1]: part for part in top if part[0] == "tool-call"}
    assert calls["calculate"][2:5] == (
        {"expression": "6 * 7"},
        {"expression": "6 * 7", "value": 42},
        False,
    )
    assert calls["get_stock_quote"][3:5] == ("quote service unavailable (HTTP 503) for TRIO", True)

    # search_docs opened a sub-stream holding text and two fetches; one of
    # those opened a sub-stream of its own.
    search = next(
        part for part in output["message"]["parts"] if part.get("toolName") == "search_docs"
    )
    inside = [part for part in parts if part[-1] == search["toolCallId"]]
    assert [part[0] for part in inside].count("tool-call") == 2
    assert {part[1] for part in inside if part[0] == "tool-call"} == {"fetch_page"}
    assert any(part[0] == "text" and "Searching the docs" in part[1] for part in inside)
    fetches = [
        part["toolCallId"]
        for part in output["message"]["parts"]
        if part.get("parentId") == search["toolCallId"] and part["type"] == "tool-call"
    ]
    deeper = [part for part in parts if part[-1] in fetches]
    assert [part[0] for part in deeper] == ["text"]
    assert "cancel scopes" in deeper[0][1]

    assert kinds.count("source") == 2
    assert [part[1] for part in parts if part[0] == "file"] == ["image/svg+xml"]
    assert top[0][0] == "reasoning"
    final = [part[1] for part in top if part[0] == "text"][-1]
    assert "Lisbon is 24 °C and Kyoto 17 °C" in final
    assert "One tool failed (get_stock_quote)" in final
    assert output["message"]["status"]["type"] == "complete"


def test_the_assistant_transport_keeps_the_conversation_in_state(url: str) -> None:
    endpoint = f"{url}/api/chat/assistant-transport"
    first = decode(
        "assistant-transport", url=endpoint, post=user_turn("assistant-transport", "Hi")
    )
    state = first["message"]["metadata"]["unstable_state"]
    assert state["progress"] == {"done": 5, "total": 5}
    assert [m["role"] for m in state["messages"]] == ["user", "assistant"]
    assert state["messages"][0]["content"] == "Hi"
    assert state["messages"][1]["content"].startswith("Let me look into that.")

    second_turn = user_turn("assistant-transport", "Again")
    second_turn["state"] = state
    second = decode("assistant-transport", url=endpoint, post=second_turn)
    messages = second["message"]["metadata"]["unstable_state"]["messages"]
    assert [m["content"] for m in messages[:3]] == [
        "Hi",
        state["messages"][1]["content"],
        "Again",
    ]
    assert len(messages) == 4


def test_use_chat_holds_a_two_turn_conversation(url: str) -> None:
    """ai's DefaultChatTransport posts back every part it received, and the model accepts them.

    (assistant-stream's own UI message stream decoder drops parent ids, so
    the UI message stream is read with ai, as useChat reads it.)
    """
    result = subprocess.run(
        ["node", str(JS / "chat.mjs"), f"{url}/api/chat/ui-message-stream", "Hi", "Again"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = json.loads(result.stdout)
    assert result.returncode == 0, output["error"]
    _, reply, again, second = output["messages"]
    assert [again["role"], second["role"]] == ["user", "assistant"]
    types = [part["type"] for part in reply["parts"]]
    for kind in ("reasoning", "text", "tool-search_docs", "tool-fetch_page", "source-url", "file"):
        assert kind in types
    assert [
        part["state"] for part in reply["parts"] if part["type"] == "tool-get_stock_quote"
    ] == ["output-error"]
    assert sorted(part["type"] for part in second["parts"]) == sorted(types)

    def parent(part: dict[str, Any]) -> Any:
        metadata = part.get("providerMetadata") or part.get("callProviderMetadata") or {}
        return metadata.get("trioStream", {}).get("parentId")

    search = next(part for part in reply["parts"] if part["type"] == "tool-search_docs")
    fetches = [part for part in reply["parts"] if part["type"] == "tool-fetch_page"]
    assert [parent(part) for part in fetches] == [search["toolCallId"]] * 2
    skim = [part for part in reply["parts"] if parent(part) in {f["toolCallId"] for f in fetches}]
    assert [part["type"] for part in skim] == ["text"]
    assert "cancel scopes" in skim[0]["text"]


def test_the_page_and_the_info(url: str) -> None:
    page = httpx.get(f"{url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{url}/static/app.js").status_code == 200
    assert httpx.get(f"{url}/api/info").json() == {
        "model": "scripted",
        "format": "data-stream",
        "formats": ["data-stream", "assistant-transport", "ui-message-stream"],
    }


def bad(url: str, path: str, content: bytes, content_type: str = "application/json") -> Any:
    response = httpx.post(
        f"{url}{path}", content=content, headers={"content-type": content_type}, timeout=10
    )
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "format_name", ["data-stream", "assistant-transport", "ui-message-stream"]
)
def test_bad_bodies_get_a_4xx_json_answer(url: str, format_name: str) -> None:
    path = f"/api/chat/{format_name}"
    status, answer = bad(url, path, b"{not json")
    assert status == 400
    assert answer["detail"].startswith("the request body is not valid JSON")
    assert bad(url, path, b"hello", "text/plain")[0] == 415
    assert bad(url, path, b'{"x": "' + b"x" * (1 << 20) + b'"}') == (
        413,
        {"detail": "the request body is larger than 1048576 bytes"},
    )
    status, answer = bad(url, path, b"{}")
    assert status == 422
    assert answer["detail"][0]["type"] == "missing"
    assert answer["detail"][0]["loc"][0] == "body"


def test_a_body_without_a_user_message_is_422(url: str) -> None:
    no_user = {"messages": [{"role": "system", "content": "You are terse."}]}
    assert bad(url, "/api/chat/data-stream", json.dumps(no_user).encode()) == (
        422,
        {"detail": "the request holds no user message to answer"},
    )
    assert bad(url, "/api/chat/assistant-transport", b'{"commands": []}')[0] == 422


def test_an_assistant_transport_state_of_the_wrong_shape_is_422(url: str) -> None:
    body = user_turn("assistant-transport", "Hi")
    for state, detail in (
        ([1, 2], "state must be a JSON object or null"),
        (
            {"messages": [{"role": "robot"}]},
            'state.messages must be a list of {"role": "user"|"assistant", "content": str}',
        ),
    ):
        body["state"] = state
        assert bad(url, "/api/chat/assistant-transport", json.dumps(body).encode()) == (
            422,
            {"detail": detail},
        )


def test_wrong_paths_and_methods_are_json_too(url: str) -> None:
    missing = httpx.get(f"{url}/api/nothing")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = httpx.get(f"{url}/api/chat/data-stream")
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})


def test_a_client_that_leaves_has_its_run_and_tools_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream")
    with running(create_app(agent=ScriptedAgent(pace=1.0))) as base:
        body = user_turn("data-stream", "Hi")
        with httpx.stream("POST", f"{base}/api/chat/data-stream", json=body, timeout=10) as reply:
            for line in reply.iter_lines():
                if line.startswith("c:"):  # the tools are streaming their arguments
                    break
        deadline = time.monotonic() + 10
        while "run cancelled, all its tasks done" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.02)
    cancelled = [r.getMessage() for r in caplog.records if r.getMessage().endswith("cancelled")]
    assert sorted(message.split()[2] for message in cancelled) == sorted(TOOLS)
    assert "client disconnected from /api/chat/data-stream" in caplog.text
