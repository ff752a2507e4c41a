"""The ceiling: bare ASGI apps that send the bytes the libraries' apps send, and nothing else.

No framework, no library, no run, no encoder: a raw ASGI callable that sends
pre-formatted data-stream lines with the event loop's own ``sleep`` between
them. Served on a server, it is that server's own limit for the shape of
traffic measured: whatever a library's row costs beyond its ceiling's row,
the library (and its framework) cost. ``trio_app`` runs on Trio (hypercorn's
Trio worker), ``asyncio_app`` on asyncio (uvicorn), with the same code.

Routes (``GET``, parameters in the query string):

- ``/text?n=N&mode=chunk|all`` (m2): the exact body of ``bench.apps_stream``'s
  ``/text`` as trio-stream sends it, ``N`` lines of ``TOKEN_LINE`` and the
  ``FINISH_LINE``, one ``send`` per line (``chunk``) or all in one (``all``).
- ``/paced?n=N&rate=R`` (m3): ``N`` lines at ``R`` per second, each
  carrying the ``time.monotonic_ns()`` at which it was made, paced as
  ``bench.apps_stream``'s ``/paced`` paces its deltas.
- ``/tokens?n=N&interval=S&phase=`` (m5): ``N`` lines ``token<i>``, one
  every ``S`` seconds, as ``bench.apps_load``'s ``/tokens`` runs send them
  (``phase=random`` included), without the heartbeats (a 15-second stream
  gets at most one of those).

The lines are written out here rather than made by trio-stream's encoder, so
that a ceiling process holds no library at all; m2 checks the ``/text`` body
byte for byte against the encoder's, and m3 and m5 parse every line.

The app answers the lifespan protocol itself, as a bare app must on a bare
hypercorn (which has no ``LifespanGuard``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["FINISH_LINE", "TOKEN_LINE", "asyncio_app", "trio_app"]

TOKEN_LINE = b'0:"tok "\n'
"""The data-stream line of one ``"tok "`` text delta."""
FINISH_LINE = b'd:{"finishReason":"stop","usage":{"inputTokens":0,"outputTokens":0}}\n'
"""The ``d:`` line with which trio-stream ends a data stream."""

_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"x-vercel-ai-data-stream", b"v1"),
]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Sleep = Callable[[float], Awaitable[Any]]


def _query(scope: Message) -> dict[str, str]:
    text: str = scope["query_string"].decode()
    return dict(pair.split("=", 1) for pair in text.split("&") if "=" in pair)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _line(send: Send, line: bytes) -> None:
    await send({"type": "http.response.body", "body": line, "more_body": True})


async def _text(query: dict[str, str], send: Send, sleep: Sleep) -> None:
    n = int(query.get("n", 1000))
    if query.get("mode") == "all":
        await send({"type": "http.response.body", "body": TOKEN_LINE * n + FINISH_LINE})
        return
    for _ in range(n):
        await _line(send, TOKEN_LINE)
    await send({"type": "http.response.body", "body": FINISH_LINE})


async def _paced(query: dict[str, str], send: Send, sleep: Sleep) -> None:
    n, rate = int(query.get("n", 100)), float(query.get("rate", 100))
    start = time.monotonic()
    for i in range(n):
        await sleep(max(0.0, start + i / rate - time.monotonic()))
        await _line(send, b'0:"%d "\n' % time.monotonic_ns())
    await send({"type": "http.response.body", "body": FINISH_LINE})


async def _tokens(query: dict[str, str], send: Send, sleep: Sleep) -> None:
    n, interval = int(query.get("n", 10)), float(query.get("interval", 1.0))
    if query.get("phase") == "random":
        await sleep(random.random() * interval)
    for i in range(n):
        await _line(send, b'0:"token%d "\n' % i)
        await sleep(interval)
    await send({"type": "http.response.body", "body": FINISH_LINE})


_ROUTES = {"/text": _text, "/paced": _paced, "/tokens": _tokens}


def _app(sleep: Sleep) -> Callable[[Message, Receive, Send], Awaitable[None]]:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        route = _ROUTES.get(scope["path"])
        if route is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await route(_query(scope), send, sleep)

    return app


trio_app = _app(trio.sleep)
asyncio_app = _app(asyncio.sleep)
