"""Waiting for a run's next batch, with a keep-alive after each silence of ``interval``.

The plain way to send a heartbeat is a timeout around every wait for chunks:
a cancel scope entered and left per batch, and held for as long as the wait
lasts, which on a paced stream is nearly always. With thousands of streams
open, those scopes are a good share of a worker's objects and of the time it
spends per token. On Trio, a stream's silence is instead a deadline kept by
one timer task for the whole event loop (``_Timer``): a write only notes the
time it ended, and the timer, which keeps one entry per stream, wakes a stream
whose last write is ``interval`` old (``ChunkBuffer.interrupt_receive``). An
entry whose stream wrote since is moved to its new deadline when it comes up,
so the timer does work once per stream and interval, not per token.

On any other event loop, a timeout around each wait does the job
(``ScopedSilence``): asyncio's timeouts are cheap handles, not scopes.
"""

from __future__ import annotations

import contextvars
import heapq

import anyio
import trio

from .._buffer import ChunkBuffer
from .._run import ChunkStream
from ..chunks import Chunk

__all__ = ["ScopedSilence", "Silence", "TimedSilence", "watch_silence"]


class TimedSilence:
    """A stream's silence, watched by the event loop's ``_Timer`` (Trio)."""

    __slots__ = ("_timer", "buffer", "interval", "last")

    def __init__(self, timer: _Timer, buffer: ChunkBuffer, interval: float) -> None:
        self._timer = timer
        self.buffer: ChunkBuffer | None = buffer
        self.interval = interval
        self.last = trio.current_time()
        """When the last write ended (or the watch began)."""

    async def next_batch(self, chunks: ChunkStream, limit: int) -> list[Chunk] | None:
        """The next batch, or ``None`` once the silence has lasted ``interval``."""
        buffer = chunks._buffer  # straight to the queue: one frame less per waiting stream
        while True:
            batch = await buffer.receive_batch(limit)
            if batch:
                return batch
            if trio.current_time() >= self.last + self.interval:
                return None

    def wrote(self, at: float) -> None:
        self.last = at

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer = None
            self._timer.ended()


class ScopedSilence:
    """A stream's silence, as a timeout around each wait (any event loop)."""

    __slots__ = ("interval",)

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def next_batch(self, chunks: ChunkStream, limit: int) -> list[Chunk] | None:
        with anyio.move_on_after(self.interval):
            return await chunks.receive_batch(limit)
        return None

    def wrote(self, at: float) -> None:
        pass

    def close(self) -> None:
        pass


Silence = TimedSilence | ScopedSilence


class _Timer:
    """One task per Trio run that wakes the streams whose silence is due.

    Its entries are dropped lazily: an ended stream's when it comes up, or
    all of them at once when they are half of what it holds, so that it
    holds little more than the streams open. With none left, the task ends;
    the next stream with a heartbeat starts another.
    """

    __slots__ = ("_due", "_ended", "_sleep")

    def __init__(self) -> None:
        self._due: list[tuple[float, int, TimedSilence]] = []
        self._ended = 0  # entries of streams that have ended
        self._sleep: trio.CancelScope | None = None

    def add(self, silence: TimedSilence) -> None:
        due = silence.last + silence.interval
        heapq.heappush(self._due, (due, id(silence), silence))
        sleep = self._sleep
        if sleep is not None and due < sleep.deadline:
            sleep.deadline = due

    def ended(self) -> None:
        self._ended += 1
        if self._ended * 2 >= len(self._due):
            self._due = [entry for entry in self._due if entry[2].buffer is not None]
            heapq.heapify(self._due)
            self._ended = 0
            if not self._due and self._sleep is not None:
                self._sleep.cancel()  # nothing left to watch: the task ends

    async def run(self) -> None:
        while self._due:
            with trio.CancelScope(deadline=self._due[0][0]) as sleep:
                self._sleep = sleep
                await trio.sleep_forever()
            self._sleep = None
            self._wake_due(trio.current_time())
        _TIMER.set(None)

    def _wake_due(self, now: float) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, key, silence = heapq.heappop(due)
            buffer = silence.buffer
            if buffer is None:
                self._ended -= 1
                continue
            deadline = silence.last + silence.interval
            if deadline <= now:
                buffer.interrupt_receive()
                deadline = now + silence.interval  # the keep-alive's write moves it on
            heapq.heappush(due, (deadline, key, silence))


_TIMER: trio.lowlevel.RunVar[_Timer | None] = trio.lowlevel.RunVar(
    "trio_stream heartbeat timer", default=None
)


def _timer() -> _Timer:
    timer = _TIMER.get()
    if timer is None:
        timer = _Timer()
        _TIMER.set(timer)
        # A context of its own: the request that happens to start it must not
        # lend it its log fields or its span for as long as it runs.
        trio.lowlevel.spawn_system_task(
            timer.run, name="trio_stream heartbeats", context=contextvars.Context()
        )
    return timer


def watch_silence(chunks: ChunkStream, interval: float) -> Silence:
    """Start watching a stream's silence; ``close()`` the result when the stream ends."""
    if not trio.lowlevel.in_trio_run():
        return ScopedSilence(interval)
    timer = _timer()
    silence = TimedSilence(timer, chunks._buffer, interval)
    timer.add(silence)
    return silence
