"""m5 · Concurrency: thousands of slow streams open at once on one worker.

What is measured: N clients (1,000, then 5,000) each open a stream of
``GET /tokens`` (``bench.apps_load``: a text delta every second for 15 s,
heartbeats on), all at the same time, on one server process. Six figures
per N:

* how many streams were served to the end: a complete chunked body with
  every token in it (the failures, by kind, go into the note);
* how many were open at once at the peak: a server too slow to accept and
  start streams while the first ones run never holds all N (the note gives
  how late the streams ended);
* how long after the first connection the last response started (its
  headers arrived): what a burst of N users waits for, at worst;
* the server's CPU time over the whole run, and that time per delivered
  delta (CPU microseconds / text deltas that reached the client, in complete
  bodies or not): the cost of one token, which a server that serves fewer
  streams cannot make look small;
* the server's memory per open stream: (peak RSS - idle RSS) / streams open
  at the peak, the RSS sampled every 100 ms while the streams run, the idle
  RSS taken after a warm-up of a few short streams (so that lazily imported
  code is not counted as per-stream memory).

The client is a separate process (``python -m bench.m5_concurrency --client``)
on asyncio with uvloop and bare ``asyncio.Protocol`` connections, a few
hundred bytes each, writing plain HTTP/1.1 requests and de-chunking the
bodies itself: an HTTP client library would cost more than the server under
test. It connects in waves: at most ``BURST`` connections may wait for their
response headers at a time, which the servers' listen backlog (4,096, the
same for all, ``bench._serve``) always takes, so no handshake is dropped and
retried by the kernel.

Contenders: trio-stream through ``trio-stream serve`` (the command as users
run it, with its collector thresholds); assistant-stream on uvicorn (its
command, its defaults), on uvicorn with the collector thresholds that
``trio-stream serve`` ships (so that the setting is not what tells the
libraries apart), and on hypercorn-asyncio; and the ceilings, a bare ASGI app
(``bench.apps_bare``) sending the same lines at the same pace, without
heartbeats, on hypercorn-trio as hypercorn ships it (with ``trio-stream
serve``'s thresholds), through ``trio-stream serve`` itself, and on uvicorn:
each row's distance to its own server's ceiling is what the library and its
framework cost.

Each stream's first token goes out as soon as its run starts, so streams
that a server starts in one pass of its loop stay in step: their tokens fall
due together and share the loop's wake-ups. A last run at 5,000 starts each
stream's pacing from a random fraction of the interval instead (ours, the
peer on uvicorn and both servers' ceilings), which takes that alignment away
from every server, as streams begun at random moments would.

Fair: the same app code shape for both libraries, a fresh server process for
each run, the same client, the same backlog. Full mode makes two runs at
1,000, one at 5,000 and one at 5,000 from a random phase (about twelve
minutes in all).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

from ._results import Figure
from ._servers import (
    OURS,
    PEER,
    PEER_CEILING,
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

__all__ = ["RssSampler", "measure"]

BURST = 1000
"""Connections that may wait for their response headers at once."""

MEMORY_FACTOR = 0.8
"""Our memory per open stream over the peer's on uvicorn, at most."""
CPU_AIM = 1.5
"""How many times less server CPU than the peer's on uvicorn we aim for (1.0 is the target)."""


Phase = Literal["zero", "random"]
"""When each stream's first delta is due: at once, or after a random fraction of the interval."""

RANDOM_PHASE = (OURS, PEER, SERVE_CEILING, PEER_CEILING)
"""The contenders of the extra run whose streams start from a random phase."""


def _contenders() -> list[Contender]:
    return [
        trio_stream("bench.apps_load:trio_app"),
        *assistant_stream("bench.apps_load:assistant_app"),
        assistant_stream_gc("bench.apps_load:assistant_app"),
        *ceilings(),
    ]


# -- the client (a process of its own) ---------------------------------------


def _dechunk(body: bytes) -> bytes | None:
    """The payload of a chunked body, or ``None`` if it is malformed or incomplete."""
    out = bytearray()
    at = 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            return None
        try:
            size = int(body[at:end].split(b";")[0], 16)
        except ValueError:
            return None
        if size == 0:
            return bytes(out) if body[end:] == b"\r\n\r\n" else None
        start = end + 2
        out += body[start : start + size]
        at = start + size + 2
        if body[start + size : at] != b"\r\n":
            return None


