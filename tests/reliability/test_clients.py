"""Clients that misbehave, and a worker that does not mind.

Each test serves ``server_app`` in a worker process of its own (one
hypercorn worker on Trio), lets clients misbehave against it — leave at
every byte of a stream, send half a request, stop reading, read one byte a
second, open a thousand connections and vanish — and then asks the worker,
through ``/stats``, whether anything outlived them: a run still running, a
tool task alive, a ``Run`` not freed, a task, an open file, heap blocks or
resident memory above its baseline. Meanwhile well-behaved clients stream
next to them and must get every stream whole and on time.

Memory is compared with a baseline taken after a rehearsal of the same
misbehaviour on a smaller scale: the first time a worker serves a kind of
client it fills caches (a traceback's source lines, interned names) and
grows its allocators' pools, once; a leak grows with every client, and the
full run has many times the rehearsal's clients. What is asserted is the
live memory (bytes and blocks allocated and not freed) and, more loosely,
resident memory (see ``server_watch``'s tolerances).
"""

from __future__ import annotations

import itertools
import json
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from .clients_http import (
    FORMATS,
    Ending,
    HttpResponse,
    Target,
    chunk_boundaries,
    connect,
    end_connection,
    fetch,
    fetch_timed,
    parse_response,
    problems,
    raise_open_file_limit,
    read_exactly,
    read_to_end,
    request_bytes,
)
from .figures import Figures
from .load_client import percentile
from .server_watch import (
    Served,
    assert_no_leak,
    record_memory_and_leaks,
    served,
)

ENDINGS: tuple[Ending, ...] = ("close", "reset", "half-close")

SHORT_RUN: dict[str, Any] = {
    "chunks": 4,
    "pace": 0.003,
    "tools": 2,
    "steps": 1,
    "tool_pace": 0.003,
}
"""A run of a few dozen milliseconds: four text deltas, two tools with a sub-stream
and a nested tool each, a call with streamed arguments."""

SHORT = {"chunks": 4, "tools": 2, "steps": 1}
"""What a whole ``SHORT_RUN`` body holds, for ``problems``."""

PACED_RUN: dict[str, Any] = {**SHORT_RUN, "chunks": 10, "pace": 0.02}
"""What a well-behaved client streams next to the misbehaving ones: 10 deltas, 20 ms apart."""

PACED = {**SHORT, "chunks": 10}

NEIGHBOUR_LATENCY_BOUND = 0.5
"""Seconds within which a well-behaved client's text deltas must arrive (p99),
however the clients next to it misbehave. Unloaded, they take a millisecond."""

RECEIVE_BUFFER = 4096
"""The receive buffer of a client that stops reading: the smallest window a
client can announce, so the server's writes back up as soon as possible."""


@pytest.fixture(scope="module", autouse=True)
def open_file_limit() -> None:
    """A thousand connections need more descriptors than a default soft limit allows."""
    raise_open_file_limit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    with served(tmp_path) as worker:
        yield worker


# -- clients ------------------------------------------------------------------------


async def leave_at(
    target: Target, request: bytes, cut: int, ending: Ending, receive_buffer: int | None = None
) -> bytes:
    """Send ``request``, read exactly ``cut`` bytes of the response, and leave by ``ending``."""
    stream = await connect(target, receive_buffer=receive_buffer)
    try:
        await stream.send_all(request)
        return await read_exactly(stream, cut)
    finally:
        await end_connection(stream, ending)


class Neighbours:
    """Well-behaved clients streaming ``PACED_RUN`` one after another, next to the
    misbehaving ones, until stopped: every response and every delivery time."""

    def __init__(self, target: Target, clients: int = 2) -> None:
        self.target = target
        self.clients = clients
        self.responses: list[tuple[str, HttpResponse]] = []
        self.delivery: list[float] = []
        self._stop = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(self.clients):
                nursery.start_soon(self._client, FORMATS[index % len(FORMATS)])

    async def _client(self, fmt: str) -> None:
        while not self._stop.is_set():
            response, delivery = await fetch_timed(self.target, f"/stream/{fmt}", PACED_RUN)
            self.responses.append((fmt, response))
            self.delivery += delivery

    def stop(self) -> None:
        self._stop.set()

    def check(self, figures: Figures, section: str) -> None:
        """Every neighbour's stream whole, its deltas on time; the p99 is recorded."""
        assert self.responses, "no well-behaved stream was served"
        for fmt, response in self.responses:
            assert problems(fmt, response, **PACED) == []
        p99 = percentile(self.delivery, 0.99)
        figures.record(section, "well-behaved streams served alongside", len(self.responses))
        figures.record(section, "their delivery p99 (ms)", round(p99 * 1000, 1))
        assert p99 < NEIGHBOUR_LATENCY_BOUND


