"""DataStreamEncoder: one line per chunk, arguments marked final, a closing d: line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_stream.chunks import (
    ErrorChunk,
    StepFinishChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats.data_stream import DataStreamEncoder


def lines(body: bytes) -> list[tuple[str, Any]]:
    parsed = []
    for line in body.decode().splitlines():
        code, _, value = line.partition(":")
        parsed.append((code, json.loads(value)))
    return parsed


def test_a_delta_that_completes_the_arguments_is_final() -> None:
    encoder = DataStreamEncoder()
    body = encoder.encode(
        [
            ToolCallBeginChunk("c1", "search"),
            ToolCallDeltaChunk("c1", '{"q": "a}'),  # a brace inside a string: not the end
            ToolCallDeltaChunk("c1", '", "n": [1, 2]'),
            ToolCallDeltaChunk("c1", "}"),
            ToolResultChunk("c1", ["hit"]),
        ]
    )
    deltas = [value for code, value in lines(body) if code == "c"]
    assert [delta.get("isFinal", False) for delta in deltas] == [False, False, True]


def test_the_body_ends_with_the_finish_reason_and_usage() -> None:
    encoder = DataStreamEncoder()
    encoder.encode([TextDeltaChunk("x"), StepFinishChunk("length", 3, 5)])
    assert lines(encoder.finish()) == [
        ("d", {"finishReason": "length", "usage": {"inputTokens": 3, "outputTokens": 5}})
    ]


def test_a_call_left_without_result_finishes_with_tool_calls() -> None:
    encoder = DataStreamEncoder()
    encoder.encode([ToolCallBeginChunk("c1", "ask_user"), ToolCallDeltaChunk("c1", "{}")])
    assert lines(encoder.finish())[0][1]["finishReason"] == "tool-calls"


def test_after_an_error_there_is_no_finish_line() -> None:
    encoder = DataStreamEncoder()
    assert encoder.encode([ErrorChunk("boom")]) == b'3:"boom"\n'
    assert encoder.finish() == b""


@pytest.mark.parametrize(
    "chunk",
    [ToolCallDeltaChunk("nope", "{}"), ToolResultChunk("nope", 1)],
)
def test_a_chunk_for_an_unknown_tool_call_is_refused(chunk: Any) -> None:
    with pytest.raises(ValueError, match="'nope' was not started"):
        DataStreamEncoder().encode([chunk])


def test_a_tool_call_cannot_start_twice() -> None:
    encoder = DataStreamEncoder()
    encoder.encode([ToolCallBeginChunk("c1", "f")])
    with pytest.raises(ValueError, match="started twice"):
        encoder.encode([ToolCallBeginChunk("c1", "f")])