class _Stream(asyncio.Protocol):
    """One connection: send the request, collect the whole response."""

    def __init__(self, request: bytes, headers: asyncio.Future[None], done: asyncio.Future[str]):
        self.request = request
        self.headers = headers
        self.done = done
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.opened_at = 0.0
        self.closed_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.data += data
        if not self.headers.done() and b"\r\n\r\n" in self.data:
            self.opened_at = time.monotonic()
            self.headers.set_result(None)
        if self.data.endswith(b"\r\n0\r\n\r\n") and not self.done.done():
            self.closed_at = time.monotonic()
            self.done.set_result("ended")
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.headers.done():
            self.headers.set_result(None)
        if not self.done.done():
            self.closed_at = time.monotonic()
            self.done.set_result("closed early" if exc is None else f"lost: {exc!r}")


def _verdict(outcome: str, data: bytes, tokens: int) -> str:
    """``"ok"`` for a complete body with every token, else what went wrong."""
    if outcome != "ended":
        return outcome
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return f"status {head[:20].decode(errors='replace')}"
    payload = _dechunk(body)
    if payload is None:
        return "malformed chunked body"
    got = payload.count(b'\n0:"token') + payload.startswith(b'0:"token')
    return "ok" if got == tokens else f"{got} of {tokens} tokens"


async def _client(
    url: str, n: int, tokens: int, interval: float, phase: Phase, patience: float
) -> dict[str, Any]:
    """Open ``n`` streams of ``tokens`` tokens at once; what became of them.

    A stream that has not ended ``patience`` seconds after its headers
    arrived is aborted and counted as timed out.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /tokens?n={tokens}&interval={interval}&phase={phase} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nAccept: */*\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(BURST)
    streams: list[_Stream] = []
    verdicts: list[str] = []
    delivered: list[int] = []
    began = time.monotonic()

    async def one() -> None:
        headers: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[str] = loop.create_future()
        stream = _Stream(request, headers, done)
        streams.append(stream)
        async with gate:
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: stream, host, port), timeout=30
                )
                await asyncio.wait_for(asyncio.shield(headers), timeout=30)
            except (OSError, TimeoutError) as exc:
                if stream.transport is not None:
                    stream.transport.abort()
                verdicts.append(f"connect: {type(exc).__name__}")
                return
        try:
            outcome = await asyncio.wait_for(asyncio.shield(done), timeout=patience)
        except TimeoutError:
            outcome = "timed out"
            if stream.transport is not None:
                stream.transport.abort()
        verdicts.append(_verdict(outcome, bytes(stream.data), tokens))
        delivered.append(stream.data.count(b'0:"token'))

    await asyncio.gather(*(one() for _ in range(n)))
    events = sorted(
        [(s.opened_at, 1) for s in streams if s.opened_at]
        + [(s.closed_at, -1) for s in streams if s.opened_at]
    )
    open_now = peak_open = 0
    for _, step in events:
        open_now += step
        peak_open = max(peak_open, open_now)
    opened = [s.opened_at for s in streams if s.opened_at]
    failures: dict[str, int] = {}
    for verdict in verdicts:
        if verdict != "ok":
            failures[verdict] = failures.get(verdict, 0) + 1
    nominal = tokens * interval
    late = sorted(s.closed_at - s.opened_at - nominal for s in streams if s.opened_at)
    return {
        "complete": verdicts.count("ok"),
        "delivered": sum(delivered),
        "failures": failures,
        "peak_open": peak_open,
        "all_open_after": round(max(opened) - began, 2) if opened else None,
        "late_p50": round(late[len(late) // 2], 3) if late else None,
        "late_p99": round(late[int(len(late) * 0.99)], 3) if late else None,
        "seconds": round(time.monotonic() - began, 2),
    }


def _client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, help="the server's URL")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--phase", choices=get_args(Phase), default="zero")
    args = parser.parse_args(argv)
    import uvloop

    patience = args.tokens * args.interval + 60
    result = uvloop.run(
        _client(args.client, args.n, args.tokens, args.interval, args.phase, patience)
    )
    print(json.dumps(result))


def _run_client(
    server: Server, n: int, tokens: int, interval: float, phase: Phase = "zero"
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.m5_concurrency", "--client", server.url]
    argv += ["--n", str(n), "--tokens", str(tokens), "--interval", str(interval)]
    argv += ["--phase", phase]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the m5 client failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- the harness ---------------------------------------------------------------


class RssSampler:
    """Samples a server's RSS every ``every`` seconds in a thread; ``peak`` is the highest."""

    def __init__(self, server: Server, every: float) -> None:
        self.server = server
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(
    contender: Contender, n: int, tokens: int, interval: float, phase: Phase = "zero"
) -> dict[str, Any]:
    """One run: a fresh server, a warm-up, then ``n`` streams at once."""
    with serving(contender) as server:
        _run_client(server, 20, 2, 0.05)  # warm-up: imports, first allocations
        time.sleep(0.5)
        idle = server.rss()
        cpu = _cpu_seconds(server.pid)
        with RssSampler(server, 0.1) as sampler:
            result = _run_client(server, n, tokens, interval, phase)
        result["cpu_seconds"] = _cpu_seconds(server.pid) - cpu
        result["us_per_delta"] = result["cpu_seconds"] / max(result["delivered"], 1) * 1e6
        result["idle_rss"] = idle
        result["peak_rss"] = sampler.peak
        # Per stream actually open at the peak: a server too slow to open
        # all N while the first ones run never holds N at once.
        result["kib_per_stream"] = (sampler.peak - idle) / max(result["peak_open"], 1) / 1024
        return result


