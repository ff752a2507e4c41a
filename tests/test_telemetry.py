"""Spans and metrics of runs, recorded by OpenTelemetry's SDK in this process.

The runs run on Trio and on asyncio; the servers they talk to are hypercorn
on Trio, in threads of this process, over loopback HTTP, so that the spans of
both ends land in the same in-memory exporter and the trace they make can be
checked end to end. The trace across processes is checked in
``test_telemetry_processes``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import trio_stream.client
from trio_stream import RunController, ToolCallController, create_run
from trio_stream._shutdown import SCOPE_KEY, Shutdown
from trio_stream.adapters.mcp import MCPTools
from trio_stream.asgi import DataStreamResponse
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.resumable import ResumableStreams

from .asgi_calls import SentMessages, never_disconnect
from .serving import ROOT, running
from .telemetry import Recording, recording

pytestmark = pytest.mark.anyio

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01"


def one(spans: list[ReadableSpan], **attributes: Any) -> ReadableSpan:
    """The one span with these attributes (``tool_call_id="call_a"`` matches
    ``trio_stream.tool_call.id``)."""
    keys = {
        "tool_call_id": "trio_stream.tool_call.id",
        "parent_id": "trio_stream.substream.parent_id",
        "url": "url.full",
    }
    found = [
        span
        for span in spans
        if all((span.attributes or {}).get(keys[k]) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (attributes, [s.attributes for s in spans])
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    found: int = span.context.span_id
    return found


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    found: int = span.context.trace_id
    return found


async def run_to_end(callback: Callable[[RunController], Any], **options: Any) -> str:
    """Run ``callback`` to its end, reading every chunk; returns the run's id."""
    run = create_run(callback, **options)
    async with run as chunks:
        async for _ in chunks:
            pass
    return run.run_id


async def spans_when(recorded: Recording, name: str, count: int) -> list[ReadableSpan]:
    """The spans called ``name`` once there are ``count`` (a server's end after its answer)."""
    with anyio.fail_after(10):
        while len(recorded.spans(name)) < count:  # noqa: ASYNC110 - another thread's spans
            await anyio.sleep(0.01)
    return recorded.spans(name)


def metric_points(metrics: dict[str, list[Any]], name: str, **attributes: Any) -> list[Any]:
    return [
        point
        for point in metrics.get(name, [])
        if all(point.attributes.get(k) == v for k, v in attributes.items())
    ]


async def test_a_run_s_spans_follow_its_tree_of_tool_calls_and_substreams() -> None:
    async def lookup(call: ToolCallController) -> str:
        return "found"

    async def inner(call: ToolCallController) -> str:
        async with call.open_substream() as nested:
            nested.append_text("from inside the tool")
        return "inner"

    async def callback(controller: RunController) -> None:
        controller.spawn_tool_call("lookup", lookup, tool_call_id="call_a")
        async with controller.open_substream("p1") as sub:
            sub.spawn_tool_call("inner", inner, tool_call_id="call_b")

    with recording() as recorded:
        run_id = await run_to_end(callback)
        spans = recorded.spans()

    run = one(recorded.spans("trio_stream.run"))
    assert run.parent is None
    assert run.attributes == {
        "trio_stream.run.id": run_id,
        "trio_stream.run.callback": callback.__qualname__,
        "trio_stream.run.outcome": "done",
    }
    lookup_span = one(spans, tool_call_id="call_a")
    assert lookup_span.name == "trio_stream.tool_call"
    assert parent_of(lookup_span) == span_id(run)
    assert lookup_span.attributes is not None
    assert lookup_span.attributes["trio_stream.tool_call.name"] == "lookup"
    assert lookup_span.attributes["trio_stream.tool_call.outcome"] == "result"
    assert lookup_span.attributes["trio_stream.run.id"] == run_id
    substream = one(recorded.spans("trio_stream.substream"), parent_id="p1")
    assert parent_of(substream) == span_id(run)
    assert substream.attributes is not None
    assert substream.attributes["trio_stream.substream.outcome"] == "done"
    inner_span = one(spans, tool_call_id="call_b")
    assert parent_of(inner_span) == span_id(substream)  # a call in a sub-stream is its child
    in_tool = one(recorded.spans("trio_stream.substream"), parent_id="call_b")
    assert parent_of(in_tool) == span_id(inner_span)  # a tool's own sub-stream is the tool's
    assert {trace_id(span) for span in spans} == {trace_id(run)}
    assert len(spans) == 5


