"""m6 · Cancellation: how soon a run's blocked tasks stop once the client leaves.

What is measured: a run (``GET /cancel`` in ``bench.apps_load``) opens 20 tool
calls, each a task blocked on I/O that never comes (a read on a socketpair,
in each event loop's own way: Trio's ``wait_readable``, asyncio's
``loop.sock_recv``), then sends the text ``ready``. The client reads the
response until ``ready`` has arrived, takes ``time.monotonic()`` and closes
the connection. Each task, in its cancellation handler, takes
``time.monotonic()`` too (``CLOCK_MONOTONIC`` is one clock for every process
on Linux, so the two processes' readings compare). The delay of a trial is
the last task's time minus the close time: how long the server kept work
going for a client that had gone. Figures: the p50 and the p99 of the delay
over ``TRIALS`` trials, one run per fresh server process.

The times are fetched after each trial from ``GET /cancel-times``, which
waits (up to ``PATIENCE`` seconds) until all 20 tasks have reported. A trial
whose tasks have not all reported by then counts as ``PATIENCE`` (a lower
bound on the truth, noted in the figure); its tasks are then woken by a byte
so that they do not pile up.

Fair: the same run shape (20 tool calls, each a task of the run, the text
once all wait), heartbeats on at each library's default (a run waiting on
tools is silent, which is when heartbeats matter), the same client, trials
one at a time. assistant-stream waits 50 ms by design for a run to stop by
itself before it cancels it; that is its behaviour, measured as it is.

Full mode adds a figure without a target: the p99 with heartbeats off, the
default of both libraries' ``DataStreamResponse``. (Without heartbeats,
assistant-stream's run generator is consumed directly under Starlette's
cancel scope, which interrupts the generator's clean-up before it cancels
the run's task, so the run's tasks keep running after the client has gone.)
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import time
import uuid
from urllib.parse import urlsplit

from ._results import Figure
from ._servers import Contender, Server, assistant_stream, serving, trio_stream

__all__ = ["measure"]

TOOLS = 20
"""Blocked tool tasks per run."""

PATIENCE = 1.0
"""Seconds to wait for every task of a trial to observe cancellation."""

GIVE_UP_AFTER = 5
"""Trials past ``PATIENCE`` after which a run stops (its figures are then lower bounds)."""


def _contenders() -> list[Contender]:
    return [
        trio_stream("bench.apps_load:trio_app"),
        *assistant_stream("bench.apps_load:assistant_app"),
    ]


def _percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with ``fraction`` of them at or below."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def _trial(
    host: str, port: int, control: http.client.HTTPConnection, heartbeat: bool
) -> float | None:
    """One trial: open the run, read to ``ready``, disconnect; the delay in seconds.

    ``None`` if not every task observed cancellation within ``PATIENCE``.
    """
    name = uuid.uuid4().hex
    with socket.create_connection((host, port)) as stream:
        stream.sendall(
            f"GET /cancel?trial={name}&tools={TOOLS}&heartbeat={int(heartbeat)} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n\r\n".encode()
        )
        received = b""
        while b'0:"ready"' not in received:
            data = stream.recv(65536)
            if not data:
                raise RuntimeError(f"the server closed the stream early: {received!r}")
            received += data
        closed_at = time.monotonic()
    # Leaving the block closed the socket.
    control.request("GET", f"/cancel-times?trial={name}&tools={TOOLS}&timeout={PATIENCE}")
    times: list[float] = json.loads(control.getresponse().read())["times"]
    if len(times) < TOOLS:
        return None
    return max(times) - closed_at


def _run(server: Server, trials: int, heartbeat: bool) -> tuple[list[float], int]:
    """``trials`` trials on one server: the delays in ms (``PATIENCE`` for a timeout), timeouts."""
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    control = http.client.HTTPConnection(host, port, timeout=PATIENCE + 10)
    delays: list[float] = []
    timeouts = 0
    try:
        for _ in range(3):  # warm-up, not counted
            if _trial(host, port, control, heartbeat) is None:
                break
        for _ in range(trials):
            delay = _trial(host, port, control, heartbeat)
            if delay is None:
                timeouts += 1
                delay = PATIENCE
            delays.append(delay * 1000)
            if timeouts >= GIVE_UP_AFTER:
                break
    finally:
        control.close()
    return delays, timeouts


def measure(smoke: bool) -> list[Figure]:
    """p50 and p99 of the delay from disconnect to the last task cancelled.

    In full mode also the p99 with heartbeats off, both libraries' default
    for this response: a separate figure with no target.
    """
    trials, runs = (10, 1) if smoke else (200, 3)
    p50 = Figure(
        key="cancel-p50",
        title=f"m6 · Disconnect to all {TOOLS} blocked tasks cancelled, p50",
        unit="ms",
        better="lower",
    )
    p99 = Figure(
        key="cancel-p99",
        title=f"m6 · Disconnect to all {TOOLS} blocked tasks cancelled, p99",
        unit="ms",
        better="lower",
        target="p99 <= 10 ms",
    )
    notes: list[str] = []
    for _ in range(runs):
        for contender in _contenders():
            with serving(contender) as server:
                delays, timeouts = _run(server, trials, heartbeat=True)
            p50.add(contender.name, round(_percentile(delays, 0.50), 3))
            p99.add(contender.name, round(_percentile(delays, 0.99), 3))
            if timeouts:
                notes.append(_timeouts(contender.name, timeouts, len(delays)))
    ours = _contenders()[0].name
    p99.met = statistics.median(p99.runs[ours]) <= 10
    setting = (
        f"{trials} trials per run, one run per fresh server; a trial: read the response "
        f"until the run's text arrives (all {TOOLS} tool tasks are blocked by then), "
        "close the connection, time until the last task's cancellation handler ran."
    )
    p50.note = p99.note = "  \n".join(
        [
            setting + " Heartbeats on (15 s, not reached). assistant-stream gives a run "
            "50 ms to stop by itself before cancelling it.",
            *notes,
        ]
    )
    if smoke:
        return [p50, p99]
    quiet = Figure(
        key="cancel-noheartbeat-p99",
        title=f"m6 · Disconnect to all {TOOLS} tasks cancelled, heartbeats off, p99",
        unit="ms",
        better="lower",
    )
    notes = []
    for contender in _contenders():
        with serving(contender) as server:
            delays, timeouts = _run(server, trials, heartbeat=False)
        quiet.add(contender.name, round(_percentile(delays, 0.99), 3))
        if timeouts:
            notes.append(_timeouts(contender.name, timeouts, len(delays)))
    quiet.note = "  \n".join(
        [
            setting + " Heartbeats off: the default of both libraries' DataStreamResponse. "
            f"A run stops after {GIVE_UP_AFTER} trials past {PATIENCE:g} s.",
            *notes,
        ]
    )
    return [p50, p99, quiet]


def _timeouts(name: str, timeouts: int, trials: int) -> str:
    return (
        f"{name}: in {timeouts} of {trials} trials, tasks were still running "
        f"{PATIENCE:g} s after the disconnect (counted as {PATIENCE * 1000:g} ms, a lower bound)."
    )
