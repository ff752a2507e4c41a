"""OpenAIStreamResponse, read by the official ``openai`` client over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx2  # the HTTP library of the openai client
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import OpenAIStreamResponse
from trio_stream.chunks import (
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    StepFinishChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats.openai_stream import OpenAIStreamEncoder

from ..openai_warnings import ignore_openai_client_warnings
from ..serving import running

pytestmark = [pytest.mark.anyio, ignore_openai_client_warnings]


async def lookup(tool: ToolCallController) -> str:
    await anyio.sleep(0.01)
    return "unused by the client"


async def answer_with_tools(controller: RunController) -> None:
    controller.append_reasoning("Two lookups, in parallel.")
    controller.append_text("Checking ")
    controller.append_text("both…")
    controller.spawn_tool_call("weather", lookup, args={"city": "Lisbon"}, tool_call_id="call_a")
    call = await controller.add_tool_call("search", "call_b")
    for piece in ('{"query": ', '"trio ', 'nurseries"}'):
        call.append_args_text(piece)
        await anyio.lowlevel.checkpoint()
    call.set_response(["a result the client does not see"])
    async with controller.open_substream("call_b") as nested:
        nested.append_text("nested text is not part of the message")
    controller.add_step_finish("tool-calls", input_tokens=12, output_tokens=30)


async def plain_answer(controller: RunController) -> None:
    for word in ("Olá, ", "mundo 🌍 ", "— ", "x" * 100_000):
        controller.append_text(word)
        await anyio.lowlevel.checkpoint()
    controller.add_step_finish("stop", input_tokens=3, output_tokens=4)


async def cut_short(controller: RunController) -> None:
    controller.append_text("The answer is")
    controller.add_step_finish("length", input_tokens=1, output_tokens=2)


async def failing(controller: RunController) -> None:
    controller.append_text("Starting")
    await anyio.sleep(0.01)
    raise RuntimeError("upstream model unavailable")


SCENARIOS = {
    "tools": answer_with_tools,
    "plain": plain_answer,
    "length": cut_short,
    "failing": failing,
}


async def chat_completions(request: Request) -> OpenAIStreamResponse:
    body = await request.json()
    callback = SCENARIOS[body["messages"][-1]["content"]]
    include_usage = bool(body.get("stream_options", {}).get("include_usage"))
    encoder = OpenAIStreamEncoder(model=body["model"], include_usage=include_usage)
    return OpenAIStreamResponse(create_run(callback), encoder=encoder)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(APP) as url:
        yield url + "/v1"


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


APP = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


async def stream(
    base_url: str, scenario: str, http_client: Any = None, **options: Any
) -> dict[str, Any]:
    """Accumulate a streamed completion the way an application would."""
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="unused", max_retries=0, http_client=http_client
    )
    text, reasoning, finish, usage = "", "", None, None
    calls: dict[int, dict[str, str]] = {}
    async with client:
        completion = await client.chat.completions.create(
            model="local-model",
            messages=[{"role": "user", "content": scenario}],
            stream=True,
            **options,
        )
        async for chunk in completion:
            assert chunk.model == "local-model"
            if chunk.usage is not None:
                usage = chunk.usage
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            delta = choice.delta
            text += delta.content or ""
            reasoning += getattr(delta, "reasoning_content", None) or ""
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                assert call.function is not None
                entry["id"] += call.id or ""
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    return {"text": text, "reasoning": reasoning, "calls": calls, "finish": finish, "usage": usage}


async def test_text_reasoning_and_parallel_tool_calls(base_url: str) -> None:
    result = await stream(base_url, "tools")
    assert result["text"] == "Checking both…"
    assert result["reasoning"] == "Two lookups, in parallel."
    assert result["calls"] == {
        0: {"id": "call_a", "name": "weather", "arguments": '{"city":"Lisbon"}'},
        1: {"id": "call_b", "name": "search", "arguments": '{"query": "trio nurseries"}'},
    }
    assert json.loads(result["calls"][1]["arguments"]) == {"query": "trio nurseries"}
    assert result["finish"] == "tool_calls"
    assert result["usage"] is None  # not asked for


async def test_unicode_long_deltas_and_usage(base_url: str) -> None:
    result = await stream(base_url, "plain", stream_options={"include_usage": True})
    assert result["text"] == "Olá, mundo 🌍 — " + "x" * 100_000
    assert result["finish"] == "stop"
    assert result["calls"] == {}
    usage = result["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 4, 7)


async def test_a_step_cut_short_finishes_with_length(base_url: str) -> None:
    result = await stream(base_url, "length")
    assert result["finish"] == "length"


async def test_a_failing_run_raises_an_api_error_in_the_client(base_url: str) -> None:
    with pytest.raises(openai.APIError, match="upstream model unavailable"):
        await stream(base_url, "failing")


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_in_process_on_any_backend(anyio_backend: str) -> None:
    # The openai client's own HTTP library, calling the app in process.
    transport = httpx2.ASGITransport(app=APP)
    async with httpx2.AsyncClient(transport=transport) as http_client:
        result = await stream("http://app/v1", "tools", http_client=http_client)
    assert result["text"] == "Checking both…"
    assert [call["name"] for call in result["calls"].values()] == ["weather", "search"]
    assert result["finish"] == "tool_calls"


def test_encoder_chunks_and_finish_reasons() -> None:
    encoder = OpenAIStreamEncoder(model="m")
    body = (
        encoder.encode(
            [
                ReasoningDeltaChunk("r"),
                TextDeltaChunk("t"),
                TextDeltaChunk("nested", parent_id="call_x"),
                ReasoningPartStartChunk("a summary has no place"),
                ToolCallBeginChunk("call_x", "f"),
                ToolCallDeltaChunk("call_x", "{"),
                ToolCallArgsTextFinishChunk("call_x", "}"),  # only the text is sent
                ToolCallArgsTextFinishChunk("call_x"),
                ToolResultChunk("call_x", 1),
                ToolCallBeginChunk("call_y", "g", parent_id="call_x"),
                ToolCallDeltaChunk("call_y", "{}"),
                StepFinishChunk("stop", 1, 1),
            ]
        )
        + encoder.finish()
    )
    events = [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    deltas = [json.loads(e)["choices"][0]["delta"] for e in events[:-1]]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "r"},
        {"content": "t"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_x",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
        {},
    ]
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "tool_calls"
    # An empty run is still a well-formed completion.
    empty = OpenAIStreamEncoder().finish()
    first = json.loads(empty.split(b"\n\n")[0].removeprefix(b"data: "))
    assert first["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant"},
        "logprobs": None,
        "finish_reason": "stop",
    }
