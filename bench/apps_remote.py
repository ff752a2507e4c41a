"""The app of the remote-agent measurement (m9): one app, a leaf or a relay by configuration.

Every server of a chain runs this app, on hypercorn-trio, in a process of
its own. ``BENCH_DOWNSTREAM`` in its environment, the URL of the next server
down, makes it a relay: each route's run is then one remote tool call
(``RunController.spawn_remote_tool_call``) sending the same request body to
the same route downstream, whose chunks it streams nested under the call.
Without it, the server is the leaf, where the runs do their own work. So a
client sees the same route at any depth, and a chain is only a matter of
which servers start with which environment.

Routes (``POST`` with a JSON body, as a remote tool call sends them; every
response is the assistant-ui data stream):

``/text`` ``{"n", "checkpoint"}``
    The leaf appends ``n`` text deltas of ``TOKEN`` (``bench.apps_stream``'s
    run: without awaiting, or awaiting ``sleep(0)`` after each one).
``/cancel`` ``{"trial", "tools"}``
    The leaf opens ``tools`` tool calls, each a task blocked on a socket that
    never receives data, then sends the text ``ready``; each task takes
    ``time.monotonic()`` when it observes cancellation. Heartbeats on at
    every level (15 s, not reached), as in m6.
``/fanout`` ``{"calls", "n", "shared"}``
    At a relay: one run opening ``calls`` remote tool calls at once, each to
    ``/text`` downstream with ``{"n": n}``; with ``shared``, all of them use
    one ``httpx.AsyncClient`` of the run (otherwise each call makes its own,
    the default). Not served by a leaf.

And at the leaf, ``GET /cancel-times?trial=&tools=&timeout=``: the
cancellation times of a ``/cancel`` trial, as ``bench.apps_load`` answers
them (waiting at most ``timeout`` seconds for all of them; tasks still
blocked then are woken, so that an abandoned trial does not leak).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import httpx
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import DataStreamResponse

from . import apps_stream
from .apps_load import _Trial, _wake

__all__ = ["DOWNSTREAM", "app"]

DOWNSTREAM = "BENCH_DOWNSTREAM"
"""The environment variable naming the next server down; unset at the leaf."""


def _downstream() -> str | None:
    return os.environ.get(DOWNSTREAM) or None


def _relayed(route: str, body: Any, heartbeat: bool = False) -> DataStreamResponse:
    """A run whose one tool call is ``route`` on the next server down, sent ``body``."""
    url = f"{_downstream()}{route}"

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call("relay", url, json=body)

    return DataStreamResponse(create_run(run), heartbeat=heartbeat)


async def _text(request: Request) -> Response:
    body = await request.json()
    if _downstream() is not None:
        return _relayed("/text", body)
    run = apps_stream.trio_text_run(int(body["n"]), bool(body.get("checkpoint", False)))
    return DataStreamResponse(create_run(run))


_trials: dict[str, _Trial] = {}


async def _blocked_tool(trial: _Trial, tools: int, call: ToolCallController) -> None:
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


async def _cancel(request: Request) -> Response:
    body = await request.json()
    if _downstream() is not None:
        return _relayed("/cancel", body, heartbeat=True)
    name, tools = str(body["trial"]), int(body["tools"])
    trial = _trials[name] = _Trial(trio.Event(), trio.Event())

    async def run(controller: RunController) -> None:
        for i in range(tools):
            controller.spawn_tool_call(
                "wait_for_io", lambda call: _blocked_tool(trial, tools, call), args={"i": i}
            )
        await trial.all_waiting.wait()
        controller.append_text("ready")

    return DataStreamResponse(create_run(run), heartbeat=True)


async def _cancel_times(request: Request) -> Response:
    name = request.query_params["trial"]
    trial = _trials.get(name)
    if trial is None:
        return JSONResponse({"times": []})
    with trio.move_on_after(float(request.query_params.get("timeout", 2.0))):
        await trial.done.wait()
    del _trials[name]
    _wake(trial)
    return JSONResponse({"times": trial.times})


async def _fanout(request: Request) -> Response:
    body = await request.json()
    url = f"{_downstream()}/text"
    calls, deltas = int(body["calls"]), {"n": int(body["n"])}

    async def run(controller: RunController) -> None:
        if not body.get("shared"):
            for _ in range(calls):
                controller.spawn_remote_tool_call("agent", url, json=deltas)
            return
        limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
        async with (
            httpx.AsyncClient(limits=limits) as client,
            controller.open_substream() as sub,
        ):
            for _ in range(calls):
                sub.spawn_remote_tool_call("agent", url, json=deltas, http_client=client)

    return DataStreamResponse(create_run(run))


app = Starlette(
    routes=[
        Route("/text", _text, methods=["POST"]),
        Route("/cancel", _cancel, methods=["POST"]),
        Route("/cancel-times", _cancel_times),
        Route("/fanout", _fanout, methods=["POST"]),
    ]
)
