"""AssistantTransportDecoder: assistant transport bodies back into chunks.

Bodies of this package's encoder come back as the chunks they were made
from, except what the format cannot carry (``what_comes_back``, as the
docs page lists it). Bodies of the other producers (assistant-stream on
PyPI, released and as its main branch writes them, and on npm) decode to
the chunks they were made from too. Malformed and truncated bodies are
refused at the byte where they go wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import msgspec
import pytest
from assistant_stream import create_run as peer_create_run  # type: ignore[import-untyped]
from assistant_stream.serialization import (  # type: ignore[import-untyped]
    AssistantTransportEncoder as PeerEncoder,
)
from assistant_stream.serialization import (
    AssistantTransportResponse as PeerResponse,
)
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import DecodeError, RunController, create_run
from trio_stream.chunks import (
    CHUNK_TYPES,
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.serialization.assistant_transport import (
    AssistantTransportDecoder,
    AssistantTransportEncoder,
)

from ..clients import JS
from ..scenarios import SCENARIOS
from .runs import ArgumentEnds, pieces, read_back, runs

DONE = b"data: [DONE]\n\n"


def encoded(chunks: list[Chunk]) -> bytes:
    encoder = AssistantTransportEncoder()
    return encoder.start() + encoder.encode(chunks) + encoder.finish()


def decoded(body: bytes, split: list[bytes] | None = None) -> list[Chunk]:
    """The chunks of ``body``, fed in the pieces ``split`` (all at once without)."""
    decoder = AssistantTransportDecoder()
    chunks: list[Chunk] = []
    for piece in [body] if split is None else split:
        chunks += decoder.feed(piece)
    return chunks + decoder.close()


def body_of(*events: Any) -> bytes:
    """A body of ``events``, JSON values, ended with ``[DONE]``."""
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + DONE


def what_comes_back(chunks: list[Chunk]) -> list[Chunk]:
    """``chunks`` as a decoder reads them from their body, as the docs page says.

    A tool call's arguments end before its result, or at the end of the body
    if it has none, unless the run ended them: ``{}`` is sent for empty ones,
    and an end of arguments that are not JSON comes back as a finish. Data
    without a name loses its parent id.
    """
    back: list[Chunk] = []
    for chunk in read_back(chunks, ArgumentEnds(braces=True, at_results=True, at_end=True)):
        if isinstance(chunk, DataChunk) and chunk.name is None and chunk.parent_id is not None:
            chunk = DataChunk(chunk.data)
        back.append(chunk)
    return back


# -- round trip -----------------------------------------------------------------


def rewritten(body: bytes, line_break: bytes, keepalives: bool) -> bytes:
    """``body`` as another SSE producer could write it.

    JSON text holds no raw line break, so every ``\\n`` of the body is a
    line break of the framing, and every ``\\n\\n`` ends an event.
    """
    if keepalives:
        body = b": heartbeat\n\n" + body.replace(b"\n\n", b"\n\n: heartbeat\n\n")
    return body.replace(b"\n", line_break)


@given(st.data())
def test_every_run_comes_back_from_its_body_however_the_body_is_cut(data: st.DataObject) -> None:
    chunks = data.draw(runs())
    body = rewritten(
        encoded(chunks),
        data.draw(st.sampled_from([b"\n", b"\r\n", b"\r"])),
        data.draw(st.booleans()),
    )
    assert decoded(body, data.draw(pieces(body))) == what_comes_back(chunks)


@given(st.data())
def test_a_body_cut_short_anywhere_is_refused_where_it_ends(data: st.DataObject) -> None:
    body = encoded(data.draw(runs()))
    cut = data.draw(st.integers(0, len(body) - 1))
    decoder = AssistantTransportDecoder()
    decoder.feed(body[:cut])
    with pytest.raises(DecodeError) as refused:
        decoder.close()
    # At the cut, or where the character the cut splits starts.
    assert 0 <= cut - refused.value.offset < 4


def test_what_the_format_cannot_carry_comes_back_as_the_docs_say() -> None:
    chunks: list[Chunk] = [
        ToolCallBeginChunk("answered", "f"),
        ToolResultChunk("answered", "ok"),
        ToolCallBeginChunk("empty-pieces", "g"),
        ToolCallDeltaChunk("empty-pieces", ""),
        DataChunk({"n": 1}, parent_id="p1"),
        ToolCallBeginChunk("unanswered", "h"),
        TextDeltaChunk("the end"),
    ]
    assert decoded(encoded(chunks)) == [
        ToolCallBeginChunk("answered", "f"),
        ToolCallDeltaChunk("answered", "{}"),
        ToolResultChunk("answered", "ok"),
        ToolCallBeginChunk("empty-pieces", "g"),
        ToolCallDeltaChunk("empty-pieces", ""),
        DataChunk({"n": 1}),
        ToolCallBeginChunk("unanswered", "h"),
        TextDeltaChunk("the end"),
        ToolCallDeltaChunk("empty-pieces", "{}"),
        ToolCallDeltaChunk("unanswered", "{}"),
    ]


def test_the_example_of_the_docs_decodes_to_its_chunks() -> None:
    body = b"".join(
        line.encode() + b"\n\n"
        for line in [
            'data: {"type":"part-start","part":{"type":"text"},"path":[]}',
            'data: {"type":"text-delta","textDelta":"Hello","path":[0]}',
            'data: {"type":"part-finish","path":[0]}',
            'data: {"type":"part-start","part":{"type":"tool-call","toolCallId":"call_1",'
            '"toolName":"search"},"path":[]}',
            'data: {"type":"text-delta","textDelta":"{\\"q\\":\\"trio\\"}","path":[1]}',
            'data: {"type":"tool-call-args-text-finish","path":[1]}',
            'data: {"type":"result","path":[1],"result":["result"],"isError":false}',
            'data: {"type":"part-finish","path":[1]}',
            'data: {"type":"message-finish","finishReason":"stop",'
            '"usage":{"inputTokens":0,"outputTokens":0}}',
            "data: [DONE]",
        ]
    )
    assert decoded(body) == [
        TextDeltaChunk("Hello"),
        ToolCallBeginChunk("call_1", "search"),
        ToolCallDeltaChunk("call_1", '{"q":"trio"}'),
        ToolResultChunk("call_1", ["result"]),
    ]


# -- what only other producers send ------------------------------------------------

TOOL_PART = {
    "type": "part-start",
    "part": {"type": "tool-call", "toolCallId": "c", "toolName": "f"},
}


def test_preliminary_results_and_approvals_give_no_chunk_and_the_final_result_does() -> None:
    body = body_of(
        TOOL_PART,
        {"type": "result", "path": [0], "result": "half", "isPreliminary": True},
        {"type": "tool-call-approval", "path": [0], "approval": {"id": "a", "approved": True}},
        {"type": "result", "path": [0], "result": "done", "artifact": [1], "isError": True},
    )
    assert decoded(body) == [ToolCallBeginChunk("c", "f"), ToolResultChunk("c", "done", [1], True)]


def test_argument_text_after_the_result_is_dropped_and_a_second_result_passed_on() -> None:
    # Both assistant-stream packages send the "{}" of a call without
    # arguments after its result; a run has no place for it.
    body = body_of(
        TOOL_PART,
        {"type": "result", "path": [0], "result": 1, "isError": False},
        {"type": "text-delta", "path": [0], "textDelta": "{}"},
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
        {"type": "result", "path": [0], "result": 2},
    )
    assert decoded(body) == [
        ToolCallBeginChunk("c", "f"),
        ToolResultChunk("c", 1),
        ToolResultChunk("c", 2),
    ]


def test_parts_no_chunk_can_say_are_skipped_but_keep_their_index() -> None:
    document = {
        "type": "source",
        "sourceType": "document",
        "id": "d",
        "title": "A report",
        "mediaType": "application/pdf",
    }
    body = body_of(
        {"type": "part-start", "part": document, "path": []},
        {"type": "part-start", "part": {"type": "image", "image": "..."}},
        {"type": "text-delta", "path": [1], "textDelta": "into the unknown part"},
        {"type": "result", "path": [1], "result": "and its result"},
        {"type": "part-start", "part": {"type": "reasoning", "parentId": "call_9"}},
        {"type": "text-delta", "path": [2], "textDelta": "hm"},
    )
    assert decoded(body) == [ReasoningDeltaChunk("hm", "call_9")]


def test_whole_parts_give_their_chunks_with_their_parent_ids() -> None:
    source = {"type": "source", "sourceType": "url", "id": "s", "url": "https://e.org"}
    body = body_of(
        {"type": "part-start", "part": {**source, "title": None, "parentId": None}},
        {"type": "part-start", "part": {"type": "file", "data": "aGk=", "mimeType": "a/b"}},
        {
            "type": "part-start",
            "part": {"type": "data", "name": "n", "data": [1], "parentId": "p"},
        },
        {"type": "part-start", "part": {"type": "data", "name": "without data"}},
    )
    assert decoded(body) == [
        SourceChunk("s", "https://e.org"),
        FileChunk("aGk=", "a/b"),
        DataChunk([1], "n", "p"),
        DataChunk(None, "without data"),
    ]


def test_message_events_give_their_chunks_whatever_their_path() -> None:
    body = body_of(
        {"type": "step-start", "messageId": "m", "path": []},
        {"type": "data", "data": [1, {"two": 2}], "path": [4]},
        {"type": "data", "data": []},
        {"type": "annotations", "annotations": []},
        {"type": "update-state", "operations": [{"type": "set", "path": ["list", 0], "value": 1}]},
        {"type": "error", "error": "slow", "code": "delay", "severity": "warning"},
        {"type": "step-finish", "finishReason": "tool-calls"},
        {"type": "step-finish", "finishReason": "a new reason", "usage": {"inputTokens": 3}},
        {"type": "message-finish", "finishReason": "stop", "usage": {}},
    )
    assert decoded(body) == [
        StepStartChunk("m"),
        DataChunk(1),
        DataChunk({"two": 2}),
        AnnotationsChunk(()),
        UpdateStateChunk(({"type": "set", "path": ["list", "0"], "value": 1},)),
        ErrorChunk("slow"),
        StepFinishChunk("tool-calls"),
        StepFinishChunk("other", input_tokens=3),
    ]


def test_events_of_unknown_types_and_a_result_for_the_message_are_skipped() -> None:
    body = body_of(
        {"type": "a-future-event", "path": [7], "anything": None},
        {"type": "result", "path": [], "result": "no call had this id", "isError": False},
        {"type": "part-start", "part": {"type": "text"}},
        {"type": "text-delta", "path": [0], "textDelta": "kept"},
    )
    assert decoded(body) == [TextDeltaChunk("kept")]


def test_sse_as_any_producer_writes_it() -> None:
    body = (
        "\ufeff: a comment\r\n\r\n"
        "event: message\nid: 1\nretry: 10\n"
        'data: {"type":"part-start",\ndata: "part":{"type":"text"}}\n\n'
        'data:{"type":"text-delta","path":[0],"textDelta":"ünï 🌍"}\r\r'
        "data: [DONE]\n\n"
        'data: {"type": "error", "error": "after the end: not read"}\n\n'
    ).encode()
    assert decoded(body) == [TextDeltaChunk("ünï 🌍")]


# -- malformed bodies ------------------------------------------------------------

TEXT_PART = b'data: {"type":"part-start","part":{"type":"text"},"path":[]}\n\n'


def refusal(body: bytes) -> DecodeError:
    """The error decoding ``body`` raises."""
    with pytest.raises(DecodeError) as refused:
        decoded(body)
    return refused.value


@pytest.mark.parametrize(
    ("bad_event", "problem"),
    [
        (b'data: {"type":"text-delta" oops}', "expected an event as JSON"),
        (b"data: [1, 2]", "expected an event as an object, got an array"),
        (b'data: {"path": [0]}', "expected type as a string, got nothing"),
        (b'data: {"type":"text-delta","textDelta":"x","path":[1]}', "part started before it"),
        (b'data: {"type":"text-delta","textDelta":"x","path":[0, 0]}', "nested parts"),
        (b'data: {"type":"text-delta","textDelta":"x"}', "expected path"),
        (b'data: {"type":"text-delta","textDelta":"x","path":[-1]}', "array of indices"),
        (b'data: {"type":"text-delta","textDelta":7,"path":[0]}', "textDelta as a string"),
        (
            b'data: {"type":"result","result":1,"path":[0]}',
            "of a tool-call part, got that of a text",
        ),
        (b'data: {"type":"result","isError":"yes","path":[0]}', "isError as a boolean"),
        (b'data: {"type":"part-start","part":{"type":"text"},"path":[0]}', "nested parts"),
        (b'data: {"type":"part-start","part":{"type":"tool-call"}}', "expected toolCallId"),
        (b'data: {"type":"part-start","part":{"type":"text","parentId":1}}', "parentId"),
        (b'data: {"type":"error"}', "expected error as a string, got nothing"),
        (b'data: {"type":"data","data":{"not":"a list"}}', "expected data as an array"),
        (b'data: {"type":"update-state","operations":[{"type":"delete","path":[]}]}', "set or"),
        (
            b'data: {"type":"step-finish","finishReason":"stop","usage":{"inputTokens":-1}}',
            "count",
        ),
        (b'event: delta\ndata: {"type":"error","error":"x"}', "without a name, not 'delta'"),
    ],
)
def test_a_malformed_event_is_refused_at_its_start(bad_event: bytes, problem: str) -> None:
    body = TEXT_PART + b": keep-alive\n\n" + bad_event + b"\n\n" + DONE
    error = refusal(body)
    assert error.offset == len(TEXT_PART) + len(b": keep-alive\n\n")
    assert problem in error.problem


def test_a_source_does_not_take_text() -> None:
    source = (
        b'data: {"type":"part-start",'
        b'"part":{"type":"source","sourceType":"url","id":"s","url":"u"}}\n\n'
    )
    delta = b'data: {"type":"text-delta","textDelta":"x","path":[0]}\n\n'
    error = refusal(source + delta + DONE)
    assert (error.offset, error.problem) == (
        len(source),
        "a text-delta event: expected the path of a part that takes text, "
        "got that of a source part",
    )


def test_bytes_that_are_not_utf8_are_refused_where_they_are() -> None:
    body = TEXT_PART + b'data: {"type":"text-delta","textDelta":"caf\xe9","path":[0]}\n\n' + DONE
    error = refusal(body)
    assert error.offset == body.index(b"\xe9")
    assert "expected UTF-8" in error.problem


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (TEXT_PART, "expected data: [DONE]"),
        (b"", "expected data: [DONE]"),
        (TEXT_PART + b"data: [DONE]\n", "ends inside an event"),
        (TEXT_PART + b'data: {"type":"text-delta"', "ends inside a line"),
    ],
)
def test_a_truncated_body_is_refused_at_its_end(body: bytes, problem: str) -> None:
    decoder = AssistantTransportDecoder()
    assert decoder.feed(body) == []
    with pytest.raises(DecodeError) as refused:
        decoder.close()
    assert refused.value.offset == len(body)
    assert problem in refused.value.problem


# -- size ------------------------------------------------------------------------


def test_a_10_mb_text_delta_decodes_in_64_kib_pieces_and_in_one() -> None:
    text = 'αβγ 🌍 quote" back\\slash\n' * 350_000  # over 10 MB of UTF-8
    body = encoded([TextDeltaChunk(text)])
    assert len(body) > 10_000_000
    step = 64 * 1024
    in_pieces = [body[i : i + step] for i in range(0, len(body), step)]
    assert decoded(body, in_pieces) == [TextDeltaChunk(text)]
    assert decoded(body) == [TextDeltaChunk(text)]


# -- other producers ---------------------------------------------------------------

_OURS = {chunk_type.type: chunk_type for chunk_type in CHUNK_TYPES}


def from_peer(chunk: Any) -> Chunk:
    """An assistant-stream (PyPI) chunk as this package's chunk of the same type."""
    fields = dataclasses.asdict(chunk)
    kind = fields.pop("type")
    for sequence in ("operations", "annotations"):
        if sequence in fields:
            fields[sequence] = tuple(fields[sequence])
    return _OURS[kind](**fields)


