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
import math

import anyio
import trio

from .._buffer import ChunkBuffer
from .._run import ChunkStream
from ..chunks import Chunk

__all__ = ["ScopedSilence", "Silence", "TimedSilence", "watch_silence"]


class TimedSilence:
    """A stream's silence, watched by the event loop's ``_Timer`` (Trio)."""

    __slots__ = ("buffer", "interval", "last")

    def __init__(self, buffer: ChunkBuffer, interval: float) -> None:
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
        # The timer drops the entry when it comes up; until then it holds
        # nothing of the stream's.
        self.buffer = None


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
    """One task per Trio run that wakes the streams whose silence is due."""

    __slots__ = ("_due", "_sleep")

    def __init__(self) -> None:
        self._due: list[tuple[float, int, TimedSilence]] = []
        self._sleep: trio.CancelScope | None = None

    def add(self, silence: TimedSilence) -> None:
        due = silence.last + silence.interval
        heapq.heappush(self._due, (due, id(silence), silence))
        sleep = self._sleep
        if sleep is not None and due < sleep.deadline:
            sleep.deadline = due

    async def run(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._due[0][0] if self._due else math.inf) as sleep:
                self._sleep = sleep
                await trio.sleep_forever()
            self._sleep = None
            self._wake_due(trio.current_time())

    def _wake_due(self, now: float) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, key, silence = heapq.heappop(due)
            buffer = silence.buffer
            if buffer is None:
                continue  # the stream has ended
            deadline = silence.last + silence.interval
            if deadline <= now:
                buffer.interrupt_receive()
                deadline = now + silence.interval  # the keep-alive's write moves it on
            heapq.heappush(due, (deadline, key, silence))


_TIMER: trio.lowlevel.RunVar[_Timer] = trio.lowlevel.RunVar("trio_stream heartbeat timer")


def _timer() -> _Timer:
    try:
        return _TIMER.get()
    except LookupError:
        timer = _Timer()
        _TIMER.set(timer)
        # A context of its own: the request that happens to start it must not
        # lend it its log fields or its span for the rest of the run.
        trio.lowlevel.spawn_system_task(
            timer.run, name="trio_stream heartbeats", context=contextvars.Context()
        )
        return timer


def watch_silence(chunks: ChunkStream, interval: float) -> Silence:
    """Start watching a stream's silence; ``close()`` the result when the stream ends."""
    if not trio.lowlevel.in_trio_run():
        return ScopedSilence(interval)
    silence = TimedSilence(chunks._buffer, interval)
    _timer().add(silence)
    return silence
