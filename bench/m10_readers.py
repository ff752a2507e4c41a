"""m10 · Readers at scale: thousands of readers of live resumable streams, few connections.

What is measured: one worker (this process, on Trio) follows ``STREAMS``
live streams with ``READERS`` readers (``READERS / STREAMS`` per stream),
each reading its stream with ``RedisStore.read`` as a resumed response does,
through one ``RedisStore`` on a real ``redis-server``. A producer, a process
of its own (``python -m bench.m10_readers produce ...``) with a store of its
own, appends to every stream ``RATE`` times a second (the streams staggered
over the second) for ``SECONDS``, each append carrying the
``time.monotonic_ns()`` read just before it. Each reader reads the same clock
when a frame reaches it: the delay covers the producer's append (a Lua
script, which publishes a notice), the notice reaching the worker on its one
Pub/Sub connection, the worker's read of Redis (one for all the readers of a
stream at the same place), and the readers' wake-up. CLOCK_MONOTONIC is one
clock for every process on Linux, so the two readings compare.

Figures: the 50th and 99th percentiles of the delays of every frame every
reader received, but for the appends of the first two seconds
(target: p99 under 20 ms), and the most connections the
worker held to Redis at once, from ``CLIENT LIST`` sampled every quarter of a
second while the readers wait and read (target: a handful, at most 4; the
store this one replaced held one per waiting reader). Every reader checks
it received every frame of its stream, once, in order.

Two contenders, one worker each, differing in one setting of Python's:
the cyclic garbage collector's thresholds. With CPython's defaults
(``700, 10, 10``), collections come often, and each young one may scan the
state of thousands of waiting readers (a task's frames are created as it
wakes, and only counted against the collector's threshold as new when the
frames they replace are old), pausing the worker for tens of milliseconds,
a full one for over a hundred. Raised (``gc.set_threshold(100_000, 50,
100)``, in the worker and the producer, at start-up), collections come
rarely: what a worker following thousands of streams makes in the steady
state is freed by reference counting (the suite's runs with the collector
off grow by nothing), so nothing is lost by it. ``docs/multi-host.md``
recommends it for such workers.

Three processes share the machine's two cores: Redis, the producer and the
worker. The worker's own CPU time is in the note.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import coredis
import trio

from trio_stream.resumable.redis import RedisStore

from ._results import Figure
from ._servers import free_port, wait_for_port

__all__ = ["measure"]

OURS = "trio-stream · RedisStore, GC thresholds raised"
DEFAULT_GC = "trio-stream · RedisStore, default GC"

RAISED: Final = (100_000, 50, 100)
"""The garbage collector's thresholds a worker with thousands of readers is given."""
WORKER = "m10-worker"
"""The name the worker's connections give Redis, to be counted."""

RATE = 1.0
"""Appends per second per stream."""


START = b"start\n"
"""Every stream's first frame, written before the measurement: a reader that has it has
opened its stream and caught up."""


@dataclass(frozen=True)
class Size:
    streams: int
    readers: int
    seconds: float
    warm_up: float
    """Seconds of appends, from the start, whose delays are not counted: the first
    appends find connections still to open and code paths not yet taken, in both
    processes."""


FULL = Size(streams=1_000, readers=5_000, seconds=20.0, warm_up=2.0)
SMOKE = Size(streams=20, readers=100, seconds=2.0, warm_up=0.5)


