"""How the Redis store's readers follow their streams with few connections and little work.

A reader first reads what is stored, on its own, in batches (``Position``
keeps its place and checks every entry). Once it has caught up, it follows
the stream's *tail* (``Tails``): one task per stream per worker, which
listens for the stream's notices and reads each new batch once, for every
reader of this worker that has caught up with it. Five thousand readers of
a thousand live streams make a thousand reads per round of appends, on the
client's multiplexed connections, not five thousand.

A reader holds at most one batch from its tail (plus the one its client is
being sent): if its client reads too slowly to take the next one, the tail
lets it go, and it reads on its own from where it is, a batch at a time,
until it has caught up again. What a reader holds stays bounded whatever
the producer writes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import TaskGroup

from ._notices import Notices, Watch
from ._store import ProducerLostError, StoreError, StreamNotFoundError

__all__ = ["Entry", "Listener", "Position", "Read", "Tails", "next_count"]

logger = logging.getLogger("trio_stream")

Entry = tuple[bytes, dict[bytes, bytes]]

BATCH_BYTES: Final = 256 * 1024
"""About how many bytes one read asks for: what a reader holds at a time, whatever the
stream's size and however slowly its client reads."""

BATCH_ENTRIES: Final = (16, 256)
"""The first read's count of entries, and the most any asks for. Redis counts entries,
not bytes: later reads ask for as many as ``BATCH_BYTES`` holds, at the size of the
entries read last."""


