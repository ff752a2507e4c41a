"""The reference document's examples, as written, served by hypercorn on Trio.

Each FastAPI example is the document's code with only the package name
changed; the test serves it and reads it with curl.
"""

from __future__ import annotations

import subprocess
import textwrap
from types import ModuleType
from typing import Any

import pytest

from .serving import running

DATA_STREAM_EXAMPLE = """
from fastapi import FastAPI
from trio_stream import create_run
from trio_stream.serialization.data_stream import DataStreamResponse
app = FastAPI()
@app.get("/chat")
async def chat():
    async def run(controller):
        controller.append_text("Hello from FastAPI!")
    return DataStreamResponse(create_run(run))
"""

SSE_EXAMPLE = """
from fastapi import FastAPI
from trio_stream import create_run
from trio_stream.serialization.assistant_transport import AssistantTransportResponse
app = FastAPI()
@app.get("/chat-sse")
async def chat_sse():
    async def run(controller):
        controller.append_text("Streaming over SSE...")
    return AssistantTransportResponse(create_run(run))
"""

ERROR_HANDLING_EXAMPLE = """
from fastapi import FastAPI
from trio_stream import create_run
from trio_stream.serialization.data_stream import DataStreamResponse
app = FastAPI()
def parse_city(text):
    raise ValueError(f"no such city: {text}")
async def run(controller):
    try:
        parse_city("Atlantis")
    except ValueError as e:
        controller.add_error(f"Bad input: {e}")
        return
@app.get("/handled")
async def handled():
    return DataStreamResponse(create_run(run))
"""


def load(source: str) -> Any:
    module = ModuleType("example")
    exec(compile(textwrap.dedent(source), "<reference example>", "exec"), module.__dict__)
    return module.app


def curl(url: str) -> str:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--include", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("source", "path", "content_type", "body"),
    [
        (
            DATA_STREAM_EXAMPLE,
            "/chat",
            "text/plain; charset=utf-8",
            '0:"Hello from FastAPI!"\n'
            'd:{"finishReason":"stop","usage":{"inputTokens":0,"outputTokens":0}}\n',
        ),
        (
            SSE_EXAMPLE,
            "/chat-sse",
            "text/event-stream; charset=utf-8",
            'data: {"type":"part-start","part":{"type":"text"},"path":[]}\n\n'
            'data: {"type":"text-delta","textDelta":"Streaming over SSE...","path":[0]}\n\n'
            'data: {"type":"part-finish","path":[0]}\n\n'
            'data: {"type":"message-finish","finishReason":"stop",'
            '"usage":{"inputTokens":0,"outputTokens":0}}\n\n'
            "data: [DONE]\n\n",
        ),
        (
            ERROR_HANDLING_EXAMPLE,
            "/handled",
            "text/plain; charset=utf-8",
            '3:"Bad input: no such city: Atlantis"\n',
        ),
    ],
)
def test_the_fastapi_examples_stream(source: str, path: str, content_type: str, body: str) -> None:
    with running(load(source)) as url:
        head, _, received = curl(url + path).partition("\n\n")
    assert head.startswith("HTTP/1.1 200")
    assert f"content-type: {content_type}" in head.lower()
    assert received == body