async def test_runs_sub_streams_and_tool_calls_are_counted_while_in_flight() -> None:
    during: dict[str, list[Any]] = {}

    async def look(call: ToolCallController) -> str:
        during.update(recorded.metrics())  # what changed since the block began
        return "seen"

    async def callback(controller: RunController) -> None:
        async with controller.open_substream() as sub:
            sub.spawn_tool_call("look", look)

    with recording() as recorded:
        await run_to_end(callback)
        after = recorded.metrics()

    def values(metrics: dict[str, list[Any]], name: str) -> list[tuple[dict[str, Any], float]]:
        # What changed: series seen before this test report no change, as zeros.
        return [(dict(p.attributes), p.value) for p in metrics[name] if p.value != 0]

    assert values(during, "trio_stream.runs.active") == [({}, 1)]
    assert values(during, "trio_stream.substreams.active") == [({}, 1)]
    look_call = {"trio_stream.tool_call.name": "look"}
    assert values(during, "trio_stream.tool_calls.active") == [(look_call, 1)]
    assert values(after, "trio_stream.runs.active") == [({}, -1)]
    assert values(after, "trio_stream.substreams.active") == [({}, -1)]
    assert values(after, "trio_stream.tool_calls.active") == [(look_call, -1)]


@pytest.mark.parametrize("anyio_backend", ["trio"])  # the cut-off is hypercorn-trio's
async def test_the_shutdown_cut_off_is_an_event_and_an_error_chunk_of_its_kind(
    anyio_backend: str,
) -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("partial")
        await anyio.sleep_forever()

    shutdown = Shutdown()
    scope = {"type": "http", "path": "/chat", "extensions": {SCOPE_KEY: shutdown}}
    sent = SentMessages()
    with recording() as recorded:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(shutdown.cut_off_when_due)
            tasks.start_soon(
                DataStreamResponse(create_run(callback)), scope, never_disconnect, sent.send
            )
            await anyio.sleep(0.05)
            shutdown.begin(0.2)
        metrics = recorded.metrics()

    (run,) = recorded.spans("trio_stream.run")
    assert run.attributes is not None
    assert run.attributes["trio_stream.run.outcome"] == "cancelled"
    assert [event.name for event in run.events] == ["trio_stream.shutdown_cut_off"]
    assert [(p.attributes, p.value) for p in metrics["trio_stream.error_chunks"]] == [
        ({"trio_stream.error.kind": "shutdown"}, 1)
    ]
    active = metric_points(
        metrics, "trio_stream.responses.active", **{"trio_stream.format": "data-stream"}
    )
    assert [p.value for p in active] == [0]


async def test_tool_outcomes_error_references_and_what_the_metrics_count() -> None:
    async def fine(call: ToolCallController) -> int:
        return 1

    async def broken(call: ToolCallController) -> None:
        raise ValueError("a detail the client must not see")

    async def stuck(call: ToolCallController) -> None:
        await anyio.sleep_forever()

    async def callback(controller: RunController) -> None:
        controller.spawn_tool_call("stuck", stuck, tool_call_id="call_stuck")
        controller.add_error("a warning of the app's own")
        async with controller.open_substream() as sub:  # leaving it waits for both calls
            sub.spawn_tool_call("fine", fine, tool_call_id="call_ok")
            sub.spawn_tool_call("broken", broken, tool_call_id="call_err", errors_as_result=True)
        controller.cancel()

    with recording() as recorded:
        await run_to_end(callback, expose_errors=False)
        spans = recorded.spans()
        metrics = recorded.metrics()

    outcomes = {
        span.attributes["trio_stream.tool_call.id"]: span.attributes[
            "trio_stream.tool_call.outcome"
        ]
        for span in recorded.spans("trio_stream.tool_call")
        if span.attributes is not None
    }
    assert outcomes == {"call_ok": "result", "call_err": "error_result", "call_stuck": "cancelled"}
    failed = one(spans, tool_call_id="call_err")
    events = {event.name: event for event in failed.events}
    assert events["exception"].attributes is not None
    assert events["exception"].attributes["exception.type"] == "ValueError"
    reference = events["trio_stream.error_reference"].attributes
    assert reference is not None
    assert len(str(reference["trio_stream.error_reference"])) == 12
    run = one(recorded.spans("trio_stream.run"))
    assert run.attributes is not None
    assert run.attributes["trio_stream.run.outcome"] == "cancelled"

    durations = metrics["trio_stream.tool_call.duration"]
    assert sorted(
        (
            p.attributes["trio_stream.tool_call.name"],
            p.attributes["trio_stream.tool_call.outcome"],
            p.count,
        )
        for p in durations
    ) == [("broken", "error_result", 1), ("fine", "result", 1), ("stuck", "cancelled", 1)]
    assert all(p.value >= 0 for p in durations)
    assert all(p.value == 0 for p in metrics["trio_stream.tool_calls.active"])
    assert [p.value for p in metrics["trio_stream.runs.active"]] == [0]
    assert [(p.attributes, p.value) for p in metrics["trio_stream.error_chunks"]] == [
        ({"trio_stream.error.kind": "add_error"}, 1)
    ]


