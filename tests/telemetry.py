"""OpenTelemetry's SDK in the test process, recording for the tests that ask.

The SDK's providers can be installed once per process, so they are installed
at the first ``recording()`` and stay; spans reach the in-memory exporter
only inside a ``recording()`` block, so the rest of the suite leaves nothing
behind. The metric reader uses delta temporality: each ``metrics()`` returns
what changed since the previous one, and the block starts from a clean slate.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["Recorded", "Recording", "recording"]

_DELTA: dict[type, AggregationTemporality] = dict.fromkeys(
    (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    ),
    AggregationTemporality.DELTA,
)


class _Switch(SpanProcessor):
    """Hands ended spans to ``inner`` only while it is on."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)


@dataclass
class _Installed:
    exporter: InMemorySpanExporter
    switch: _Switch
    reader: InMemoryMetricReader


@functools.cache
def _installed() -> _Installed:
    exporter = InMemorySpanExporter()
    switch = _Switch(SimpleSpanProcessor(exporter))
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(switch)
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader(preferred_temporality=_DELTA)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return _Installed(exporter, switch, reader)


@dataclass(frozen=True)
class Recorded:
    """One data point of a metric: its attributes and its value (a histogram's count and sum)."""

    attributes: Mapping[str, Any]
    value: float
    count: int = 0


class Recording:
    """What the library recorded since the block began."""

    def __init__(self, installed: _Installed) -> None:
        self._installed = installed

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The spans ended so far, in the order they ended; only those called ``name``."""
        spans = self._installed.exporter.get_finished_spans()
        return [span for span in spans if name is None or span.name == name]

    def metrics(self) -> dict[str, list[Recorded]]:
        """Every data point of the package's metrics since the previous call, by metric name."""
        data = self._installed.reader.get_metrics_data()
        found: dict[str, list[Recorded]] = {}
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                if scope.scope.name != "trio_stream":
                    continue
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            points.append(
                                Recorded(dict(point.attributes or {}), point.sum, point.count)
                            )
                        elif isinstance(point, NumberDataPoint):
                            points.append(Recorded(dict(point.attributes or {}), point.value))
        return found


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Record the library's spans and metrics for the block."""
    installed = _installed()
    installed.exporter.clear()
    installed.reader.get_metrics_data()  # what came before is not this block's
    installed.switch.on = True
    try:
        yield Recording(installed)
    finally:
        installed.switch.on = False  # what the block recorded stays readable until the next
