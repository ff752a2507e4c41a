"""The apps that m1 to m4 measure: one Starlette app per library, with the same routes.

``trio_app`` (trio-stream, served on Trio) and ``assistant_app``
(assistant-stream, served on asyncio) have the same routes, and each route's
run is the same code in both: the same loops, the same tokens, the same
awaits, with Trio's spelling where the other has asyncio's (``sleep(0)`` is
``trio.lowlevel.checkpoint()``, to which ``trio.sleep(0)`` comes down). The run
functions are built by the ``*_run`` factories below, in pairs written side
by side so that any difference shows; m1 calls the same factories in process.

Routes (``GET``, parameters in the query string), each streaming the
assistant-ui data stream with the library's ``DataStreamResponse`` (heartbeats
at their default, off in both):

- ``/text?n=N&checkpoint=0|1``: ``N`` text deltas of ``TOKEN``; with
  ``checkpoint=1`` the run yields to the event loop after each one, as a producer
  that awaits its model between tokens does.
- ``/paced?n=N&rate=R``: ``N`` deltas at ``R`` per second, each carrying the
  ``time.monotonic_ns()`` at which it was made (``"<ns> "``), for latency.
- ``/tools?tools=T&deltas=D``: ``T`` tool calls at once, in a task group of
  the run, each streaming its JSON arguments in ``D`` deltas (``sleep(0)``
  after each) and then its result.

``TOKEN_LINE`` and ``FINISH_LINE`` are the bytes trio-stream's encoder makes
of ``/text``, against which m2 checks every body, the ceiling's
(``bench.apps_bare``) included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import assistant_stream  # type: ignore[import-untyped]
import assistant_stream.serialization.data_stream  # type: ignore[import-untyped]
import trio
import trio.lowlevel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import trio_stream
import trio_stream.asgi
import trio_stream.formats.data_stream
from trio_stream.chunks import TextDeltaChunk

TOKEN = "tok "
"""Every text delta of ``/text``: four characters, about one model token."""

TrioRun = trio_stream.RunCallback
AsyncioRun = Callable[[Any], Coroutine[Any, Any, None]]
"""A run of assistant-stream, whose ``RunController`` has no type information."""


# -- the runs, in pairs ------------------------------------------------------


def trio_text_run(n: int, checkpoint: bool) -> TrioRun:
    async def run(controller: trio_stream.RunController) -> None:
        for _ in range(n):
            controller.append_text(TOKEN)
            if checkpoint:
                await trio.lowlevel.checkpoint()

    return run


def asyncio_text_run(n: int, checkpoint: bool) -> AsyncioRun:
    async def run(controller: Any) -> None:
        for _ in range(n):
            controller.append_text(TOKEN)
            if checkpoint:
                await asyncio.sleep(0)

    return run


def trio_paced_run(n: int, rate: float) -> TrioRun:
    async def run(controller: trio_stream.RunController) -> None:
        start = time.monotonic()
        for i in range(n):
            await trio.sleep(max(0.0, start + i / rate - time.monotonic()))
            controller.append_text(f"{time.monotonic_ns()} ")

    return run


def asyncio_paced_run(n: int, rate: float) -> AsyncioRun:
    async def run(controller: Any) -> None:
        start = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            controller.append_text(f"{time.monotonic_ns()} ")

    return run


def tool_args(index: int, deltas: int) -> list[str]:
    """The argument deltas of tool call ``index``: together, a JSON object."""
    return [f'{{"index":{index},"text":"', *["abcd"] * (deltas - 2), '"}']


def tool_result(index: int) -> dict[str, Any]:
    return {"index": index, "ok": True}


def tool_call_id(index: int) -> str:
    return f"call_{index:05d}"


def trio_tools_run(tools: int, deltas: int) -> TrioRun:
    async def tool(controller: trio_stream.RunController, index: int) -> None:
        call = await controller.add_tool_call("lookup", tool_call_id(index))
        for piece in tool_args(index, deltas):
            call.append_args_text(piece)
            await trio.lowlevel.checkpoint()
        call.set_response(tool_result(index))

    async def run(controller: trio_stream.RunController) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(tools):
                nursery.start_soon(tool, controller, index)

    return run


def asyncio_tools_run(tools: int, deltas: int) -> AsyncioRun:
    async def tool(controller: Any, index: int) -> None:
        call = await controller.add_tool_call("lookup", tool_call_id(index))
        for piece in tool_args(index, deltas):
            call.append_args_text(piece)
            await asyncio.sleep(0)
        call.set_response(tool_result(index))

    async def run(controller: Any) -> None:
        async with asyncio.TaskGroup() as task_group:
            for index in range(tools):
                task_group.create_task(tool(controller, index))

    return run


# -- the two Starlette apps --------------------------------------------------


def _int(request: Request, name: str, default: int) -> int:
    return int(request.query_params.get(name, default))


async def _trio_text(request: Request) -> Response:
    run = trio_text_run(_int(request, "n", 1000), bool(_int(request, "checkpoint", 1)))
    return trio_stream.asgi.DataStreamResponse(trio_stream.create_run(run))


async def _trio_paced(request: Request) -> Response:
    run = trio_paced_run(_int(request, "n", 100), float(request.query_params.get("rate", 100)))
    return trio_stream.asgi.DataStreamResponse(trio_stream.create_run(run))


async def _trio_tools(request: Request) -> Response:
    run = trio_tools_run(_int(request, "tools", 200), _int(request, "deltas", 50))
    return trio_stream.asgi.DataStreamResponse(trio_stream.create_run(run))


async def _assistant_text(request: Request) -> Response:
    run = asyncio_text_run(_int(request, "n", 1000), bool(_int(request, "checkpoint", 1)))
    response: Response = assistant_stream.serialization.data_stream.DataStreamResponse(
        assistant_stream.create_run(run)
    )
    return response


async def _assistant_paced(request: Request) -> Response:
    run = asyncio_paced_run(_int(request, "n", 100), float(request.query_params.get("rate", 100)))
    response: Response = assistant_stream.serialization.data_stream.DataStreamResponse(
        assistant_stream.create_run(run)
    )
    return response


async def _assistant_tools(request: Request) -> Response:
    run = asyncio_tools_run(_int(request, "tools", 200), _int(request, "deltas", 50))
    response: Response = assistant_stream.serialization.data_stream.DataStreamResponse(
        assistant_stream.create_run(run)
    )
    return response


trio_app = Starlette(
    routes=[
        Route("/text", _trio_text),
        Route("/paced", _trio_paced),
        Route("/tools", _trio_tools),
    ]
)

assistant_app = Starlette(
    routes=[
        Route("/text", _assistant_text),
        Route("/paced", _assistant_paced),
        Route("/tools", _assistant_tools),
    ]
)


# -- the bytes of /text ------------------------------------------------------

_encoder = trio_stream.formats.data_stream.DataStreamEncoder()
TOKEN_LINE = _encoder.encode([TextDeltaChunk(TOKEN)])
"""``0:"tok "`` and a newline: the data-stream line of one ``TOKEN`` delta."""
FINISH_LINE = _encoder.finish()
"""The ``d:`` line that ends trio-stream's data stream (assistant-stream sends none)."""
del _encoder
