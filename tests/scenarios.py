"""Runs that exercise every kind of chunk, shared by the wire-format tests.

Each scenario is a run callback; the interop tests serve them over HTTP and
decode them with the official clients, the encoder tests check their bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from trio_stream.chunks import ToolCallArgsTextFinishChunk

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


async def _last_piece(tool_call_id: str, text: str) -> AsyncIterator[ToolCallArgsTextFinishChunk]:
    yield ToolCallArgsTextFinishChunk(tool_call_id, text)


async def planned(controller: RunController) -> None:
    """A summarized reasoning part, and tool calls whose arguments end before their result.

    One call's last piece of arguments rides on their end (from a copied
    stream), one call ends arguments it never had, and one is still without
    arguments when the step ends. The results come after some text, as a
    user's answers would.
    """
    controller.add_step_start("step-1")
    controller.add_reasoning_part("Planning the lookup")
    controller.append_reasoning("First the station, ")
    controller.append_reasoning("then the time.")
    confirm = await controller.add_tool_call("confirm", "call_c")
    confirm.append_args_text('{"station": "Lis')
    async with controller.open_substream() as copied:
        copied.add_stream(_last_piece("call_c", 'bon"}'))
    now = await controller.add_tool_call("now", "call_n")
    now.close()
    await controller.add_tool_call("later", "call_l")
    controller.append_text("Waiting for your answers.")
    controller.add_step_finish("tool-calls", input_tokens=3, output_tokens=4)
    await anyio.sleep(0.01)
    controller.add_tool_result("call_c", "confirmed")
    controller.add_tool_result("call_n", "12:00")
    controller.add_tool_result("call_l", "later done")


SCENARIOS = {
    "planned": planned,
    "parallel": parallel_text,
    "text": text,
    "everything": everything,
    "long": long_delta,
    "failing": failing,
}
