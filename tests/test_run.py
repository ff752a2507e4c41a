"""create_run: how a run is started, consumed, ended and cleaned up."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from tests.conftest import collect, living_tasks
from trio_stream import RunController, UsageError, create_run
from trio_stream.chunks import TextDeltaChunk

pytestmark = pytest.mark.anyio


async def test_chunks_arrive_in_order_and_the_stream_ends() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("Hello")
        await anyio.lowlevel.checkpoint()
        controller.append_text(", world")

    assert await collect(run) == [TextDeltaChunk("Hello"), TextDeltaChunk(", world")]


async def test_a_run_without_chunks_ends_empty() -> None:
    async def run(controller: RunController) -> None:
        pass

    assert await collect(run) == []


async def test_iterating_a_run_without_entering_it_fails_at_once() -> None:
    async def run(controller: RunController) -> None:
        raise AssertionError("must not start")

    with pytest.raises(UsageError, match=r"async with create_run\(callback\) as chunks"):
        async for _ in create_run(run):  # type: ignore[attr-defined]
            pass


async def test_a_run_can_be_entered_only_once() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("x")

    prepared = create_run(run)
    async with prepared as chunks:
        assert [chunk async for chunk in chunks] == [TextDeltaChunk("x")]
    with pytest.raises(UsageError, match="only once"):
        async with prepared:
            pass


def test_create_run_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="async callable"):
        create_run("not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="high_water_mark"):
        create_run(lambda controller: anyio.lowlevel.checkpoint(), high_water_mark=0)


async def test_the_run_lasts_until_every_task_it_started_is_done() -> None:
    async def late(controller: RunController) -> None:
        await anyio.sleep(0.05)
        controller.append_text("late")

    async def run(controller: RunController) -> None:
        controller.start_soon(late, controller)
        controller.append_text("early")

    assert await collect(run) == [TextDeltaChunk("early"), TextDeltaChunk("late")]


async def test_a_run_that_is_never_entered_never_starts() -> None:
    started = False

    async def run(controller: RunController) -> None:
        nonlocal started
        started = True

    create_run(run)
    await anyio.sleep(0.01)
    assert not started


async def test_leaving_early_cancels_the_run_and_waits_for_it() -> None:
    cleaned_up = anyio.Event()
    tool_cancelled = False

    async def slow_tool(controller: RunController) -> None:
        nonlocal tool_cancelled
        try:
            await anyio.sleep_forever()
        finally:
            tool_cancelled = True

    async def run(controller: RunController) -> None:
        controller.start_soon(slow_tool, controller)
        try:
            while True:
                controller.append_text("tick")
                await anyio.sleep(0.001)
        finally:
            cleaned_up.set()

    async with create_run(run) as chunks:
        async for chunk in chunks:
            assert chunk == TextDeltaChunk("tick")
            break
    # By the time the block has exited, every task has observed cancellation.
    assert cleaned_up.is_set()
    assert tool_cancelled


async def test_leaving_early_sets_the_cooperative_signal() -> None:
    seen_in_finally: list[bool] = []

    async def run(controller: RunController) -> None:
        try:
            controller.append_text("x")
            await anyio.sleep_forever()
        finally:
            seen_in_finally.append(controller.is_cancelled)

    async with create_run(run) as chunks:
        await chunks.receive()
    assert seen_in_finally == [True]


async def test_an_exception_in_the_consumer_cancels_the_run_and_propagates_unchanged() -> None:
    finished = False

    async def run(controller: RunController) -> None:
        nonlocal finished
        controller.append_text("x")
        try:
            await anyio.sleep_forever()
        finally:
            finished = True

    class ConsumerError(Exception):
        pass

    with pytest.raises(ConsumerError):
        async with create_run(run) as chunks:
            await chunks.receive()
            raise ConsumerError
    assert finished


async def test_cancellation_from_outside_cancels_the_run() -> None:
    cancelled = False

    async def run(controller: RunController) -> None:
        nonlocal cancelled
        controller.append_text("x")
        try:
            await anyio.sleep_forever()
        finally:
            cancelled = True

    with anyio.move_on_after(0.05) as scope:
        async with create_run(run) as chunks:
            async for _ in chunks:
                pass
    assert scope.cancelled_caught
    assert cancelled


async def test_a_timeout_around_a_finished_run_does_not_fire() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("x")

    with anyio.fail_after(5):
        assert await collect(run) == [TextDeltaChunk("x")]


async def test_nothing_outlives_a_thousand_early_exits(anyio_backend: str) -> None:
    controllers: list[weakref.ref[RunController]] = []

    async def tool(controller: RunController) -> None:
        await anyio.sleep_forever()

    async def run(controller: RunController) -> None:
        controllers.append(weakref.ref(controller))
        controller.start_soon(tool, controller)
        async with controller.open_substream("nested") as sub:
            sub.start_soon(tool, sub)
            sub.append_text("x")
            await anyio.sleep_forever()

    await anyio.lowlevel.checkpoint()
    before = living_tasks(anyio_backend)
    for _ in range(1000):
        async with create_run(run) as chunks:
            assert await chunks.receive() == TextDeltaChunk("x", parent_id="nested")
    assert living_tasks(anyio_backend) == before
    gc.collect()
    assert len(controllers) == 1000
    assert all(ref() is None for ref in controllers)


async def test_early_exits_leave_no_memory_behind() -> None:
    async def tool(controller: RunController) -> None:
        await anyio.sleep_forever()

    async def run(controller: RunController) -> None:
        controller.state = {"log": ""}
        controller.spawn_tool_call("t", lambda call: tool(controller))
        controller.append_text("x" * 1000)
        await anyio.sleep_forever()

    async def once() -> None:
        async with create_run(run) as chunks:
            await chunks.receive()

    for _ in range(50):  # warm up caches of the event loop and the interpreter
        await once()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            await once()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Each run allocates several KB; 500 of them must leave (almost) nothing.
    assert growth < 32 * 1024, f"{growth} bytes left behind by 500 runs"


async def test_shielded_cleanup_finishes_before_the_block_exits() -> None:
    steps: list[str] = []

    async def tool(controller: RunController) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # e.g. closing a connection politely
                steps.append("tool cleaned up")

    async def run(controller: RunController) -> None:
        controller.start_soon(tool, controller)
        controller.append_text("x")
        await anyio.sleep_forever()

    async with create_run(run) as chunks:
        await chunks.receive()
    steps.append("block exited")
    assert steps == ["tool cleaned up", "block exited"]


async def test_the_cooperative_signal_is_read_only_and_stays_unset_when_the_run_ends() -> None:
    seen: list[object] = []
    controllers: list[RunController] = []

    async def run(controller: RunController) -> None:
        signal = controller.cancelled_event
        seen.extend([callable(signal.wait), callable(signal.is_set), hasattr(signal, "set")])
        seen.append(controller.is_cancelled)
        controller.append_text("done")
        controllers.append(controller)

    assert await collect(run) == [TextDeltaChunk("done")]
    assert seen == [True, True, False, False]
    assert controllers[0].is_cancelled is False  # it ended by itself
    assert not controllers[0].cancelled_event.is_set()


async def test_what_cleanup_starts_while_the_run_is_left_is_cancelled_and_awaited() -> None:
    """A task's cleanup, as the block is left, adds a stream and waits for something: the
    block's exit waits for the cleanup, and the stream it added is cancelled and closed
    before the exit too, since nothing a run started outlives its block."""
    order: list[str] = []
    nested_started, cleanup_waiting, release = anyio.Event(), anyio.Event(), anyio.Event()

    async def nested() -> AsyncIterator[TextDeltaChunk]:
        nested_started.set()
        try:
            await anyio.sleep_forever()
            yield TextDeltaChunk("never")
        finally:
            order.append("nested closed")

    async def run(controller: RunController) -> None:
        controller.append_text("start")
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                controller.add_stream(nested())
                await nested_started.wait()
                cleanup_waiting.set()
                await release.wait()
                order.append("cleanup done")

    async def releases() -> None:
        await cleanup_waiting.wait()
        order.append("released")
        release.set()

    async with anyio.create_task_group() as group:
        group.start_soon(releases)
        async with create_run(run) as chunks:
            await chunks.receive()
        order.append("block exited")
    assert order[-1] == "block exited"
    assert sorted(order[:-1]) == ["cleanup done", "nested closed", "released"]
    assert order.index("released") < order.index("cleanup done")


async def test_a_cancelled_exit_still_waits_for_a_task_that_holds_off_its_cancellation() -> None:
    """The code leaving the block is itself cancelled, and a task of the run takes its time
    to stop: the block's exit waits for it all the same, so that no task outlives it."""
    finished = anyio.Event()

    async def run(controller: RunController) -> None:
        controller.append_text("start")
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.1)  # a non-cooperative task
                finished.set()

    with anyio.move_on_after(0.01) as deadline:
        async with create_run(run) as chunks:
            await chunks.receive()
            await anyio.sleep_forever()  # the deadline cancels the consumer here
    assert deadline.cancelled_caught
    assert finished.is_set()
