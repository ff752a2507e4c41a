"""The Starlette response that streams a run: one request, one run, one body.

The response owns the run's lifetime. It enters the run inside a task group
of its own, next to a task that listens for ``http.disconnect``; when the
client goes away, that task cancels the group, and leaving the run's block
cancels every task of the run and waits for them. Listening matters: a run
waiting on a slow tool writes nothing, and a server only notices a vanished
client when it writes, so without the listener an abandoned run would go on
until its next chunk, or forever.

When the run fails, its error chunk is already in the stream; the response
sends it, then the format's closing bytes and the end of the body, and only
then raises, so the client sees a complete body and the server's error
handling sees the exception.

When the server shuts down gracefully (``trio_stream.serve``), a run still
going at the cut-off is cancelled the same way, and the client is sent an
error chunk saying so and the closing bytes: a complete body, in time.

Writes are coalesced: each write sends every chunk that was queued while the
previous write was in flight, so a fast producer costs one ASGI ``send`` per
batch rather than per token, and a slow one's chunks still leave one by one,
as soon as they are made.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._errors import HIDDEN_RUN_ERROR, SerializationError, collapse, describe, wire_message
from .._run import ChunkStream, Run
from .._shutdown import SHUTDOWN_MESSAGE, Shutdown, shutdown_of
from ..chunks import ErrorChunk
from ._encoder import StreamEncoder

__all__ = [
    "COALESCE_WINDOW",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "BodySender",
    "ClientGone",
    "HeartbeatOption",
    "Interruption",
    "RunResponse",
    "body_sender",
    "heartbeat_interval",
    "until_interrupted",
    "write_chunks",
]

logger = logging.getLogger("trio_stream")

DEFAULT_HEARTBEAT_INTERVAL = 15.0
"""Seconds of silence before a keep-alive, when heartbeats are on."""

COALESCE_WINDOW = 0.001
"""Seconds a write may wait for more chunks when the previous write was that recent."""

_BATCH_LIMIT = 1024

HeartbeatOption = float | bool | None
"""Seconds of silence before a keep-alive; ``True``: 15, ``False``: never, ``None``: default."""


def heartbeat_interval(heartbeat: float | bool) -> float | None:
    if heartbeat is True:
        return DEFAULT_HEARTBEAT_INTERVAL
    if heartbeat is False:
        return None
    interval = float(heartbeat)
    if not math.isfinite(interval) or interval <= 0:
        raise ValueError(
            f"heartbeat must be a positive number of seconds, True, False or None, "
            f"not {heartbeat!r}"
        )
    return interval


class ClientGone(Exception):
    """The server refused a write because the client has disconnected."""


BodySender = Callable[..., Awaitable[None]]
"""``await send_body(body, more_body=True)``; raises ``ClientGone``."""


def body_sender(send: Send) -> BodySender:
    """``send`` for body bytes, with a refused write raised as ``ClientGone``.

    A server refuses writes with ``OSError`` once the client is gone (the
    ASGI way), possibly before the listener has heard the disconnect. The
    distinct type keeps an ``OSError`` of the response's own work (a tool's,
    a store's) from passing for a disconnect.
    """

    async def send_body(body: bytes, *, more_body: bool = True) -> None:
        try:
            await send({"type": "http.response.body", "body": body, "more_body": more_body})
        except OSError as exc:
            raise ClientGone from exc

    return send_body


@dataclass(frozen=True, slots=True)
class Interruption:
    """Why a response's work stopped before it was done, and when."""

    reason: Literal["disconnect", "shutdown"]
    """``"disconnect"``: the client left; ``"shutdown"``: the server's cut-off came."""

    at: float
    """``time.perf_counter()`` when it was noticed."""


async def until_interrupted(
    receive: Receive, work: Callable[[], Awaitable[None]], *, shutdown: Shutdown | None = None
) -> Interruption | None:
    """Run ``work`` next to a task listening for ``http.disconnect``.

    Listening matters: ``work`` that waits on something slow writes nothing,
    and a server notices a vanished client only when it is written to. When
    the client leaves, or ``shutdown``'s cut-off comes, ``work`` is cancelled.
    Returns ``None`` if ``work`` finished, else the interruption; a
    ``ClientGone`` from a write counts as a disconnect.
    """
    interruption: Interruption | None = None
    try:
        async with anyio.create_task_group() as request:

            def interrupt(reason: Literal["disconnect", "shutdown"]) -> None:
                nonlocal interruption
                interruption = Interruption(reason, time.perf_counter())
                request.cancel_scope.cancel()

            async def cancel_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                interrupt("disconnect")

            request.start_soon(cancel_on_disconnect)
            withdraw = None
            if shutdown is not None:
                withdraw = shutdown.on_cut_off(lambda: interrupt("shutdown"))
            try:
                await work()
            except ClientGone:
                interruption = Interruption("disconnect", time.perf_counter())
            finally:
                if withdraw is not None:
                    withdraw()
            request.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # What ``work`` lets out is a ``KeyboardInterrupt`` or ``SystemExit``
        # (or a cancellation); it must leave as itself: a server stops for a
        # bare one, but logs a group as a failed request and serves on.
        single = collapse(group)
        if single is group:
            raise
    else:
        return interruption
    raise single


