"""Telemetry: the spans, the metrics and the context of the log lines, in one place.

The rest of the package calls this module and nothing else of OpenTelemetry.
Its API (``opentelemetry-api``, the ``otel`` extra) is optional: without it,
a run still gets its id and its log context, and everything else here does
nothing, at the cost of a test of ``None`` per run, tool call or sub-stream.
With it, the spans and instruments are OpenTelemetry's: until the
application configures an SDK they are the API's own no-op ones, and once it
does, they are recorded and exported wherever the SDK says. The library
never configures one.

What is measured is what happens per run, per tool call, per sub-stream, per
remote call and per response write: never per chunk. A run's spans follow
its tree (``docs/telemetry.md`` lists them): the run, its sub-streams, its
tool calls (a call inside a sub-stream is that sub-stream's child), and the
remote runs a tool call reads, whose servers continue the trace from the
W3C ``traceparent`` header the client sends.

Log lines name what they are about through ``extra``: ``log_extra`` gives
the fields of the run the current task belongs to (``bind_log_fields`` sets
them, and tasks started afterwards inherit them), plus those given, under
stable ``trio_stream.*`` keys.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
except ImportError:  # pragma: no cover - depends on the environment
    otel_context = None  # type: ignore[assignment]
    metrics = None  # type: ignore[assignment]
    propagate = None  # type: ignore[assignment]
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import Span

__all__ = [
    "ENABLED",
    "ErrorKind",
    "Reading",
    "RunTelemetry",
    "SubstreamTelemetry",
    "ToolTelemetry",
    "bind_log_fields",
    "inject_trace_context",
    "log_extra",
    "measured",
    "new_run_id",
    "reading",
    "remote_call",
    "unbind_log_fields",
]

ENABLED: Final = trace is not None
"""Whether the OpenTelemetry API is installed: the spans and metrics exist only then."""

T = TypeVar("T")

# -- log context ------------------------------------------------------------

LOG_PREFIX: Final = "trio_stream."
"""What every key this package adds to a log record starts with."""

_NO_FIELDS: Mapping[str, object] = MappingProxyType({})
_LOG_FIELDS: ContextVar[Mapping[str, object]] = ContextVar(
    "trio_stream_log_fields", default=_NO_FIELDS
)


def new_run_id() -> str:
    """A new run id, such as ``run_5f0c…``: 64 random bits, cheap to make per run."""
    return "run_" + secrets.token_hex(8)


def bind_log_fields(**fields: object) -> Token[Mapping[str, object]]:
    """Add ``fields`` to the log context of this task and of the tasks it starts next.

    Returns the token that ``unbind_log_fields`` takes to restore the
    context as it was. A field set to ``None`` is left out.
    """
    merged = dict(_LOG_FIELDS.get())
    merged.update((LOG_PREFIX + key, value) for key, value in fields.items() if value is not None)
    return _LOG_FIELDS.set(merged)


def unbind_log_fields(token: Token[Mapping[str, object]]) -> None:
    _LOG_FIELDS.reset(token)


def log_extra(**fields: object) -> dict[str, object]:
    """The ``extra`` of a log line: the current task's log context, and ``fields``.

    Keys are ``trio_stream.<name>``: ``run_id``, ``stream_id``,
    ``tool_call_id``, ``tool_name``, ``error_reference``, ``path``,
    ``client``, ``url``; and for the workers of ``serve --workers``,
    ``worker``, ``pid``, ``returncode``. A field set to ``None`` is left out.
    """
    extra = dict(_LOG_FIELDS.get())
    extra.update((LOG_PREFIX + key, value) for key, value in fields.items() if value is not None)
    return extra


def error_reference(message: str) -> str | None:
    """The error reference in a message that hides an error (``wire_message``), if any."""
    _, found, rest = message.rpartition("(error reference ")
    return rest.rstrip(")") if found else None


# -- spans and instruments --------------------------------------------------

RunOutcome = Literal["done", "failed", "cancelled", "disconnected"]
ToolOutcome = Literal["result", "error_result", "cancelled", "failed", "unanswered"]
ErrorKind = Literal["run_failure", "add_error", "shutdown", "remote"]

_DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Histogram bucket bounds in seconds: store calls of a millisecond to tools of minutes."""


