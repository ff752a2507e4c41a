"""AGUIEncoder and AGUIDecoder: each chunk's events, and the round trip.

The encoder's side states what each chunk becomes, event by event; the
decoder's side reads bodies back: every valid run round-trips, however the
body is cut, except the state operations the state cannot take, which are
not sent (``carried``); malformed and truncated bodies are refused with the
offset of the problem.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_stream import DecodeError
from trio_stream._state import StateTree
from trio_stream.chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    StateOperation,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.ag_ui import AGUIDecoder, AGUIEncoder

from ..clients import sse_events
from .runs import ArgumentEnds, pieces, read_back, runs


def encoded(chunks: list[Chunk], **options: Any) -> bytes:
    encoder = AGUIEncoder(**options)
    return encoder.start() + encoder.encode(chunks) + encoder.finish()


def events(chunks: list[Chunk], **options: Any) -> list[dict[str, Any]]:
    """The events of the whole body for ``chunks``."""
    found: list[dict[str, Any]] = sse_events(encoded(chunks, **options))
    return found


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in found]


def without_ids(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with their generated message ids replaced by their order of appearance."""
    names: dict[str, str] = {}
    text = json.dumps(found)
    for event in found:
        for key in ("messageId", "parentMessageId"):
            if key in event:
                names.setdefault(event[key], f"m{len(names) + 1}")
    for generated, name in names.items():
        text = text.replace(generated, name)
    result: list[dict[str, Any]] = json.loads(text)
    return result


def decoded(body: bytes, split: list[bytes] | None = None) -> list[Chunk]:
    decoder = AGUIDecoder()
    chunks: list[Chunk] = []
    for piece in split if split is not None else [body]:
        chunks += decoder.feed(piece)
    return chunks + decoder.close()


def carried(chunks: list[Chunk]) -> list[Chunk]:
    """What AG-UI carries of ``chunks``: everything but state operations the state refuses.

    An operation that the run's state cannot take (a path through a value
    that is not a dict or list, text appended to what is not a string) has no
    JSON Patch, and an update-state chunk left with no operation is not sent.
    """
    state = StateTree(None, lambda ops: None)
    result: list[Chunk] = []
    for chunk in chunks:
        if not isinstance(chunk, UpdateStateChunk):
            result.append(chunk)
            continue
        kept: list[StateOperation] = []
        for op in chunk.operations:
            try:
                state.apply([op])
            except (TypeError, KeyError):
                continue
            kept.append(op)
        if kept:
            result.append(UpdateStateChunk(tuple(kept)))
    return result


# -- the run ---------------------------------------------------------------------


