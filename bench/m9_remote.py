"""m9 · Remote agents: runs relayed from server to server, cancelled across processes, fanned out.

Every server runs ``bench.apps_remote:app`` on hypercorn-trio in a process of
its own; ``BENCH_DOWNSTREAM`` makes one a relay of the next (its routes' runs
are one ``spawn_remote_tool_call`` to the same route there), and the client
is in yet another process. Three measurements:

**Relay overhead.** The seconds curl takes (``%{time_total}``: connecting to
the last byte) to download ``POST /text`` with ``{"n": 50000}``: from the
leaf itself (direct), through one relay (A → leaf), through two (A → B →
leaf). At the leaf, the run of m2 (``bench.apps_stream``): 50,000 ``"tok "``
deltas appended without awaiting (``remote-relay``) or with ``sleep(0)``
after each, as a producer awaiting its model (``remote-relay-checkpointed``).
Each relay decodes the body it reads, merging the deltas of each read into
one (``StreamDecoder.feed_merged``), renames the ids into its tool call's
namespace and encodes them again, nested one level deeper: the client gets
the text once per hop deeper, in ``aui-text-delta`` lines with a parent id,
one per run of deltas a relay read at once, and each relay's call result,
the remote's text joined (200 KB). Every body is decoded and checked: all
50,000 deltas' text, nested exactly as deep as the hops. The figures
``remote-relay*-per-hop`` are what each hop adds, in % of the direct time:
``(hops time - direct time) / hops / direct time``, run by run; the target is
under 25%.

**Cancellation across processes.** As m6 does it, across a chain of three
servers (A → B → leaf): the client posts ``/cancel`` to A, reads until the
leaf's ``ready`` text has come through both relays (the leaf's 20 tool tasks
are blocked by then), takes ``time.monotonic()``, closes the connection; each
of the leaf's tasks takes ``time.monotonic()`` when it observes cancellation
(one clock for every process on Linux). The delay of a trial is the last
task's time minus the close: the disconnect has to travel A's run, A's
request to B, B's run, B's request to the leaf and the leaf's run. p50 and
p99 over the trials, fresh servers for each run; the direct row is the same
trial against the leaf alone. Target: p99 under 20 ms.

**Fan-out.** One run at A opening 50 remote tool calls at once, each to the
leaf's ``/text`` with ``{"n": 1000}``: 50 remote runs, 50 connections, 50,000
deltas relayed in one response. The client (``http.client``, decoding the
body as it arrives) takes the time to the last byte, and for each call the
time from sending the request to the first text delta of that call. Once
with the default (each remote call makes its own ``httpx.AsyncClient``), once
with one client shared by the run's calls (``http_client=``), and, as a
reference, the same 50,000 deltas through one remote call (one hop). No
target: the figures say what a fan-out costs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trio_stream.chunks import Chunk, ErrorChunk, TextDeltaChunk
from trio_stream.formats.data_stream import DataStreamDecoder

from . import apps_stream
from ._results import Figure
from ._servers import Contender, Server, serving
from .apps_remote import DOWNSTREAM
from .m6_cancellation import PATIENCE, _percentile

__all__ = ["measure"]

APP = "bench.apps_remote:app"

DIRECT = "direct (the leaf)"
ONE_HOP = "one hop (A → leaf)"
TWO_HOPS = "two hops (A → B → leaf)"
CHAIN = "three servers (A → B → leaf)"

RELAY_TARGET = 25.0
"""Per hop, the most the relay may add to the direct time, in %."""
CANCEL_TARGET = 20.0
"""The p99 of disconnect to the leaf's last task cancelled, in ms."""

TOOLS = 20
"""Blocked tool tasks in the leaf's run, as in m6."""


def _contender(role: str) -> Contender:
    return Contender(f"trio-stream · hypercorn-trio · {role}", APP, "trio-stream serve")


