"""The load test's client: thousands of streams at once, from a process of its own.

``python -m tests.reliability.load_client --url URL --streams N ...`` opens N
streams of ``server_app``'s ``/stream/{format}`` (the formats in turn), reads
each to its end and checks it (``clients_http.problems``: every text delta
once and in order, every tool's sub-stream and result, the format's finish,
a chunked body that ended), then prints one JSON object: how many streams
were complete, why the others were not, and the latencies it measured.

It runs in its own process so that the test process's work (and its GIL)
neither slows the clients nor hides in the server's figures, and speaks raw
HTTP/1.1 on Trio sockets, a few hundred bytes of state per connection: an
HTTP library would cost more CPU than the server under test, and on a
two-core machine the client must not be the bottleneck.

Latencies: *time to first byte* is from the start of the connection to the
first byte of the response; *delivery* is, for each text delta, its arrival
minus the time the run appended it, which the delta carries
(``t00012@<time.monotonic()>;``). The monotonic clock is one clock for all
processes of a Linux machine, so the two readings compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from .clients_http import (
    FORMATS,
    DeltaClock,
    Target,
    connect,
    parse_response,
    problems,
    raise_open_file_limit,
    request_bytes,
)

__all__ = ["LoadResult", "percentile", "run_load"]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with ``fraction`` of them at or below."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -int(-len(ordered) * fraction // 1))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    """What became of the streams, and how long their bytes took."""

    complete: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    first_byte: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    bytes_received: int = 0

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "failures": self.failures,
            "bytes_received": self.bytes_received,
            "deltas_timed": len(self.delivery),
            "first_byte_p50": percentile(self.first_byte, 0.5),
            "first_byte_p99": percentile(self.first_byte, 0.99),
            "delivery_p50": percentile(self.delivery, 0.5),
            "delivery_p99": percentile(self.delivery, 0.99),
            "delivery_max": max(self.delivery, default=float("nan")),
        }


async def _one_stream(
    target: Target,
    fmt: str,
    params: dict[str, Any],
    expected: dict[str, int],
    gate: trio.Semaphore,
    result: LoadResult,
) -> None:
    request = request_bytes("GET", f"/stream/{fmt}", params)
    clock = DeltaClock()
    async with gate:
        started = time.monotonic()
        try:
            stream = await connect(target)
            await stream.send_all(request)
            first = await stream.receive_some(65536)
        except OSError as exc:
            result.fail(f"connect: {type(exc).__name__}")
            return
        result.first_byte.append(time.monotonic() - started)
    async with stream:
        piece = bytes(first)
        while piece:
            clock.feed(piece, time.monotonic())
            try:
                piece = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                result.fail("connection reset")
                return
    result.delivery += clock.delivery
    result.bytes_received += len(clock.data)
    found = problems(fmt, parse_response(bytes(clock.data)), **expected)
    if found:
        result.fail(f"{fmt}: {found[0]}")
    else:
        result.complete += 1


async def run_load(
    url: str,
    streams: int,
    params: dict[str, Any],
    expected: dict[str, int],
    connecting: int,
) -> LoadResult:
    """Open ``streams`` streams at once (at most ``connecting`` waiting for their first
    byte at a time, which the listen backlog always takes) and read them to the end."""
    target = Target.from_url(url)
    result = LoadResult()
    gate = trio.Semaphore(connecting)
    async with trio.open_nursery() as nursery:
        for index in range(streams):
            fmt = FORMATS[index % len(FORMATS)]
            nursery.start_soon(_one_stream, target, fmt, params, expected, gate, result)
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--params", required=True, help="the run's query parameters, JSON")
    parser.add_argument("--expected", required=True, help="chunks, tools, steps: JSON")
    parser.add_argument("--connecting", type=int, default=500)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)

    raise_open_file_limit()

    async def bounded() -> LoadResult:
        with trio.fail_after(args.timeout):
            return await run_load(
                args.url,
                args.streams,
                json.loads(args.params),
                json.loads(args.expected),
                args.connecting,
            )

    print(json.dumps(trio.run(bounded).summary()))


if __name__ == "__main__":
    main(sys.argv[1:])
