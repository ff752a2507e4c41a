"""Where a paced stream's time and memory go: a reproducible profile of one worker.

    python -m bench.profile_paced [--streams 1000] [--rate 30] [--seconds 10]
                                  [--profile out.prof] [--tracemalloc] [--app ceiling]
                                  [--gc G0,G1,G2]

Starts ``trio-stream serve bench.profile_paced:app`` as users run it (its GC
thresholds included, no access log), warms it up, then opens ``--streams``
streams of ``GET /paced`` at once from a client process (uvloop, raw
sockets), each a text delta ``--rate`` times a second for ``--seconds``,
with heartbeats on. It prints the server's CPU seconds over the run and the
cyclic garbage collector's share of them, its memory per open stream (RSS;
and Python's own allocations with ``--tracemalloc``, which slows the server
down), the objects the garbage collector tracks per open stream, what only
the collector could free once the streams had ended, and, with
``--profile``, cProfile's top entries for the server over the run.
``--app ceiling`` serves the ceiling's bare app (``bench.apps_bare``) on the
same server instead: the same figures for the server alone. ``--gc`` sets the
collector's thresholds in the server in place of the command's.

These figures are robust to a shared machine where wall-clock ones are not:
CPU time and counts do not depend on what else runs, so long as the server
keeps up with the pace.

``app`` is ``bench.apps_load``'s trio-stream app with routes of its own:
``/_probe`` (counts taken at the peak: GC-tracked objects, allocated blocks,
traced memory, Trio tasks), ``/_collecting`` (the collector's seconds so
far), ``/_unreachable`` (a collection's unreachable objects, by type) and
``/_profile/start``, ``/_profile/stop?path=`` (cProfile of the server's own
thread over the run).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import threading
import time
import tracemalloc
import types
from typing import Any

import trio
from starlette.types import Receive, Scope, Send

from ._servers import ROOT, Server, free_port, wait_for_port
from .apps_bare import trio_app as bare_trio_app
from .apps_load import trio_app

# -- the server side -------------------------------------------------------------

_profiler: cProfile.Profile | None = None
_idle_snapshot: tracemalloc.Snapshot | None = None
_collecting = {"since": 0.0, "seconds": 0.0, "count": 0.0}


def _time_collections(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` entry: adds up the time the cyclic collector takes."""
    if phase == "start":
        _collecting["since"] = time.thread_time()
    else:
        _collecting["seconds"] += time.thread_time() - _collecting["since"]
        _collecting["count"] += 1


gc.callbacks.append(_time_collections)
if _THRESHOLDS := os.environ.get("BENCH_GC_THRESHOLDS"):
    # ``--gc``: set here, as the server imports the app, after the command set its own.
    gc.set_threshold(*(int(part) for part in _THRESHOLDS.split(",")))


def _count_tasks() -> int:
    """Trio tasks alive in this run, found from the root task down."""
    root = trio.lowlevel.current_root_task()
    if root is None:
        return 0
    count, pending = 0, [root]
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


def _types(objects: list[Any]) -> dict[str, int]:
    """How many GC-tracked objects of each type (coroutines by their function)."""
    counts: dict[str, int] = {}
    for item in objects:
        kind = type(item)
        code = None
        if kind is types.CoroutineType:
            code = item.cr_code
        elif kind is types.GeneratorType:
            code = item.gi_code
        elif kind is types.FunctionType:
            code = item.__code__
        elif kind is types.MethodType:
            code = getattr(item.__func__, "__code__", None)
        if code is not None:
            where = f"{code.co_filename.rpartition('/')[2]}:{code.co_name}"
            name = f"{kind.__name__} {where}"
        else:
            name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _growth() -> list[str]:
    """The lines whose allocations grew most since the first probe (the idle one)."""
    global _idle_snapshot
    snapshot = tracemalloc.take_snapshot()
    if _idle_snapshot is None:
        _idle_snapshot = snapshot
        return []
    top = snapshot.compare_to(_idle_snapshot, "lineno")[:30]
    return [str(stat) for stat in top]


