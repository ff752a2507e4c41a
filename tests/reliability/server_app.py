"""The app the reliability tests serve, in a worker process of its own.

Served with ``trio-stream serve tests.reliability.server_app:app``, so that
the memory, tasks and file descriptors it reports on ``/stats`` are the
server's alone, not the test runner's. Besides the counts the process can
give (resident memory, Trio's living tasks, open descriptors), the app keeps
a census of its own work: runs started, returned and cancelled, tool tasks
alive, ``Run`` objects not yet freed, requests in flight. A test that has
abandoned a thousand streams asserts "no task survives" on these directly,
rather than inferring it from memory.

Routes (``{format}`` is ``data-stream``, ``assistant-transport``,
``ui-message-stream`` or ``openai``):

``GET|POST /stream/{format}``
    One run, streamed as the response. See ``RunShape`` for the query
    parameters: text deltas, their pace and size, parallel tool calls with
    sub-streams and nested tools, back-pressure, a gate.
``POST /chat/{format}``
    The same, with the shape read from a JSON body by ``parse_body``, as a
    chat endpoint reads its messages: a client can leave mid-body.
``POST /resumable/{format}?id=``
    The same run, started as a resumable stream (``ResumableStreams`` on a
    ``MemoryStore``) under the id given, or a new one; the response is its
    first reader.
``GET /resumable/streams/{stream_id}?offset=``
    Another reader of a stream, from a byte offset.
``GET /resumable/info/{stream_id}``, ``DELETE /resumable/streams/{stream_id}``
    A stream's status and size; deleting a finished stream frees its bytes.
``GET /stats``
    The census and the process's counts: resident memory (now, and its
    peak), tasks (by whom they serve, see ``TaskCount``), open files, time
    spent in the garbage collector. ``?gc=1`` collects garbage first and adds
    the live memory (``live_memory``); ``?reset=1`` starts new peaks;
    ``?tasks=1`` lists every task's name, for a leak report.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import random
import re
import sys
import tempfile
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pydantic
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from trio_stream import Run, RunController, ToolCallController, create_run
from trio_stream.asgi import RunResponse
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder
from trio_stream.requests import RequestBodyError, parse_body
from trio_stream.resumable import MemoryStore, ResumableStreams

from .clients_http import raise_open_file_limit

__all__ = ["CENSUS", "ENCODERS", "RunShape", "app"]


raise_open_file_limit()

ENCODERS: dict[str, type[StreamEncoder]] = {
    "data-stream": DataStreamEncoder,
    "assistant-transport": AssistantTransportEncoder,
    "ui-message-stream": UIMessageStreamEncoder,
    "openai": OpenAIStreamEncoder,
}


class Census:
    """What the app has started and what of it is still alive.

    Every count is kept by the code it counts (a tool increments on entry and
    decrements in ``finally``), so a task that never reached its ``finally``
    shows as alive forever: that is a leak, whatever memory says.
    """

    def __init__(self) -> None:
        self.runs_started = 0
        self.runs_returned = 0
        self.runs_cancelled = 0
        self.callbacks_alive = 0
        self.tools_started = 0
        self.tools_cancelled = 0
        self.tools_alive = 0
        self.text_chars: dict[str, int] = {}
        self.tagged_alive: dict[str, int] = {}
        self.runs: weakref.WeakSet[Run] = weakref.WeakSet()
        self.in_flight = 0
        self.requests = 0
        self.reset_peaks()
        self._gates: dict[int, trio.Event] = {}

    def reset_peaks(self) -> None:
        self.peak_in_flight = self.in_flight
        self.peak_reached_at = time.monotonic()
        self.peak_left_at: float | None = None
        self.peak_tools_alive = self.tools_alive

    def enter(self) -> None:
        self.in_flight += 1
        self.requests += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
            self.peak_reached_at = time.monotonic()
            self.peak_left_at = None
        for count in [count for count in self._gates if count <= self.in_flight]:
            self._gates.pop(count).set()

    def leave(self) -> None:
        if self.in_flight == self.peak_in_flight and self.peak_left_at is None:
            self.peak_left_at = time.monotonic()
        self.in_flight -= 1

    def tool_entered(self) -> None:
        self.tools_started += 1
        self.tools_alive += 1
        self.peak_tools_alive = max(self.peak_tools_alive, self.tools_alive)

    async def gate(self, count: int) -> None:
        """Wait until ``count`` requests are in flight at once."""
        if self.in_flight < count:
            await self._gates.setdefault(count, trio.Event()).wait()

    def as_dict(self) -> dict[str, Any]:
        held_until = time.monotonic() if self.peak_left_at is None else self.peak_left_at
        return {
            "runs_started": self.runs_started,
            "runs_returned": self.runs_returned,
            "runs_cancelled": self.runs_cancelled,
            "callbacks_alive": self.callbacks_alive,
            "tools_started": self.tools_started,
            "tools_cancelled": self.tools_cancelled,
            "tools_alive": self.tools_alive,
            "peak_tools_alive": self.peak_tools_alive,
            "text_chars": self.text_chars,
            "tagged_alive": self.tagged_alive,
            "runs_alive": len(self.runs),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "peak_held_seconds": held_until - self.peak_reached_at,
            "requests": self.requests,
        }


CENSUS = Census()


class CollectorClock:
    """Time the process spends in the cyclic garbage collector, by generation.

    With thousands of streams open the heap holds hundreds of thousands of
    objects (tasks, cancel scopes, coroutine frames, connection state), and a
    full collection walks every one of them: a load test reports how much of
    the worker's time went there.
    """

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation, took = info["generation"], time.perf_counter() - self._started
            self.seconds[generation] += took
            self.collections[generation] += 1
            self.longest = max(self.longest, took)


COLLECTOR = CollectorClock()
gc.callbacks.append(COLLECTOR)


@dataclass(frozen=True)
class RunShape:
    """What a run produces, from query parameters (or a JSON body).

    ``chunks`` text deltas (``text`` characters each, at least the marker),
    ``pace`` seconds apart; ``tools`` tool calls in parallel with them, each
    writing ``steps`` deltas into a sub-stream ``tool_pace`` seconds apart,
    then spawning a nested tool, then returning. Every text delta starts
    with a marker (``t00012@<monotonic time>;``) so that a client can check
    that nothing is missing or out of order, and measure how long the delta
    took to reach it. ``drain=1`` makes the run wait for the client between
    deltas (back-pressure), as a model relayed token by token does.
    ``gate=N`` holds the run after its first delta until N requests are in
    flight at once, so a load test holds them all open together; ``jitter``
    then delays it by a random fraction of that many seconds, as users'
    streams are not in step. ``tag`` names runs the census counts apart (how
    many are running, how much text they produced), to tell them from the
    runs of other clients.
    """

    chunks: int = 8
    pace: float = 0.0
    text: int = 0
    tools: int = 2
    steps: int = 2
    tool_pace: float = 0.0
    drain: bool = False
    gate: int = 0
    gate_timeout: float = 120.0
    jitter: float = 0.0
    tag: str = ""

    @classmethod
    def from_query(cls, request: Request) -> RunShape:
        query = request.query_params
        return cls(
            chunks=int(query.get("chunks", cls.chunks)),
            pace=float(query.get("pace", cls.pace)),
            text=int(query.get("text", cls.text)),
            tools=int(query.get("tools", cls.tools)),
            steps=int(query.get("steps", cls.steps)),
            tool_pace=float(query.get("tool_pace", cls.tool_pace)),
            drain=query.get("drain", "0") == "1",
            gate=int(query.get("gate", cls.gate)),
            gate_timeout=float(query.get("gate_timeout", cls.gate_timeout)),
            jitter=float(query.get("jitter", cls.jitter)),
            tag=query.get("tag", cls.tag),
        )


async def _pause(seconds: float) -> None:
    if seconds > 0:
        await trio.sleep(seconds)
    else:
        await trio.lowlevel.checkpoint()


async def _fetch(call: ToolCallController) -> str:
    """A nested tool: a call made by a tool, inside its sub-stream."""
    CENSUS.tool_entered()
    try:
        await _pause(call.args["pace"])
        return f"f{call.args['k']}-done"
    except trio.Cancelled:
        CENSUS.tools_cancelled += 1
        raise
    finally:
        CENSUS.tools_alive -= 1


async def _lookup(call: ToolCallController) -> dict[str, Any]:
    """A tool that streams into a sub-stream of its own, then calls a nested tool."""
    CENSUS.tool_entered()
    k, steps, pace = call.args["k"], call.args["steps"], call.args["pace"]
    try:
        async with call.open_substream() as nested:
            for step in range(steps):
                await _pause(pace)
                nested.append_text(f"k{k}s{step};")
            nested.spawn_tool_call(
                "fetch", _fetch, args={"k": k, "pace": pace}, tool_call_id=f"call_{k}_fetch"
            )
        return {"result": f"r{k}-done"}
    except trio.Cancelled:
        CENSUS.tools_cancelled += 1
        raise
    finally:
        CENSUS.tools_alive -= 1


def make_run(shape: RunShape) -> Run:
    """A run of ``shape``: reasoning, paced text, parallel tools, a streamed-args call."""

    async def run(controller: RunController) -> None:
        CENSUS.runs_started += 1
        CENSUS.callbacks_alive += 1
        CENSUS.tagged_alive[shape.tag] = CENSUS.tagged_alive.get(shape.tag, 0) + 1
        try:
            controller.add_step_start("step-1")
            controller.append_reasoning("plan;")
            padding = "x" * max(shape.text - 22, 0)
            controller.append_text(f"t00000@{time.monotonic():.6f};{padding}")
            if shape.gate:
                with trio.move_on_after(shape.gate_timeout):
                    await CENSUS.gate(shape.gate)
            if shape.jitter:
                await trio.sleep(random.random() * shape.jitter)
            for k in range(shape.tools):
                args = {"k": k, "steps": shape.steps, "pace": shape.tool_pace}
                controller.spawn_tool_call("lookup", _lookup, args=args, tool_call_id=f"call_{k}")
            search = await controller.add_tool_call("search", "call_search")
            for piece in ('{"q": ', '"tr', 'io"}'):
                search.append_args_text(piece)
            search.set_response(["s-done"])
            for i in range(1, shape.chunks):
                await _pause(shape.pace)
                delta = f"t{i:05d}@{time.monotonic():.6f};{padding}"
                controller.append_text(delta)
                CENSUS.text_chars[shape.tag] = CENSUS.text_chars.get(shape.tag, 0) + len(delta)
                if shape.drain:
                    await controller.drain()
            controller.add_step_finish("stop", input_tokens=1, output_tokens=shape.chunks)
            CENSUS.runs_returned += 1
        except trio.Cancelled:
            CENSUS.runs_cancelled += 1
            raise
        finally:
            CENSUS.callbacks_alive -= 1
            CENSUS.tagged_alive[shape.tag] -= 1

    created = create_run(run)
    CENSUS.runs.add(created)
    return created


# -- routes ---------------------------------------------------------------------------

STREAMS = ResumableStreams(MemoryStore())


def _encoder(request: Request) -> StreamEncoder:
    return ENCODERS[request.path_params["format"]]()


async def stream(request: Request) -> Response:
    return RunResponse(make_run(RunShape.from_query(request)), encoder=_encoder(request))


class ChatBody(pydantic.BaseModel):
    """A chat request: the conversation (only counted) and the run's shape."""

    messages: list[dict[str, Any]]
    chunks: int = RunShape.chunks
    tools: int = RunShape.tools
    pace: float = RunShape.pace