async def alongside(neighbours: Neighbours, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` while ``neighbours`` stream, then stop them."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(neighbours.run)
        try:
            await work()
        finally:
            neighbours.stop()


async def back_to_baseline(
    server: Served,
    figures: Figures,
    section: str,
    before: dict[str, Any],
    peak_rss: int | None = None,
) -> dict[str, Any]:
    """Wait for the worker to be idle, then assert that nothing outlived the clients."""
    after = await server.settle(before)
    leaks = record_memory_and_leaks(figures, section, before, after, peak_rss)
    if leaks.found:
        names = (await server.get_json("/stats", {"tasks": "1"}))["task_names"]
        raise AssertionError(f"{leaks.describe()}; tasks: {names}")
    assert_no_leak(leaks)
    assert "Traceback" not in server.log()
    return after


def ran(before: dict[str, Any], after: dict[str, Any], key: str) -> int:
    """How much the census count ``key`` went up between two stats."""
    return int(after[key]) - int(before[key])


def cut_points(raw: bytes, every: int) -> list[int]:
    """Offsets to leave a response at: each boundary between two writes and the bytes
    on either side of it, and every ``every``-th byte (1: every byte)."""
    points = set(range(0, len(raw) + 1, every))
    for boundary in chunk_boundaries(raw):
        points.update(point for point in (boundary - 1, boundary, boundary + 1) if point >= 0)
    return sorted(point for point in points if point <= len(raw))


# -- leaving a stream -----------------------------------------------------------------


def test_a_client_leaving_at_any_byte_of_a_stream_stops_its_run_and_leaks_nothing(
    server: Served, figures: Figures, soak: bool
) -> None:
    """Every format, at every byte of the response (headers and chunked framing
    included; in the default run every byte of the data stream and each write's
    edges plus every fifth byte of the others), leaving by a FIN, a reset or a
    half-close: each run stops, every tool task ends, and the worker ends as it
    began, while well-behaved clients stream alongside."""
    section = "disconnects"

    async def main() -> None:
        target = server.target
        await server.warm_up()
        wholes: dict[str, bytes] = {}
        for fmt in FORMATS:
            whole = await fetch(target, "GET", f"/stream/{fmt}", SHORT_RUN)
            assert problems(fmt, whole, **SHORT) == []
            wholes[fmt] = whole.raw
        plan: list[tuple[str, int, Ending]] = []
        for fmt, raw in wholes.items():
            every = 1 if soak or fmt == "data-stream" else 5
            for cut in cut_points(raw, every):
                endings = ENDINGS if soak else (ENDINGS[(cut + len(plan)) % len(ENDINGS)],)
                plan += [(fmt, cut, ending) for ending in endings]
        limiter = trio.CapacityLimiter(24)

        async def leave(fmt: str, cut: int, ending: Ending) -> None:
            async with limiter:
                with trio.fail_after(10):
                    request = request_bytes("GET", f"/stream/{fmt}", SHORT_RUN)
                    await leave_at(target, request, cut, ending)

        async def leave_everywhere(plan: list[tuple[str, int, Ending]]) -> None:
            async with trio.open_nursery() as nursery:
                for fmt, cut, ending in plan:
                    nursery.start_soon(leave, fmt, cut, ending)

        await leave_everywhere(random.Random(1).sample(plan, 400))  # the rehearsal
        before = await server.baseline()
        await server.stats(reset=True)
        neighbours = Neighbours(target)
        await alongside(neighbours, lambda: leave_everywhere(plan))
        peak = (await server.stats())["peak_rss"]
        after = await back_to_baseline(server, figures, section, before, peak)

        figures.add(section, "disconnects tried", len(plan))
        started = ran(before, after, "runs_started")
        cancelled = ran(before, after, "runs_cancelled")
        figures.add(section, "runs stopped by their client leaving", cancelled)
        figures.add(section, "tool tasks stopped", ran(before, after, "tools_cancelled"))
        neighbours.check(figures, section)
        # Every run either ended or was stopped, and the leaving did stop many.
        assert started == ran(before, after, "runs_returned") + cancelled
        assert cancelled > len(plan) // 10
        assert ran(before, after, "tools_cancelled") > 0

    server.run(main, 600 if soak else 120)


def test_a_client_leaving_before_its_request_is_complete_starts_nothing_and_leaks_nothing(
    server: Served, figures: Figures
) -> None:
    """Every prefix of a GET, and of a POST whose JSON body a chat endpoint reads with
    ``parse_body`` (so the client leaves mid-headers and mid-body), then a FIN or a
    reset: no run starts, and nothing is left behind."""
    section = "disconnects"

    async def main() -> None:
        target = server.target
        await server.warm_up()
        body = json.dumps({"messages": [{"role": "user", "content": "Hi " * 40}]}).encode()
        requests = [
            request_bytes("GET", "/stream/data-stream", SHORT_RUN),
            request_bytes("POST", "/chat/data-stream", body=body),
        ]
        endings: tuple[Ending, ...] = ("close", "reset")
        plan = [
            (request, cut, ending)
            for request in requests
            for cut in range(len(request))
            for ending in endings
        ]
        limiter = trio.CapacityLimiter(64)

        async def leave(request: bytes, cut: int, ending: Ending) -> None:
            async with limiter:
                with trio.fail_after(10):
                    stream = await connect(target)
                    await stream.send_all(request[:cut])
                    await trio.sleep(0.01)  # the server has read what was sent
                    await end_connection(stream, ending)

        async def leave_everywhere(plan: list[tuple[bytes, int, Ending]]) -> None:
            async with trio.open_nursery() as nursery:
                for request, cut, ending in plan:
                    nursery.start_soon(leave, request, cut, ending)

        await leave_everywhere(random.Random(3).sample(plan, 200))  # the rehearsal
        before = await server.baseline()
        await leave_everywhere(plan)
        whole = await fetch(target, "POST", "/chat/data-stream", body=body)
        assert problems("data-stream", whole, chunks=8, tools=2, steps=2) == []
        # A client that left mid-body is logged as an error, with a traceback
        # (see test_a_client_leaving_mid_body_is_not_logged_as_a_server_error);
        # what matters here is that it leaves nothing behind.
        after = await server.settle(before)
        leaks = record_memory_and_leaks(figures, "incomplete requests", before, after)
        figures.add(section, "disconnects tried", len(plan))
        assert_no_leak(leaks)
        assert ran(before, after, "runs_started") == 1  # the whole request's only

    server.run(main, 120)


def test_a_client_leaving_mid_body_is_not_logged_as_a_server_error(server: Served) -> None:
    """A client that leaves mid-upload is a client leaving, as it is mid-stream
    (``RunResponse`` logs that at INFO): not a server error with a traceback."""

    async def main() -> None:
        stream = await connect(server.target)
        body = json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode()
        await stream.send_all(request_bytes("POST", "/chat/data-stream", body=body)[:-5])
        await trio.sleep(0.1)
        await end_connection(stream, "close")
        await server.settle(None)

    server.run(main, 30)
    assert "ERROR" not in server.log()


# -- clients that read slowly, or not at all -------------------------------------------


BULK_RUN: dict[str, Any] = {
    "chunks": 1_000_000,
    "text": 16384,
    "drain": 1,
    "tools": 2,
    "steps": 100,
    "tag": "stalled",
}
"""A run that would write 16 GB as fast as its client takes it: 16 KiB text deltas,
waiting for the client between them (``drain``), with two tools alongside."""


async def stalled(target: Target, fmt: str, read: int) -> trio.SocketStream:
    """A client of ``BULK_RUN`` that reads ``read`` bytes, then nothing, with the socket open."""
    stream = await connect(target, receive_buffer=RECEIVE_BUFFER)
    await stream.send_all(request_bytes("GET", f"/stream/{fmt}", BULK_RUN))
    received = await read_exactly(stream, read)
    assert received.startswith(b"HTTP/1.1 200")
    return stream


def produced(stats: dict[str, Any], tag: str) -> int:
    """Characters of text the runs tagged ``tag`` have produced so far."""
    return int(stats["text_chars"].get(tag, 0))


async def until_held_back(server: Served, tag: str, within: float = 15) -> dict[str, Any]:
    """Stats once the runs tagged ``tag`` have produced nothing for half a second."""
    deadline = trio.current_time() + within
    previous = await server.stats()
    while True:
        await trio.sleep(0.5)
        current = await server.stats()
        if produced(current, tag) == produced(previous, tag) or trio.current_time() > deadline:
            return current
        previous = current


def test_a_client_that_stops_reading_holds_back_its_own_run_only(
    server: Served, figures: Figures, soak: bool
) -> None:
    """Eight clients (two per format) read a little of a 16 GB stream, then stop reading
    with the socket open. Each run waits for its client: it stops producing, and
    the worker's memory stays bounded (by the run's high-water marks and one write),
    while well-behaved clients stream on time next to them. When they finally
    close, every run and tool stops and the worker is back at its baseline."""
    section = "stalled readers"
    stallers = 8

    async def main() -> None:
        target = server.target
        await server.warm_up()
        rehearsal = [await stalled(target, "data-stream", 2000) for _ in range(2)]
        await until_held_back(server, "stalled")
        for stream in rehearsal:
            await end_connection(stream, "reset")
        before = await server.baseline()
        await server.stats(reset=True)
        streams = [await stalled(target, FORMATS[i % 4], 2000) for i in range(stallers)]
        held = await until_held_back(server, "stalled")
        neighbours = Neighbours(target)
        await alongside(neighbours, partial(trio.sleep, 30 if soak else 3))
        still = await server.stats()
        for stream, ending in zip(streams, itertools.cycle(ENDINGS)):
            with trio.fail_after(10):
                await end_connection(stream, ending)
        after = await back_to_baseline(server, figures, section, before, still["peak_rss"])

        made = produced(held, "stalled") - produced(before, "stalled")
        growth = still["peak_rss"] - before["rss"]
        figures.record(section, "stalled readers", stallers)
        figures.record(section, "text produced for them (MB)", round(made / 1e6, 1))
        figures.record(section, "worker memory growth at the peak (MiB)", round(growth / 2**20, 1))
        neighbours.check(figures, section)
        # Held back: nothing more was produced while the readers stalled, far
        # less than the 16 GB each run would write, in memory bounded per reader.
        assert produced(still, "stalled") == produced(held, "stalled")
        assert made < stallers * 16 * 2**20
        assert growth < stallers * 4 * 2**20
        assert ran(before, after, "runs_cancelled") == stallers

    server.run(main, 180 if soak else 60)


def test_a_reader_of_one_byte_a_second_is_served_whole_and_nobody_waits_for_it(
    server: Served, figures: Figures, soak: bool
) -> None:
    """One reader per format, with a 4 KiB receive buffer, reads one byte a second
    (for a minute with ``--soak``), then the rest at full speed: its stream
    arrives whole, nothing lost or reordered by the wait. Meanwhile well-behaved
    clients are served on time, and the worker ends at its baseline."""
    section = "slow readers"
    seconds = 60 if soak else 4
    # 8 MB per stream: more than the kernel's socket buffers hold (4 MiB at most).
    run = {"chunks": 8000, "text": 1000, "drain": 1, "tools": 2, "steps": 2, "tag": "slow"}

    async def slow_reader(fmt: str, results: dict[str, HttpResponse]) -> None:
        stream = await connect(server.target, receive_buffer=RECEIVE_BUFFER)
        async with stream:
            await stream.send_all(request_bytes("GET", f"/stream/{fmt}", run))
            received = bytearray()
            for _ in range(seconds):
                received += await read_exactly(stream, 1)
                await trio.sleep(1)
            assert received.startswith(b"HTTP/1.1 200 "[: len(received)])
            received += await read_to_end(stream)
        results[fmt] = parse_response(bytes(received))

    async def main() -> None:
        await server.warm_up()
        for fmt in FORMATS:  # the rehearsal: each stream once, read at full speed
            whole = await fetch(server.target, "GET", f"/stream/{fmt}", run)
            assert problems(fmt, whole, chunks=8000, tools=2, steps=2) == []
        before = await server.baseline()
        await server.stats(reset=True)
        results: dict[str, HttpResponse] = {}

        async def slow_readers() -> None:
            async with trio.open_nursery() as nursery:
                for fmt in FORMATS:
                    nursery.start_soon(slow_reader, fmt, results)
                await trio.sleep(seconds / 2)
                # Half-way, the runs wait on their readers: none has finished.
                assert (await server.stats())["tagged_alive"]["slow"] == len(FORMATS)

        neighbours = Neighbours(server.target)
        await alongside(neighbours, slow_readers)
        peak = (await server.stats())["peak_rss"]
        after = await server.settle(before)
        leaks = record_memory_and_leaks(figures, section, before, after, peak)
        figures.record(section, "seconds reading one byte a second", seconds)
        for fmt in FORMATS:
            assert problems(fmt, results[fmt], chunks=8000, tools=2, steps=2) == []
        neighbours.check(figures, section)
        assert_no_leak(leaks)
        assert ran(before, after, "runs_cancelled") == 0

    server.run(main, seconds + 60)


# -- a thousand connections that vanish ---------------------------------------------------


LONG_RUN: dict[str, Any] = {"chunks": 30, "pace": 1.0, "tools": 2, "steps": 5, "tool_pace": 1.0}
"""A run of 30 s, longer than any hold here: a client that vanishes always stops it."""


class Vanishing:
    """One connection that misbehaves in one of eight ways, then vanishes at ``gone``."""

    KINDS = (
        "silent, then FIN",
        "silent, then reset",
        "half a request, then FIN",
        "half a request, then reset",
        "a stream never read, then FIN",
        "a stream never read, then reset",
        "a stream, a half-close, then gone",
        "gone before the handshake ends",
    )

    def __init__(self, index: int, target: Target) -> None:
        self.kind = self.KINDS[index % len(self.KINDS)]
        self.target = target
        self.request = request_bytes("GET", f"/stream/{FORMATS[index % 4]}", LONG_RUN)
        self.prefix = random.Random(index).randrange(1, len(self.request) - 1)

    @property
    def streams(self) -> bool:
        """Whether it sends a whole request for a stream."""
        return "stream" in self.kind

    @property
    def holds_a_stream(self) -> bool:
        """Whether its stream is still running when it vanishes: it never reads, but
        neither does it tell the server it is done (a half-close does)."""
        return "never read" in self.kind

    async def run(self, opened: trio.Semaphore, gone: trio.Event) -> None:
        if self.kind == "gone before the handshake ends":
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setblocking(False)
                sock.connect_ex((self.target.host, self.target.port))
            opened.release()
            return
        stream = await connect(self.target)
        opened.release()
        if self.kind.startswith("half a request"):
            await stream.send_all(self.request[: self.prefix])
        elif self.streams:
            await stream.send_all(self.request)
            if "half-close" in self.kind:
                await stream.send_eof()
        await gone.wait()
        await end_connection(stream, "reset" if "reset" in self.kind else "close")


def test_a_thousand_connections_that_vanish_leave_nothing_behind(
    server: Served, figures: Figures, soak: bool
) -> None:
    """A thousand connections at once (five thousand with ``--soak``), in eight kinds
    of misbehaviour (silent, half a request, a stream never read, a half-close, gone
    mid-handshake; ending by FIN or reset), held open together, then all gone in
    the same instant. A well-behaved client is served during and after, every run
    the vanished clients started is stopped, and the worker ends at its baseline."""
    section = "vanishing connections"
    count = 5000 if soak else 1000
    hold = 10 if soak else 2

    async def crowd(size: int, hold: float) -> int:
        """``size`` vanishing connections, held ``hold`` s once the server is streaming to
        all that asked; returns the requests in flight at the moment they vanish."""
        connections = [Vanishing(index, server.target) for index in range(size)]
        holders = sum(connection.holds_a_stream for connection in connections)
        opened, gone = trio.Semaphore(0), trio.Event()
        async with trio.open_nursery() as nursery:
            for connection in connections:
                nursery.start_soon(connection.run, opened, gone)
            for _ in connections:
                await opened.acquire()
            await server.until(lambda stats: stats["in_flight"] >= holders, within=60)
            await trio.sleep(hold)
            during = await fetch(server.target, "GET", "/stream/data-stream", SHORT_RUN)
            assert problems("data-stream", during, **SHORT) == []
            in_flight: int = (await server.stats())["in_flight"]
            gone.set()
        return in_flight

    async def main() -> None:
        await server.warm_up()
        await crowd(count, hold)  # the rehearsal: the same crowd
        before = await server.baseline()
        await server.stats(reset=True)
        held = await crowd(count, hold)
        vanished = trio.current_time()
        stopped = await server.until(
            lambda stats: (
                stats["in_flight"] == stats["callbacks_alive"] == stats["tools_alive"] == 0
            ),
            within=30,
        )
        stopped_in = trio.current_time() - vanished
        after_response = await fetch(server.target, "GET", "/stream/openai", SHORT_RUN)
        assert problems("openai", after_response, **SHORT) == []
        after = await back_to_baseline(server, figures, section, before, stopped["peak_rss"])

        crowd_members = [Vanishing(index, server.target) for index in range(count)]
        figures.record(section, "connections opened at once", count)
        figures.record(section, "streams held when they vanished", held)
        figures.record(section, "every run and tool stopped within (ms)", round(stopped_in * 1000))
        assert held == sum(member.holds_a_stream for member in crowd_members)
        # Every run the crowd started was stopped; the two well-behaved ones ended.
        started = ran(before, after, "runs_started")
        assert started >= held + 2
        assert ran(before, after, "runs_cancelled") == started - 2
        assert ran(before, after, "runs_returned") == 2

    server.run(main, 300 if soak else 90)


# -- resumable streams -----------------------------------------------------------------------


RESUMABLE_RUN: dict[str, Any] = {
    "chunks": 6,
    "pace": 0.005,
    "tools": 2,
    "steps": 2,
    "tool_pace": 0.005,
}

RESUMABLE = {"chunks": 6, "tools": 2, "steps": 2}

RESUMABLE_BATCH = 400
"""Resumable streams started, read and deleted together."""


def test_readers_leaving_a_resumable_stream_anywhere_do_not_stop_its_producer(
    server: Served, figures: Figures, soak: bool
) -> None:
    """Resumable streams in every format, each started by a client that leaves at a
    cut point of the response (each write's edges and every sixteenth byte; every
    byte with ``--soak``), and read again by a second client from a random offset
    that leaves too. Every producer runs to the end regardless: each stream, read
    once more from the start, is whole. Deleted, they leave the worker at its
    baseline."""
    section = "resumable streams"
    rng = random.Random(2)

    async def main() -> None:
        target = server.target
        await server.warm_up()
        wholes: dict[str, bytes] = {}
        for fmt in FORMATS:
            whole = await server.request("POST", f"/resumable/{fmt}", RESUMABLE_RUN)
            assert problems(fmt, whole, **RESUMABLE) == []
            wholes[fmt] = whole.raw
            stream_id = whole.headers["x-resumable-stream-id"]
            await server.request("DELETE", f"/resumable/streams/{stream_id}")
        plan = [
            (fmt, cut, ending)
            for fmt, raw in wholes.items()
            for cut, ending in zip(cut_points(raw, 1 if soak else 16), itertools.cycle(ENDINGS))
        ]
        limiter = trio.CapacityLimiter(24)

        async def start_and_leave(stream_id: str, fmt: str, cut: int, ending: Ending) -> None:
            async with limiter:
                with trio.fail_after(10):
                    params = {**RESUMABLE_RUN, "id": stream_id}
                    request = request_bytes("POST", f"/resumable/{fmt}", params)
                    await leave_at(target, request, cut, ending)
                    offset = rng.randrange(len(wholes[fmt]) // 2)
                    path = f"/resumable/streams/{stream_id}?offset={offset}"
                    await leave_at(target, request_bytes("GET", path), rng.randrange(400), ending)

        async def read_whole_and_delete(stream_id: str, fmt: str) -> None:
            async with limiter:
                with trio.fail_after(10):
                    whole = await fetch(target, "GET", f"/resumable/streams/{stream_id}")
                    assert problems(fmt, whole, **RESUMABLE) == [], stream_id
                    await fetch(target, "DELETE", f"/resumable/streams/{stream_id}")

        async def batch_of(plan: list[tuple[str, int, Ending]], tag: str) -> None:
            ids = [f"{tag}-{index:06d}" for index in range(len(plan))]
            async with trio.open_nursery() as nursery:
                for stream_id, (fmt, cut, ending) in zip(ids, plan, strict=True):
                    nursery.start_soon(start_and_leave, stream_id, fmt, cut, ending)
            async with trio.open_nursery() as nursery:
                for stream_id, (fmt, _, _) in zip(ids, plan, strict=True):
                    nursery.start_soon(read_whole_and_delete, stream_id, fmt)

        async def round_of(plan: list[tuple[str, int, Ending]], tag: str) -> None:
            # In batches, as streams expire in an app: the store holds one
            # batch at a time, not every stream of the test.
            for start in range(0, len(plan), RESUMABLE_BATCH):
                await batch_of(plan[start : start + RESUMABLE_BATCH], f"{tag}-{start}")

        await round_of(rng.sample(plan, RESUMABLE_BATCH), "rehearsal")
        before = await server.baseline()
        await server.stats(reset=True)
        await round_of(plan, "stream")
        peak = (await server.stats())["peak_rss"]
        after = await back_to_baseline(server, figures, section, before, peak)

        figures.add(section, "resumable streams started", len(plan))
        figures.add(section, "readers that left", 2 * len(plan))
        figures.add("disconnects", "disconnects tried", 2 * len(plan))
        assert ran(before, after, "runs_returned") == len(plan)
        assert ran(before, after, "runs_cancelled") == 0

    server.run(main, 900 if soak else 120)


def test_stalled_and_slow_resumable_readers_neither_hold_back_nor_keep_the_producer(
    server: Served, figures: Figures, soak: bool
) -> None:
    """A resumable run of 6.5 MB whose first reader stalls after 2 KB (socket open, 4 KiB
    receive buffer), a second reads one byte a second and a third leaves at once:
    the producer stores the whole stream at full speed regardless, and a fresh
    reader gets all of it; so does the slow one, byte for byte, once it reads
    at full speed. The worker holds the stored stream (by design) and no more
    than a write per reader; once the readers are gone and the stream is
    deleted, it is back at its baseline."""
    section = "resumable streams"
    seconds = 60 if soak else 3
    bulk = {"chunks": 400, "text": 16384, "drain": 1, "tools": 2, "steps": 2}

    async def main() -> None:
        target = server.target
        await server.warm_up()
        # The rehearsal: one stream of the size, stored, read, deleted.
        rehearsal = await server.request(
            "POST", "/resumable/data-stream", {**bulk, "id": "rehearsal"}
        )
        assert problems("data-stream", rehearsal, chunks=400, tools=2, steps=2) == []
        await server.request("DELETE", "/resumable/streams/rehearsal")
        before = await server.baseline()
        await server.stats(reset=True)

        first = await leave_first_stalled(target, bulk)
        slow = await connect(target, receive_buffer=RECEIVE_BUFFER)
        await slow.send_all(request_bytes("GET", "/resumable/streams/stalled-stream"))
        await leave_at(
            target, request_bytes("GET", "/resumable/streams/stalled-stream"), 0, "reset"
        )
        started = trio.current_time()
        while True:
            info = await server.get_json("/resumable/info/stalled-stream")
            if info["status"] != "running":
                break
            await trio.sleep(0.05)
        produced_in = trio.current_time() - started
        assert info["status"] == "done"
        whole = await server.request("GET", "/resumable/streams/stalled-stream")
        assert problems("data-stream", whole, chunks=400, tools=2, steps=2) == []
        slowly = bytearray()
        for _ in range(seconds):
            slowly += await read_exactly(slow, 1)
            await trio.sleep(1)
        assert slowly.startswith(b"HTTP/1.1 200 "[: len(slowly)])
        slowly += await read_to_end(slow)
        assert parse_response(bytes(slowly)).payload == whole.payload
        peak = (await server.stats())["peak_rss"]
        await end_connection(first, "close")
        await slow.aclose()
        await server.request("DELETE", "/resumable/streams/stalled-stream")
        after = await back_to_baseline(server, figures, section, before, peak)

        stored = len(whole.payload)
        growth = peak - before["rss"]
        figures.record(section, "stored stream (MB)", round(stored / 1e6, 1))
        figures.record(section, "stored while its readers stalled, in (s)", round(produced_in, 2))
        figures.record(section, "worker memory growth at the peak (MiB)", round(growth / 2**20, 1))
        assert growth < stored + 16 * 2**20
        assert ran(before, after, "runs_returned") == 1
        assert ran(before, after, "runs_cancelled") == 0

    async def leave_first_stalled(target: Target, bulk: dict[str, Any]) -> trio.SocketStream:
        stream = await connect(target, receive_buffer=RECEIVE_BUFFER)
        params = {**bulk, "id": "stalled-stream"}
        await stream.send_all(request_bytes("POST", "/resumable/data-stream", params))
        assert (await read_exactly(stream, 2000)).startswith(b"HTTP/1.1 200")
        return stream

    server.run(main, seconds + 60)
