"""Runs that exercise every kind of chunk, shared by the wire-format tests.

Each scenario is a run callback; the interop tests serve them over HTTP and
decode them with the official clients, the encoder tests check their bytes.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from trio_stream import RunController, ToolCallController
from trio_stream.asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    OpenAIStreamResponse,
    RunResponse,
    UIMessageStreamResponse,
)

__all__ = ["RESPONSES", "SCENARIOS"]

RESPONSES: dict[str, type[RunResponse]] = {
    "data-stream": DataStreamResponse,
    "assistant-transport": AssistantTransportResponse,
    "ui-message-stream": UIMessageStreamResponse,
    "openai": OpenAIStreamResponse,
}
"""Each format's response, by the name the decoders use."""


async def text(controller: RunController) -> None:
    for piece in ("Hello", ", ", "world", "!"):
        controller.append_text(piece)
        await anyio.lowlevel.checkpoint()


async def _weather(tool: ToolCallController) -> dict[str, object]:
    await anyio.sleep(0.02)
    return {"city": tool.args["city"], "celsius": 21}


async def _failing_tool(tool: ToolCallController) -> None:
    await anyio.sleep(0.01)
    raise LookupError("no such station")


async def _research(tool: ToolCallController) -> str:
    async with tool.open_substream() as nested:
        nested.append_text("Reading ")
        await anyio.sleep(0.01)
        nested.append_text("sources")
        nested.add_file(b"hi", "text/plain")
        nested.add_data({"pages": 3}, name="progress")
        nested.spawn_tool_call("fetch", _fetch, args={"url": "https://example.org"})
    return "summary"


async def _fetch(tool: ToolCallController) -> str:
    await anyio.sleep(0.01)
    return "<html>"


async def everything(controller: RunController) -> None:
    """Reasoning, text, parallel tools (one nested, one failing), and the rest."""
    controller.add_step_start("step-1")
    controller.append_reasoning("Let me ")
    controller.append_reasoning("think.")
    controller.append_text("Checking ")
    controller.append_text("three things.")
    # Two calls whose arguments stream in pieces, interleaved; results out of order.
    first = await controller.add_tool_call("search", "call_s1")
    second = await controller.add_tool_call("search", "call_s2")
    for piece_1, piece_2 in zip(
        ['{"q": ', '"tr', 'io"}'], ['{"q": ', '"any', 'io"}'], strict=True
    ):
        first.append_args_text(piece_1)
        second.append_args_text(piece_2)
        await anyio.lowlevel.checkpoint()
    second.set_response(["anyio docs"])
    first.set_response(["trio docs"])
    controller.spawn_tool_call("weather", _weather, args={"city": "Lisbon"}, tool_call_id="call_w")
    controller.spawn_tool_call("research", _research, args={"topic": "x"}, tool_call_id="call_r")
    controller.spawn_tool_call(
        "station", _failing_tool, args={}, tool_call_id="call_f", errors_as_result=True
    )
    controller.state = {"progress": "running", "log": ""}
    controller.append_state_text(["log"], "started")
    await anyio.sleep(0.1)
    controller.add_source("src-1", "https://trio.readthedocs.io", "Trio")
    controller.add_file("aGVsbG8=", "text/plain")
    controller.add_data({"kind": "chart", "points": [1, 2, 3]})
    controller.add_annotations([{"note": "checked"}])
    controller.state["progress"] = "done"
    controller.append_text('Done: ünïcødé 🌍 and "quotes"\nnew line')
    controller.add_step_finish("stop", input_tokens=10, output_tokens=20)


async def long_delta(controller: RunController) -> None:
    controller.append_text("\u03b1" * 200_000)  # 400 kB of UTF-8
    controller.append_text("end")


async def failing(controller: RunController) -> None:
    controller.append_text("Before the error")
    await anyio.sleep(0.01)
    raise RuntimeError("the model is down")


async def _writer(tool: ToolCallController) -> str:
    async with tool.open_substream() as nested:
        for i in range(3):
            nested.append_text(f"{tool.args['name']}{i} ")
            await anyio.sleep(0.005)
    return "written"


async def parallel_text(controller: RunController) -> None:
    """Two sub-streams write text while the run itself does."""
    controller.append_text("Comparing: ")
    controller.spawn_tool_call("writer", _writer, args={"name": "a"}, tool_call_id="call_a")
    controller.spawn_tool_call("writer", _writer, args={"name": "b"}, tool_call_id="call_b")
    for word in ("while ", "they ", "work"):
        controller.append_text(word)
        await anyio.sleep(0.004)


SCENARIOS = {
    "parallel": parallel_text,
    "text": text,
    "everything": everything,
    "long": long_delta,
    "failing": failing,
}
