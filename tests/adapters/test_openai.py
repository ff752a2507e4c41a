"""The OpenAI adapter, fed by the real ``openai`` client over real HTTP.

The model server is a fake one, served by hypercorn on Trio in a thread of
the test process: its ``/v1/chat/completions`` streams a run of its own as
``OpenAIStreamResponse`` (text, reasoning, parallel tool calls with streamed
arguments, usage), and its ``/raw/v1/chat/completions`` streams scripted
chunk sequences that no well-behaved encoder produces (arguments before the
name, ids that come late, malformed streams). The client side runs on Trio
and on asyncio.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionUserMessageParam
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, create_run
from trio_stream.adapters.openai import (
    ChatCompletionOutcome,
    ChatCompletionStreamError,
    run_chat_completion,
    stream_chat_completion,
)
from trio_stream.asgi import DataStreamResponse, OpenAIStreamResponse
from trio_stream.chunks import (
    Chunk,
    ErrorChunk,
    FinishReason,
    ReasoningDeltaChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats.openai_stream import OpenAIStreamEncoder

from ..clients import decode, summarize
from ..conftest import collect
from ..openai_warnings import ignore_openai_client_warnings
from ..serving import running

pytestmark = [pytest.mark.anyio, ignore_openai_client_warnings]

EXAMPLE = Path(__file__).parents[2] / "examples" / "openai_adapter.py"

# -- the fake model server ----------------------------------------------------

REQUESTS: list[dict[str, Any]] = []
"""The body of every request the fake model received, in order."""

CANCELLED: dict[str, threading.Event] = {}
"""Set by the ``hang:<token>`` scenario when the server cancels its run."""


async def tools(controller: RunController) -> None:
    controller.append_reasoning("Two lookups, ")
    controller.append_reasoning("in parallel.")
    controller.append_text("Checking ")
    controller.append_text("both…")
    weather = await controller.add_tool_call("get_weather", "call_w")
    search = await controller.add_tool_call("search", "call_s")
    pieces = [
        (weather, '{"city": '),
        (search, '{"q": '),
        (weather, '"Lisbon"}'),
        (search, '"trio"}'),
    ]
    for call, piece in pieces:
        call.append_args_text(piece)
        await anyio.lowlevel.checkpoint()
    controller.add_step_finish("tool-calls", input_tokens=12, output_tokens=30)


async def cut_short(controller: RunController) -> None:
    controller.append_text("The answer is")
    controller.add_step_finish("length", input_tokens=1, output_tokens=2)


async def failing(controller: RunController) -> None:
    controller.append_text("Starting")
    await anyio.sleep(0.01)
    raise RuntimeError("the model crashed")


async def hang(cancelled: threading.Event, controller: RunController) -> None:
    controller.append_text("Thinking")
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        cancelled.set()
        raise


async def weather_report(results: dict[str, Any], controller: RunController) -> None:
    controller.append_text(f"It is {results['call_w']['celsius']} °C in Lisbon.")
    controller.add_step_finish("stop", input_tokens=40, output_tokens=9)


SCENARIOS = {"tools": tools, "length": cut_short, "failing": failing}


async def chat_completions(request: Request) -> OpenAIStreamResponse:
    body = await request.json()
    REQUESTS.append(body)
    last = body["messages"][-1]
    callback: Callable[[RunController], Coroutine[Any, Any, None]]
    if last["role"] == "tool":
        results = {
            message["tool_call_id"]: json.loads(message["content"])
            for message in body["messages"]
            if message["role"] == "tool"
        }
        callback = partial(weather_report, results)
    elif last["content"].startswith("hang:"):
        callback = partial(hang, CANCELLED[last["content"].removeprefix("hang:")])
    else:
        callback = SCENARIOS[last["content"]]
    include_usage = bool(body.get("stream_options", {}).get("include_usage"))
    encoder = OpenAIStreamEncoder(model=body["model"], include_usage=include_usage)
    return OpenAIStreamResponse(create_run(callback), encoder=encoder)


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    index: int = 0,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` as a server sends it."""
    choices = [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish}]
    value = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "raw-model",
        "choices": choices,
    }
    if usage is not None:
        value["usage"] = usage
    return value


