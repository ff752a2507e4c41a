"""The app ``test_shutdown.py`` stops with SIGTERM while it streams.

``POST /stream/{format}?seconds=S`` streams a tick every 50 ms for ``S``
seconds, with three tool calls running in parallel for as long; every run
and every tool logs when its clean-up has run, so the test can count from
the server's log that each was cancelled rather than abandoned.
``POST /resumable/{format}?seconds=S`` is the same run, started as a
resumable stream in a ``MemoryStore``.

Serve it with ``python -m trio_stream serve tests.reliability.shutdown_app:app``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunCallback, RunController, ToolCallController, create_run
from trio_stream.resumable import MemoryStore, ResumableStreams

from ..scenarios import RESPONSES

logger = logging.getLogger("trio_stream")

TICK = 0.05


def ticking(seconds: float) -> RunCallback:
    async def tool(call: ToolCallController) -> str:
        try:
            await anyio.sleep(seconds)
            return "done"
        finally:
            logger.info("shutdown-app: tool %s cleaned up", call.tool_call_id)

    async def run(controller: RunController) -> None:
        try:
            for index in range(3):
                controller.spawn_tool_call("wait", tool, args={"index": index})
            with anyio.move_on_after(seconds):
                while True:
                    controller.append_text(".")
                    await anyio.sleep(TICK)
            controller.append_text(" finished")
        finally:
            logger.info("shutdown-app: run cleaned up")

    return run


streams = ResumableStreams(MemoryStore())


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with streams:
        yield


async def stream(request: Request) -> Response:
    seconds = float(request.query_params["seconds"])
    response = RESPONSES[request.path_params["format"]]
    return response(create_run(ticking(seconds)))


async def resumable(request: Request) -> Response:
    seconds = float(request.query_params["seconds"])
    encoder = RESPONSES[request.path_params["format"]].encoder_class
    assert encoder is not None
    return await streams.start(create_run(ticking(seconds)), encoder=encoder())


app = Starlette(
    routes=[
        Route("/stream/{format}", stream, methods=["POST"]),
        Route("/resumable/{format}", resumable, methods=["POST"]),
    ],
    lifespan=lifespan,
)