# -- Redis -------------------------------------------------------------------


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    """A ``redis-server`` on a free loopback port, keeping nothing on disk; its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("m10 needs redis-server (Debian: apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        arguments += ["--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(
            [executable, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(process, port, 10, lambda: "redis-server did not start")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


def _ids(prefix: str, streams: int) -> list[str]:
    return [f"{prefix}-{index:05}" for index in range(streams)]


# -- the producer (a process of its own) -------------------------------------


async def _produce(url: str, prefix: str, streams: int, seconds: float) -> None:
    """Create the streams, say ``ready``, wait for ``go``, append to each at ``RATE``
    for ``seconds``, finish them all."""
    ids = _ids(prefix, streams)
    async with RedisStore(url, prefix=f"{prefix}:", lease=3600) as store:
        for stream_id in ids:
            await store.create(stream_id, media_type="text/plain", headers=[], endings={}, ttl=600)
            await store.append(stream_id, 0, START)
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        began = trio.current_time()  # Trio's clock, which sleep_until reads

        async def append_to(index: int, stream_id: str) -> None:
            offset, sequence = len(START), 0
            due = began + index / streams / RATE  # staggered over the first second
            while due < began + seconds:
                await trio.sleep_until(due)
                frame = f"{sequence} {time.monotonic_ns()}\n".encode()
                await store.append(stream_id, offset, frame)
                offset += len(frame)
                sequence += 1
                due += 1 / RATE
            await store.finish(stream_id, "done", 600)

        async with anyio.create_task_group() as group:
            for index, stream_id in enumerate(ids):
                group.start_soon(append_to, index, stream_id)


def _producer_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.m10_readers produce")
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("streams", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--gc", type=int, nargs=3, metavar="THRESHOLD")
    args = parser.parse_args(argv)
    if args.gc:
        gc.set_threshold(*args.gc)
    trio.run(_produce, args.url, args.prefix, args.streams, args.seconds)


# -- the worker --------------------------------------------------------------


@dataclass
class _Outcome:
    delays: list[int] = field(default_factory=list)
    opened: int = 0
    counted_from: int = 0
    """Delays of appends made before this ``monotonic_ns`` are not counted (the warm-up)."""
    """Readers that have read their stream's first frame."""
    connections: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    frames: int = 0


async def _follow(store: RedisStore, stream_id: str, outcome: _Outcome) -> None:
    """Read ``stream_id`` to its end, each frame's delay noted; check every frame came
    once, in order."""
    expected = 0
    pending = b""
    async with contextlib.aclosing(store.read(stream_id)) as frames:
        async for frame in frames:
            arrived = time.monotonic_ns()
            pending += frame
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line == START.strip():
                    outcome.opened += 1
                    continue
                sequence, stamp = line.split()
                if int(sequence) != expected:
                    raise RuntimeError(f"{stream_id}: frame {sequence!r}, expected {expected}")
                expected += 1
                if int(stamp) >= outcome.counted_from:
                    outcome.delays.append(arrived - int(stamp))
    outcome.frames += expected


async def _count_connections(inspect: coredis.Redis[bytes], outcome: _Outcome) -> None:
    while True:
        listed = await inspect.client_list()
        held = sum(1 for client in listed if client["name"] == WORKER)
        outcome.connections = max(outcome.connections, held)
        await anyio.sleep(0.25)


async def _all_listened(inspect: coredis.Redis[bytes], prefix: str, ids: list[str]) -> bool:
    """Whether the worker listens to news of every stream (its readers are waiting)."""
    for start in range(0, len(ids), 500):
        channels = [f"{prefix}:{{{stream_id}}}:changed" for stream_id in ids[start : start + 500]]
        counts = await inspect.pubsub_numsub(*channels)
        if any(count < 1 for count in counts.values()):
            return False
    return True


@contextlib.asynccontextmanager
async def _producer(url: str, prefix: str, size: Size) -> AsyncIterator[anyio.abc.Process]:
    command = [sys.executable, "-m", "bench.m10_readers", "produce", url, prefix]
    command += [str(size.streams), str(size.seconds), "--gc", *map(str, gc.get_threshold())]
    async with await anyio.open_process(command, cwd=Path(__file__).parent.parent) as process:
        assert process.stdout is not None
        said = await process.stdout.receive()
        if not said.startswith(b"ready"):
            raise RuntimeError(f"the producer said {said!r}")
        yield process


