"""The app ``test_workers.py`` serves with ``trio-stream serve --workers N``.

A bare ASGI function that returns from the lifespan scope without answering
it, so that a worker serving it at all shows that the lifespan guard wraps
it. Every answer says which process gave it:

``GET /pid``
    the worker's process id.
``GET /gc``
    the worker's process id and garbage collector thresholds, as JSON.
``GET /slot``
    the worker's process id and its ``TRIO_STREAM_WORKER``, as JSON.
``POST /stream?seconds=S``
    a data stream: ``pid <pid>``, then a tick every 50 ms for ``S`` seconds
    and `` finished``; the run logs ``workers-app: run cleaned up (pid <pid>)``
    when its clean-up has run.
``GET /hold?seconds=S``
    the worker's process id, then the worker's event loop blocked for
    ``S`` seconds: the worker accepts no connection until the answer ends,
    so the connections made meanwhile go to the other workers.
``GET /stuck``
    starts a response, then waits for an hour shielded from cancellation:
    its worker cannot shut down by itself.

With the environment variable ``WORKERS_APP_FAIL_IF`` naming a file that
exists, importing this module fails: a worker started then cannot start.
``proxied_app`` is the same app behind hypercorn's ``ProxyFixMiddleware``,
which deep-copies each request's scope.
With ``WORKERS_APP_GC`` (``"a,b,c"``), the module sets the garbage
collector's thresholds to those as it is imported.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from pathlib import Path

import anyio
from hypercorn.middleware import ProxyFixMiddleware
from starlette.types import Receive, Scope, Send

from trio_stream import RunController, create_run
from trio_stream.asgi import DataStreamResponse

if (flag := os.environ.get("WORKERS_APP_FAIL_IF")) and Path(flag).exists():
    raise RuntimeError(f"workers-app: {flag} exists, this worker does not start")

if thresholds := os.environ.get("WORKERS_APP_GC"):
    gc.set_threshold(*map(int, thresholds.split(",")))

logger = logging.getLogger("trio_stream")

TICK = 0.05


async def _text(send: Send, text: str) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})


def _ticking(seconds: float) -> DataStreamResponse:
    async def run(controller: RunController) -> None:
        try:
            controller.append_text(f"pid {os.getpid()}")
            with anyio.move_on_after(seconds):
                while True:
                    await anyio.sleep(TICK)
                    controller.append_text(".")
            controller.append_text(" finished")
        finally:
            logger.info("workers-app: run cleaned up (pid %d)", os.getpid())

    return DataStreamResponse(create_run(run))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan left unanswered
    if scope["path"] == "/pid":
        await _text(send, str(os.getpid()))
    elif scope["path"] == "/gc":
        await _text(send, json.dumps({"pid": os.getpid(), "thresholds": gc.get_threshold()}))
    elif scope["path"] == "/slot":
        slot = os.environ.get("TRIO_STREAM_WORKER")
        await _text(send, json.dumps({"pid": os.getpid(), "slot": slot}))
    elif scope["path"] == "/stream":
        seconds = float(scope["query_string"].decode().partition("seconds=")[2])
        await _ticking(seconds)(scope, receive, send)
    elif scope["path"] == "/hold":
        seconds = float(scope["query_string"].decode().partition("seconds=")[2])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        pid = f"{os.getpid()}\n".encode()
        await send({"type": "http.response.body", "body": pid, "more_body": True})
        # Deliberately blocking: nothing else runs in this worker, nothing is accepted.
        time.sleep(seconds)  # noqa: ASYNC251
        await send({"type": "http.response.body", "body": b"released"})
    elif scope["path"] == "/stuck":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"stuck", "more_body": True})
        with anyio.CancelScope(shield=True):
            await anyio.sleep(3600)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


proxied_app = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)  # type: ignore[arg-type]
