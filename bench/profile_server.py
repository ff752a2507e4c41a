"""Where a server on hypercorn's Trio worker spends its CPU on paced streams.

    python -m bench.profile_server [--n 1000] [--tokens 5] [--interval 1] [--repeat 1]
        [--set name=value ...] [--gc 50000,20,10 | --gc default] [--gc-freeze]
        [--app bench.apps_bare:trio_app] [--via hypercorn | --via trio-stream] [--lines K]
        [--steps counts.json] [--profile out [--py-spy PATH]] [--top 40]

Serves an app (by default the bare ceiling app of ``bench.apps_bare``) in a
process of its own, warms it up, then opens ``--n`` streams of ``GET
/tokens`` at once with m5's client (``bench.m5_concurrency``: raw asyncio
sockets in another process), and prints what m5 reports for one run, as
JSON (the median of ``--repeat`` runs, and each run): streams complete and
open at once, the server's CPU seconds (user and system time of its process
during the load) and its system part, CPU µs per delivered delta and per
stream, KiB per open stream. Two runs that differ only in ``--tokens`` split
the cost into a part per delta (the slope) and a part per connection.

What can be varied, one at a time:

* ``--set name=value``: any attribute of hypercorn's ``Config`` (the value
  is read as a Python literal, so ``--set read_timeout=None``);
* ``--gc``: the collector's thresholds (``trio-stream serve``'s by default,
  as the ceiling runs); ``--gc-freeze``: ``gc.freeze()`` once the app is
  imported, so that no collection walks the objects made at start-up;
* ``--via trio-stream``: the app behind ``trio_stream.serve`` (the lifespan
  guard and the shutdown notice) rather than hypercorn's ``serve`` alone;
  with ``--app bench.apps_load:trio_app``, the library's row of m5;
* ``--lines K``: each ``send`` of a ``/tokens`` body carries its token line
  ``K`` times (the same number of writes, ``K`` times the bytes and deltas):
  how much of a write's cost is per write rather than per byte.

What can be looked at:

* ``--primitives``: µs of CPU per use of each piece of a write (a task step,
  ``trio.Lock``, a shielded cancel scope, ``socket.send``, Trio's
  ``send_all``, ``trio.sleep``, h11's ``send``), alone in one Trio task, in
  this process; ``--one-connection W``: the server's CPU per ASGI body
  message when the ceiling's ``/text?mode=chunk`` writes ``W`` lines on one
  connection, unpaced;
* ``--memory``: half-way through the load, the memory live in the server
  by the line that allocated it (tracemalloc), per stream;
* ``--steps``: Trio's task steps, tasks spawned and waits for I/O per stream
  (counted by an instrument, the warm-up's 20 streams included);
* ``--profile``: one more run, under cProfile (CPU time; the profiler slows
  small functions most, so its shares are indicative), or sampled by py-spy
  with ``--py-spy`` (wall-clock samples of the busy process: a send that
  wakes the client on the same core is charged for the time the client
  runs). The functions are printed with their share, scaled to the CPU of
  the runs without a profiler, per delivered delta and per stream.

The server process: ``python -m bench.profile_server --serve PORT ...``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import cProfile
import gc
import json
import os
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

from trio.abc import Instrument
from trio.lowlevel import Task

from ._gc import SERVE_GC_THRESHOLDS
from ._servers import BACKLOG, ROOT, Server, free_port, wait_for_port
from .m5_concurrency import RssSampler

__all__ = ["main"]

Message = dict[str, Any]
ASGI = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


# -- the server process ----------------------------------------------------------


def _lines_app(inner: ASGI, lines: int) -> ASGI:
    """``inner`` with each token line of its ``/tokens`` body repeated ``lines`` times per send."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        async def widened(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] == "http.response.body" and body.startswith(b'0:"token'):
                message = {**message, "body": body * lines}
            await send(message)

        await inner(scope, receive, widened)

    return app


class _Counts(Instrument):
    """A Trio instrument counting task steps, tasks spawned and waits for I/O."""

    def __init__(self) -> None:
        self.counts = {"task_steps": 0, "tasks_spawned": 0, "io_waits": 0}

    def before_task_step(self, task: Task) -> None:
        self.counts["task_steps"] += 1

    def task_spawned(self, task: Task) -> None:
        self.counts["tasks_spawned"] += 1

    def before_io_wait(self, timeout: float) -> None:
        self.counts["io_waits"] += 1


