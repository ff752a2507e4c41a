"""AssistantTransportEncoder: parts, paths, and text grouped per producer."""

from __future__ import annotations

from typing import Any

import pytest

from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.assistant_transport import AssistantTransportEncoder

from ..clients import sse_events as events


def test_parallel_sub_streams_each_keep_one_text_part() -> None:
    encoder = AssistantTransportEncoder()
    body = encoder.encode(
        [
            TextDeltaChunk("a1", parent_id="A"),
            TextDeltaChunk("b1", parent_id="B"),
            TextDeltaChunk("a2", parent_id="A"),
            TextDeltaChunk("b2", parent_id="B"),
        ]
    )
    sent = events(body)
    starts = [e for e in sent if e["type"] == "part-start"]
    assert [s["part"] for s in starts] == [
        {"type": "text", "parentId": "A"},
        {"type": "text", "parentId": "B"},
    ]
    deltas = [(e["path"], e["textDelta"]) for e in sent if e["type"] == "text-delta"]
    assert deltas == [([0], "a1"), ([1], "b1"), ([0], "a2"), ([1], "b2")]


def test_a_producers_own_tool_call_or_source_closes_its_text() -> None:
    encoder = AssistantTransportEncoder()
    sent = events(
        encoder.encode(
            [
                TextDeltaChunk("before"),
                SourceChunk(id="s", url="https://example.org"),
                TextDeltaChunk("after"),
            ]
        )
    )
    assert [(e["type"], e.get("path")) for e in sent] == [
        ("part-start", []),
        ("text-delta", [0]),
        ("part-finish", [0]),
        ("part-start", []),
        ("part-finish", [1]),
        ("part-start", []),
        ("text-delta", [2]),
    ]


def test_arguments_finish_as_soon_as_they_are_json_and_the_result_closes_the_part() -> None:
    encoder = AssistantTransportEncoder()
    sent = events(
        encoder.encode(
            [
                ToolCallBeginChunk("c1", "f"),
                ToolCallDeltaChunk("c1", '{"a":'),
                ToolCallDeltaChunk("c1", "1}"),
                ToolResultChunk("c1", "ok"),
            ]
        )
    )
    assert [e["type"] for e in sent] == [
        "part-start",
        "text-delta",
        "text-delta",
        "tool-call-args-text-finish",
        "result",
        "part-finish",
    ]


def test_a_call_without_arguments_gets_empty_json_ones() -> None:
    encoder = AssistantTransportEncoder()
    sent = events(encoder.encode([ToolCallBeginChunk("c1", "f"), ToolResultChunk("c1", "ok")]))
    assert {"type": "text-delta", "textDelta": "{}", "path": [0]} in sent


def test_an_error_closes_open_text_and_ends_the_message_without_a_finish() -> None:
    encoder = AssistantTransportEncoder()
    sent = events(encoder.encode([TextDeltaChunk("partial"), ErrorChunk("boom")]))
    assert [e["type"] for e in sent][-2:] == ["part-finish", "error"]
    assert encoder.finish() == b"data: [DONE]\n\n"


def whole_body(chunks: list[Chunk]) -> list[dict[str, Any]]:
    """The events of the body of ``chunks``, without the message's finish."""
    encoder = AssistantTransportEncoder()
    sent = events(encoder.encode(chunks) + encoder.finish())
    return [e for e in sent if isinstance(e, dict) and e["type"] != "message-finish"]


TOOL_PART = {
    "type": "part-start",
    "part": {"type": "tool-call", "toolCallId": "t1", "toolName": "ask_human"},
    "path": [],
}


# -- the end of a call's arguments ----------------------------------------------------


def test_the_runs_end_of_the_arguments_finishes_the_part_where_it_is() -> None:
    # Later content is framed after a finished call; a repeated end is nothing.
    assert whole_body(
        [
            ToolCallBeginChunk("t1", "ask_human"),
            ToolCallDeltaChunk("t1", '{"q": "ok?"'),
            ToolCallArgsTextFinishChunk("t1"),
            ToolCallArgsTextFinishChunk("t1"),
            TextDeltaChunk("after"),
        ]
    ) == [
        TOOL_PART,
        {"type": "text-delta", "textDelta": '{"q": "ok?"', "path": [0]},
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
        {"type": "part-start", "part": {"type": "text"}, "path": []},
        {"type": "text-delta", "textDelta": "after", "path": [1]},
        {"type": "part-finish", "path": [1]},
    ]