async def chat(request: Request) -> Response:
    try:
        body = await parse_body(request, ChatBody)
    except RequestBodyError as exc:
        return exc.response()
    shape = RunShape(chunks=body.chunks, tools=body.tools, pace=body.pace)
    return RunResponse(make_run(shape), encoder=_encoder(request))


async def resumable_start(request: Request) -> Response:
    run = make_run(RunShape.from_query(request))
    stream_id = request.query_params.get("id")
    return await STREAMS.start(run, encoder=_encoder(request), stream_id=stream_id)


async def resumable_read(request: Request) -> Response:
    offset = request.query_params.get("offset", "0")
    return await STREAMS.resume(request.path_params["stream_id"], offset=offset)


async def resumable_info(request: Request) -> Response:
    info = await STREAMS.store.info(request.path_params["stream_id"])
    if info is None:
        return JSONResponse({"detail": "no such stream"}, status_code=404)
    return JSONResponse({"status": info.status, "size": info.size})


async def resumable_delete(request: Request) -> Response:
    await STREAMS.store.delete(request.path_params["stream_id"])
    return JSONResponse({"deleted": True})


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc.mallinfo2.restype = _MallInfo2

_PYMALLOC_IN_USE = re.compile(rb"# bytes in allocated blocks\s*=\s*([\d,]+)")


