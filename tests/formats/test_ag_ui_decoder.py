"""AGUIDecoder reads what other AG-UI producers write.

The events are built with the protocol's own Python package
(``ag-ui-protocol``) and framed by its ``EventEncoder``, as the agent
frameworks that speak AG-UI send them: the long and the ``*_CHUNK`` forms of
messages and tool calls, state snapshots and deltas with every JSON Patch
operation, subagents, steps, foreign ``CUSTOM`` and ``RAW`` events, a
messages snapshot, a run error. Each test states the chunks they become.
"""

from __future__ import annotations

from typing import Any

import pytest
from ag_ui.core import events as agui
from ag_ui.core import types as agui_types
from ag_ui.encoder import EventEncoder

from trio_stream import DecodeError
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    ReasoningDeltaChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.ag_ui import AGUIDecoder

STARTED = agui.RunStartedEvent(thread_id="t", run_id="r")
FINISHED = agui.RunFinishedEvent(thread_id="t", run_id="r")


def body(*events: agui.BaseEvent) -> bytes:
    encoder = EventEncoder()
    return "".join(encoder.encode(event) for event in events).encode()


def decoded(*events: agui.BaseEvent, state: Any = None) -> list[Chunk]:
    """The chunks of a run of ``events``, fed one byte at a time."""
    decoder = AGUIDecoder(state=state)
    data = body(STARTED, *events, FINISHED)
    chunks: list[Chunk] = []
    for index in range(len(data)):
        chunks += decoder.feed(data[index : index + 1])
    return chunks + decoder.close()


def test_text_and_reasoning_messages() -> None:
    assert decoded(
        agui.ReasoningStartEvent(message_id="r1"),
        agui.ReasoningMessageStartEvent(message_id="r1", role="reasoning"),
        agui.ReasoningMessageContentEvent(message_id="r1", delta="Thinking "),
        agui.ReasoningMessageContentEvent(message_id="r1", delta="hard."),
        agui.ReasoningMessageEndEvent(message_id="r1"),
        agui.ReasoningEndEvent(message_id="r1"),
        agui.TextMessageStartEvent(message_id="m1", role="assistant"),
        agui.TextMessageContentEvent(message_id="m1", delta="Hello "),
        agui.TextMessageContentEvent(message_id="m1", delta="ünïcødé 🌍\n"),
        agui.TextMessageEndEvent(message_id="m1"),
    ) == [
        ReasoningDeltaChunk("Thinking "),
        ReasoningDeltaChunk("hard."),
        TextDeltaChunk("Hello "),
        TextDeltaChunk("ünïcødé 🌍\n"),
    ]


def test_the_chunk_shorthands() -> None:
    assert decoded(
        agui.TextMessageChunkEvent(message_id="m1", role="assistant", delta="Hel"),
        agui.TextMessageChunkEvent(delta="lo"),  # continues m1
        agui.ToolCallChunkEvent(tool_call_id="c1", tool_call_name="search", delta='{"q":'),
        agui.ToolCallChunkEvent(delta='"x"}'),  # continues c1, and closes m1
        agui.TextMessageChunkEvent(message_id="m2", delta="Done"),  # closes c1
        agui.ReasoningMessageChunkEvent(message_id="r1", delta="hm"),
    ) == [
        TextDeltaChunk("Hel"),
        TextDeltaChunk("lo"),
        ToolCallBeginChunk("c1", "search"),
        ToolCallDeltaChunk("c1", '{"q":'),
        ToolCallDeltaChunk("c1", '"x"}'),
        TextDeltaChunk("Done"),
        ReasoningDeltaChunk("hm"),
    ]


