"""What ``RedisStore`` keeps in Redis, and how it behaves when Redis or a reader goes away.

The store contract itself (``test_store.py``) runs against Redis too; these
tests look inside Redis (keys, entry ids, expiry) and at the failures only a
networked store has: Redis unreachable, silent or killed, readers cancelled
while they block in Redis, many of them at once, and two stores (two
workers) sharing one stream.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import anyio
import coredis
import pytest

from trio_stream.resumable import (
    ProducerLostError,
    StoreError,
    StreamExistsError,
    StreamNotFoundError,
)
from trio_stream.resumable.redis import RedisStore

from ..serving import free_port
from .redis_server import RedisServer, redis_server

pytestmark = pytest.mark.anyio

ENDINGS = {"gone": b'3:"gone"\n'}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A server for this module alone: some tests count the clients blocked in it."""
    with redis_server() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, to kill."""
    with redis_server() as server:
        yield server


@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[RedisStore]:
    """A store with a key prefix of its own, closed after the block."""
    options.setdefault("prefix", f"test-{secrets.token_hex(4)}:")
    store = RedisStore(url, **options)
    try:
        yield store
    finally:
        await store.aclose()


@contextlib.asynccontextmanager
async def inspector(url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    """A plain client, to look at what the store wrote."""
    async with coredis.Redis.from_url(url) as client:
        yield client


async def create(store: RedisStore, stream_id: str = "s", ttl: float = 60) -> str:
    await store.create(
        stream_id, media_type="text/plain", headers=[("x-test", "1")], endings=ENDINGS, ttl=ttl
    )
    return stream_id


async def write(store: RedisStore, stream_id: str, frames: list[bytes]) -> int:
    """Append ``frames`` to an empty stream; the size it has then."""
    offset = 0
    for frame in frames:
        await store.append(stream_id, offset, frame)
        offset += len(frame)
    return offset


async def read_all(store: RedisStore, stream_id: str, offset: int = 0) -> bytes:
    async with contextlib.aclosing(store.read(stream_id, offset)) as frames:
        return b"".join([frame async for frame in frames])


async def clients(inspect: coredis.Redis[bytes], field: str = "blocked_clients") -> int:
    """A count from Redis' ``INFO clients``: by default, clients waiting in a blocking
    command (the store's XREADs) right now."""
    value = (await inspect.info("clients"))[field]
    assert isinstance(value, int)
    return value


async def until_blocked(inspect: coredis.Redis[bytes], count: int) -> None:
    """Wait until exactly ``count`` clients wait in a blocking command in Redis.

    Polled: Redis has no event to wait for.
    """
    with anyio.fail_after(5):
        while await clients(inspect) != count:  # noqa: ASYNC110
            await anyio.sleep(0.01)


# -- what is in Redis ---------------------------------------------------------


async def test_a_stream_is_four_keys_on_one_hash_tag_with_byte_offsets_as_entry_ids(
    redis: RedisServer,
) -> None:
    async with opened(redis.url) as store, inspector(redis.url) as inspect:
        await create(store, "s1")
        await write(store, "s1", [b"ab", b"cde", b"f"])
        assert await store.request_cancel("s1") is True
        base = f"{store.prefix}{{s1}}:"
        assert await inspect.keys(f"{store.prefix}*") == {
            f"{base}{name}".encode() for name in ("meta", "frames", "lease", "cancel")
        }
        entries = await inspect.xrange(f"{base}frames")
        assert [(e.identifier, dict(e.field_values)) for e in entries] == [
            (b"0-1", {b"data": b"ab"}),
            (b"2-1", {b"data": b"cde"}),
            (b"5-1", {b"data": b"f"}),
        ]
        await store.finish("s1", "done", 60)
        # The end marker follows the last frame, at the stream's size.
        last = (await inspect.xrange(f"{base}frames"))[-1]
        assert (last.identifier, dict(last.field_values)) == (b"6-2", {b"end": b"done"})
        meta = await inspect.hgetall(f"{base}meta")
        assert (meta[b"status"], meta[b"size"], meta[b"endings"]) == (
            b"done",
            b"6",
            b'{"gone": "MzoiZ29uZSIK"}',  # base64, in JSON
        )
        assert await inspect.exists([f"{base}lease"]) == 0  # a finished stream has no producer


async def test_every_key_expires_and_renew_and_finish_set_the_expiry(redis: RedisServer) -> None:
    async with opened(redis.url, lease=5) as store, inspector(redis.url) as inspect:
        await create(store, "s", ttl=60)
        await write(store, "s", [b"abc"])
        await store.request_cancel("s")
        meta, frames, lease, cancel = (
            f"{store.prefix}{{s}}:{n}" for n in ("meta", "frames", "lease", "cancel")
        )

        async def ttls() -> list[int]:
            return [await inspect.pttl(key) for key in (meta, frames, cancel)]

        assert all(55_000 < ttl <= 60_000 for ttl in await ttls())
        assert 4_000 < await inspect.pttl(lease) <= 5_000
        await store.renew("s", 600)
        assert all(590_000 < ttl <= 600_000 for ttl in await ttls())
        assert 4_000 < await inspect.pttl(lease) <= 5_000
        await store.finish("s", "cancelled", 30)
        assert all(25_000 < ttl <= 30_000 for ttl in await ttls())
        # Nothing the store wrote is kept forever (PTTL -1) or left behind (-2 is gone).
        for key in await inspect.keys(f"{store.prefix}*"):
            assert await inspect.pttl(key) > 0, key


# -- reading ------------------------------------------------------------------


async def test_a_reader_resuming_at_any_byte_gets_exactly_the_rest(redis: RedisServer) -> None:
    # 150 frames of 1 to 4 bytes: more than one XREAD batch, frames cut anywhere.
    frames = [bytes([65 + i % 26]) * (1 + i % 4) for i in range(150)]
    whole = b"".join(frames)
    async with opened(redis.url) as store:
        await create(store)
        size = await write(store, "s", frames)
        await store.finish("s", "done", 60)
        assert size == len(whole)
        for offset in range(size + 3):
            assert await read_all(store, "s", offset) == whole[offset:], offset


async def test_a_large_append_is_stored_in_entries_of_at_most_64_kib(redis: RedisServer) -> None:
    data = bytes(range(256)) * 800  # 204800 bytes
    whole = b"head" + data
    async with opened(redis.url) as store, inspector(redis.url) as inspect:
        await create(store)
        await write(store, "s", [b"head", data])
        await store.finish("s", "done", 60)
        entries = await inspect.xrange(f"{store.prefix}{{s}}:frames")
        assert [e.identifier for e in entries] == [
            b"0-1",
            b"4-1",
            b"65540-1",
            b"131076-1",
            b"196612-1",
            b"204804-2",  # the end marker
        ]
        assert [len(e.field_values.get(b"data", b"")) for e in entries] == [
            4,
            65536,
            65536,
            65536,
            8192,
            0,
        ]
        info = await store.info("s")
        assert info is not None
        assert info.size == len(whole)
        for offset in (0, 3, 4, 5, 65539, 65540, 100_000, len(whole) - 1, len(whole)):
            assert await read_all(store, "s", offset) == whole[offset:], offset


async def test_a_live_reader_gets_each_frame_as_it_is_appended_and_the_end_at_once(
    redis: RedisServer,
) -> None:
    # ``block=30``: whatever reaches the reader comes from Redis waking it, not
    # from a reader polling again after its timeout.
    async with opened(redis.url, block=30) as store:
        await create(store)
        send, receive = anyio.create_memory_object_stream[bytes](10)
        ended = anyio.Event()

        async def follow() -> None:
            async with send, contextlib.aclosing(store.read("s")) as frames:
                async for frame in frames:
                    await send.send(frame)
            ended.set()

        async with receive, anyio.create_task_group() as group:
            group.start_soon(follow)
            offset = 0
            for frame in [b"one ", b"two ", b"three"]:
                await anyio.sleep(0.05)
                await store.append("s", offset, frame)
                offset += len(frame)
                with anyio.fail_after(1):
                    assert await receive.receive() == frame
            finished = time.monotonic()
            await store.finish("s", "done", 60)
            with anyio.fail_after(1):
                await ended.wait()
            assert time.monotonic() - finished < 0.5


async def test_an_unknown_stream_raises_before_yielding(redis: RedisServer) -> None:
    async with opened(redis.url) as store:
        frames: AsyncGenerator[bytes, None] = store.read("nope")
        with pytest.raises(StreamNotFoundError):
            await anext(frames)
        with pytest.raises(ValueError, match="negative"):
            await anext(store.read("nope", -1))


async def test_deleting_a_stream_ends_its_blocked_reader_and_leaves_no_key(
    redis: RedisServer,
) -> None:
    async with opened(redis.url, block=30) as store, inspector(redis.url) as inspect:
        await create(store)
        await write(store, "s", [b"kept "])
        frames = store.read("s")
        async with contextlib.aclosing(frames):
            assert await anext(frames) == b"kept "
            async with anyio.create_task_group() as group:

                async def delete_once_blocked() -> None:
                    await until_blocked(inspect, 1)
                    await store.delete("s")

                group.start_soon(delete_once_blocked)
                with anyio.fail_after(1), pytest.raises(StreamNotFoundError):
                    await anext(frames)
        assert await inspect.keys(f"{store.prefix}*") == set()
        assert await store.info("s") is None


async def test_a_producer_whose_lease_ran_out_is_reported_lost_after_its_frames(
    redis: RedisServer,
) -> None:
    async with opened(redis.url, lease=0.3) as store:
        await create(store)
        await write(store, "s", [b"written before the producer died"])
        await anyio.sleep(0.4)  # the lease has run out
        received = []
        started = time.monotonic()
        with pytest.raises(ProducerLostError):
            async with contextlib.aclosing(store.read("s")) as frames:
                async for frame in frames:
                    received.append(frame)
        assert received == [b"written before the producer died"]
        assert time.monotonic() - started < 1  # one ``block`` (lease / 3), not more


# -- losing Redis -------------------------------------------------------------


async def test_an_unreachable_redis_fails_fast_with_a_store_error_naming_it() -> None:
    port = free_port()  # nothing listens there
    async with opened(f"redis://:secret@127.0.0.1:{port}/0") as store:
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"127.0.0.1:{port}") as raised:
            await create(store)
        assert time.monotonic() - started < 3
        assert "secret" not in str(raised.value)  # the password stays out of logs
        with pytest.raises(StoreError):
            await store.info("s")
        with pytest.raises(StoreError):
            await read_all(store, "s")
        with pytest.raises(StoreError):
            await store.request_cancel("s")


