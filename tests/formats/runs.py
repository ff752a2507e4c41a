"""Runs as Hypothesis draws them, for the formats' round-trip properties.

``runs`` draws the chunks of a valid run: every chunk kind, text from
hostile atoms, any JSON value, parent ids of sub-streams, reasoning parts
with and without a summary, and tool calls whose ids are used once, whose
arguments (hostile text, or pieces of JSON that may complete it) and
results come only after their start, whose arguments may end explicitly
(with a last piece of text or not) and then take no more text, and which
end with a result or never. The chunks are checked with
the run's own checks (``check_chunk``), so they are exactly what a run's
controllers would let through. ``pieces`` cuts a body anywhere: inside a
UTF-8 sequence, between a ``\\r`` and its ``\\n``, into single bytes.
``joined`` is what a reader makes of deltas: each part's text, however cut.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
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
    ReasoningPartStartChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats._message import ToolArguments

from ..reliability.payloads import json_values, non_empty_texts, texts

__all__ = ["ArgumentEnds", "joined", "pieces", "read_back", "runs"]

parents = st.none() | st.sampled_from(["p1", "p2"])
"""Parent ids: the main message, or one of two sub-streams."""

names = non_empty_texts.filter(lambda name: name not in ("custom", "update-state"))
"""Data part names; ``custom`` and ``update-state`` are the UI message stream's own."""

arguments = texts | st.sampled_from(['{"q": ', '"x"}', "1}", "{}", "[", "]", "{", "}", '"'])
"""Argument text: hostile text, or pieces of JSON that may complete it (and may go on after)."""

