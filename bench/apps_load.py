"""The apps of the load measurements (m5-m7): one per library, same routes, same run code.

``trio_app`` streams runs with trio-stream (served on hypercorn-trio);
``assistant_app`` streams the same runs with assistant-stream (served on
uvicorn and on hypercorn-asyncio). Both answer in the assistant-ui data
stream format with heartbeats on at each library's default interval (15 s),
and each run is written the way that library's documentation writes it: the
only differences are the library's own calls (``spawn_tool_call`` against
``add_tool_call`` plus a task) and the event loop's primitives
(``trio.sleep`` against ``asyncio.sleep``, ``wait_readable`` against
``sock_recv``).

Routes:

``GET /tokens?n=&interval=&phase=``
    m5: ``n`` text deltas, one every ``interval`` seconds. With
    ``phase=random``, the first waits a random fraction of ``interval``:
    streams started together then do not fall due together.
``GET /paced?n=&interval=``
    m11: ``n`` text deltas, delta ``i`` at ``i * interval`` seconds after the
    run began, as a model's tokens arrive: a delta delivered late does not
    push the later ones back.
``GET /cancel?trial=&tools=&heartbeat=``
    m6: ``tools`` tool calls, each a task blocked on a socket that never
    receives data; once all of them wait, the text ``ready`` goes out. Each
    task records ``time.monotonic()`` when it observes cancellation.
    ``heartbeat=0`` turns heartbeats off (both libraries' default for this
    response).
``GET /cancel-times?trial=&tools=&timeout=``
    m6: waits (at most ``timeout`` seconds) until ``tools`` tasks of the
    trial have observed cancellation and answers their times as JSON
    (``{"times": [...]}``). Tasks still blocked then are woken by a byte on
    their socket, so an abandoned trial does not leak into the next.
``GET /bulk?total=&chunk=``
    m7: ``total`` characters of text through ``add_stream``, in text deltas
    of ``chunk`` characters, each a new string (as a model's would be), the
    producer yielding to the loop after each one (as a network read would).
``GET /pid``
    m11: the process id of the worker that answers, so that the harness can
    tell when every worker of a server serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import trio
from assistant_stream import create_run as as_create_run  # type: ignore[import-untyped]
from assistant_stream.assistant_stream_chunk import (  # type: ignore[import-untyped]
    TextDeltaChunk as AsTextDeltaChunk,
)
from assistant_stream.serialization.data_stream import (  # type: ignore[import-untyped]
    DataStreamResponse as AsDataStreamResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import DataStreamResponse
from trio_stream.chunks import TextDeltaChunk

__all__ = ["assistant_app", "trio_app"]

HEARTBEAT = True
"""Heartbeats on, at each library's default interval (15 s for both)."""

_TEXT = (
    "The quick brown fox jumps over the lazy dog while the assistant streams "
    "a long answer, token after token, to a reader on a slow link. "
)


