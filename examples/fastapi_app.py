"""A FastAPI app with a chat endpoint per wire format, CORS for a browser front-end.

Run it with:  uv run --group dev python examples/fastapi_app.py

It serves on http://127.0.0.1:8000 with hypercorn on Trio. Each endpoint
takes the body its front-end posts (FastAPI validates it with the request
models: a wrong body is a 422 naming the field) and streams the same run:

    POST /api/data-stream          assistant-ui, useDataStreamRuntime
    POST /api/assistant-transport  assistant-ui, useAssistantTransportRuntime
    POST /api/ui-message-stream    the AI SDK's useChat
    POST /v1/chat/completions      OpenAI-compatible clients

Try:  curl -N localhost:8000/api/data-stream -H 'content-type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "Weather in Oslo?"}]}'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.middleware.cors import CORSMiddleware

from trio_stream import RunController, ToolCallController, create_run, serve
from trio_stream.asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    OpenAIStreamResponse,
    UIMessageStreamResponse,
)
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.requests import (
    AssistantTransportRequest,
    DataStreamRequest,
    UIMessageStreamRequest,
)
from trio_stream.requests.assistant_transport import AddMessageCommand
from trio_stream.requests.data_stream import TextContent

app = FastAPI(title="trio-stream example")

# A browser front-end served from another origin. Name the origins: "*" must
# never be combined with credentials (browsers refuse it, and it would let
# any site read your users' chats). Expose the headers clients check.
app.add_middleware(
    CORSMiddleware,
    allow_origins=["http://localhost:3000"],
    allow_credentials=True,
    allow_methods=["POST"],
    allow_headers=["content-type", "authorization"],
    expose_headers=["x-vercel-ai-data-stream", "x-vercel-ai-ui-message-stream"],
)


async def get_weather(tool: ToolCallController) -> dict[str, Any]:
    await trio.sleep(0.2)  # an HTTP call to a weather service, in a real app
    return {"city": tool.args["city"], "celsius": 12}


def answer(question: str) -> Any:
    """The run every endpoint streams: a tool call, then the answer."""

    async def run(controller: RunController) -> None:
        controller.append_text(f"You asked: {question} ")
        async with controller.open_substream() as step:
            weather = step.spawn_tool_call("get_weather", get_weather, args={"city": "Oslo"})
        # Leaving the block waited for the tool.
        assert weather.response is not None
        controller.append_text(f"It is {weather.response.result['celsius']} °C in Oslo.")

    return create_run(run)


def last_user_text(texts: Sequence[tuple[str, str]]) -> str:
    return next((text for role, text in reversed(texts) if role == "user"), "")


@app.post("/api/data-stream")
async def data_stream(body: DataStreamRequest) -> DataStreamResponse:
    texts = [
        (
            m.role,
            m.content
            if isinstance(m.content, str)
            else "".join(part.text for part in m.content if isinstance(part, TextContent)),
        )
        for m in body.messages
        if m.role != "tool"
    ]
    return DataStreamResponse(answer(last_user_text(texts)))


@app.post("/api/assistant-transport")
async def assistant_transport(body: AssistantTransportRequest) -> AssistantTransportResponse:
    texts = [
        (command.message.role, command.message.text)
        for command in body.commands
        if isinstance(command, AddMessageCommand)
    ]
    return AssistantTransportResponse(answer(last_user_text(texts)))


@app.post("/api/ui-message-stream")
async def ui_message_stream(body: UIMessageStreamRequest) -> UIMessageStreamResponse:
    texts = [(message.role, message.text) for message in body.messages]
    return UIMessageStreamResponse(answer(last_user_text(texts)))


class ChatCompletionRequest(BaseModel):
    model: str
    messages: list[dict[str, Any]]
    stream: bool = True


@app.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest) -> OpenAIStreamResponse:
    texts = [(m.get("role", ""), str(m.get("content", ""))) for m in body.messages]
    encoder = OpenAIStreamEncoder(model=body.model)
    return OpenAIStreamResponse(answer(last_user_text(texts)), encoder=encoder)


if __name__ == "__main__":
    trio.run(serve, app)