def test_a_result_after_the_end_still_addresses_the_part() -> None:
    # The human-in-the-loop shape: the arguments settle, the answer comes
    # later. A result at the message's root would be dropped by the client.
    sent = whole_body(
        [
            ToolCallBeginChunk("t1", "ask_human"),
            ToolCallDeltaChunk("t1", '{"q": "ok?"}'),
            ToolCallArgsTextFinishChunk("t1"),
            TextDeltaChunk("waiting"),
            ToolResultChunk("t1", "yes"),
        ]
    )
    assert [e for e in sent if e["type"] == "result"] == [
        {"type": "result", "path": [0], "result": "yes", "isError": False}
    ]
    assert [e["path"] for e in sent if e["type"] == "part-finish"] == [[0], [1]]
    assert [e for e in sent if e["type"] == "tool-call-args-text-finish"] == [
        {"type": "tool-call-args-text-finish", "path": [0]}
    ]


def test_the_last_piece_on_the_end_is_sent_before_it() -> None:
    assert whole_body(
        [ToolCallBeginChunk("t1", "ask_human"), ToolCallArgsTextFinishChunk("t1", '{"q": 1}')]
    ) == [
        TOOL_PART,
        {"type": "text-delta", "textDelta": '{"q": 1}', "path": [0]},
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
    ]


def test_an_end_of_no_arguments_sends_their_braces() -> None:
    assert whole_body([ToolCallBeginChunk("t1", "ask_human"), ToolCallArgsTextFinishChunk("t1")])[
        1:
    ] == [
        {"type": "text-delta", "textDelta": "{}", "path": [0]},
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
    ]


def test_a_call_without_result_ends_its_arguments_and_part_at_the_end_of_the_body() -> None:
    assert whole_body([ToolCallBeginChunk("t1", "ask_human"), ToolCallDeltaChunk("t1", '{"q": ')])[
        2:
    ] == [
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
    ]


# -- reasoning parts ------------------------------------------------------------------


def test_a_summary_opens_one_reasoning_part_that_the_deltas_extend() -> None:
    assert whole_body(
        [
            ReasoningDeltaChunk("before"),
            ReasoningPartStartChunk("Planning"),
            ReasoningDeltaChunk("thinking"),
            ReasoningPartStartChunk("Searching", "p1"),
            ReasoningPartStartChunk(None),  # without a summary: nothing
            ReasoningDeltaChunk("more"),
        ]
    ) == [
        {"type": "part-start", "part": {"type": "reasoning"}, "path": []},
        {"type": "text-delta", "textDelta": "before", "path": [0]},
        {"type": "part-finish", "path": [0]},
        {
            "type": "part-start",
            "part": {"type": "reasoning", "unstable_summary": "Planning"},
            "path": [],
        },
        {"type": "text-delta", "textDelta": "thinking", "path": [1]},
        {
            "type": "part-start",
            "part": {"type": "reasoning", "unstable_summary": "Searching", "parentId": "p1"},
            "path": [],
        },
        {"type": "text-delta", "textDelta": "more", "path": [1]},
        {"type": "part-finish", "path": [1]},
        {"type": "part-finish", "path": [2]},
    ]


def _tool(call_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "part-start",
        "part": {"type": "tool-call", "toolCallId": call_id, "toolName": name},
        "path": [],
    }


def _text(path: int, delta: str) -> dict[str, Any]:
    return {"type": "text-delta", "textDelta": delta, "path": [path]}


def _args_end(path: int) -> dict[str, Any]:
    return {"type": "tool-call-args-text-finish", "path": [path]}


def _result(path: int, result: Any, **more: Any) -> dict[str, Any]:
    return {"type": "result", "path": [path], "result": result, "isError": False, **more}


def _finish(path: int) -> dict[str, Any]:
    return {"type": "part-finish", "path": [path]}


_TEXT_PART = {"type": "part-start", "part": {"type": "text"}, "path": []}

