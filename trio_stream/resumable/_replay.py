"""What a producer's store appended lately, to append it again if Redis loses it.

Redis replicates asynchronously: a primary that fails right after an append
may be replaced by a replica that never received it. The producer then finds
the stream shorter than what it was told was stored. Its store, which
remembers the appends it made in the last few seconds, appends the missing
ones again, each the same bytes at the same offset as before, so that the
entries are the ones the readers may already have had: they skip those they
had and read the others. If the loss goes back further than it remembers,
the stream cannot go on.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Final

__all__ = ["Replay"]

WINDOW_SECONDS: Final = 10.0
"""How long an append is remembered: far longer than a replica lags behind its primary."""

WINDOW_BYTES: Final = 256 * 1024
"""The most bytes remembered per stream (but always its last append): what a worker
holds for each stream it produces."""


class _Sent:
    __slots__ = ("held", "pieces")

    def __init__(self) -> None:
        self.pieces: deque[tuple[float, int, bytes]] = deque()  # when, offset, bytes
        self.held = 0


class Replay:
    """The appends this store made in the last ``WINDOW_SECONDS``, per stream."""

    def __init__(self) -> None:
        self._streams: OrderedDict[str, _Sent] = OrderedDict()

    def remember(self, stream_id: str, offset: int, data: bytes) -> None:
        now = time.monotonic()
        sent = self._streams.pop(stream_id, None) or _Sent()
        self._streams[stream_id] = sent  # the most recently used last
        while sent.pieces and sent.pieces[-1][1] >= offset:  # an append sent again
            sent.held -= len(sent.pieces.pop()[2])
        sent.pieces.append((now, offset, data))
        sent.held += len(data)
        while len(sent.pieces) > 1 and (
            sent.held > WINDOW_BYTES or sent.pieces[0][0] < now - WINDOW_SECONDS
        ):
            sent.held -= len(sent.pieces.popleft()[2])
        # Streams no longer appended to (ended, or abandoned) are dropped.
        while self._streams:
            oldest_id, oldest = next(iter(self._streams.items()))
            if oldest.pieces and oldest.pieces[-1][0] >= now - WINDOW_SECONDS:
                break
            del self._streams[oldest_id]

    def since(self, stream_id: str, size: int, end: int) -> list[tuple[int, bytes]] | None:
        """The appends, as they were made, that take a stream from ``size`` bytes to
        ``end``; ``None`` if they are not all remembered."""
        sent = self._streams.get(stream_id)
        if sent is None:
            return None
        pieces = [(offset, data) for _, offset, data in sent.pieces if offset >= size]
        if not pieces or pieces[0][0] != size:
            return None
        expected = size
        for offset, data in pieces:
            if offset != expected:
                return None
            expected += len(data)
        return pieces if expected == end else None

    def end(self, stream_id: str) -> int | None:
        """Where this store's last remembered append to the stream ended."""
        sent = self._streams.get(stream_id)
        if sent is None or not sent.pieces:
            return None
        _, offset, data = sent.pieces[-1]
        return offset + len(data)

    def forget(self, stream_id: str) -> None:
        self._streams.pop(stream_id, None)