async def _run(url: str, size: Size) -> _Outcome:
    outcome = _Outcome()
    prefix = f"m10-{secrets.token_hex(3)}"
    ids = _ids(prefix, size.streams)
    async with (
        coredis.Redis.from_url(url, client_name=WORKER) as client,
        coredis.Redis.from_url(url) as inspect,
        RedisStore(client=client, prefix=f"{prefix}:", lease=3600) as store,
        _producer(url, prefix, size) as producer,
        anyio.create_task_group() as sampling,
    ):
        sampling.start_soon(_count_connections, inspect, outcome)
        with anyio.fail_after(size.seconds + 120):
            async with anyio.create_task_group() as readers:
                for index in range(size.readers):
                    readers.start_soon(_follow, store, ids[index % size.streams], outcome)
                # Every reader has opened its stream and waits on its tail.
                while outcome.opened < size.readers or not await _all_listened(  # noqa: ASYNC110
                    inspect, prefix, ids
                ):
                    await anyio.sleep(0.1)
                assert producer.stdin is not None
                cpu, wall = time.process_time(), time.monotonic()
                outcome.counted_from = time.monotonic_ns() + int(size.warm_up * 1e9)
                await producer.stdin.send(b"go\n")
            await producer.wait()
        outcome.cpu_seconds = time.process_time() - cpu
        outcome.wall_seconds = time.monotonic() - wall
        sampling.cancel_scope.cancel()
    expected = size.readers * math.ceil(size.seconds * RATE)
    if producer.returncode != 0 or abs(outcome.frames - expected) > size.readers:
        raise RuntimeError(f"{outcome.frames} frames read of about {expected}")
    return outcome


def _percentile(values: list[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(smoke: bool) -> list[Figure]:
    size, runs = (SMOKE, 1) if smoke else (FULL, 3)
    about = (
        f"{size.readers:,} readers on {size.streams:,} live streams in one worker, "
        f"{RATE:g} append per second per stream for {size.seconds:g} s (the first "
        f"{size.warm_up:g} s not counted), on one redis-server; the producer a process of "
        "its own."
    )
    title = f"{size.readers:,} readers, {size.streams:,} streams"
    p50 = Figure(
        key="readers-delivery-p50",
        title=f"m10 · Delivery, append to reader, median ({title})",
        unit="ms",
        better="lower",
        note=about,
        ours=OURS,
        reference=DEFAULT_GC,
    )
    p99 = Figure(
        key="readers-delivery-p99",
        title=f"m10 · Delivery, append to reader, 99th percentile ({title})",
        unit="ms",
        better="lower",
        target="< 20 ms",
        note=about,
        ours=OURS,
        reference=DEFAULT_GC,
    )
    held = Figure(
        key="readers-connections",
        title=f"m10 · Redis connections held by the worker ({title})",
        unit="connections",
        better="lower",
        target="<= 4 (the store it replaced: one per waiting reader)",
        note=about,
        ours=OURS,
        reference=DEFAULT_GC,
    )
    worst: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with _redis() as url:
        for _ in range(runs):
            for name, thresholds in ((DEFAULT_GC, gc.get_threshold()), (OURS, RAISED)):
                outcome = _with_gc(thresholds, url, size)
                p50.add(name, _percentile(outcome.delays, 0.50) / 1e6)
                p99.add(name, _percentile(outcome.delays, 0.99) / 1e6)
                held.add(name, outcome.connections)
                worst[name] = max(worst.get(name, 0.0), max(outcome.delays) / 1e6)
                busy = outcome.cpu_seconds / outcome.wall_seconds
                cpu[name] = max(cpu.get(name, 0.0), busy)
    p99.met = p99.median(OURS) < 20
    held.met = held.median(OURS) <= 4
    p99.note += (
        " Worst single delay over all runs: "
        + ", ".join(f"{name} {value:.0f} ms" for name, value in worst.items())
        + ". The worker used at most "
        + ", ".join(f"{value:.0%} of a core ({name})" for name, value in cpu.items())
        + ", CPU time over wall time."
    )
    return [p50, p99, held]


def _with_gc(thresholds: tuple[int, int, int], url: str, size: Size) -> _Outcome:
    """One run with the garbage collector's thresholds set to ``thresholds``, in the
    worker (this process) and the producer."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        return trio.run(_run, url, size)
    finally:
        gc.set_threshold(*before)


if __name__ == "__main__":
    if sys.argv[1:2] != ["produce"]:
        raise SystemExit(
            "usage: python -m bench.m10_readers produce URL PREFIX STREAMS SECONDS [--gc N N N]"
        )
    _producer_main(sys.argv[2:])
