"""One trace across processes: an agent tree whose every process exports its spans.

Two ``trio-stream serve`` processes run ``tests.telemetry_app``: an
orchestrator, whose run has a local tool, a sub-stream with a tool in it, and
a remote call to a worker, whose run has a tool of its own. Each exports its
spans over OTLP/HTTP to a receiver this test runs (a Starlette app decoding
the protobuf bodies), and this process, which calls the orchestrator inside a
span of its own, sends the first ``traceparent``. The trace is reassembled
from what the receiver got and checked span by span. Then the worker's
metrics are scraped from its ``/metrics`` route, as Prometheus would.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import trio_stream.client
from trio_stream._shutdown import SHUTDOWN_MESSAGE
from trio_stream.chunks import ErrorChunk

from .serving import free_port, running, server_process
from .telemetry import recording

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Exported:
    """A span as the receiver got it."""

    service: str
    name: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]
    events: tuple[str, ...] = ()


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


class Receiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` with protobuf bodies."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    exported = Exported(
                        service=resource["service.name"],
                        name=span.name,
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                        parent_span_id=span.parent_span_id,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        events=tuple(event.name for event in span.events),
                    )
                    with self.lock:
                        self.spans.append(exported)
        return Response(b"", media_type="application/x-protobuf")

    def received(self) -> list[Exported]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[tuple[str, str, Receiver]]:
    """The receiver, the worker and the orchestrator: (orchestrator URL, worker URL, receiver)."""
    receiver = Receiver()
    with running(receiver.app) as collector:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector}/v1/traces"}
        arguments = ("serve", "tests.telemetry_app:app")
        with (
            server_process(
                tmp_path / "worker.log", *arguments, env={**env, "OTEL_SERVICE_NAME": "worker"}
            ) as (worker, _),
            server_process(
                tmp_path / "orchestrator.log",
                *arguments,
                env={**env, "OTEL_SERVICE_NAME": "orchestrator", "WORKER_URL": worker},
            ) as (orchestrator, _),
        ):
            yield orchestrator, worker, receiver


def _one(spans: list[Exported], name: str, **attributes: Any) -> Exported:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, spans)
    return found[0]


@pytest.mark.parametrize("anyio_backend", ["trio"])  # the processes are the subject here
async def test_one_trace_covers_the_agent_tree_across_processes(
    agents: tuple[str, str, Receiver], anyio_backend: str
) -> None:
    orchestrator_url, worker_url, receiver = agents
    with recording():
        tracer = trace.get_tracer("tests")
        with tracer.start_as_current_span("user request") as caller:
            async with trio_stream.client.stream(f"{orchestrator_url}/orchestrate") as chunks:
                chunk_types = [chunk.type async for chunk in chunks]
        with anyio.fail_after(15):
            while len(receiver.received()) < 8:  # noqa: ASYNC110 - other processes' exports
                await anyio.sleep(0.05)
    assert "tool-result" in chunk_types
    spans = receiver.received()
    assert len(spans) == 8, spans
    trace_id = caller.get_span_context().trace_id.to_bytes(16, "big")
    assert {span.trace_id for span in spans} == {trace_id}

    # The orchestrator: its run continues this process's span.
    run = _one(spans, "trio_stream.run", **{"trio_stream.run.callback": "orchestrate"})
    assert run.service == "orchestrator"
    assert run.parent_span_id == caller.get_span_context().span_id.to_bytes(8, "big")
    assert run.attributes["trio_stream.format"] == "data-stream"
    assert run.attributes["trio_stream.run.outcome"] == "done"
    local = _one(spans, "trio_stream.tool_call", **{"trio_stream.tool_call.id": "call_local"})
    assert local.parent_span_id == run.span_id
    assert local.attributes["trio_stream.tool_call.name"] == "look_up"
    assert local.attributes["trio_stream.tool_call.outcome"] == "result"
    plan = _one(spans, "trio_stream.substream", **{"trio_stream.substream.parent_id": "plan"})
    assert plan.parent_span_id == run.span_id
    assert plan.attributes["trio_stream.substream.outcome"] == "done"
    nested = _one(spans, "trio_stream.tool_call", **{"trio_stream.tool_call.id": "call_nested"})
    assert nested.parent_span_id == plan.span_id
    assert nested.attributes["trio_stream.tool_call.outcome"] == "result"
    ask = _one(spans, "trio_stream.tool_call", **{"trio_stream.tool_call.id": "call_remote"})
    assert ask.parent_span_id == run.span_id
    assert ask.attributes["trio_stream.tool_call.outcome"] == "result"
    remote_call = _one(spans, "trio_stream.remote_call")
    assert remote_call.service == "orchestrator"
    assert remote_call.parent_span_id == ask.span_id
    assert remote_call.attributes == {
        "url.full": f"{worker_url}/work",
        "trio_stream.remote.format": "data-stream",
        "trio_stream.remote.outcome": "done",
    }

    # The worker: its run continues the remote call's span, across the wire.
    worker_run = _one(spans, "trio_stream.run", **{"trio_stream.run.callback": "work"})
    assert worker_run.service == "worker"
    assert worker_run.parent_span_id == remote_call.span_id
    add = _one(spans, "trio_stream.tool_call", **{"trio_stream.tool_call.id": "call_add"})
    assert add.service == "worker"
    assert add.parent_span_id == worker_run.span_id
    assert add.attributes["trio_stream.tool_call.outcome"] == "result"
    assert add.attributes["trio_stream.run.id"] == worker_run.attributes["trio_stream.run.id"]

    # The worker's metrics, as Prometheus scrapes them.
    async with httpx.AsyncClient() as client:
        scraped = (await client.get(f"{worker_url}/metrics")).text
    samples = {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if k.startswith("trio"))),
        ): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    duration = ("trio_stream_tool_call_name", "add"), ("trio_stream_tool_call_outcome", "result")
    assert samples["trio_stream_tool_call_duration_seconds_count", duration] == 1
    assert samples["trio_stream_runs_active", ()] == 0
    assert samples["trio_stream_tool_calls_active", (("trio_stream_tool_call_name", "add"),)] == 0
    data_stream = (("trio_stream_format", "data-stream"),)
    assert samples["trio_stream_response_bytes_sent_bytes_total", data_stream] > 0
    assert samples["trio_stream_response_time_to_first_byte_seconds_count", data_stream] == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_run_cut_off_by_sigterm_ends_its_span_with_the_cut_off(
    tmp_path: Path, anyio_backend: str
) -> None:
    receiver = Receiver()
    with running(receiver.app) as collector:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector}/v1/traces"}
        with server_process(
            tmp_path / "agent.log",
            *("serve", "tests.telemetry_app:app", "--graceful-timeout", "1"),
            env=env,
        ) as (url, process):
            async with trio_stream.client.stream(f"{url}/slow") as chunks:
                received = [await anext(chunks)]
                process.send_signal(signal.SIGTERM)
                received += [chunk async for chunk in chunks]
            with anyio.fail_after(15):
                while not receiver.received():  # noqa: ASYNC110 - another process's export
                    await anyio.sleep(0.05)
            process.wait(timeout=10)

    assert isinstance(received[-1], ErrorChunk)
    assert received[-1].error == SHUTDOWN_MESSAGE
    (run,) = receiver.received()
    assert run.name == "trio_stream.run"
    assert run.attributes["trio_stream.run.callback"] == "slow"
    assert run.attributes["trio_stream.run.outcome"] == "cancelled"
    assert run.events == ("trio_stream.shutdown_cut_off",)


def scraped(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus's samples at ``url``: the library's, by name and ``trio_stream`` labels."""
    text = httpx.get(url, timeout=10).text
    return {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if k.startswith("trio"))),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_with_workers_each_serves_its_metrics_on_a_port_of_its_own(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    arguments = ("serve", "tests.telemetry_app:app", "--workers", "2")
    requests = 20
    with (
        running(Receiver().app) as collector,
        server_process(
            tmp_path / "agents.log",
            *arguments,
            env={
                "METRICS_PORTS": ",".join(map(str, ports)),
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector}/v1/traces",
            },
        ) as (url, _),
    ):
        for _ in range(requests):  # a connection each: the workers share them out
            assert httpx.post(f"{url}/work", timeout=10).status_code == 200
        deadline = time.monotonic() + 15
        while True:
            try:
                by_worker = [scraped(f"http://127.0.0.1:{port}/metrics") for port in ports]
                break
            except httpx.TransportError:  # a worker still starting its metrics server
                assert time.monotonic() < deadline
                time.sleep(0.05)
    key = (
        "trio_stream_tool_call_duration_seconds_count",
        (("trio_stream_tool_call_name", "add"), ("trio_stream_tool_call_outcome", "result")),
    )
    counts = [samples.get(key, 0) for samples in by_worker]
    # Every request is counted once, by the worker that served it.
    assert sum(counts) == requests