def piece(index: int | None, id: str | None = None, **function: str) -> dict[str, Any]:
    """One tool call piece: ``function`` holds its ``name`` and ``arguments``, if any."""
    call: dict[str, Any] = {} if index is None else {"index": index}
    if id is not None:
        call["id"] = id
    if function:
        call["function"] = function
    return call


def calls(*pieces: dict[str, Any]) -> dict[str, Any]:
    return chunk({"tool_calls": list(pieces)})


FINISH = chunk({}, finish="tool_calls")

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "late-pieces": [
        calls(piece(0, "call_1", arguments='{"q"')),  # arguments before the name
        calls(piece(1, arguments="{")),  # neither id nor name yet
        calls(piece(0, name="search", arguments=': "trio"')),
        calls(piece(1, "call_2", name="lookup")),
        calls(piece(0, "call_1", arguments="}"), piece(1, arguments="}")),  # id repeated
        FINISH,
    ],
    "reasoning-fields": [
        chunk(  # usage on every chunk, as vLLM's continuous usage stats send it
            {"role": "assistant", "reasoning": "Thinking, ", "content": ""},
            usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        ),
        chunk({"reasoning_content": "still.", "reasoning": "still."}),  # the same text twice
        chunk({"refusal": "I can't help with that."}),
        chunk({}, finish="stop"),
        chunk(usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}),
    ],
    "not-json": [calls(piece(0, "call_1", name="f", arguments='{"city": Lisbon}')), FINISH],
    "no-id": [calls(piece(0, name="search", arguments="{}")), FINISH],
    "no-name": [calls(piece(0, "call_1", arguments="{}")), FINISH],
    "no-id-no-name": [calls(piece(0, arguments="{}")), FINISH],
    "no-index": [calls(piece(None, "call_1", name="search")), FINISH],
    "changed-id": [calls(piece(0, "call_1", name="f")), calls(piece(0, "call_2")), FINISH],
    "changed-name": [calls(piece(0, "call_1", name="f")), calls(piece(0, name="g")), FINISH],
    "same-id": [calls(piece(0, "call_1", name="f")), calls(piece(1, "call_1", name="g")), FINISH],
    "two-choices": [chunk({"content": "a"}), chunk({"content": "b"}, index=1), FINISH],
    "no-finish": [chunk({"content": "The answer is"})],
    "nothing": [],
    "function-call": [chunk({"function_call": {"name": "f", "arguments": "{}"}}), FINISH],
    "reasoning-object": [chunk({"reasoning": {"effort": "high"}}), FINISH],
}


async def raw_chat_completions(request: Request) -> Response:
    body = await request.json()
    name = body["messages"][-1]["content"]
    if name.startswith("finish:"):
        events = [chunk({"content": "x"}, finish=name.removeprefix("finish:"))]
    else:
        events = SCRIPTS[name]
    # One body: the client reads it event by event all the same.
    sse = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
    return Response(sse + b"data: [DONE]\n\n", media_type="text/event-stream")


async def chat(request: Request) -> DataStreamResponse:
    """A chat endpoint that pipes the fake model into a data stream."""
    upstream = f"{request.base_url}v1"

    async def run(controller: RunController) -> None:
        async with client(upstream) as model:
            outcome = await run_chat_completion(
                controller, model, model="fake-model", messages=[user("tools")]
            )
        outcome.tool_calls[0].controller.set_response({"celsius": 24})
        # The search is left for the front-end to run.

    return DataStreamResponse(create_run(run))


APP = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/raw/v1/chat/completions", raw_chat_completions, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running(APP) as url:
        yield url


# -- the client side -------------------------------------------------------------


def client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)