SEQUENCES: dict[str, tuple[list[Chunk], list[dict[str, Any]]]] = {
    "text deltas share one text part": (
        [TextDeltaChunk("Hello"), TextDeltaChunk(" world")],
        [_TEXT_PART, _text(0, "Hello"), _text(0, " world"), _finish(0)],
    ),
    "reasoning then text open parts of their own": (
        [ReasoningDeltaChunk("Thinking..."), TextDeltaChunk("Answer")],
        [
            {"type": "part-start", "part": {"type": "reasoning"}, "path": []},
            _text(0, "Thinking..."),
            _finish(0),
            _TEXT_PART,
            _text(1, "Answer"),
            _finish(1),
        ],
    ),
    "streamed arguments end before the result": (
        [
            ToolCallBeginChunk("tool_1", "get_weather"),
            ToolCallDeltaChunk("tool_1", '{"location":'),
            ToolCallDeltaChunk("tool_1", ' "NYC"}'),
            ToolResultChunk("tool_1", {"temp": 70}),
        ],
        [
            _tool("tool_1", "get_weather"),
            _text(0, '{"location":'),
            _text(0, ' "NYC"}'),
            _args_end(0),
            _result(0, {"temp": 70}),
            _finish(0),
        ],
    ),
    "a call without arguments gets an empty object": (
        [ToolCallBeginChunk("tool_1", "noop"), ToolResultChunk("tool_1", "ok")],
        [_tool("tool_1", "noop"), _text(0, "{}"), _args_end(0), _result(0, "ok"), _finish(0)],
    ),
    "a result carries its artifact and error flag": (
        [
            ToolCallBeginChunk("tool_1", "fail"),
            ToolResultChunk("tool_1", "boom", artifact={"trace": 1}, is_error=True),
        ],
        [
            _tool("tool_1", "fail"),
            _text(0, "{}"),
            _args_end(0),
            _result(0, "boom", isError=True, artifact={"trace": 1}),
            _finish(0),
        ],
    ),
    "data and state leave the arguments open": (
        [
            ToolCallBeginChunk("tool_1", "noop"),
            DataChunk({"x": 1}),
            UpdateStateChunk(({"type": "set", "path": [], "value": 1},)),
            ToolCallDeltaChunk("tool_1", "{}"),
        ],
        [
            _tool("tool_1", "noop"),
            {"type": "data", "data": [{"x": 1}]},
            {"type": "update-state", "operations": [{"type": "set", "path": [], "value": 1}]},
            _text(0, "{}"),
            _args_end(0),
            _finish(0),
        ],
    ),
    "data is a list of one value": (
        [DataChunk([1, 2])],
        [{"type": "data", "data": [[1, 2]]}],
    ),
    "an update keeps its operations as they are": (
        [UpdateStateChunk(({"type": "append-text", "path": ["m", "0"], "value": "hi"},))],
        [
            {
                "type": "update-state",
                "operations": [{"type": "append-text", "path": ["m", "0"], "value": "hi"}],
            }
        ],
    ),
    "a source is a part that starts and finishes": (
        [SourceChunk(id="s1", url="https://example.com", title="Example")],
        [
            {
                "type": "part-start",
                "part": {
                    "type": "source",
                    "sourceType": "url",
                    "id": "s1",
                    "url": "https://example.com",
                    "title": "Example",
                },
                "path": [],
            },
            _finish(0),
        ],
    ),
    "a call left open ends at the end of the body": (
        [ToolCallBeginChunk("tool_1", "noop"), ToolCallDeltaChunk("tool_1", '{"a": 1}')],
        [_tool("tool_1", "noop"), _text(0, '{"a": 1}'), _args_end(0), _finish(0)],
    ),
    "parallel calls keep each their own arguments": (
        [
            ToolCallBeginChunk("call_a", "search"),
            ToolCallBeginChunk("call_b", "lookup"),
            ToolCallDeltaChunk("call_a", '{"q": "cats"}'),
            ToolResultChunk("call_a", "r1"),
            ToolResultChunk("call_b", "r2"),
        ],
        [
            _tool("call_a", "search"),
            _tool("call_b", "lookup"),
            _text(0, '{"q": "cats"}'),
            _args_end(0),
            _result(0, "r1"),
            _finish(0),
            _text(1, "{}"),
            _args_end(1),
            _result(1, "r2"),
            _finish(1),
        ],
    ),
    "an error leaves the message, then open arguments end": (
        [ToolCallBeginChunk("tool_1", "noop"), ErrorChunk("boom")],
        [
            _tool("tool_1", "noop"),
            {"type": "error", "error": "boom"},
            _text(0, "{}"),
            _args_end(0),
            _finish(0),
        ],
    ),
}
"""Chunk sequences and the events they make, before the message's end."""


@pytest.mark.parametrize("case", list(SEQUENCES))
def test_each_kind_of_content_makes_its_parts(case: str) -> None:
    chunks, expected = SEQUENCES[case]
    encoder = AssistantTransportEncoder()
    sent = events(encoder.encode(chunks) + encoder.finish())
    assert sent[-1] == "data: [DONE]"
    ending = [] if isinstance(chunks[-1], ErrorChunk) else [sent[-2]]  # no finish after an error
    assert [e["type"] for e in ending] == ["message-finish"] * len(ending)
    assert sent[: len(sent) - 1 - len(ending)] == expected