def live_memory() -> int:
    """Bytes the process has allocated and not freed: what it holds, not what it maps.

    Resident memory also counts what the allocators keep for reuse. CPython's
    object allocator keeps a 1 MiB arena mapped as long as one object in it
    lives, so after a peak of thousands of connections a few survivors
    (a cache entry, an interned name) keep tens of MiB resident that hold
    nothing. This counts the bytes in use instead: those in the object
    allocator's blocks (which only ``sys._debugmallocstats`` reports, on the C
    ``stderr``) and those malloc has handed out (``mallinfo2``).
    """
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        found = _PYMALLOC_IN_USE.search(capture.read())
    assert found is not None, "sys._debugmallocstats() no longer reports its blocks"
    info = _libc.mallinfo2()
    return int(found[1].replace(b",", b"")) + int(info.uordblks) + int(info.hblkhd)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


_CONNECTION_TASK = "trio._highlevel_serve_listeners._run_handler"

_LINGERING = frozenset({_CONNECTION_TASK, "hypercorn.trio.tcp_server.TCPServer._idle_timeout"})
"""The tasks of a connection that is over but not yet gone.

Hypercorn on Trio keeps a connection's handler until the connection's
keep-alive timer (5 s) runs out, even after the connection was closed; such
a connection holds no request and no socket, and goes by itself.
"""


