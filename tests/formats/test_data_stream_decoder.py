"""DataStreamDecoder: data stream bodies back into chunks.

It gives back the chunks of every body the encoder writes, however the body
is split; reads the bodies of other producers (assistant-stream 0.0.36 in
Python, the npm ``assistant-stream`` encoder, the AI SDK 4 protocol as
documented) as the chunks they stand for; and refuses a broken body with a
``DecodeError`` at the byte where it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from assistant_stream import create_run as peer_create_run  # type: ignore[import-untyped]
from assistant_stream.serialization.data_stream import (  # type: ignore[import-untyped]
    DataStreamResponse as PeerDataStreamResponse,
)
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
from trio_stream.formats import merged_deltas
from trio_stream.formats.data_stream import DataStreamDecoder, DataStreamEncoder
from trio_stream.serialization import data_stream as serialization

from ..clients import JS
from ..clients import decode as npm_decode
from ..scenarios import SCENARIOS
from .runs import ArgumentEnds, pieces, read_back, runs

DATA_STREAM_ENDS = ArgumentEnds(text_rides=True, braces=True, at_boundaries=True)
"""The ``isFinal`` line carries the last text, ``{}`` for none; steps' ends and errors end
arguments, and the text after them is dropped."""


def encoded(chunks: Iterable[Chunk]) -> bytes:
    encoder = DataStreamEncoder()
    return encoder.encode(chunks) + encoder.finish()


def decoded(body_pieces: Iterable[bytes]) -> list[Chunk]:
    decoder = DataStreamDecoder()
    chunks: list[Chunk] = []
    for piece in body_pieces:
        chunks += decoder.feed(piece)
    return chunks + decoder.close()


def lines(*texts: str) -> bytes:
    return "".join(f"{text}\n" for text in texts).encode()


def test_the_decoder_is_at_assistant_streams_import_path() -> None:
    assert serialization.DataStreamDecoder is DataStreamDecoder
    assert DataStreamDecoder.media_type == DataStreamEncoder.media_type


# -- our own bodies ------------------------------------------------------------------


@given(st.data())
def test_a_body_decodes_to_the_chunks_it_encodes_however_it_is_split(data: st.DataObject) -> None:
    chunks = data.draw(runs())
    body = encoded(chunks)
    assert decoded(data.draw(pieces(body))) == read_back(chunks, DATA_STREAM_ENDS)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_served_body_decodes_to_chunks_that_encode_it_again(
    scenarios_url: str, scenario: str
) -> None:
    body = httpx.get(f"{scenarios_url}/data-stream/{scenario}", timeout=30).content
    chunks = DataStreamDecoder().decode(body)
    assert chunks
    assert encoded(chunks) == body


def test_blank_lines_are_keep_alives_and_lines_end_as_assistant_stream_ends_them() -> None:
    body = b'\n0:"a"\r\n \t\n\r0:"b"\r0:"c"\n\n'
    assert decoded([body]) == [TextDeltaChunk("a"), TextDeltaChunk("b"), TextDeltaChunk("c")]


def test_a_byte_order_mark_is_dropped_as_a_client_drops_it() -> None:
    assert decoded([b'\xef\xbb\xbf0:"a"\n']) == [TextDeltaChunk("a")]
    with pytest.raises(DecodeError) as caught:
        decoded([b"\xef\xbb\xbfx:1\n"])
    assert caught.value.offset == 3


# -- what does not round-trip (docs/formats/data-stream.md) -----------------------


def test_is_final_is_not_kept_it_follows_from_the_arguments() -> None:
    begin = 'b:{"toolCallId":"c1","toolName":"f"}'
    marked = decoded([lines(begin, 'c:{"toolCallId":"c1","argsTextDelta":"{}","isFinal":true}')])
    plain = decoded([lines(begin, 'c:{"toolCallId":"c1","argsTextDelta":"{}"}')])
    assert marked == plain == [ToolCallBeginChunk("c1", "f"), ToolCallDeltaChunk("c1", "{}")]


def test_an_empty_argument_delta_is_an_empty_delta_chunk() -> None:
    # assistant-stream's encoders close a call's arguments with one.
    body = lines(
        'b:{"toolCallId":"c1","toolName":"f"}',
        'c:{"toolCallId":"c1","argsTextDelta":"{\\"a\\":1}"}',
        'c:{"toolCallId":"c1","argsTextDelta":"","isFinal":true}',
    )
    assert decoded([body])[1:] == [
        ToolCallDeltaChunk("c1", '{"a":1}'),
        ToolCallDeltaChunk("c1", ""),
    ]


def test_the_finish_line_is_no_chunk_and_the_encoder_writes_it_again() -> None:
    body = lines(
        'e:{"finishReason":"length","usage":{"inputTokens":3,"outputTokens":5},"isContinued":false}',
        'd:{"finishReason":"length","usage":{"inputTokens":3,"outputTokens":5}}',
    )
    chunks = decoded([body])
    assert chunks == [StepFinishChunk("length", 3, 5)]
    assert encoded(chunks) == body


def test_unnamed_data_from_a_sub_stream_comes_back_without_its_parent() -> None:
    body = encoded([DataChunk({"n": 1}, parent_id="p1")])
    assert decoded([body]) == [DataChunk({"n": 1})]


def test_a_finish_reason_no_chunk_knows_is_other() -> None:
    body = lines('e:{"finishReason":"paused","isContinued":true}')
    assert decoded([body]) == [StepFinishChunk("other", is_continued=True)]


# -- the AI SDK 4 data stream protocol, as documented ----------------------------

AI_SDK_4_BODY = lines(
    'f:{"messageId":"msg-1"}',
    'g:"I will look it up."',
    'i:{"data":"This reasoning has been redacted."}',
    'j:{"signature":"abc123"}',
    'b:{"toolCallId":"call-1","toolName":"search"}',
    'c:{"toolCallId":"call-1","argsTextDelta":"{\\"q\\":"}',
    'c:{"toolCallId":"call-1","argsTextDelta":"\\"trio\\"}"}',
    '9:{"toolCallId":"call-1","toolName":"search","args":{"q":"trio"}}',
    '9:{"toolCallId":"call-2","toolName":"clock","args":{"zone":"UTC"}}',
    'a:{"toolCallId":"call-1","result":["hit"]}',
    'a:{"toolCallId":"call-2","result":"noon"}',
    'h:{"sourceType":"url","id":"src-1","url":"https://example.org","title":"Example",'
    '"providerMetadata":{"p":{}}}',
    'k:{"mimeType":"image/png","data":"aGk="}',
    '2:[{"key":"object1"},{"anotherKey":"object2"}]',
    '8:[{"id":"message-123","other":"annotation"}]',
    '0:"Here it is."',
    'e:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":20},'
    '"isContinued":false}',
    'd:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":20}}',
)


def test_an_ai_sdk_4_body_decodes_to_what_its_lines_say() -> None:
    assert decoded([AI_SDK_4_BODY]) == [
        StepStartChunk("msg-1"),
        ReasoningDeltaChunk("I will look it up."),
        ToolCallBeginChunk("call-1", "search"),
        ToolCallDeltaChunk("call-1", '{"q":'),
        ToolCallDeltaChunk("call-1", '"trio"}'),
        ToolCallBeginChunk("call-2", "clock"),
        ToolCallDeltaChunk("call-2", '{"zone":"UTC"}'),
        ToolResultChunk("call-1", ["hit"]),
        ToolResultChunk("call-2", "noon"),
        SourceChunk("src-1", "https://example.org", title="Example"),
        FileChunk("aGk=", "image/png"),
        DataChunk({"key": "object1"}),
        DataChunk({"anotherKey": "object2"}),
        AnnotationsChunk(({"id": "message-123", "other": "annotation"},)),
        TextDeltaChunk("Here it is."),
        StepFinishChunk("stop", 10, 20),
    ]


def test_an_ai_sdk_4_body_gives_each_call_the_arguments_assistant_ui_gives_it() -> None:
    message = npm_decode("data-stream", body=AI_SDK_4_BODY)["message"]
    theirs = {
        part["toolCallId"]: part["argsText"]
        for part in message["parts"]
        if part["type"] == "tool-call"
    }
    ours: dict[str, str] = {}
    for chunk in decoded([AI_SDK_4_BODY]):
        if isinstance(chunk, ToolCallDeltaChunk):
            ours[chunk.tool_call_id] = ours.get(chunk.tool_call_id, "") + chunk.args_text_delta
    assert ours == theirs == {"call-1": '{"q":"trio"}', "call-2": '{"zone":"UTC"}'}


def test_a_whole_call_without_arguments_is_a_call_without_arguments() -> None:
    body = lines('9:{"toolCallId":"c1","toolName":"f"}', 'a:{"toolCallId":"c1","result":1}')
    assert decoded([body]) == [ToolCallBeginChunk("c1", "f"), ToolResultChunk("c1", 1)]


def test_a_data_line_without_values_is_no_chunk() -> None:
    assert decoded([lines("2:[]")]) == []


# -- assistant-stream 0.0.36 in Python -----------------------------------------------


def _ours(chunk: Any) -> Chunk:
    """An assistant-stream 0.0.36 chunk as the trio_stream chunk of the same meaning."""
    match chunk.type:
        case "text-delta":
            return TextDeltaChunk(chunk.text_delta, chunk.parent_id)
        case "reasoning-delta":
            return ReasoningDeltaChunk(chunk.reasoning_delta, chunk.parent_id)
        case "tool-call-begin":
            return ToolCallBeginChunk(chunk.tool_call_id, chunk.tool_name, chunk.parent_id)
        case "tool-call-delta":
            return ToolCallDeltaChunk(chunk.tool_call_id, chunk.args_text_delta)
        case "tool-result":
            return ToolResultChunk(
                chunk.tool_call_id, chunk.result, chunk.artifact, chunk.is_error
            )
        case "data":
            return DataChunk(chunk.data)
        case "error":
            return ErrorChunk(chunk.error)
        case "update-state":
            return UpdateStateChunk(tuple(chunk.operations))
        case "source":
            return SourceChunk(
                chunk.id, chunk.url, chunk.source_type, chunk.title, chunk.parent_id
            )
        case "file":
            return FileChunk(chunk.data, chunk.mime_type, chunk.parent_id)
        case "annotations":
            return AnnotationsChunk(tuple(chunk.annotations))
        case "step-start":
            return StepStartChunk(chunk.message_id)
        case "step-finish":
            return StepFinishChunk(
                chunk.finish_reason, chunk.input_tokens, chunk.output_tokens, chunk.is_continued
            )
    raise AssertionError(f"an assistant-stream chunk this test does not know: {chunk!r}")


async def _peer_body(callback: Any, *, state: Any = None) -> tuple[bytes, list[Any]]:
    """Serve a run with assistant-stream's own ``create_run`` and ``DataStreamResponse``.

    Returns the body it sent and the chunks the run produced, in the order
    its encoder took them. A run that raises still returns what was sent.
    """
    produced: list[Any] = []

    async def recorded() -> AsyncIterator[Any]:
        async for chunk in peer_create_run(callback, state=state):
            produced.append(chunk)
            yield chunk

    body = bytearray()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "method": "POST"}
    response = PeerDataStreamResponse(recorded(), heartbeat=0.005)
    with contextlib.suppress(RuntimeError):  # a run that fails, after its error line
        await response(scope, receive, send)
    return bytes(body), produced


async def _everything(controller: Any) -> None:
    controller.add_step_start("msg_1")
    controller.append_reasoning("Let me check. ")
    controller.append_text("Looking ")
    controller.state = {"notes": "", "count": 0}
    controller.state["notes"] += "first"
    controller.state["notes"] += ", second"
    tool = await controller.add_tool_call("weather", "call_weather")
    for piece in ('{"city": ', '"Par', 'is"}'):
        tool.append_args_text(piece)
        await asyncio.sleep(0)
    tool.set_response({"celsius": 21}, artifact={"station": 7})
    failing = await controller.add_tool_call("lookup", "call_lookup")
    failing.append_args_text("{}")
    failing.set_response("no such station", is_error=True)
    await asyncio.sleep(0.05)  # long enough for keep-alive lines
    nested = controller.with_parent_id("call_weather")
    nested.append_text("nested text")
    nested.append_reasoning("nested reasoning")
    nested.add_source("src_1", "https://example.org", "Example")
    inner = await nested.add_tool_call("fetch", "call_fetch")
    inner.append_args_text('{"url": "https://example.org"}')
    inner.set_response("page")
    controller.add_data({"progress": [1, 2]})
    controller.add_file("aGk=", "text/plain")
    controller.add_annotations([{"id": "a1"}, "note"])
    controller.add_source("src_2", "https://example.com")
    controller.add_error("a recoverable error")
    controller.state["count"] = 2
    controller.append_text("done.")
    controller.add_step_finish("stop", 12, 34)


async def _failing(controller: Any) -> None:
    controller.append_text("partial")
    await asyncio.sleep(0)
    raise RuntimeError("the model went away")


def _content_lines(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.strip()]


def test_an_assistant_stream_0_0_36_body_decodes_to_the_chunks_its_run_produced() -> None:
    body, produced = asyncio.run(_peer_body(_everything))
    assert b"\n\n" in body  # keep-alives
    assert b"append-text" in body
    assert not [line for line in _content_lines(body) if line.startswith(b"d:")]  # no end line
    expected = [_ours(chunk) for chunk in produced]
    assert DataStreamDecoder().decode(body) == expected
    assert decoded(body[i : i + 7] for i in range(0, len(body), 7)) == expected


def test_an_assistant_stream_0_0_36_run_that_fails_ends_with_its_error() -> None:
    body, produced = asyncio.run(_peer_body(_failing))
    assert _content_lines(body)[-1] == b'3:"the model went away"'
    expected = [TextDeltaChunk("partial"), ErrorChunk("the model went away")]
    assert [_ours(chunk) for chunk in produced] == expected
    assert DataStreamDecoder().decode(body) == expected


# -- the npm assistant-stream encoder, and the Python one after 0.0.36 --------------

NPM_RUN = """
import { createAssistantStream, DataStreamEncoder } from "assistant-stream";
const stream = createAssistantStream(async (c) => {
  c.enqueue({ type: "step-start", path: [], messageId: "m1" });
  c.appendText("Hello");
  c.appendReasoning("thinking", { unstable_summary: "plan" });
  const tool = c.addToolCallPart({ toolCallId: "call_1", toolName: "search" });
  tool.argsText.append('{"q":');
  tool.argsText.append('"trio"}');
  tool.argsText.close();
  await tool.setResponse({ result: { hits: 2 }, artifact: { raw: 1 } });
  const failed = c.addToolCallPart({ toolCallId: "call_2", toolName: "now" });
  await failed.setResponse({ result: "no clock", isError: true });
  c.addToolCallPart({ toolCallId: "call_3", toolName: "ask_user" }).close();
  const asking = c.addToolCallPart({ toolCallId: "call_4", toolName: "confirm" });
  asking.argsText.append('{"ok":');
  asking.close();
  c.appendSource({ type: "source", sourceType: "url", id: "s1", url: "https://example.org" });
  c.appendSource({
    type: "source", sourceType: "document", id: "d1", title: "Doc", mediaType: "application/pdf",
  });
  c.appendFile({ type: "file", data: "aGk=", mimeType: "text/plain" });
  c.appendData({ type: "data", name: "progress", data: { pages: 3 } });
  c.withParentId("p1").appendText("nested");
  c.enqueue({ type: "error", path: [], error: "careful", code: "E1", severity: "warning" });
  c.enqueue({
    type: "step-finish", path: [], finishReason: "tool-calls",
    usage: { inputTokens: 1, outputTokens: 2 }, isContinued: false,
  });
  c.enqueue({
    type: "message-finish", path: [], finishReason: "tool-calls",
    usage: { inputTokens: 1, outputTokens: 2 },
  });
});
const reader = stream.pipeThrough(new DataStreamEncoder()).getReader();
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  process.stdout.write(value);
}
"""


def test_a_body_of_the_npm_encoder_decodes_to_what_its_run_wrote() -> None:
    run = subprocess.run(
        ["node", "--input-type=module"],
        input=NPM_RUN.encode(),
        cwd=JS,
        capture_output=True,
        timeout=60,
        check=True,
    )
    body = run.stdout
    assert b"aui-reasoning-part-start:" in body
    assert b'"isFinal":true' in body
    assert decoded([body]) == [
        StepStartChunk("m1"),
        TextDeltaChunk("Hello"),
        ReasoningPartStartChunk("plan"),
        ReasoningDeltaChunk("thinking"),
        ToolCallBeginChunk("call_1", "search"),
        ToolCallDeltaChunk("call_1", '{"q":'),
        ToolCallDeltaChunk("call_1", '"trio"}'),
        ToolResultChunk("call_1", {"hits": 2}, {"raw": 1}),
        ToolCallBeginChunk("call_2", "now"),
        ToolResultChunk("call_2", "no clock", is_error=True),
        ToolCallBeginChunk("call_3", "ask_user"),
        ToolCallDeltaChunk("call_3", "{}"),  # closed without arguments: its default
        ToolCallDeltaChunk("call_3", ""),  # the isFinal line that closes them
        ToolCallBeginChunk("call_4", "confirm"),
        ToolCallDeltaChunk("call_4", '{"ok":'),
        ToolCallArgsTextFinishChunk("call_4"),  # ended before they were JSON
        SourceChunk("s1", "https://example.org"),  # the document source has no chunk
        FileChunk("aGk=", "text/plain"),
        DataChunk({"pages": 3}, "progress"),
        TextDeltaChunk("nested", "p1"),
        ErrorChunk("careful"),  # its code and severity have no chunk
        StepFinishChunk("tool-calls", 1, 2),
    ]


def test_lines_only_other_encoders_write_are_read() -> None:
    body = lines(
        'b:{"toolCallId":"c1","toolName":"f"}',
        'aui-tool-call-approval:{"toolCallId":"c1","approval":{"id":"ap1","approved":true}}',
        'a:{"toolCallId":"c1","result":"half","isPreliminary":true}',
        'a:{"toolCallId":"c1","result":"all","modelContent":[],"messages":[]}',
        'aui-reasoning-part-start:{"parentId":"p1"}',
        '3:{"error":"with a code","code":"E2"}',
        "3:42",
    )
    assert decoded([body]) == [
        ToolCallBeginChunk("c1", "f"),
        ToolResultChunk("c1", "all"),  # the preliminary result is no result
        ReasoningPartStartChunk(None, "p1"),
        ErrorChunk("with a code"),
        ErrorChunk("42"),
    ]


# -- broken bodies -------------------------------------------------------------------

BROKEN = [
    pytest.param(b'0:"ok"\n0:"\xff"\n', 10, "expected UTF-8 text", id="not-utf-8"),
    pytest.param(b'0:"ok"\nhello\n', 7, "found no ':'", id="no-colon"),
    pytest.param(
        b'0:"ok"\n0:"unterminated\n', 9, "expected a value after '0:' as JSON", id="json"
    ),
    pytest.param(b'0:"ok"\nz:1\n', 7, "unknown type code 'z'", id="unknown-code"),
    pytest.param(b"1:{}\n", 0, "unknown type code '1'", id="ai-sdk-3-code"),
    pytest.param(
        b'b:{"toolName":"f"}\n', 2, "'toolCallId' to be a string in a 'b:' line", id="b-no-id"
    ),
    pytest.param(b"0:42\n", 2, "expected a JSON string after '0:', got a number", id="text"),
    pytest.param(b'2:{"a":1}\n', 2, "expected a JSON array after '2:'", id="data"),
    pytest.param(
        b'e:{"finishReason":"stop","usage":{"inputTokens":-1}}\n',
        2,
        "'inputTokens' to be a token count",
        id="usage",
    ),
    pytest.param(
        b'aui-state:[{"type":"merge","path":[]}]\n', 10, "'set' or 'append-text'", id="state"
    ),
    pytest.param(b'h:{"sourceType":"web","id":"s"}\n', 2, "'url' or 'document'", id="source"),
    pytest.param(
        b'c:{"toolCallId":"nope","argsTextDelta":""}\n',
        2,
        "a tool call started by a 'b:' or '9:' line, not 'nope'",
        id="unknown-call",
    ),
    pytest.param(
        lines('b:{"toolCallId":"c","toolName":"f"}', 'b:{"toolCallId":"c","toolName":"f"}'),
        38,
        "tool call 'c' starts twice",
        id="started-twice",
    ),
    pytest.param(
        lines(
            'b:{"toolCallId":"c","toolName":"f"}',
            'a:{"toolCallId":"c","result":1}',
            'a:{"toolCallId":"c","result":2}',
        ),
        70,
        "tool call 'c' has its result already",
        id="answered-twice",
    ),
    pytest.param(b'0:"ok"\n0:"cut', 13, "ends inside a line", id="truncated"),
    pytest.param(b'0:"\xc3', 4, "ends inside a line", id="truncated-in-utf-8"),
]


def _failure(body_pieces: Iterable[bytes]) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decoded(body_pieces)
    return caught.value


@pytest.mark.parametrize(("body", "offset", "problem"), BROKEN)
def test_a_broken_body_is_a_decode_error_at_the_byte_where_it_breaks(
    body: bytes, offset: int, problem: str
) -> None:
    whole = _failure([body])
    assert (whole.offset, problem in whole.problem) == (offset, True), whole
    bytewise = _failure(body[i : i + 1] for i in range(len(body)))
    assert (bytewise.offset, bytewise.problem) == (whole.offset, whole.problem)


def test_a_body_cut_between_lines_is_complete_as_the_format_has_no_end() -> None:
    body = encoded([TextDeltaChunk("Hello"), ToolCallBeginChunk("c1", "f")])
    cut = body[: body.index(b"b:")]
    assert decoded([cut]) == [TextDeltaChunk("Hello")]


# -- size ----------------------------------------------------------------------------


@pytest.mark.parametrize("piece_size", [64 * 1024, None], ids=["64-KiB-pieces", "one-piece"])
def test_a_10_mb_text_delta_decodes_whole(piece_size: int | None) -> None:
    text = "ab\u20ac\n" * 2_000_000  # 12 MB of JSON, with 3-byte characters to cut through
    body = encoded([TextDeltaChunk(text)])
    size = piece_size or len(body)
    assert decoded(body[i : i + size] for i in range(0, len(body), size)) == [TextDeltaChunk(text)]


# -- merged: runs of delta lines read at once ----------------------------------------


def merged(body_pieces: Iterable[bytes]) -> list[Chunk]:
    decoder = DataStreamDecoder()
    chunks: list[Chunk] = []
    for piece in body_pieces:
        chunks += decoder.feed_merged(piece)
    return chunks + decoder.close()


def test_runs_of_delta_lines_come_as_one_delta_per_part() -> None:
    body = lines(
        '0:"Hel"',
        '0:"lo"',
        'aui-text-delta:{"textDelta":"in ","parentId":"p1"}',
        'aui-text-delta:{"textDelta":"p1","parentId":"p1"}',
        'aui-text-delta:{"textDelta":"in p2","parentId":"p2"}',
        'g:"thin"',
        'g:"king"',
        'aui-reasoning-delta:{"reasoningDelta":"dee","parentId":"p1"}',
        'aui-reasoning-delta:{"reasoningDelta":"per","parentId":"p1"}',
        '0:"!"',
    )
    assert merged([body]) == [
        TextDeltaChunk("Hello"),
        TextDeltaChunk("in p1", "p1"),
        TextDeltaChunk("in p2", "p2"),
        ReasoningDeltaChunk("thinking"),
        ReasoningDeltaChunk("deeper", "p1"),
        TextDeltaChunk("!"),
    ]


OTHER_PRODUCERS = [
    pytest.param(lines('0:"a"', "", '0:"b"', "  ", '0:"c"'), id="keep-alives-between"),
    pytest.param(b'0:"a"\r\n0:"b"\r\n0:"c"\r', id="crlf"),
    pytest.param("\ufeff".encode() + lines('0:"a"', '0:"b"'), id="byte-order-mark"),
    pytest.param(lines('0: "a" ', '0:"b"', '0:\t"c"'), id="spaces"),
    pytest.param(lines('0:"\\ud83d\\ude00"', '0:"\\u00e9\\n\\""', '0:"\u20ac"'), id="escapes"),
    pytest.param(
        lines(
            'aui-text-delta:{"parentId":"p","textDelta":"a"}',
            'aui-text-delta:{"textDelta":"b","parentId":"p","extra":[1,{"x":"}"}]}',
            'aui-text-delta: {"textDelta":"c","parentId":"p"}',
            'aui-text-delta:{"textDelta":"d","parentId":"p"} ',
            'aui-text-delta:{"textDelta":"e","textDelta":"f","parentId":"p"}',
        ),
        id="nested-other-shapes",
    ),
    pytest.param(
        lines(
            'b:{"toolCallId":"c1","toolName":"f"}',
            'c:{"toolCallId":"c1","argsTextDelta":"{\\"q\\":"}',
            'c:{"toolCallId":"c1","argsTextDelta":" 1}"}',
            'c:{"toolCallId":"c1","argsTextDelta":" "}',
            '0:"between"',
            'g:"reason"',
            '0:"again"',
        ),
        id="argument-lines",
    ),
]


@pytest.mark.parametrize("body", OTHER_PRODUCERS)
def test_any_line_is_read_merged_as_it_is_read_alone(body: bytes) -> None:
    assert merged([body]) == merged_deltas(decoded([body]))
    assert merged(body[i : i + 1] for i in range(len(body))) == decoded([body])


@given(st.data())
def test_a_body_decodes_merged_to_its_chunks_merged_piece_by_piece(data: st.DataObject) -> None:
    body = encoded(data.draw(runs(max_chunks=40)))
    plain, merging = DataStreamDecoder(), DataStreamDecoder()
    for piece in data.draw(pieces(body)):
        assert merging.feed_merged(piece) == merged_deltas(plain.feed(piece))


MALFORMED_RUNS = [
    # Lines that a run's one array could read as well-formed values, were
    # its line breaks not kept: each must fail alone, as it does line by line.
    pytest.param(lines('0:"a"', '0:"b","c"', '0:"d"'), 8, id="two-strings-on-a-line"),
    pytest.param(lines('0:"a', '0:b"', '0:"c"'), 2, id="a-string-across-lines"),
    pytest.param(lines('0:"a"', "0:", '0:"c"'), 8, id="an-empty-value"),
    pytest.param(
        lines(
            'aui-text-delta:{"textDelta":"a"',
            'aui-text-delta:"parentId":"p"}',
            'aui-text-delta:{"textDelta":"b","parentId":"p"},{"textDelta":"c","parentId":"p"}',
        ),
        15,
        id="an-object-across-lines",
    ),
    pytest.param(
        lines('aui-text-delta:{"textDelta":"a","parentId":null}'), 15, id="a-null-parent"
    ),
    pytest.param(b'0:"a"\n0:"\xff"\n0:"b"\n', 9, id="not-utf-8"),
    pytest.param(b'0:"\xc3"\n0:"\xa9"\n', 3, id="utf-8-cut-between-lines"),
    pytest.param(b'0:"a"\n0:"\x01"\n', 8, id="a-control-character"),
    pytest.param(b'0:"a"\n0:"\n0:"b"\n', 8, id="a-lone-quote"),
    pytest.param(b'0:"\n', 2, id="a-line-of-one-quote"),
    pytest.param(lines('0:"a"', '0:"b" "c"'), 8, id="two-strings-side-by-side"),
    pytest.param(lines('0:"a"', '0:"\\ud83d"', '0:"\\ude00"'), 8, id="lone-surrogates"),
]


@pytest.mark.parametrize(("body", "offset"), MALFORMED_RUNS)
def test_a_malformed_line_in_a_run_is_the_error_it_is_alone(body: bytes, offset: int) -> None:
    alone = _failure([body])
    with pytest.raises(DecodeError) as caught:
        merged([body])
    assert (caught.value.offset, caught.value.problem) == (alone.offset, alone.problem)
    assert alone.offset == offset


@pytest.mark.parametrize(("body", "offset", "problem"), BROKEN)
def test_a_broken_body_read_merged_breaks_where_it_breaks(
    body: bytes, offset: int, problem: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        merged([body])
    assert (caught.value.offset, problem in caught.value.problem) == (offset, True)