def user(content: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": content}


async def pipe(
    base_url: str, content: str, received: list[Chunk] | None = None, **params: Any
) -> tuple[list[Chunk], ChatCompletionOutcome]:
    """Pipe one completion into a run; return the run's chunks and the outcome.

    Chunks also go to ``received`` as they come, for a test that expects the
    run to fail.
    """
    received = [] if received is None else received
    outcomes: list[ChatCompletionOutcome] = []

    async def run(controller: RunController) -> None:
        async with client(base_url) as model:
            outcomes.append(
                await run_chat_completion(
                    controller, model, model="fake-model", messages=[user(content)], **params
                )
            )

    async with create_run(run) as chunks:
        async for chunk in chunks:
            received.append(chunk)
    return received, outcomes[0]


async def test_text_reasoning_and_interleaved_tool_calls_become_chunks(server: str) -> None:
    chunks, outcome = await pipe(f"{server}/v1", "tools")
    assert outcome.id.startswith("chatcmpl-")
    assert chunks == [
        StepStartChunk(outcome.id),
        ReasoningDeltaChunk("Two lookups, "),
        ReasoningDeltaChunk("in parallel."),
        TextDeltaChunk("Checking "),
        TextDeltaChunk("both…"),
        ToolCallBeginChunk("call_w", "get_weather"),
        ToolCallBeginChunk("call_s", "search"),
        ToolCallDeltaChunk("call_w", '{"city": '),
        ToolCallDeltaChunk("call_s", '{"q": '),
        ToolCallDeltaChunk("call_w", '"Lisbon"}'),
        ToolCallDeltaChunk("call_s", '"trio"}'),
        StepFinishChunk("tool-calls", input_tokens=12, output_tokens=30),
    ]
    assert REQUESTS[-1]["stream"] is True
    assert REQUESTS[-1]["stream_options"] == {"include_usage": True}


async def test_the_outcome_holds_the_calls_for_the_caller_to_run(server: str) -> None:
    _, outcome = await pipe(f"{server}/v1", "tools")
    assert (outcome.model, outcome.finish_reason) == ("fake-model", "tool-calls")
    assert (outcome.text, outcome.reasoning) == ("Checking both…", "Two lookups, in parallel.")
    assert [(call.id, call.name, call.args) for call in outcome.tool_calls] == [
        ("call_w", "get_weather", {"city": "Lisbon"}),
        ("call_s", "search", {"q": "trio"}),
    ]
    assert outcome.tool_calls[1].arguments == '{"q": "trio"}'
    # Nothing was run, so every call is still open for a result.
    assert not any(call.controller.closed for call in outcome.tool_calls)
    assert outcome.usage is not None
    assert (outcome.usage.prompt_tokens, outcome.usage.completion_tokens) == (12, 30)


async def test_a_tool_loop_sends_the_calls_and_results_back(server: str) -> None:
    # What docs/adapters/openai.md shows: run the tool, answer, ask again.
    async def run(controller: RunController) -> None:
        messages: list[Any] = [user("tools")]
        async with client(f"{server}/v1") as model:
            first = await run_chat_completion(
                controller, model, model="fake-model", messages=messages
            )
            messages.append(first.assistant_message())
            for call in first.tool_calls:
                result = {"celsius": 24} if call.name == "get_weather" else ["trio docs"]
                call.controller.set_response(result)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                )
            await run_chat_completion(controller, model, model="fake-model", messages=messages)

    async with create_run(run) as stream:
        chunks = [chunk async for chunk in stream]
    assert REQUESTS[-1]["messages"][1] == {
        "role": "assistant",
        "content": "Checking both…",
        "tool_calls": [
            {
                "id": "call_w",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
            },
            {
                "id": "call_s",
                "type": "function",
                "function": {"name": "search", "arguments": '{"q": "trio"}'},
            },
        ],
    }
    assert [c for c in chunks if isinstance(c, ToolResultChunk)] == [
        ToolResultChunk("call_w", {"celsius": 24}),
        ToolResultChunk("call_s", ["trio docs"]),
    ]
    # Two steps, the second one answering with the tool's result.
    assert [type(c) for c in chunks].count(StepStartChunk) == 2
    assert chunks[-2:] == [
        TextDeltaChunk("It is 24 °C in Lisbon."),
        StepFinishChunk("stop", input_tokens=40, output_tokens=9),
    ]


