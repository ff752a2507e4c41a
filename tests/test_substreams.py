"""Sub-streams: child controllers with their own nurseries, nested to any depth."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from tests.conftest import collect
from trio_stream import RunController, ToolCallController, ToolCallError
from trio_stream.chunks import (
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolResultChunk,
)

pytestmark = pytest.mark.anyio


async def test_substream_chunks_carry_their_parent_id_at_every_depth() -> None:
    async def inner_tool(call: ToolCallController) -> str:
        async with call.open_substream() as sub:
            sub.append_text("innermost")
        return "inner done"

    async def outer_tool(call: ToolCallController) -> str:
        async with call.open_substream() as sub:
            sub.append_reasoning("thinking")
            sub.spawn_tool_call("inner", inner_tool, tool_call_id="call_inner")
        return "outer done"

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("outer", outer_tool, tool_call_id="call_outer")

    assert await collect(run) == [
        ToolCallBeginChunk("call_outer", "outer"),
        ReasoningDeltaChunk("thinking", parent_id="call_outer"),
        ToolCallBeginChunk("call_inner", "inner", parent_id="call_outer"),
        TextDeltaChunk("innermost", parent_id="call_inner"),
        ToolResultChunk("call_inner", "inner done"),
        ToolResultChunk("call_outer", "outer done"),
    ]


async def test_with_parent_id_tags_chunks_and_shares_the_nursery() -> None:
    async def run(controller: RunController) -> None:
        tagged = controller.with_parent_id("group-1")
        assert tagged.parent_id == "group-1"
        tagged.append_text("a")
        tagged.add_source("s1", "https://example.org", "Example")
        controller.append_text("b")

    chunks = await collect(run)
    assert chunks[0] == TextDeltaChunk("a", parent_id="group-1")
    assert getattr(chunks[1], "parent_id", None) == "group-1"
    assert chunks[2] == TextDeltaChunk("b")


async def test_with_parent_id_shares_everything_but_the_parent_id() -> None:
    async def run(controller: RunController) -> None:
        controller.state = {"n": 0}
        tagged = controller.with_parent_id("p1")
        tagged.state["n"] = 1  # the same state
        assert controller.state["n"] == 1
        assert tagged.cancelled_event is controller.cancelled_event
        await tagged.add_tool_call("t", "call_1")
        with pytest.raises(ToolCallError, match="used already"):  # the same tool calls
            await controller.add_tool_call("t", "call_1")
        tagged.start_soon(anyio.sleep, 0)  # the same nursery
        tagged.append_text("nested")

    chunks = await collect(run)
    assert chunks[-1] == TextDeltaChunk("nested", parent_id="p1")


async def test_with_parent_id_needs_no_event_loop() -> None:
    # Deriving a controller is plain bookkeeping: a worker thread may do it.
    async def run(controller: RunController) -> None:
        tagged = await anyio.to_thread.run_sync(controller.with_parent_id, "p2")
        assert tagged.parent_id == "p2"
        tagged.append_text("from a derived controller")

    assert await collect(run) == [TextDeltaChunk("from a derived controller", "p2")]


async def test_a_substream_without_a_parent_id_inherits_its_parents() -> None:
    async def run(controller: RunController) -> None:
        async with controller.with_parent_id("p").open_substream() as sub:
            sub.append_text("x")

    assert await collect(run) == [TextDeltaChunk("x", parent_id="p")]


async def test_leaving_a_substream_waits_for_its_tasks() -> None:
    order: list[str] = []

    async def child(sub: RunController) -> None:
        await anyio.sleep(0.02)
        order.append("child done")

    async def run(controller: RunController) -> None:
        async with controller.open_substream("s") as sub:
            sub.start_soon(child, sub)
        order.append("substream closed")

    await collect(run)
    assert order == ["child done", "substream closed"]


async def test_cancelling_a_substream_cancels_every_descendant_and_nothing_else() -> None:
    events: list[str] = []

    async def leaf(sub: RunController, label: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append(f"{label} cancelled={sub.is_cancelled}")

    async def run(controller: RunController) -> None:
        async with controller.open_substream("a") as a:
            a.start_soon(leaf, a, "a")
            async with a.open_substream("b") as b:
                b.start_soon(leaf, b, "b")
                await anyio.sleep(0.01)
                a.cancel()
                await anyio.sleep_forever()
        events.append(f"root cancelled={controller.is_cancelled}")
        controller.append_text("the run goes on")

    chunks = await collect(run)
    assert sorted(events[:2]) == ["a cancelled=True", "b cancelled=True"]
    assert events[2] == "root cancelled=False"
    assert chunks == [TextDeltaChunk("the run goes on")]


async def test_cancelling_the_run_reaches_the_deepest_substream() -> None:
    reached = anyio.Event()
    saw_signal: list[bool] = []

    async def deep(sub: RunController) -> None:
        async with sub.open_substream("d2") as d2:
            reached.set()
            await d2.cancelled_event.wait()
            saw_signal.append(d2.is_cancelled)

    async def run(controller: RunController) -> None:
        async with controller.open_substream("d1") as d1:
            d1.start_soon(deep, d1)
            await reached.wait()
            with anyio.CancelScope(shield=True):
                controller.cancel()
                await anyio.sleep(0.01)

    assert await collect(run) == []
    assert saw_signal == [True]
