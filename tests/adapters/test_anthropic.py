"""The Anthropic adapter, fed by the real ``anthropic`` client over real HTTP.

The model server is a fake one (``messages_server``), served by hypercorn on
Trio in a thread of the test process: it streams scripted messages as the
Messages API streams them, every block and delta type, parallel tool calls
over rounds of a loop, and streams no well-behaved server sends. The client
side runs on Trio and on asyncio.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from types import SimpleNamespace
from typing import Any

import anthropic
import anyio
import anyio.to_thread
import httpx2
import pytest
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageStartEvent,
)
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, UsageError, create_run
from trio_stream.adapters.anthropic import (
    MessageOutcome,
    MessageStreamError,
    ToolCall,
    ToolLoopOutcome,
    run_message,
    run_tool_loop,
    stream_message,
    tool_result_message,
)
from trio_stream.asgi import DataStreamResponse
from trio_stream.chunks import (
    Chunk,
    ErrorChunk,
    FinishReason,
    ReasoningDeltaChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)

from ..anthropic_warnings import ignore_anthropic_client_warnings
from ..clients import decode, summarize
from ..conftest import collect
from ..serving import running
from .messages_server import (
    DROP,
    PING,
    Hang,
    Model,
    Script,
    block,
    delta,
    message,
    message_start,
    messages_app,
    server_tool_use,
    text,
    thinking,
    tool_results,
    tool_use,
)

pytestmark = [pytest.mark.anyio, ignore_anthropic_client_warnings]

# -- the fake model ----------------------------------------------------------------

REQUESTS: list[dict[str, Any]] = []
"""The body of every request the fake model received, in order."""

CANCELLED: dict[str, threading.Event] = {}
"""Set by the ``hang:<token>`` scenario when the server cancels its answer."""

WEB_RESULT = {
    "type": "web_search_result",
    "url": "https://weather.example/lisbon",
    "title": "Lisbon weather",
    "encrypted_content": "ENC-PAGE",
    "page_age": "1 day",
}
CITATION = {
    "type": "web_search_result_location",
    "url": "https://weather.example/lisbon",
    "title": "Lisbon weather",
    "cited_text": "Sunny, 24 °C",
    "encrypted_index": "ENC-INDEX",
}


def web_search(index: int, id: str, query: str, content: Any) -> list[Any]:
    """A server tool call and its result, as the API streams a web search."""
    return [
        *server_tool_use(index, id, "web_search", '{"query": ', json.dumps(query) + "}"),
        *block(
            index + 1, {"type": "web_search_tool_result", "tool_use_id": id, "content": content}
        ),
    ]


EVERYTHING = message(
    thinking(0, "Search first, ", "then the tool.", signature="SIG-1"),
    block(1, {"type": "redacted_thinking", "data": "REDACTED-1"}),
    web_search(2, "srvtoolu_1", "Lisbon weather", [WEB_RESULT]),
    text(4, "Lisbon is ", "sunny.", citations=[CITATION]),
    tool_use(5, "toolu_1", "get_weather", '{"city":', ' "Oslo"}'),
    stop_reason="tool_use",
    input_tokens=20,
    cache_read_input_tokens=100,
    cache_creation_input_tokens=5,
    output_tokens=42,
)
EVERYTHING.insert(8, PING)  # pings come between any two events


def trip(body: dict[str, Any]) -> Script:
    """Two weather lookups in parallel, then a sum of their results, then the answer."""
    results = tool_results(body)
    if not results:
        return message(
            thinking(0, "Both cities at once.", signature="SIG-T"),
            text(1, "Checking both."),
            tool_use(2, "toolu_lis", "get_weather", '{"city": "Lisbon"}'),
            tool_use(3, "toolu_osl", "get_weather", '{"city": "Oslo"}'),
            stop_reason="tool_use",
            id="msg_1",
        )
    if "toolu_sum" not in results:
        a, b = (json.loads(results[i]["content"])["celsius"] for i in ("toolu_lis", "toolu_osl"))
        return message(
            tool_use(0, "toolu_sum", "calculate", json.dumps({"expression": f"{a} + {b}"})),
            stop_reason="tool_use",
            id="msg_2",
        )
    total = json.loads(results["toolu_sum"]["content"])
    return message(text(0, f"Together: {total} °C."), id="msg_3", output_tokens=6)


def one_call(name: str, pieces: tuple[str, ...] = ('{"city": "Lisbon"}',)) -> Model:
    """A model that calls ``name`` once, then repeats the result it got."""

    def model(body: dict[str, Any]) -> Script:
        results = tool_results(body)
        if not results:
            return message(tool_use(0, "toolu_1", name, *pieces), stop_reason="tool_use")
        [result] = results.values()
        said = f"is_error={result.get('is_error', False)} {result.get('content')}"
        return message(text(0, said))

    return model


def front_end(body: dict[str, Any]) -> Script:
    return message(
        tool_use(0, "toolu_a", "get_weather", '{"city": "Lisbon"}'),
        tool_use(1, "toolu_b", "confirm", '{"question": "Go on?"}'),
        stop_reason="tool_use",
    )


def paused(body: dict[str, Any]) -> Script:
    if body["messages"][-1]["role"] == "assistant":
        return message(text(0, "Sunny."), id="msg_2")
    return message(
        web_search(0, "srvtoolu_p", "Lisbon", [WEB_RESULT]), stop_reason="pause_turn", id="msg_1"
    )


SERVER_RESULTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    # server tool: (its result block's type, the block's content, an error?)
    "web_search": (
        "web_search_tool_result",
        {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
        True,
    ),
    "web_fetch": (
        "web_fetch_tool_result",
        {
            "type": "web_fetch_result",
            "url": "https://docs.example/trio",
            "content": {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "Trio."},
            },
        },
        False,
    ),
    "code_execution": (
        "code_execution_tool_result",
        {
            "type": "code_execution_result",
            "stdout": "4\n",
            "stderr": "",
            "return_code": 0,
            "content": [],
        },
        False,
    ),
    "bash_code_execution": (
        "bash_code_execution_tool_result",
        {"type": "bash_code_execution_tool_result_error", "error_code": "unavailable"},
        True,
    ),
}


def server_result(tool: str) -> Script:
    """A server tool's call and result, a file it made, and text."""
    result_type, content, _ = SERVER_RESULTS[tool]
    return message(
        server_tool_use(0, "srvtoolu_1", tool, '{"input": "x"}'),
        block(1, {"type": result_type, "tool_use_id": "srvtoolu_1", "content": content}),
        block(2, {"type": "container_upload", "file_id": "file_1"}),
        text(3, "Done."),
    )