def test_a_body_opens_with_run_started_and_ends_with_run_finished() -> None:
    assert events([], thread_id="t1", run_id="r1", parent_run_id="r0") == [
        {"type": "RUN_STARTED", "threadId": "t1", "runId": "r1", "parentRunId": "r0"},
        {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r1"},
    ]


def test_ids_are_new_and_random_by_default() -> None:
    first, second = AGUIEncoder(), AGUIEncoder()
    assert first.thread_id != second.thread_id
    assert first.run_id != second.run_id
    assert sse_events(first.start())[0]["runId"] == first.run_id


# -- text and reasoning --------------------------------------------------------


def test_text_is_a_message_per_run_of_deltas_of_a_producer() -> None:
    found = events([TextDeltaChunk("Hel"), TextDeltaChunk("lo"), ReasoningDeltaChunk("hmm")])
    assert without_ids(found)[1:-1] == [
        {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hel"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "lo"},
        {"type": "TEXT_MESSAGE_END", "messageId": "m1"},
        {"type": "REASONING_START", "messageId": "m2"},
        {"type": "REASONING_MESSAGE_START", "messageId": "m2", "role": "reasoning"},
        {"type": "REASONING_MESSAGE_CONTENT", "messageId": "m2", "delta": "hmm"},
        {"type": "REASONING_MESSAGE_END", "messageId": "m2"},
        {"type": "REASONING_END", "messageId": "m2"},
    ]


def test_sub_streams_write_messages_of_their_own_at_the_same_time() -> None:
    found = without_ids(
        events(
            [
                TextDeltaChunk("main "),
                ToolCallBeginChunk("call_a", "writer"),
                TextDeltaChunk("a0 ", "call_a"),
                TextDeltaChunk("more", None),
                TextDeltaChunk("a1", "call_a"),
                ToolResultChunk("call_a", "written"),
            ]
        )
    )
    assert found[5] == {
        "type": "SUBAGENT_STARTED",
        "subagentRunId": "call_a",
        "name": "writer",
        "parentToolCallId": "call_a",
    }
    assert found[6] == {
        "type": "TEXT_MESSAGE_START",
        "messageId": "m2",
        "role": "assistant",
        "subagentRunId": "call_a",
    }
    # The run's own text and the sub-stream's are two messages open at once.
    assert [(e["type"], e.get("messageId"), e.get("delta")) for e in found[7:11]] == [
        ("TEXT_MESSAGE_CONTENT", "m2", "a0 "),
        ("TEXT_MESSAGE_START", "m3", None),
        ("TEXT_MESSAGE_CONTENT", "m3", "more"),
        ("TEXT_MESSAGE_CONTENT", "m2", "a1"),
    ]
    assert kinds(found[11:]) == [
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_END",  # the sub-stream's, as its parent call has its result
        "SUBAGENT_FINISHED",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]


def test_a_sub_stream_of_no_tool_call_is_a_subagent_too() -> None:
    found = events([DataChunk(1, "n", "p1")])
    assert found[1] == {"type": "SUBAGENT_STARTED", "subagentRunId": "p1", "name": "sub-stream"}
    assert found[2] == {"type": "CUSTOM", "name": "n", "value": 1, "subagentRunId": "p1"}
    assert kinds(found)[-2:] == ["SUBAGENT_FINISHED", "RUN_FINISHED"]


# -- tool calls ----------------------------------------------------------------


def test_a_tool_call_joins_the_producers_latest_text_message() -> None:
    found = without_ids(
        events(
            [
                TextDeltaChunk("Let me look."),
                ToolCallBeginChunk("c1", "search"),
                ToolCallDeltaChunk("c1", '{"q": '),
                ToolCallDeltaChunk("c1", '"trio"}'),
                ToolCallBeginChunk("c2", "search"),
                ToolResultChunk("c1", ["trio docs"], artifact={"hits": 1}),
                ToolResultChunk("c2", "no such page", is_error=True),
            ]
        )
    )
    assert found[4:] == [
        {
            "type": "TOOL_CALL_START",
            "toolCallId": "c1",
            "toolCallName": "search",
            "parentMessageId": "m1",
        },
        {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": '{"q": '},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": '"trio"}'},
        {"type": "TOOL_CALL_END", "toolCallId": "c1"},  # the arguments are complete JSON
        {
            "type": "TOOL_CALL_START",
            "toolCallId": "c2",
            "toolCallName": "search",
            "parentMessageId": "m1",
        },
        {
            "type": "TOOL_CALL_RESULT",
            "messageId": "m2",
            "toolCallId": "c1",
            "content": '["trio docs"]',
            "role": "tool",
            "metadata": {"trioStream": {"json": True, "artifact": {"hits": 1}}},
        },
        {"type": "TOOL_CALL_END", "toolCallId": "c2"},
        {
            "type": "TOOL_CALL_RESULT",
            "messageId": "m3",
            "toolCallId": "c2",
            "content": "no such page",
            "role": "tool",
            "metadata": {"trioStream": {"isError": True}},
        },
        {"type": "RUN_FINISHED", "threadId": found[0]["threadId"], "runId": found[0]["runId"]},
    ]


def test_a_string_result_is_the_content_as_it_is() -> None:
    found = events([ToolCallBeginChunk("c1", "f"), ToolResultChunk("c1", '"quoted"')])
    assert found[-2]["content"] == '"quoted"'
    assert "metadata" not in found[-2]


def test_a_call_without_text_before_it_gets_an_assistant_message_of_its_own() -> None:
    found = events([ToolCallBeginChunk("c1", "f"), ToolCallBeginChunk("c2", "g")])
    assert found[1]["parentMessageId"] == found[2]["parentMessageId"]
    assert found[1]["parentMessageId"].startswith("msg_")


def test_arguments_after_complete_json_reopen_the_call() -> None:
    found = events(
        [
            ToolCallBeginChunk("c1", "f"),
            ToolCallDeltaChunk("c1", "{}"),
            ToolCallDeltaChunk("c1", " "),
            ToolResultChunk("c1", 1),
        ]
    )
    assert [(e["type"], e.get("delta")) for e in found[1:-2]] == [
        ("TOOL_CALL_START", None),
        ("TOOL_CALL_ARGS", "{}"),
        ("TOOL_CALL_END", None),
        ("TOOL_CALL_START", None),  # the client appends to the call it has
        ("TOOL_CALL_ARGS", " "),
        ("TOOL_CALL_END", None),
    ]


def test_calls_left_without_a_result_are_pending_for_the_front_end() -> None:
    found = events([ToolCallBeginChunk("ask", "confirm"), ToolCallDeltaChunk("ask", "{")])
    assert kinds(found)[-2:] == ["TOOL_CALL_END", "RUN_FINISHED"]
    assert found[-1]["outcome"] == {"type": "success", "pendingToolCallIds": ["ask"]}


# -- state ---------------------------------------------------------------------


def test_setting_the_whole_state_is_a_snapshot() -> None:
    op: StateOperation = {"type": "set", "path": [], "value": {"log": "a"}}
    assert events([UpdateStateChunk((op,))])[1] == {
        "type": "STATE_SNAPSHOT",
        "snapshot": {"log": "a"},
    }


def test_state_operations_are_json_patches_against_the_state() -> None:
    ops: tuple[StateOperation, ...] = (
        {"type": "set", "path": ["items", "1"], "value": "b"},
        {"type": "append-text", "path": ["log"], "value": " more"},
        {"type": "set", "path": ["new"], "value": [1]},
        {"type": "set", "path": ["a/b", "~"], "value": None},
    )
    found = events(
        [UpdateStateChunk(ops)], state={"items": ["x"], "log": "started", "a/b": {"~": 1}}
    )
    assert found[1] == {
        "type": "STATE_DELTA",
        "delta": [
            {"op": "add", "path": "/items/1", "value": "b"},
            {"op": "replace", "path": "/log", "value": "started more"},  # the whole string
            {"op": "add", "path": "/new", "value": [1]},
            {"op": "replace", "path": "/a~1b/~0", "value": None},
        ],
    }


def test_operations_json_patch_cannot_say_plainly_are_marked() -> None:
    ops: tuple[StateOperation, ...] = (
        {"type": "append-text", "path": ["empty"], "value": "x"},  # reads as a set
        {"type": "set", "path": ["log"], "value": "ab"},  # reads as an append
        {"type": "set", "path": ["deep", "er"], "value": 1},  # the dicts on the way are new
    )
    found = events([UpdateStateChunk(ops)], state={"empty": "", "log": "a"})
    assert found[1]["delta"] == [
        {
            "op": "replace",
            "path": "/empty",
            "value": "x",
            "trioStream": {"type": "append-text", "path": ["empty"]},
        },
        {
            "op": "replace",
            "path": "/log",
            "value": "ab",
            "trioStream": {"type": "set", "path": ["log"]},
        },
        {
            "op": "add",
            "path": "/deep",
            "value": {"er": 1},
            "trioStream": {"type": "set", "path": ["deep", "er"]},
        },
    ]


def test_operations_the_state_cannot_take_are_not_sent() -> None:
    ops: tuple[StateOperation, ...] = (
        {"type": "append-text", "path": ["n"], "value": "x"},  # to a number
        {"type": "set", "path": ["n", "k"], "value": 1},  # through a number
    )
    assert kinds(events([UpdateStateChunk(ops)], state={"n": 1})) == [
        "RUN_STARTED",
        "RUN_FINISHED",
    ]


# -- custom events -----------------------------------------------------------------


def test_data_sources_files_and_annotations_are_custom_events() -> None:
    found = events(
        [
            DataChunk({"points": [1]}, "chart"),
            DataChunk("plain"),
            DataChunk(2, "trio-stream.error"),  # our own names stay ours
            SourceChunk("s1", "https://trio.rtfd.io", title="Trio"),
            FileChunk("aGk=", "text/plain"),
            AnnotationsChunk(({"note": "checked"},)),
        ]
    )
    assert found[1:-1] == [
        {"type": "CUSTOM", "name": "chart", "value": {"points": [1]}},
        {"type": "CUSTOM", "name": "trio-stream.data", "value": {"data": "plain"}},
        {
            "type": "CUSTOM",
            "name": "trio-stream.data",
            "value": {"data": 2, "name": "trio-stream.error"},
        },
        {
            "type": "CUSTOM",
            "name": "trio-stream.source",
            "value": {"id": "s1", "url": "https://trio.rtfd.io", "title": "Trio"},
        },
        {
            "type": "CUSTOM",
            "name": "trio-stream.file",
            "value": {"data": "aGk=", "mimeType": "text/plain"},
        },
        {"type": "CUSTOM", "name": "trio-stream.annotations", "value": [{"note": "checked"}]},
    ]


# -- steps and errors ----------------------------------------------------------


def test_steps_are_named_by_their_message_id_and_finish_with_their_usage() -> None:
    found = events(
        [
            StepStartChunk("step-1"),
            StepStartChunk("step-2"),  # finishes step-1, which said nothing
            StepFinishChunk("stop", 10, 20),
            StepFinishChunk("length", 1, 2, is_continued=True),  # no step is open
        ]
    )
    assert found[1:] == [
        {"type": "STEP_STARTED", "stepName": "step-1"},
        {
            "type": "STEP_FINISHED",
            "stepName": "step-1",
            "metadata": {"trioStream": {"implicit": True}},
        },
        {"type": "STEP_STARTED", "stepName": "step-2"},
        {
            "type": "STEP_FINISHED",
            "stepName": "step-2",
            "metadata": {
                "trioStream": {
                    "finishReason": "stop",
                    "usage": {"inputTokens": 10, "outputTokens": 20},
                    "isContinued": False,
                }
            },
        },
        {
            "type": "CUSTOM",
            "name": "trio-stream.step-finish",
            "value": {
                "finishReason": "length",
                "usage": {"inputTokens": 1, "outputTokens": 2},
                "isContinued": True,
            },
        },
        {
            "type": "RUN_FINISHED",
            "threadId": found[0]["threadId"],
            "runId": found[0]["runId"],
            "usage": [{"inputTokens": 11, "outputTokens": 22, "totalTokens": 33}],
        },
    ]


def test_an_error_is_a_custom_event_and_the_run_ends_with_run_error() -> None:
    found = without_ids(
        events([ErrorChunk("a tool is slow"), TextDeltaChunk("still here"), ErrorChunk("down")])
    )
    assert found[1:] == [
        {"type": "CUSTOM", "name": "trio-stream.error", "value": "a tool is slow"},
        {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "still here"},
        {"type": "CUSTOM", "name": "trio-stream.error", "value": "down"},
        {"type": "TEXT_MESSAGE_END", "messageId": "m1"},
        {"type": "RUN_ERROR", "message": "down"},  # the last error again, last
    ]


# -- reasoning parts and the end of a call's arguments ------------------------------


def test_a_reasoning_summary_starts_a_reasoning_message_that_carries_it() -> None:
    found = without_ids(
        events(
            [
                ReasoningPartStartChunk("Planning"),
                ReasoningDeltaChunk("thinking"),
                ReasoningPartStartChunk(None),  # without a summary: nothing
            ]
        )
    )
    assert found[1:-1] == [
        {
            "type": "REASONING_START",
            "messageId": "m1",
            "metadata": {"trioStream": {"summary": "Planning"}},
        },
        {"type": "REASONING_MESSAGE_START", "messageId": "m1", "role": "reasoning"},
        {"type": "REASONING_MESSAGE_CONTENT", "messageId": "m1", "delta": "thinking"},
        {"type": "REASONING_MESSAGE_END", "messageId": "m1"},
        {"type": "REASONING_END", "messageId": "m1"},
    ]


def test_the_runs_end_of_the_arguments_ends_the_call_where_it_is() -> None:
    found = events(
        [
            ToolCallBeginChunk("c1", "confirm"),
            ToolCallDeltaChunk("c1", '{"ok": '),
            ToolCallArgsTextFinishChunk("c1", "true"),
            TextDeltaChunk("waiting"),
            ToolResultChunk("c1", "yes"),
        ]
    )
    assert [(e["type"], e.get("delta")) for e in found[1:-1]] == [
        ("TOOL_CALL_START", None),
        ("TOOL_CALL_ARGS", '{"ok": '),
        ("TOOL_CALL_ARGS", "true"),
        ("TOOL_CALL_END", None),
        ("TEXT_MESSAGE_START", None),
        ("TEXT_MESSAGE_CONTENT", "waiting"),
        ("TOOL_CALL_RESULT", None),
        ("TEXT_MESSAGE_END", None),
    ]


# -- decoding --------------------------------------------------------------------


@given(st.data())
def test_every_run_round_trips_however_the_body_is_cut(data: st.DataObject) -> None:
    chunks = data.draw(runs())
    body = encoded(chunks)
    back = read_back(chunks, ArgumentEnds(at_results=True, at_end=True))
    assert decoded(body, data.draw(pieces(body))) == carried(back)


def test_the_decoder_reads_the_state_the_run_started_from() -> None:
    op: StateOperation = {"type": "append-text", "path": ["log"], "value": "!"}
    body = encoded([UpdateStateChunk((op,))], state={"log": "hi"})
    decoder = AGUIDecoder(state={"log": "hi"})
    assert decoder.decode(body) == [UpdateStateChunk((op,))]


def test_a_ten_megabyte_delta_decodes_in_small_pieces() -> None:
    text = "\u03b1" * 5_000_000  # 10 MB of UTF-8
    body = encoded([TextDeltaChunk(text), TextDeltaChunk("end")])
    split = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert decoded(body, split) == [TextDeltaChunk(text), TextDeltaChunk("end")]


def _body(*values: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(value).encode() + b"\n\n" for value in values)


START = {"type": "RUN_STARTED", "threadId": "t", "runId": "r"}
FINISHED = {"type": "RUN_FINISHED", "threadId": "t", "runId": "r"}
AFTER_START = len(_body(START))
OPEN = {"type": "TEXT_MESSAGE_START", "messageId": "m"}


@pytest.mark.parametrize(
    ("body", "offset", "problem"),
    [
        (b"", 0, "ends before RUN_FINISHED or RUN_ERROR"),
        (_body(START), AFTER_START, "ends before RUN_FINISHED or RUN_ERROR"),
        (_body(START, FINISHED)[:-1], len(_body(START, FINISHED)) - 1, "ends inside an event"),
        (_body(START) + b"data: {nope}\n\n", AFTER_START, "expected an AG-UI event as JSON"),
        (_body(START, [1]), AFTER_START, "expected an AG-UI event: a JSON object"),
        (_body(START, {"kind": "x"}), AFTER_START, "expected an AG-UI event's type"),
        (_body({"type": "TEXT_MESSAGE_START", "messageId": "m"}), 0, "expected RUN_STARTED first"),
        (
            _body(START, {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "x"}),
            AFTER_START,
            "TEXT_MESSAGE_CONTENT: no open message 'm'",
        ),
        (
            _body(START, {"type": "TOOL_CALL_START", "toolCallId": "c"}),
            AFTER_START,
            "TOOL_CALL_START: expected toolCallName as a string",
        ),
        (
            _body(START, OPEN, FINISHED),
            len(_body(START, OPEN)),
            "RUN_FINISHED: text messages are still open: m",
        ),
        (
            _body(START, {"type": "RUN_ERROR", "message": "x"}, FINISHED),
            len(_body(START, {"type": "RUN_ERROR", "message": "x"})),
            "after RUN_ERROR, expected RUN_STARTED",
        ),
        (
            _body(START, {"type": "STATE_DELTA", "delta": [{"op": "add", "path": "x"}]}),
            AFTER_START,
            "operation 0 has a path that is not a JSON Pointer",
        ),
        (
            _body(START, {"type": "CUSTOM", "name": "trio-stream.source", "value": 1}),
            AFTER_START,
            "the value of trio-stream.source is not what this encoder writes",
        ),
    ],
)
def test_malformed_bodies_are_refused_where_they_go_wrong(
    body: bytes, offset: int, problem: str
) -> None:
    with pytest.raises(DecodeError) as raised:
        decoded(body)
    assert raised.value.offset == offset
    assert problem in str(raised.value)


@given(st.data())
def test_a_body_cut_short_is_refused(data: st.DataObject) -> None:
    body = encoded(data.draw(runs(max_chunks=8)))
    end = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(DecodeError):
        decoded(body[:end])