@contextlib.contextmanager
def _chain() -> Iterator[dict[str, Server]]:
    """The leaf, B relaying it, A relaying the leaf (one hop) and A relaying B (two hops)."""
    with contextlib.ExitStack() as stack:
        leaf = stack.enter_context(serving(_contender("leaf")))
        middle = stack.enter_context(serving(_contender("B"), {DOWNSTREAM: leaf.url}))
        one = stack.enter_context(serving(_contender("A, one hop"), {DOWNSTREAM: leaf.url}))
        two = stack.enter_context(serving(_contender("A, two hops"), {DOWNSTREAM: middle.url}))
        yield {DIRECT: leaf, ONE_HOP: one, TWO_HOPS: two}


# -- relay overhead -------------------------------------------------------------------


def _post(url: str, body: Any, into: Path) -> tuple[float, bytes]:
    """POST ``body`` as JSON with curl, the body into ``into``: (curl's total seconds, body)."""
    result = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--fail"),
            *("--header", "content-type: application/json", "--data", json.dumps(body)),
            *("--output", str(into), "--write-out", "%{time_total}", url),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout), into.read_bytes()


def _check_relayed(body: bytes, n: int, hops: int) -> None:
    """Raise unless ``body`` has the text of all ``n`` deltas, nested ``hops`` tool calls deep.

    A relay merges the deltas it reads at once: the text is what counts,
    not how many pieces carry it.
    """
    chunks = DataStreamDecoder().decode(body)
    deltas = [c for c in chunks if isinstance(c, TextDeltaChunk)]
    depths = {0 if c.parent_id is None else c.parent_id.count(".") + 1 for c in deltas}
    text = "".join(c.text_delta for c in deltas)
    errors = [c.error for c in chunks if isinstance(c, ErrorChunk)]
    if text != apps_stream.TOKEN * n or depths != {hops} or errors:
        raise AssertionError(
            f"{hops} hops: {len(text) / len(apps_stream.TOKEN):g} deltas' text of {n}, "
            f"depths {depths}, errors {errors}"
        )


def _relay_figures(servers: dict[str, Server], n: int, runs: int) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        into = Path(folder) / "body"
        for hops, server in enumerate(servers.values()):  # warm-up, checked
            _check_relayed(_post(f"{server.url}/text", {"n": 1000}, into)[1], 1000, hops)
        for checkpoint in (False, True):
            times = Figure(
                key="remote-relay-checkpointed" if checkpoint else "remote-relay",
                title=f"m9 · {n:,} text deltas, direct and relayed"
                + (", sleep(0) after each" if checkpoint else ""),
                unit="s",
                better="lower",
                note=_relay_note(checkpoint),
            )
            for _ in range(runs):
                for hops, (name, server) in enumerate(servers.items()):
                    body = {"n": n, "checkpoint": checkpoint}
                    seconds, received = _post(f"{server.url}/text", body, into)
                    _check_relayed(received, n, hops)
                    times.add(name, seconds)
            figures += [times, _per_hop(times)]
    return figures


def _relay_note(checkpoint: bool) -> str:
    shape = (
        "The leaf's run awaits sleep(0) after each delta."
        if checkpoint
        else "The leaf's run appends every delta without awaiting (m2's run)."
    )
    return (
        f"{shape} Seconds for curl to POST /text and download the whole body; every body "
        "decoded and checked (every delta, nested as deep as the hops)."
    )


def _per_hop(times: Figure) -> Figure:
    """What each hop adds to the direct time, in %, run by run."""
    figure = Figure(
        key=f"{times.key}-per-hop",
        title=times.title.replace("direct and relayed", "what each relay hop adds"),
        unit="% of the direct time, per hop",
        better="lower",
        target=f"< {RELAY_TARGET:g}% per hop",
    )
    for hops, name in ((1, ONE_HOP), (2, TWO_HOPS)):
        for direct, relayed in zip(times.runs[DIRECT], times.runs[name], strict=True):
            figure.add(name, round((relayed - direct) / hops / direct * 100, 1))
    worst = max(figure.median(name) for name in figure.runs)
    figure.met = worst < RELAY_TARGET
    direct = times.median(DIRECT)
    figure.note = (
        f"Direct: {direct * 1000:.1f} ms (median); one hop {times.median(ONE_HOP) * 1000:.1f} ms,"
        f" two hops {times.median(TWO_HOPS) * 1000:.1f} ms."
    )
    if not figure.met:
        figure.note += (
            f" Missed by {worst - RELAY_TARGET:.0f} points: a hop adds "
            f"{worst / 100 * direct * 1000:.1f} ms where the target allows "
            f"{RELAY_TARGET / 100 * direct * 1000:.1f} ms."
        )
    return figure