FUTURE_BLOCK = {"type": "memory_recall", "memories": [{"id": 1, "note": "likes trio"}]}
FUTURE_RESULT = {"type": "code_execution_result", "stdout": "4\n", "duration_ms": 12}
"""A result of a shape the client's models do not know (no ``stderr``, a new field)."""


def future(body: dict[str, Any]) -> Script:
    """Event, block and delta types, and a result shape, the client does not know yet."""
    events = message(
        block(0, FUTURE_BLOCK),
        server_tool_use(1, "srvtoolu_f", "code_execution", '{"code": "2+2"}'),
        block(
            2,
            {
                "type": "code_execution_tool_result",
                "tool_use_id": "srvtoolu_f",
                "content": FUTURE_RESULT,
            },
        ),
        text(3, "Hello"),
    )
    events.insert(2, {"type": "rate_limit_notice", "remaining": 9})
    events.insert(-4, delta(3, type="emphasis_delta", spans=[[0, 5]]))
    return events


def whole_input(body: dict[str, Any]) -> Script:
    return message(
        # Input that comes whole with the start, as some servers send it.
        block(0, {"type": "tool_use", "id": "toolu_w", "name": "search", "input": {"q": "trio"}}),
        tool_use(1, "toolu_e", "now"),  # no input at all
        stop_reason="tool_use",
    )