_ONE_OFF: list[st.SearchStrategy[Chunk]] = [
    st.builds(TextDeltaChunk, texts, parents),
    st.builds(ReasoningDeltaChunk, texts, parents),
    st.builds(ReasoningPartStartChunk, st.none() | texts, parents),
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
    open_calls: list[str] = []  # awaiting their result
    streaming: list[str] = []  # whose arguments have not ended
    calls = 0
    for _ in range(draw(st.integers(0, max_chunks))):
        kind = draw(st.sampled_from(["one-off", "begin", "delta", "finish", "result"]))
        if kind == "begin" or (kind != "one-off" and not open_calls):
            calls += 1
            call_id = f"call_{calls}{draw(st.text('xyz_-', max_size=3))}"
            chunks.append(ToolCallBeginChunk(call_id, draw(non_empty_texts), draw(parents)))
            open_calls.append(call_id)
            streaming.append(call_id)
        elif kind in ("delta", "finish") and streaming:
            call_id = draw(st.sampled_from(streaming))
            if kind == "delta":
                chunks.append(ToolCallDeltaChunk(call_id, draw(arguments)))
            else:
                streaming.remove(call_id)
                last = draw(st.just("") | arguments)
                chunks.append(ToolCallArgsTextFinishChunk(call_id, last))
        elif kind in ("delta", "finish", "result"):
            call_id = draw(st.sampled_from(open_calls))
            open_calls.remove(call_id)
            if call_id in streaming:
                streaming.remove(call_id)
            is_error = draw(st.booleans())
            result: Any = draw(texts if is_error else json_values)
            artifact = None if is_error else draw(st.none() | json_values)
            chunks.append(ToolResultChunk(call_id, result, artifact, is_error))
        else:
            chunks.append(draw(st.one_of(_ONE_OFF)))
    ledger = ToolCallLedger()
    checked = [check_chunk(chunk, ledger) for chunk in chunks]
    return [chunk for chunk in checked if chunk is not None]


@st.composite
def pieces(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut into pieces at drawn points: single bytes, sometimes."""
    if draw(st.integers(0, 9)) == 0:
        return [body[i : i + 1] for i in range(len(body))]
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=12))
    points = sorted({0, len(body), *cuts})
    return [body[a:b] for a, b in itertools.pairwise(points)]


# -- what a format's body says of reasoning parts and argument ends -------------------


@dataclass(frozen=True)
class ArgumentEnds:
    """Where a format's body ends a tool call's arguments, besides where the run does.

    ``text_rides``: the end carries the finish's last piece of text (else that
    piece is sent as argument text before it); ``braces``: the end of
    arguments that stayed empty sends ``{}`` as their text.
    """

    text_rides: bool = False
    braces: bool = False
    at_results: bool = False
    at_boundaries: bool = False  # a step's end or an error, after which text is dropped
    at_end: bool = False


class _Arguments:
    """A call's argument text as a format's encoder and decoder both follow it."""

    __slots__ = ("ended", "settled", "text")

    def __init__(self) -> None:
        self.text = ToolArguments()
        self.ended = False
        self.settled = False


def _end(call_id: str, call: _Arguments, last: str, ends: ArgumentEnds) -> list[Chunk]:
    """The chunks a decoder gives for the end of ``call``'s arguments, ``last`` their last text.

    Complete JSON ended itself when it completed: only its text comes back.
    Otherwise the end comes back as a finish, unless the arguments are empty
    (no arguments: ``{}``) or complete once ``last`` is added: the text says
    it then.
    """
    call.ended = True
    text = call.text
    if text.complete:
        return [ToolCallDeltaChunk(call_id, last)] if last else []
    if ends.text_rides:
        if not last and text.empty and ends.braces:
            last = "{}"
        text.add(last)
        if text.complete or text.empty:
            return [ToolCallDeltaChunk(call_id, last)]
        return [ToolCallArgsTextFinishChunk(call_id, last)]
    back: list[Chunk] = []
    if last:
        back.append(ToolCallDeltaChunk(call_id, last))
        text.add(last)
    if text.empty:
        return [*back, ToolCallDeltaChunk(call_id, "{}")] if ends.braces else back
    if not text.complete:
        back.append(ToolCallArgsTextFinishChunk(call_id))
    return back


def read_back(chunks: list[Chunk], ends: ArgumentEnds) -> list[Chunk]:
    """``chunks`` as a format's decoder gives back their reasoning parts and argument ends.

    A reasoning part without a summary sends nothing. A tool call's
    arguments end where the run ends them and wherever ``ends`` says the
    format ends them; each end comes back as ``_end`` says.
    """
    calls: dict[str, _Arguments] = {}  # awaiting their result
    back: list[Chunk] = []
    for chunk in chunks:
        match chunk:
            case ReasoningPartStartChunk(unstable_summary=None):
                continue
            case ToolCallBeginChunk():
                calls[chunk.tool_call_id] = _Arguments()
            case ToolCallDeltaChunk():
                call = calls[chunk.tool_call_id]
                if call.settled:
                    continue
                call.text.add(chunk.args_text_delta)
            case ToolCallArgsTextFinishChunk():
                call = calls[chunk.tool_call_id]
                if not call.ended:
                    back += _end(chunk.tool_call_id, call, chunk.args_text_delta, ends)
                continue
            case ToolResultChunk():
                call = calls.pop(chunk.tool_call_id)
                if ends.at_results and not call.ended:
                    back += _end(chunk.tool_call_id, call, "", ends)
            case StepFinishChunk() | ErrorChunk() if ends.at_boundaries:
                for call_id, call in calls.items():
                    if not (call.ended or call.text.complete):
                        back += _end(call_id, call, "", ends)
                        call.settled = True
        back.append(chunk)
    if ends.at_end:
        for call_id, call in calls.items():
            if not call.ended:
                back += _end(call_id, call, "", ends)
    return back


# -- what a reader makes of deltas -----------------------------------------------------


def joined(chunks: list[Chunk]) -> list[Any]:
    """What a reader makes of ``chunks``: each run of deltas of one part joined, as
    (kind, part, text); every other chunk as it is."""
    message: list[Any] = []
    for chunk in chunks:
        match chunk:
            case TextDeltaChunk(text_delta=text, parent_id=part):
                key: tuple[str, str | None] | None = ("text", part)
            case ReasoningDeltaChunk(reasoning_delta=text, parent_id=part):
                key = ("reasoning", part)
            case ToolCallDeltaChunk(args_text_delta=text, tool_call_id=part):
                key = ("arguments", part)
            case _:
                key = None
        if key is None:
            message.append(chunk)
        elif message and isinstance(message[-1], list) and message[-1][0] == key:
            message[-1][1] += text
        else:
            message.append([key, text])
    return message