async def test_a_redis_that_accepts_but_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never reads
        port = silent.getsockname()[1]
        async with opened(f"redis://127.0.0.1:{port}/0", timeout=0.3) as store:
            started = time.monotonic()
            with pytest.raises(StoreError):
                await create(store)
            assert time.monotonic() - started < 2


async def test_redis_killed_mid_read_is_a_store_error_and_the_store_recovers(
    own_redis: RedisServer,
) -> None:
    async with opened(own_redis.url, block=30) as store, inspector(own_redis.url) as inspect:
        await create(store)
        await write(store, "s", [b"before"])
        frames = store.read("s")
        async with contextlib.aclosing(frames):
            assert await anext(frames) == b"before"
            async with anyio.create_task_group() as group:

                async def kill_once_blocked() -> None:
                    await until_blocked(inspect, 1)
                    own_redis.stop()

                group.start_soon(kill_once_blocked)
                with anyio.fail_after(3), pytest.raises(StoreError, match="cannot reach"):
                    await anext(frames)
        with pytest.raises(StoreError):
            await store.info("s")
        own_redis.start()  # an empty Redis again: the data was in memory only
        assert await store.info("s") is None
        await create(store, "after")
        await write(store, "after", [b"back"])
        await store.finish("after", "done", 60)
        assert await read_all(store, "after") == b"back"