def hang(token: str) -> Script:
    start = message(text(0, "Thinking"))[:4]  # start, ping, block start, first delta
    return [*start, Hang(CANCELLED[token])]


def error_event(body: dict[str, Any]) -> Script:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return [
        *message(text(0, "Part"))[:4],
        b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n",
    ]


TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
STOP = message()[-2:]  # message_delta and message_stop
MALFORMED: dict[str, tuple[Script, str]] = {
    "delta before its block": (
        [message_start(), delta(0, type="text_delta", text="x"), *STOP],
        "the stream sent text_delta for block 0, which never started",
    ),
    "delta after its block": (
        [message_start(), *text(0, "a"), delta(0, type="text_delta", text="b"), *STOP],
        r"the stream sent text_delta for block 0 \(text\), which had stopped",
    ),
    "delta of another kind": (
        [message_start(), TEXT_START, delta(0, type="input_json_delta", partial_json="{")],
        r"input_json_delta for block 0 \(text\), which is not a tool_use block",
    ),
    "block started twice": (
        [message_start(), TEXT_START, TEXT_START],
        "block 0 started twice",
    ),
    "block never stopped": (
        [message_start(), TEXT_START, *STOP],
        r"the message stopped before block 0 \(text\) did",
    ),
    "event before message_start": ([TEXT_START], "content_block_start before message_start"),
    "event after message_stop": (
        [*message(), TEXT_START],
        "content_block_start after message_stop",
    ),
    "second message_start": ([message_start(), message_start()], "a second message_start"),
    "no index": (
        [message_start(), TEXT_START, {"type": "content_block_stop"}],
        "a content_block_stop event has no index",
    ),
    "text that is not text": (
        [message_start(), TEXT_START, delta(0, type="text_delta", text=5)],
        r"the text of block 0 \(text\) should be text, not int: 5",
    ),
    "two calls with one id": (
        message(tool_use(0, "toolu_1", "a"), tool_use(1, "toolu_1", "b")),
        r"block 0 \(tool_use\) and block 1 \(tool_use\) have the same id 'toolu_1'",
    ),
    "result of no call": (
        message(block(0, {"type": "web_search_tool_result", "tool_use_id": "x", "content": []})),
        r"answers tool call 'x', which no server_tool_use block opened",
    ),
    "data that is not JSON": (
        [message_start(), b"event: content_block_start\ndata: {not json\n\n"],
        "the stream sent an event that is not JSON",
    ),
    "cut short": (message(text(0, "The answer is"))[:-2], "ended before message_stop"),
    "nothing": ([], "ended before message_stop"),
    "no stop reason": (message(text(0, "a"), stop_reason=None), "without a stop_reason"),
}


def model(body: dict[str, Any]) -> Script:
    scenario = body["messages"][0]["content"]
    if scenario.startswith("hang:"):
        return hang(scenario.removeprefix("hang:"))
    if scenario.startswith("stop:"):
        return message(text(0, "x"), stop_reason=scenario.removeprefix("stop:"))
    if scenario.startswith("server:"):
        return server_result(scenario.removeprefix("server:"))
    if scenario in MALFORMED:
        return MALFORMED[scenario][0]
    scripted: dict[str, Model] = {
        "everything": lambda body: EVERYTHING,
        "trip": trip,
        "fails": one_call("flaky"),
        "not-json": one_call("get_weather", ('{"city": Lisbon}',)),
        "not-an-object": one_call("get_weather", ('["Lisbon"]',)),
        "front-end": front_end,
        "paused": paused,
        "whole-input": whole_input,
        "future": future,
        "error-event": error_event,
        "drop": lambda body: [*message(text(0, "Part"))[:4], DROP],
    }
    return scripted[scenario](body)


