"""The demo's HTTP surface: the page, and one chat endpoint per wire format.

Each endpoint reads the body its front-end posts (validated, bounded, a 4xx
JSON answer when wrong), turns the conversation into the agent's plain
message list, and streams one run in that front-end's wire format. The
agent is the scripted one unless a real model is configured.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._controller import RunController
from .._run import create_run
from ..asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    RunResponse,
    UIMessageStreamResponse,
)
from ..requests import (
    AssistantTransportRequest,
    DataStreamRequest,
    RequestBodyError,
    UIMessageStreamRequest,
    parse_body,
)
from ..requests.assistant_transport import AddMessageCommand, TransportUserMessage
from ..requests.data_stream import TextContent
from ._agent import Agent, ScriptedAgent

__all__ = ["FORMATS", "Format", "create_app"]

logger = logging.getLogger("trio_stream.demo")

Format = Literal["data-stream", "assistant-transport", "ui-message-stream"]
FORMATS: tuple[Format, ...] = get_args(Format)

STATIC = Path(__file__).parent / "static"

#: The page loads only its own script, style and API, and shows images of its
#: own or from ``data:`` URLs (the files a run sends); nothing can frame it.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

Messages = list[dict[str, str]]


def _no_user_message() -> RequestBodyError:
    return RequestBodyError(422, "the request holds no user message to answer")


def _data_stream_messages(body: DataStreamRequest) -> Messages:
    messages: Messages = []
    if body.system:
        messages.append({"role": "system", "content": body.system})
    for message in body.messages:
        if message.role == "tool":
            continue  # the demo's agents call no client-side tools
        content = message.content
        if not isinstance(content, str):
            content = "".join(part.text for part in content if isinstance(part, TextContent))
        messages.append({"role": message.role, "content": content})
    return messages


def _ui_messages(body: UIMessageStreamRequest) -> Messages:
    return [{"role": message.role, "content": message.text} for message in body.messages]


def _transport_history(body: AssistantTransportRequest) -> tuple[dict[str, Any], Messages]:
    """The state the client holds and the conversation it records, with the new messages.

    The assistant transport keeps the conversation on the server's side of
    the protocol: in the state snapshot that the front-end sends back.
    """
    if body.state is None:
        state: dict[str, Any] = {}
    elif isinstance(body.state, dict):
        state = body.state
    else:
        raise RequestBodyError(422, "state must be a JSON object or null")
    history = state.get("messages", [])
    if not isinstance(history, list) or not all(
        isinstance(item, dict)
        and item.get("role") in ("user", "assistant")
        and isinstance(item.get("content"), str)
        for item in history
    ):
        raise RequestBodyError(
            422, 'state.messages must be a list of {"role": "user"|"assistant", "content": str}'
        )
    messages: Messages = [dict(item) for item in history]
    for command in body.commands:
        if isinstance(command, AddMessageCommand):
            role = "user" if isinstance(command.message, TransportUserMessage) else "assistant"
            messages.append({"role": role, "content": command.message.text})
    if body.system:
        messages.insert(0, {"role": "system", "content": body.system})
    return state, messages


def _json_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RequestBodyError):
        return exc.response()
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(*, format: Format = "data-stream", agent: Agent | None = None) -> Starlette:
    """The demo app; ``agent`` defaults to the scripted one.

    ``format`` is only the page's initial choice: every format has its
    endpoint, ``POST /api/chat/<format>``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    model: Agent = agent if agent is not None else ScriptedAgent()

    def answer(
        messages: Messages, respond: Callable[..., RunResponse], state: dict[str, Any] | None
    ) -> RunResponse:
        if not any(message["role"] == "user" for message in messages):
            raise _no_user_message()

        history = [m for m in messages if m["role"] != "system"]

        async def run(controller: RunController) -> None:
            if state is not None:  # the assistant transport keeps the conversation in state
                controller.state["messages"] = history
            reply = await model(controller, messages)
            if state is not None:
                controller.state["messages"] = [*history, {"role": "assistant", "content": reply}]

        return respond(create_run(run, state=state if state is not None else {}))

    # A RequestBodyError raised below becomes its 4xx JSON answer (see
    # ``exception_handlers``).
    async def data_stream(request: Request) -> Response:
        body = await parse_body(request, DataStreamRequest)
        return answer(_data_stream_messages(body), DataStreamResponse, None)

    async def assistant_transport(request: Request) -> Response:
        body = await parse_body(request, AssistantTransportRequest)
        state, messages = _transport_history(body)
        return answer(messages, AssistantTransportResponse, state)

    async def ui_message_stream(request: Request) -> Response:
        body = await parse_body(request, UIMessageStreamRequest)
        return answer(_ui_messages(body), UIMessageStreamResponse, None)

    async def info(request: Request) -> Response:
        described: dict[str, Any] = {"model": model.name, "format": format, "formats": FORMATS}
        # An agent may describe itself for the page's welcome: a paragraph, and
        # messages to start with.
        for key in ("about", "suggestions"):
            if getattr(model, key, None):
                described[key] = getattr(model, key)
        return JSONResponse(described)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # A model with connections of its own closes them.
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", page),
            Route("/api/info", info),
            Route("/api/chat/data-stream", data_stream, methods=["POST"]),
            Route("/api/chat/assistant-transport", assistant_transport, methods=["POST"]),
            Route("/api/chat/ui-message-stream", ui_message_stream, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={HTTPException: _json_error, RequestBodyError: _json_error},
    )
