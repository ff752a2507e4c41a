"""Serving ASGI apps with hypercorn's Trio worker.

``serve`` runs hypercorn's connections from an accept loop of its own
(``_accepting.py``: it drains a burst of clients at once) and adds two things:
streams that end cleanly when the server shuts down (``_shutdown.py``), and
a guard for the ASGI lifespan protocol. Hypercorn on Trio sends the app a
``lifespan`` scope at start-up; an app that returns from it without
answering (as a bare ASGI function that only knows ``http`` does) leaves
hypercorn writing to a closed channel, and the server dies at start-up with
``ClosedResourceError``. The guard answers the lifespan messages the app left
unanswered, so any ASGI app starts.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _accepting
from ._shutdown import Shutdown, ShutdownNotice

__all__ = ["DEFAULT_BACKLOG", "LifespanGuard", "default_config", "serve"]

DEFAULT_BACKLOG = 4096
"""Connections the kernel may queue before they are accepted (hypercorn's own default: 100).

Chat clients arrive in bursts, and a worker busy streaming to thousands of
them accepts new ones between writes. With a short queue, a burst overflows it
and the kernel drops the handshakes it cannot queue: clients then wait for TCP
retransmissions, seconds each, and time out. The kernel caps the value at
``net.core.somaxconn``.
"""

_DONE = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


class LifespanGuard:
    """Wraps an ASGI app so that the lifespan protocol is always completed.

    An app that handles lifespan itself is left alone; an app that raises
    on a lifespan scope is too (the ASGI way to say "not supported", which
    servers understand). An app that returns without answering gets the
    missing answers sent for it: start-up and shutdown complete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        received: set[str] = set()
        sent: set[str] = set()

        async def app_receive() -> Message:
            message = await receive()
            received.add(message["type"])
            return message

        async def app_send(message: Message) -> None:
            sent.add(message["type"])
            await send(message)

        await self.app(scope, app_receive, app_send)
        if sent & _DONE or "lifespan.startup.failed" in sent:
            return
        if "lifespan.startup" in received and "lifespan.startup.complete" not in sent:
            await send({"type": "lifespan.startup.complete"})
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Served:
    """What ``serve`` hands hypercorn: the app behind ``LifespanGuard`` and ``ShutdownNotice``.

    A request goes to ``ShutdownNotice``, which returns the app's own
    coroutine: no frame of a wrapper is held for as long as each stream
    lasts, thousands of times over. (Hypercorn is told the app is ASGI, so
    that a plain method returning the coroutine will do.)
    """

    __slots__ = ("_guard", "_notice")

    def __init__(self, app: ASGIApp, shutdown: Shutdown) -> None:
        self._guard = LifespanGuard(app)
        self._notice = ShutdownNotice(app, shutdown)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "lifespan":
            return self._guard(scope, receive, send)
        return self._notice(scope, receive, send)


def default_config() -> Config:
    """Hypercorn's defaults, but for the listen backlog (see ``DEFAULT_BACKLOG``)."""
    config = Config()
    config.backlog = DEFAULT_BACKLOG
    return config


async def serve(
    app: ASGIApp,
    *,
    host: str | None = None,
    port: int | None = None,
    config: Config | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn's Trio worker until shut down or cancelled.

    Binds ``host:port`` (default ``127.0.0.1:8000``; port 0 picks a free
    port), or whatever ``config.bind`` says if neither is given. Without a
    ``config``, hypercorn's defaults apply except for the listen backlog, see
    ``DEFAULT_BACKLOG``. Start it with
    ``trio.run(serve, app)``, or with ``await nursery.start(serve, app)``,
    which returns the URLs bound, such as ``["http://127.0.0.1:8000"]``.
    ``shutdown_trigger`` is an async function whose return starts a graceful
    shutdown; by default, in the main thread, SIGINT and SIGTERM do.

    Connections are accepted here, a burst at a time (``_accepting.py``),
    and served by hypercorn's own connection handler. HTTP/3
    (``config.quic_bind``) is not served: ``ValueError``.

    In a graceful shutdown, the server stops accepting connections and gives
    the open ones ``config.graceful_timeout`` seconds (3 by default). Streams
    in flight get until one second before that deadline to end by
    themselves; then their runs are cancelled, and each client receives the
    format's error chunk and a complete body rather than a cut connection.
    """
    if config is None:
        config = default_config()
    if host is not None or port is not None:
        config.bind = [f"{host or '127.0.0.1'}:{8000 if port is None else port}"]
    _accepting.check(config)
    if shutdown_trigger is None:
        shutdown_trigger = _signalled
    shutdown = Shutdown()
    trigger = shutdown_trigger

    async def shutdown_begins() -> None:
        await trigger()
        shutdown.begin(config.graceful_timeout)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutdown.cut_off_when_due)
        await _accepting.run(
            _Served(app, shutdown),
            config,
            shutdown_trigger=shutdown_begins,
            task_status=task_status,
        )
        nursery.cancel_scope.cancel()


async def _signalled() -> None:
    """Return on SIGINT or SIGTERM; never, outside the main thread (no signals there)."""
    if threading.current_thread() is not threading.main_thread():
        await trio.sleep_forever()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return
