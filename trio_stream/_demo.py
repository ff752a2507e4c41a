"""A small demo app: one run, streamed as newline-delimited JSON chunks.

Served by ``trio-stream demo``. It shows the pieces working together over
real HTTP — parallel tool calls, a nested sub-stream, state — without any
front-end: ``curl -N http://127.0.0.1:8000/`` prints each chunk as it is
produced.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._controller import RunController, ToolCallController
from ._json import encode
from ._run import Run, create_run
from .chunks import Chunk

logger = logging.getLogger("trio_stream.demo")


def _ndjson_line(chunk: Chunk) -> bytes:
    return encode({"type": chunk.type, **msgspec.structs.asdict(chunk)}) + b"\n"


class NDJSONRunResponse:
    """An ASGI response streaming a run's chunks, one JSON object per line.

    The run lives inside the response's task group; a client disconnect
    cancels it. If the run fails, its error chunk and the end of the body
    are sent before the exception propagates to the server.
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        failure: Exception | None = None
        disconnected = False
        async with anyio.create_task_group() as task_group:

            async def cancel_on_disconnect() -> None:
                nonlocal disconnected
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = True
                logger.info("client disconnected: cancelling its run")
                task_group.cancel_scope.cancel()

            task_group.start_soon(cancel_on_disconnect)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")],
                }
            )
            try:
                async with self._run as chunks:
                    async for chunk in chunks:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": _ndjson_line(chunk),
                                "more_body": True,
                            }
                        )
            except Exception as exc:
                failure = exc
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            task_group.cancel_scope.cancel()
        if disconnected:
            # Leaving the run's block waited for every task of the run.
            logger.info("run cancelled; all of its tasks have finished")
        if failure is not None:
            raise failure


async def _weather(tool: ToolCallController) -> dict[str, Any]:
    await anyio.sleep(0.3)
    return {"city": "Lisbon", "forecast": "sunny", "celsius": 24}


async def _research(tool: ToolCallController) -> str:
    async with tool.open_substream() as sub:
        for word in ("Reading ", "three ", "sources…"):
            sub.append_text(word)
            await anyio.sleep(0.05)
        sub.spawn_tool_call("fetch", _fetch, args={"url": "https://example.org"})
    return "summary ready"


async def _fetch(tool: ToolCallController) -> str:
    await anyio.sleep(0.1)
    return "<html>…</html>"


async def demo_run(controller: RunController) -> None:
    """The demo's scripted assistant turn."""
    controller.append_reasoning("The user wants the weather and some research.")
    for word in ("Let ", "me ", "check ", "two ", "things ", "at ", "once. "):
        controller.append_text(word)
        await anyio.sleep(0.03)
    controller.spawn_tool_call("get_weather", _weather, args={"city": "Lisbon"})
    controller.spawn_tool_call("research", _research, args={"topic": "trio"})
    controller.state = {"progress": "tools running"}
    await anyio.sleep(0.5)
    controller.state["progress"] = "done"
    controller.add_source("src-1", "https://trio.readthedocs.io", "Trio documentation")
    controller.append_text("All done.")


async def _chat(request: Request) -> NDJSONRunResponse:
    return NDJSONRunResponse(create_run(demo_run))


def create_app() -> Starlette:
    """The demo's ASGI application."""
    return Starlette(routes=[Route("/", _chat)])