# -- cancellation across processes ----------------------------------------------------


def _cancel_trial(server: Server, leaf: http.client.HTTPConnection) -> float | None:
    """One trial: open the run at ``server``, read to ``ready``, leave; the delay in seconds.

    ``None`` if not every task of the leaf observed cancellation within ``PATIENCE``.
    """
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    name = uuid.uuid4().hex
    payload = json.dumps({"trial": name, "tools": TOOLS}).encode()
    with socket.create_connection((host, port)) as stream:
        stream.sendall(
            f"POST /cancel HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        received = b""
        while b'"ready"' not in received:
            data = stream.recv(65536)
            if not data:
                raise RuntimeError(f"the server closed the stream early: {received!r}")
            received += data
        closed_at = time.monotonic()
    leaf.request("GET", f"/cancel-times?trial={name}&tools={TOOLS}&timeout={PATIENCE}")
    times: list[float] = json.loads(leaf.getresponse().read())["times"]
    if len(times) < TOOLS:
        return None
    return max(times) - closed_at


def _cancel_delays(server: Server, leaf: Server, trials: int) -> tuple[list[float], int]:
    """``trials`` trials: the delays in ms (``PATIENCE`` for a timeout), and the timeouts."""
    parts = urlsplit(leaf.url)
    control = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=PATIENCE + 10)
    delays: list[float] = []
    timeouts = 0
    try:
        for _ in range(3):  # warm-up, not counted
            _cancel_trial(server, control)
        for _ in range(trials):
            delay = _cancel_trial(server, control)
            if delay is None:
                timeouts += 1
                delay = PATIENCE
            delays.append(delay * 1000)
    finally:
        control.close()
    return delays, timeouts


def _cancel_figures(trials: int, runs: int) -> list[Figure]:
    p50 = Figure(
        key="remote-cancel-p50",
        title=f"m9 · Disconnect to the leaf's {TOOLS} blocked tasks cancelled, p50",
        unit="ms",
        better="lower",
    )
    p99 = Figure(
        key="remote-cancel-p99",
        title=f"m9 · Disconnect to the leaf's {TOOLS} blocked tasks cancelled, p99",
        unit="ms",
        better="lower",
        target=f"p99 < {CANCEL_TARGET:g} ms across three servers",
    )
    notes: list[str] = []
    for _ in range(runs):
        with _chain() as servers:
            leaf = servers[DIRECT]
            for name, server in ((DIRECT, leaf), (CHAIN, servers[TWO_HOPS])):
                delays, timeouts = _cancel_delays(server, leaf, trials)
                p50.add(name, round(_percentile(delays, 0.50), 3))
                p99.add(name, round(_percentile(delays, 0.99), 3))
                if timeouts:
                    notes.append(
                        f"{name}: in {timeouts} of {len(delays)} trials, tasks were still "
                        f"running {PATIENCE:g} s after the disconnect (counted as "
                        f"{PATIENCE * 1000:g} ms, a lower bound)."
                    )
    p99.met = p99.median(CHAIN) < CANCEL_TARGET
    p50.note = p99.note = "  \n".join(
        [
            f"{trials} trials per run, fresh servers for each run; a trial: POST /cancel, read "
            f"until the leaf's text arrives (all {TOOLS} tool tasks blocked by then), close the "
            "connection, time until the leaf's last task observed cancellation "
            "(CLOCK_MONOTONIC across processes). Heartbeats on (15 s, not reached).",
            *notes,
        ]
    )
    if not p99.met:
        p99.note += f"  \nMissed by {p99.median(CHAIN) - CANCEL_TARGET:.1f} ms."
    return [p50, p99]


