"""m11 · Workers: how many paced streams a server keeps on time, with 1 and 2 worker processes.

What is measured: the *capacity* of a server for paced streams, the largest
number of streams open at once whose text deltas all arrive on time, p99 of
their lateness at most ``LATENESS``. Each stream is ``GET /paced``
(``bench.apps_load``): delta ``i`` is produced ``i * interval`` seconds
after the run began, as a model's tokens come, whatever became of the ones
before. A delta's lateness is how long after its schedule it arrives at the
client, the schedule being ``i * interval`` seconds after the client sent
its request: the time a connection waits to be accepted and the stream to
start counts too. A server with time to spare delivers within a millisecond
or two; one that cannot keep up falls further behind with every second, so
the lateness climbs steeply past its capacity.

A trial opens N streams at an even rate over ``ramp`` seconds, as a burst of
chat users would arrive, on a fresh server whose every worker has answered
(``GET /pid``) and served a few warm-up streams. The contenders climb a
ladder of N together, each rung ``STEP`` times the one below, taking turns
on each rung, so that whatever else runs on the machine meanwhile weighs on
them alike. A contender leaves the ladder at its first rung late (p99 above
``LATENESS``, or a stream failed), once a second trial on that rung agrees:
other processes can only make a trial later, so the better of the two
counts. Its capacity is where the lateness crosses ``LATENESS`` between its
last two rungs (linear in N), or its last rung if it never did.

Two workers need both cores, so this measurement, more than any other,
measures whatever else runs on the machine. In full mode each trial waits
for the machine to be quiet (its other processes using at most ``QUIET``
cores over three seconds, waiting up to a minute) and is tried again, up to
``ATTEMPTS`` times, if they used more during it; the attempt they disturbed
least counts, and the note says how many there were.

Contenders: ``trio-stream serve --workers 1`` and ``--workers 2`` (the
command as users run it, with its garbage collector thresholds), and the
peer's app on ``uvicorn --workers 1`` and ``--workers 2`` (uvloop and
httptools, Python's collector defaults), none with an access log, all with a
backlog of 4,096. The target: two workers keep at least ``TARGET`` times the
streams of one on time. The client is one process (``python -m
bench.m11_workers --client``) on uvloop with bare ``asyncio.Protocol``
connections, as in m5. On a two-core machine the client shares the cores
with the workers, and so does anything else running: the note gives, for
each rung, the CPU time of the server (and of its busiest workers), of the
client, and of the machine's other processes, against the seconds it took.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import concurrent.futures
import dataclasses
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from ._results import Figure
from ._servers import Contender, Server, serving

__all__ = ["measure"]

LATENESS = 0.25
"""Seconds: the p99 lateness of a delta under which a server is on time."""

STEP = 1.25
"""How much larger each rung of the ladder is than the one below."""

TARGET = 1.7
"""Two workers' capacity over one worker's."""

QUIET = 0.2
"""Cores the machine's other processes may use during a trial for it to count."""

ATTEMPTS = 4
"""Trials of a rung at most, while the rest of the machine is busy."""

