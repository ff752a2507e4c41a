"""Delivering a body over ASGI: writes, disconnects, the shutdown cut-off, heartbeats.

Everything a streamed response needs besides its format: a ``send`` whose
refusal means the client left (``body_sender``), work that is cancelled when
the client leaves or the server's cut-off comes (``until_interrupted``), and
the loop that encodes a run's chunks batch by batch and writes them, with
keep-alives in the silences (``write_chunks``).

Writes are coalesced: each write sends every chunk that was queued while the
previous write was in flight, so a fast producer costs one ASGI ``send`` per
batch rather than per token, and a slow one's chunks still leave one by one,
as soon as they are made.

A response also saves the write of its last batch: when a run has ended by
the time its last batch is encoded, those bytes are handed back rather than
written (``write_chunks_but_last``), to leave together with the format's
ending in the body's final message. Every ASGI body message is a write of
its own on the server, and the end of the body one more, so a stream's end
costs two writes instead of three.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

import anyio
import trio
from starlette.types import Receive, Send

from .._errors import HIDDEN_RUN_ERROR, SerializationError, collapse, describe, wire_message
from .._run import ChunkStream
from .._shutdown import Shutdown
from .._taskgroups import TaskGroup, create_task_group
from ..chunks import Chunk, ErrorChunk
from ..formats import StreamEncoder
from ._heartbeats import watch_silence

__all__ = [
    "COALESCE_WINDOW",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "BodySender",
    "ClientGone",
    "HeartbeatOption",
    "Interruption",
    "body_sender",
    "heartbeat_interval",
    "until_interrupted",
    "write_chunks",
    "write_chunks_but_last",
]

DEFAULT_HEARTBEAT_INTERVAL = 15.0
"""Seconds of silence before a keep-alive, when heartbeats are on."""

COALESCE_WINDOW = 0.001
"""Seconds a write may wait for more chunks when the previous write was that recent."""

_BATCH_LIMIT = 1024

HeartbeatOption = float | bool | None
"""Seconds of silence before a keep-alive; ``True``: 15, ``False``, 0: never, ``None``: default."""


def heartbeat_interval(encoder: StreamEncoder, heartbeat: HeartbeatOption) -> float | None:
    """Seconds of silence after which ``encoder``'s keep-alive goes out, or ``None``.

    ``None`` keeps the format's default (``encoder.default_heartbeat``); 0
    turns heartbeats off, as ``False`` does. A format without keep-alive
    bytes has no heartbeat, whatever is asked: there is nothing its clients
    would ignore.
    """
    if heartbeat is None:
        heartbeat = encoder.default_heartbeat
    if heartbeat is True:
        interval = DEFAULT_HEARTBEAT_INTERVAL
    elif heartbeat is False or heartbeat == 0:
        return None
    else:
        interval = float(heartbeat)
        if not math.isfinite(interval) or interval <= 0:
            raise ValueError(
                f"heartbeat must be a positive number of seconds, True, False or None, "
                f"not {heartbeat!r}"
            )
    return interval if encoder.keepalive else None


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

    return _BodySender(send)


class _BodySender:
    """``body_sender``'s result: one slotted object per response, not a closure and its cell."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, body: bytes, *, more_body: bool = True) -> None:
        try:
            await self._send({"type": "http.response.body", "body": body, "more_body": more_body})
        except OSError as exc:
            raise ClientGone from exc


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
    listener = _Listener(receive)
    try:
        async with create_task_group() as request:
            listener.request = request
            request.start_soon(listener.listen)
            withdraw = None
            if shutdown is not None:
                withdraw = shutdown.on_cut_off(listener.cut_off)
            try:
                await work()
            except ClientGone:
                listener.interruption = Interruption("disconnect", time.perf_counter())
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
        return listener.interruption
    raise single


class _Listener:
    """The task group of ``until_interrupted``'s work, and what interrupted it.

    An object with two methods rather than closures: a response holds it for
    its whole life, and thousands of responses are open at once.
    """

    __slots__ = ("interruption", "receive", "request")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.request: TaskGroup | None = None
        self.interruption: Interruption | None = None

    def _interrupt(self, reason: Literal["disconnect", "shutdown"]) -> None:
        self.interruption = Interruption(reason, time.perf_counter())
        assert self.request is not None
        self.request.cancel_scope.cancel()

    async def listen(self) -> None:
        receive = self.receive
        while (await receive())["type"] != "http.disconnect":
            pass
        self._interrupt("disconnect")

    def cut_off(self) -> None:
        self._interrupt("shutdown")


