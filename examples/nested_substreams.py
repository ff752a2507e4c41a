"""Sub-streams nested three deep, each level's tools running in parallel, printed as a tree.

Run it with:  uv run python examples/nested_substreams.py

A tool can open a sub-stream: chunks written through it carry the tool
call's id as their parent id, so a front-end shows them inside that call.
The sub-stream has a nursery of its own; leaving its block waits for the
tools started in it, and cancelling the run cancels every level at once.
"""

from __future__ import annotations

import trio

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.chunks import Chunk, TextDeltaChunk, ToolCallBeginChunk, ToolResultChunk


async def read_page(tool: ToolCallController) -> str:
    await trio.sleep(0.1)
    return f"{tool.args['page']}: read"


async def read_book(tool: ToolCallController) -> str:
    async with tool.open_substream() as book:
        book.append_text(f"Reading {tool.args['book']}, two pages at a time. ")
        for page in (1, 2):
            book.spawn_tool_call("read_page", read_page, args={"page": page})
    return f"{tool.args['book']}: done"


async def survey(tool: ToolCallController) -> str:
    async with tool.open_substream() as shelf:
        shelf.append_text("Two books on the shelf. ")
        for book in ("Trio", "Anyio"):
            shelf.spawn_tool_call("read_book", read_book, args={"book": book})
    return "survey done"


async def run(controller: RunController) -> None:
    controller.append_text("Surveying the library. ")
    async with controller.open_substream() as step:
        step.spawn_tool_call("survey", survey, args={"topic": "concurrency"})
    controller.append_text("Finished.")


def depth(chunk: Chunk, parents: dict[str, str | None]) -> int:
    """How many tool calls enclose ``chunk``, following parent ids upward."""
    parent = getattr(chunk, "parent_id", None)
    level = 0
    while parent is not None:
        level += 1
        parent = parents.get(parent)
    return level


async def main() -> None:
    parents: dict[str, str | None] = {}  # tool call id -> its parent id
    levels: dict[str, int] = {}  # tool call id -> how deep it is
    async with create_run(run) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, ToolCallBeginChunk):
                parents[chunk.tool_call_id] = chunk.parent_id
                levels[chunk.tool_call_id] = depth(chunk, parents)
                print("  " * levels[chunk.tool_call_id] + f"call {chunk.tool_name}")
            elif isinstance(chunk, ToolResultChunk):
                print("  " * levels[chunk.tool_call_id] + f"result {chunk.result!r}")
            elif isinstance(chunk, TextDeltaChunk):
                print("  " * depth(chunk, parents) + f"text {chunk.text_delta!r}")


if __name__ == "__main__":
    trio.run(main)
