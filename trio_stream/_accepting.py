"""hypercorn's HTTP connections on Trio, fed by an accept loop of our own.

hypercorn's Trio worker accepts through ``trio.serve_listeners``, which takes
one connection per pass of the scheduler. When a burst of clients arrives
(thousands of chat streams opened at once), the rest wait in the kernel's
queue while every pass also serves the streams already open, and each
connection starts on its own. Here each listening socket is drained at every
wake, up to ``ACCEPT_BATCH`` connections, as asyncio's and uvloop's servers
do. Measured at 5,000 paced streams opened at most 1,000 at a time, the last
one started after 3.1-3.4 s instead of 5.1-5.4 s (docs/benchmarks.md).

Everything after accepting is hypercorn's own: HTTP/1.1 and HTTP/2 on each
connection (``TCPServer``), TLS, keep-alive, the lifespan protocol
(``Lifespan``), the request budget of ``max_requests`` and the graceful
drain (``WorkerContext``). ``run`` takes hypercorn's place as
``hypercorn.trio.serve`` would be called, and keeps its order: the app
starts, the sockets are bound and the URLs reported; when the trigger
fires, accepting stops and the sockets close, the open connections get
``config.graceful_timeout`` seconds, and then the app shuts down.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app
from starlette.types import ASGIApp

from ._telemetry import log_extra

__all__ = ["ACCEPT_BATCH", "check", "run"]

logger = logging.getLogger("trio_stream")

ACCEPT_BATCH = 64
"""Connections accepted from one socket at most per wake, before others get a turn."""

_SKIPPED = frozenset(
    getattr(errno, name)
    for name in (
        *("ECONNABORTED", "EPERM", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN"),
        *("ENONET", "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH"),
    )
    if hasattr(errno, name)
)
"""Errors of one queued connection, not of the socket: its client gave up before it was
accepted, or a firewall refused it, or (on Linux) its network failed meanwhile. The
next one is accepted as usual."""

_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
"""Errors that say the process or the kernel is out of room: wait, then try again."""

_EXHAUSTED_PAUSE = 0.1

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


def check(config: Config) -> None:
    """Refuse what ``run`` does not serve: HTTP/3 (``quic_bind``)."""
    if config.quic_bind:
        raise ValueError("trio_stream.serve does not serve HTTP/3: leave quic_bind empty")


async def run(
    app: ASGIApp,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config``'s sockets until ``shutdown_trigger`` returns, then drain.

    ``config`` has passed ``check``.
    """
    config.set_statsd_logger_class(StatsdLogger)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
    state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(_request_budget(config))
    handle = _connection_handler(wrapped, config, context, ConnectionState(state.copy()))
    async with trio.open_nursery() as app_nursery:
        await app_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            try:
                await _accept_until(
                    config, context, shutdown_trigger, connections, handle, task_status
                )
            finally:
                await context.terminated.set()  # idle keep-alive connections close now
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        app_nursery.cancel_scope.cancel()


def _connection_handler(
    app: AppWrapper, config: Config, context: WorkerContext, state: ConnectionState
) -> Handler:
    """Serve one connection with hypercorn's connection handler, then let it go.

    hypercorn's objects of a connection refer to each other (the
    ``TCPServer`` and its protocol, through the protocol's ``send``; its
    task group and locks), so, left as they are, an ended connection is
    freed only when the garbage collector next examines the middle
    generation: thousands of them at once after a burst, and work for the
    collector at every pass until then. Emptying the server's attributes
    once it has returned breaks those cycles, and the connection is freed
    as it ends.
    """

    async def handle(stream: trio.abc.Stream) -> None:
        server = TCPServer(app, config, context, state, stream)  # type: ignore[arg-type]
        try:
            await server.run()
        finally:
            vars(server).clear()

    return handle


async def _accept_until(
    config: Config,
    context: WorkerContext,
    shutdown_trigger: Callable[[], Awaitable[None]],
    connections: trio.Nursery,
    handle: Handler,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """Bind, report the URLs, and accept until the trigger fires or the request budget is spent."""
    sockets = config.create_sockets()
    tls = config.create_ssl_context() if sockets.secure_sockets else None
    listening = [(sock, tls) for sock in sockets.secure_sockets]
    listening += [(sock, None) for sock in sockets.insecure_sockets]
    try:
        urls = []
        for sock, ssl_context in listening:
            sock.listen(config.backlog)
            sock.setblocking(False)
            scheme = "https" if ssl_context is not None else "http"
            urls.append(f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}")
        for url in urls:
            await config.log.info(f"Running on {url} (CTRL + C to quit)")
        task_status.started(urls)
        async with trio.open_nursery() as accepting:
            accepting.start_soon(_cancel_after, shutdown_trigger, accepting.cancel_scope)
            accepting.start_soon(_cancel_after, context.terminate.wait, accepting.cancel_scope)
            for sock, ssl_context in listening:
                accepting.start_soon(_accept, sock, ssl_context, connections, handle)
    finally:
        for sock, _ in listening:
            sock.close()  # new clients are refused while the open ones drain


async def _cancel_after(wait: Callable[[], Awaitable[object]], scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()


async def _accept(
    listener: socket.socket,
    tls: ssl.SSLContext | None,
    connections: trio.Nursery,
    handle: Handler,
) -> None:
    """Start a connection for each client queued on ``listener``, a batch per wake."""
    while True:
        await trio.lowlevel.wait_readable(listener)
        for _ in range(ACCEPT_BATCH):
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                break  # drained
            except OSError as exc:
                if exc.errno in _SKIPPED:
                    continue
                if exc.errno not in _EXHAUSTED:
                    raise
                logger.warning(
                    "accepting a connection failed (%s); trying again in %s s",
                    errno.errorcode.get(exc.errno or 0, exc.errno),
                    _EXHAUSTED_PAUSE,
                    extra=log_extra(),
                )
                await trio.sleep(_EXHAUSTED_PAUSE)
                break
            connections.start_soon(_serve_connection, client, tls, handle)


async def _serve_connection(
    client: socket.socket, tls: ssl.SSLContext | None, handle: Handler
) -> None:
    stream: trio.abc.Stream = trio.SocketStream(trio.socket.from_stdlib_socket(client))
    if tls is not None:
        stream = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
    try:
        await handle(stream)
    finally:
        await trio.aclose_forcefully(stream)


def _request_budget(config: Config) -> int | None:
    """Requests this worker serves before it drains and stops (``config.max_requests``)."""
    if config.max_requests is None:
        return None
    return config.max_requests + random.randint(0, config.max_requests_jitter)
