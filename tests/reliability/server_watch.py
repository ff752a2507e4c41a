"""The reliability app in a worker process, and what the tests ask of it.

``served`` starts ``server_app`` with ``trio-stream serve`` (one hypercorn
worker on Trio, as in production) and yields a ``Served``, through which a
test reads the worker's ``/stats``: resident memory, living tasks, open
files, and the app's census of runs and tools. ``settle`` waits for the
worker to be idle again after a test's clients have gone, and ``Leaks``
says what did not come back, if anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..serving import running_cli
from .clients_http import FORMATS, HttpResponse, KeepAliveConnection, Target, problems
from .figures import Figures

__all__ = [
    "HEAP_TOLERANCE",
    "LIVE_MEMORY_TOLERANCE",
    "RESIDENT_TOLERANCE",
    "Leaks",
    "Served",
    "assert_no_leak",
    "record_memory_and_leaks",
    "served",
]

LIVE_MEMORY_TOLERANCE = 1024 * 1024
"""How many more bytes the worker may hold at the end than at its baseline.

Live memory (``server_app.live_memory``: bytes allocated and not freed,
after a garbage collection) moves by a few hundred KiB between two idle
moments: caches, free lists, the request asking. A client that left behind
its connection's state, a run's buffer or one of its tasks would add
kilobytes per client, and the tests here have thousands of clients.
"""

HEAP_TOLERANCE = 5_000
"""How many more memory blocks the worker's heap may hold at the end than at its baseline.

``sys.getallocatedblocks()`` counts every block the interpreter has
allocated and not freed, whatever its size: a leak of small objects shows
here before it shows in bytes. Between two idle moments it moves by up to a
few thousand; a client that left anything behind leaves tens of blocks, and
the tests here have thousands of clients.
"""

RESIDENT_TOLERANCE = 16 * 1024 * 1024
"""How far the worker's resident memory may end above its baseline, in bytes.