@dataclass
class TaskCount:
    """The worker's tasks, by whom they serve.

    ``server``: outside any connection: the server's own, and resumable
    producers (which outlive their request by design). ``busy``: in
    connections other than the one asking, with more than the lingering
    tasks: serving a request, or leaked. ``lingering``: connections that are
    over but not gone (see ``_LINGERING``). The asking connection's own
    tasks are in none of them, so two counts taken at idle moments agree
    exactly, whatever connections closed just before.
    """

    names: list[str]
    server: int = 0
    busy: int = 0
    busy_connections: int = 0
    lingering_connections: int = 0
    other_sockets: int = 0


def _count_tasks() -> TaskCount:
    mine = trio.lowlevel.current_task()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    count = TaskCount(names=[])
    pending = [root]
    while pending:
        task = pending.pop()
        count.names.append(task.name)
        if task.name != _CONNECTION_TASK:
            count.server += 1
            pending += _children(task)
            continue
        if _is_ancestor(task, mine):
            continue
        subtree = _subtree(task)
        count.names += [child.name for child in subtree[1:]]
        if {member.name for member in subtree} <= _LINGERING:
            count.lingering_connections += 1
        else:
            count.busy_connections += 1
            count.busy += len(subtree)
        stream = task.coro.cr_frame.f_locals.get("stream") if task.coro.cr_frame else None
        if stream is not None and stream.socket.fileno() >= 0:
            count.other_sockets += 1
    count.names.sort()
    return count