def _config(port: int, settings: list[str]) -> Any:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = BACKLOG
    config.accesslog = None
    for setting in settings:
        name, _, text = setting.partition("=")
        if not hasattr(config, name):
            raise SystemExit(f"hypercorn's Config has no {name!r}")
        setattr(config, name, ast.literal_eval(text))
    return config


async def _with_snapshots(serving: Callable[[], Awaitable[object]], path: str) -> None:
    """``serving()``, tracing allocations; on SIGUSR1, the live memory by line to ``path``."""
    import tracemalloc

    import trio

    async def snapshots() -> None:
        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async for _ in signals:
                gc.collect()
                statistics = tracemalloc.take_snapshot().statistics("lineno")
                lines = []
                for entry in statistics:
                    frame = entry.traceback[0]
                    module = _where(f"x ({frame.filename}:{frame.lineno})")[1]
                    lines.append(f"{entry.size}\t{entry.count}\t{module}:{frame.lineno}\n")
                await trio.Path(path).write_text("".join(lines))

    tracemalloc.start()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(snapshots)
        await serving()
        nursery.cancel_scope.cancel()


def _serve_main(args: argparse.Namespace) -> None:
    import importlib

    import trio

    module, _, attribute = args.app.partition(":")
    app: ASGI = getattr(importlib.import_module(module), attribute)
    if args.lines > 1:
        app = _lines_app(app, args.lines)
    config = _config(args.serve, args.set)

    async def terminated() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                return

    serving: Callable[[], Awaitable[object]]
    if args.via == "trio-stream":
        from trio_stream import serve

        serving = partial(serve, app, config=config, shutdown_trigger=terminated)  # type: ignore[arg-type]
    else:
        from hypercorn.trio import serve as hypercorn_serve

        serving = partial(hypercorn_serve, app, config, shutdown_trigger=terminated, mode="asgi")  # type: ignore[arg-type]
    if args.gc != "default":
        gc.set_threshold(*(int(part) for part in args.gc.split(",")))
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    if args.memory:
        serving = partial(_with_snapshots, serving, args.memory)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    if profiler is not None:
        profiler.enable()
    counts = _Counts()
    trio.run(serving, instruments=[counts] if args.steps else [])
    if args.steps:
        with open(args.steps, "w") as output:
            json.dump(counts.counts, output)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)


# -- the harness -------------------------------------------------------------------