# -- many readers, cancelled readers, several workers -------------------------


async def test_a_cancelled_blocked_read_leaves_the_store_usable(redis: RedisServer) -> None:
    # Two blocking connections at most, five reads cancelled while blocked in
    # Redis: each must give its connection back (closed, as its reply may
    # still come), or the next read would wait forever for a free one.
    async with (
        opened(redis.url, block=30, max_blocking_connections=2) as store,
        inspector(redis.url) as inspect,
    ):
        await create(store)
        baseline = await clients(inspect, "connected_clients")
        for _ in range(5):
            async with anyio.create_task_group() as group:
                group.start_soon(read_all, store, "s")
                await until_blocked(inspect, 1)
                group.cancel_scope.cancel()
        await until_blocked(inspect, 0)
        with anyio.fail_after(2):
            await write(store, "s", [b"still ", b"works"])
            await store.finish("s", "done", 60)
            assert await read_all(store, "s") == b"still works"
        # The cancelled reads' connections were closed, not leaked.
        connected = await clients(inspect, "connected_clients")
        assert connected <= baseline + 2


async def test_two_hundred_readers_follow_one_stream_at_once(redis: RedisServer) -> None:
    frames = [f"frame {i:02} ".encode() for i in range(20)]
    async with opened(redis.url, block=30) as store, inspector(redis.url) as inspect:
        await create(store)
        results: list[bytes] = []

        async def follow() -> None:
            results.append(await read_all(store, "s"))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for _ in range(200):
                    group.start_soon(follow)
                # All 200 wait in Redis at once, each on a connection of its own…
                await until_blocked(inspect, 200)
                # …and the producer is not queued behind them, which would take
                # a ``block`` (30 s) per append: its 20 appends, each waking 200
                # readers in this process, take about 0.5 s.
                started = time.monotonic()
                await write(store, "s", frames)
                assert time.monotonic() - started < 5
                await store.finish("s", "done", 60)
        assert results == [b"".join(frames)] * 200


