"""OpenAIStreamDecoder: OpenAI chat completion chunks read back into chunks.

``carried`` is the specification of the round trip: the part of a run that
the format carries, which ``decode(encode(run))`` gives back exactly, however
the body is split. Then what other producers write: OpenAI's own chunk
types serialized as the ``openai`` client's models do, and the variations of
the servers that imitate it. Then malformed and truncated bodies, each
refused at the byte where the problem shows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat.chat_completion_chunk import (
    ChatCompletionChunk,
    Choice,
    ChoiceDelta,
    ChoiceDeltaFunctionCall,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.completion_usage import CompletionUsage

from trio_stream import DecodeError, create_run
from trio_stream.chunks import (
    Chunk,
    ErrorChunk,
    FinishReason,
    ReasoningDeltaChunk,
    StepFinishChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats._sse import Event, EventParser
from trio_stream.formats.openai_stream import OpenAIStreamDecoder, OpenAIStreamEncoder

from ..scenarios import SCENARIOS
from .runs import pieces, runs


def decode_pieces(body_pieces: Iterable[bytes]) -> list[Chunk]:
    """Feed ``body_pieces`` to a new decoder in turn, then close it."""
    decoder = OpenAIStreamDecoder()
    chunks = [chunk for piece in body_pieces for chunk in decoder.feed(piece)]
    return chunks + decoder.close()


def single_bytes(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def encode(chunks: list[Chunk], *, include_usage: bool = False) -> bytes:
    encoder = OpenAIStreamEncoder(include_usage=include_usage)
    return encoder.start() + encoder.encode(chunks) + encoder.finish()


# The round trip


def carried(chunks: list[Chunk], *, include_usage: bool) -> list[Chunk]:
    """What an OpenAI stream carries of a run's ``chunks``, as decoding gives it back.

    In order: the main message's text and reasoning deltas that are not
    empty, its tool calls' starts and non-empty argument text (a finish's
    last piece as a delta: the format has no end of a call's arguments), and
    every error. Chunks of sub-streams (a parent id, or a delta of a call
    started in one), tool results, state, sources, files, data, annotations,
    reasoning summaries and step starts are not sent.

    The steps are not sent one by one either: unless an error was sent, the
    message ends with one ``StepFinishChunk`` for the whole run. Its reason
    is the last step's if that was ``length`` or ``content-filter``, else
    ``tool-calls`` if the message called tools, else ``stop``; its token
    counts are the sums over the run's steps when the usage chunk was asked
    for, else 0; ``is_continued`` is false.
    """
    kept: list[Chunk] = []
    calls: set[str] = set()
    for chunk in chunks:
        match chunk:
            case TextDeltaChunk(text_delta=text, parent_id=None) if text:
                kept.append(chunk)
            case ReasoningDeltaChunk(reasoning_delta=text, parent_id=None) if text:
                kept.append(chunk)
            case ToolCallBeginChunk(tool_call_id=call_id, parent_id=None):
                calls.add(call_id)
                kept.append(chunk)
            case ToolCallDeltaChunk(tool_call_id=call_id, args_text_delta=text) if (
                call_id in calls and text
            ):
                kept.append(chunk)
            case ToolCallArgsTextFinishChunk(tool_call_id=call_id, args_text_delta=text) if (
                call_id in calls and text
            ):
                kept.append(ToolCallDeltaChunk(call_id, text))  # the end has no place
            case ErrorChunk():
                kept.append(chunk)
    if any(isinstance(chunk, ErrorChunk) for chunk in kept):
        return kept
    steps = [chunk for chunk in chunks if isinstance(chunk, StepFinishChunk)]
    last = steps[-1].finish_reason if steps else None
    reason = last if last in ("length", "content-filter") else "tool-calls" if calls else "stop"
    if not include_usage:
        return [*kept, StepFinishChunk(reason)]
    input_tokens = sum(step.input_tokens for step in steps)
    output_tokens = sum(step.output_tokens for step in steps)
    return [*kept, StepFinishChunk(reason, input_tokens, output_tokens)]


@settings(max_examples=300)
@given(run=runs(), include_usage=st.booleans(), data=st.data())
def test_a_body_decodes_to_what_the_format_carries_of_its_run(
    run: list[Chunk], include_usage: bool, data: st.DataObject
) -> None:
    body = encode(run, include_usage=include_usage)
    assert decode_pieces(data.draw(pieces(body))) == carried(run, include_usage=include_usage)


def test_the_steps_of_a_run_come_back_as_one_step_finish_at_the_end() -> None:
    run: list[Chunk] = [
        TextDeltaChunk("Looking it up."),
        ToolCallBeginChunk("call_1", "search"),
        ToolCallDeltaChunk("call_1", "{}"),
        ToolResultChunk("call_1", ["a result"]),
        StepFinishChunk("tool-calls", 10, 5, is_continued=True),
        TextDeltaChunk("Found it, but"),
        StepFinishChunk("length", 30, 7),
    ]
    decoded = decode_pieces([encode(run, include_usage=True)])
    assert decoded[-1] == StepFinishChunk("length", 40, 12)
    assert [chunk for chunk in decoded if isinstance(chunk, StepFinishChunk)] == decoded[-1:]
    without_usage = decode_pieces([encode(run)])
    assert without_usage[-1] == StepFinishChunk("length", 0, 0)


def test_the_step_finish_waits_for_done_since_a_usage_chunk_may_come_before() -> None:
    body = encode([TextDeltaChunk("Hi"), StepFinishChunk("stop", 3, 4)], include_usage=True)
    text, finish, usage, done = (event + b"\n\n" for event in body.split(b"\n\n")[:4])
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(text) == [TextDeltaChunk("Hi")]
    assert decoder.feed(finish) == []
    assert decoder.feed(usage) == []
    assert decoder.feed(done) == [StepFinishChunk("stop", 3, 4)]
    assert decoder.close() == []


def test_a_10_mb_content_delta_decodes_whole_and_in_64_kib_pieces() -> None:
    # Multi-byte characters, so that pieces end inside UTF-8 sequences.
    text = "".join(itertools.repeat("Olá, 世界 🌍\n", 10_000_000 // 18))
    body = encode([TextDeltaChunk(text)])
    assert len(body) > 10_000_000
    expected = [TextDeltaChunk(text), StepFinishChunk("stop")]
    assert decode_pieces([body]) == expected
    size = 64 * 1024
    assert decode_pieces(body[i : i + size] for i in range(0, len(body), size)) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_a_served_body_decodes_as_it_arrives(scenarios_url: str, scenario: str) -> None:
    decoder = OpenAIStreamDecoder()
    decoded: list[Chunk] = []
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", f"{scenarios_url}/openai/{scenario}") as response,
    ):
        assert response.headers["content-type"].startswith(decoder.media_type)
        async for piece in response.aiter_raw():
            decoded += decoder.feed(piece)
    decoded += decoder.close()
    assert decoded == carried(await run_chunks(scenario), include_usage=False)


async def run_chunks(scenario: str) -> list[Chunk]:
    """The chunks of a scenario's run, up to its failure for the one that fails."""
    received: list[Chunk] = []
    failure = pytest.raises(RuntimeError) if scenario == "failing" else contextlib.nullcontext()
    with failure:
        async with create_run(SCENARIOS[scenario]) as chunks:
            received += [chunk async for chunk in chunks]
    return received


