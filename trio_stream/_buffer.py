"""The queue between a run's producers and the one consumer of its chunks.

Producers are the run's tasks; most of what they call (``append_text``,
``set_response``, state writes) is synchronous, as in assistant-stream, so a
put can never block: it appends and returns. What keeps memory bounded is
the *high-water marks*: every asynchronous producer path (``add_stream``,
``add_tool_call``, ``drain()``, entering a sub-stream) waits while the queue
holds that many chunks or more, or that many characters of text, reasoning,
arguments and file data (a few large chunks weigh as much as many small
ones), and resumes once the consumer has taken it down to half of both. A
producer that only ever appends synchronously is bounded by its own pace
instead: it cannot outrun the consumer for longer than it runs without
awaiting something.

State operations are not queued one by one. They collect in a pending batch
that becomes a single ``update-state`` chunk the moment another chunk is put
(so order is kept) or the consumer finds the queue empty, so a burst of state
writes made in one step reaches the client as one chunk.

Worker threads write through a ``Flusher`` (``trio_stream._flusher``), whose
writes wait in a batch of its own until the event loop takes them in. While
one is attached, the buffer is a ``ThreadsChunkBuffer``: every put first
takes in what the threads wrote, so that it comes before the chunk. Changing
the class rather than testing for flushers in ``put`` keeps that test off the
path of every chunk of every run that has no worker threads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import trio
from anyio.lowlevel import checkpoint

from ._errors import StreamClosedError
from .chunks import (
    Chunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    StateOperation,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallDeltaChunk,
    UpdateStateChunk,
)

__all__ = ["ChunkBuffer", "ThreadsChunkBuffer", "chunk_size"]

_SIZED: dict[type, str] = {
    TextDeltaChunk: "text_delta",
    ReasoningDeltaChunk: "reasoning_delta",
    ToolCallDeltaChunk: "args_text_delta",
    ToolCallArgsTextFinishChunk: "args_text_delta",
    FileChunk: "data",
    ErrorChunk: "error",
}


def chunk_size(chunk: Chunk) -> int:
    """What ``chunk`` weighs against the size high-water mark: its text's length.

    Only the chunks whose size a caller controls piece by piece count (text,
    reasoning, arguments, files, errors); the rest weigh nothing.
    """
    field = _SIZED.get(type(chunk))
    return 0 if field is None else len(getattr(chunk, field))


class ParkedTask:
    """A task waiting for a wake-up at Trio's lowest level: an event, for one waiter.

    The consumer of a paced stream waits for every chunk, so its wait is
    held for most of the stream's life; a ``trio.Event`` per wait is an
    object and a set of waiters more, for a single waiter.
    """

    __slots__ = ("_task",)

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None

    async def wait(self) -> None:
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, raise_cancel: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def set(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)


Wakeup = anyio.Event | trio.Event | ParkedTask


def _primitives() -> tuple[
    Callable[[], Awaitable[None]], Callable[[], Wakeup], Callable[[], Wakeup]
]:
    """The cancellation check, the event type and the reader's wait for the running backend.

    Every chunk passes through ``receive``, and going through
    AnyIO costs about 1.1 µs for the check and 1.5 µs per event on Trio,
    against 0.23 µs and 0.3 µs for Trio's own: most of a chunk's cost.
    """
    if trio.lowlevel.in_trio_run():
        return trio.lowlevel.checkpoint_if_cancelled, trio.Event, ParkedTask
    return anyio.lowlevel.checkpoint_if_cancelled, anyio.Event, anyio.Event


class ChunkBuffer:
    """A FIFO of chunks with synchronous puts and one asynchronous reader.

    A second task waiting to receive while one already is gets
    ``anyio.BusyResourceError``: chunks are delivered to one consumer, in order.
    """

    __slots__ = (
        "_checkpoint_if_cancelled",
        "_chunks",
        "_closed",
        "_flushers",
        "_high_water",
        "_high_water_size",
        "_interrupted",
        "_new_event",
        "_new_reader",
        "_pending",
        "_reader",
        "_size",
        "_writers",
    )

    def __init__(self, high_water: int, high_water_size: int) -> None:
        """Create the buffer; call it from inside the event loop that will use it."""
        if high_water < 1:
            raise ValueError(f"the high-water mark must be at least 1, not {high_water}")
        if high_water_size < 1:
            raise ValueError(f"the size high-water mark must be at least 1, not {high_water_size}")
        self._chunks: deque[Chunk] = deque()
        self._size = 0  # of the queued chunks, as chunk_size counts it
        self._high_water_size = high_water_size
        self._pending: list[StateOperation] = []
        self._high_water = high_water
        self._closed = False
        self._interrupted = False
        self._reader: Wakeup | None = None
        self._writers: Wakeup | None = None
        self._checkpoint_if_cancelled, self._new_event, self._new_reader = _primitives()
        self._flushers: list[Callable[[], None]] = []

    def attach(self, take_in: Callable[[], None]) -> None:
        """Call ``take_in`` before every chunk from now on (see ``ThreadsChunkBuffer``)."""
        self._flushers.append(take_in)
        self.__class__ = ThreadsChunkBuffer

    def detach(self, take_in: Callable[[], None]) -> None:
        """Stop calling ``take_in``; the last one detached makes this a plain buffer again."""
        self._flushers.remove(take_in)
        if not self._flushers:
            self.__class__ = ChunkBuffer

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError("the run has finished; no more chunks can be added")

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            reader.set()

    def _flush_pending(self) -> None:
        operations, self._pending = self._pending, []
        self._chunks.append(UpdateStateChunk(operations=tuple(operations)))

    def put(self, chunk: Chunk, size: int = 0) -> None:
        """Queue ``chunk`` (after any pending state operations). Never blocks.

        ``size`` is ``chunk_size(chunk)``, which the caller often knows already.
        """
        if self._closed:
            self._check_open()
        if self._pending:
            self._flush_pending()
        self._chunks.append(chunk)
        self._size += size
        if self._reader is not None:
            self._wake_reader()

    def interrupt_receive(self) -> None:
        """Have the reader's ``receive_batch`` return, with an empty batch if none is queued.

        A heartbeat timer's way to wake a response that waits for chunks
        (``trio_stream.asgi._heartbeats``), without a cancel scope around
        every wait. A reader that is not waiting returns at its next wait.
        """
        self._interrupted = True
        self._wake_reader()

    def add_operations(self, operations: list[StateOperation]) -> None:
        """Add state operations to the pending batch."""
        self._check_open()
        self._pending.extend(operations)
        self._wake_reader()

    def flush(self) -> None:
        """Turn the pending state operations into a chunk now."""
        if self._pending:
            self._flush_pending()
            self._wake_reader()

    @property
    def full(self) -> bool:
        """Whether ``wait_writable`` would wait: the queue is at or above a high-water mark."""
        return (
            len(self._chunks) >= self._high_water or self._size >= self._high_water_size
        ) and not self._closed

    async def wait_writable(self) -> None:
        """Wait while the queue is at or above either high-water mark.

        Always a checkpoint, so a producer that awaits this between items
        also lets the consumer run.
        """
        await checkpoint()
        while (
            len(self._chunks) >= self._high_water or self._size >= self._high_water_size
        ) and not self._closed:
            if self._writers is None:
                self._writers = self._new_event()
            await self._writers.wait()

    async def receive(self) -> Chunk:
        """The next chunk; ``EndOfStream`` once closed and drained."""
        await self._wait_readable()
        chunk = self._chunks.popleft()
        if self._size:
            self._size = max(self._size - chunk_size(chunk), 0) if self._chunks else 0
        self._release_writers()
        return chunk

    async def receive_batch(self, limit: int) -> list[Chunk]:
        """Every queued chunk, up to ``limit``, waiting only if there is none.

        This is how a response coalesces writes: whatever the producers queued
        while the previous write was in flight leaves in one write, and a
        chunk that arrives alone leaves alone, at once. The batch is empty
        only when ``interrupt_receive`` ended the wait.
        """
        await self._wait_readable(interruptible=True)
        chunks = self._chunks
        if self._pending and len(chunks) < limit:
            # The queue is about to be empty: the state operations made since
            # the last chunk join this batch rather than wait for the next.
            self._flush_pending()
        if len(chunks) <= limit:
            batch = list(chunks)
            chunks.clear()
            self._size = 0
        else:
            batch = [chunks.popleft() for _ in range(limit)]
            if self._size:
                self._size = max(self._size - sum(map(chunk_size, batch)), 0)
        self._release_writers()
        return batch

    async def _wait_readable(self, *, interruptible: bool = False) -> None:
        """Return once a chunk is queued (or, if ``interruptible``, interrupted); a checkpoint."""
        chunks = self._chunks
        if chunks:
            await self._checkpoint_if_cancelled()
            return
        while not chunks:
            if self._pending:
                self._flush_pending()
                await self._checkpoint_if_cancelled()
                return
            if self._closed:
                await checkpoint()
                raise anyio.EndOfStream
            if self._interrupted and interruptible:
                self._interrupted = False
                await self._checkpoint_if_cancelled()
                return
            if self._reader is not None:
                raise anyio.BusyResourceError("receiving chunks from this run")
            reader = self._reader = self._new_reader()
            try:
                await reader.wait()
            finally:
                if self._reader is reader:
                    self._reader = None

    def _release_writers(self) -> None:
        writers = self._writers
        if (
            writers is not None
            and len(self._chunks) <= self._high_water // 2
            and self._size <= self._high_water_size // 2
        ):
            self._writers = None
            writers.set()

    def close(self) -> None:
        """Flush pending operations and mark the end; the reader drains what is left."""
        if self._closed:
            return
        if self._pending:
            self._flush_pending()
        self._closed = True
        self._wake_reader()
        if self._writers is not None:
            self._writers.set()
            self._writers = None


class ThreadsChunkBuffer(ChunkBuffer):
    """A run's buffer while flushers are attached: what threads wrote goes in first.

    Before a chunk, an explicit flush or the end, every attached flusher
    hands over the writes its threads made, in order, so that they come
    before what the event loop writes after them. (Before a state write, the
    run's ``StateTree`` has them handed over too.)
    """

    __slots__ = ()

    def _take_in(self) -> None:
        for take_in in self._flushers:
            take_in()

    def put(self, chunk: Chunk, size: int = 0) -> None:
        self._take_in()
        super().put(chunk, size)

    def flush(self) -> None:
        self._take_in()
        super().flush()

    def close(self) -> None:
        if not self._closed:
            self._take_in()
        super().close()