async def test_a_failed_run_s_span_has_the_error_and_its_reference() -> None:
    async def broken(call: ToolCallController) -> None:
        raise RuntimeError("the database password is hunter2")

    async def callback(controller: RunController) -> None:
        controller.spawn_tool_call("broken", broken, tool_call_id="call_x")

    with recording() as recorded:
        with pytest.raises(RuntimeError):
            await run_to_end(callback, expose_errors=False)
        metrics = recorded.metrics()

    run = one(recorded.spans("trio_stream.run"))
    assert run.attributes is not None
    assert run.attributes["trio_stream.run.outcome"] == "failed"
    assert run.status.status_code is StatusCode.ERROR
    names = [event.name for event in run.events]
    assert "trio_stream.error_reference" in names
    assert "exception" in names
    tool = one(recorded.spans("trio_stream.tool_call"))
    assert tool.attributes is not None
    assert tool.attributes["trio_stream.tool_call.outcome"] == "failed"
    assert tool.status.status_code is StatusCode.ERROR
    assert [(p.attributes, p.value) for p in metrics["trio_stream.error_chunks"]] == [
        ({"trio_stream.error.kind": "run_failure"}, 1)
    ]


def _served(callback: Callable[[RunController], Any]) -> Starlette:
    async def route(request: Request) -> DataStreamResponse:
        return DataStreamResponse(create_run(callback))

    return Starlette(routes=[Route("/run", route, methods=["POST"])])


async def test_a_served_run_continues_the_caller_s_trace_and_counts_its_bytes() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("hello")
        await anyio.sleep(0.01)
        controller.append_text(" there")

    with recording() as recorded, running(_served(callback)) as url:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}/run", headers={"traceparent": TRACEPARENT})
        (run,) = await spans_when(recorded, "trio_stream.run", 1)
        metrics = recorded.metrics()

    assert run.kind is SpanKind.SERVER
    assert trace_id(run) == TRACE_ID
    assert parent_of(run) == CALLER_SPAN_ID
    assert run.attributes is not None
    assert run.attributes["trio_stream.format"] == "data-stream"
    assert run.attributes["trio_stream.run.outcome"] == "done"
    sent = metric_points(
        metrics, "trio_stream.response.bytes_sent", **{"trio_stream.format": "data-stream"}
    )
    assert [p.value for p in sent] == [len(response.content)]
    (first_byte,) = metrics["trio_stream.response.time_to_first_byte"]
    assert first_byte.count == 1
    assert 0 < first_byte.value < 5
    active = metric_points(
        metrics, "trio_stream.responses.active", **{"trio_stream.format": "data-stream"}
    )
    assert [p.value for p in active] == [0]


