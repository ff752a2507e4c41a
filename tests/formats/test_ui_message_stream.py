"""UIMessageStreamEncoder: blocks, tool input, and how the message finishes."""

from __future__ import annotations

from trio_stream.chunks import (
    ErrorChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
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
