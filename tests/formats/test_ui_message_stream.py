"""UIMessageStreamEncoder: blocks, tool input, and how the message finishes."""

from __future__ import annotations

from trio_stream.chunks import (
    ErrorChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder

from ..clients import sse_events as events


def test_the_body_opens_with_start_and_ends_with_finish_and_done() -> None:
    encoder = UIMessageStreamEncoder(message_id="msg_1")
    assert events(encoder.start()) == [{"type": "start", "messageId": "msg_1"}]
    encoder.encode([TextDeltaChunk("hi")])
    assert events(encoder.finish()) == [
        {"type": "text-end", "id": "text-1"},
        {"type": "finish", "finishReason": "stop", "usage": {"inputTokens": 0, "outputTokens": 0}},
        "data: [DONE]",
    ]


def test_input_is_available_once_the_arguments_are_json() -> None:
    encoder = UIMessageStreamEncoder()
    sent = events(
        encoder.encode(
            [
                ToolCallBeginChunk("c1", "search"),
                ToolCallDeltaChunk("c1", '{"q":'),
                ToolCallDeltaChunk("c1", '"trio"}'),
            ]
        )
    )
    assert sent[-1] == {
        "type": "tool-input-available",
        "toolCallId": "c1",
        "toolName": "search",
        "input": {"q": "trio"},
    }
    assert encoder.encode([ToolResultChunk("c1", [1])]) == (
        b'data: {"type":"tool-output-available","toolCallId":"c1","output":[1]}\n\n'
    )


def test_arguments_that_are_not_json_become_an_input_error() -> None:
    encoder = UIMessageStreamEncoder()
    sent = events(
        encoder.encode(
            [
                ToolCallBeginChunk("c1", "f"),
                ToolCallDeltaChunk("c1", "not json"),
                ToolResultChunk("c1", "failed", is_error=True),
            ]
        )
    )
    assert [e["type"] for e in sent] == [
        "tool-input-start",
        "tool-input-delta",
        "tool-input-error",
        "tool-output-error",
    ]
    assert sent[2]["input"] == "not json"
    assert sent[3]["errorText"] == "failed"


def test_finish_reasons() -> None:
    pending = UIMessageStreamEncoder()
    pending.encode([ToolCallBeginChunk("c1", "ask_user")])
    assert events(pending.finish())[-2]["finishReason"] == "tool-calls"

    unknown = UIMessageStreamEncoder()
    unknown.encode([StepFinishChunk("unknown")])
    assert events(unknown.finish())[-2]["finishReason"] == "other"  # no "unknown" in the AI SDK

    failed = UIMessageStreamEncoder()
    sent = events(failed.encode([TextDeltaChunk("x"), ErrorChunk("boom")]))
    assert [e["type"] for e in sent][-2:] == ["text-end", "error"]
    assert events(failed.finish())[-2]["finishReason"] == "error"


def test_a_step_start_carries_its_message_id_in_the_provider_metadata() -> None:
    # The AI SDK's start-step has no id field; its parser lets extra keys through.
    encoder = UIMessageStreamEncoder()
    assert events(encoder.encode([StepStartChunk("step-1")])) == [
        {"type": "start-step", "providerMetadata": {"trioStream": {"messageId": "step-1"}}}
    ]


def test_a_continued_step_says_so_and_others_are_sent_as_before() -> None:
    encoder = UIMessageStreamEncoder()
    continued, last = events(
        encoder.encode([StepFinishChunk("length", 1, 2, True), StepFinishChunk("stop", 3, 4)])
    )
    usage = {"inputTokens": 1, "outputTokens": 2}
    assert continued == {
        "type": "finish-step",
        "finishReason": "length",
        "usage": usage,
        "isContinued": True,
    }
    assert "isContinued" not in last


def test_the_runs_end_of_the_arguments_makes_the_input_available_there() -> None:
    encoder = UIMessageStreamEncoder()
    sent = events(
        encoder.encode(
            [
                ToolCallBeginChunk("c1", "search"),
                ToolCallDeltaChunk("c1", '{"q":'),
                ToolCallArgsTextFinishChunk("c1", '"trio"}'),
                ToolCallBeginChunk("c2", "confirm"),
                ToolCallArgsTextFinishChunk("c2"),
                ToolCallBeginChunk("c3", "f"),
                ToolCallArgsTextFinishChunk("c3", "not json"),
                TextDeltaChunk("waiting"),
            ]
        )
    )
    assert [(e["type"], e.get("input"), e.get("inputTextDelta")) for e in sent] == [
        ("tool-input-start", None, None),
        ("tool-input-delta", None, '{"q":'),
        ("tool-input-delta", None, '"trio"}'),
        ("tool-input-available", {"q": "trio"}, None),
        ("tool-input-start", None, None),
        ("tool-input-available", {}, None),
        ("tool-input-start", None, None),
        ("tool-input-delta", None, "not json"),
        ("tool-input-error", "not json", None),
        ("text-start", None, None),
        ("text-delta", None, None),
    ]
    assert encoder.encode([ToolResultChunk("c2", "yes")]) == (
        b'data: {"type":"tool-output-available","toolCallId":"c2","output":"yes"}\n\n'
    )


def test_a_reasoning_summary_starts_a_block_that_the_deltas_extend() -> None:
    encoder = UIMessageStreamEncoder()
    sent = events(
        encoder.encode(
            [
                ReasoningPartStartChunk("Planning"),
                ReasoningDeltaChunk("thinking"),
                ReasoningPartStartChunk("Searching", "p1"),
                ReasoningPartStartChunk(None),  # without a summary: nothing
            ]
        )
    )
    assert sent == [
        {
            "type": "reasoning-start",
            "id": "reasoning-1",
            "providerMetadata": {"trioStream": {"summary": "Planning"}},
        },
        {"type": "reasoning-delta", "id": "reasoning-1", "delta": "thinking"},
        {
            "type": "reasoning-start",
            "id": "reasoning-2",
            "providerMetadata": {"trioStream": {"parentId": "p1", "summary": "Searching"}},
        },
    ]
