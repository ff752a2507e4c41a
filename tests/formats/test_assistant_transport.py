"""AssistantTransportEncoder: parts, paths, and text grouped per producer."""

from __future__ import annotations

from trio_stream.chunks import (
    ErrorChunk,
    SourceChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
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