# Other producers: OpenAI's chunk types, serialized as the openai client's models are

Dump = Callable[[ChatCompletionChunk], str]

DUMPS: dict[str, Dump] = {
    # Only the fields a chunk was given, as OpenAI sends them.
    "exclude_unset": lambda chunk: chunk.model_dump_json(exclude_unset=True),
    # Every field, null where unset, as servers that serialize whole models send them.
    "exclude_none=False": lambda chunk: chunk.model_dump_json(exclude_none=False),
}


def completion_chunk(
    delta: ChoiceDelta | None = None,
    finish_reason: Any = None,
    usage: CompletionUsage | None = None,
) -> ChatCompletionChunk:
    """One chunk of a streamed completion: a delta, or (without one) the usage chunk."""
    choices = [] if delta is None else [Choice(index=0, delta=delta, finish_reason=finish_reason)]
    chunk = ChatCompletionChunk(
        id="chatcmpl-1", created=1, model="gpt-x", object="chat.completion.chunk", choices=choices
    )
    if usage is not None:
        chunk.usage = usage
    return chunk


def tool_call(
    index: int, arguments: str, call_id: str = "", name: str = ""
) -> ChoiceDeltaToolCall:
    """A tool call delta; its first one has the call's id and name."""
    function = ChoiceDeltaToolCallFunction(arguments=arguments)
    if not call_id:
        return ChoiceDeltaToolCall(index=index, function=function)
    function.name = name
    return ChoiceDeltaToolCall(index=index, id=call_id, type="function", function=function)