class _Tally:
    """Counts by attribute value, kept as plain integers and observed at collection.

    What is in flight (runs, responses, tool calls, sub-streams) and the bytes
    sent change several times per response; an SDK instrument's ``add``
    costs some 5 µs each (the attributes hashed, a lock, an aggregation), an
    integer here a fraction of one. The SDK's metric reader calls ``observe``
    when it collects, from its own thread; the lock makes each change and
    each snapshot whole, since responses may run in several threads' event
    loops. A value once seen stays, at zero when nothing is in flight, so
    that the series is continuous rather than absent.
    """

    __slots__ = ("_attribute", "_counts", "_lock")

    def __init__(self, attribute: str | None = None) -> None:
        self._attribute = attribute
        self._counts: dict[str | None, int] = {}
        self._lock = threading.Lock()

    def add(self, amount: int, value: str | None = None) -> None:
        with self._lock:
            self._counts[value] = self._counts.get(value, 0) + amount

    def observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            counts = list(self._counts.items())
        key = self._attribute
        return [
            metrics.Observation(count, None if key is None else {key: value})
            for value, count in counts
        ]


class _Instruments:
    """The package's tracer and metric instruments, made once, from the global providers.

    Both providers start as the API's proxies, which pass everything to the
    SDK the application installs, whenever it does.
    """

    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ours = version("trio-stream")
        except PackageNotFoundError:  # pragma: no cover - a source checkout
            ours = ""
        self.tracer = trace.get_tracer("trio_stream", ours)
        meter = metrics.get_meter("trio_stream", ours)
        self.runs_active = _Tally()
        self.tool_calls_active = _Tally("trio_stream.tool_call.name")
        self.substreams_active = _Tally()
        self.responses_active = _Tally("trio_stream.format")
        self.bytes_sent = _Tally("trio_stream.format")
        self.observed = (
            meter.create_observable_up_down_counter(
                "trio_stream.runs.active",
                [self.runs_active.observe],
                unit="{run}",
                description="Runs entered and not yet exited.",
            ),
            meter.create_observable_up_down_counter(
                "trio_stream.tool_calls.active",
                [self.tool_calls_active.observe],
                unit="{tool_call}",
                description="Tool calls opened and without their result yet.",
            ),
            meter.create_observable_up_down_counter(
                "trio_stream.substreams.active",
                [self.substreams_active.observe],
                unit="{substream}",
                description="Sub-streams open.",
            ),
            meter.create_observable_up_down_counter(
                "trio_stream.responses.active",
                [self.responses_active.observe],
                unit="{response}",
                description="Runs being streamed to a client (resumable streams' readers "
                "included), by format.",
            ),
            meter.create_observable_counter(
                "trio_stream.response.bytes_sent",
                [self.bytes_sent.observe],
                unit="By",
                description="Body bytes of streamed runs written to clients, by format.",
            ),
        )
        """The instruments that observe the tallies, when the SDK's reader collects."""
        self.time_to_first_byte = meter.create_histogram(
            "trio_stream.response.time_to_first_byte",
            unit="s",
            description="From a response's start to the first bytes of its run's chunks.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tool_call_duration = meter.create_histogram(
            "trio_stream.tool_call.duration",
            unit="s",
            description="From a tool call's opening to its result, by name and outcome.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.disconnects = meter.create_counter(
            "trio_stream.disconnects",
            unit="{disconnect}",
            description="Clients that left before their run ended, by format.",
        )
        self.error_chunks = meter.create_counter(
            "trio_stream.error_chunks",
            unit="{chunk}",
            description="Error chunks sent, by kind; remote: error chunks received from a "
            "remote run.",
        )
        self.store_duration = meter.create_histogram(
            "trio_stream.resumable.store.duration",
            unit="s",
            description="How long a resumable stream store's operations take, by operation.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )


_INSTRUMENTS: _Instruments | None = _Instruments() if ENABLED else None


def _set_outcome(span: Span, key: str, outcome: str, failure: BaseException | None) -> None:
    span.set_attribute(key, outcome)
    if failure is not None:
        span.record_exception(failure)
        span.set_status(trace.StatusCode.ERROR, type(failure).__name__)


def _callback_name(callback: object) -> str:
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    return name if isinstance(name, str) else type(callback).__name__


class RunTelemetry:
    """A run's id, span and counts; one per run, shared by all its controllers.

    The span starts when the run is entered. A run served by a response
    (``serve``) ends its span when the response ends, so that the span
    covers the disconnect or the cut-off the response sees; any other run
    ends it when it is exited.
    """

    __slots__ = (
        "_ended",
        "_log_token",
        "callback",
        "format",
        "open_tools",
        "outcome",
        "parent",
        "remote_parent",
        "run_id",
        "served",
        "span",
        "trace_context",
    )

    def __init__(self, callback: object) -> None:
        self.run_id = new_run_id()
        self.callback = callback
        self.span: Span | None = None
        self.trace_context: Context | None = None
        """The context of the run's span: the parent of its top-level spans."""
        self.parent: Context | None = None
        self.remote_parent = False
        self.served = False
        self.format: str | None = None
        self.outcome: RunOutcome = "done"
        self.open_tools: dict[str, ToolTelemetry] = {}
        self._log_token: Token[Mapping[str, object]] | None = None
        self._ended = False

    # -- the run's life ------------------------------------------------------

    def entered(self) -> None:
        """The run is entered, in the consumer's task: log context, span, count."""
        self._log_token = bind_log_fields(run_id=self.run_id)
        instruments = _INSTRUMENTS
        if instruments is None:
            return
        instruments.runs_active.add(1)
        kind = trace.SpanKind.SERVER if self.remote_parent else trace.SpanKind.INTERNAL
        span = self.span = instruments.tracer.start_span(
            "trio_stream.run", context=self.parent, kind=kind
        )
        if span.is_recording():
            span.set_attribute("trio_stream.run.id", self.run_id)
            span.set_attribute("trio_stream.run.callback", _callback_name(self.callback))
            if self.format is not None:
                span.set_attribute("trio_stream.format", self.format)
        self.trace_context = trace.set_span_in_context(span, self.parent)

    def activate(self) -> object:
        """Make the run's span current in the calling task (the run's supervisor)."""
        if self.trace_context is None:
            return None
        return otel_context.attach(self.trace_context)

    def deactivate(self, token: object) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def exited(self, outcome: RunOutcome, failure: BaseException | None) -> None:
        """The run is exited: its calls still open end, and its span unless a response
        serves it."""
        if self._log_token is not None:
            unbind_log_fields(self._log_token)
            self._log_token = None
        instruments = _INSTRUMENTS
        if instruments is None or self.span is None:
            return
        instruments.runs_active.add(-1)
        leftover: ToolOutcome = "unanswered" if outcome == "done" else "cancelled"
        for tool in list(self.open_tools.values()):
            tool.ended(leftover)
        if self.outcome == "done":
            self.outcome = outcome
        if failure is not None and self.span.is_recording():
            self.span.record_exception(failure)
        if not self.served:
            self.end()

    def end(self) -> None:
        """End the run's span with its outcome (once)."""
        span = self.span
        if span is None or self._ended:
            return
        self._ended = True
        status = trace.StatusCode.ERROR if self.outcome == "failed" else trace.StatusCode.UNSET
        _set_outcome(span, "trio_stream.run.outcome", self.outcome, None)
        if status is trace.StatusCode.ERROR:
            span.set_status(status)
        span.end()

    # -- what happens during the run -----------------------------------------

    def error_chunk(self, kind: ErrorKind, message: str | None = None) -> None:
        """An error chunk of ``kind`` was sent; a hidden error's reference becomes an event."""
        instruments = _INSTRUMENTS
        if instruments is None:
            return
        instruments.error_chunks.add(1, {"trio_stream.error.kind": kind})
        if message is not None and self.span is not None:
            reference_event(self.span, message)

    def disconnected(self) -> None:
        """The client left while the run was being streamed to it."""
        self.outcome = "disconnected"
        instruments = _INSTRUMENTS
        if instruments is None:
            return
        instruments.disconnects.add(1, {"trio_stream.format": self.format or "unknown"})
        if self.span is not None:
            self.span.add_event("trio_stream.disconnect")

    def cut_off(self) -> None:
        """The server's shutdown cut-off stopped the run; its client is sent an error chunk."""
        self.outcome = "cancelled"
        self.error_chunk("shutdown")
        if self.span is not None:
            self.span.add_event("trio_stream.shutdown_cut_off")

    def tool_opened(
        self, tool_name: str, tool_call_id: str, parent: Context | None
    ) -> ToolTelemetry | None:
        if _INSTRUMENTS is None or self.span is None:
            return None
        tool = ToolTelemetry(self, tool_name, tool_call_id, parent)
        self.open_tools[tool_call_id] = tool
        return tool

    def tool_answered(self, tool_call_id: str, is_error: bool) -> None:
        """A result given by id (``add_tool_result``) ends the call's span."""
        tool = self.open_tools.get(tool_call_id)
        if tool is not None:
            tool.ended("error_result" if is_error else "result")

    def substream_opened(
        self, parent: Context | None, parent_id: str | None
    ) -> SubstreamTelemetry | None:
        if _INSTRUMENTS is None or self.span is None:
            return None
        return SubstreamTelemetry(parent, parent_id)


def reference_event(span: Span, message: str) -> None:
    """An ``error_reference`` event, if ``message`` hides an error behind a reference."""
    reference = error_reference(message)
    if reference is not None:
        span.add_event("trio_stream.error_reference", {"trio_stream.error_reference": reference})


class ToolTelemetry:
    """One tool call's span and time, from its opening to its result."""

    __slots__ = ("_run", "_started", "name", "span", "tool_call_id", "trace_context")

    def __init__(
        self, run: RunTelemetry, tool_name: str, tool_call_id: str, parent: Context | None
    ) -> None:
        instruments = _INSTRUMENTS
        assert instruments is not None
        self._run = run
        self.name = tool_name
        self.tool_call_id = tool_call_id
        self._started = time.perf_counter()
        span = self.span = instruments.tracer.start_span("trio_stream.tool_call", context=parent)
        if span.is_recording():
            span.set_attribute("trio_stream.tool_call.name", tool_name)
            span.set_attribute("trio_stream.tool_call.id", tool_call_id)
            span.set_attribute("trio_stream.run.id", run.run_id)
            span.set_attribute("gen_ai.tool.name", tool_name)
            span.set_attribute("gen_ai.tool.call.id", tool_call_id)
        self.trace_context = trace.set_span_in_context(span, parent)
        instruments.tool_calls_active.add(1, tool_name)

    @contextmanager
    def current(self) -> Iterator[None]:
        """The call's span as the current one, for what its task does (remote calls, MCP)."""
        token = otel_context.attach(self.trace_context)
        try:
            yield
        finally:
            otel_context.detach(token)

    def failed_as_result(self, failure: BaseException, hidden: str | None) -> None:
        """The tool raised, and its error became its result: ``hidden`` is the message
        sent instead of the error's, if the run hides its errors."""
        if self.span.is_recording():
            self.span.record_exception(failure)
            if hidden is not None:
                reference_event(self.span, hidden)

    def ended(self, outcome: ToolOutcome, failure: BaseException | None = None) -> None:
        """End the span with ``outcome`` and count the duration; the first call wins."""
        if self._run.open_tools.pop(self.tool_call_id, None) is None:
            return
        instruments = _INSTRUMENTS
        assert instruments is not None
        instruments.tool_calls_active.add(-1, self.name)
        instruments.tool_call_duration.record(
            time.perf_counter() - self._started,
            {"trio_stream.tool_call.name": self.name, "trio_stream.tool_call.outcome": outcome},
        )
        _set_outcome(self.span, "trio_stream.tool_call.outcome", outcome, failure)
        self.span.end()


class SubstreamTelemetry:
    """One sub-stream's span, current in the task that opened it while it is open."""

    __slots__ = ("_token", "span", "trace_context")

    def __init__(self, parent: Context | None, parent_id: str | None) -> None:
        instruments = _INSTRUMENTS
        assert instruments is not None
        span = self.span = instruments.tracer.start_span("trio_stream.substream", context=parent)
        if parent_id is not None and span.is_recording():
            span.set_attribute("trio_stream.substream.parent_id", parent_id)
        self.trace_context = trace.set_span_in_context(span, parent)
        self._token = otel_context.attach(self.trace_context)
        instruments.substreams_active.add(1)

    def closed(self, failure: BaseException | None) -> None:
        instruments = _INSTRUMENTS
        assert instruments is not None
        otel_context.detach(self._token)
        instruments.substreams_active.add(-1)
        if failure is None:
            outcome = "done"
        elif isinstance(failure, Exception):
            outcome = "failed"
        else:
            outcome, failure = "cancelled", None
        _set_outcome(self.span, "trio_stream.substream.outcome", outcome, failure)
        self.span.end()


# -- responses --------------------------------------------------------------

_FORMAT_NAMES: dict[type, str] = {}


def format_name(coder: object) -> str:
    """The name of the format an encoder or decoder speaks (``FORMATS``), else its class."""
    kind = type(coder)
    name = _FORMAT_NAMES.get(kind)
    if name is None:
        from .formats import FORMATS

        known: dict[type, str] = {f.encoder: f.name for f in FORMATS.values()}
        known.update((f.decoder, f.name) for f in FORMATS.values())
        name = next((known[base] for base in kind.__mro__ if base in known), kind.__name__)
        _FORMAT_NAMES[kind] = name
    return name


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _request_parent(scope: Mapping[str, Any]) -> tuple[Context | None, bool]:
    """The parent of a served run's span, and whether it came from the request's headers.

    A span current already (an ASGI instrumentation's) is the parent; else the
    caller's, from ``traceparent`` and ``tracestate``.
    """
    if trace.get_current_span().get_span_context().is_valid:
        return None, False
    headers = scope.get("headers", ())
    traceparent = _header(headers, b"traceparent")
    if traceparent is None:
        return None, False
    carrier = {"traceparent": traceparent}
    tracestate = _header(headers, b"tracestate")
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    return propagate.extract(carrier), True


class Serving:
    """A run streamed to a client by a response: its format, its bytes, its first byte."""

    __slots__ = ("_first", "_keepalive", "_started", "_token", "bytes", "run")

    def __init__(self, run: RunTelemetry, scope: Mapping[str, Any], encoder: object) -> None:
        self.run = run
        self.bytes = 0
        self._first = True
        self._keepalive: bytes = getattr(encoder, "keepalive", b"")
        self._started = time.perf_counter()
        client = scope.get("client")
        self._token = bind_log_fields(
            run_id=run.run_id,
            path=scope.get("path"),
            client=f"{client[0]}:{client[1]}" if client else None,
        )
        run.served = True
        run.format = format_name(encoder)
        if _INSTRUMENTS is not None:
            run.parent, run.remote_parent = _request_parent(scope)
            _INSTRUMENTS.responses_active.add(1, run.format)

    def counting(
        self, write: Callable[..., Awaitable[None]]
    ) -> Callable[[bytes], Awaitable[None]]:
        """``write`` for the run's bodies, counting their bytes and timing the first."""
        if _INSTRUMENTS is None:
            return write

        async def counted(body: bytes) -> None:
            await write(body)
            self.bytes += len(body)
            if self._first and body != self._keepalive:
                self._first = False
                _INSTRUMENTS.time_to_first_byte.record(
                    time.perf_counter() - self._started, {"trio_stream.format": self.run.format}
                )

        return counted

    def ended(self) -> None:
        unbind_log_fields(self._token)
        instruments = _INSTRUMENTS
        if instruments is None:
            return
        instruments.responses_active.add(-1, self.run.format)
        instruments.bytes_sent.add(self.bytes, self.run.format)
        self.run.end()


class Reading:
    """A client reading a resumable stream from its store: a response of its own.

    It counts as a response in flight, its bytes as bytes sent, its first
    bytes as its time to first byte, and a client that leaves before the end
    as a disconnect (of the reader: the run goes on). The format is read from
    the stream's response headers, which name it.
    """

    __slots__ = ("_first", "_started", "bytes", "format")

    def __init__(self, format: str) -> None:
        self.format = format
        self.bytes = 0
        self._first = True
        self._started = time.perf_counter()
        assert _INSTRUMENTS is not None
        _INSTRUMENTS.responses_active.add(1, format)

    def counting(
        self, write: Callable[..., Awaitable[None]]
    ) -> Callable[[bytes], Awaitable[None]]:
        """``write`` for the stored bytes, counting them and timing the first."""
        instruments = _INSTRUMENTS
        assert instruments is not None

        async def counted(body: bytes) -> None:
            await write(body)
            self.bytes += len(body)
            if self._first:
                self._first = False
                instruments.time_to_first_byte.record(
                    time.perf_counter() - self._started, {"trio_stream.format": self.format}
                )

        return counted

    def left(self) -> None:
        assert _INSTRUMENTS is not None
        _INSTRUMENTS.disconnects.add(1, {"trio_stream.format": self.format})

    def ended(self) -> None:
        assert _INSTRUMENTS is not None
        _INSTRUMENTS.responses_active.add(-1, self.format)
        _INSTRUMENTS.bytes_sent.add(self.bytes, self.format)


def reading(headers: Mapping[str, str]) -> Reading | None:
    """A resumable stream's reader's telemetry, if there is any; ``headers`` are the response's."""
    if _INSTRUMENTS is None:
        return None
    from .formats import decoder_for

    try:
        format = format_name(decoder_for(headers))
    except ValueError:  # a format of the application's own, which does not say
        format = "unknown"
    return Reading(format)


# -- remote calls -----------------------------------------------------------


class RemoteCall:
    """A remote run's span: its URL, its format, and how it failed, if it did."""

    __slots__ = ("failure", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.failure: str | None = None

    def read_as(self, format: str | None) -> None:
        if self.span is not None and format is not None:
            self.span.set_attribute("trio_stream.remote.format", format)

    def failed(self, failure: str) -> None:
        """Name how the remote run failed: ``RemoteError.failure``, ``error`` (an error
        chunk) or ``invalid`` (chunks that make no valid run)."""
        self.failure = failure

    def error_chunk(self) -> None:
        """The remote run sent an error chunk."""
        self.failed("error")
        if _INSTRUMENTS is not None:
            _INSTRUMENTS.error_chunks.add(1, {"trio_stream.error.kind": "remote"})


@contextmanager
def remote_call(url: str) -> Iterator[RemoteCall]:
    """A span around reading a remote run, current while it is read (so the request
    carries it to the remote server)."""
    if _INSTRUMENTS is None:
        yield RemoteCall(None)
        return
    span = _INSTRUMENTS.tracer.start_span(
        "trio_stream.remote_call", kind=trace.SpanKind.CLIENT, attributes={"url.full": url}
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    call = RemoteCall(span)
    try:
        yield call
    except Exception as exc:
        span.set_attribute("trio_stream.remote.failure", call.failure or type(exc).__name__)
        _set_outcome(span, "trio_stream.remote.outcome", "failed", exc)
        raise
    except BaseException:
        span.set_attribute("trio_stream.remote.outcome", "cancelled")
        raise
    else:
        span.set_attribute("trio_stream.remote.outcome", "done")
    finally:
        otel_context.detach(token)
        span.end()


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to request headers."""
    if ENABLED and trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)


# -- resumable stores -------------------------------------------------------


async def measured(operation: str, call: Awaitable[T]) -> T:
    """Await a store's ``operation`` and record how long it took, failed or not."""
    instruments = _INSTRUMENTS
    if instruments is None:
        return await call
    started = time.perf_counter()
    try:
        return await call
    finally:
        instruments.store_duration.record(
            time.perf_counter() - started, {"trio_stream.store.operation": operation}
        )