@dataclasses.dataclass
class _Figures:
    """The figures of one N, filled run by run."""

    n: int
    phase: Phase
    complete: Figure
    at_once: Figure
    start: Figure
    cpu: Figure
    cpu_per_delta: Figure
    memory: Figure

    @classmethod
    def of(cls, n: int, phase: Phase) -> _Figures:
        key = f"concurrency-{n}" + ("-random-phase" if phase == "random" else "")
        streams = f"{n:,} streams" + (" from a random phase" if phase == "random" else "")

        def figure(what: str, title: str, unit: str, better: Literal["higher", "lower"]) -> Figure:
            return Figure(key=f"{key}-{what}", title=f"m5 · {title}", unit=unit, better=better)

        return cls(
            n,
            phase,
            complete=figure(
                "complete", f"Streams served to the end, of {streams}", "streams", "higher"
            ),
            at_once=figure(
                "open", f"Streams open at once (peak), of {streams}", "streams", "higher"
            ),
            start=figure("start", f"Time to the last response start, {streams}", "s", "lower"),
            cpu=figure("cpu", f"Server CPU time, {streams}", "CPU s", "lower"),
            cpu_per_delta=figure(
                "cpu-per-delta",
                f"Server CPU per delivered delta, {streams}",
                "µs per delta",
                "lower",
            ),
            memory=figure(
                "memory", f"Server memory per open stream, {streams}", "KiB per stream", "lower"
            ),
        )

    def all(self) -> list[Figure]:
        return [
            self.complete,
            self.at_once,
            self.start,
            self.cpu,
            self.cpu_per_delta,
            self.memory,
        ]

    def add(self, name: str, result: dict[str, Any]) -> None:
        self.complete.add(name, result["complete"])
        self.at_once.add(name, result["peak_open"])
        self.start.add(name, float(result["all_open_after"] or 0))
        self.cpu.add(name, round(result["cpu_seconds"], 2))
        self.cpu_per_delta.add(name, round(result["us_per_delta"], 2))
        self.memory.add(name, round(result["kib_per_stream"], 2))


def measure(smoke: bool) -> list[Figure]:
    """Figures per N: streams complete and open at once, start, CPU, memory per stream.

    The streams of a burst start their pacing when their run starts, so a
    server that starts a batch of them in one pass of its loop has their
    deltas fall due together; the last run starts each stream's pacing from
    a random phase instead, which takes that alignment away from every
    server, as streams begun at random moments would.
    """
    tokens, interval = (3, 0.2) if smoke else (15, 1.0)
    plan: list[tuple[int, int, Phase]]
    if smoke:
        plan = [(50, 1, "zero"), (50, 1, "random")]
    else:
        # 2 runs at 1,000, 1 at 5,000 and 1 at 5,000 from a random phase: about
        # twelve minutes.
        plan = [(1000, 2, "zero"), (5000, 1, "zero"), (5000, 1, "random")]
    capacity = max(n for n, _, _ in plan)
    figures: list[Figure] = []
    for n, repeats, phase in plan:
        contenders = _contenders()
        if phase == "random":
            contenders = [c for c in contenders if c.name in RANDOM_PHASE]
        of_n = _Figures.of(n, phase)
        details: dict[str, list[dict[str, Any]]] = {}
        for _ in range(repeats):
            for contender in contenders:
                result = _one(contender, n, tokens, interval, phase)
                of_n.add(contender.name, result)
                details.setdefault(contender.name, []).append(result)
        _check(of_n, capacity=n == capacity and phase == "zero")
        _describe(of_n, _setting(n, tokens, interval, phase), details)
        for figure in of_n.all():
            figure.ceilings = ceilings_of(contenders)
        figures += of_n.all()
    return figures


