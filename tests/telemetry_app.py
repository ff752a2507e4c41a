"""An agent that exports its spans over OTLP/HTTP and serves its metrics to Prometheus.

Served by ``trio-stream serve tests.telemetry_app:app`` in the tests of
``test_telemetry_processes``, as the docs' recipes set it up: the SDK
configured by the application at its start, spans sent to
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as they end, and ``/metrics``
answered from the Prometheus client's registry. ``/orchestrate`` runs a local
tool, a sub-stream with a tool in it, and a remote call to the agent at
``WORKER_URL``; ``/work`` runs one tool of its own; ``/slow`` writes a word,
then waits for a minute, for a shutdown to cut it off.

Served with ``--workers N``, every worker's metrics are also served on a port
of its own, as ``docs/operators.md`` shows: ``METRICS_PORTS`` lists one port
per worker slot (``TRIO_STREAM_WORKER``, 1 to N).
"""

from __future__ import annotations

import os

import anyio
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import DataStreamResponse

resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "agent")})
tracer_provider = TracerProvider(resource=resource)
# Each span is sent as it ends, so that a test sees it without waiting for a batch.
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(
    MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
)
if (slot := os.environ.get("TRIO_STREAM_WORKER")) and (ports := os.environ.get("METRICS_PORTS")):
    start_http_server(int(ports.split(",")[int(slot) - 1]), addr="127.0.0.1")


async def look_up(call: ToolCallController) -> str:
    return "local answer"


async def nested(call: ToolCallController) -> str:
    return "nested answer"


async def add(call: ToolCallController) -> int:
    return 2


async def orchestrate(controller: RunController) -> None:
    controller.spawn_tool_call("look_up", look_up, tool_call_id="call_local")
    async with controller.open_substream("plan") as sub:
        sub.spawn_tool_call("nested", nested, tool_call_id="call_nested")
    worker = os.environ["WORKER_URL"]
    controller.spawn_remote_tool_call(
        "ask_worker", f"{worker}/work", args={"q": "1 + 1"}, tool_call_id="call_remote"
    )


async def work(controller: RunController) -> None:
    controller.spawn_tool_call("add", add, tool_call_id="call_add")
    controller.append_text("two")


async def slow(controller: RunController) -> None:
    controller.append_text("thinking")
    await anyio.sleep(60)


async def orchestrate_route(request: Request) -> DataStreamResponse:
    return DataStreamResponse(create_run(orchestrate))


async def work_route(request: Request) -> DataStreamResponse:
    return DataStreamResponse(create_run(work))


async def slow_route(request: Request) -> DataStreamResponse:
    return DataStreamResponse(create_run(slow))


async def metrics_route(request: Request) -> Response:
    """What the Prometheus reader has collected, in Prometheus's text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


app = Starlette(
    routes=[
        Route("/orchestrate", orchestrate_route, methods=["POST"]),
        Route("/work", work_route, methods=["POST"]),
        Route("/slow", slow_route, methods=["POST"]),
        Route("/metrics", metrics_route),
    ]
)
