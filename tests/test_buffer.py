"""Back-pressure: asynchronous producers cannot outgrow a slow consumer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest

from trio_stream import DEFAULT_HIGH_WATER_SIZE, RunCallback, RunController, create_run
from trio_stream._buffer import ChunkBuffer, chunk_size
from trio_stream.chunks import (
    DataChunk,
    FileChunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallDeltaChunk,
)

pytestmark = pytest.mark.anyio

SIZE = DEFAULT_HIGH_WATER_SIZE


class Counter:
    value = 0


async def read_slowly(run: RunCallback, high_water: int, produced: Counter, count: int) -> None:
    """Read ``count`` chunks, 1 ms apart, checking that the producer never gets
    more than the high-water mark ahead (plus the one chunk in hand)."""
    received = 0
    async with create_run(run, high_water_mark=high_water) as chunks:
        async for _ in chunks:
            received += 1
            await anyio.sleep(0.001)
            assert produced.value - received <= high_water + 1
            if received == count:
                return


async def test_add_stream_waits_for_a_slow_consumer() -> None:
    produced = Counter()

    async def endless() -> AsyncIterator[TextDeltaChunk]:
        while True:
            produced.value += 1
            yield TextDeltaChunk("x" * 100)

    async def run(controller: RunController) -> None:
        controller.add_stream(endless())

    await read_slowly(run, 32, produced, 200)


async def test_drain_gives_a_synchronous_producer_back_pressure() -> None:
    produced = Counter()

    async def run(controller: RunController) -> None:
        while True:
            controller.append_text("token")
            produced.value += 1
            await controller.drain()

    await read_slowly(run, 16, produced, 100)


async def test_nested_substreams_are_bounded_too() -> None:
    produced = Counter()

    async def run(controller: RunController) -> None:
        while True:
            async with controller.open_substream("s") as sub:
                sub.append_text("x")
                produced.value += 1

    await read_slowly(run, 8, produced, 50)


async def test_synchronous_puts_never_block() -> None:
    buffer = ChunkBuffer(high_water=2, high_water_size=SIZE)
    for _ in range(10):
        buffer.put(TextDeltaChunk("x"))
    assert len(buffer) == 10


@contextlib.asynccontextmanager
async def waiting_writer(buffer: ChunkBuffer) -> AsyncIterator[anyio.Event]:
    """A writer waiting on ``buffer``; yields an event set once it may go on."""
    resumed = anyio.Event()

    async def writer() -> None:
        await buffer.wait_writable()
        resumed.set()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(writer)
        await anyio.sleep(0.01)
        yield resumed


@contextlib.asynccontextmanager
async def full_buffer_and_waiting_writer() -> AsyncIterator[tuple[ChunkBuffer, anyio.Event]]:
    """A buffer at its high-water mark (4), and an event set once a writer may go on."""
    buffer = ChunkBuffer(high_water=4, high_water_size=SIZE)
    for _ in range(4):
        buffer.put(TextDeltaChunk("x"))
    async with waiting_writer(buffer) as resumed:
        yield buffer, resumed


async def test_writers_resume_once_the_queue_is_half_drained() -> None:
    async with full_buffer_and_waiting_writer() as (buffer, resumed):
        await buffer.receive()
        await anyio.sleep(0.01)
        assert not resumed.is_set()  # 3 left: above half of 4
        await buffer.receive()
        await anyio.sleep(0.01)
        assert resumed.is_set()  # 2 left: half


async def test_closing_releases_waiting_writers_and_ends_the_reader() -> None:
    buffer = ChunkBuffer(high_water=1, high_water_size=SIZE)
    buffer.put(TextDeltaChunk("x"))
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(buffer.wait_writable)
        await anyio.sleep(0.01)
        buffer.close()
    assert await buffer.receive() == TextDeltaChunk("x")
    try:
        await buffer.receive()
    except anyio.EndOfStream:
        pass
    else:
        raise AssertionError("a closed, drained buffer must raise EndOfStream")


async def test_only_one_task_may_wait_for_chunks() -> None:
    buffer = ChunkBuffer(high_water=4, high_water_size=SIZE)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(buffer.receive)
        await anyio.sleep(0.01)
        with pytest.raises(anyio.BusyResourceError):
            await buffer.receive()
        buffer.put(TextDeltaChunk("x"))  # the first reader gets it and finishes


async def test_a_cancelled_reader_does_not_block_the_next_one() -> None:
    buffer = ChunkBuffer(high_water=4, high_water_size=SIZE)
    with anyio.move_on_after(0.01):
        await buffer.receive()
    buffer.put(TextDeltaChunk("x"))
    assert await buffer.receive() == TextDeltaChunk("x")


async def test_a_batch_is_everything_queued_up_to_the_limit() -> None:
    buffer = ChunkBuffer(high_water=8, high_water_size=SIZE)
    for text in "abcde":
        buffer.put(TextDeltaChunk(text))
    buffer.add_operations([{"type": "set", "path": ["k"], "value": 1}])
    assert [c.text_delta for c in await buffer.receive_batch(3)] == ["a", "b", "c"]  # type: ignore[union-attr]
    rest = await buffer.receive_batch(10)
    assert [c.type for c in rest] == ["text-delta", "text-delta", "update-state"]


async def test_a_batch_waits_for_the_first_chunk_only() -> None:
    buffer = ChunkBuffer(high_water=8, high_water_size=SIZE)
    async with anyio.create_task_group() as task_group:

        async def produce() -> None:
            await anyio.sleep(0.01)
            buffer.put(TextDeltaChunk("first"))

        task_group.start_soon(produce)
        assert await buffer.receive_batch(10) == [TextDeltaChunk("first")]
    buffer.close()
    with pytest.raises(anyio.EndOfStream):
        await buffer.receive_batch(10)


async def test_a_batch_releases_waiting_writers() -> None:
    async with full_buffer_and_waiting_writer() as (buffer, resumed):
        assert len(await buffer.receive_batch(100)) == 4
        with anyio.fail_after(1):
            await resumed.wait()


async def test_the_run_hands_out_batches_and_refuses_a_zero_limit() -> None:
    async def callback(controller: RunController) -> None:
        for i in range(5):
            controller.append_text(str(i))

    async with create_run(callback) as chunks:
        with pytest.raises(ValueError, match="at least 1"):
            await chunks.receive_batch(0)
        await anyio.sleep(0.01)  # the callback has queued everything
        assert len(await chunks.receive_batch()) == 5


async def test_large_chunks_are_bounded_by_size_not_count() -> None:
    """64 KiB pieces: a 1 MiB bound holds about 16 of them, not 256."""
    piece = "x" * 65536
    queued: list[int] = []

    async def run(controller: RunController) -> None:
        for _ in range(64):
            controller.append_text(piece)
            await controller.drain()

    async with create_run(run, high_water_size=1 << 20) as chunks:
        buffer = chunks._buffer
        async for _ in chunks:
            queued.append(len(buffer))
            await anyio.sleep(0.001)
    assert len(queued) == 64
    # At most the bound (16 pieces) plus the one that crossed it.
    assert max(queued) <= 17
    assert max(queued) >= 8  # and the producer did run ahead


async def test_writers_wait_for_the_size_to_halve() -> None:
    buffer = ChunkBuffer(high_water=100, high_water_size=10)
    for text in ("aaaa", "bbbb", "cc"):
        buffer.put(TextDeltaChunk(text), len(text))
    async with waiting_writer(buffer) as resumed:
        assert not resumed.is_set()  # 10 characters queued: at the mark
        await buffer.receive()
        await anyio.sleep(0.01)
        assert not resumed.is_set()  # 6 left: above half of 10
        await buffer.receive()
        await anyio.sleep(0.01)
        assert resumed.is_set()  # 2 left


def test_only_text_like_chunks_weigh() -> None:
    assert chunk_size(TextDeltaChunk("abc")) == 3
    assert chunk_size(ReasoningDeltaChunk("ab")) == 2
    assert chunk_size(ToolCallDeltaChunk("call_1", "{}")) == 2
    assert chunk_size(FileChunk("AAAA", "image/png")) == 4
    assert chunk_size(DataChunk({"big": "x" * 100})) == 0