async def peer_run(controller: Any) -> None:
    """Everything assistant-stream 0.0.36's controller can send, a call without arguments too."""
    controller.state["status"] = "running"
    controller.append_state_text(["log"], "started")
    controller.add_step_start("msg_1")
    controller.append_reasoning("Let me look.")
    controller.append_text("Looking ")
    weather = await controller.add_tool_call("weather", "call_1")
    weather.append_args_text('{"city": ')
    weather.append_args_text('"Lisbon"}')
    controller.append_text("it up.")
    weather.set_response({"celsius": 21}, artifact={"station": "LIS"})
    failing = await controller.add_tool_call("station", "call_2")
    failing.set_response("no such station", is_error=True)
    controller.with_parent_id("call_1").append_text("nested")
    controller.add_source("s1", "https://example.org", "Example")
    controller.add_file("aGVsbG8=", "text/plain")
    controller.add_data({"progress": 1})
    controller.add_annotations([{"note": "checked"}])
    controller.add_error("the forecast is late")
    controller.add_step_finish("stop", 12, 34)


def test_assistant_stream_0_0_36_response_decodes_to_the_chunks_of_its_run() -> None:
    sent: list[Any] = []

    async def recorded() -> AsyncIterator[Any]:
        async for chunk in peer_create_run(peer_run, state={"log": ""}):
            sent.append(chunk)
            yield chunk

    async def endpoint(_: Request) -> Response:
        response: Response = PeerResponse(recorded())
        return response

    async def fetch() -> bytes:
        transport = httpx.ASGITransport(app=Starlette(routes=[Route("/", endpoint)]))
        async with httpx.AsyncClient(transport=transport, base_url="http://peer") as client:
            return (await client.get("/")).content

    body = asyncio.run(fetch())
    assert b'"textDelta": "{}"' in body  # its "{}" for call_2, after the result
    assert decoded(body) == [from_peer(chunk) for chunk in sent]


