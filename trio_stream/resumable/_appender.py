"""How a producer writes its run into the store: once, in order, within the stream's limits.

The producer's writes go through an ``Appender``, which knows what the store
holds (an append cut short is sent again: see ``StreamStore.append``),
enforces the limits the app set (bytes, writes, bytes a chunk), and notices
when the stream is no longer its own: deleted, or expired, and perhaps
started again under the same id by someone else. It then stops the run
rather than write into a stream that is not its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from .._errors import TrioStreamError
from .._telemetry import measured
from ..chunks import Chunk
from ..formats import StreamEncoder
from ._store import StreamNotFoundError, StreamStore

__all__ = ["Appender", "Limits", "StreamTooLargeError", "Superseded", "encoding_chunk_by_chunk"]


class StreamTooLargeError(TrioStreamError, RuntimeError):
    """A resumable run wrote more than its stream may hold: bytes, writes, or one chunk."""


class Superseded(StreamNotFoundError):
    """The producer's stream is gone: deleted or expired, and maybe started again.

    Nothing more of the run may be written under its id, its end included.
    """


class Limits:
    """The bounds of one stream; ``None`` is unbounded."""

    __slots__ = ("max_bytes", "max_chunk_bytes", "max_entries")

    def __init__(self, max_bytes: int, max_chunk_bytes: int | None, max_entries: int | None):
        self.max_bytes = max_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.max_entries = max_entries


class _ChunkByChunk(StreamEncoder):
    """Encodes a batch one chunk at a time, keeping each chunk's bytes, so that a bound
    on one chunk can be checked; the bytes are those of the batch (see
    ``StreamEncoder.encode``)."""

    media_type: ClassVar[str] = ""

    def __init__(self, encoder: StreamEncoder) -> None:
        self.encoder = encoder
        self.last: tuple[bytes, list[bytes]] | None = None
        """The last batch encoded, whole and chunk by chunk."""

    def start(self) -> bytes:
        return self.encoder.start()

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        pieces = [self.encoder.encode([chunk]) for chunk in chunks]
        body = b"".join(pieces)
        self.last = (body, pieces)
        return body

    def finish(self) -> bytes:
        return self.encoder.finish()

    def pieces(self, data: bytes) -> list[bytes]:
        """``data`` by chunk, if it is the last batch encoded; else as one piece."""
        last, self.last = self.last, None
        if last is not None and last[0] is data:
            return last[1]
        return [data]


def encoding_chunk_by_chunk(encoder: StreamEncoder) -> _ChunkByChunk:
    """``encoder``, encoding a batch chunk by chunk; its class has ``encoder``'s
    media type, headers and keep-alive, which a response reads from the class."""
    kind = type(encoder)
    attributes = {
        "media_type": kind.media_type,
        "headers": kind.headers,
        "keepalive": kind.keepalive,
        "default_heartbeat": kind.default_heartbeat,
    }
    bounded: _ChunkByChunk = type(f"ChunkByChunk{kind.__name__}", (_ChunkByChunk,), attributes)(
        encoder
    )
    return bounded


class Appender:
    """Appends a run's bytes to its stream, knowing what the store holds.

    An append that raised, cancelled or not, may have been applied all the
    same: a cancellation can land after the store applied it and before its
    reply came. Its bytes are kept as ``unsure`` and sent again, at the same
    offset, before anything else; the store takes them if it lacks them and
    accepts them unchanged if it has them (see ``StreamStore.append``). So
    every byte the encoder produced is stored once, in order, and the next
    append's offset is right either way.

    A store that refuses an append (``ValueError``: the offset is not the
    stream's size, or the stream has ended) or does not know the stream any
    more has a stream that is not this producer's: ``Superseded``.
    """

    def __init__(
        self,
        store: StreamStore,
        stream_id: str,
        limits: Limits,
        *,
        chunks: _ChunkByChunk | None = None,
        appended: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.store = store
        self.stream_id = stream_id
        self.limits = limits
        self.chunks = chunks
        self.appended = appended
        self.stored = 0
        """Bytes the store has confirmed."""
        self.writes = 0
        """The run's writes stored (not counting the stream's closing bytes)."""
        self.unsure = b""
        """The bytes of an append that may or may not have been applied."""

    async def write(self, data: bytes) -> None:
        """Append the run's ``data``, within the stream's limits.

        ``StreamTooLargeError`` if it would exceed one; the chunks of ``data``
        before a chunk over ``max_chunk_bytes`` are stored first.
        """
        limits = self.limits
        if limits.max_chunk_bytes is not None and self.chunks is not None:
            pieces = self.chunks.pieces(data)
            for index, piece in enumerate(pieces):
                if len(piece) > limits.max_chunk_bytes:
                    await self._write(b"".join(pieces[:index]))
                    raise StreamTooLargeError(
                        f"a chunk of {len(piece)} bytes is more than the stream's bound "
                        f"of {limits.max_chunk_bytes} bytes a chunk"
                    )
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        limits = self.limits
        if self.stored + len(self.unsure) + len(data) > limits.max_bytes:
            raise StreamTooLargeError(
                f"the stream grew past its bound of {limits.max_bytes} bytes"
            )
        if limits.max_entries is not None and self.writes >= limits.max_entries:
            raise StreamTooLargeError(
                f"the stream reached its bound of {limits.max_entries} writes"
            )
        await self.append(data)
        self.writes += 1

    async def append(self, data: bytes) -> None:
        """Append ``data`` (which may be empty), after the unsure append if there is one."""
        for piece in (self.unsure, data):
            if piece:
                self.unsure = piece
                try:
                    await measured("append", self.store.append(self.stream_id, self.stored, piece))
                except (ValueError, StreamNotFoundError) as exc:
                    raise self.superseded() from exc
                self.stored += len(piece)
                self.unsure = b""
                self.appended(len(piece))

    def superseded(self) -> Superseded:
        return Superseded(
            f"stream {self.stream_id!r} is no longer this producer's: it was deleted or "
            "expired while its run wrote to it (and may have been started again)"
        )