async def chat(request: Request) -> DataStreamResponse:
    """A chat endpoint that pipes the fake model into a data stream."""
    upstream = str(request.base_url).rstrip("/")

    async def run(controller: RunController) -> None:
        async with client(upstream) as claude:
            outcome = await run_message(
                controller,
                claude,
                model="fake-model",
                messages=[user("everything")],
                max_tokens=99,
            )
        assert outcome.tool_calls[0].name == "get_weather"  # left for the front-end

    return DataStreamResponse(create_run(run))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = messages_app(model, REQUESTS)
    app.router.routes.append(Route("/chat", chat, methods=["POST"]))
    with running(app) as url:
        yield url


# -- the client side -----------------------------------------------------------------


def client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key="test", max_retries=0)


def user(content: str) -> MessageParam:
    return {"role": "user", "content": content}


async def pipe(
    base_url: str, content: str, received: list[Chunk] | None = None, **params: Any
) -> tuple[list[Chunk], MessageOutcome]:
    """Pipe one message into a run; return the run's chunks and the outcome.

    Chunks also go to ``received`` as they come, for a test that expects the
    run to fail.
    """
    received = [] if received is None else received
    outcomes: list[MessageOutcome] = []

    async def run(controller: RunController) -> None:
        async with client(base_url) as claude:
            outcomes.append(
                await run_message(
                    controller,
                    claude,
                    model="fake-model",
                    messages=[user(content)],
                    max_tokens=100,
                    **params,
                )
            )

    async with create_run(run) as chunks:
        async for chunk in chunks:
            received.append(chunk)
    return received, outcomes[0]


async def weather(call: ToolCallController) -> dict[str, Any]:
    celsius = {"Lisbon": 24, "Oslo": 17}[call.args["city"]]
    return {"city": call.args["city"], "celsius": celsius}


async def calculate(call: ToolCallController) -> float:
    left, right = call.args["expression"].split("+")
    return float(left) + float(right)


async def loop(
    base_url: str, content: str, received: list[Chunk] | None = None, **params: Any
) -> tuple[list[Chunk], ToolLoopOutcome]:
    """``pipe``, for ``run_tool_loop`` with the weather and the calculator."""
    received = [] if received is None else received
    outcomes: list[ToolLoopOutcome] = []
    params.setdefault("tool_functions", {"get_weather": weather, "calculate": calculate})

    async def run(controller: RunController) -> None:
        async with client(base_url) as claude:
            outcomes.append(
                await run_tool_loop(
                    controller,
                    claude,
                    model="fake-model",
                    messages=[user(content)],
                    max_tokens=100,
                    **params,
                )
            )

    async with create_run(run) as chunks:
        async for chunk in chunks:
            received.append(chunk)
    return received, outcomes[0]


# -- one message ---------------------------------------------------------------------


async def test_every_block_and_delta_type_becomes_chunks(server: str) -> None:
    chunks, _ = await pipe(server, "everything")
    web_result = {key: value for key, value in WEB_RESULT.items() if key != "encrypted_content"}
    assert chunks == [
        StepStartChunk("msg_fake"),
        ReasoningDeltaChunk("Search first, "),
        ReasoningDeltaChunk("then the tool."),
        # The signature and the redacted thinking are not for the front-end.
        ToolCallBeginChunk("srvtoolu_1", "web_search"),
        ToolCallDeltaChunk("srvtoolu_1", '{"query": '),
        ToolCallDeltaChunk("srvtoolu_1", '"Lisbon weather"}'),
        ToolResultChunk("srvtoolu_1", [web_result]),
        SourceChunk("msg_fake-0", "https://weather.example/lisbon", title="Lisbon weather"),
        TextDeltaChunk("Lisbon is "),
        TextDeltaChunk("sunny."),
        ToolCallBeginChunk("toolu_1", "get_weather"),
        ToolCallDeltaChunk("toolu_1", '{"city":'),
        ToolCallDeltaChunk("toolu_1", ' "Oslo"}'),
        StepFinishChunk("tool-calls", input_tokens=125, output_tokens=42),
    ]
    assert (REQUESTS[-1]["stream"], REQUESTS[-1]["max_tokens"]) == (True, 100)