@contextlib.contextmanager
def _serving(args: argparse.Namespace, profile: str | None) -> Iterator[Server]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.profile_server", "--serve", str(port)]
    argv += ["--app", args.app, "--via", args.via, "--gc", args.gc, "--lines", str(args.lines)]
    argv += [f"--set={setting}" for setting in args.set]
    if args.gc_freeze:
        argv.append("--gc-freeze")
    if profile:
        argv += ["--profile", profile]
    if args.steps:
        argv += ["--steps", args.steps]
    if args.memory:
        argv += ["--memory", args.memory]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)

        def failure() -> str:
            errors.seek(0)
            return errors.read().decode(errors="replace")

        try:
            wait_for_port(process, port, 30, failure)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _client(server: Server, n: int, tokens: int, interval: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.m5_concurrency", "--client", server.url]
    argv += ["--n", str(n), "--tokens", str(tokens), "--interval", str(interval)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def _sampling(py_spy: str | None, pid: int, output: str | None) -> Iterator[None]:
    """py-spy sampling process ``pid`` (idle time left out) while the block runs, if asked."""
    if py_spy is None or output is None:
        yield
        return
    argv = [py_spy, "record", "--pid", str(pid), "--rate", "500", "--nonblocking"]
    sampler = subprocess.Popen(
        [*argv, "--format", "raw", "--output", output], stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=30)


def _snapshot(pid: int) -> None:
    os.kill(pid, signal.SIGUSR1)


def _one(args: argparse.Namespace, profile: str | None) -> dict[str, Any]:
    with _serving(args, None if args.py_spy else profile) as server:
        _client(server, 20, 2, 0.05)
        time.sleep(0.5)
        idle, cpu = server.rss(), _cpu_seconds(server.pid)
        with RssSampler(server, 0.1) as sampler, _sampling(args.py_spy, server.pid, profile):
            if args.memory:
                timer = threading.Timer(
                    args.tokens * args.interval / 2 + 1, _snapshot, [server.pid]
                )
                timer.start()
            result = _client(server, args.n, args.tokens, args.interval)
        user, system = (
            after - before for after, before in zip(_cpu_seconds(server.pid), cpu, strict=True)
        )
        result["cpu_seconds"] = round(user + system, 3)
        result["system_seconds"] = round(system, 3)
        # The client counts token lines: with --lines K, K a write.
        result["us_per_delta"] = round(
            result["cpu_seconds"] / max(result["delivered"], 1) * 1e6, 2
        )
        result["us_per_stream"] = round(result["cpu_seconds"] / args.n * 1e6, 1)
        result["kib_per_stream"] = round(
            (sampler.peak - idle) / max(result["peak_open"], 1) / 1024, 2
        )
    if args.steps:
        with open(args.steps) as counted:
            warm_up = 20  # streams
            per_stream = {
                k: round(v / (args.n + warm_up), 2) for k, v in json.load(counted).items()
            }
        result["per_stream"] = per_stream
    return result


def _top(path: str, cpu: float, deltas: int, streams: int, top: int) -> list[str]:
    """The functions with the most time of their own, scaled to ``cpu`` seconds."""
    stats = pstats.Stats(path)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values()) or 1.0
    rows = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines = [f"{'share':>6} {'us/delta':>9} {'us/stream':>10} {'calls/stream':>13}  function"]
    for (file, line, name), (_, calls, own, *_rest) in rows:
        seconds = own / total * cpu
        where = (
            f"{os.path.relpath(file, sys.prefix) if file.startswith(sys.prefix) else file}:{line}"
        )
        lines.append(
            f"{own / total:6.1%} {seconds / deltas * 1e6:9.2f} {seconds / streams * 1e6:10.1f} "
            f"{calls / streams:13.1f}  {name} ({where})"
        )
    return lines


def _where(frame: str) -> tuple[str, str]:
    """A py-spy frame ``name (file:line)`` as (function, module path without the prefix)."""
    name, _, rest = frame.partition(" (")
    file = rest.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return name, file


def _samples(path: str, cpu: float, deltas: int, streams: int, top: int) -> list[str]:
    """py-spy's stacks: time of its own per module and per function, inclusive per function."""
    own_module: dict[str, int] = {}
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(path) as raw:
        for line in raw:
            stack, _, count_text = line.rstrip().rpartition(" ")
            count = int(count_text)
            total += count
            frames = [_where(frame) for frame in stack.split(";")]
            name, file = frames[-1]
            own_module[file] = own_module.get(file, 0) + count
            own[f"{name} ({file})"] = own.get(f"{name} ({file})", 0) + count
            for function in {f"{name} ({file})" for name, file in frames}:
                inclusive[function] = inclusive.get(function, 0) + count

    def rows(title: str, table: dict[str, int]) -> list[str]:
        lines = [f"{title}: {'share':>6} {'us/delta':>9} {'us/stream':>10}"]
        for key, count in sorted(table.items(), key=lambda item: -item[1])[:top]:
            seconds = count / max(total, 1) * cpu
            lines.append(
                f"{count / max(total, 1):6.1%} {seconds / deltas * 1e6:9.2f} "
                f"{seconds / streams * 1e6:10.1f}  {key}"
            )
        return lines

    return [
        f"{total} samples",
        *rows("own time by module", own_module),
        *rows("own time by function", own),
        *rows("inclusive time by function", inclusive),
    ]


def _primitives(repeats: int = 100_000) -> dict[str, float]:
    """µs of CPU per use of each piece of the write path, alone in one Trio task."""
    import h11
    import trio

    def timed(run: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[float]]:
        async def measured() -> float:
            start = time.process_time()
            uses = await run()
            return round((time.process_time() - start) / uses * 1e6, 2)

        return measured

    async def step() -> int:
        for _ in range(repeats):
            await trio.lowlevel.cancel_shielded_checkpoint()
        return repeats

    async def lock() -> int:
        held = trio.Lock()
        for _ in range(repeats):
            async with held:
                pass
        return repeats

    async def shielded_scope() -> int:
        for _ in range(repeats):
            with trio.CancelScope(shield=True):  # noqa: ASYNC100 (its cost is measured)
                pass
        return repeats

    async def sends(trio_stream: bool) -> int:
        ours, theirs = trio.socket.socketpair()
        stream = trio.SocketStream(ours)
        for i in range(repeats // 4):
            if trio_stream:
                await stream.send_all(b"x" * 20)
            else:
                ours._sock.send(b"x" * 20)  # type: ignore[attr-defined]
            if i % 50 == 49:
                await theirs.recv(1 << 20)
        return repeats // 4

    async def sleep() -> int:
        for _ in range(repeats // 4):
            await trio.sleep(1e-6)
        return repeats // 4

    async def h11_data() -> int:
        connection = h11.Connection(h11.SERVER)
        connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.next_event()
        connection.send(h11.Response(status_code=200, headers=[(b"content-type", b"text/plain")]))
        for _ in range(repeats):
            connection.send(h11.Data(data=b'0:"token1 "\n'))
        return repeats

    pieces: dict[str, Callable[[], Awaitable[int]]] = {
        "task step (cancel_shielded_checkpoint)": step,
        "trio.Lock, acquired and released": lock,
        "CancelScope(shield=True), entered and left": shielded_scope,
        "socket.send, 20 bytes": partial(sends, False),
        "SocketStream.send_all, 20 bytes": partial(sends, True),
        "trio.sleep(1e-6)": sleep,
        "h11 Connection.send(Data)": h11_data,
    }

    async def all_of_them() -> dict[str, float]:
        return {name: await timed(run)() for name, run in pieces.items()}

    gc.set_threshold(*SERVE_GC_THRESHOLDS)
    return trio.run(all_of_them)


def _one_connection(args: argparse.Namespace, writes: int) -> float:
    """Server CPU µs per ASGI body message: ``/text?mode=chunk`` on one connection, unpaced."""
    with _serving(args, None) as server:
        port = int(server.url.rsplit(":", 1)[1])

        def get(lines: int) -> None:
            with socket.create_connection(("127.0.0.1", port)) as connection:
                request = f"GET /text?n={lines}&mode=chunk HTTP/1.1\r\nHost: x\r\n\r\n"
                connection.sendall(request.encode())
                while (data := connection.recv(1 << 20)) and not data.endswith(b"0\r\n\r\n"):
                    pass

        get(1000)
        before = sum(_cpu_seconds(server.pid))
        get(writes)
        return round((sum(_cpu_seconds(server.pid)) - before) / writes * 1e6, 2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_server")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--gc", default=",".join(map(str, SERVE_GC_THRESHOLDS)))
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before serving")
    parser.add_argument("--app", default="bench.apps_bare:trio_app")
    parser.add_argument("--lines", type=int, default=1)
    parser.add_argument("--via", choices=("hypercorn", "trio-stream"), default="hypercorn")
    parser.add_argument("--profile")
    parser.add_argument("--steps", metavar="PATH", help="count Trio's task steps (JSON to PATH)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--memory", metavar="PATH", help="tracemalloc: live memory by line")
    parser.add_argument("--primitives", action="store_true", help="time the write path's pieces")
    parser.add_argument("--one-connection", type=int, metavar="WRITES", help="CPU per write")
    parser.add_argument("--py-spy", metavar="PATH", help="with --profile: sample with py-spy")
    return parser


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    if args.serve is not None:
        _serve_main(args)
        return
    if args.primitives:
        print(json.dumps(_primitives()))
        return
    if args.one_connection:
        print(json.dumps({"us_per_write": _one_connection(args, args.one_connection)}))
        return
    results = [_one(args, None) for _ in range(args.repeat)]
    keys = (
        "cpu_seconds",
        "system_seconds",
        "us_per_delta",
        "us_per_stream",
        "kib_per_stream",
        "all_open_after",
    )
    summary: dict[str, Any] = {
        key: round(statistics.median(float(r[key] or 0) for r in results), 3) for key in keys
    }
    extra = ("complete", "peak_open", "per_stream")
    summary["runs"] = [{key: r[key] for key in (*keys, *extra) if key in r} for r in results]
    print(json.dumps(summary))
    if args.memory:
        with open(args.memory) as memory:
            entries = [line.rstrip("\n").split("\t") for line in memory]
        by_module: dict[str, int] = {}
        for size, _, where in entries:
            module = where.rsplit(":", 1)[0]
            by_module[module] = by_module.get(module, 0) + int(size)
        total = sum(int(size) for size, _, _ in entries)
        print(f"traced: {total / args.n:.1f} B/stream; by module:")
        for module, held in sorted(by_module.items(), key=lambda item: -item[1])[: args.top]:
            print(f"{held / args.n:9.1f} B/stream  {module}")
        print("by line:")
        for size, count, where in entries[: args.top]:
            print(f"{int(size) / args.n:9.1f} B/stream {int(count) / args.n:7.2f} blocks  {where}")
    if args.profile:
        _one(args, args.profile)
        deltas = args.n * args.tokens * args.lines
        report = _samples if args.py_spy else _top
        for line in report(args.profile, summary["cpu_seconds"], deltas, args.n, args.top):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