def test_assistant_stream_0_0_36_body_of_a_failed_run_ends_without_done() -> None:
    async def failing(controller: Any) -> None:
        controller.append_text("Before the error")
        raise RuntimeError("the model is down")

    async def written() -> bytes:
        lines: list[str] = []
        with pytest.raises(RuntimeError):
            async for line in PeerEncoder().encode_stream(peer_create_run(failing)):
                lines.append(line)
        return "".join(lines).encode()

    body = asyncio.run(written())
    decoder = AssistantTransportDecoder()
    assert decoder.feed(body) == [
        TextDeltaChunk("Before the error"),
        ErrorChunk("the model is down"),
    ]
    with pytest.raises(DecodeError, match="expected data: \\[DONE\\]"):
        decoder.close()


def test_the_body_assistant_stream_main_writes_for_the_npm_interop_test() -> None:
    fixture = (
        JS / "node_modules/assistant-stream/src/core/serialization"
        "/assistant-transport/__fixtures__/python-encoder.sse"
    )
    assert decoded(fixture.read_bytes(), None) == [
        StepStartChunk("msg_1"),
        ReasoningDeltaChunk("Let me check the weather."),
        TextDeltaChunk("Checking"),
        TextDeltaChunk(" now."),
        ToolCallBeginChunk("call_1", "get_weather"),
        ToolCallDeltaChunk("call_1", '{"city": '),
        ToolCallDeltaChunk("call_1", '"NYC"}'),
        UpdateStateChunk(({"type": "set", "path": ["status"], "value": "running"},)),
        ToolResultChunk("call_1", {"temp": 70}),  # after the preliminary one, skipped
        DataChunk({"progress": 1}),
        AnnotationsChunk(({"type": "citation", "id": "a1"},)),
        SourceChunk("s1", "https://example.com", title="Example"),
        TextDeltaChunk("It is sunny."),
        FileChunk("aGVsbG8=", "image/png"),
        StepFinishChunk("stop", 12, 34),
        ErrorChunk("Forecast delayed"),
    ]