ONE = Contender(
    "trio-stream · hypercorn-trio · 1 worker", "bench.apps_load:trio_app", "trio-stream serve", 1
)
TWO = Contender(
    "trio-stream · hypercorn-trio · 2 workers", "bench.apps_load:trio_app", "trio-stream serve", 2
)
PEER_ONE = Contender(
    "assistant-stream · uvicorn · 1 worker", "bench.apps_load:assistant_app", "uvicorn", 1
)
PEER = Contender(
    "assistant-stream · uvicorn · 2 workers", "bench.apps_load:assistant_app", "uvicorn", 2
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A ladder of trials, and the streams of each."""

    start: int
    rungs: int
    tokens: int
    interval: float
    ramp: float
    quiet: bool = False
    """Whether trials wait for, and count only, a quiet machine (``QUIET``)."""


# -- the client (a process of its own) ---------------------------------------

_TOKEN = re.compile(rb'0:"token(\d+) "\n')


class _Paced(asyncio.Protocol):
    """One stream: send the request, keep the bytes and when each piece arrived."""

    def __init__(self, request: bytes, done: asyncio.Future[str]) -> None:
        self.request = request
        self.done = done
        self.data = bytearray()
        self.arrivals: list[float] = []
        self.received: list[int] = []
        """``received[i]``: bytes received in all once ``arrivals[i]`` came."""
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)
        self.sent_at = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.arrivals.append(time.monotonic())
        self.received.append(len(self.data))
        if self.data.endswith(b"\r\n0\r\n\r\n") and not self.done.done():
            self.done.set_result("ended")
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result("closed early" if exc is None else f"lost: {exc!r}")

    def lateness(self, tokens: int, interval: float) -> list[float] | str:
        """Each delta's lateness, or what went wrong with the stream."""
        if not self.data.startswith(b"HTTP/1.1 200"):
            return f"status {bytes(self.data[:20]).decode(errors='replace')}"
        ends = [found.end() for found in _TOKEN.finditer(self.data)]
        if len(ends) != tokens:
            return f"{len(ends)} of {tokens} tokens"
        times = [self.arrivals[bisect.bisect_left(self.received, end)] for end in ends]
        return [at - (self.sent_at + index * interval) for index, at in enumerate(times)]


async def _client(url: str, plan: Plan, n: int) -> dict[str, Any]:
    """Open ``n`` streams over ``plan.ramp`` seconds; how late their deltas came."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /paced?n={plan.tokens}&interval={plan.interval} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nAccept: */*\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    patience = plan.tokens * plan.interval + 60
    outcomes: list[tuple[str, _Paced]] = []

    async def one() -> None:
        done: asyncio.Future[str] = loop.create_future()
        stream = _Paced(request, done)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: stream, host, port), 30)
            outcome = await asyncio.wait_for(asyncio.shield(done), patience)
        except (OSError, TimeoutError) as exc:
            outcome = f"{type(exc).__name__}"
            if stream.transport is not None:
                stream.transport.abort()
        outcomes.append((outcome, stream))

    began = time.monotonic()
    tasks = []
    for index in range(n):
        await asyncio.sleep(max(0.0, began + index * plan.ramp / n - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    late: list[float] = []
    failures: dict[str, int] = {}
    for outcome, stream in outcomes:
        verdict = stream.lateness(plan.tokens, plan.interval) if outcome == "ended" else outcome
        if isinstance(verdict, str):
            failures[verdict] = failures.get(verdict, 0) + 1
        else:
            late += verdict
    late.sort()
    return {
        "n": n,
        "complete": n - sum(failures.values()),
        "failures": failures,
        "p50": round(late[len(late) // 2], 4) if late else None,
        "p99": round(late[int(len(late) * 0.99)], 4) if late else None,
        "max": round(late[-1], 4) if late else None,
        "client_cpu": round(cpu.ru_utime + cpu.ru_stime, 2),
    }


def _client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, help="the server's URL")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--ramp", type=float, required=True)
    args = parser.parse_args(argv)
    import uvloop

    plan = Plan(args.n, 1, args.tokens, args.interval, args.ramp)
    print(json.dumps(uvloop.run(_client(args.client, plan, args.n))))


def _run_client(server: Server, plan: Plan, n: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.m11_workers", "--client", server.url, "--n", str(n)]
    argv += ["--tokens", str(plan.tokens), "--interval", str(plan.interval)]
    argv += ["--ramp", str(plan.ramp)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the m11 client failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- the harness ---------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, below = [pid], [pid]
    while below:
        more = children.get(below.pop(), [])
        found += more
        below += more
    return found


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time of each of ``pids`` so far (those still running)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def _machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since it started (Linux's /proc)."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _every_worker_answers(url: str, workers: int) -> None:
    """Wait until ``workers`` processes have answered ``GET /pid``, ten requests at a time."""
    seen: set[str] = set()

    def pid() -> str:
        with urllib.request.urlopen(f"{url}/pid", timeout=30) as response:
            return cast(bytes, response.read()).decode()

    deadline = time.monotonic() + 60
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        while len(seen) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen)} of {workers} workers answered")
            seen.update(pool.map(lambda _: pid(), range(10)))


def _trial(contender: Contender, plan: Plan, n: int) -> dict[str, Any]:
    """One rung: a fresh server, every worker up and warmed, then ``n`` paced streams."""
    with serving(contender) as server:
        _every_worker_answers(server.url, contender.workers or 1)
        _run_client(server, Plan(20, 1, 2, 0.05, 0.0), 20)  # imports, first allocations
        processes = _tree(server.pid)
        before, busy, began = _cpu_seconds(processes), _machine_busy_seconds(), time.monotonic()
        result = _run_client(server, plan, n)
        after, busy = _cpu_seconds(processes), _machine_busy_seconds() - busy
        result["seconds"] = round(time.monotonic() - began, 1)
    used = {pid: after[pid] - before[pid] for pid in after if pid in before}
    result["server_cpu"] = round(sum(used.values()), 2)
    # What the rest of the machine used meanwhile: on a shared machine, cores the
    # workers could not have.
    result["others_cpu"] = round(max(busy - result["server_cpu"] - result["client_cpu"], 0), 1)
    busiest = sorted(used.values(), reverse=True)[: contender.workers or 1]
    result["worker_cpu"] = [round(seconds, 1) for seconds in busiest]
    return result


def _others_cores(seconds: float) -> float:
    """Cores the machine used over the next ``seconds``, while this process sleeps."""
    busy = _machine_busy_seconds()
    time.sleep(seconds)
    return (_machine_busy_seconds() - busy) / seconds


def _quiet_trial(contender: Contender, plan: Plan, n: int) -> dict[str, Any]:
    """A trial during which the rest of the machine stayed quiet, if it did in ``ATTEMPTS``.

    Before each attempt, waits (up to a minute) for the machine to be quiet;
    if it was not, the attempt with the least of others' CPU counts.
    """
    attempts = []
    for _ in range(ATTEMPTS if plan.quiet else 1):
        deadline = time.monotonic() + 60
        while plan.quiet and _others_cores(3) > QUIET and time.monotonic() < deadline:
            pass
        attempts.append(_trial(contender, plan, n))
        if attempts[-1]["others_cpu"] <= QUIET * attempts[-1]["seconds"]:
            break
    trial = min(attempts, key=lambda attempt: attempt["others_cpu"] / attempt["seconds"])
    trial["attempts"] = len(attempts)
    return trial


def _on_time(result: dict[str, Any]) -> bool:
    return not result["failures"] and result["p99"] is not None and result["p99"] <= LATENESS


def _capacity(trials: list[dict[str, Any]]) -> float:
    """Where the p99 lateness crosses ``LATENESS``, between the last rung on time and the next."""
    on_time = [trial for trial in trials if _on_time(trial)]
    if not on_time:
        return 0.0
    below = on_time[-1]
    above = next((trial for trial in trials if trial["n"] > below["n"]), None)
    if above is None or above["failures"] or above["p99"] is None:
        return float(below["n"])
    share = (LATENESS - below["p99"]) / (above["p99"] - below["p99"])
    return float(below["n"] + share * (above["n"] - below["n"]))


def _late(trial: dict[str, Any]) -> tuple[int, float]:
    """How badly a trial missed: failed streams first, then the p99 lateness."""
    return sum(trial["failures"].values()), trial["p99"] or 0.0


def _ladders(contenders: list[Contender], plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """Every contender's trials, up the ladder until each one is late (or the rungs run out)."""
    trials: dict[str, list[dict[str, Any]]] = {contender.name: [] for contender in contenders}
    climbing = list(contenders)
    n = plan.start
    for _ in range(plan.rungs):
        for contender in list(climbing):
            trial = _quiet_trial(contender, plan, n)
            if not _on_time(trial):  # a second look, in case the first one was unlucky
                trial = min(trial, _quiet_trial(contender, plan, n), key=_late)
                trial["tries"] = 2
            if not _on_time(trial):
                climbing.remove(contender)
            trials[contender.name].append(trial)
            print(f"   {contender.name:40} {n:>6} streams: {_describe(trial)}", flush=True)
        if not climbing:
            break
        n = round(n * STEP)
    return trials


def _describe(trial: dict[str, Any]) -> str:
    failed = ", ".join(f"{count} {why}" for why, count in trial["failures"].items())
    return (
        f"p50 {trial['p50']} s, p99 {trial['p99']} s late"
        + (f", failed: {failed}" if failed else "")
        + f"; CPU: server {trial['server_cpu']} s (workers {trial['worker_cpu']}),"
        f" client {trial['client_cpu']} s, other processes {trial['others_cpu']} s,"
        f" in {trial['seconds']} s"
        + (" (the better of 2 trials)" if trial.get("tries") == 2 else "")
        + (f" ({trial['attempts']} attempts)" if trial.get("attempts", 1) > 1 else "")
    )


def measure(smoke: bool) -> list[Figure]:
    """The capacity of each contender, and what each rung of its ladder showed."""
    if smoke:
        plan = Plan(start=20, rungs=1, tokens=5, interval=0.1, ramp=0.2)
        repeats = 1
    else:
        plan = Plan(start=400, rungs=12, tokens=100, interval=0.1, ramp=2.0, quiet=True)
        repeats = 1
    figure = Figure(
        key="workers-capacity",
        title=f"m11 · Paced streams kept on time (p99 lateness ≤ {LATENESS:g} s)",
        unit="streams",
        better="higher",
        target=f"2 workers ≥ {TARGET:g}x 1 worker",
        ours=TWO.name,
        reference=ONE.name,
    )
    ladders: dict[str, list[list[dict[str, Any]]]] = {}
    for _ in range(repeats):
        for name, trials in _ladders([ONE, TWO, PEER_ONE, PEER], plan).items():
            figure.add(name, round(_capacity(trials)))
            ladders.setdefault(name, []).append(trials)
    figure.met = figure.ratio(TWO.name, ONE.name) >= TARGET
    lines = [
        f"Streams of {plan.tokens} deltas, one every {plan.interval:g} s, opened at an even "
        f"rate over {plan.ramp:g} s; rungs from {plan.start:,} streams, each {STEP:g}x the "
        "one below, the contenders taking turns, until the p99 lateness passes the limit "
        "in two trials. Ladders (streams: lateness, CPU seconds):"
    ]
    for name, runs in ladders.items():
        for trials in runs:
            rungs = "; ".join(f"{t['n']:,}: {_describe(t)}" for t in trials)
            lines.append(f"{name}: {rungs}.")
    figure.note = "  \n".join(lines)
    return [figure]


if __name__ == "__main__":
    _client_main(sys.argv[1:])