async def test_the_outcome_keeps_every_block_for_the_next_request(server: str) -> None:
    _, outcome = await pipe(server, "everything")
    assert (outcome.id, outcome.model, outcome.stop_reason) == (
        "msg_fake",
        "fake-model",
        "tool_use",
    )
    assert (outcome.text, outcome.reasoning) == (
        "Lisbon is sunny.",
        "Search first, then the tool.",
    )
    # Only the client's tool is the caller's to run; the search has its result.
    [call] = outcome.tool_calls
    assert (call.id, call.name, call.args, call.arguments) == (
        "toolu_1",
        "get_weather",
        {"city": "Oslo"},
        '{"city": "Oslo"}',
    )
    assert not call.controller.closed
    assert outcome.usage is not None
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (20, 42)
    assert outcome.assistant_message() == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Search first, then the tool.", "signature": "SIG-1"},
            {"type": "redacted_thinking", "data": "REDACTED-1"},
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "Lisbon weather"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [WEB_RESULT],
            },
            {"type": "text", "text": "Lisbon is sunny.", "citations": [CITATION]},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Oslo"},
            },
        ],
    }


@pytest.mark.parametrize("tool", list(SERVER_RESULTS))
async def test_a_server_tool_result_closes_its_call(server: str, tool: str) -> None:
    chunks, outcome = await pipe(server, f"server:{tool}")
    result_type, content, is_error = SERVER_RESULTS[tool]
    assert chunks[1:-1] == [
        ToolCallBeginChunk("srvtoolu_1", tool),
        ToolCallDeltaChunk("srvtoolu_1", '{"input": "x"}'),
        ToolResultChunk("srvtoolu_1", content, is_error=is_error),
        TextDeltaChunk("Done."),
    ]
    assert outcome.tool_calls == ()  # nothing for the application to run
    # The file upload is not shown, but goes back with the rest.
    assert [block["type"] for block in outcome.content] == [
        "server_tool_use",
        result_type,
        "container_upload",
        "text",
    ]


async def test_types_to_come_are_passed_over_and_kept(server: str) -> None:
    chunks, outcome = await pipe(server, "future")
    assert chunks == [
        StepStartChunk("msg_fake"),
        ToolCallBeginChunk("srvtoolu_f", "code_execution"),
        ToolCallDeltaChunk("srvtoolu_f", '{"code": "2+2"}'),
        ToolResultChunk("srvtoolu_f", FUTURE_RESULT),
        TextDeltaChunk("Hello"),
        StepFinishChunk("stop"),
    ]
    assert outcome.content[0] == FUTURE_BLOCK
    assert outcome.content[2]["content"] == FUTURE_RESULT


async def test_input_sent_whole_or_not_at_all_still_reaches_the_front_end(server: str) -> None:
    chunks, outcome = await pipe(server, "whole-input")
    assert [c for c in chunks if isinstance(c, ToolCallDeltaChunk)] == [
        ToolCallDeltaChunk("toolu_w", '{"q": "trio"}'),
        ToolCallDeltaChunk("toolu_e", "{}"),
    ]
    assert [(call.name, call.args) for call in outcome.tool_calls] == [
        ("search", {"q": "trio"}),
        ("now", {}),
    ]


@pytest.mark.parametrize(
    ("sent", "mapped"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool-calls"),
        ("refusal", "content-filter"),
        ("pause_turn", "other"),
        ("a_reason_to_come", "other"),
    ],
)
async def test_stop_reasons(server: str, sent: str, mapped: FinishReason) -> None:
    chunks, outcome = await pipe(server, f"stop:{sent}")
    assert chunks[-1] == StepFinishChunk(mapped, output_tokens=0)
    assert (outcome.stop_reason, outcome.finish_reason) == (sent, mapped)