class RunResponse(Response):
    """Streams a run's chunks as a response body, in the format of an encoder.

    Starlette and FastAPI accept it as a route's return value. ``status_code``,
    ``headers`` and ``background`` work as for any Starlette response; the
    format's own headers are added unless ``headers`` sets them.

    ``encoder`` defaults to a new ``encoder_class()``; pass one to set a
    format's options. ``heartbeat`` sends the format's keep-alive bytes after
    that much silence: ``None`` keeps the format's default, ``True`` means
    every 15 s, ``False`` turns it off.
    """

    encoder_class: ClassVar[type[StreamEncoder] | None] = None
    """The format of a subclass; ``RunResponse`` itself needs an ``encoder``."""

    def __init__(
        self,
        run: Run,
        *,
        encoder: StreamEncoder | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
        heartbeat: HeartbeatOption = None,
    ) -> None:
        if not isinstance(run, Run):
            raise TypeError(
                f"{type(self).__name__} streams a run made by create_run(callback), "
                f"not {type(run).__name__}"
            )
        if encoder is None:
            if self.encoder_class is None:
                raise TypeError("RunResponse needs an encoder: RunResponse(run, encoder=...)")
            encoder = self.encoder_class()
        elif self.encoder_class is not None and not isinstance(encoder, self.encoder_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.encoder_class.__name__}, "
                f"not {type(encoder).__name__}"
            )
        self.run = run
        self.encoder = encoder
        self.heartbeat = heartbeat_interval(
            encoder.default_heartbeat if heartbeat is None else heartbeat
        )
        self.status_code = status_code
        self.media_type = encoder.media_type
        self.background = background
        self.init_headers(headers)
        for name, value in encoder.headers.items():
            self.headers.setdefault(name, value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send_body = body_sender(send)
        path = scope.get("path")
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
        except OSError:
            logger.info("client disconnected from %s: the run was not started", path)
            return
        failure: Exception | None = None

        async def stream() -> None:
            nonlocal failure
            try:
                opening = self.encoder.start()
                if opening:
                    await send_body(opening)
                async with self.run as chunks:
                    await write_chunks(chunks, self.encoder, send_body, self.heartbeat)
            except ClientGone:
                raise
            except Exception as exc:
                failure = exc

        interruption = await until_interrupted(receive, stream, shutdown=shutdown_of(scope))
        if interruption is not None and interruption.reason == "disconnect":
            # Leaving the run's block waited for every task of the run.
            logger.info(
                "client disconnected from %s: run cancelled, all its tasks done in %.1f ms",
                path,
                (time.perf_counter() - interruption.at) * 1000,
            )
        elif interruption is not None:
            logger.warning(
                "server shutting down: the run of %s was cancelled (all its tasks done in "
                "%.1f ms) and its client sent an error chunk",
                path,
                (time.perf_counter() - interruption.at) * 1000,
            )
            with contextlib.suppress(ClientGone):
                closing = self.encoder.encode([ErrorChunk(SHUTDOWN_MESSAGE)])
                await send_body(closing + self.encoder.finish(), more_body=False)
        else:
            # The body's end goes out here, after the listener has stopped: a
            # server reports the end of a response as a disconnect, which must
            # not cancel this last write. Also after a failure: the error chunk
            # went out with the rest, and a client must see a complete body,
            # not a truncated transfer.
            with contextlib.suppress(ClientGone):
                await send_body(self.encoder.finish(), more_body=False)
        if failure is not None:
            try:
                raise failure
            finally:
                del failure
        if self.background is not None:
            await self.background()


async def write_chunks(
    chunks: ChunkStream,
    encoder: StreamEncoder,
    write: Callable[[bytes], Awaitable[None]],
    heartbeat: float | None,
) -> None:
    """Encode a run's chunks batch by batch and ``write`` each body, until the run ends.

    After ``heartbeat`` seconds without a chunk, the format's keep-alive is
    written instead. A chunk the encoder refuses becomes an error chunk and a
    ``SerializationError``.

    Writes are coalesced. Everything queued while a write was in flight leaves
    in the next one; and when chunks follow each other closer than
    ``COALESCE_WINDOW`` (1 ms), the next write waits out the rest of that
    millisecond first. A producer that yields between chunks (it awaits its
    model, or ``sleep(0)``) would otherwise hand over one chunk per write, and
    a write costs some 50 µs of server and system time: the wait turns
    thousands of writes into a few hundred. A chunk that comes after a pause
    of a millisecond or more goes out at once, so paced tokens are not delayed.
    """
    last_write = -math.inf
    while True:
        try:
            if heartbeat is None:
                batch = await chunks.receive_batch(_BATCH_LIMIT)
            else:
                with anyio.move_on_after(heartbeat) as idle:
                    batch = await chunks.receive_batch(_BATCH_LIMIT)
                if idle.cancelled_caught:
                    await write(encoder.keepalive)
                    continue
        except anyio.EndOfStream:
            return
        linger_until = last_write + COALESCE_WINDOW
        if len(batch) < _BATCH_LIMIT and linger_until > anyio.current_time():
            await anyio.sleep_until(linger_until)
            if chunks.queued:
                batch += await chunks.receive_batch(_BATCH_LIMIT - len(batch))
        try:
            body = encoder.encode(batch)
        except Exception as exc:
            error = SerializationError(
                f"a chunk could not be encoded for the wire: {describe(exc)}"
            )
            message = wire_message(error, expose=chunks.expose_errors, hidden=HIDDEN_RUN_ERROR)
            await write(encoder.encode([ErrorChunk(message)]))
            raise error from exc
        if body:
            await write(body)
            last_write = anyio.current_time()
