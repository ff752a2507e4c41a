"""DataStreamEncoder: one line per chunk, arguments marked final, a closing d: line."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trio_stream import RunController
from trio_stream.chunks import (
    AnnotationsChunk,
    Chunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.data_stream import DataStreamEncoder

from ..conftest import collect


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


def encoded(chunks: list[Chunk]) -> bytes:
    return DataStreamEncoder().encode(chunks)


# -- reasoning parts ------------------------------------------------------------------


def test_a_reasoning_summary_has_a_line_of_its_own_and_the_deltas_follow() -> None:
    # A summary cannot ride on a delta, and a part that never gets text would
    # not be on the wire at all without its line.
    assert encoded([ReasoningPartStartChunk("Planning"), ReasoningDeltaChunk("thinking")]) == (
        b'aui-reasoning-part-start:{"unstable_summary":"Planning"}\ng:"thinking"\n'
    )


def test_a_reasoning_summary_carries_its_parent_and_may_be_empty() -> None:
    assert encoded([ReasoningPartStartChunk("Planning", "p1"), ReasoningPartStartChunk("")]) == (
        b'aui-reasoning-part-start:{"unstable_summary":"Planning","parentId":"p1"}\n'
        b'aui-reasoning-part-start:{"unstable_summary":""}\n'
    )


def test_a_reasoning_start_without_a_summary_sends_nothing() -> None:
    assert encoded([ReasoningPartStartChunk(), ReasoningDeltaChunk("thinking")]) == (
        b'g:"thinking"\n'
    )


@pytest.mark.anyio
async def test_add_reasoning_part_sends_the_summary_with_the_controllers_parent() -> None:
    async def run(controller: RunController) -> None:
        controller.add_reasoning_part("Planning")
        controller.append_reasoning("thinking")
        controller.with_parent_id("p1").add_reasoning_part("Searching")

    assert encoded(await collect(run)) == (
        b'aui-reasoning-part-start:{"unstable_summary":"Planning"}\n'
        b'g:"thinking"\n'
        b'aui-reasoning-part-start:{"unstable_summary":"Searching","parentId":"p1"}\n'
    )


# -- the end of a call's arguments ----------------------------------------------------


def test_an_end_carries_the_last_piece_of_the_arguments() -> None:
    # A producer may send the last of its arguments with their end.
    body = encoded(
        [
            ToolCallBeginChunk("t1", "search"),
            ToolCallDeltaChunk("t1", '{"q": '),
            ToolCallArgsTextFinishChunk("t1", "1}"),
        ]
    )
    assert lines(body)[1:] == [
        ("c", {"toolCallId": "t1", "argsTextDelta": '{"q": '}),
        ("c", {"toolCallId": "t1", "argsTextDelta": "1}", "isFinal": True}),
    ]
    arguments = "".join(value["argsTextDelta"] for code, value in lines(body) if code == "c")
    assert json.loads(arguments) == {"q": 1}


def test_an_end_of_arguments_that_are_not_json_goes_out_where_it_is() -> None:
    body = encoded(
        [
            ToolCallBeginChunk("t1", "search"),
            ToolCallDeltaChunk("t1", '{"q": '),
            ToolCallArgsTextFinishChunk("t1"),
            TextDeltaChunk("working"),
        ]
    )
    assert lines(body)[2:] == [
        ("c", {"toolCallId": "t1", "argsTextDelta": "", "isFinal": True}),
        ("0", "working"),
    ]


def test_an_end_of_no_arguments_sends_their_braces() -> None:
    # A client that predates isFinal takes the text as it is: it needs the {}.
    body = encoded([ToolCallBeginChunk("t1", "now"), ToolCallArgsTextFinishChunk("t1")])
    assert lines(body)[1:] == [("c", {"toolCallId": "t1", "argsTextDelta": "{}", "isFinal": True})]


def test_arguments_final_as_json_need_no_second_end() -> None:
    body = encoded(
        [
            ToolCallBeginChunk("t1", "search"),
            ToolCallDeltaChunk("t1", '{"q": 1}'),
            ToolCallArgsTextFinishChunk("t1"),
            TextDeltaChunk("working"),
        ]
    )
    assert lines(body)[1:] == [
        ("c", {"toolCallId": "t1", "argsTextDelta": '{"q": 1}', "isFinal": True}),
        ("0", "working"),
    ]


@pytest.mark.parametrize(
    ("boundary", "line"),
    [
        (StepFinishChunk("tool-calls", 1, 2), "e"),
        (ErrorChunk("failed"), "3"),
    ],
)
def test_a_steps_end_or_an_error_ends_the_arguments_still_streaming_first(
    boundary: Chunk, line: str
) -> None:
    body = encoded(
        [
            ToolCallBeginChunk("t1", "search"),
            ToolCallBeginChunk("t2", "search"),
            ToolCallDeltaChunk("t2", '{"q": '),
            ToolCallBeginChunk("t3", "search"),
            ToolCallDeltaChunk("t3", "{}"),  # complete: final already
            boundary,
        ]
    )
    *_, first, second, last = lines(body)
    assert first == ("c", {"toolCallId": "t1", "argsTextDelta": "{}", "isFinal": True})
    assert second == ("c", {"toolCallId": "t2", "argsTextDelta": "", "isFinal": True})
    assert last[0] == line


def test_argument_text_after_such_an_end_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_stream")
    body = encoded(
        [
            ToolCallBeginChunk("t1", "search"),
            ToolCallDeltaChunk("t1", '{"q": '),
            StepFinishChunk("tool-calls"),
            ToolCallDeltaChunk("t1", "1}"),  # a client drops it after isFinal
            ToolCallArgsTextFinishChunk("t1", "2"),
            ToolResultChunk("t1", "found"),
        ]
    )
    assert [code for code, _ in lines(body)] == ["b", "c", "c", "e", "a"]
    assert [record.getMessage() for record in caplog.records] == [
        "tool call 't1': argument text after its arguments ended (at a step's end or an "
        "error) is not sent"
    ] * 2


@pytest.mark.anyio
async def test_results_before_an_end_keep_their_place_and_the_end_is_dropped() -> None:
    # assistant-stream's controllers end the arguments after every result.
    async def peer_shaped() -> AsyncIterator[Chunk]:
        yield ToolCallBeginChunk("t1", "ping")
        yield ToolResultChunk("t1", "pong")
        yield ToolCallArgsTextFinishChunk("t1")

    async def run(controller: RunController) -> None:
        controller.add_stream(peer_shaped())

    assert encoded(await collect(run)) == (
        b'b:{"toolCallId":"t1","toolName":"ping"}\na:{"toolCallId":"t1","result":"pong"}\n'
    )


@pytest.mark.anyio
async def test_close_on_the_controller_ends_the_arguments() -> None:
    async def run(controller: RunController) -> None:
        now = await controller.add_tool_call("now", "t1")
        now.close()
        search = await controller.add_tool_call("search", "t2")
        search.append_args_text('{"q": 1}')
        search.close()

    assert lines(encoded(await collect(run))) == [
        ("b", {"toolCallId": "t1", "toolName": "now"}),
        ("c", {"toolCallId": "t1", "argsTextDelta": "{}", "isFinal": True}),
        ("b", {"toolCallId": "t2", "toolName": "search"}),
        ("c", {"toolCallId": "t2", "argsTextDelta": '{"q": 1}', "isFinal": True}),
    ]


@pytest.mark.parametrize(
    ("chunk", "line"),
    [
        (
            UpdateStateChunk(({"type": "append-text", "path": ["m", "0"], "value": "hi"},)),
            'aui-state:[{"type":"append-text","path":["m","0"],"value":"hi"}]',
        ),
        (
            AnnotationsChunk(({"type": "citation", "id": "a1"},)),
            '8:[{"type":"citation","id":"a1"}]',
        ),
        (StepStartChunk("msg_1"), 'f:{"messageId":"msg_1"}'),
        (
            StepFinishChunk("stop", 12, 34, is_continued=False),
            'e:{"finishReason":"stop","usage":{"inputTokens":12,"outputTokens":34},'
            '"isContinued":false}',
        ),
        (FileChunk("aGVsbG8=", "image/png"), 'k:{"data":"aGVsbG8=","mimeType":"image/png"}'),
        (
            FileChunk("eA==", "text/plain", parent_id="p1"),
            'k:{"data":"eA==","mimeType":"text/plain","parentId":"p1"}',
        ),
    ],
)
def test_each_chunk_is_one_line_of_compact_json(chunk: Chunk, line: str) -> None:
    assert DataStreamEncoder().encode([chunk]) == line.encode() + b"\n"
