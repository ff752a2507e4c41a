"""Flusher: worker threads write text, reasoning and state into a run, in batches, in order.

Some tests block the event loop on purpose (a plain ``threading.Event``
wait in the run's callback) while a thread writes: the loop cannot take the
writes in meanwhile, which makes what a batch is, and what comes first,
certain rather than likely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tests.conftest import collect
from trio_stream import (
    Flusher,
    RunController,
    SerializationError,
    StreamClosedError,
    UsageError,
    create_run,
)
from trio_stream._buffer import ChunkBuffer
from trio_stream.chunks import (
    Chunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    UpdateStateChunk,
)

pytestmark = pytest.mark.anyio


def texts(chunks: list[Chunk]) -> list[str]:
    return [chunk.text_delta for chunk in chunks if isinstance(chunk, TextDeltaChunk)]


def in_thread_while_the_loop_waits(work: Callable[[], None]) -> None:
    """Run ``work`` in a thread of its own, holding the event loop until it is done."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


async def test_a_threads_writes_reach_the_run_in_the_order_it_made_them() -> None:
    def generate(flusher: Flusher) -> None:
        flusher.append_reasoning("thinking")
        for n in range(300):
            flusher.append_text(f"{n} ")
        flusher.set_state(["done"], True)

    async def run(controller: RunController) -> None:
        controller.state = {"done": False}
        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(generate, flusher)
        controller.append_text("after")

    chunks = await collect(run)
    assert chunks[1] == ReasoningDeltaChunk("thinking")
    assert texts(chunks) == [f"{n} " for n in range(300)] + ["after"]
    assert chunks[-2] == UpdateStateChunk(({"type": "set", "path": ["done"], "value": True},))


async def test_several_threads_writes_each_keep_their_order() -> None:
    def generate(flusher: Flusher, name: str) -> None:
        for n in range(200):
            flusher.append_text(f"{name}{n}")
            flusher.append_state_text([name], ".")

    async def run(controller: RunController) -> None:
        controller.state = dict.fromkeys("abcd", "")
        with controller.open_flusher() as flusher:
            async with anyio.create_task_group() as threads:
                for name in "abcd":
                    threads.start_soon(anyio.to_thread.run_sync, generate, flusher, name)
        assert controller.state == dict.fromkeys("abcd", "." * 200)

    got = texts(await collect(run))
    for name in "abcd":
        assert [text for text in got if text[0] == name] == [f"{name}{n}" for n in range(200)]


async def test_writes_made_meanwhile_go_in_as_one_batch_and_once() -> None:
    taken_in: list[Any] = []

    async def run(controller: RunController) -> None:
        controller.state = {"log": ""}
        controller.flush()
        with controller.open_flusher() as flusher:

            def write() -> None:
                for n in range(50):
                    flusher.append_state_text(["log"], str(n % 10))

            in_thread_while_the_loop_waits(write)
            flusher.flush()  # takes the batch in, before its booked turn comes
            taken_in.append(controller.state["log"])
            await anyio.sleep(0.01)  # the booked turn: nothing left to take in

    chunks = await collect(run)
    assert taken_in == ["0123456789" * 5]
    assert len(chunks) == 2  # the initial set, then the fifty appends as one chunk
    assert isinstance(chunks[1], UpdateStateChunk)
    assert len(chunks[1].operations) == 50


async def test_what_a_thread_wrote_comes_before_what_the_loop_writes_next() -> None:
    async def run(controller: RunController) -> None:
        with controller.open_flusher() as flusher:
            in_thread_while_the_loop_waits(lambda: flusher.append_text("from the thread"))
            # The loop has not had a turn to take the write in: the next
            # chunk of the run takes it in first.
            controller.append_text("from the loop")
            controller.state = {"next": "chunk"}

    chunks = await collect(run)
    assert texts(chunks) == ["from the thread", "from the loop"]


async def test_state_written_by_a_thread_comes_before_the_loops_next_state_write() -> None:
    async def run(controller: RunController) -> None:
        controller.state = {"log": ""}
        controller.flush()
        with controller.open_flusher() as flusher:
            in_thread_while_the_loop_waits(lambda: flusher.append_state_text(["log"], "a"))
            controller.append_state_text(["log"], "b")
        assert controller.state == {"log": "ab"}

    [_, update] = await collect(run)
    assert isinstance(update, UpdateStateChunk)
    assert [op["value"] for op in update.operations] == ["a", "b"]


