"""m1 · In-process throughput: how many chunks per second a library runs and encodes.

What is measured: one run appending 200,000 text deltas of ``"tok "``, its
chunks consumed and encoded to bytes in the same process, with no server and
no HTTP, from entering the run to its last byte: text deltas per second
(wall clock, ``time.perf_counter``). Once encoded as the data stream, once as
the assistant transport; each library's run and encoder are driven the way
its own response drives them:

* trio-stream, on Trio: ``async with create_run(run) as chunks``, then
  ``await chunks.receive_batch()`` and ``encoder.encode(batch)`` until the
  end, then ``encoder.finish()``: what ``RunResponse`` does. Also, as its own
  row, one chunk at a time with ``async for`` and ``encoder.encode([chunk])``.
* assistant-stream, on asyncio: its encoder's ``encode_stream(create_run(run))``
  async generator, each string encoded to UTF-8 bytes: what its
  ``AssistantStreamResponse`` (a Starlette ``StreamingResponse``) does. Once
  on asyncio's own loop (the reference) and once on uvloop (what uvicorn runs
  it on).

Heartbeats are left out for both libraries: they are a timer per wait, not
throughput (assistant-stream's costs a task per chunk in the assistant
transport, so leaving it out only helps it).

Two run shapes, the same code for both libraries (``bench.apps_stream``):
the run appends its 200,000 deltas without awaiting anything (the figures
``inprocess-data-stream`` and ``inprocess-assistant-transport``: the
libraries' own costs), or awaits ``sleep(0)`` after each delta
(``inprocess-data-stream-checkpointed``: a producer that awaits its model
between tokens; here the event loop's cost of a task switch per token
dominates). Each run's bytes are checked afterwards (every line of the data
stream; one ``text-delta`` event per delta and the closing ``[DONE]`` in the
assistant transport), so that a contender that dropped chunks cannot look
fast. The checkpointed figure's note also gives each event loop's own cost
of a task switch, and so the most any library on Trio could reach there.

Fair: the same run code, the same measurement boundaries, the contenders
interleaved run by run in one process after a warm-up run each, garbage
collected before each run.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import anyio
import trio
import trio.lowlevel
import uvloop

from trio_stream import create_run
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder

from . import apps_stream
from ._loops import switch_seconds
from ._results import Figure

__all__ = ["measure"]

OURS = "trio-stream · trio"
OURS_ONE_BY_ONE = "trio-stream · trio, async for"
REFERENCE = "assistant-stream · asyncio"
THEIRS_UVLOOP = "assistant-stream · asyncio + uvloop"

WARM_UP = 1_000
"""Deltas of an unrecorded run per contender before the measured ones."""

Measure = Callable[[int, bool], tuple[float, bytes]]
"""(deltas, checkpoint) -> (seconds, body)."""


def _trio_batches(encoder_class: type[StreamEncoder]) -> Measure:
    def measure(n: int, checkpoint: bool) -> tuple[float, bytes]:
        run = apps_stream.trio_text_run(n, checkpoint)

        async def main() -> tuple[float, bytes]:
            started = time.perf_counter()
            encoder = encoder_class()
            body = [encoder.start()]
            async with create_run(run) as chunks:
                while True:
                    try:
                        batch = await chunks.receive_batch()
                    except anyio.EndOfStream:
                        break
                    body.append(encoder.encode(batch))
            body.append(encoder.finish())
            return time.perf_counter() - started, b"".join(body)

        return trio.run(main)

    return measure


def _trio_one_by_one(encoder_class: type[StreamEncoder]) -> Measure:
    def measure(n: int, checkpoint: bool) -> tuple[float, bytes]:
        run = apps_stream.trio_text_run(n, checkpoint)

        async def main() -> tuple[float, bytes]:
            started = time.perf_counter()
            encoder = encoder_class()
            body = [encoder.start()]
            async with create_run(run) as chunks:
                body.extend([encoder.encode([chunk]) async for chunk in chunks])
            body.append(encoder.finish())
            return time.perf_counter() - started, b"".join(body)

        return trio.run(main)

    return measure


def _assistant_stream(encoder_name: str, loop: str) -> Measure:
    def measure(n: int, checkpoint: bool) -> tuple[float, bytes]:
        import assistant_stream  # type: ignore[import-untyped]
        import assistant_stream.serialization  # type: ignore[import-untyped]

        encoder_class: Any = getattr(assistant_stream.serialization, encoder_name)
        run = apps_stream.asyncio_text_run(n, checkpoint)

        async def main() -> tuple[float, bytes]:
            started = time.perf_counter()
            encoder = encoder_class()
            stream = encoder.encode_stream(assistant_stream.create_run(run))
            body = [text.encode("utf-8") async for text in stream]
            return time.perf_counter() - started, b"".join(body)

        if loop == "uvloop":
            return uvloop.run(main())
        return asyncio.run(main())

    return measure


def _check_data_stream(body: bytes, n: int) -> None:
    lines = body.splitlines()
    texts = sum(line == b'0:"tok "' for line in lines)
    if texts != n or len(lines) - texts > 1:
        raise AssertionError(f"data stream: {texts} text lines of {n}, {len(lines)} lines in all")


def _check_assistant_transport(body: bytes, n: int) -> None:
    deltas = body.count(b'"type":"text-delta"') + body.count(b'"type": "text-delta"')
    if deltas != n or not body.endswith(b"data: [DONE]\n\n"):
        raise AssertionError(f"assistant transport: {deltas} text deltas of {n}")


def _figure(
    key: str,
    title: str,
    contenders: dict[str, Measure],
    check: Callable[[bytes, int], None],
    n: int,
    checkpoint: bool,
    runs: int,
    note: str,
) -> Figure:
    figure = Figure(
        key=key,
        title=title,
        unit="text deltas/s",
        better="higher",
        target=f">= 5x {REFERENCE}",
        note=note,
        ours=OURS,
        reference=REFERENCE,
    )
    for measure in contenders.values():
        measure(WARM_UP, checkpoint)  # imports, first loop start-up, caches
    for _ in range(runs):
        for name, measure in contenders.items():
            gc.collect()
            seconds, body = measure(n, checkpoint)
            check(body, n)
            figure.add(name, n / seconds)
    figure.met = figure.ratio(OURS, REFERENCE) >= 5
    return figure


def _contenders(ours: type[StreamEncoder], theirs: str) -> dict[str, Measure]:
    return {
        OURS: _trio_batches(ours),
        OURS_ONE_BY_ONE: _trio_one_by_one(ours),
        REFERENCE: _assistant_stream(theirs, "asyncio"),
        THEIRS_UVLOOP: _assistant_stream(theirs, "uvloop"),
    }


def measure(smoke: bool) -> list[Figure]:
    n = 2_000 if smoke else 200_000
    runs = 1 if smoke else 5
    data_stream = _contenders(DataStreamEncoder, "DataStreamEncoder")
    transport = _contenders(AssistantTransportEncoder, "AssistantTransportEncoder")
    figures = [
        _figure(
            "inprocess-data-stream",
            f"In-process: {n:,} text deltas to the data stream",
            data_stream,
            _check_data_stream,
            n,
            False,
            runs,
            "The run appends every delta without awaiting; consumed and encoded in the "
            "same process, no HTTP.",
        ),
        _figure(
            "inprocess-assistant-transport",
            f"In-process: {n:,} text deltas to the assistant transport",
            transport,
            _check_assistant_transport,
            n,
            False,
            runs,
            "The run appends every delta without awaiting; consumed and encoded in the "
            "same process, no HTTP.",
        ),
        _figure(
            "inprocess-data-stream-checkpointed",
            f"In-process: {n:,} text deltas to the data stream, sleep(0) after each",
            data_stream,
            _check_data_stream,
            n,
            True,
            runs,
            "The run awaits sleep(0) after each delta, as a producer awaiting its model "
            "does: a task switch per delta, whose cost is mostly the event loop's.",
        ),
    ]
    checkpointed = figures[-1]
    switch = switch_seconds(n)
    bound = 1 / checkpointed.median(REFERENCE) / switch["trio"]
    checkpointed.note += (
        f" The event loops alone, one task awaiting sleep(0) {n:,} times: "
        + ", ".join(f"{loop} {seconds * 1e6:.2f} µs" for loop, seconds in switch.items())
        + f" per switch; so with this run, even a library costing nothing on Trio would be "
        f"at most {bound:.1f}x faster than {REFERENCE}."
    )
    return figures