# -- fan-out ----------------------------------------------------------------------------


def _read_timed(url: str, path: str, body: Any) -> tuple[float, dict[str, float], list[Chunk]]:
    """POST ``body``; decode the answer as it arrives.

    Returns the seconds to the last byte, the seconds to the first text delta
    under each parent id, and the chunks.
    """
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    decoder = DataStreamDecoder()
    first: dict[str, float] = {}
    chunks: list[Chunk] = []
    try:
        started = time.perf_counter()
        connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = connection.getresponse()
        while piece := response.read1(65536):
            now = time.perf_counter() - started
            for chunk in decoder.feed(piece):
                if isinstance(chunk, TextDeltaChunk):
                    first.setdefault(chunk.parent_id or "", now)
                chunks.append(chunk)
        total = time.perf_counter() - started
        chunks += decoder.close()
    finally:
        connection.close()
    return total, first, chunks


def _deltas_text(chunks: list[Chunk]) -> float:
    """How many deltas of ``TOKEN`` the text deltas of ``chunks`` make, merged or not."""
    text = sum(len(c.text_delta) for c in chunks if isinstance(c, TextDeltaChunk))
    return text / len(apps_stream.TOKEN)


def _fanout(server: Server, calls: int, n: int, shared: bool) -> tuple[float, list[float]]:
    """One fan-out: (seconds to the last byte, each call's seconds to its first delta)."""
    total, first, chunks = _read_timed(
        server.url, "/fanout", {"calls": calls, "n": n, "shared": shared}
    )
    deltas = _deltas_text(chunks)
    if deltas != calls * n or len(first) != calls:
        raise AssertionError(
            f"fan-out: {deltas:g} deltas' text of {calls * n}, {len(first)} calls"
        )
    return total, sorted(first.values())


def _fanout_figures(server: Server, calls: int, n: int, runs: int) -> list[Figure]:
    default = f"{calls} remote calls, a client each (default)"
    shared = f"{calls} remote calls, one shared httpx client"
    single = f"one remote call, {calls * n:,} deltas"
    total = Figure(
        key="remote-fanout-total",
        title=f"m9 · Fan-out: {calls} remote agents, {n:,} deltas each, to the last byte",
        unit="s",
        better="lower",
        ours=default,
        reference=single,
    )
    first = Figure(
        key="remote-fanout-first-delta",
        title=f"m9 · Fan-out: {calls} remote agents, request to each one's first delta",
        unit="ms",
        better="lower",
    )
    _fanout(server, calls, n, shared=False)  # warm-up
    for _ in range(runs):
        for name, is_shared in ((default, False), (shared, True)):
            seconds, firsts = _fanout(server, calls, n, is_shared)
            total.add(name, seconds)
            first.add(f"{name}: median", round(_percentile(firsts, 0.5) * 1000, 2))
            first.add(f"{name}: slowest", round(firsts[-1] * 1000, 2))
        seconds, _, chunks = _read_timed(server.url, "/text", {"n": calls * n})
        if _deltas_text(chunks) != calls * n:
            raise AssertionError("one remote call: deltas missing")
        total.add(single, seconds)
    total.note = first.note = (
        f"A's run opens {calls} remote tool calls at once, each to the leaf's /text with "
        f'{{"n": {n}}}; the client (http.client, decoding as the body arrives) times the last '
        "byte, and for each call the first text delta under its id. The reference row reads "
        "the same deltas through one remote call."
    )
    return [total, first]


def measure(smoke: bool) -> list[Figure]:
    n, runs = (2_000, 1) if smoke else (50_000, 5)
    trials, cancel_runs = (10, 1) if smoke else (200, 3)
    calls, deltas, fanout_runs = (5, 20, 1) if smoke else (50, 1_000, 5)
    with _chain() as servers:
        figures = _relay_figures(servers, n, runs)
        figures += _fanout_figures(servers[ONE_HOP], calls, deltas, fanout_runs)
    return figures + _cancel_figures(trials, cancel_runs)