def sse_body(chunks: list[ChatCompletionChunk], dump: Dump) -> bytes:
    """The chunks framed as OpenAI frames them, then ``[DONE]``."""
    events = [f"data: {dump(chunk)}\n\n".encode() for chunk in chunks]
    return b"".join(events) + b"data: [DONE]\n\n"


def parallel_tool_calls(reasoning_field: str) -> list[ChatCompletionChunk]:
    """Reasoning, text and two tool calls whose arguments interleave, then usage.

    The reasoning is in a field the model does not declare, as the openai
    client keeps the fields a server adds.
    """
    return [
        # OpenAI's first chunk: the role, and empty content.
        completion_chunk(ChoiceDelta(role="assistant", content="", refusal=None)),
        completion_chunk(ChoiceDelta.model_validate({reasoning_field: "Two "})),
        completion_chunk(ChoiceDelta.model_validate({reasoning_field: "lookups."})),
        completion_chunk(ChoiceDelta(content="Checking ")),
        completion_chunk(ChoiceDelta(content="both.")),
        completion_chunk(ChoiceDelta(tool_calls=[tool_call(0, "", "call_a", "weather")])),
        completion_chunk(ChoiceDelta(tool_calls=[tool_call(0, '{"city": ')])),
        completion_chunk(ChoiceDelta(tool_calls=[tool_call(1, '{"q"', "call_b", "search")])),
        completion_chunk(
            ChoiceDelta(tool_calls=[tool_call(0, '"Lisbon"}'), tool_call(1, ': "trio"}')])
        ),
        completion_chunk(ChoiceDelta(), finish_reason="tool_calls"),
        completion_chunk(
            usage=CompletionUsage(prompt_tokens=12, completion_tokens=30, total_tokens=42)
        ),
    ]


PARALLEL_TOOL_CALLS_DECODED: list[Chunk] = [
    ReasoningDeltaChunk("Two "),
    ReasoningDeltaChunk("lookups."),
    TextDeltaChunk("Checking "),
    TextDeltaChunk("both."),
    ToolCallBeginChunk("call_a", "weather"),
    ToolCallDeltaChunk("call_a", '{"city": '),
    ToolCallBeginChunk("call_b", "search"),
    ToolCallDeltaChunk("call_b", '{"q"'),
    ToolCallDeltaChunk("call_a", '"Lisbon"}'),
    ToolCallDeltaChunk("call_b", ': "trio"}'),
    StepFinishChunk("tool-calls", 12, 30),
]


@pytest.mark.parametrize("dump", DUMPS.values(), ids=DUMPS.keys())
@pytest.mark.parametrize("reasoning_field", ["reasoning_content", "reasoning"])
def test_openai_chunks_with_reasoning_text_parallel_tool_calls_and_usage(
    dump: Dump, reasoning_field: str
) -> None:
    body = sse_body(parallel_tool_calls(reasoning_field), dump)
    assert decode_pieces([body]) == PARALLEL_TOOL_CALLS_DECODED
    assert decode_pieces(single_bytes(body)) == PARALLEL_TOOL_CALLS_DECODED


def test_crlf_line_breaks_and_keep_alive_comments_are_read() -> None:
    body = sse_body(parallel_tool_calls("reasoning_content"), DUMPS["exclude_unset"])
    events = body.split(b"\n\n")[:-1]
    comments = itertools.cycle([b": keep-alive\r\n\r\n", b": OPENROUTER PROCESSING\r\n\r\n"])
    crlf_body = b"".join(next(comments) + event + b"\r\n\r\n" for event in events)
    assert crlf_body.count(b"\r\n") == 4 * len(events)
    assert decode_pieces([crlf_body]) == PARALLEL_TOOL_CALLS_DECODED
    assert decode_pieces(single_bytes(crlf_body)) == PARALLEL_TOOL_CALLS_DECODED


def test_a_refusal_is_read_as_the_answer_text() -> None:
    chunks = [
        completion_chunk(ChoiceDelta(role="assistant", content=None, refusal="")),
        completion_chunk(ChoiceDelta(refusal="I can't help ")),
        completion_chunk(ChoiceDelta(refusal="with that.")),
        completion_chunk(ChoiceDelta(), finish_reason="stop"),
    ]
    assert decode_pieces([sse_body(chunks, DUMPS["exclude_unset"])]) == [
        TextDeltaChunk("I can't help "),
        TextDeltaChunk("with that."),
        StepFinishChunk("stop"),
    ]


