"""Parallel tool calls with a nested sub-stream, printed as they stream.

Run it with:  uv run python examples/parallel_tools.py
"""

from __future__ import annotations

import trio

from trio_stream import RunController, ToolCallController, create_run


async def get_weather(tool: ToolCallController) -> dict[str, object]:
    await trio.sleep(0.2)  # stands in for an HTTP call
    return {"city": tool.args["city"], "celsius": 21}


async def fetch(tool: ToolCallController) -> str:
    await trio.sleep(0.1)
    return f"<contents of {tool.args['url']}>"


async def research(tool: ToolCallController) -> str:
    # A tool with a stream of its own: its chunks carry the call's id as parent.
    async with tool.open_substream() as sub:
        sub.append_text("Reading two sources… ")
        sub.spawn_tool_call("fetch", fetch, args={"url": "https://example.org/a"})
        sub.spawn_tool_call("fetch", fetch, args={"url": "https://example.org/b"})
    return "both sources read"


async def run(controller: RunController) -> None:
    controller.append_text("Working on it. ")
    async with controller.open_substream() as step:
        step.spawn_tool_call("get_weather", get_weather, args={"city": "Paris"})
        step.spawn_tool_call("get_weather", get_weather, args={"city": "Rome"})
        step.spawn_tool_call("research", research, args={"topic": "trio"})
    # Every tool has finished here.
    controller.append_text("All three tools are done.")


async def main() -> None:
    async with create_run(run) as chunks:
        async for chunk in chunks:
            print(f"{chunk.type:16} {chunk}")


if __name__ == "__main__":
    trio.run(main)