async def _json(send: Send, value: Any) -> None:
    body = json.dumps(value).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``bench.apps_load.trio_app``, with the probe and the profiler's switches."""
    path = scope.get("path", "")
    if scope["type"] != "http" or not path.startswith("/_"):
        await trio_app(scope, receive, send)
    else:
        await _tools(path, scope, send)


async def ceiling(scope: Scope, receive: Receive, send: Send) -> None:
    """The ceiling's bare app (``bench.apps_bare``) in place of the library's, same tools.

    Its ``/tokens`` sends the lines ``/paced`` sends, with the same pacing,
    and no heartbeats: what the server alone costs for the same streams.
    """
    path = scope.get("path", "")
    if scope["type"] == "http" and path.startswith("/_"):
        await _tools(path, scope, send)
    else:
        bare = {**scope, "path": "/tokens"} if path == "/paced" else dict(scope)
        await bare_trio_app(bare, receive, send)  # type: ignore[arg-type]


async def _tools(path: str, scope: Scope, send: Send) -> None:
    global _profiler
    if path == "/_probe":
        gc.callbacks.remove(_time_collections)  # the probe's own collection is not the run's
        gc.collect()
        gc.callbacks.append(_time_collections)
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        objects = gc.get_objects()
        counts: dict[str, Any] = {
            "objects": len(objects),
            "types": _types(objects),
            "blocks": sys.getallocatedblocks(),
            "traced": traced,
            "tasks": _count_tasks(),
        }
        if traced is not None:
            counts["growth"] = _growth()
        await _json(send, counts)
    elif path == "/_unreachable":
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        found = _types(gc.garbage)
        gc.garbage.clear()
        await _json(send, sorted(found.items(), key=lambda item: -item[1]))
    elif path == "/_collecting":
        await _json(send, {"seconds": _collecting["seconds"], "count": _collecting["count"]})
    elif path == "/_profile/start":
        _profiler = cProfile.Profile()
        _profiler.enable()
        await _json(send, "started")
    elif path == "/_profile/stop":
        assert _profiler is not None
        _profiler.disable()
        _profiler.dump_stats(scope["query_string"].decode().partition("=")[2])
        _profiler = None
        await _json(send, "stopped")
    else:
        await _json(send, "unknown")


# -- the client (a process of its own) ---------------------------------------------


class _Stream(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future[bool], opened: list[float]) -> None:
        self.request = request
        self.done = done
        self.opened = opened
        self.tail = b""
        self.tokens = 0
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            self.opened.append(time.monotonic())
        self.tokens += data.count(b'0:"token')
        self.tail = (self.tail + data)[-7:]
        if self.tail == b"\r\n0\r\n\r\n" and not self.done.done():
            self.done.set_result(True)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(False)