def test_shapes_of_assistant_stream_main_a_result_after_its_part_finished() -> None:
    # As assistant-stream's main branch writes them (its tests): message
    # events with "path": [], and a call whose arguments finish the part
    # before a human answers it.
    body = body_of(
        {
            "type": "update-state",
            "operations": [{"type": "set", "path": [], "value": 1}],
            "path": [],
        },
        {
            "type": "part-start",
            "part": {"type": "tool-call", "toolCallId": "t1", "toolName": "ask"},
            "path": [],
        },
        {"type": "text-delta", "textDelta": '{"q": "ok?"}', "path": [0]},
        {"type": "tool-call-args-text-finish", "path": [0]},
        {"type": "part-finish", "path": [0]},
        {"type": "data", "data": [{"x": 1}], "path": []},
        {"type": "result", "result": "yes", "isError": False, "path": [0]},
    )
    assert decoded(body) == [
        UpdateStateChunk(({"type": "set", "path": [], "value": 1},)),
        ToolCallBeginChunk("t1", "ask"),
        ToolCallDeltaChunk("t1", '{"q": "ok?"}'),
        DataChunk({"x": 1}),
        ToolResultChunk("t1", "yes"),
    ]


NPM_PRODUCER = """
import {
  createAssistantStream, AssistantStream, AssistantTransportEncoder,
} from "assistant-stream";

const stream = createAssistantStream(async (c) => {
  c.enqueue({ type: "step-start", path: [], messageId: "m1" });
  c.appendReasoning("think");
  c.appendText("Hello");
  const streamed = c.addToolCallPart({ toolName: "get", toolCallId: "c1" });
  streamed.argsText.append('{"a":');
  streamed.argsText.append("1}");
  streamed.argsText.close();
  await streamed.setResponse({ result: { ok: 1 }, artifact: { x: 2 } });
  const whole = c.addToolCallPart({ toolName: "whole", toolCallId: "c2", args: { b: 2 } });
  whole.setResponse({ result: "so far", isPreliminary: true });
  whole.setApproval({ id: "ap1", approved: true });
  await whole.setResponse({ result: "bad", isError: true });
  const bare = c.addToolCallPart({ toolName: "bare", toolCallId: "c3" });
  await bare.setResponse({ result: null });
  c.withParentId("c1").appendText("nested");
  c.appendSource({ type: "source", sourceType: "url", id: "s1", url: "https://e.org",
                   title: "E" });
  c.appendSource({ type: "source", sourceType: "document", id: "d1", title: "D",
                   mediaType: "a/b" });
  c.appendFile({ type: "file", data: "aGk=", mimeType: "text/plain" });
  c.appendData({ type: "data", name: "progress", data: { p: 1 } });
  c.enqueue({ type: "data", path: [], data: [1, 2] });
  c.enqueue({ type: "annotations", path: [], annotations: [{ a: 1 }] });
  c.enqueue({ type: "update-state", path: [],
              operations: [{ type: "set", path: ["s"], value: 1 }] });
  c.enqueue({ type: "step-finish", path: [], finishReason: "stop",
              usage: { inputTokens: 1, outputTokens: 2 }, isContinued: false });
  c.addToolCallPart({ toolName: "cut", toolCallId: "c4" });
  throw new Error("boom");
});
const reader = AssistantStream.toByteStream(stream, new AssistantTransportEncoder()).getReader();
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  process.stdout.write(value);
}
"""


