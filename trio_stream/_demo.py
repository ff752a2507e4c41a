"""A small demo app: one run, streamed as the assistant-ui data stream.

Served by ``trio-stream demo``. It shows the pieces working together over
real HTTP — parallel tool calls, a nested sub-stream, state — without any
front-end: ``curl -N http://127.0.0.1:8000/`` prints each line as it is
produced.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from ._controller import RunController, ToolCallController
from ._run import create_run
from .serialization.data_stream import DataStreamResponse


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


async def _chat(request: Request) -> DataStreamResponse:
    return DataStreamResponse(create_run(demo_run))


def create_app() -> Starlette:
    """The demo's ASGI application."""
    return Starlette(routes=[Route("/", _chat)])