@functools.cache
def _filler(size: int) -> str:
    return (_TEXT * (size // len(_TEXT) + 1))[:size]


def bulk_text(index: int, size: int) -> str:
    """A new string of ``size`` characters for delta ``index`` (never a shared object)."""
    return f"{index:>10} " + _filler(size - 11)


class _Trial:
    """One m6 trial's bookkeeping: its tasks' sockets and cancellation times."""

    def __init__(self, all_waiting: Any, done: Any) -> None:
        self.waiting = 0
        self.times: list[float] = []
        self.peers: list[socket.socket] = []
        self.all_waiting = all_waiting
        self.done = done


def _wake(trial: _Trial) -> None:
    """Send a byte to every task of ``trial`` still blocked, so that it returns."""
    for peer in trial.peers:
        with contextlib.suppress(OSError):
            peer.send(b"x")


def _int(request: Request, name: str, default: int) -> int:
    return int(request.query_params.get(name, default))


def _float(request: Request, name: str, default: float) -> float:
    return float(request.query_params.get(name, default))


def _phase(request: Request, interval: float) -> float:
    """Seconds before the first delta: 0, or a random fraction of ``interval``."""
    return random.random() * interval if request.query_params.get("phase") == "random" else 0.0


def _heartbeat(request: Request) -> bool:
    return request.query_params.get("heartbeat", "1") != "0"


async def _pid(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


# -- trio-stream --------------------------------------------------------------

_trio_trials: dict[str, _Trial] = {}


async def _trio_tokens(request: Request) -> Response:
    n, interval = _int(request, "n", 10), _float(request, "interval", 1.0)
    phase = _phase(request, interval)

    async def run(controller: RunController) -> None:
        if phase:
            await trio.sleep(phase)
        for i in range(n):
            controller.append_text(f"token{i} ")
            await trio.sleep(interval)

    return DataStreamResponse(create_run(run), heartbeat=HEARTBEAT)


async def _trio_paced(request: Request) -> Response:
    n, interval = _int(request, "n", 10), _float(request, "interval", 1.0)

    async def run(controller: RunController) -> None:
        began = trio.current_time()
        for i in range(n):
            await trio.sleep_until(began + i * interval)
            controller.append_text(f"token{i} ")

    return DataStreamResponse(create_run(run), heartbeat=HEARTBEAT)


async def _trio_blocked_tool(trial: _Trial, tools: int, call: ToolCallController) -> None:
    mine, peer = socket.socketpair()
    trial.peers.append(peer)
    try:
        trial.waiting += 1
        if trial.waiting == tools:
            trial.all_waiting.set()
        await trio.lowlevel.wait_readable(mine)
    except trio.Cancelled:
        trial.times.append(time.monotonic())
        if len(trial.times) == tools:
            trial.done.set()
        raise
    finally:
        mine.close()
        peer.close()


async def _trio_cancel(request: Request) -> Response:
    name, tools = request.query_params["trial"], _int(request, "tools", 20)
    trial = _trio_trials[name] = _Trial(trio.Event(), trio.Event())

    async def run(controller: RunController) -> None:
        for i in range(tools):
            controller.spawn_tool_call(
                "wait_for_io",
                lambda call: _trio_blocked_tool(trial, tools, call),
                args={"i": i},
            )
        await trial.all_waiting.wait()
        controller.append_text("ready")

    return DataStreamResponse(create_run(run), heartbeat=_heartbeat(request))


async def _trio_cancel_times(request: Request) -> Response:
    name = request.query_params["trial"]
    trial = _trio_trials.get(name)
    if trial is None:
        return JSONResponse({"times": []})
    with trio.move_on_after(_float(request, "timeout", 2.0)):
        await trial.done.wait()
    del _trio_trials[name]
    _wake(trial)
    return JSONResponse({"times": trial.times})


async def _trio_bulk(request: Request) -> Response:
    total, size = _int(request, "total", 1 << 20), _int(request, "chunk", 16384)

    async def deltas() -> AsyncIterator[TextDeltaChunk]:
        for i in range(total // size):
            yield TextDeltaChunk(bulk_text(i, size))
            await trio.lowlevel.checkpoint()

    async def run(controller: RunController) -> None:
        controller.add_stream(deltas())

    return DataStreamResponse(create_run(run), heartbeat=HEARTBEAT)


trio_app = Starlette(
    routes=[
        Route("/tokens", _trio_tokens),
        Route("/paced", _trio_paced),
        Route("/cancel", _trio_cancel),
        Route("/cancel-times", _trio_cancel_times),
        Route("/bulk", _trio_bulk),
        Route("/pid", _pid),
    ]
)


# -- assistant-stream ---------------------------------------------------------

_as_trials: dict[str, _Trial] = {}


async def _as_tokens(request: Request) -> Response:
    n, interval = _int(request, "n", 10), _float(request, "interval", 1.0)
    phase = _phase(request, interval)

    async def run(controller: Any) -> None:
        if phase:
            await asyncio.sleep(phase)
        for i in range(n):
            controller.append_text(f"token{i} ")
            await asyncio.sleep(interval)

    response: Response = AsDataStreamResponse(as_create_run(run), heartbeat=HEARTBEAT)
    return response


async def _as_paced(request: Request) -> Response:
    n, interval = _int(request, "n", 10), _float(request, "interval", 1.0)

    async def run(controller: Any) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i in range(n):
            await asyncio.sleep(max(0.0, began + i * interval - loop.time()))
            controller.append_text(f"token{i} ")

    response: Response = AsDataStreamResponse(as_create_run(run), heartbeat=HEARTBEAT)
    return response


async def _as_blocked_tool(trial: _Trial, tools: int, call: Any) -> None:
    mine, peer = socket.socketpair()
    mine.setblocking(False)
    trial.peers.append(peer)
    try:
        trial.waiting += 1
        if trial.waiting == tools:
            trial.all_waiting.set()
        await asyncio.get_running_loop().sock_recv(mine, 1)
    except asyncio.CancelledError:
        trial.times.append(time.monotonic())
        if len(trial.times) == tools:
            trial.done.set()
        raise
    finally:
        mine.close()
        peer.close()
    call.set_response(None)


async def _as_cancel(request: Request) -> Response:
    name, tools = request.query_params["trial"], _int(request, "tools", 20)
    trial = _as_trials[name] = _Trial(asyncio.Event(), asyncio.Event())

    async def run(controller: Any) -> None:
        async with asyncio.TaskGroup() as tasks:
            for i in range(tools):
                call = await controller.add_tool_call("wait_for_io")
                call.append_args_text(json.dumps({"i": i}))
                tasks.create_task(_as_blocked_tool(trial, tools, call))
            await trial.all_waiting.wait()
            controller.append_text("ready")

    response: Response = AsDataStreamResponse(as_create_run(run), heartbeat=_heartbeat(request))
    return response


async def _as_cancel_times(request: Request) -> Response:
    name = request.query_params["trial"]
    trial = _as_trials.get(name)
    if trial is None:
        return JSONResponse({"times": []})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(trial.done.wait(), _float(request, "timeout", 2.0))
    del _as_trials[name]
    _wake(trial)
    return JSONResponse({"times": trial.times})


async def _as_bulk(request: Request) -> Response:
    total, size = _int(request, "total", 1 << 20), _int(request, "chunk", 16384)

    async def deltas() -> AsyncIterator[Any]:
        for i in range(total // size):
            yield AsTextDeltaChunk(bulk_text(i, size))
            await asyncio.sleep(0)

    async def run(controller: Any) -> None:
        controller.add_stream(deltas())

    response: Response = AsDataStreamResponse(as_create_run(run), heartbeat=HEARTBEAT)
    return response


assistant_app = Starlette(
    routes=[
        Route("/tokens", _as_tokens),
        Route("/paced", _as_paced),
        Route("/cancel", _as_cancel),
        Route("/cancel-times", _as_cancel_times),
        Route("/bulk", _as_bulk),
        Route("/pid", _pid),
    ]
)