def test_parallel_tool_calls_and_their_results() -> None:
    assert decoded(
        agui.TextMessageStartEvent(message_id="m1", role="assistant"),
        agui.TextMessageContentEvent(message_id="m1", delta="Two searches."),
        agui.TextMessageEndEvent(message_id="m1"),
        agui.ToolCallStartEvent(
            tool_call_id="c1", tool_call_name="search", parent_message_id="m1"
        ),
        agui.ToolCallStartEvent(
            tool_call_id="c2", tool_call_name="search", parent_message_id="m1"
        ),
        agui.ToolCallArgsEvent(tool_call_id="c1", delta='{"q":"trio"}'),
        agui.ToolCallArgsEvent(tool_call_id="c2", delta='{"q":"anyio"}'),
        agui.ToolCallEndEvent(tool_call_id="c2"),
        agui.ToolCallEndEvent(tool_call_id="c1"),
        agui.ToolCallResultEvent(message_id="t2", tool_call_id="c2", content="anyio docs"),
        agui.ToolCallResultEvent(
            message_id="t1",
            tool_call_id="c1",
            content=[agui_types.TextPart(type="text", text="trio docs")],
            role="tool",
        ),
    ) == [
        TextDeltaChunk("Two searches."),
        ToolCallBeginChunk("c1", "search"),
        ToolCallBeginChunk("c2", "search"),
        ToolCallDeltaChunk("c1", '{"q":"trio"}'),
        ToolCallDeltaChunk("c2", '{"q":"anyio"}'),
        ToolResultChunk("c2", "anyio docs"),
        ToolResultChunk("c1", [{"type": "text", "text": "trio docs"}]),  # the parts, as sent
    ]


def test_a_subagents_work_is_a_sub_stream_of_its_parent_tool_call() -> None:
    assert decoded(
        agui.ToolCallStartEvent(tool_call_id="c1", tool_call_name="delegate"),
        agui.SubagentStartedEvent(
            subagent_run_id="s1", name="researcher", parent_tool_call_id="c1"
        ),
        agui.TextMessageStartEvent(message_id="m1", role="assistant", subagent_run_id="s1"),
        agui.TextMessageContentEvent(message_id="m1", delta="Reading"),
        agui.TextMessageEndEvent(message_id="m1"),
        agui.ToolCallStartEvent(tool_call_id="c2", tool_call_name="fetch", parent_message_id="m1"),
        agui.ToolCallEndEvent(tool_call_id="c2"),
        agui.CustomEvent(name="progress", value={"pages": 3}, subagent_run_id="s1"),
        agui.SubagentErrorEvent(subagent_run_id="s1", message="the subagent gave up"),
        agui.ToolCallEndEvent(tool_call_id="c1"),
        agui.ToolCallResultEvent(message_id="t1", tool_call_id="c1", content="partial"),
    ) == [
        ToolCallBeginChunk("c1", "delegate"),
        TextDeltaChunk("Reading", "c1"),
        ToolCallBeginChunk("c2", "fetch", "c1"),  # untagged: the owner of its message's
        DataChunk({"pages": 3}, "progress", "c1"),
        ErrorChunk("the subagent gave up"),  # the run goes on
        ToolResultChunk("c1", "partial"),
    ]


def test_state_snapshots_and_every_json_patch_operation() -> None:
    patch: list[dict[str, Any]] = [
        {"op": "add", "path": "/items/1", "value": "b"},  # appends
        {"op": "add", "path": "/items/0", "value": "first"},  # inserts: the list changed
        {"op": "add", "path": "/items/-", "value": "last"},
        {"op": "replace", "path": "/log", "value": "started, more"},  # extends the text
        {"op": "replace", "path": "/count", "value": 2},
        {"op": "remove", "path": "/gone"},
        {"op": "move", "from": "/count", "path": "/total"},
        {"op": "copy", "from": "/log", "path": "/copy"},
        {"op": "test", "path": "/total", "value": 2},
    ]
    assert decoded(
        agui.StateSnapshotEvent(
            snapshot={"items": ["a"], "log": "started", "count": 1, "gone": True}
        ),
        agui.StateDeltaEvent.model_validate({"delta": patch}),
    ) == [
        UpdateStateChunk(
            (
                {
                    "type": "set",
                    "path": [],
                    "value": {"items": ["a"], "log": "started", "count": 1, "gone": True},
                },
            )
        ),
        UpdateStateChunk(
            (
                {"type": "set", "path": ["items", "1"], "value": "b"},
                {"type": "set", "path": ["items"], "value": ["first", "a", "b"]},
                {"type": "set", "path": ["items", "3"], "value": "last"},
                {"type": "append-text", "path": ["log"], "value": ", more"},
                {"type": "set", "path": ["count"], "value": 2},
                {
                    "type": "set",
                    "path": [],
                    "value": {
                        "items": ["first", "a", "b", "last"],
                        "log": "started, more",
                        "count": 2,
                    },
                },
                {
                    "type": "set",
                    "path": [],
                    "value": {"items": ["first", "a", "b", "last"], "log": "started, more"},
                },
                {"type": "set", "path": ["total"], "value": 2},
                {"type": "set", "path": ["copy"], "value": "started, more"},
            )
        ),
    ]