async def test_a_client_that_leaves_ends_the_run_s_span_as_disconnected() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("first")
        await anyio.sleep_forever()

    with recording() as recorded, running(_served(callback)) as url:
        async with trio_stream.client.stream(f"{url}/run") as chunks:
            await anext(chunks)  # the first chunk, then the client leaves
        (run,) = await spans_when(recorded, "trio_stream.run", 1)
        metrics = recorded.metrics()

    assert run.attributes is not None
    assert run.attributes["trio_stream.run.outcome"] == "disconnected"
    assert [event.name for event in run.events] == ["trio_stream.disconnect"]
    assert [(p.attributes, p.value) for p in metrics["trio_stream.disconnects"]] == [
        ({"trio_stream.format": "data-stream"}, 1)
    ]


def _worker() -> Starlette:
    async def add(call: ToolCallController) -> int:
        return 2

    async def work(controller: RunController) -> None:
        controller.spawn_tool_call("add", add, tool_call_id="call_add")
        controller.append_text("two")

    async def failing(controller: RunController) -> None:
        raise ValueError("the worker broke")

    async def route(request: Request) -> DataStreamResponse:
        return DataStreamResponse(create_run(failing if "fail" in request.url.path else work))

    return Starlette(
        routes=[Route("/work", route, methods=["POST"]), Route("/fail", route, methods=["POST"])]
    )


async def test_a_remote_call_carries_the_trace_to_the_remote_run() -> None:
    async def callback(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask", f"{url}/work", args={"q": 1}, tool_call_id="call_ask"
        )

    with recording() as recorded, running(_worker()) as url:
        await run_to_end(callback)
        runs = await spans_when(recorded, "trio_stream.run", 2)
        spans = recorded.spans()

    local, remote = sorted(runs, key=lambda span: span.parent is not None)
    ask = one(spans, tool_call_id="call_ask")
    remote_call = one(recorded.spans("trio_stream.remote_call"))
    add = one(spans, tool_call_id="call_add")
    assert parent_of(ask) == span_id(local)
    assert parent_of(remote_call) == span_id(ask)
    assert remote_call.kind is SpanKind.CLIENT
    assert remote_call.attributes == {
        "url.full": f"{url}/work",
        "trio_stream.remote.format": "data-stream",
        "trio_stream.remote.outcome": "done",
    }
    assert parent_of(remote) == span_id(remote_call)
    assert remote.kind is SpanKind.SERVER
    assert parent_of(add) == span_id(remote)
    assert {trace_id(span) for span in spans} == {trace_id(local)}