def test_the_npm_assistant_stream_producer_body_decodes_to_what_it_was_told() -> None:
    written = subprocess.run(
        ["node", "--input-type=module", "-e", NPM_PRODUCER],
        cwd=JS,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert decoded(written.stdout) == [
        StepStartChunk("m1"),
        ReasoningDeltaChunk("think"),
        TextDeltaChunk("Hello"),
        ToolCallBeginChunk("c1", "get"),
        ToolCallDeltaChunk("c1", '{"a":'),
        ToolCallDeltaChunk("c1", "1}"),
        ToolResultChunk("c1", {"ok": 1}, {"x": 2}),
        ToolCallBeginChunk("c2", "whole"),
        ToolCallDeltaChunk("c2", '{"b":2}'),
        ToolResultChunk("c2", "bad", is_error=True),
        ToolCallBeginChunk("c3", "bare"),
        ToolResultChunk("c3", None),  # and its "{}" after it, dropped
        TextDeltaChunk("nested", "c1"),
        SourceChunk("s1", "https://e.org", title="E"),
        FileChunk("aGk=", "text/plain"),
        DataChunk({"p": 1}, "progress"),
        DataChunk(1),
        DataChunk(2),
        AnnotationsChunk(({"a": 1},)),
        UpdateStateChunk(({"type": "set", "path": ["s"], "value": 1},)),
        StepFinishChunk("stop", 1, 2),
        ToolCallBeginChunk("c4", "cut"),
        ErrorChunk("Error: boom"),
    ]


# -- this package's responses, over HTTP --------------------------------------------


def lanes(chunks: list[Chunk]) -> dict[tuple[str, str | None], list[Chunk]]:
    """Chunks by who wrote them: the run's order within each, not between them.

    Tool calls and sub-streams run concurrently, so timing decides how their
    chunks interleave with the run's; within one producer, order is fixed.
    Generated tool call ids differ from run to run: each becomes its parent,
    tool name and rank.
    """
    by_lane: dict[tuple[str, str | None], list[Chunk]] = {}
    for chunk in with_call_names(chunks):
        match chunk:
            case ToolCallDeltaChunk() | ToolResultChunk():
                lane: tuple[str, str | None] = ("tool call", chunk.tool_call_id)
            case (
                TextDeltaChunk()
                | ReasoningDeltaChunk()
                | ToolCallBeginChunk()
                | SourceChunk()
                | FileChunk()
                | DataChunk()
            ):
                lane = ("producer", chunk.parent_id)
            case _:
                lane = ("message", None)
        by_lane.setdefault(lane, []).append(chunk)
    return by_lane


async def chunks_of(callback: Callable[[RunController], Coroutine[Any, Any, None]]) -> list[Chunk]:
    """The chunks of a run, also of one that fails (its error chunk among them)."""
    chunks: list[Chunk] = []
    with contextlib.suppress(RuntimeError):  # the failing scenario's
        async with create_run(callback) as run:
            chunks += [chunk async for chunk in run]
    return chunks


def with_call_names(chunks: list[Chunk]) -> list[Chunk]:
    names: dict[str, str] = {}
    for chunk in chunks:
        if isinstance(chunk, ToolCallBeginChunk):
            name = f"{chunk.parent_id}/{chunk.tool_name}"
            rank = sum(other.startswith(name + "#") for other in names.values())
            names[chunk.tool_call_id] = f"{name}#{rank}"
    renamed: list[Chunk] = []
    for chunk in chunks:
        for field in ("tool_call_id", "parent_id"):
            value = getattr(chunk, field, None)
            if value in names:
                chunk = msgspec.structs.replace(chunk, **{field: names[value]})
        renamed.append(chunk)
    return renamed


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_a_served_response_decodes_to_the_chunks_of_its_run(
    scenarios_url: str, scenario: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{scenarios_url}/assistant-transport/{scenario}")
    decoder = AssistantTransportDecoder()
    assert response.headers["content-type"].startswith(decoder.media_type)
    split = [response.content[i : i + 1000] for i in range(0, len(response.content), 1000)]
    assert lanes(decoded(response.content, split)) == lanes(
        what_comes_back(await chunks_of(SCENARIOS[scenario]))
    )
