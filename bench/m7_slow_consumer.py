"""m7 · Slow consumer: what a fast producer costs the server when the client reads slowly.

What is measured: a run (``GET /bulk`` in ``bench.apps_load``) streams
``TOTAL`` bytes of text through ``add_stream``, in text deltas of
``CHUNK`` characters (16 KiB: a realistic size for a large model delta or a
document being relayed), each a new string, the producer yielding to the
loop after each one as a network read would. The client reads the body at
``RATE`` bytes per second. The figure is the server's peak memory growth: its
RSS sampled every 50 ms from just before the request until shortly after the
client has gone, minus the RSS just before the request (taken after a small
warm-up stream, so that lazily imported code is not counted).

Why the client reads for a bounded time and then disconnects: reading 50 MB
at 256 KiB/s would take over three minutes per run. A producer that is not
held back by the consumer has queued everything within the first seconds,
so its peak is reached early; a producer that is held back stays at its
bound throughout. Reading for ``READ_SECONDS`` (20 s in full mode, 2 s in
smoke) and then disconnecting captures both peaks.

Fair: the same run code shape (one ``add_stream`` of the same deltas), each
library's default limits (trio-stream's ``create_run`` high-water marks;
assistant-stream has none), heartbeats on, the same client, a fresh server
per run. The kernel's socket buffers are not in any process's RSS and are the
same for every contender.
"""

from __future__ import annotations

import socket
import statistics
import time
from urllib.parse import urlsplit

from ._results import Figure
from ._servers import Contender, Server, assistant_stream, serving, trio_stream
from .m5_concurrency import RssSampler

__all__ = ["measure"]

CHUNK = 16 * 1024
"""Characters per text delta."""

RATE = 256 * 1024
"""Bytes per second the client reads."""

MB = 1_000_000


def _contenders() -> list[Contender]:
    return [
        trio_stream("bench.apps_load:trio_app"),
        *assistant_stream("bench.apps_load:assistant_app"),
    ]


def _read(server: Server, path: str, seconds: float | None, rate: float | None) -> int:
    """Read ``path``'s response at ``rate`` bytes/s (``None``: at once) for ``seconds``.

    ``seconds=None`` reads to the end of the body. Returns the bytes read.
    """
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        began = time.monotonic()
        total = 0
        tail = b""
        while seconds is None or time.monotonic() - began < seconds:
            if rate is not None:
                # Never ahead of the rate: sleep until these bytes are due.
                due = began + total / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
            data = sock.recv(16384)
            if not data:
                break
            total += len(data)
            tail = (tail + data)[-7:]
            if seconds is None and tail.endswith(b"\r\n0\r\n\r\n"):
                break
        return total


def _one(contender: Contender, total: int, seconds: float, settle: float) -> tuple[float, float]:
    """One run on a fresh server: the peak RSS growth in MB, and the client's read rate."""
    with serving(contender) as server:
        _read(server, f"/bulk?total={4 * CHUNK}&chunk={CHUNK}", None, None)  # warm-up
        time.sleep(settle)
        before = server.rss()
        with RssSampler(server, 0.05) as sampler:
            began = time.monotonic()
            got = _read(server, f"/bulk?total={total}&chunk={CHUNK}", seconds, RATE)
            rate = got / (time.monotonic() - began)
            time.sleep(settle)  # the server notices the disconnect and lets go
        return (sampler.peak - before) / MB, rate


def measure(smoke: bool) -> list[Figure]:
    """The server's peak memory growth while a slow client reads a fast producer."""
    total, seconds, runs = (2 * MB, 2.0, 1) if smoke else (50 * MB, 20.0, 3)
    settle = 0.2 if smoke else 0.5
    growth = Figure(
        key="slow-consumer-growth",
        title=f"m7 · Server memory growth, {total // MB} MB produced, client reading "
        f"{RATE // 1024} KiB/s",
        unit="MB",
        better="lower",
        target="<= 10 MB",
    )
    rates: dict[str, list[float]] = {}
    for _ in range(runs):
        for contender in _contenders():
            grown, rate = _one(contender, total, seconds, settle)
            growth.add(contender.name, round(max(grown, 0.0), 2))
            rates.setdefault(contender.name, []).append(rate)
    ours = _contenders()[0].name
    growth.met = growth.median(ours) <= 10
    lines = [
        f"{total // MB} MB of text through add_stream in {CHUNK // 1024} KiB deltas; the client "
        f"reads {RATE // 1024} KiB/s for {seconds:g} s, then disconnects (reading it all would "
        f"take {total / RATE:.0f} s; a producer not held back has queued everything within "
        "the first seconds, so the peak is reached early either way). RSS sampled every 50 ms, "
        "growth over the RSS just before the request. Each library's default limits."
    ]
    lines += [
        f"{name}: read {statistics.median(r) / 1024:.0f} KiB/s." for name, r in rates.items()
    ]
    growth.note = "  \n".join(lines)
    return [growth]