@pytest.mark.parametrize("dump", DUMPS.values(), ids=DUMPS.keys())
def test_a_legacy_function_call_is_a_tool_call_named_function_call(dump: Dump) -> None:
    chunks = [
        completion_chunk(
            ChoiceDelta(
                role="assistant",
                function_call=ChoiceDeltaFunctionCall(name="get_weather", arguments=""),
            )
        ),
        completion_chunk(ChoiceDelta(function_call=ChoiceDeltaFunctionCall(arguments='{"city"'))),
        completion_chunk(
            ChoiceDelta(function_call=ChoiceDeltaFunctionCall(arguments=': "Oslo"}'))
        ),
        completion_chunk(ChoiceDelta(), finish_reason="function_call"),
    ]
    assert decode_pieces([sse_body(chunks, dump)]) == [
        ToolCallBeginChunk("function_call", "get_weather"),
        ToolCallDeltaChunk("function_call", '{"city"'),
        ToolCallDeltaChunk("function_call", ': "Oslo"}'),
        StepFinishChunk("tool-calls"),
    ]


# Other producers: the variations of OpenAI-compatible servers, written by hand


def events(*values: Any, done: bool = True) -> bytes:
    """Each value as a ``data:`` event, then ``[DONE]`` unless ``done`` is false."""
    body = b"".join(b"data: " + json.dumps(value).encode() + b"\n\n" for value in values)
    return body + (b"data: [DONE]\n\n" if done else b"")


def deltas(*values: dict[str, Any], finish_reason: str = "stop") -> bytes:
    """A body whose chunks carry these deltas, then the finish reason."""
    chunks = [{"choices": [{"index": 0, "delta": delta}]} for delta in values]
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}
    return events(*chunks, last)


def call(arguments: str, index: int | None = None, **fields: Any) -> dict[str, Any]:
    """A ``tool_calls`` delta of one call; ``fields`` may add ``id`` and ``name``."""
    name = fields.pop("name", None)
    function = {"arguments": arguments} if name is None else {"name": name, "arguments": arguments}
    value: dict[str, Any] = {**fields, "function": function}
    if index is not None:
        value["index"] = index
    return {"tool_calls": [value]}


def test_a_delta_with_both_reasoning_fields_counts_once() -> None:
    body = deltas(
        {"reasoning_content": "Hm", "reasoning": "Hm"},
        {"reasoning": "m."},
        {"reasoning_content": "", "reasoning": "!"},
    )
    assert decode_pieces([body])[:-1] == [
        ReasoningDeltaChunk("Hm"),
        ReasoningDeltaChunk("m."),
        ReasoningDeltaChunk("!"),
    ]


def test_a_delta_with_reasoning_text_and_a_call_gives_them_in_that_order() -> None:
    body = deltas({"content": "Text", "reasoning": "First", **call("{}", 0, id="c", name="f")})
    assert decode_pieces([body]) == [
        ReasoningDeltaChunk("First"),
        TextDeltaChunk("Text"),
        ToolCallBeginChunk("c", "f"),
        ToolCallDeltaChunk("c", "{}"),
        StepFinishChunk("stop"),
    ]


def test_calls_without_an_index_each_start_with_their_id() -> None:
    # Gemini's OpenAI-compatible API sends each call whole, with no index.
    body = deltas(
        call('{"city": "Oslo"}', id="g1", type="function", name="weather"),
        call('{"city": "Rome"}', id="g2", type="function", name="weather"),
        call(""),
        finish_reason="tool_calls",
    )
    assert decode_pieces([body]) == [
        ToolCallBeginChunk("g1", "weather"),
        ToolCallDeltaChunk("g1", '{"city": "Oslo"}'),
        ToolCallBeginChunk("g2", "weather"),
        ToolCallDeltaChunk("g2", '{"city": "Rome"}'),
        StepFinishChunk("tool-calls"),
    ]


def test_a_new_id_at_a_used_index_starts_a_new_call() -> None:
    body = deltas(
        call("", 0, id="a", name="f"),
        call("{}", 0),
        call("", 0, id="b", name="g"),
        call("[]", 0),
        finish_reason="tool_calls",
    )
    assert decode_pieces([body]) == [
        ToolCallBeginChunk("a", "f"),
        ToolCallDeltaChunk("a", "{}"),
        ToolCallBeginChunk("b", "g"),
        ToolCallDeltaChunk("b", "[]"),
        StepFinishChunk("tool-calls"),
    ]