async def test_params_reach_the_server_and_usage_can_be_turned_off(server: str) -> None:
    chunks, outcome = await pipe(
        f"{server}/v1",
        "length",
        temperature=0.5,
        stream_options={"include_usage": False},
    )
    assert (REQUESTS[-1]["temperature"], REQUESTS[-1]["stream_options"]) == (
        0.5,
        {"include_usage": False},
    )
    assert outcome.usage is None
    assert chunks[1:] == [TextDeltaChunk("The answer is"), StepFinishChunk("length")]


async def test_arguments_and_ids_that_arrive_late_are_held_until_the_call_opens(
    server: str,
) -> None:
    chunks, outcome = await pipe(f"{server}/raw/v1", "late-pieces")
    assert chunks == [
        StepStartChunk("chatcmpl-raw"),
        ToolCallBeginChunk("call_1", "search"),
        ToolCallDeltaChunk("call_1", '{"q": "trio"'),
        ToolCallBeginChunk("call_2", "lookup"),
        ToolCallDeltaChunk("call_2", "{"),
        ToolCallDeltaChunk("call_1", "}"),
        ToolCallDeltaChunk("call_2", "}"),
        StepFinishChunk("tool-calls"),
    ]
    assert [(call.id, call.args) for call in outcome.tool_calls] == [
        ("call_1", {"q": "trio"}),
        ("call_2", {}),
    ]


async def test_reasoning_fields_of_other_servers_and_refusals(server: str) -> None:
    chunks, outcome = await pipe(f"{server}/raw/v1", "reasoning-fields")
    assert chunks == [
        StepStartChunk("chatcmpl-raw"),
        ReasoningDeltaChunk("Thinking, "),
        ReasoningDeltaChunk("still."),
        TextDeltaChunk("I can't help with that."),
        StepFinishChunk("stop", input_tokens=5, output_tokens=7),
    ]
    assert outcome.assistant_message() == {
        "role": "assistant",
        "content": "I can't help with that.",
    }


async def test_arguments_that_are_not_json_are_named_when_read(server: str) -> None:
    _, outcome = await pipe(f"{server}/raw/v1", "not-json")
    [call] = outcome.tool_calls
    assert call.arguments == '{"city": Lisbon}'
    with pytest.raises(
        ValueError, match=r"the arguments of tool call 'f' \(call_1\) are not JSON"
    ):
        _ = call.args


@pytest.mark.parametrize(
    ("sent", "mapped"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool-calls"),
        ("content_filter", "content-filter"),
        ("function_call", "tool-calls"),
        ("end_turn", "other"),
    ],
)
async def test_finish_reasons(server: str, sent: str, mapped: FinishReason) -> None:
    chunks, outcome = await pipe(f"{server}/raw/v1", f"finish:{sent}")
    assert chunks[-1] == StepFinishChunk(mapped)
    assert outcome.finish_reason == mapped


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("no-id", "tool call 0 never got an id"),
        ("no-name", "tool call 0 never got a function name"),
        ("no-id-no-name", "tool call 0 never got an id or a function name"),
        ("no-index", "a tool call piece has no index"),
        ("changed-id", "tool call 0 changed its id from 'call_1' to 'call_2'"),
        ("changed-name", "tool call 0 changed its name from 'f' to 'g'"),
        ("same-id", "tool calls 0 and 1 have the same id 'call_1'"),
        ("two-choices", r"the stream has a choice 1: .* \(n=1\)"),
        ("no-finish", "the stream ended without a finish reason"),
        ("nothing", "the stream ended without a finish reason"),
        ("function-call", r"deprecated way \(delta.function_call\)"),
        ("reasoning-object", "delta.reasoning should be text, not dict"),
    ],
)
async def test_a_malformed_stream_fails_the_run_naming_the_problem(
    server: str, script: str, problem: str
) -> None:
    received: list[Chunk] = []
    with pytest.raises(ChatCompletionStreamError, match=problem) as failure:
        await pipe(f"{server}/raw/v1", script, received)
    assert received[-1] == ErrorChunk(str(failure.value))
    assert not any(isinstance(c, StepFinishChunk) for c in received)


