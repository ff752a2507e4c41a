"""A fake Anthropic Messages server, for the adapter's tests and the demo's.

``messages_app(model)`` is a Starlette app whose ``POST /v1/messages``
streams what ``model(body)`` scripts, as the API streams it: one ``event:``
line naming the event's type and one ``data:`` line of compact JSON per
event, a ``ping`` after ``message_start``, each event written on its own.
A script is a list of events (dicts, or raw SSE bytes for what no event
dict can express), optionally ending with a ``Hang`` (keep the response open
until the client leaves, then set its event) or ``DROP`` (break the
connection mid-body). The builders below write the events of whole messages
and blocks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = [
    "DROP",
    "PING",
    "Event",
    "Hang",
    "Model",
    "Script",
    "block",
    "delta",
    "message",
    "message_start",
    "messages_app",
    "server_tool_use",
    "text",
    "thinking",
    "tool_results",
    "tool_use",
]

Event = dict[str, Any] | bytes


@dataclass(frozen=True)
class Hang:
    """Ends a script: the response stays open, sending nothing, until the client leaves."""

    cancelled: threading.Event
    """Set when the server cancels the response, its client gone."""


DROP: Final = "drop"
"""Ends a script: the server breaks the connection before the body's end."""
PING: Final[dict[str, Any]] = {"type": "ping"}

Script = list[Event | Hang | str]


def sse(event: Event) -> bytes:
    if isinstance(event, bytes):
        return event
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def message_start(id: str = "msg_fake", model: str = "fake-model", **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 1, **usage},
        },
    }


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def block(index: int, content_block: dict[str, Any], *deltas: dict[str, Any]) -> list[Event]:
    """A whole block: its start, its deltas (each a delta's fields), its stop."""
    return [
        {"type": "content_block_start", "index": index, "content_block": content_block},
        *(delta(index, **fields) for fields in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def text(index: int, *pieces: str, citations: Iterable[dict[str, Any]] = ()) -> list[Event]:
    """A text block; its citations come first, as the API sends them."""
    return block(
        index,
        {"type": "text", "text": ""},
        *({"type": "citations_delta", "citation": c} for c in citations),
        *({"type": "text_delta", "text": piece} for piece in pieces),
    )


def thinking(index: int, *pieces: str, signature: str) -> list[Event]:
    return block(
        index,
        {"type": "thinking", "thinking": "", "signature": ""},
        *({"type": "thinking_delta", "thinking": piece} for piece in pieces),
        {"type": "signature_delta", "signature": signature},
    )


def _tool_block(kind: str, index: int, id: str, name: str, pieces: Iterable[str]) -> list[Event]:
    # The API opens with an empty input and a first, empty, piece.
    return block(
        index,
        {"type": kind, "id": id, "name": name, "input": {}},
        *({"type": "input_json_delta", "partial_json": piece} for piece in ("", *pieces)),
    )


def tool_use(index: int, id: str, name: str, *pieces: str) -> list[Event]:
    return _tool_block("tool_use", index, id, name, pieces)


def server_tool_use(index: int, id: str, name: str, *pieces: str) -> list[Event]:
    return _tool_block("server_tool_use", index, id, name, pieces)


def message(
    *blocks: list[Event],
    stop_reason: str | None = "end_turn",
    id: str = "msg_fake",
    model: str = "fake-model",
    input_tokens: int = 0,
    output_tokens: int = 0,
    **usage: int,
) -> Script:
    """A whole message: start and a ping, the blocks, the stop reason with the usage."""
    events: Script = [message_start(id, model, input_tokens=input_tokens, **usage), PING]
    for events_of_block in blocks:
        events.extend(events_of_block)
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )
    events.append({"type": "message_stop"})
    return events


def tool_results(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``tool_result`` blocks a request sends back, by call id."""
    return {
        item["tool_use_id"]: item
        for message in body["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for item in message["content"]
        if item["type"] == "tool_result"
    }


Model = Callable[[dict[str, Any]], Script]


def messages_app(model: Model, requests: list[dict[str, Any]]) -> Starlette:
    """The fake server: ``model(body)`` scripts each answer; bodies go to ``requests``."""

    async def create_message(request: Request) -> ScriptedResponse:
        body = await request.json()
        requests.append(body)
        return ScriptedResponse(model(body))

    return Starlette(routes=[Route("/v1/messages", create_message, methods=["POST"])])


class ScriptedResponse:
    """Streams a script, each event written on its own.

    A ``Hang`` waits for the ASGI server to report the client gone: that the
    server saw the connection close is what a cancellation test proves.
    """

    def __init__(self, script: Script) -> None:
        self.script = script

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self.script:
            if isinstance(event, Hang):
                while (await receive())["type"] != "http.disconnect":
                    pass
                event.cancelled.set()
                return
            if event == DROP:
                raise ConnectionAbortedError("the fake model server drops the connection")
            assert not isinstance(event, str)
            await send({"type": "http.response.body", "body": sse(event), "more_body": True})
            await anyio.lowlevel.checkpoint()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