def next_count(entries: list[Entry], count: int) -> int:
    """How many entries to ask for next, after reading ``entries`` (``count`` if none)."""
    if not entries:
        return count
    held = sum(len(fields.get(b"data", b"")) for _, fields in entries)
    return max(1, min(BATCH_ENTRIES[1], BATCH_BYTES * len(entries) // max(held, 1)))


def frame_start(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0])


def _order(entry_id: bytes) -> tuple[int, int]:
    """An entry id as the pair Redis orders entries by."""
    start, _, sequence = entry_id.partition(b"-")
    return int(start), int(sequence or 0)


@dataclass(frozen=True, slots=True)
class Read:
    """What one read of a stream found: its status, its lease, entries from a place."""

    status: bytes
    leased: bool
    entries: list[Entry]
    asked: int
    """How many entries were asked for: fewer came back, and the stream was read to
    its end."""

    @property
    def to_the_end(self) -> bool:
        return len(self.entries) < self.asked


ReadAfter = Callable[[str, bytes, int], Awaitable[Read]]
"""Reads up to a count of entries of a stream after an entry id."""


class Position:
    """Where a reader is in its stream, and what it accepts next.

    ``cursor`` is the last entry seen, ``expected`` where the next frame
    must start (at or before ``offset``, for the one holding it): a frame
    starting anywhere else means the stream was replaced under the reader,
    and an end anywhere else that Redis lost bytes the reader has had.
    """

    def __init__(self, stream_id: str, offset: int) -> None:
        self.stream_id = stream_id
        self.offset = offset
        self.cursor = b"0-0"
        self.expected: int | None = None
        self.ended = False
        self.count = BATCH_ENTRIES[0]
        self._lease_gone_since: float | None = None

    def take(self, entries: list[Entry]) -> list[bytes]:
        """The bytes ``entries`` add for the reader; ``ended`` once the end is among them."""
        taken = []
        seen = _order(self.cursor)
        for entry_id, fields in entries:
            if _order(entry_id) <= seen:
                continue  # from a tail that was behind this reader
            start = frame_start(entry_id)
            placed = start <= self.offset if self.expected is None else start == self.expected
            data = fields.get(b"data")
            if data is None:
                if b"end" not in fields:  # deleted, by an earlier version of this store
                    raise StreamNotFoundError(f"stream {self.stream_id!r} was deleted")
                if not placed:
                    raise self._lost()
                self.ended = True
                break
            if not placed:
                raise StreamNotFoundError(f"stream {self.stream_id!r} was deleted or replaced")
            self.cursor, self.expected = entry_id, start + len(data)
            if self.expected > self.offset:
                taken.append(data[max(self.offset - start, 0) :])
        self.count = next_count(entries, self.count)
        return taken

    def check(self, read: Read, patience: float) -> None:
        """Raise if the stream, read to its end, cannot go on: finished before the bytes
        the reader has had, or left by its producer.

        A lease found gone counts once it is still gone ``patience`` seconds
        later: a producer riding out a failover renews its lease as soon as
        Redis is back, and may be a moment later than its readers.
        """
        if read.status != b"running":
            raise self._lost()
        if read.leased:
            self._lease_gone_since = None
            return
        now = anyio.current_time()
        if self._lease_gone_since is None:
            self._lease_gone_since = now
        elif now - self._lease_gone_since >= patience:
            raise ProducerLostError(
                f"stream {self.stream_id!r} is running, "
                "but its producer stopped renewing its lease"
            )

    def _lost(self) -> StoreError:
        return StoreError(
            f"stream {self.stream_id!r} ends before byte {self.expected}, which this reader "
            "has read: Redis lost what it had stored after it (a failover to a replica that "
            "had not received it)"
        )


class Listener:
    """A reader following a tail, for the ``with`` block: the read it has been handed
    and not yet taken.

    The reader ``wait``s, then ``take``s what came: a read, an error to raise,
    or ``None`` once the tail has let it go.
    """

    __slots__ = ("detached", "pending", "tail")

    def __init__(self, tail: _Tail) -> None:
        self.tail = tail
        self.pending: Read | Exception | None = None
        self.detached = False
        """Let go by the tail (it could not take a read in time, or the tail ended):
        once it has taken what it holds, the reader reads on its own."""

    def __enter__(self) -> Listener:
        self.tail.listeners.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        tail = self.tail
        tail.listeners.discard(self)
        if not tail.listeners and tail.watch is not None:
            tail.watch.wake()  # nobody left to read for: the tail ends now

    async def wait(self) -> None:
        """Until something has been handed to the listener, or it has been let go."""
        if self.pending is None and not self.detached:
            await self.tail.handed.wait()

    def take(self) -> Read | None:
        """What has arrived: a read, or ``None`` once let go (and holding nothing)."""
        item, self.pending = self.pending, None
        if isinstance(item, Exception):
            # Each reader raises an exception of its own, not one shared by all.
            raise type(item)(*item.args) from item
        return item


class _Tail:
    __slots__ = ("count", "cursor", "handed", "listeners", "stream_id", "watch")

    def __init__(self, stream_id: str, cursor: bytes) -> None:
        self.stream_id = stream_id
        self.cursor = cursor
        self.count = BATCH_ENTRIES[0]
        self.listeners: set[Listener] = set()
        self.watch: Watch | None = None
        self.handed = anyio.Event()
        """Set, and replaced, when the listeners have been handed a read, or let go: one
        event for all of them, rather than one each."""

    def hand(self, item: Read | Exception) -> None:
        for listener in list(self.listeners):
            if listener.pending is None:
                listener.pending = item
            else:
                # Its client reads slowly: it catches up on its own, and nothing
                # waits for it here.
                self.listeners.discard(listener)
                listener.detached = True
        self._wake()

    def let_all_go(self) -> None:
        for listener in self.listeners:
            listener.detached = True
        self.listeners.clear()
        self._wake()

    def _wake(self) -> None:
        self.handed.set()
        self.handed = anyio.Event()


class Tails:
    """The tails of the streams this worker's readers have caught up with: one task each,
    in the store's task group, for as long as it has readers."""

    def __init__(
        self, notices: Notices, read_after: ReadAfter, channel_of: Callable[[str], str]
    ) -> None:
        self._notices = notices
        self._read_after = read_after
        self._channel_of = channel_of
        self._tails: dict[str, _Tail] = {}
        self.group: TaskGroup | None = None
        self.block = 1.0

    def follow(self, stream_id: str, cursor: bytes) -> Listener | None:
        """A listener to the tail of ``stream_id`` from ``cursor``, to follow it in a
        ``with`` block; ``None`` if the tail has read past ``cursor``: read on, then try
        again."""
        tail = self._tails.get(stream_id)
        if tail is None:
            if self.group is None:
                raise StoreError("the store is not open")
            tail = self._tails[stream_id] = _Tail(stream_id, cursor)
            self.group.start_soon(self._run, tail, name=f"trio_stream tail {stream_id}")
        if _order(tail.cursor) > _order(cursor):
            return None
        return Listener(tail)

    async def _run(self, tail: _Tail) -> None:
        """Read the stream for its listeners, a batch per notice, until none is left."""
        try:
            async with self._notices.watching(
                self._channel_of(tail.stream_id), wait=self.block
            ) as watch:
                tail.watch = watch
                polled = False
                while tail.listeners:
                    changed = watch.changed
                    try:
                        read = await self._read_after(tail.stream_id, tail.cursor, tail.count)
                    except Exception as error:  # its listeners raise it
                        tail.hand(error)
                        return
                    if read.entries or polled:
                        tail.cursor = read.entries[-1][0] if read.entries else tail.cursor
                        tail.count = next_count(read.entries, tail.count)
                        tail.hand(read)
                    if any(b"data" not in fields for _, fields in read.entries):
                        return  # the end: its listeners have it
                    polled = False
                    if read.to_the_end:
                        # Quiet: its listeners look at it every ``block`` seconds (is
                        # its producer still there?), and at every notice.
                        with anyio.move_on_after(self.block) as waited:
                            await changed.wait()
                        polled = waited.cancelled_caught
        finally:
            if self._tails.get(tail.stream_id) is tail:
                del self._tails[tail.stream_id]
            tail.let_all_go()
