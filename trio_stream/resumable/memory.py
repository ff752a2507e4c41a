"""``MemoryStore``: resumable streams in this process's memory.

For one process: a reconnecting client must reach the worker that runs its
stream. Several workers or hosts share streams through ``RedisStore``.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Final, get_args

import anyio

from ._store import (
    ProducerLostError,
    StreamExistsError,
    StreamInfo,
    StreamNotFoundError,
    StreamStatus,
)

__all__ = ["MemoryStore"]

_FINAL: Final = frozenset(s for s in get_args(StreamStatus) if s != "running")


class _Stream:
    __slots__ = (
        "cancel_requested",
        "changed",
        "endings",
        "expires_at",
        "frames",
        "headers",
        "lease_until",
        "media_type",
        "offsets",
        "size",
        "status",
        "ttl",
    )

    def __init__(
        self,
        media_type: str,
        headers: tuple[tuple[str, str], ...],
        endings: Mapping[str, bytes],
    ) -> None:
        self.media_type = media_type
        self.headers = headers
        self.endings = dict(endings)
        self.frames: list[bytes] = []
        self.offsets: list[int] = []  # where each frame starts
        self.size = 0
        self.status: StreamStatus = "running"
        self.ttl = math.inf
        self.expires_at = math.inf
        self.lease_until = math.inf
        self.cancel_requested = anyio.Event()
        # Set and replaced at every change: readers wait on the current one.
        self.changed = anyio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def keep(self, ttl: float) -> None:
        """Keep the stream ``ttl`` seconds from now, and after every later write."""
        self.ttl = ttl
        self.expires_at = time.monotonic() + ttl

    def ends_with(self, data: bytes) -> bool:
        """Whether the stream's last ``len(data)`` bytes are ``data``."""
        tail: list[bytes] = []
        missing = len(data)
        for frame in reversed(self.frames):
            if missing <= 0:
                break
            tail.append(frame)
            missing -= len(frame)
        return b"".join(reversed(tail))[-len(data) :] == data


class MemoryStore:
    """Streams kept in a dict, for the life of the process.

    ``lease`` bounds how long a stream may stay running without its producer
    renewing it; in one process a producer cannot die without the store, so
    it matters only for a producer that hangs.
    """

    def __init__(self, *, lease: float = 15.0) -> None:
        self.lease = lease
        self._streams: dict[str, _Stream] = {}

    def _get(self, stream_id: str) -> _Stream | None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.expires_at <= time.monotonic():
            del self._streams[stream_id]
            stream.notify()
            return None
        return stream

    def _require(self, stream_id: str) -> _Stream:
        stream = self._get(stream_id)
        if stream is None:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        return stream

    def _sweep(self) -> None:
        now = time.monotonic()
        for stream_id in [key for key, s in self._streams.items() if s.expires_at <= now]:
            self._streams.pop(stream_id).notify()

    async def create(
        self,
        stream_id: str,
        *,
        media_type: str,
        headers: Sequence[tuple[str, str]],
        endings: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        self._sweep()
        if stream_id in self._streams:
            raise StreamExistsError(f"a stream {stream_id!r} exists already")
        stream = _Stream(media_type, tuple(headers), endings)
        stream.keep(ttl)
        stream.lease_until = time.monotonic() + self.lease
        self._streams[stream_id] = stream

    async def append(self, stream_id: str, offset: int, data: bytes) -> None:
        if not data:
            raise ValueError("append needs bytes to add")
        stream = self._require(stream_id)
        if stream.status != "running":
            raise ValueError(f"stream {stream_id!r} has finished ({stream.status})")
        if offset == stream.size:
            stream.frames.append(bytes(data))
            stream.offsets.append(offset)
            stream.size += len(data)
            stream.notify()
        elif offset + len(data) != stream.size or not stream.ends_with(data):
            raise ValueError(
                f"append at {offset}, but stream {stream_id!r} has {stream.size} bytes"
            )
        # Else the same append again, already applied: nothing to add.
        stream.keep(stream.ttl)

    async def renew(self, stream_id: str, ttl: float) -> None:
        stream = self._require(stream_id)
        stream.keep(ttl)
        stream.lease_until = time.monotonic() + self.lease

    async def finish(self, stream_id: str, status: StreamStatus, ttl: float) -> None:
        if status not in _FINAL:
            raise ValueError(f"a stream ends done, failed or cancelled, not {status!r}")
        stream = self._require(stream_id)
        stream.status = status
        stream.keep(ttl)
        stream.notify()

    async def info(self, stream_id: str) -> StreamInfo | None:
        stream = self._get(stream_id)
        if stream is None:
            return None
        return StreamInfo(
            stream_id,
            stream.media_type,
            stream.headers,
            stream.endings,
            stream.status,
            stream.size,
        )

    async def read(self, stream_id: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        stream = self._require(stream_id)
        # The frame holding ``offset``, and where in it to start.
        index = max(bisect.bisect_right(stream.offsets, offset) - 1, 0)
        while True:
            while index < len(stream.frames):
                frame, start = stream.frames[index], stream.offsets[index]
                index += 1
                if start + len(frame) > offset:
                    yield frame[max(offset - start, 0) :]
            if stream.status != "running":
                return
            changed = stream.changed
            with anyio.move_on_after(max(stream.lease_until - time.monotonic(), 0)):
                await changed.wait()
            if self._get(stream_id) is not stream:
                raise StreamNotFoundError(f"stream {stream_id!r} was deleted or expired")
            if (
                stream.status == "running"
                and index == len(stream.frames)
                and stream.lease_until <= time.monotonic()
            ):
                raise ProducerLostError(
                    f"stream {stream_id!r} is running, but its producer stopped renewing its lease"
                )

    async def request_cancel(self, stream_id: str) -> bool:
        stream = self._get(stream_id)
        if stream is None or stream.status != "running":
            return False
        stream.cancel_requested.set()
        return True

    async def wait_cancel_requested(self, stream_id: str) -> None:
        await self._require(stream_id).cancel_requested.wait()

    async def delete(self, stream_id: str) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.notify()

    async def aclose(self) -> None:
        self._streams.clear()