async def test_the_client_message_stream_is_piped_too(server: str) -> None:
    # messages.stream() adds derived events (text, thinking, input_json…),
    # which say again what the raw ones said.
    async def run(controller: RunController) -> None:
        async with (
            client(server) as claude,
            claude.messages.stream(
                model="fake-model", messages=[user("everything")], max_tokens=100
            ) as stream,
        ):
            await stream_message(controller, stream)

    assert await collect(run) == (await pipe(server, "everything"))[0]


async def test_any_async_iterable_of_events_is_piped_and_closed_on_failure() -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[Any]:
        try:
            yield RawMessageStartEvent.model_validate(message_start())
            yield RawContentBlockStartEvent.model_validate(text(0)[0])
            yield RawContentBlockDeltaEvent.model_validate(delta(0, type="text_delta", text="Hi"))
            yield RawContentBlockDeltaEvent.model_validate(delta(3, type="text_delta", text="!"))
            raise AssertionError("read past the malformed event")
        finally:
            closed.append(True)

    received: list[Chunk] = []
    with pytest.raises(MessageStreamError, match="block 3, which never started"):
        async with create_run(partial(stream_message, stream=events())) as chunks:
            received.extend([chunk async for chunk in chunks])
    assert closed == [True]


async def test_an_error_event_among_the_events_fails_the_run_with_its_message() -> None:
    # The client raises the API's error event itself; other sources yield it.
    async def events() -> AsyncIterator[Any]:
        yield RawMessageStartEvent.model_validate(message_start())
        yield SimpleNamespace(type="error", error=SimpleNamespace(message="Overloaded"))

    with pytest.raises(MessageStreamError, match="the stream sent an error: Overloaded"):
        await collect(partial(stream_message, stream=events()))


# -- a loop of rounds ----------------------------------------------------------------


async def test_the_loop_runs_parallel_calls_round_after_round(server: str) -> None:
    started: list[str] = []
    both_started = anyio.Event()

    async def lookup_together(call: ToolCallController) -> dict[str, Any]:
        # Each lookup waits for the other: they finish only if they run at once.
        started.append(call.args["city"])
        if len(started) == 2:
            both_started.set()
        with anyio.fail_after(5):
            await both_started.wait()
        return await weather(call)

    tools = {"get_weather": lookup_together, "calculate": calculate}
    chunks, outcome = await loop(server, "trip", tool_functions=tools)
    assert sorted(started) == ["Lisbon", "Oslo"]
    assert [c.message_id for c in chunks if isinstance(c, StepStartChunk)] == [
        "msg_1",
        "msg_2",
        "msg_3",
    ]
    assert sorted(
        (c.tool_call_id, c.result) for c in chunks if isinstance(c, ToolResultChunk)
    ) == [
        ("toolu_lis", {"city": "Lisbon", "celsius": 24}),
        ("toolu_osl", {"city": "Oslo", "celsius": 17}),
        ("toolu_sum", 41.0),
    ]
    assert chunks[-2:] == [TextDeltaChunk("Together: 41.0 °C."), StepFinishChunk("stop", 0, 6)]
    assert (outcome.text, outcome.finish_reason) == ("Checking both.Together: 41.0 °C.", "stop")
    assert [len(o.tool_calls) for o in outcome.outcomes] == [2, 1, 0]
    # The conversation goes on with every message of the loop.
    assert [m["role"] for m in outcome.messages] == [
        "user",
        *["assistant", "user"] * 2,
        "assistant",
    ]
    assert outcome.messages[-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Together: 41.0 °C."}],
    }