async def test_a_remote_call_s_span_says_how_the_remote_failed() -> None:
    async def callback(controller: RunController) -> None:
        controller.spawn_remote_tool_call("fails", f"{url}/fail", errors_as_result=True)
        controller.spawn_remote_tool_call("gone", "http://127.0.0.1:9/x", errors_as_result=True)

    with recording() as recorded, running(_worker()) as url:
        await run_to_end(callback)
        await spans_when(recorded, "trio_stream.run", 2)
        metrics = recorded.metrics()

    failures = {
        span.attributes["url.full"]: span.attributes["trio_stream.remote.failure"]
        for span in recorded.spans("trio_stream.remote_call")
        if span.attributes is not None
    }
    assert failures == {f"{url}/fail": "error", "http://127.0.0.1:9/x": "unreachable"}
    kinds = {
        p.attributes["trio_stream.error.kind"]: p.value
        for p in metrics["trio_stream.error_chunks"]
    }
    assert kinds == {"remote": 1, "run_failure": 1}  # the worker's failure, and what came of it
    outcomes = [
        s.attributes["trio_stream.tool_call.outcome"]
        for s in recorded.spans("trio_stream.tool_call")
        if s.attributes
    ]
    assert outcomes == ["error_result", "error_result"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_an_mcp_request_carries_the_tool_call_s_trace_context_in_its_meta(
    anyio_backend: str,
) -> None:
    # Trio only: on asyncio, the MCP SDK's HTTP client fails to connect to a
    # server in a thread of this process ("All connection attempts failed"),
    # with or without telemetry; the propagation is the SDK's, the same on both.
    server = MCPServer("traced")

    @server.tool()
    def echo(text: str) -> str:
        return text

    async def callback(controller: RunController) -> None:
        async with Client(f"{url}/mcp") as session, controller.open_substream() as sub:
            MCPTools(session).spawn(sub, "echo", {"text": "hi"}, tool_call_id="call_mcp")

    with running(server.streamable_http_app()) as url, recording() as recorded:
        await run_to_end(callback)
        spans = recorded.spans()

    tool = one(spans, tool_call_id="call_mcp")
    (sent,) = [span for span in spans if span.name == "MCP send tools/call echo"]
    (handled,) = [span for span in spans if span.name == "tools/call echo"]
    assert parent_of(sent) == span_id(tool)
    # The server's span continues the trace from the request's _meta.traceparent.
    assert handled.parent is not None
    assert handled.parent.is_remote
    assert parent_of(handled) == span_id(sent)
    assert trace_id(handled) == trace_id(tool)


@pytest.mark.parametrize("anyio_backend", ["trio"])  # as above
async def test_an_mcp_request_for_a_call_the_model_opened_is_that_call_s_child(
    anyio_backend: str,
) -> None:
    # The calls of a model's answer are opened with add_tool_call, and no task
    # of theirs makes their span current: the adapter does, around the request.
    server = MCPServer("traced")

    @server.tool()
    def echo(text: str) -> str:
        return text

    async def callback(controller: RunController) -> None:
        async with Client(f"{url}/mcp") as session, controller.open_substream() as sub:
            call = await sub.add_tool_call("echo", tool_call_id="call_model")
            await MCPTools(session).call(sub, call, {"text": "hi"})

    with running(server.streamable_http_app()) as url, recording() as recorded:
        await run_to_end(callback)
        spans = recorded.spans()

    tool = one(spans, tool_call_id="call_model")
    assert tool.attributes is not None
    assert tool.attributes["trio_stream.tool_call.outcome"] == "result"
    (sent,) = [span for span in spans if span.name == "MCP send tools/call echo"]
    (handled,) = [span for span in spans if span.name == "tools/call echo"]
    assert parent_of(sent) == span_id(tool)
    assert parent_of(handled) == span_id(sent)


async def test_the_resumable_store_s_operations_are_timed() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("kept")

    with recording() as recorded:
        async with ResumableStreams() as streams:
            response = await streams.start(create_run(callback), encoder=DataStreamEncoder())
            stream_id = response.headers["x-resumable-stream-id"]
            with anyio.fail_after(10):
                while (info := await streams.store.info(stream_id)) and info.status == "running":  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        metrics = recorded.metrics()

    operations = {
        p.attributes["trio_stream.store.operation"]: p.count
        for p in metrics["trio_stream.resumable.store.duration"]
    }
    assert operations["create"] == 1
    assert operations["finish"] == 1
    assert operations["append"] >= 2  # the run's bytes, and the format's closing ones


def _resumable_app(released: threading.Event) -> Starlette:
    """``POST /start``: a resumable data stream that writes ``first``, waits for
    ``released``, then writes ``second``; ``GET /streams/{id}``: read it again."""
    streams = ResumableStreams()

    async def callback(controller: RunController) -> None:
        controller.append_text("first")
        while not released.is_set():  # noqa: ASYNC110 - set by the test's thread
            await anyio.sleep(0.01)
        controller.append_text("second")

    async def start(request: Request) -> Response:
        return await streams.start(create_run(callback), encoder=DataStreamEncoder())

    async def resume(request: Request) -> Response:
        return await streams.resume(request.path_params["stream_id"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with streams:
            yield

    return Starlette(
        routes=[Route("/start", start, methods=["POST"]), Route("/streams/{stream_id}", resume)],
        lifespan=lifespan,
    )


async def test_a_resumable_stream_s_readers_count_as_responses_with_their_bytes() -> None:
    released = threading.Event()
    totals: dict[tuple[str, str], float] = {}

    def add(metrics: dict[str, list[Any]]) -> None:
        for name, points in metrics.items():
            for point in points:
                key = (name, str(point.attributes.get("trio_stream.format")))
                totals[key] = totals.get(key, 0) + (point.count or point.value)

    with recording() as recorded, running(_resumable_app(released)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with client.stream("POST", "/start") as first:
                stream_id = first.headers["x-resumable-stream-id"]
                resume_url = f"{url}/streams/{stream_id}"
                async with trio_stream.client.stream(resume_url, method="GET") as chunks:
                    await anext(chunks)  # the first chunk, then this reader leaves
                with anyio.fail_after(10):
                    while ("trio_stream.disconnects", "data-stream") not in totals:
                        add(recorded.metrics())
                        await anyio.sleep(0.01)
                released.set()
                read = await first.aread()
            read_again = (await client.get(f"/streams/{stream_id}")).content
        with anyio.fail_after(10):
            while totals.get(("trio_stream.responses.active", "data-stream"), 1) != 0:
                add(recorded.metrics())
                await anyio.sleep(0.01)

    data_stream = "data-stream"
    assert read == read_again
    assert b"second" in read
    assert totals["trio_stream.disconnects", data_stream] == 1
    assert totals["trio_stream.response.time_to_first_byte", data_stream] == 3  # readers
    # The reader that left had what was stored before the run's pause.
    left_with = read[: read.index(b'0:"second"')]
    sent = totals["trio_stream.response.bytes_sent", data_stream]
    assert sent == len(read) + len(left_with) + len(read_again)


def test_without_the_opentelemetry_api_a_run_has_its_id_and_its_log_fields() -> None:
    script = """
import logging, sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
import trio
from trio_stream import _telemetry, create_run

assert not _telemetry.ENABLED
records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("trio_stream").addHandler(handler)

async def broken(call):
    raise ValueError("no")

async def callback(controller):
    controller.spawn_tool_call("broken", broken, errors_as_result=True)
    async with controller.open_substream() as sub:
        sub.append_text("x")

async def main():
    run = create_run(callback)
    async with run as chunks:
        async for _ in chunks:
            pass
    print(run.run_id, getattr(records[0], "trio_stream.run_id"))

trio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id, logged = done.stdout.split()
    assert run_id.startswith("run_")
    assert logged == run_id


_INSTRUMENTS_SCRIPT = """
import json
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import (
    Counter, Histogram, MeterProvider, ObservableCounter, ObservableUpDownCounter, UpDownCounter
)
from prometheus_client import generate_latest

metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
from trio_stream import _telemetry

kinds = {
    Counter: "counter",
    ObservableCounter: "counter",
    UpDownCounter: "up-down counter",
    ObservableUpDownCounter: "up-down counter",
    Histogram: "histogram",
}
made = _telemetry._INSTRUMENTS
found = {}
for value in vars(made).values():
    if isinstance(value, _telemetry._Tally):
        value.add(1, "x")
for instrument in [*vars(made).values(), *made.observed]:
    kind = next((k for cls, k in kinds.items() if isinstance(instrument, cls)), None)
    if kind is None:
        continue  # the tracer, the tallies, the tuple of observed instruments
    if kind == "histogram":
        instrument.record(1.0)
    elif not isinstance(instrument, (ObservableCounter, ObservableUpDownCounter)):
        instrument.add(1)
    found[instrument.description] = [instrument.name, kind, instrument.unit]
for line in generate_latest().decode().splitlines():
    if line.startswith("# HELP trio_stream_"):
        _, _, name, description = line.split(" ", 3)
        found[description].append(name)
print(json.dumps(sorted(found.values())))
"""


_KINDS = {"counter", "up-down counter", "histogram"}


def _table_rows(page: str) -> dict[str, list[str]]:
    """The rows of ``page``'s metric tables (a name, and an instrument among the cells),
    by the metric's name."""
    rows: dict[str, list[str]] = {}
    for line in (ROOT / "docs" / page).read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `trio_stream.") and _KINDS & set(cells):
            rows[cells[0]] = cells[1:]
    return rows


def test_the_docs_tables_list_every_metric_as_recorded_and_as_prometheus_names_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INSTRUMENTS_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    recorded = {name: rest for name, *rest in json.loads(done.stdout)}
    assert len(recorded) == 10

    # The operators' dashboard: metric | Prometheus | instrument | unit | ...
    operators = _table_rows("operators.md")
    assert operators.keys() == recorded.keys()
    for name, (kind, unit, prometheus) in recorded.items():
        assert operators[name][:3] == [prometheus, kind, unit], name
    # The reference: metric | instrument | unit | ...
    telemetry = _table_rows("telemetry.md")
    assert telemetry.keys() == recorded.keys()
    for name, (kind, unit, _) in recorded.items():
        assert telemetry[name][:2] == [kind, unit], name
