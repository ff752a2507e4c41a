"""Runs as Hypothesis draws them, for the formats' round-trip properties.

``runs`` draws the chunks of a valid run: every chunk kind, text from
hostile atoms, any JSON value, parent ids of sub-streams, and tool calls
whose ids are used once, whose arguments and results come only after their
start, and which end with a result or never. The chunks are checked with
the run's own checks (``check_chunk``), so they are exactly what a run's
controllers would let through. ``pieces`` cuts a body anywhere: inside a
UTF-8 sequence, between a ``\\r`` and its ``\\n``, into single bytes.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from hypothesis import strategies as st

from trio_stream._checks import ToolCallLedger, check_chunk
from trio_stream.chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)

from ..reliability.payloads import json_values, non_empty_texts, texts

__all__ = ["pieces", "runs"]

parents = st.none() | st.sampled_from(["p1", "p2"])
"""Parent ids: the main message, or one of two sub-streams."""

names = non_empty_texts.filter(lambda name: name not in ("custom", "update-state"))
"""Data part names; ``custom`` and ``update-state`` are the UI message stream's own."""

_ONE_OFF: list[st.SearchStrategy[Chunk]] = [
    st.builds(TextDeltaChunk, texts, parents),
    st.builds(ReasoningDeltaChunk, texts, parents),
    st.builds(DataChunk, json_values, st.none(), st.none()),
    st.builds(DataChunk, json_values, names, parents),
    st.builds(ErrorChunk, texts),
    st.builds(
        UpdateStateChunk,
        st.lists(
            st.fixed_dictionaries(
                {"type": st.just("set"), "path": st.lists(texts, max_size=2), "value": json_values}
            )
            | st.fixed_dictionaries(
                {
                    "type": st.just("append-text"),
                    "path": st.lists(texts, min_size=1, max_size=2),
                    "value": texts,
                }
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    st.builds(SourceChunk, texts, texts, title=st.none() | texts, parent_id=parents),
    st.builds(
        FileChunk,
        st.binary(max_size=20).map(lambda data: base64.b64encode(data).decode()),
        st.sampled_from(["text/plain", "image/png", "application/json"]),
        parents,
    ),
    st.builds(AnnotationsChunk, st.lists(json_values, max_size=3).map(tuple)),
    st.builds(StepStartChunk, st.text("abcdef0123456789", min_size=1, max_size=12)),
    st.builds(
        StepFinishChunk,
        st.sampled_from(["stop", "length", "content-filter", "tool-calls", "other"]),
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        st.booleans(),
    ),
]


@st.composite
def runs(draw: st.DrawFn, max_chunks: int = 24) -> list[Chunk]:
    """The chunks of one valid run, in order."""
    chunks: list[Chunk] = []
    open_calls: list[str] = []
    calls = 0
    for _ in range(draw(st.integers(0, max_chunks))):
        kind = draw(st.sampled_from(["one-off", "begin", "delta", "result"]))
        if kind == "begin" or (kind != "one-off" and not open_calls):
            calls += 1
            call_id = f"call_{calls}{draw(st.text('xyz_-', max_size=3))}"
            chunks.append(ToolCallBeginChunk(call_id, draw(non_empty_texts), draw(parents)))
            open_calls.append(call_id)
        elif kind == "delta":
            chunks.append(ToolCallDeltaChunk(draw(st.sampled_from(open_calls)), draw(texts)))
        elif kind == "result":
            call_id = draw(st.sampled_from(open_calls))
            open_calls.remove(call_id)
            is_error = draw(st.booleans())
            result: Any = draw(texts if is_error else json_values)
            artifact = None if is_error else draw(st.none() | json_values)
            chunks.append(ToolResultChunk(call_id, result, artifact, is_error))
        else:
            chunks.append(draw(st.one_of(_ONE_OFF)))
    ledger = ToolCallLedger()
    return [check_chunk(chunk, ledger) for chunk in chunks]


@st.composite
def pieces(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut into pieces at drawn points: single bytes, sometimes."""
    if draw(st.integers(0, 9)) == 0:
        return [body[i : i + 1] for i in range(len(body))]
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=12))
    points = sorted({0, len(body), *cuts})
    return [body[a:b] for a, b in itertools.pairwise(points)]