async def test_any_async_iterable_of_chunks_is_piped_and_closed_on_failure() -> None:
    closed: list[bool] = []

    async def completion() -> AsyncIterator[ChatCompletionChunk]:
        try:
            for event in [chunk({"content": "Hi"}), chunk({"content": "!"}, index=1)]:
                yield ChatCompletionChunk.model_validate(event)
            raise AssertionError("read past the malformed chunk")
        finally:
            closed.append(True)

    with pytest.raises(ChatCompletionStreamError, match="choice 1"):
        await collect(partial(stream_chat_completion, stream=completion()))
    assert closed == [True]


async def test_an_api_error_mid_stream_fails_the_run_with_an_error_chunk(server: str) -> None:
    received: list[Chunk] = []
    with pytest.raises(openai.APIError, match="the model crashed") as failure:
        await pipe(f"{server}/v1", "failing", received)
    assert received[1:] == [TextDeltaChunk("Starting"), ErrorChunk("the model crashed")]
    assert f"from {server}/v1/" in failure.value.__notes__[-1]


async def test_a_server_that_is_down_fails_the_run_at_once() -> None:
    with socket.socket() as bound_not_listening:  # connecting to it is refused
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        received: list[Chunk] = []
        with anyio.fail_after(10), pytest.raises(openai.APIConnectionError) as failure:
            await pipe(f"http://127.0.0.1:{port}/v1", "tools", received)
    assert received == [ErrorChunk("Connection error.")]
    assert failure.value.__notes__ == [
        f"while streaming a chat completion of 'fake-model' from http://127.0.0.1:{port}/v1/"
    ]


@pytest.mark.parametrize("how", ["consumer leaves", "outer scope cancelled"])
async def test_cancelling_the_run_aborts_the_request_to_the_model(server: str, how: str) -> None:
    token = uuid.uuid4().hex
    cancelled = CANCELLED[token] = threading.Event()
    closed = threading.Event()

    async def run(controller: RunController) -> None:
        try:
            await run_chat_completion(
                controller, model, model="fake-model", messages=[user(f"hang:{token}")]
            )
        finally:
            closed.set()

    # The client outlives the run: only the adapter can close the connection.
    async with client(f"{server}/v1") as model:
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
    assert summarize(message["parts"]) == [
        ("reasoning", "Two lookups, in parallel.", None),
        ("text", "Checking both…", None),
        ("tool-call", "get_weather", {"city": "Lisbon"}, {"celsius": 24}, False, None),
        ("tool-call", "search", {"q": "trio"}, None, None, None),
    ]
    # The search awaits a result: the message asks the front-end to act.
    assert message["status"] == {"type": "requires-action", "reason": "tool-calls"}
    [step] = message["metadata"]["steps"]
    assert (step["finishReason"], step["usage"]) == (
        "tool-calls",
        {"inputTokens": 12, "outputTokens": 30},
    )


def test_the_example_runs_offline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    lines = result.stdout.splitlines()
    types = [line.split()[0] for line in lines]
    assert types == [
        "step-start",
        "reasoning-delta",
        "text-delta",
        "tool-call-begin",
        *["tool-call-delta"] * 3,
        "step-finish",
        "tool-result",
        "step-start",
        "text-delta",
        "step-finish",
    ]
    assert "tool_name='get_weather'" in lines[3]
    assert "result={'city': 'Lisbon', 'celsius': 24}" in lines[8]
    assert "It is 24 °C in Lisbon." in lines[10]
