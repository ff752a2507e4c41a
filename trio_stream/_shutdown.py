"""Graceful shutdown: streams in flight end with a terminal chunk, not a cut.

When a server shuts down gracefully, hypercorn stops accepting connections
and gives the ones open ``graceful_timeout`` seconds (3 by default) to
finish; then it cancels them. A chat stream is often minutes long, so most
streams in flight would be cut mid-frame: the client sees a network error
instead of a message that ends, and the run is cancelled only when the
server gives up on it.

ASGI has no way to tell a request that its server is stopping (the lifespan
``shutdown`` message comes after the connections are closed). So ``serve()``
puts a ``Shutdown`` in the scope of every request, as the extension
``SCOPE_KEY``. Responses that find one give their run until the *cut-off*
(the graceful timeout less a margin) to finish by itself, then cancel it and
send the format's error chunk and closing bytes, while the server still lets
them write. Served by anything else, responses behave as before.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SCOPE_KEY", "SHUTDOWN_MESSAGE", "Shutdown", "ShutdownNotice", "shutdown_of"]

SCOPE_KEY = "trio_stream.shutdown"
"""The ``scope["extensions"]`` key under which ``serve()`` puts its ``Shutdown``."""

SHUTDOWN_MESSAGE = "the server is shutting down; the response was cut short"
"""The error chunk a stream ends with when the server's cut-off comes first."""

_MARGIN = 1.0
"""Seconds kept between the cut-off and the server's deadline, for the last writes."""


class Shutdown:
    """A server's graceful shutdown, as responses see it.

    ``begin(graceful_timeout)`` starts it. At the cut-off, one second before
    the server's deadline (or half-way to it when the timeout is under two
    seconds), every callback registered with ``on_cut_off`` is called, by the
    one task running ``cut_off_when_due``: a response in flight registers a
    callback, rather than keeping a task of its own waiting for the cut-off.
    """

    __slots__ = ("_begun", "_callbacks", "_cut", "_cut_off_at")

    def __init__(self) -> None:
        self._begun = trio.Event()
        self._cut_off_at = math.inf
        self._cut = False
        self._callbacks: set[Callable[[], None]] = set()

    def __copy__(self) -> Shutdown:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Shutdown:
        """Itself: there is one shutdown per server, whatever copies a request's scope.

        Middleware that rewrites a scope may copy it whole first (hypercorn's
        ``ProxyFixMiddleware`` deep-copies it). Copying the shutdown fails once
        a task waits on it (its event holds the waiting task), which failed
        every request; and a copy would never begin.
        """
        return self

    @property
    def begun(self) -> bool:
        """Whether the shutdown has begun."""
        return self._begun.is_set()

    @property
    def cut_off_at(self) -> float:
        """The ``trio.current_time()`` of the cut-off; infinite until begun."""
        return self._cut_off_at

    def begin(self, graceful_timeout: float) -> None:
        """Start the countdown to the cut-off; later calls change nothing."""
        if self._begun.is_set():
            return
        grace = max(graceful_timeout - _MARGIN, graceful_timeout / 2, 0.0)
        self._cut_off_at = trio.current_time() + grace
        self._begun.set()

    def on_cut_off(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Have ``callback`` called at the cut-off (at once, if it has passed).

        Returns the function that takes it back, for work that ends first.
        """
        if self._cut:
            callback()
            return _nothing
        self._callbacks.add(callback)
        return lambda: self._callbacks.discard(callback)

    async def cut_off_when_due(self) -> None:
        """Wait for the cut-off, then call every callback registered; ``serve()`` runs it."""
        await self._begun.wait()
        await trio.sleep_until(self._cut_off_at)
        self._cut = True
        callbacks, self._callbacks = self._callbacks, set()
        for callback in callbacks:
            callback()


def _nothing() -> None:
    pass


class ShutdownNotice:
    """ASGI middleware that hands ``shutdown`` to every HTTP request's scope."""

    def __init__(self, app: ASGIApp, shutdown: Shutdown) -> None:
        self.app = app
        self.shutdown = shutdown

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # The app's coroutine is returned as it is: no frame of this
        # middleware is held for as long as each stream lasts.
        if scope["type"] == "http":
            extensions = scope.get("extensions")
            if extensions is None:
                extensions = scope["extensions"] = {}
            extensions[SCOPE_KEY] = self.shutdown
        return self.app(scope, receive, send)


def shutdown_of(scope: Scope) -> Shutdown | None:
    """The server's ``Shutdown`` for this request, if its server announces one."""
    extensions = scope.get("extensions") or {}
    shutdown = extensions.get(SCOPE_KEY)
    return shutdown if isinstance(shutdown, Shutdown) else None
