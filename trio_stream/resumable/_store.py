"""What a resumable stream is kept in: the ``StreamStore`` protocol.

A store holds, per stream id, the bytes a run's encoder produced, in order,
and whether the run is still producing. The producer appends; any number of
readers, in this process or another, read from a byte offset and follow the
live tail until the stream ends. Bytes, not chunks: a reader that resumes
at the offset where its connection broke gets exactly the bytes it missed,
whatever the wire format, and what it decodes from the whole is what an
uninterrupted client decodes.

A store keeps nothing but bytes and a status; the producer (see
``ResumableStreams``) decides what to write, and enforces the size bound.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .._errors import TrioStreamError

__all__ = [
    "ProducerLostError",
    "StoreError",
    "StreamExistsError",
    "StreamInfo",
    "StreamNotFoundError",
    "StreamStatus",
    "StreamStore",
]

StreamStatus = Literal["running", "done", "failed", "cancelled"]
"""``running`` while the producer writes; the other three are final."""


class StoreError(TrioStreamError, RuntimeError):
    """The store cannot be used: unreachable, or lost mid-stream."""


class StreamNotFoundError(TrioStreamError, LookupError):
    """No stream has this id: it never existed, expired, or was deleted."""


class StreamExistsError(TrioStreamError, ValueError):
    """A stream with this id exists already."""


class ProducerLostError(StoreError):
    """The stream is still marked running, but its producer stopped renewing its lease.

    The process running it died, or lost the store: nothing will be appended.
    """


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a store knows of one stream."""

    stream_id: str
    media_type: str
    """The wire format's media type, for a resumed response on any worker."""
    headers: tuple[tuple[str, str], ...]
    """The wire format's own response headers."""
    endings: Mapping[str, bytes]
    """The bytes that end the stream in its format when it breaks off, by why it does:
    ``"gone"`` (deleted or expired), ``"producer-lost"``, ``"store-lost"``.

    Made by the producer's encoder (with its options) when the stream starts,
    so that a reader on any worker ends a broken stream in its format
    without knowing the encoder."""
    status: StreamStatus
    size: int
    """Bytes appended so far."""


class StreamStore(Protocol):
    """Where resumable streams live; ``MemoryStore`` and ``RedisStore`` implement it.

    Each stream has one producer, which calls ``create``, then ``append``
    with consecutive offsets and ``renew`` at least every ``lease / 3``
    seconds, then ``finish``. Every method raises ``StoreError`` when the
    store cannot be reached.
    """

    lease: float
    """Seconds a producer's lease lasts without ``renew``."""

    async def create(
        self,
        stream_id: str,
        *,
        media_type: str,
        headers: Sequence[tuple[str, str]],
        endings: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        """Record a new, running stream, kept for ``ttl`` seconds after its last write.

        Raises ``StreamExistsError`` if the id is taken.
        """
        ...

    async def append(self, stream_id: str, offset: int, data: bytes) -> None:
        """Add ``data`` (not empty) at byte ``offset``, which is the stream's size so far,
        and keep the stream ``ttl`` seconds from now (the last ``ttl`` given).

        An append is sent again when its first attempt may or may not have
        been applied (it was cancelled, or its reply lost): if the stream
        already ends with ``data`` at ``offset``, nothing is added, and the
        call succeeds. Raises ``ValueError``, leaving the stream as it was,
        for any other ``offset``, and once the stream has finished.
        """
        ...

    async def renew(self, stream_id: str, ttl: float) -> None:
        """Extend the producer's lease, and the stream's ``ttl``."""
        ...

    async def finish(self, stream_id: str, status: StreamStatus, ttl: float) -> None:
        """Mark the stream ended with ``status`` (not ``running``: ``ValueError``); it
        stays readable for ``ttl`` seconds."""
        ...

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's record, or ``None`` if there is no such stream."""
        ...

    def read(self, stream_id: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The stream's bytes from ``offset``: those stored, then live ones as they are
        appended, until the stream ends.

        Raises ``StreamNotFoundError`` (before yielding) for an unknown id,
        ``ProducerLostError`` if the producer's lease runs out while the
        stream is running, and ``StoreError`` if the store is lost. An offset
        past the end of a finished stream yields nothing. Close the iterator
        (``aclosing``) when leaving early.
        """
        ...

    async def request_cancel(self, stream_id: str) -> bool:
        """Ask the stream's producer, wherever it runs, to cancel the run.

        Returns whether the stream exists and was running.
        """
        ...

    async def wait_cancel_requested(self, stream_id: str) -> None:
        """Return when ``request_cancel`` has been called for the stream."""
        ...

    async def delete(self, stream_id: str) -> None:
        """Forget the stream; readers following it end with ``StreamNotFoundError``."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections."""
        ...