async def test_the_model_gets_its_blocks_back_and_one_result_per_call(server: str) -> None:
    await loop(server, "trip")
    second, third = REQUESTS[-2:]
    user_message, assistant, results = second["messages"]
    assert user_message == {"role": "user", "content": "trip"}
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Both cities at once.", "signature": "SIG-T"},
            {"type": "text", "text": "Checking both."},
            {
                "type": "tool_use",
                "id": "toolu_lis",
                "name": "get_weather",
                "input": {"city": "Lisbon"},
            },
            {
                "type": "tool_use",
                "id": "toolu_osl",
                "name": "get_weather",
                "input": {"city": "Oslo"},
            },
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_lis",
                "content": '{"city":"Lisbon","celsius":24}',
            },
            {
                "type": "tool_result",
                "tool_use_id": "toolu_osl",
                "content": '{"city":"Oslo","celsius":17}',
            },
        ],
    }
    assert third["messages"][3:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_sum",
                    "name": "calculate",
                    "input": {"expression": "24 + 17"},
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_sum", "content": "41.0"}],
        },
    ]


async def test_a_failing_tool_is_an_error_result_the_model_reads(server: str) -> None:
    async def flaky(call: ToolCallController) -> None:
        raise ValueError("the weather service is down")

    chunks, outcome = await loop(server, "fails", tool_functions={"flaky": flaky})
    assert ToolResultChunk("toolu_1", "the weather service is down", is_error=True) in chunks
    assert outcome.text == "is_error=True the weather service is down"


async def test_a_failing_tool_fails_the_run_when_errors_are_not_results(server: str) -> None:
    async def flaky(call: ToolCallController) -> None:
        raise ValueError("the weather service is down")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="the weather service is down"):
        await loop(
            server, "fails", received, tool_functions={"flaky": flaky}, errors_as_result=False
        )
    assert received[-1] == ErrorChunk("the weather service is down")


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        ("not-json", r"the arguments of tool call 'get_weather' \(toolu_1\) are not JSON"),
        (
            "not-an-object",
            r"the input of tool call 'get_weather' \(toolu_1\) is not a JSON object",
        ),
    ],
)
async def test_input_the_tool_cannot_take_is_an_error_result(
    server: str, scenario: str, problem: str
) -> None:
    chunks, outcome = await loop(server, scenario)
    [result] = [c for c in chunks if isinstance(c, ToolResultChunk)]
    assert result.is_error
    assert re.match(problem, result.result)
    assert outcome.text == f"is_error=True {result.result}"  # what the model read


async def test_a_call_with_no_function_is_left_for_the_front_end(server: str) -> None:
    chunks, outcome = await loop(server, "front-end")
    assert len(outcome.outcomes) == 1  # no second request: a result is missing
    assert [call.name for call in outcome.pending_tool_calls] == ["confirm"]
    assert [c.tool_call_id for c in chunks if isinstance(c, ToolResultChunk)] == ["toolu_a"]
    # The results the loop has close the history; the front-end's will join them.
    assert outcome.messages[-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_a",
                "content": '{"city":"Lisbon","celsius":24}',
            }
        ],
    }


async def test_the_round_limit_answers_the_last_calls_without_running_them(server: str) -> None:
    ran: list[str] = []

    async def tracked(call: ToolCallController) -> Any:
        ran.append(call.tool_name)
        return await weather(call)

    chunks, outcome = await loop(
        server, "trip", tool_functions={"get_weather": tracked}, max_rounds=1
    )
    assert (ran, len(outcome.outcomes)) == ([], 1)
    not_run = "not run: the round limit (1) was reached"
    assert [c for c in chunks if isinstance(c, ToolResultChunk)] == [
        ToolResultChunk("toolu_lis", not_run, is_error=True),
        ToolResultChunk("toolu_osl", not_run, is_error=True),
    ]
    assert outcome.messages[-1]["role"] == "user"  # every call answered: the history is whole


async def test_a_paused_turn_is_continued(server: str) -> None:
    chunks, outcome = await loop(server, "paused")
    assert [o.stop_reason for o in outcome.outcomes] == ["pause_turn", "end_turn"]
    # Continued with the paused message as it came, encrypted content and all.
    continued = REQUESTS[-1]["messages"]
    assert [m["role"] for m in continued] == ["user", "assistant"]
    assert continued[1]["content"][1]["content"] == [WEB_RESULT]
    assert chunks[-2:] == [TextDeltaChunk("Sunny."), StepFinishChunk("stop")]


