"""Keep-alives for any stream of bytes: ``add_keepalive`` and ``add_sse_heartbeat``.

The responses of this package send their format's keep-alive themselves
(``heartbeat=``). These two add one to a body made elsewhere: a proxy's
relay, a file being tailed, an encoder driven by hand. After ``interval``
seconds without a piece, ``token`` goes out; every piece, and every token,
starts the silence over.

Waiting for the next piece with a time limit would cancel the wait, and an
async generator whose ``__anext__`` is cancelled is left broken. So the
source is read by a task of its own, which hands each piece over a
zero-capacity channel, and only the receiving end waits with a limit. That
task needs a nursery to live in, which is why these are async context
managers::

    async with add_sse_heartbeat(events(), 15) as body:
        async for piece in body:
            await send(piece)

Leaving the block cancels a read still pending and closes the source
(``aclose``), whether the body was read to its end or not.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager, aclosing
from types import TracebackType
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._taskgroups import TaskGroup, create_task_group, exit_task_group
from ..formats._sse import KEEPALIVE

__all__ = ["KeepAlivePieces", "add_keepalive", "add_sse_heartbeat"]


class KeepAlivePieces:
    """The pieces of the source, with ``token`` in every silence of ``interval`` seconds.

    Iterate it with ``async for`` inside the block that gave it; a failure of
    the source is raised here, as itself, after the pieces it gave.
    """

    __slots__ = ("_failure", "_interval", "_pieces", "_token")

    def __init__(
        self, pieces: MemoryObjectReceiveStream[bytes], interval: float, token: bytes
    ) -> None:
        self._pieces = pieces
        self._interval = interval
        self._token = token
        self._failure: list[BaseException] = []  # what the source raised, set by the reader

    def __aiter__(self) -> KeepAlivePieces:
        return self

    async def __anext__(self) -> bytes:
        with anyio.move_on_after(self._interval):
            try:
                return await self._pieces.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self._failure:
                    raise self._failure.pop() from None
                raise StopAsyncIteration from None
        return self._token


async def _read(
    stream: AsyncIterable[bytes],
    pieces: MemoryObjectSendStream[bytes],
    failure: list[BaseException],
) -> None:
    """Hand every piece of ``stream`` over, then close; keep what it raised for the reader."""
    async with pieces:
        try:
            if hasattr(stream, "aclose"):
                async with aclosing(stream):  # type: ignore[type-var]
                    await _copy(stream, pieces)
            else:
                await _copy(stream, pieces)
        except Exception as exc:
            failure.append(exc)


async def _copy(stream: AsyncIterable[bytes], pieces: MemoryObjectSendStream[bytes]) -> None:
    async for piece in stream:
        if not isinstance(piece, bytes | bytearray | memoryview):
            raise TypeError(f"a keep-alive stream carries bytes, not {type(piece).__name__}")
        await pieces.send(bytes(piece))


def _check_interval(interval: Any) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise TypeError(f"interval must be a number of seconds, not {type(interval).__name__}")
    if not math.isfinite(interval) or interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    return float(interval)


class _KeepAlive:
    """The block that owns the reading task; see ``add_keepalive``."""

    __slots__ = ("_interval", "_reader", "_receive", "_stream", "_token")

    def __init__(self, stream: AsyncIterable[bytes], interval: float, token: bytes) -> None:
        self._stream = stream
        self._interval = interval
        self._token = token
        self._reader: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[bytes] | None = None

    async def __aenter__(self) -> KeepAlivePieces:
        if self._reader is not None:
            raise RuntimeError("a keep-alive block can be entered only once")
        send, receive = anyio.create_memory_object_stream[bytes](0)
        pieces = KeepAlivePieces(receive, self._interval, self._token)
        reader = self._reader = create_task_group()
        await reader.__aenter__()
        reader.start_soon(
            _read, self._stream, send, pieces._failure, name="trio_stream keep-alive"
        )
        self._receive = receive
        return pieces

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        reader, receive = self._reader, self._receive
        assert reader is not None
        assert receive is not None
        reader.cancel_scope.cancel()  # a read still pending, and the source with it
        try:
            return await exit_task_group(reader, exc_type, exc, traceback)
        finally:
            receive.close()


def add_keepalive(
    stream: AsyncIterable[bytes], interval: float, token: bytes
) -> AbstractAsyncContextManager[KeepAlivePieces]:
    """``stream``'s pieces, with ``token`` after every ``interval`` seconds of silence.

    ``token`` must be bytes the body's readers ignore: ``b": heartbeat\\n\\n"``
    for server-sent events (``add_sse_heartbeat``), ``b"\\n"`` for the data
    stream. A failure of ``stream`` is raised by the iteration, as itself.
    """
    seconds = _check_interval(interval)
    if not isinstance(token, bytes) or not token:
        raise TypeError("token must be non-empty bytes, which the body's readers ignore")
    return _KeepAlive(stream, seconds, token)


def add_sse_heartbeat(
    stream: AsyncIterable[bytes], interval: float
) -> AbstractAsyncContextManager[KeepAlivePieces]:
    """``add_keepalive`` with the SSE comment line ``: heartbeat``, which SSE readers skip."""
    return add_keepalive(stream, interval, KEEPALIVE)
