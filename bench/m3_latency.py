"""m3 · Latency: how long a token takes from its producer to the client, at a model's pace.

What is measured: a run producing 2,000 text deltas at 100 per second
(``GET /paced`` of ``bench.apps_stream``, the data stream), each delta's text
being the ``time.monotonic_ns()`` read just before ``append_text``. The
client, a process of its own (``python -m bench.m3_latency --client URL N``),
reads the body from a bare socket and reads the same clock each time
``recv`` returns, for every token line that arrived in it: the delay is
arrival minus production, so it covers the library, the framework, the
server, the kernel's loopback and the client's wake-up. CLOCK_MONOTONIC is one
clock for every process on Linux, so the two readings compare. Per run, the
median and the 99th percentile of the 2,000 delays; the figures are the
medians of those over the runs.

Contenders: trio-stream through ``trio-stream serve`` (hypercorn-trio), and
assistant-stream on uvicorn (its command, with its defaults), on uvicorn with
the garbage collector thresholds ``trio-stream serve`` ships, and on
hypercorn-asyncio; heartbeats at their default for the data stream (off in
both libraries). The pacing code is the same for both (``sleep`` until the
token's due time, on each library's event loop; the delay is counted from
when the token was actually made, so a late timer does not count against a
library). The client checks it received every token, in order.

The ceilings: the same paced lines from a bare ASGI app (``bench.apps_bare``,
no framework and no library) on hypercorn-trio (as hypercorn ships it, and
through ``trio-stream serve``, our row's own command) and on uvicorn, the
least delay each server allows; the distance from a library's row to its
server's ceiling is what the library and its framework add. The target is
checked against the ceiling on our row's own command; the report also gives
the distance to hypercorn's.

Fair: the same run code and server settings, each server in a process of its
own, contenders measured in turn run after run after a warm-up request, the
client a separate process doing nothing but ``recv``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from ._results import Figure
from ._servers import (
    CEILING,
    OURS,
    PEER,
    SERVE_CEILING,
    Contender,
    Server,
    assistant_stream,
    assistant_stream_gc,
    ceilings,
    ceilings_of,
    serving,
    trio_stream,
)

__all__ = ["measure"]

RATE = 100.0
"""Tokens per second, about a fast model's pace."""

MAX_P99 = 2.0
"""Milliseconds: the 99th percentile of a token's delay, at most."""
CEILING_FACTOR = 1.2
"""Our 99th percentile over the bare server's on hypercorn-trio (our row's command), at most."""

_TOKEN = re.compile(rb'0:"(\d+) "\n')


# -- the client (a process of its own) ---------------------------------------


def read_delays(url: str, n: int) -> list[int]:
    """GET ``url`` and return each token's delay in nanoseconds, in order of arrival."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    delays: list[int] = []
    produced: list[int] = []
    with socket.create_connection((host, port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        pending = b""
        while True:
            data = sock.recv(1 << 16)
            arrived = time.monotonic_ns()
            if not data:
                break
            pending += data
            end = 0
            for match in _TOKEN.finditer(pending):
                stamp = int(match[1])
                produced.append(stamp)
                delays.append(arrived - stamp)
                end = match.end()
            pending = pending[end:]
    if len(delays) != n or produced != sorted(produced):
        raise SystemExit(f"{len(delays)} tokens of {n}, in order: {produced == sorted(produced)}")
    return delays


def _client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.m3_latency")
    parser.add_argument("--client", required=True, metavar="URL")
    parser.add_argument("n", type=int)
    args = parser.parse_args(argv)
    json.dump(read_delays(args.client, args.n), sys.stdout)


# -- the measurement ---------------------------------------------------------


def _percentile(values: list[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _delays(server: Server, n: int, rate: float) -> list[int]:
    url = f"{server.url}/paced?n={n}&rate={rate}"
    result = subprocess.run(
        [sys.executable, "-m", "bench.m3_latency", "--client", url, str(n)],
        capture_output=True,
        text=True,
        timeout=n / rate + 60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"latency client failed on {url}: {result.stderr.strip()}")
    delays: list[int] = json.loads(result.stdout)
    return delays


def measure(smoke: bool) -> list[Figure]:
    n = 100 if smoke else 2_000
    runs = 1 if smoke else 3
    contenders: list[Contender] = [
        trio_stream("bench.apps_stream:trio_app"),
        *assistant_stream("bench.apps_stream:assistant_app"),
        assistant_stream_gc("bench.apps_stream:assistant_app"),
        *ceilings(),
    ]
    about = (
        f"{n:,} text deltas at {RATE:.0f}/s, each carrying the time it was made; "
        "the client, a separate process, reads the same clock as each recv returns."
    )
    p50 = Figure(
        key="latency-p50",
        title=f"Latency, producer to client, median ({n:,} tokens at {RATE:.0f}/s)",
        unit="ms",
        better="lower",
        note=about,
    )
    p99 = Figure(
        key="latency-p99",
        title=f"Latency, producer to client, 99th percentile ({n:,} tokens at {RATE:.0f}/s)",
        unit="ms",
        better="lower",
        note=about,
    )
    p50.ceilings = p99.ceilings = ceilings_of(contenders)
    worst: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        servers = [(c, stack.enter_context(serving(c))) for c in contenders]
        for _, server in servers:
            _delays(server, 20, 1000.0)  # warm-up
        for _ in range(runs):
            for contender, server in servers:
                delays = _delays(server, n, RATE)
                p50.add(contender.name, _percentile(delays, 0.50) / 1e6)
                p99.add(contender.name, _percentile(delays, 0.99) / 1e6)
                worst[contender.name] = max(worst.get(contender.name, 0.0), max(delays) / 1e6)
    _check(p99)
    p99.note += (
        " Worst single delay over all runs: "
        + ", ".join(f"{name} {value:.2f} ms" for name, value in worst.items())
        + "."
    )
    return [p50, p99]


def _check(p99: Figure) -> None:
    """The targets of the 99th percentile: absolute, against the peer, against the ceiling."""
    ours, peer, ceiling = p99.median(OURS), p99.median(PEER), p99.median(SERVE_CEILING)
    shipped = p99.median(CEILING)
    p99.check(f"<= {MAX_P99:g} ms", f"{ours:.3g} ms", ours <= MAX_P99)
    p99.check(
        f"no worse than {PEER}",
        f"{p99.ratio(OURS, PEER):.2f}x ({ours:.3g} ms against {peer:.3g} ms)",
        ours <= peer,
    )
    p99.check(
        f"within {CEILING_FACTOR:g}x of the {SERVE_CEILING} (the bare server, our command)",
        f"{ours / ceiling:.2f}x the ceiling's ({ours:.3g} ms against {ceiling:.3g} ms; "
        f"{ours / shipped:.2f}x the {CEILING}'s, {shipped:.3g} ms)",
        ours <= CEILING_FACTOR * ceiling,
    )


if __name__ == "__main__":
    _client_main(sys.argv[1:])