async def test_tool_result_message_refuses_a_call_without_a_result() -> None:
    async def run(controller: RunController) -> None:
        call = ToolCall("toolu_1", "f", "{}", await controller.add_tool_call("f", "toolu_1"))
        with pytest.raises(UsageError, match=r"tool call 'f' \(toolu_1\) has no result"):
            tool_result_message([call])

    await collect(run)


# -- failures ------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(MALFORMED))
async def test_a_malformed_stream_fails_the_run_naming_the_problem(
    server: str, scenario: str
) -> None:
    received: list[Chunk] = []
    with pytest.raises(MessageStreamError, match=MALFORMED[scenario][1]) as failure:
        await pipe(server, scenario, received)
    assert received[-1] == ErrorChunk(str(failure.value))
    assert not any(isinstance(c, StepFinishChunk) for c in received)


async def test_an_error_event_mid_stream_fails_the_run_with_its_message(server: str) -> None:
    received: list[Chunk] = []
    with pytest.raises(anthropic.APIStatusError, match="Overloaded") as failure:
        await pipe(server, "error-event", received)
    assert received[1:] == [TextDeltaChunk("Part"), ErrorChunk(str(failure.value))]
    assert failure.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert failure.value.__notes__ == [f"while streaming a message of 'fake-model' from {server}"]


async def test_a_connection_broken_mid_stream_fails_the_run(server: str) -> None:
    received: list[Chunk] = []
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete"):
        await pipe(server, "drop", received)
    assert isinstance(received[-1], ErrorChunk)
    assert TextDeltaChunk("Part") in received


async def test_a_server_that_is_down_fails_the_run_at_once() -> None:
    with socket.socket() as bound_not_listening:  # connecting to it is refused
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        received: list[Chunk] = []
        with anyio.fail_after(10), pytest.raises(anthropic.APIConnectionError):
            await pipe(f"http://127.0.0.1:{port}", "everything", received)
    assert received == [ErrorChunk("Connection error.")]


@pytest.mark.parametrize("how", ["consumer leaves", "outer scope cancelled"])
async def test_cancelling_the_run_aborts_the_request_to_the_model(server: str, how: str) -> None:
    token = uuid.uuid4().hex
    cancelled = CANCELLED[token] = threading.Event()
    closed = threading.Event()

    async def run(controller: RunController) -> None:
        try:
            await run_message(
                controller,
                claude,
                model="fake-model",
                messages=[user(f"hang:{token}")],
                max_tokens=9,
            )
        finally:
            closed.set()

    # The client outlives the run: only the adapter can close the connection.
    async with client(server) as claude:
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async with create_run(run) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, TextDeltaChunk):
                        if how == "consumer leaves":
                            break
                        scope.cancel()
        assert closed.is_set()
        assert await anyio.to_thread.run_sync(cancelled.wait, 10), "the server kept generating"


def test_a_data_stream_front_end_sees_the_piped_message(server: str) -> None:
    # Node's assistant-stream decoder reads a chat endpoint that pipes the model.
    output = decode("data-stream", url=f"{server}/chat", post="{}")
    assert output["warnings"] == []
    message = output["message"]
    web_result = {key: value for key, value in WEB_RESULT.items() if key != "encrypted_content"}
    assert summarize(message["parts"]) == [
        ("reasoning", "Search first, then the tool.", None),
        ("tool-call", "web_search", {"query": "Lisbon weather"}, [web_result], False, None),
        ("source", "https://weather.example/lisbon", "Lisbon weather", None),
        ("text", "Lisbon is sunny.", None),
        ("tool-call", "get_weather", {"city": "Oslo"}, None, None, None),
    ]
    assert message["status"] == {"type": "requires-action", "reason": "tool-calls"}
    [step] = message["metadata"]["steps"]
    assert step["usage"] == {"inputTokens": 125, "outputTokens": 42}