Resident memory also counts what the allocators keep for reuse, so it does
not return exactly: CPython's object allocator keeps a 1 MiB arena mapped
while any object in it lives. This bound catches what the live figures
cannot see (memory a C library maps by itself), not a few arenas.
"""

T = TypeVar("T")


@dataclass(frozen=True)
class Leaks:
    """What a worker still holds after its clients are gone, compared with its baseline."""

    tasks: int
    files: int
    callbacks: int
    tools: int
    runs: int
    requests: int
    live_memory: int
    heap_blocks: int
    resident: int

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> Leaks:
        return cls(
            tasks=after["server_tasks"] - before["server_tasks"] + after["busy_tasks"],
            files=after["server_files"] - before["server_files"],
            callbacks=after["callbacks_alive"],
            tools=after["tools_alive"],
            runs=after["runs_alive"],
            requests=after["in_flight"],
            live_memory=after["live_memory"] - before["live_memory"],
            heap_blocks=after["heap_blocks"] - before["heap_blocks"],
            resident=after["rss"] - before["rss"],
        )

    @property
    def found(self) -> int:
        """Tasks, files, callbacks, tools, runs and requests that outlived their client."""
        return (
            max(self.tasks, 0)
            + max(self.files, 0)
            + self.callbacks
            + self.tools
            + self.runs
            + self.requests
        )

    def describe(self) -> str:
        return (
            f"{self.tasks:+d} tasks, {self.files:+d} open files, {self.callbacks} runs "
            f"still running, {self.tools} tools alive, {self.runs} Run objects not freed, "
            f"{self.requests} requests in flight, live memory "
            f"{self.live_memory / 2**10:+.0f} KiB in {self.heap_blocks:+d} heap blocks, "
            f"resident {self.resident / 2**20:+.1f} MiB"
        )


class Served:
    """A running worker: its address, its log, and its ``/stats``.

    Requests that observe or prepare the worker (stats, warm-up, reading or
    deleting a resumable stream) go over one keep-alive connection per Trio
    run, so that they leave no closed connections of their own behind.
    """

    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.target = Target.from_url(url)
        self.log_path = log_path
        self._control: tuple[trio.lowlevel.TrioToken, KeepAliveConnection] | None = None

    def run(self, main: Callable[[], Awaitable[T]], timeout: float) -> T:
        """``trio.run(main)``, failing after ``timeout`` seconds instead of hanging, and
        closing the control connection at the end."""

        async def bounded() -> T:
            try:
                with trio.fail_after(timeout):
                    return await main()
            finally:
                if self._control is not None:
                    with trio.CancelScope(shield=True):
                        await self._control[1].aclose()
                    self._control = None

        return trio.run(bounded)

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
    ) -> HttpResponse:
        """One request on the control connection, read to the end of its response."""
        token = trio.lowlevel.current_trio_token()
        if self._control is None or self._control[0] is not token:
            self._control = (token, KeepAliveConnection(self.target))
        return await self._control[1].request(method, path, params, body=body)

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = await self.request("GET", path, params)
        assert response.status == 200, response.raw[:500]
        return response.json()

    async def stats(self, *, collect: bool = False, reset: bool = False) -> dict[str, Any]:
        """The worker's census; ``collect`` collects garbage first, ``reset`` restarts peaks."""
        params = {"gc": "1" if collect else "0", "reset": "1" if reset else "0"}
        result: dict[str, Any] = await self.get_json("/stats", params)
        return result

    async def until(
        self, condition: Callable[[dict[str, Any]], bool], within: float
    ) -> dict[str, Any]:
        """Stats once ``condition`` holds of them, or once ``within`` seconds have passed;
        the caller asserts on what is returned."""
        deadline = trio.current_time() + within
        while True:
            current = await self.stats()
            if condition(current) or trio.current_time() > deadline:
                return current
            await trio.sleep(0.05)

    async def warm_up(self) -> dict[str, Any]:
        """Serve a few of each kind of stream, then return the idle baseline.

        The first requests import code lazily and grow the allocators'
        pools; counting that as growth would blame the tests' clients for
        the server's start-up.
        """
        for _ in range(3):
            for fmt in FORMATS:
                response = await self.request("GET", f"/stream/{fmt}", {"chunks": 4})
                assert problems(fmt, response, chunks=4, tools=2, steps=2) == []
                started = await self.request("POST", f"/resumable/{fmt}", {"chunks": 4})
                stream_id = started.headers["x-resumable-stream-id"]
                await self.request("DELETE", f"/resumable/streams/{stream_id}")
        return await self.baseline()

    async def baseline(self) -> dict[str, Any]:
        """The idle worker's stats, once the requests before are over."""
        return await self.settle(None)

    async def settle(self, baseline: dict[str, Any] | None, within: float = 20) -> dict[str, Any]:
        """Wait until the worker is idle: no request, run or tool left, no connection
        busy, and (given a baseline) no more server tasks, files and closed
        connections than then. Returns its stats, which the caller asserts on.

        A run's tasks end a moment after its client left, not at once; and
        hypercorn on Trio keeps a closed connection (its handler, some of its
        state, for a client that closed first even its socket) until the
        connection's keep-alive timer runs out, 5 s. A count taken at once
        would include them; waiting, with a deadline, tells a slow clean-up
        from one that never happens.
        """
        deadline = trio.current_time() + within
        while True:
            current = await self.stats(collect=True)
            idle = (
                current["in_flight"] == 0
                and current["callbacks_alive"] == 0
                and current["tools_alive"] == 0
                and current["runs_alive"] == 0
                and current["busy_connections"] == 0
            )
            if baseline is not None:
                idle = idle and (
                    current["server_tasks"] <= baseline["server_tasks"]
                    and current["server_files"] <= baseline["server_files"]
                    and current["lingering_connections"] <= baseline["lingering_connections"]
                )
            if idle or trio.current_time() > deadline:
                return current
            await trio.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def record_memory_and_leaks(
    figures: Figures,
    section: str,
    before: dict[str, Any],
    after: dict[str, Any],
    peak_rss: int | None = None,
) -> Leaks:
    """Record the worker's memory and tasks, before and after, in ``section``; returns
    what outlived the clients. "Memory" is resident memory (RSS); the live
    figures are what the worker still holds of it."""
    leaks = Leaks.between(before, after)
    figures.record(section, "memory before (MiB)", _mib(before["rss"]))
    if peak_rss is not None:
        figures.record(section, "memory peak (MiB)", _mib(peak_rss))
    figures.record(section, "memory after (MiB)", _mib(after["rss"]))
    figures.record(section, "live memory after - before (KiB)", round(leaks.live_memory / 1024))
    figures.record(section, "heap blocks after - before", leaks.heap_blocks)
    figures.record(
        section,
        "server tasks before/after",
        f"{before['server_tasks']}/{after['server_tasks'] + after['busy_tasks']}",
    )
    figures.add(section, "leaks found", leaks.found)
    return leaks


def assert_no_leak(leaks: Leaks, *, resident: bool = True) -> None:
    """Nothing outlived the clients: no task, file, run, tool or request, no live memory
    beyond the tolerances, and (if ``resident``) resident memory within its bound."""
    assert leaks.found == 0, leaks.describe()
    assert leaks.live_memory <= LIVE_MEMORY_TOLERANCE, leaks.describe()
    assert leaks.heap_blocks <= HEAP_TOLERANCE, leaks.describe()
    if resident:
        assert leaks.resident <= RESIDENT_TOLERANCE, leaks.describe()


def _mib(size: int) -> float:
    return round(size / 2**20, 1)


@contextlib.contextmanager
def served(directory: Path) -> Iterator[Served]:
    """``server_app`` in a worker process of its own, for one test."""
    log_path = directory / "server.log"
    with running_cli(log_path, "serve", "tests.reliability.server_app:app") as url:
        yield Served(url, log_path)
