"""A model's streamed answer piped into a run, the tool it asked for run, the model asked again.

Run it with:  uv run --extra openai python examples/openai_adapter.py

It needs no network: it starts a fake OpenAI-compatible model server in this
process (a run served as ``OpenAIStreamResponse`` by hypercorn on Trio, on a
free port). To ask a real one instead, set ``OPENAI_BASE_URL`` (and
``OPENAI_API_KEY``, and ``OPENAI_MODEL``, by default ``gpt-4o-mini``).
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

import trio
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import RunController, create_run, serve
from trio_stream.adapters.openai import ToolCall, run_chat_completion
from trio_stream.asgi import OpenAIStreamResponse
from trio_stream.formats.openai_stream import OpenAIStreamEncoder

TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current temperature in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


async def get_weather(city: str) -> dict[str, Any]:
    await trio.sleep(0.1)  # stands in for a weather API
    return {"city": city, "celsius": 24}


async def run_tool(call: ToolCall, messages: list[ChatCompletionMessageParam]) -> None:
    result = await get_weather(**call.args)
    call.controller.set_response(result)  # the front-end sees the result
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})


async def assistant(client: AsyncOpenAI, model: str, controller: RunController) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the weather in Lisbon?"}
    ]
    for _ in range(5):  # a bound on the model's tool rounds
        outcome = await run_chat_completion(
            controller, client, model=model, messages=messages, tools=TOOLS
        )
        if not outcome.tool_calls:
            return
        messages.append(outcome.assistant_message())
        # The calls of one answer run in parallel; all are done after the block.
        async with controller.open_substream() as tools:
            for call in outcome.tool_calls:
                tools.start_soon(run_tool, call, messages)


# -- the fake model ------------------------------------------------------------


async def fake_model(request: Request) -> OpenAIStreamResponse:
    body = await request.json()
    last = body["messages"][-1]

    async def answer(controller: RunController) -> None:
        if last["role"] == "tool":
            result = json.loads(last["content"])
            controller.append_text(f"It is {result['celsius']} °C in {result['city']}.")
            controller.add_step_finish("stop", input_tokens=60, output_tokens=9)
            return
        controller.append_reasoning("The user wants the weather; I have a tool for that.")
        controller.append_text("Let me check.")
        call = await controller.add_tool_call("get_weather")
        for piece in ('{"city"', ': "Lis', 'bon"}'):
            call.append_args_text(piece)
            await trio.sleep(0.01)
        controller.add_step_finish("tool-calls", input_tokens=50, output_tokens=20)

    include_usage = bool(body.get("stream_options", {}).get("include_usage"))
    encoder = OpenAIStreamEncoder(model=body["model"], include_usage=include_usage)
    return OpenAIStreamResponse(create_run(answer), encoder=encoder)


FAKE_MODEL = Starlette(routes=[Route("/v1/chat/completions", fake_model, methods=["POST"])])


async def main() -> None:
    async with trio.open_nursery() as nursery:
        base_url = os.environ.get("OPENAI_BASE_URL")
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        if base_url is None:
            urls = await nursery.start(partial(serve, FAKE_MODEL, port=0))
            base_url = urls[0] + "/v1"
        api_key = os.environ.get("OPENAI_API_KEY", "unused by the fake model")
        async with (
            AsyncOpenAI(base_url=base_url, api_key=api_key) as client,
            create_run(partial(assistant, client, model)) as chunks,
        ):
            async for chunk in chunks:
                print(f"{chunk.type:16} {chunk}")
        nursery.cancel_scope.cancel()  # stop the fake model's server


if __name__ == "__main__":
    trio.run(main)