async def test_flush_in_a_thread_returns_once_its_writes_are_in_the_run() -> None:
    seen: list[Any] = []

    def generate(flusher: Flusher, controller: RunController) -> None:
        flusher.set_state(["n"], 1)
        flusher.flush()
        seen.append(controller._state.value)  # a read of the loop's copy, for the test

    async def run(controller: RunController) -> None:
        controller.state = {"n": 0}
        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(generate, flusher, controller)

    await collect(run)
    assert seen == [{"n": 1}]


async def test_leaving_the_block_takes_in_the_rest_and_refuses_more() -> None:
    refused: list[BaseException] = []
    kept: list[Flusher] = []

    async def run(controller: RunController) -> None:
        with controller.open_flusher() as flusher:
            in_thread_while_the_loop_waits(lambda: flusher.append_text("last"))
            kept.append(flusher)
        controller.append_text("after the block")

        def too_late() -> None:
            try:
                kept[0].append_text("too late")
            except StreamClosedError as exc:
                refused.append(exc)

        await anyio.to_thread.run_sync(too_late)

    assert texts(await collect(run)) == ["last", "after the block"]
    assert "the flusher's block has ended" in str(refused[0])


async def test_values_are_checked_in_the_thread_that_writes_them() -> None:
    errors: list[str] = []

    def misuse(flusher: Flusher) -> None:
        calls: list[Callable[[], None]] = [
            lambda: flusher.append_text(3),  # type: ignore[arg-type]
            lambda: flusher.append_reasoning("\udce9"),
            lambda: flusher.set_state(["x"], object()),
            lambda: flusher.append_state_text("log", "x"),
        ]
        for call in calls:
            try:
                call()
            except (TypeError, SerializationError) as exc:
                errors.append(type(exc).__name__)
        flusher.append_text("still fine")

    async def run(controller: RunController) -> None:
        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(misuse, flusher)

    assert texts(await collect(run)) == ["still fine"]
    assert errors == ["TypeError", "SerializationError", "SerializationError", "TypeError"]


async def test_a_write_the_run_refuses_is_raised_at_the_end_of_the_block() -> None:
    after: list[BaseException] = []

    def generate(flusher: Flusher) -> None:
        flusher.append_text("kept")
        flusher.append_state_text(["count", "deeper"], "x")  # count is a number
        flusher.append_text("dropped")
        try:
            flusher.flush()
        except StreamClosedError as exc:
            after.append(exc)

    async def run(controller: RunController) -> None:
        controller.state = {"count": 1}
        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(generate, flusher)

    with pytest.raises(TypeError, match="cannot index into a int"):
        await collect(run)
    assert isinstance(after[0].__cause__, TypeError)


async def test_drain_holds_a_fast_thread_back_to_the_clients_pace() -> None:
    def generate(flusher: Flusher) -> None:
        for n in range(300):
            flusher.append_text(str(n))
            if n % 10 == 9:
                flusher.drain()

    async def run(controller: RunController) -> None:
        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(generate, flusher)

    most_queued = 0
    received: list[Chunk] = []
    async with create_run(run, high_water_mark=8) as chunks:
        async for chunk in chunks:
            most_queued = max(most_queued, chunks.queued)
            received.append(chunk)
            await anyio.sleep(0.0005)
    assert texts(received) == [str(n) for n in range(300)]
    assert most_queued <= 8 + 10


async def test_a_flusher_is_opened_on_the_loop_and_drained_from_threads() -> None:
    async def run(controller: RunController) -> None:
        with pytest.raises(UsageError, match="on the run's event loop"):
            await anyio.to_thread.run_sync(controller.open_flusher)
        with controller.open_flusher() as flusher:
            with pytest.raises(UsageError, match=r"await controller\.drain"):
                flusher.drain()
            with pytest.raises(UsageError, match="entered only once"):
                flusher.__enter__()

    await collect(run)


async def test_the_buffer_is_a_plain_one_again_once_the_block_ends() -> None:
    # Runs without worker threads pay nothing for them on every chunk.
    async def run(controller: RunController) -> None:
        assert type(controller._buffer) is ChunkBuffer
        with controller.open_flusher(), controller.with_parent_id("p").open_flusher():
            assert type(controller._buffer) is not ChunkBuffer
        assert type(controller._buffer) is ChunkBuffer

    await collect(run)


async def test_a_flusher_writes_with_its_controllers_parent_id() -> None:
    async def run(controller: RunController) -> None:
        with controller.with_parent_id("call_1").open_flusher() as flusher:
            await anyio.to_thread.run_sync(flusher.append_text, "nested")

    assert await collect(run) == [TextDeltaChunk("nested", "call_1")]