def test_a_call_whose_id_and_name_come_with_every_delta_starts_once() -> None:
    body = deltas(
        call('{"a"', 0, id="c", name="f"),
        call(": 1}", 0, id="c", name="f"),
        finish_reason="tool_calls",
    )
    assert decode_pieces([body]) == [
        ToolCallBeginChunk("c", "f"),
        ToolCallDeltaChunk("c", '{"a"'),
        ToolCallDeltaChunk("c", ": 1}"),
        StepFinishChunk("tool-calls"),
    ]


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content-filter"),
        ("tool_calls", "tool-calls"),
        ("function_call", "tool-calls"),
        ("abort", "other"),
    ],
)
def test_finish_reasons(wire: str, reason: FinishReason) -> None:
    body = deltas({"content": "x"}, finish_reason=wire)
    assert decode_pieces([body]) == [TextDeltaChunk("x"), StepFinishChunk(reason)]


def test_usage_in_every_chunk_counts_as_of_the_last() -> None:
    # vLLM's continuous usage statistics: running totals in every chunk.
    body = events(
        {
            "choices": [{"delta": {"content": "a"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        },
        {
            "choices": [{"delta": {"content": "b"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2},
        },
        {
            "choices": [{"delta": {}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        },
        {"choices": [], "usage": None},
    )
    assert decode_pieces([body]) == [
        TextDeltaChunk("a"),
        TextDeltaChunk("b"),
        StepFinishChunk("length", 5, 3),
    ]


def test_usage_without_a_finish_reason_finishes_for_an_unknown_reason() -> None:
    body = events({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": None}})
    assert decode_pieces([body]) == [StepFinishChunk("unknown", 2, 0)]


def test_a_body_with_neither_finish_reason_nor_usage_has_no_step_finish() -> None:
    body = events({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]})
    assert decode_pieces([body]) == [TextDeltaChunk("Hi")]


def test_events_without_choices_or_data_are_skipped() -> None:
    # Azure's prompt filter results, OpenAI's obfuscation, an event with no data line.
    body = (
        b"event: ping\n\n"
        + events({"choices": [], "prompt_filter_results": [{"prompt_index": 0}]}, done=False)
        + deltas({"content": "ok"}, finish_reason="stop")
    )
    assert decode_pieces([body]) == [TextDeltaChunk("ok"), StepFinishChunk("stop")]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"message": "Rate limit", "type": "server_error", "code": None}, "Rate limit"),
        ({"message": "", "type": "server_error"}, ""),
        ("upstream timed out", "upstream timed out"),
        ({"code": 500}, '{"code":500}'),
    ],
)
def test_an_error_event_is_an_error_chunk_and_decoding_goes_on(error: Any, message: str) -> None:
    body = events(
        {"choices": [{"delta": {"content": "Before"}}]},
        {"error": error},
        {"choices": [{"delta": {"content": "after"}}]},
    )
    assert decode_pieces([body]) == [
        TextDeltaChunk("Before"),
        ErrorChunk(message),
        TextDeltaChunk("after"),
    ]


def test_a_named_error_event_is_read_like_any_other() -> None:
    body = b'event: error\ndata: {"error": {"message": "overloaded"}}\n\ndata: [DONE]\n\n'
    assert decode_pieces([body]) == [ErrorChunk("overloaded")]


def test_after_an_error_the_body_may_end_without_done() -> None:
    body = events(
        {"choices": [{"delta": {"content": "Partial"}, "finish_reason": "stop"}]},
        {"error": {"message": "connection to the model lost"}},
        done=False,
    )
    assert decode_pieces([body]) == [
        TextDeltaChunk("Partial"),
        ErrorChunk("connection to the model lost"),
        StepFinishChunk("stop"),
    ]


def test_an_event_whose_only_data_line_is_empty_is_no_event() -> None:
    # The WHATWG rules dispatch no event for an empty data buffer; some
    # servers send such events to keep a connection busy.
    found = EventParser().feed(b"data:\n\ndata: \n\ndata: x\n\ndata:\ndata:\n\n")
    assert found == [Event(15, "x"), Event(24, "\n")]


# Malformed and truncated bodies

FIRST = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
"""A well-formed first event; the faulty one after it starts at ``len(FIRST)``."""


def refused(body: bytes) -> DecodeError:
    """The error decoding ``body`` raises, the same whole and in single bytes."""
    with pytest.raises(DecodeError) as whole:
        decode_pieces([body])
    with pytest.raises(DecodeError) as split:
        decode_pieces(single_bytes(body))
    assert (split.value.offset, split.value.problem) == (whole.value.offset, whole.value.problem)
    return whole.value


def test_bytes_that_are_not_utf_8_are_refused_where_they_are() -> None:
    bad = b'data: {"choices":[{"delta":{"content":"caf\xe9"}}]}\n\n'
    error = refused(FIRST + bad + b"data: [DONE]\n\n")
    assert error.offset == len(FIRST) + bad.index(b"\xe9")
    assert "expected UTF-8" in error.problem


def test_an_event_that_is_not_json_is_refused_at_its_start() -> None:
    error = refused(FIRST + b'data: {"choices": [\n\ndata: [DONE]\n\n')
    assert error.offset == len(FIRST)
    assert "expected a chat.completion.chunk as JSON" in error.problem


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (b'data: {"choices":[{"delta":{"content":5}}]}', "$.choices[0].delta.content"),
        (b'data: {"choices":{"delta":{}}}', "$.choices"),
        (b'data: {"choices":[{"delta":{"tool_calls":[{"index":"0"}]}}]}', "index"),
        (b'data: ["not", "an", "object"]', "object"),
    ],
)
def test_an_event_that_is_not_a_chunk_is_refused_at_its_start(event: bytes, where: str) -> None:
    error = refused(FIRST + event + b"\n\ndata: [DONE]\n\n")
    assert error.offset == len(FIRST)
    assert "expected a chat.completion.chunk" in error.problem
    assert where in error.problem


def test_a_tool_call_delta_at_an_index_never_started_is_refused() -> None:
    started = events({"choices": [{"delta": call("", 0, id="a", name="f")}]}, done=False)
    orphan = events({"choices": [{"delta": call('{"x": 1}', 1)}]}, done=False)
    error = refused(FIRST + started + orphan + b"data: [DONE]\n\n")
    assert error.offset == len(FIRST + started)
    assert error.problem == (
        "a tool call delta at index 1 continues no call:"
        " expected the call's first delta, with its id and function name"
    )


@pytest.mark.parametrize(
    ("delta", "problem"),
    [
        (call("{}"), "a tool call delta without an index continues no call"),
        ({"function_call": {"arguments": "{}"}}, "a function_call delta continues no call"),
        (call("{}", 0, id="b"), "a tool call delta at index 0 has no function name"),
        (call("{}", 1, id="a", name="g"), "starts a call with the id 'a' of an earlier one"),
    ],
)
def test_a_tool_call_that_cannot_be_started_is_refused(
    delta: dict[str, Any], problem: str
) -> None:
    started = events({"choices": [{"delta": call("", 3, id="a", name="f")}]}, done=False)
    faulty = events({"choices": [{"delta": delta}]}, done=False)
    error = refused(started + faulty + b"data: [DONE]\n\n")
    assert error.offset == len(started)
    assert problem in error.problem


def test_several_choices_are_refused() -> None:
    second = b'data: {"choices":[{"index":1,"delta":{"content":"Hello"}}]}\n\n'
    error = refused(FIRST + second + b"data: [DONE]\n\n")
    assert error.offset == len(FIRST)
    assert "expected choice 0 only, not choice 1" in error.problem


def test_an_event_after_done_is_refused() -> None:
    done = FIRST + b"data: [DONE]\n\n"
    error = refused(done + FIRST)
    assert error.offset == len(done)
    assert error.problem == "expected the body to end after data: [DONE]"


def test_a_body_without_done_is_refused_at_its_end() -> None:
    body = encode([TextDeltaChunk("cut"), StepFinishChunk("stop")])
    assert body.endswith(b"data: [DONE]\n\n")
    without_done = body.removesuffix(b"data: [DONE]\n\n")
    error = refused(without_done)
    assert error.offset == len(without_done)
    assert error.problem == "the body ends before data: [DONE]: it was cut short"
    assert refused(b"").offset == 0


def test_every_body_cut_short_is_refused_at_its_end() -> None:
    body = encode(
        [
            ReasoningDeltaChunk("Think"),
            TextDeltaChunk("Answer"),
            ToolCallBeginChunk("call_1", "f"),
            ToolCallDeltaChunk("call_1", '{"a": 1}'),
            StepFinishChunk("stop", 1, 2),
        ],
        include_usage=True,
    )
    for cut in range(len(body)):
        with pytest.raises(DecodeError) as error:
            decode_pieces([body[:cut]])
        assert error.value.offset == cut
    assert decode_pieces([body])[-1] == StepFinishChunk("tool-calls", 1, 2)