def _setting(n: int, tokens: int, interval: float, phase: Phase) -> str:
    start = (
        "each stream's first token after a random fraction of the interval (lateness includes it)"
        if phase == "random"
        else "each stream's first token at once"
    )
    return (
        f"{n:,} streams of {tokens} tokens, one every {interval:g} s, {start} (heartbeats "
        f"on; none from the ceilings), opened at most {BURST:,} at a time, on one server "
        "process; the client is a separate process on raw asyncio sockets."
    )


def _describe(of_n: _Figures, setting: str, details: dict[str, list[dict[str, Any]]]) -> None:
    """The figures' notes: the setting, and what each contender's runs came to."""
    of_n.complete.note = _note(setting, details, _failures)
    of_n.at_once.note = _note(setting, details, _timing)
    of_n.start.note = of_n.at_once.note
    of_n.cpu.note = of_n.cpu_per_delta.note = _note(
        setting + " CPU: user and system time of the server process during the run, "
        "and that time over the text deltas the client received.",
        details,
        _cpu,
    )
    of_n.memory.note = _note(
        setting + " Memory per stream: (peak RSS - idle RSS) / streams open at the peak.",
        details,
        _memory,
    )


def _check(of_n: _Figures, capacity: bool) -> None:
    """The targets of one N; those of the burst (``capacity``) only at the largest N.

    The run from a random phase is checked only for serving every stream:
    the targets are set on the burst.
    """
    n = of_n.n
    for figure, what in ((of_n.complete, "complete"), (of_n.at_once, "open at once")):
        values = figure.runs[OURS]
        measured = ", ".join(f"{value:,.0f}" for value in values) + " in each run"
        figure.check(f"all {n:,} {what}", measured, all(value == n for value in values))
    if of_n.phase == "random":
        return
    memory = of_n.memory
    ours, peer = memory.median(OURS), memory.median(PEER)
    memory.check(
        f"<= {MEMORY_FACTOR:g}x {PEER}'s",
        f"{ours / peer if peer else float('inf'):.2f}x the peer's "
        f"({ours:.3g} KiB against {peer:.3g} KiB)",
        ours <= MEMORY_FACTOR * peer,
    )
    if not capacity:
        return
    for figure, text in (
        (of_n.cpu, f"no more than {PEER}'s (ratio >= 1.0; aim {CPU_AIM:g}x)"),
        (of_n.start, f"no later than {PEER}'s (ratio >= 1.0)"),
    ):
        ratio = figure.ratio(OURS, PEER)
        figure.check(
            text,
            f"ratio {ratio:.2f} ({figure.median(OURS):.3g} {figure.unit} against "
            f"{figure.median(PEER):.3g} {figure.unit})",
            ratio >= 1.0,
        )


def _failures(results: list[dict[str, Any]]) -> str:
    failures: dict[str, int] = {}
    for result in results:
        for reason, count in result["failures"].items():
            failures[reason] = failures.get(reason, 0) + count
    return "failures: " + (", ".join(f"{c} {r}" for r, c in failures.items()) or "none")


def _timing(results: list[dict[str, Any]]) -> str:
    def worst(key: str) -> float:
        return max(float(r[key] or 0) for r in results)

    return (
        f"all responses started within {worst('all_open_after'):g} s; streams ended "
        f"{worst('late_p50'):g} s late (p50), {worst('late_p99'):g} s (p99)"
    )


def _cpu(results: list[dict[str, Any]]) -> str:
    cpu = statistics.median(r["cpu_seconds"] for r in results)
    delivered = statistics.median(r["delivered"] for r in results)
    return f"server CPU {cpu:.2f} s for {delivered:,.0f} deltas delivered"


def _memory(results: list[dict[str, Any]]) -> str:
    idle = statistics.median(r["idle_rss"] for r in results) / 2**20
    peak = statistics.median(r["peak_rss"] for r in results) / 2**20
    return f"idle RSS {idle:.1f} MiB, peak {peak:.1f} MiB"


def _note(
    setting: str, details: dict[str, list[dict[str, Any]]], describe: Callable[[Any], str]
) -> str:
    lines = [setting]
    lines += [f"{name}: {describe(results)}." for name, results in details.items()]
    return "  \n".join(lines)


if __name__ == "__main__":
    _client_main(sys.argv[1:])