def _children(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    return [child for nursery in task.child_nurseries for child in nursery.child_tasks]


def _subtree(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    found, pending = [], [task]
    while pending:
        current = pending.pop()
        found.append(current)
        pending += _children(current)
    return found


def _is_ancestor(task: trio.lowlevel.Task, of: trio.lowlevel.Task) -> bool:
    current: trio.lowlevel.Task | None = of
    while current is not None:
        if current is task:
            return True
        parent = current.parent_nursery
        current = None if parent is None else parent.parent_task
    return False


_STALE_DEADLINES = 50_000
"""Scopes to churn: Trio prunes once stale entries exceed twice the live deadlines
and a thousand, and a worker holding thousands of connections has thousands live."""


async def _prune_trio_deadlines() -> None:
    """Make Trio drop the cancel scopes its deadline heap still holds for tasks long gone.

    Trio removes a scope's deadline from its heap lazily: the entry stays
    (holding the scope) until it comes due or until stale entries outnumber
    live ones by a thousand, whichever is first. After a crowd of streams with
    deadlines (hypercorn's timers, the runs' sleeps) has gone, hundreds of
    their scopes can stay behind for seconds, some thousands of heap blocks
    that are Trio's bookkeeping and not a leak; whether they have gone by the
    time of a count depends on timing. Entering and leaving enough scopes with
    a deadline makes the next scheduler pass prune the heap, so that counts
    taken before and after a test compare what the server holds.
    """
    far = trio.current_time() + 3600
    for _ in range(_STALE_DEADLINES):
        with trio.CancelScope(deadline=far):  # noqa: ASYNC100 - registering is the point
            pass
    await trio.lowlevel.checkpoint()  # the scheduler's pass expires deadlines, and prunes


async def stats(request: Request) -> Response:
    """The census, with resident memory (now and peak), living tasks and open files."""
    collect = request.query_params.get("gc") == "1"
    if collect:
        await _prune_trio_deadlines()
        gc.collect()
        # Freed memory stays with malloc until trimmed: without this,
        # resident memory would also measure malloc's caching.
        _libc.malloc_trim(0)
    if request.query_params.get("reset") == "1":
        # Resets VmHWM, the peak resident memory.
        await trio.Path("/proc/self/clear_refs").write_text("5")
        CENSUS.reset_peaks()
        COLLECTOR.longest = 0.0
    tasks = _count_tasks()
    open_files = len(os.listdir("/proc/self/fd"))
    return JSONResponse(
        {
            **CENSUS.as_dict(),
            "rss": _status_kib("VmRSS") * 1024,
            "peak_rss": _status_kib("VmHWM") * 1024,
            "tasks_living": trio.lowlevel.current_statistics().tasks_living,
            "server_tasks": tasks.server,
            "busy_tasks": tasks.busy,
            "busy_connections": tasks.busy_connections,
            "lingering_connections": tasks.lingering_connections,
            # Sockets of other connections are theirs; the rest (listener,
            # wake-up pipes, logs, this request's socket) is the server's.
            "server_files": open_files - tasks.other_sockets,
            "open_files": open_files,
            "heap_blocks": sys.getallocatedblocks(),
            "gc_seconds": sum(COLLECTOR.seconds),
            "gc_full_collections": COLLECTOR.collections[2],
            "gc_longest_pause": COLLECTOR.longest,
            "cpu_seconds": time.process_time(),
            "task_names": tasks.names if request.query_params.get("tasks") == "1" else [],
            "live_memory": live_memory() if collect else 0,
        }
    )


class InFlight:
    """Counts the requests in flight (all but ``/stats``), around the whole app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/stats":
            await self.app(scope, receive, send)
            return
        CENSUS.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            CENSUS.leave()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with STREAMS:
        yield


app = InFlight(
    Starlette(
        routes=[
            Route("/stream/{format}", stream, methods=["GET", "POST"]),
            Route("/chat/{format}", chat, methods=["POST"]),
            Route("/resumable/{format}", resumable_start, methods=["POST"]),
            Route("/resumable/streams/{stream_id}", resumable_read),
            Route("/resumable/streams/{stream_id}", resumable_delete, methods=["DELETE"]),
            Route("/resumable/info/{stream_id}", resumable_info),
            Route("/stats", stats),
        ],
        lifespan=lifespan,
    )
)