async def _client(port: int, streams: int, tokens: int, interval: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /paced?n={tokens}&interval={interval} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(1000)
    opened: list[float] = []
    began = time.monotonic()

    async def one() -> tuple[bool, int]:
        done: asyncio.Future[bool] = loop.create_future()
        stream = _Stream(request, done, opened)
        async with gate:
            await loop.create_connection(lambda: stream, "127.0.0.1", port)
        ok = await done
        return ok, stream.tokens

    results = await asyncio.gather(*(one() for _ in range(streams)))
    return {
        "complete": sum(1 for ok, got in results if ok and got == tokens),
        "all_open_after": round(max(opened) - began, 2) if opened else None,
        "seconds": round(time.monotonic() - began, 2),
    }


# -- the driver --------------------------------------------------------------------


def _get(server: Server, path: str) -> Any:
    import httpx

    return httpx.get(server.url + path, timeout=60).json()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(port: int, tracing: bool, app: str, thresholds: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **({"PYTHONTRACEMALLOC": "1"} if tracing else {})}
    if thresholds is not None:
        env["BENCH_GC_THRESHOLDS"] = thresholds
    command = [sys.executable, "-m", "trio_stream", "serve", f"bench.profile_paced:{app}"]
    command += ["--port", str(port), "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    wait_for_port(process, port, 30, lambda: "the server did not start")
    return process


def _client_process(
    port: int, streams: int, tokens: int, interval: float
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.profile_paced", "--client", str(port)]
    argv += ["--streams", str(streams), "--tokens", str(tokens), "--interval", str(interval)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    process = _start(port, args.tracemalloc, args.app, args.gc)
    server = Server(f"http://127.0.0.1:{port}", process.pid)
    tokens = round(args.rate * args.seconds)
    interval = 1 / args.rate
    try:
        _client_process(port, 20, 5, 0.01).communicate(timeout=60)  # warm-up
        time.sleep(0.3)
        idle = _get(server, "/_probe")
        idle_rss = server.rss()
        if args.profile:
            _get(server, "/_profile/start")
        cpu = _cpu_seconds(process.pid)
        collecting = _get(server, "/_collecting")
        peak_rss = 0
        client = _client_process(port, args.streams, tokens, interval)
        probe_at = time.monotonic() + args.seconds / 2 + 2
        peak: dict[str, Any] | None = None
        while client.poll() is None:
            peak_rss = max(peak_rss, server.rss())
            if peak is None and time.monotonic() > probe_at:
                peak = _get(server, "/_probe")
            time.sleep(0.1)
        cpu = _cpu_seconds(process.pid) - cpu
        collected = _get(server, "/_collecting")
        unreachable = _get(server, "/_unreachable")
        if args.profile:
            _get(server, f"/_profile/stop?path={os.path.abspath(args.profile)}")
        outcome = json.loads(client.communicate()[0])
    finally:
        process.terminate()
        process.wait(timeout=15)
    n = args.streams
    result = {
        **outcome,
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_delta": round(cpu * 1000 / (n * tokens), 4),
        "gc_seconds": round(collected["seconds"] - collecting["seconds"], 2),
        "gc_collections": collected["count"] - collecting["count"],
        # The ended streams' objects that reference counting did not free.
        "unreachable_after_run_per_stream": round(sum(c for _, c in unreachable) / n, 1),
        "unreachable_after_run_by_type": unreachable[:8],
        "rss_kib_per_stream": round((peak_rss - idle_rss) / 1024 / n, 1),
    }
    if peak is not None:
        result["gc_objects_per_stream"] = round((peak["objects"] - idle["objects"]) / n, 1)
        result["blocks_per_stream"] = round((peak["blocks"] - idle["blocks"]) / n, 1)
        result["tasks_per_stream"] = round((peak["tasks"] - idle["tasks"]) / n, 2)
        grown = {
            name: (count - idle["types"].get(name, 0)) / n for name, count in peak["types"].items()
        }
        top = sorted(grown.items(), key=lambda item: -item[1])[: args.top]
        result["objects_per_stream_by_type"] = {name: round(v, 2) for name, v in top if v >= 0.5}
        if peak["traced"] is not None:
            traced = (peak["traced"] - idle["traced"]) / 1024 / n
            result["traced_kib_per_stream"] = round(traced, 1)
            result["growth"] = peak["growth"]
    return result


def _top(path: str, count: int) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(count)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_paced")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0, help="deltas a second per stream")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", metavar="PATH", help="write the server's cProfile here")
    parser.add_argument("--top", type=int, default=25, help="profile entries to print")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--app",
        choices=("app", "ceiling"),
        default="app",
        help="the library's app, or the ceiling's bare app on the same server",
    )
    parser.add_argument(
        "--gc",
        metavar="G0,G1,G2",
        help="the collector's thresholds in the server, in place of those the command sets",
    )
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        import uvloop

        result = uvloop.run(_client(args.client, args.streams, args.tokens, args.interval))
        print(json.dumps(result))
        return
    result = measure(args)
    print(json.dumps(result, indent=1))
    if args.profile:
        _top(args.profile, args.top)


if __name__ == "__main__":
    threading.current_thread().name = "profile_paced"
    main()