async def write_chunks(
    chunks: ChunkStream,
    encoder: StreamEncoder,
    write: Callable[[bytes], Awaitable[None]],
    heartbeat: float | None,
) -> None:
    """Encode a run's chunks batch by batch and ``write`` each body, until the run ends.

    After ``heartbeat`` seconds without a write, the format's keep-alive is
    written instead (see ``_heartbeats``). A chunk the encoder refuses becomes
    an error chunk and a ``SerializationError``.

    Writes are coalesced. Everything queued while a write was in flight leaves
    in the next one; and when chunks follow each other closer than
    ``COALESCE_WINDOW`` (1 ms), the next write waits out the rest of that
    millisecond first. A producer that yields between chunks (it awaits its
    model, or ``sleep(0)``) would otherwise hand over one chunk per write, and
    a write costs some 50 µs of server and system time: the wait turns
    thousands of writes into a few hundred. A chunk that comes after a pause
    of a millisecond or more goes out at once, so paced tokens are not delayed.
    """
    last = await write_chunks_but_last(chunks, encoder, write, heartbeat)
    if last:
        await write(last)


async def write_chunks_but_last(
    chunks: ChunkStream,
    encoder: StreamEncoder,
    write: Callable[[bytes], Awaitable[None]],
    heartbeat: float | None,
) -> bytes:
    """``write_chunks``, but the body of the run's last batch is returned, not written.

    A batch is the last when the run had ended by the time it was received:
    nothing can follow it, so its bytes can wait for the format's ending and
    go out in the same message (one write less per stream). Returns ``b""``
    when the run's end is only seen after its last body was written. The
    first body is always written at once, even if it is also the last: it is
    the one the client, and the time to the first byte, wait for.
    """
    clock, sleep_until = _clock()
    # The queue's own method: the stream's checks of the limit, and its frame
    # held while a paced stream waits, are not needed here.
    buffer = chunks._buffer
    receive_batch = buffer.receive_batch
    silence = None if heartbeat is None else watch_silence(chunks, heartbeat)
    last_write = -math.inf
    next_batch: list[Chunk] | None = None
    try:
        while True:
            try:
                if silence is None:
                    batch = await receive_batch(_BATCH_LIMIT)
                else:
                    next_batch = await silence.next_batch(chunks, _BATCH_LIMIT)
                    if next_batch is None:
                        await write(encoder.keepalive)
                        silence.wrote(clock())
                        continue
                    batch = next_batch
            except anyio.EndOfStream:
                return b""
            linger_until = last_write + COALESCE_WINDOW
            if len(batch) < _BATCH_LIMIT and linger_until > clock():
                await sleep_until(linger_until)
                if chunks.queued:
                    batch += await receive_batch(_BATCH_LIMIT - len(batch))
            try:
                body = encoder.encode(batch)
            except Exception as exc:
                await _refuse(exc, encoder, write, chunks.expose_errors)
            # Not held while the stream waits for its next batch.
            del batch
            next_batch = None
            if buffer.closed and len(buffer) == 0 and last_write > -math.inf:
                return body  # the run has ended: nothing can follow this batch
            if body:
                await write(body)
                last_write = clock()
                if silence is not None:
                    silence.wrote(last_write)
    finally:
        if silence is not None:
            silence.close()


def _clock() -> tuple[Callable[[], float], Callable[[float], Awaitable[None]]]:
    """The event loop's clock and ``sleep_until``: Trio's own on Trio, cheaper than AnyIO's."""
    if trio.lowlevel.in_trio_run():
        return trio.current_time, trio.sleep_until
    return anyio.current_time, anyio.sleep_until


async def _refuse(
    exc: Exception,
    encoder: StreamEncoder,
    write: Callable[[bytes], Awaitable[None]],
    expose_errors: bool,
) -> NoReturn:
    """Write the error chunk for a chunk the encoder refused, and raise ``SerializationError``."""
    error = SerializationError(f"a chunk could not be encoded for the wire: {describe(exc)}")
    message = wire_message(error, expose=expose_errors, hidden=HIDDEN_RUN_ERROR)
    await write(encoder.encode([ErrorChunk(message)]))
    raise error from exc
