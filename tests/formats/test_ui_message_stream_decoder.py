"""UIMessageStreamDecoder: our bodies back into their chunks, and the AI SDK's bodies."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_stream import DecodeError
from trio_stream.chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
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
from trio_stream.serialization.ui_message_stream import (
    UIMessageStreamDecoder,
    UIMessageStreamEncoder,
)

from .. import clients
from .runs import ArgumentEnds, pieces, read_back, runs

DONE = b"data: [DONE]\n\n"


def sse(*chunks: Any) -> bytes:
    """A body of one ``data:`` event per chunk, then ``[DONE]``."""
    return b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks) + DONE


def decode(body: bytes) -> list[Chunk]:
    return UIMessageStreamDecoder().decode(body)


def decode_pieces(body_pieces: list[bytes]) -> tuple[list[Chunk], UIMessageStreamDecoder]:
    decoder = UIMessageStreamDecoder()
    chunks = [chunk for piece in body_pieces for chunk in decoder.feed(piece)]
    return chunks + decoder.close(), decoder


def encode(chunks: list[Chunk], message_id: str = "msg_1") -> bytes:
    encoder = UIMessageStreamEncoder(message_id=message_id)
    return (
        encoder.start() + b"".join(encoder.encode([chunk]) for chunk in chunks) + encoder.finish()
    )


def carried(chunk: Chunk) -> Chunk:
    """``chunk`` as the format carries it: a data part has no parent id."""
    if isinstance(chunk, DataChunk):
        return DataChunk(chunk.data, chunk.name)
    return chunk


# -- round trip --------------------------------------------------------------------


@given(runs(), st.data())
def test_a_run_decodes_to_its_chunks_from_any_split(
    chunks: list[Chunk], data: st.DataObject
) -> None:
    body = encode(chunks, message_id="msg_x")
    decoded, decoder = decode_pieces(data.draw(pieces(body)))
    back = read_back(chunks, ArgumentEnds(at_results=True, at_end=True))
    assert decoded == [carried(chunk) for chunk in back]
    finish = clients.sse_events(body)[-2]
    assert (decoder.message_id, decoder.finish_reason) == ("msg_x", finish["finishReason"])


def test_what_the_format_cannot_carry() -> None:
    chunks: list[Chunk] = [
        DataChunk(1, "progress", "call_1"),
        DataChunk(2, "custom"),
        ToolCallBeginChunk("c1", "f"),
        ToolResultChunk("c1", {"code": 7}, artifact="log", is_error=True),
        StepFinishChunk("unknown", 1, 2),
    ]
    assert decode(encode(chunks)) == [
        DataChunk(1, "progress"),  # no parent id on data parts
        DataChunk(2),  # data-custom is the unnamed data
        ToolCallBeginChunk("c1", "f"),
        ToolResultChunk("c1", '{"code":7}', is_error=True),  # errorText is text, no artifact
        StepFinishChunk("other", 1, 2),  # the AI SDK has no "unknown"
    ]


# -- how each chunk type reads ---------------------------------------------------------


def test_text_blocks_are_addressed_by_id_and_several_may_be_open() -> None:
    body = sse(
        {"type": "text-start", "id": "a"},
        {"type": "text-start", "id": "b", "providerMetadata": {"trioStream": {"parentId": "p"}}},
        {"type": "reasoning-start", "id": "a"},
        {"type": "text-delta", "id": "b", "delta": "nested"},
        {"type": "reasoning-delta", "id": "a", "delta": "hmm"},
        {"type": "text-delta", "id": "a", "delta": "main"},
        {"type": "text-end", "id": "a"},
        {"type": "text-delta", "id": "b", "delta": " still open"},
    )
    assert decode(body) == [
        TextDeltaChunk("nested", "p"),
        ReasoningDeltaChunk("hmm"),
        TextDeltaChunk("main"),
        TextDeltaChunk(" still open", "p"),
    ]


def test_a_tool_call_whose_input_came_whole_gets_its_arguments_as_one_delta() -> None:
    body = sse(
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "f", "input": {"q": "ü"}},
        {"type": "tool-input-start", "toolCallId": "c2", "toolName": "g"},
        {"type": "tool-input-available", "toolCallId": "c2", "toolName": "g", "input": [1]},
        {"type": "tool-input-available", "toolCallId": "c3", "toolName": "h", "input": {}},
    )
    assert decode(body) == [
        ToolCallBeginChunk("c1", "f"),
        ToolCallDeltaChunk("c1", '{"q":"ü"}'),
        ToolCallBeginChunk("c2", "g"),
        ToolCallDeltaChunk("c2", "[1]"),
        ToolCallBeginChunk("c3", "h"),  # {}: no argument text, as a call without any
    ]


def test_streamed_input_is_not_repeated_by_tool_input_available_or_error_which_end_it() -> None:
    body = sse(
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "f"},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{}"},
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "f", "input": {}},
        {"type": "tool-input-start", "toolCallId": "c2", "toolName": "f"},
        {"type": "tool-input-delta", "toolCallId": "c2", "inputTextDelta": "{oops"},
        {
            "type": "tool-input-error",
            "toolCallId": "c2",
            "toolName": "f",
            "input": "{oops",
            "errorText": "not JSON",
        },
        {
            "type": "tool-input-error",
            "toolCallId": "c3",
            "toolName": "f",
            "input": "{raw",
            "errorText": "not JSON",
        },
    )
    assert decode(body) == [
        ToolCallBeginChunk("c1", "f"),
        ToolCallDeltaChunk("c1", "{}"),
        ToolCallBeginChunk("c2", "f"),
        ToolCallDeltaChunk("c2", "{oops"),
        ToolCallArgsTextFinishChunk("c2"),  # JSON would say it ended; this text does not
        ToolCallBeginChunk("c3", "f"),
        ToolCallDeltaChunk("c3", "{raw"),  # the text that did not parse, as it was
    ]


def test_tool_outputs_become_results() -> None:
    body = sse(
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "f", "input": {}},
        {"type": "tool-output-available", "toolCallId": "c1", "output": 1, "preliminary": True},
        {
            "type": "tool-output-available",
            "toolCallId": "c1",
            "output": {"n": 2},
            "providerMetadata": {"trioStream": {"artifact": [3]}},
        },
        {"type": "tool-output-error", "toolCallId": "c2", "errorText": "boom"},
        {"type": "tool-output-denied", "toolCallId": "c3"},
    )
    assert decode(body) == [
        ToolCallBeginChunk("c1", "f"),
        ToolResultChunk("c1", {"n": 2}, artifact=[3]),  # the preliminary output is skipped
        ToolResultChunk("c2", "boom", is_error=True),  # a call of an earlier response
        ToolResultChunk("c3", "the tool call was denied", is_error=True),
    ]


def test_message_metadata_gives_our_new_annotations_or_is_one_annotation() -> None:
    body = sse(
        {"type": "start", "messageId": "m", "messageMetadata": {"createdAt": 1}},
        {"type": "message-metadata", "messageMetadata": {"annotations": [{"a": 1}]}},
        {"type": "message-metadata", "messageMetadata": {"annotations": [{"a": 1}]}},
        {"type": "message-metadata", "messageMetadata": {"annotations": [{"a": 1}, 2, 3]}},
        {"type": "message-metadata", "messageMetadata": {"annotations": [9]}},
        {"type": "message-metadata", "messageMetadata": None},
        {"type": "finish", "messageMetadata": {"model": "x"}},
    )
    assert decode(body) == [
        AnnotationsChunk(({"createdAt": 1},)),
        AnnotationsChunk(({"a": 1},)),
        AnnotationsChunk(()),
        AnnotationsChunk((2, 3)),
        AnnotationsChunk(({"annotations": [9]},)),  # not a continuation: kept whole
        AnnotationsChunk(({"model": "x"},)),
    ]


def test_a_step_takes_our_message_id_else_the_messages_else_none() -> None:
    ours = {"type": "start-step", "providerMetadata": {"trioStream": {"messageId": "s1"}}}
    assert decode(sse({"type": "start-step"}, {"type": "start", "messageId": "m"}, ours)) == [
        StepStartChunk(""),
        StepStartChunk("s1"),
    ]
    assert decode(sse({"type": "start", "messageId": "m"}, {"type": "start-step"})) == [
        StepStartChunk("m")
    ]


def test_a_step_finish_without_our_fields_has_an_unknown_reason() -> None:
    ours = {
        "type": "finish-step",
        "finishReason": "length",
        "usage": {"inputTokens": 3, "outputTokens": 4},
        "isContinued": True,
    }
    assert decode(sse({"type": "finish-step"}, ours)) == [
        StepFinishChunk("unknown"),
        StepFinishChunk("length", 3, 4, is_continued=True),
    ]


def test_files_sources_and_what_no_chunk_type_holds() -> None:
    document = {"sourceId": "d1", "mediaType": "application/pdf", "title": "Report"}
    by_url = {"url": "https://files.example/cat.png", "mediaType": "image/png"}
    approval = {"approvalId": "a1", "toolCallId": "c1"}
    parent = {"providerMetadata": {"trioStream": {"parentId": "p"}}}
    body = sse(
        {"type": "file", "url": "data:text/plain;base64,aGk=", "mediaType": "text/plain"},
        {"type": "file", "url": "data:text/plain,h%C3%A9", "mediaType": "text/plain", **parent},
        {"type": "file", **by_url},
        {"type": "source-url", "sourceId": "s1", "url": "https://a.example", **parent},
        {"type": "source-document", **document},
        {"type": "tool-approval-request", **approval},
    )
    assert decode(body) == [
        FileChunk("aGk=", "text/plain"),
        FileChunk(base64.b64encode("hé".encode()).decode(), "text/plain", "p"),
        DataChunk(by_url, "file"),
        SourceChunk("s1", "https://a.example", parent_id="p"),
        DataChunk(document, "source-document"),
        DataChunk(approval, "tool-approval-request"),
    ]


def test_data_parts_state_updates_errors_and_aborts() -> None:
    operations: list[StateOperation] = [{"type": "set", "path": [], "value": {"n": 1}}]
    body = sse(
        {"type": "data-custom", "data": [1]},
        {"type": "data-weather", "id": "w", "data": {"c": 21}, "transient": True},
        {"type": "data-update-state", "data": operations},
        {"type": "data-update-state", "data": "not operations"},
        {"type": "error", "errorText": "down"},
        {"type": "abort", "reason": "stopped"},
        {"type": "abort"},
    )
    assert decode(body) == [
        DataChunk([1]),
        DataChunk({"c": 21}, "weather"),  # id and transient are not kept
        UpdateStateChunk(tuple(operations)),
        DataChunk("not operations", "update-state"),
        ErrorChunk("down"),
        ErrorChunk("the response was aborted: stopped"),
        ErrorChunk("the response was aborted"),
    ]


def test_any_event_stream_framing_and_keep_alives() -> None:
    body = (
        b"\xef\xbb\xbf: heartbeat\r\n\r\n"
        b'event: message\r\nid: 7\r\ndata: {"type":"text-start",\r\ndata: "id":"t"}\r\n\r\n'
        b': heartbeat\n\ndata:{"type":"text-delta","id":"t","delta":"hi"}\r\r'
        b"data: [DONE]\n\n: heartbeat\n\n"
    )
    for size in (1, 2, 7):
        split = [body[i : i + size] for i in range(0, len(body), size)]
        assert decode_pieces(split)[0] == [TextDeltaChunk("hi")]


def test_a_body_is_complete_at_done_with_or_without_finish() -> None:
    assert decode(DONE) == []
    decoder = UIMessageStreamDecoder()
    assert decoder.decode(sse({"type": "finish", "finishReason": "tool-calls"})) == []
    assert decoder.finish_reason == "tool-calls"


# -- bodies that are not a UI message stream ----------------------------------------------


START = b'data: {"type":"start"}\n\n'
TEXT_START = b'data: {"type":"text-start","id":"a"}\n\n'
OUTPUT_ERROR = b'data: {"type":"tool-output-error","toolCallId":"c","errorText":"x"}\n\n'


@pytest.mark.parametrize(
    ("before", "event", "problem"),
    [
        (START, b'data: {"type":"nope"}\n\n', "expected a UI message chunk type, not 'nope'"),
        (START, b'data: {"type"\n\n', "expected a UI message chunk as JSON"),
        (START, b"data: [1]\n\n", "a JSON object with a string type"),
        (
            TEXT_START,
            b'data: {"type":"text-delta","id":"b","delta":"x"}\n\n',
            "expected a text-start of block 'b' before its text-delta",
        ),
        (
            START,
            b'data: {"type":"reasoning-end","id":"a"}\n\n',
            "expected a reasoning-start of block 'a' before its reasoning-end",
        ),
        (
            START,
            b'data: {"type":"tool-input-delta","toolCallId":"c","inputTextDelta":"{"}\n\n',
            "expected a tool-input-start of tool call 'c' before its input",
        ),
        (
            TEXT_START,
            b'data: {"type":"text-delta","id":"a"}\n\n',
            "expected the text-delta chunk's delta to be a string, found no such field",
        ),
        (
            START,
            b'data: {"type":"source-url","sourceId":"s","url":"u","title":null}\n\n',
            "expected the source-url chunk's title to be a string, found null",
        ),
        (
            START,
            b'data: {"type":"finish","finishReason":"unknown"}\n\n',
            "expected a finish reason of the AI SDK, not 'unknown'",
        ),
        (
            START,
            b'data: {"type":"file","url":"data:image/png;base64,*","mediaType":"image/png"}\n\n',
            "expected base64 data in the file chunk's data: URL",
        ),
        (OUTPUT_ERROR, OUTPUT_ERROR, "expected one result for tool call 'c', not a second"),
        (DONE, START, "expected the end of the body after data: [DONE]"),
    ],
)
def test_a_malformed_chunk_is_a_decode_error_at_its_event(
    before: bytes, event: bytes, problem: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(before + event + DONE)
    assert caught.value.offset == len(before)
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"type":"nope"}\n\n',
        b'data: {"type":"text-delta","id":"b","delta":"x"}\n\n',
        b'data: {"type":"tool-input-delta","toolCallId":"c","inputTextDelta":"{"}\n\n',
        b'data: {"type":"source-url","sourceId":"s","url":"u","title":null}\n\n',
        b'data: {"type":"finish","finishReason":"unknown"}\n\n',
    ],
)
def test_the_ai_sdk_client_refuses_these_chunks_too(event: bytes) -> None:
    with pytest.raises(clients.DecodeError):
        clients.decode("ai-ui-message-stream", body=START + event + DONE)


def test_a_body_that_is_not_utf_8_is_a_decode_error_at_the_first_bad_byte() -> None:
    body = START + b'data: {"type":"error","errorText":"caf\xe9"}\n\n' + DONE
    with pytest.raises(DecodeError) as caught:
        decode(body)
    assert caught.value.offset == body.index(b"\xe9")
    assert "expected UTF-8 text" in caught.value.problem


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'data: {"type":"start"}\n\n', "the body ends before data: [DONE]"),
        (b'data: {"type":"start"}\n\ndata: [DONE]\n', "the body ends inside an event"),
        (b'data: {"type":"start"}\n\ndata: [DO', "the body ends inside a line"),
    ],
)
def test_a_truncated_body_is_a_decode_error_at_its_end(body: bytes, problem: str) -> None:
    decoder = UIMessageStreamDecoder()
    decoder.feed(body)
    with pytest.raises(DecodeError) as caught:
        decoder.close()
    assert caught.value.offset == len(body)
    assert problem in caught.value.problem


# -- the AI SDK as the producer ----------------------------------------------------------


def ai_sdk_body(scenario: str) -> bytes:
    """The body the AI SDK writes for ``scenario`` of ``tests/js/ai_sdk_stream.mjs``."""
    command = ["node", str(clients.JS / "ai_sdk_stream.mjs"), scenario]
    return subprocess.run(command, capture_output=True, timeout=120, check=True).stdout


def test_the_ai_sdk_stream_text_response_decodes_to_what_the_model_streamed() -> None:
    body = ai_sdk_body("stream-text")
    # The AI SDK's finish-step carries neither a reason nor usage.
    step_finish = StepFinishChunk("unknown")
    expected: list[Chunk] = [
        AnnotationsChunk(({"model": "mock"},)),  # messageMetadata of start
        StepStartChunk("msg-1"),  # the message's id: the AI SDK gives steps none
        ReasoningDeltaChunk("The user wants "),
        ReasoningDeltaChunk("the weather."),
        TextDeltaChunk("Let me check "),
        TextDeltaChunk("Lisbon."),
        ToolCallBeginChunk("call-1", "weather"),
        ToolCallDeltaChunk("call-1", '{"city":'),
        ToolCallDeltaChunk("call-1", '"Lisbon"}'),
        ToolResultChunk("call-1", {"city": "Lisbon", "celsius": 21}),
        step_finish,
        StepStartChunk("msg-1"),
        ToolCallBeginChunk("call-2", "weather"),  # its input came whole
        ToolCallDeltaChunk("call-2", '{"city":"Atlantis"}'),
        ToolResultChunk("call-2", "no such city", is_error=True),
        step_finish,
        StepStartChunk("msg-1"),
        TextDeltaChunk("It is 21 °C in Lisbon; "),
        TextDeltaChunk("Atlantis is not on the map."),
        SourceChunk("src-1", "https://weather.example/lisbon", title="Lisbon weather"),
        FileChunk("aGVsbG8=", "text/plain"),
        step_finish,
    ]
    for split in ([body], [body[i : i + 1] for i in range(len(body))]):
        chunks, decoder = decode_pieces(split)
        assert chunks == expected
        assert (decoder.message_id, decoder.finish_reason) == ("msg-1", "stop")


def test_an_app_s_own_ai_sdk_writer_decodes_without_a_finish() -> None:
    chunks, decoder = decode_pieces([ai_sdk_body("writer")])
    assert chunks == [
        StepStartChunk("msg-2"),
        TextDeltaChunk("first "),  # two blocks open at once, interleaved
        TextDeltaChunk("second "),
        TextDeltaChunk("block"),
        DataChunk(
            {
                "sourceId": "doc-1",
                "mediaType": "application/pdf",
                "title": "Report",
                "filename": "report.pdf",
            },
            "source-document",
        ),
        DataChunk({"url": "https://files.example/cat.png", "mediaType": "image/png"}, "file"),
        DataChunk({"done": 1}, "progress"),  # the AI SDK replaces the part with id "p"...
        DataChunk({"done": 2}, "progress"),  # ...chunks keep both, in order
        DataChunk("saved", "toast"),  # transient: not in the AI SDK's message
        ToolCallBeginChunk("call-9", "delete_file"),
        ToolCallDeltaChunk("call-9", '{"path":"/tmp/x"}'),
        DataChunk({"approvalId": "appr-1", "toolCallId": "call-9"}, "tool-approval-request"),
        ToolResultChunk("call-9", "the tool call was denied", is_error=True),
        AnnotationsChunk(({"tokens": 42},)),
        StepFinishChunk("unknown"),
        ErrorChunk("the response was aborted: user stopped"),
    ]
    assert (decoder.message_id, decoder.finish_reason) == ("msg-2", None)


# -- size --------------------------------------------------------------------------------


def test_a_ten_megabyte_text_delta_decodes_whole_or_in_64_kib_pieces() -> None:
    text = "ü€𝄞x" * (10_000_000 // 10)  # 10 MB of UTF-8, sequences split across pieces
    body = encode([TextDeltaChunk(text)])
    assert len(body) > 10_000_000
    assert decode(body) == [TextDeltaChunk(text)]
    size = 64 * 1024
    chunks, _ = decode_pieces([body[i : i + size] for i in range(0, len(body), size)])
    assert chunks == [TextDeltaChunk(text)]
