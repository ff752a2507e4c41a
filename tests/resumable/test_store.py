"""The StreamStore contract, as every store keeps it.

A store holds a stream's bytes in order with a status; readers start at any
byte offset, follow the live tail and stop at the end. Writes go at the
stream's size and never after its end; an append sent again is stored once,
and so are the closing bytes and the end however often they are sent; every
write keeps the stream its ttl longer. Every test runs on ``MemoryStore``
and on ``RedisStore`` on one Redis server, a Redis Cluster and behind
Sentinel (``store_kind``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import anyio
import pytest

from trio_stream.resumable import (
    ProducerLostError,
    StreamExistsError,
    StreamNotFoundError,
    StreamStore,
)

from .conftest import TOPOLOGIES, StoreFactory

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", *TOPOLOGIES])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every store, on every topology: in memory, one Redis server, a Redis Cluster, and a
    primary behind Sentinel."""
    return str(request.param)


FRAMES = [b'0:"Hel"\n', b'0:"lo \xc3\xa9"\n', b"e:{}\n", b'd:{"finishReason":"stop"}\n']
WHOLE = b"".join(FRAMES)
HEADERS = (("x-vercel-ai-data-stream", "v1"),)
ENDINGS = {"gone": b'3:"gone"\n', "producer-lost": b'3:"lost"\n', "store-lost": b"\xff\x00"}
"""What a reader sends when the stream breaks off; any bytes, kept as they are."""


async def create(store: StreamStore, stream_id: str = "stream-0001", ttl: float = 60) -> str:
    await store.create(
        stream_id,
        media_type="text/plain; charset=utf-8",
        headers=HEADERS,
        endings=ENDINGS,
        ttl=ttl,
    )
    return stream_id


async def write_all(store: StreamStore, stream_id: str) -> None:
    offset = 0
    for frame in FRAMES:
        await store.append(stream_id, offset, frame)
        offset += len(frame)
    await store.finish(stream_id, "done", 60)


async def read_all(store: StreamStore, stream_id: str, offset: int = 0) -> bytes:
    received = b""
    async with contextlib.aclosing(store.read(stream_id, offset)) as frames:
        async for frame in frames:
            received += frame
    return received


async def test_a_new_stream_is_running_and_empty(store: StreamStore) -> None:
    stream_id = await create(store)
    info = await store.info(stream_id)
    assert info is not None
    assert (info.status, info.size, info.media_type) == ("running", 0, "text/plain; charset=utf-8")
    assert info.headers == HEADERS
    assert info.endings == ENDINGS
    assert await store.info("stream-9999") is None


async def test_an_id_is_taken_once(store: StreamStore) -> None:
    await create(store)
    with pytest.raises(StreamExistsError):
        await create(store)


async def test_a_finished_stream_reads_whole_from_any_offset(store: StreamStore) -> None:
    stream_id = await create(store)
    await write_all(store, stream_id)
    info = await store.info(stream_id)
    assert info is not None
    assert (info.status, info.size) == ("done", len(WHOLE))
    # Every offset, frame boundaries and the middle of a UTF-8 sequence included.
    for offset in range(len(WHOLE) + 1):
        assert await read_all(store, stream_id, offset) == WHOLE[offset:]
    assert await read_all(store, stream_id, len(WHOLE) + 5) == b""


async def test_a_reader_follows_the_live_tail_until_the_end(store: StreamStore) -> None:
    stream_id = await create(store)
    send, receive = anyio.create_memory_object_stream[bytes](100)
    async with receive, anyio.create_task_group() as group:

        async def follow() -> None:
            async with send, contextlib.aclosing(store.read(stream_id)) as frames:
                async for frame in frames:
                    await send.send(frame)

        group.start_soon(follow)
        offset = 0
        for frame in FRAMES:
            await anyio.sleep(0.02)
            await store.append(stream_id, offset, frame)
            offset += len(frame)
            received = b""
            with anyio.fail_after(5):  # each frame reaches the reader as it is appended
                while len(received) < len(frame):
                    received += await receive.receive()
            assert received == frame
        await store.finish(stream_id, "failed", 60)
        with anyio.fail_after(5):  # and the end ends it promptly
            assert [frame async for frame in receive] == []
    info = await store.info(stream_id)
    assert info is not None
    assert info.status == "failed"