def test_a_patch_that_does_not_apply_is_handed_on_whole() -> None:
    failing = agui.StateDeltaEvent.model_validate(
        {
            "delta": [
                {"op": "add", "path": "/a", "value": 1},
                {"op": "test", "path": "/a", "value": True},  # 1 is not true, in JSON
            ]
        }
    )
    [chunk] = decoded(failing, state={})
    assert isinstance(chunk, DataChunk)
    assert chunk.name == "STATE_DELTA"
    assert chunk.data["delta"][1] == {"op": "test", "path": "/a", "value": True}


def test_steps_custom_raw_and_snapshots_of_messages() -> None:
    messages: list[agui_types.Message] = [
        agui_types.UserMessage(id="u1", role="user", content="Hi"),
        agui_types.AssistantMessage(id="a1", role="assistant", content="Hello"),
    ]
    chunks = decoded(
        agui.StepStartedEvent(step_name="plan"),
        agui.StepFinishedEvent(step_name="plan"),
        agui.CustomEvent(name="chart", value=[1, 2]),
        agui.RawEvent(event={"provider": "x"}, source="openai"),
        agui.MessagesSnapshotEvent(messages=messages),
    )
    assert chunks[:3] == [
        StepStartChunk("plan"),
        StepFinishChunk("unknown"),  # a step says nothing of why it ended
        DataChunk([1, 2], "chart"),
    ]
    assert chunks[3] == DataChunk(
        {"type": "RAW", "event": {"provider": "x"}, "source": "openai"}, "RAW"
    )
    assert isinstance(chunks[4], DataChunk)
    assert chunks[4].name == "MESSAGES_SNAPSHOT"
    assert [message["content"] for message in chunks[4].data["messages"]] == ["Hi", "Hello"]


def test_a_run_error_is_an_error_chunk_and_ends_the_run() -> None:
    decoder = AGUIDecoder()
    data = body(
        STARTED,
        agui.TextMessageStartEvent(message_id="m1", role="assistant"),
        agui.TextMessageContentEvent(message_id="m1", delta="Before"),
        agui.RunErrorEvent(message="rate limited", code="429"),
    )
    assert decoder.decode(data) == [TextDeltaChunk("Before"), ErrorChunk("rate limited")]
    with pytest.raises(DecodeError, match="after RUN_ERROR, expected RUN_STARTED"):
        AGUIDecoder().decode(data + body(FINISHED))


def test_unknown_and_deprecated_event_types_are_read_as_the_client_reads_them() -> None:
    data = (
        body(STARTED)
        + b'data: {"type":"FUTURE_EVENT","x":1}\n\n'  # dropped, as the client drops it
        + b'data: {"type":"THINKING_START"}\n\n'
        + b'data: {"type":"THINKING_TEXT_MESSAGE_START"}\n\n'
        + b'data: {"type":"THINKING_TEXT_MESSAGE_CONTENT","delta":"hmm"}\n\n'
        + b'data: {"type":"THINKING_TEXT_MESSAGE_END"}\n\n'
        + b'data: {"type":"THINKING_END"}\n\n'
        + body(FINISHED)
    )
    assert AGUIDecoder().decode(data) == [ReasoningDeltaChunk("hmm")]


def test_several_runs_in_one_body() -> None:
    second = agui.RunStartedEvent(thread_id="t", run_id="r2")
    data = body(
        STARTED,
        agui.CustomEvent(name="n", value=1),
        FINISHED,
        second,
        agui.CustomEvent(name="n", value=2),
        agui.RunFinishedEvent(thread_id="t", run_id="r2"),
    )
    assert AGUIDecoder().decode(data) == [DataChunk(1, "n"), DataChunk(2, "n")]
