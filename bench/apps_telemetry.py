"""The benchmark apps with telemetry on: OpenTelemetry's SDK configured in the server.

Importing this module installs a tracer provider with a batch span
processor and a meter provider with a periodic reader, both exporting to
exporters that drop what they get: every span and data point is made,
batched and handed over, as in production, without a collector's network
cost, which is the collector's, not the library's.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from . import apps_load, apps_stream


class _DroppedSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DroppedMetrics(MetricExporter):
    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


_tracer_provider = TracerProvider()
_tracer_provider.add_span_processor(BatchSpanProcessor(_DroppedSpans()))
trace.set_tracer_provider(_tracer_provider)
metrics.set_meter_provider(
    MeterProvider(
        metric_readers=[
            PeriodicExportingMetricReader(_DroppedMetrics(), export_interval_millis=5_000)
        ]
    )
)

stream_app = apps_stream.trio_app
load_app = apps_load.trio_app