async def test_a_cancel_request_crosses_from_one_worker_to_another(redis: RedisServer) -> None:
    prefix = f"test-{secrets.token_hex(4)}:"
    async with (
        opened(redis.url, prefix=prefix, block=30) as producer,
        opened(redis.url, prefix=prefix) as other,
    ):
        await create(producer)
        await write(producer, "s", [b"shared"])
        assert await read_so_far(other, "s") == b"shared"
        requested = anyio.Event()

        async def wait() -> None:
            await producer.wait_cancel_requested("s")
            requested.set()

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.sleep(0.1)
            assert not requested.is_set()
            asked = time.monotonic()
            assert await other.request_cancel("s") is True
            with anyio.fail_after(1):
                await requested.wait()
            assert time.monotonic() - asked < 0.5  # woken by Redis, not after ``block``
        # A request made before the wait counts too.
        with anyio.fail_after(1):
            await producer.wait_cancel_requested("s")
        assert await other.request_cancel("unknown") is False
        with pytest.raises(StreamNotFoundError):
            await producer.wait_cancel_requested("unknown")


async def read_so_far(store: RedisStore, stream_id: str) -> bytes:
    """What a running stream holds so far, read by ``store``."""
    info = await store.info(stream_id)
    assert info is not None
    received = b""
    async with contextlib.aclosing(store.read(stream_id)) as frames:
        async for frame in frames:
            received += frame
            if len(received) >= info.size:
                break
    return received


# -- the producer's mistakes --------------------------------------------------


async def test_writes_are_checked_and_a_rejected_one_changes_nothing(
    redis: RedisServer,
) -> None:
    async with opened(redis.url) as store, inspector(redis.url) as inspect:
        await create(store)
        await write(store, "s", [b"abc"])
        frames = f"{store.prefix}{{s}}:frames"
        with pytest.raises(ValueError, match="has 3 bytes"):
            await store.append("s", 2, b"x")
        with pytest.raises(ValueError, match="bytes to add"):
            await store.append("s", 3, b"")
        with pytest.raises(StreamNotFoundError):
            await store.append("unknown", 0, b"x")
        with pytest.raises(StreamNotFoundError):
            await store.renew("unknown", 60)
        with pytest.raises(StreamNotFoundError):
            await store.finish("unknown", "done", 60)
        with pytest.raises(ValueError, match="not 'running'"):
            await store.finish("s", "running", 60)
        with pytest.raises(StreamExistsError):
            await create(store)
        assert await inspect.xlen(frames) == 1
        info = await store.info("s")
        assert info is not None
        assert (info.size, info.status) == (3, "running")
        await store.finish("s", "done", 60)
        with pytest.raises(ValueError, match="finished"):
            await store.append("s", 3, b"late")
        assert await inspect.xlen(frames) == 2  # the frame and the end marker
        # A deleted id is free again, and starts empty.
        await store.delete("s")
        await create(store)
        await store.finish("s", "done", 60)
        assert await read_all(store, "s") == b""


# -- how a store is opened ----------------------------------------------------


async def test_a_store_opens_as_a_block_on_a_given_client_or_by_itself(
    redis: RedisServer,
) -> None:
    prefix = f"test-{secrets.token_hex(4)}:"
    async with RedisStore(redis.url, prefix=prefix) as store:
        await create(store)
        await write(store, "s", [b"from a block"])
        await store.finish("s", "done", 60)
    async with coredis.Redis.from_url(redis.url) as client:
        given = RedisStore(client=client, prefix=prefix)
        assert await read_all(given, "s") == b"from a block"
        await given.aclose()
        assert await client.ping() == b"PONG"  # the client is the caller's: still open
    with pytest.raises(StoreError, match="not open"):
        await RedisStore(client=coredis.Redis.from_url(redis.url), prefix=prefix).info("s")
    decoding: Any = coredis.Redis.from_url(redis.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client=decoding)
    with pytest.raises(TypeError):
        RedisStore(redis.url, client=coredis.Redis.from_url(redis.url))
    # Used without a block, a store opens itself, and again after ``aclose``.
    store = RedisStore(redis.url, prefix=prefix)
    assert await read_all(store, "s") == b"from a block"
    await store.aclose()
    assert await read_all(store, "s") == b"from a block"
    await store.aclose()