async def test_an_unknown_stream_cannot_be_read(store: StreamStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await read_all(store, "stream-9999")


async def test_streams_are_kept_apart_by_id(store: StreamStore) -> None:
    first, second = await create(store, "stream-0001"), await create(store, "stream-0002")
    offset = 0
    for index, frame in enumerate(FRAMES):  # the two interleaved
        await store.append(first, offset, frame)
        offset += len(frame)
        if index < 2:
            await store.append(second, index, b"ab"[index : index + 1])
    await store.finish(first, "done", 60)
    assert await read_all(store, first) == WHOLE
    assert await stored(store, second) == ("running", 2, b"ab")


async def test_every_byte_value_is_kept_as_it_is(store: StreamStore) -> None:
    stream_id = await create(store)
    data = bytes(range(256)) * 2
    await store.append(stream_id, 0, data[:300])
    await store.append(stream_id, 300, data[300:])
    await store.finish(stream_id, "done", 60)
    for offset in (0, 1, 255, 300, 511):
        assert await read_all(store, stream_id, offset) == data[offset:]


async def test_several_readers_follow_one_stream_at_once(store: StreamStore) -> None:
    stream_id = await create(store)
    received: list[bytes] = []
    async with anyio.create_task_group() as readers:
        for _ in range(5):

            async def follow() -> None:
                received.append(await read_all(store, stream_id))

            readers.start_soon(follow)
        await anyio.sleep(0.05)  # the readers wait on the live tail
        await write_all(store, stream_id)
    assert received == [WHOLE] * 5


async def test_a_reader_cancelled_while_it_waits_leaves_the_stream_to_others(
    store: StreamStore,
) -> None:
    stream_id = await create(store)
    await store.append(stream_id, 0, FRAMES[0])
    got_first = anyio.Event()
    with anyio.CancelScope() as reader:

        async def follow() -> None:
            async with contextlib.aclosing(store.read(stream_id)) as frames:
                async for _ in frames:
                    got_first.set()

        async with anyio.create_task_group() as group:
            group.start_soon(follow)
            await got_first.wait()
            reader.cancel()  # the client leaves while its reader waits for more
    assert reader.cancelled_caught
    offset = len(FRAMES[0])
    for frame in FRAMES[1:]:
        await store.append(stream_id, offset, frame)
        offset += len(frame)
    await store.finish(stream_id, "done", 60)
    assert await read_all(store, stream_id) == WHOLE


async def test_a_deleted_stream_ends_its_readers(make_store: StoreFactory) -> None:
    store = await make_store(lease=0.5)
    stream_id = await create(store)

    async def renew() -> None:
        with contextlib.suppress(StreamNotFoundError):  # renewing a deleted stream
            while True:
                await store.renew(stream_id, 60)
                await anyio.sleep(0.1)

    async with anyio.create_task_group() as group:
        group.start_soon(renew)
        await store.append(stream_id, 0, FRAMES[0])
        frames: AsyncGenerator[bytes, None] = store.read(stream_id)
        async with contextlib.aclosing(frames):
            assert await anext(frames) == FRAMES[0]
            await store.delete(stream_id)
            with anyio.fail_after(5), pytest.raises(StreamNotFoundError):
                await anext(frames)
        group.cancel_scope.cancel()
    assert await store.info(stream_id) is None


async def test_a_producer_that_stops_renewing_is_reported_lost(make_store: StoreFactory) -> None:
    store = await make_store(lease=0.3)
    stream_id = await create(store)
    await store.append(stream_id, 0, FRAMES[0])
    with anyio.fail_after(5), pytest.raises(ProducerLostError):
        await read_all(store, stream_id)


async def test_a_renewed_lease_keeps_a_quiet_stream_alive(make_store: StoreFactory) -> None:
    # Renewed 16 times per lease, so that a pause of the whole process of
    # most of a lease (a large heap collected, a busy machine) keeps it.
    store = await make_store(lease=0.8)
    stream_id = await create(store)
    async with anyio.create_task_group() as group:

        async def produce_slowly() -> None:
            for _ in range(36):  # 1.8 s: more than twice the lease
                await store.renew(stream_id, 60)
                await anyio.sleep(0.05)
            await write_all(store, stream_id)

        group.start_soon(produce_slowly)
        assert await read_all(store, stream_id) == WHOLE


async def test_a_cancel_request_reaches_the_producer(store: StreamStore) -> None:
    stream_id = await create(store)
    async with anyio.create_task_group() as group:
        requested = anyio.Event()

        async def producer() -> None:
            await store.wait_cancel_requested(stream_id)
            requested.set()

        group.start_soon(producer)
        await anyio.sleep(0.05)
        assert await store.request_cancel(stream_id) is True
        with anyio.fail_after(5):
            await requested.wait()
    await store.finish(stream_id, "cancelled", 60)
    assert await store.request_cancel(stream_id) is False  # no longer running
    assert await store.request_cancel("stream-9999") is False


async def test_a_stream_expires_after_its_ttl(store: StreamStore) -> None:
    stream_id = await create(store, ttl=0.3)
    await store.append(stream_id, 0, FRAMES[0])
    await store.finish(stream_id, "done", 0.3)
    assert await store.info(stream_id) is not None
    await anyio.sleep(0.5)
    assert await store.info(stream_id) is None
    with pytest.raises(StreamNotFoundError):
        await read_all(store, stream_id)


async def stored(store: StreamStore, stream_id: str) -> tuple[str, int, bytes]:
    """A stream's status, size and bytes, read to their end or to its size while it runs."""
    info = await store.info(stream_id)
    assert info is not None
    received = b""
    async with contextlib.aclosing(store.read(stream_id)) as frames:
        while len(received) < info.size:
            received += await anext(frames)
    return info.status, info.size, received


async def test_an_append_goes_at_the_streams_size_or_changes_nothing(store: StreamStore) -> None:
    stream_id = await create(store)
    await store.append(stream_id, 0, FRAMES[0])
    size = len(FRAMES[0])
    for offset in (0, size - 1, size + 1):
        with pytest.raises(ValueError, match=f"append at {offset}, but .* has {size} bytes"):
            await store.append(stream_id, offset, FRAMES[1])
    with pytest.raises(ValueError, match="bytes to add"):
        await store.append(stream_id, size, b"")
    with pytest.raises(StreamNotFoundError):
        await store.append("stream-9999", 0, FRAMES[0])
    assert await stored(store, stream_id) == ("running", size, FRAMES[0])


async def test_an_append_sent_again_is_stored_once(store: StreamStore) -> None:
    """A producer whose append was cancelled, or lost its reply, cannot know whether the
    store applied it: it sends the same bytes at the same offset again. The store takes
    them if it lacks them, and accepts them unchanged if the stream ends with them."""
    stream_id = await create(store)
    first, second = FRAMES[0], FRAMES[1] * 10_000  # several Redis entries
    await store.append(stream_id, 0, first)
    await store.append(stream_id, len(first), second)
    await store.append(stream_id, len(first), second)  # again: already there
    await store.append(stream_id, 0, first + second)  # the same bytes, however appended
    whole = first + second
    assert await stored(store, stream_id) == ("running", len(whole), whole)
    # Bytes that are not the stream's end are refused, the stream unchanged.
    with pytest.raises(ValueError, match=f"has {len(whole)} bytes"):
        await store.append(stream_id, 0, first)  # not at the end
    with pytest.raises(ValueError, match=f"has {len(whole)} bytes"):
        await store.append(stream_id, len(first), second[:-1] + b"!")  # other bytes
    assert await stored(store, stream_id) == ("running", len(whole), whole)
    # The next append goes at the size, as ever.
    await store.append(stream_id, len(whole), FRAMES[2])
    assert await stored(store, stream_id) == ("running", len(whole + FRAMES[2]), whole + FRAMES[2])


async def test_an_append_sent_again_is_compared_with_many_small_frames(store: StreamStore) -> None:
    stream_id = await create(store)
    frames = [bytes([65 + i % 26]) * (1 + i % 3) for i in range(200)]
    offset = 0
    for frame in frames:
        await store.append(stream_id, offset, frame)
        offset += len(frame)
    whole = b"".join(frames)
    tail = b"".join(frames[50:])  # 150 frames: more than a Redis script reads at once
    await store.append(stream_id, len(whole) - len(tail), tail)
    with pytest.raises(ValueError, match="append at"):
        await store.append(stream_id, len(whole) - len(tail), b"?" + tail[1:])
    assert await stored(store, stream_id) == ("running", len(whole), whole)


async def test_a_finished_stream_takes_no_more_bytes(store: StreamStore) -> None:
    stream_id = await create(store)
    await write_all(store, stream_id)
    with pytest.raises(ValueError, match="finished"):
        await store.append(stream_id, len(WHOLE), b"late")
    with pytest.raises(ValueError, match="finished"):  # not even its last append again
        await store.append(stream_id, len(WHOLE) - len(FRAMES[-1]), FRAMES[-1])
    with pytest.raises(ValueError, match="not 'running'"):
        await store.finish(stream_id, "running", 60)
    assert await stored(store, stream_id) == ("done", len(WHOLE), WHOLE)
    assert await read_all(store, stream_id) == WHOLE


async def test_the_closing_bytes_and_the_end_are_stored_once_however_often_sent(
    store: StreamStore,
) -> None:
    """A producer stopped while it stores a stream's end sends its closing bytes and its
    final status again, not knowing whether they landed: the stream ends with them once,
    and its readers stop once, at its end."""
    stream_id = await create(store)
    await store.append(stream_id, 0, FRAMES[0])
    closing = FRAMES[-1]
    for _ in range(2):
        await store.append(stream_id, len(FRAMES[0]), closing)
    for _ in range(2):
        await store.finish(stream_id, "done", 60)
    whole = FRAMES[0] + closing
    assert await stored(store, stream_id) == ("done", len(whole), whole)
    assert await read_all(store, stream_id) == whole
    assert await read_all(store, stream_id, len(FRAMES[0])) == closing


async def test_every_write_keeps_the_stream_its_ttl_longer(store: StreamStore) -> None:
    stream_id = await create(store, ttl=0.3)
    for offset in range(6):  # 0.6 s: twice the ttl, with a write every 0.1 s
        await anyio.sleep(0.1)
        await store.append(stream_id, offset, b"x")
    for _ in range(3):  # renewing the lease is a write too
        await anyio.sleep(0.1)
        await store.renew(stream_id, 0.3)
    assert await stored(store, stream_id) == ("running", 6, b"x" * 6)
    await anyio.sleep(0.5)
    assert await store.info(stream_id) is None
