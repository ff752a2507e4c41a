"""What ``RedisStore`` keeps in Redis, and how it behaves when Redis or a reader goes away.

The store contract itself (``test_store.py``) runs against Redis too, on
every topology; these tests look inside Redis (keys, entry ids, expiry,
channels, connections) and at the failures only a networked store has:
Redis unreachable, silent, killed or restarted, bytes Redis lost, readers
cancelled while they wait, thousands of readers on few connections, and two
stores (two workers) sharing one stream.
"""

from __future__ import annotations

import contextlib
import gc
import secrets
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
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
from .redis_server import RedisCluster, RedisServer, redis_server

pytestmark = pytest.mark.anyio

ENDINGS = {"gone": b'3:"gone"\n'}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A server for this module alone: some tests count its clients and its commands."""
    with redis_server() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, to kill."""
    with redis_server() as server:
        yield server


@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[RedisStore]:
    """An open store with a key prefix of its own, closed after the block."""
    options.setdefault("prefix", f"test-{secrets.token_hex(4)}:")
    async with RedisStore(url, **options) as store:
        yield store


@contextlib.asynccontextmanager
async def inspector(url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    """A plain client, to look at what the store wrote."""
    async with coredis.Redis.from_url(url) as client:
        yield client


@contextlib.asynccontextmanager
async def named(url: str, name: str, **options: Any) -> AsyncIterator[RedisStore]:
    """An open store on a client of the test's own, whose connections Redis lists by
    ``name``."""
    options.setdefault("prefix", f"test-{secrets.token_hex(4)}:")
    async with (
        coredis.Redis.from_url(url, client_name=name) as client,
        RedisStore(client=client, **options) as store,
    ):
        yield store


async def create(store: RedisStore, stream_id: str = "s", ttl: float = 60) -> str:
    await store.create(
        stream_id, media_type="text/plain", headers=[("x-test", "1")], endings=ENDINGS, ttl=ttl
    )
    return stream_id


async def write(store: RedisStore, stream_id: str, frames: list[bytes], offset: int = 0) -> int:
    """Append ``frames`` from ``offset``; the stream's size then."""
    for frame in frames:
        await store.append(stream_id, offset, frame)
        offset += len(frame)
    return offset


async def read_all(store: RedisStore, stream_id: str, offset: int = 0) -> bytes:
    async with contextlib.aclosing(store.read(stream_id, offset)) as frames:
        return b"".join([frame async for frame in frames])


async def until(condition: Any) -> None:
    """Wait until ``await condition()`` holds: polled, as Redis has no event to wait for."""
    with anyio.fail_after(5):
        while not await condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def listeners(inspect: coredis.Redis[bytes], store: RedisStore, stream_id: str) -> int:
    """How many connections are subscribed to news of ``stream_id``: one per worker
    whose readers wait on it, however many they are."""
    channel = f"{store.prefix}{{{stream_id}}}:changed"
    counts = await inspect.pubsub_numsub(channel)
    return int(counts[channel.encode()])


async def connections(inspect: coredis.Redis[bytes], name: str) -> int:
    """How many connections Redis has from clients named ``name``."""
    return sum(1 for client in await inspect.client_list() if client["name"] == name)


async def commands(inspect: coredis.Redis[bytes], name: str) -> int:
    """How many times Redis has run the command ``name`` (``INFO commandstats``)."""
    stats = await inspect.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    return int(entry["calls"]) if isinstance(entry, dict) else 0


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


async def test_deleting_a_stream_ends_its_waiting_reader_and_leaves_no_key(
    redis: RedisServer,
) -> None:
    async with opened(redis.url, block=30) as store, inspector(redis.url) as inspect:
        await create(store)
        await write(store, "s", [b"kept "])
        frames = store.read("s")
        async with contextlib.aclosing(frames):
            assert await anext(frames) == b"kept "
            async with anyio.create_task_group() as group:

                async def delete_once_waiting() -> None:
                    await until(lambda: listeners_are(inspect, store, "s", 1))
                    await store.delete("s")

                group.start_soon(delete_once_waiting)
                with anyio.fail_after(1), pytest.raises(StreamNotFoundError):
                    await anext(frames)
        assert await inspect.keys(f"{store.prefix}*") == set()
        assert await store.info("s") is None


async def listeners_are(
    inspect: coredis.Redis[bytes], store: RedisStore, stream_id: str, count: int
) -> bool:
    return await listeners(inspect, store, stream_id) == count


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


async def test_an_unreachable_redis_fails_what_starts_at_once_and_what_goes_on_in_time() -> None:
    """A call that starts something (create, info, cancel) fails at once, so that its
    client is told to try again; a call that continues a stream (a read) rides out a
    failover for ``failover_timeout`` seconds, then fails."""
    port = free_port()  # nothing listens there
    async with opened(f"redis://:secret@127.0.0.1:{port}/0", failover_timeout=1) as store:
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"127.0.0.1:{port}") as raised:
            await create(store)
        assert "secret" not in str(raised.value)  # the password stays out of logs
        with pytest.raises(StoreError):
            await store.info("s")
        with pytest.raises(StoreError):
            await store.request_cancel("s")
        assert time.monotonic() - started < 3
        started = time.monotonic()
        with pytest.raises(StoreError, match="cannot reach"):
            await read_all(store, "s")
        assert 0.9 < time.monotonic() - started < 3


# coredis 6.9 asks a cluster for its layout with clients of its own making,
# out of the store's reach, whose connections to a node that is down leave
# their buffers open (see trio_stream/resumable/_coredis_fixes.py): they are
# collected in the test, and only those reports ignored.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in.*MemoryObject(Send|Receive)Stream\.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_a_cluster_that_cannot_be_reached_is_a_store_error_when_the_store_opens() -> None:
    """A cluster store asks the cluster for its layout as it opens: with no node to ask,
    opening fails, naming the nodes it tried."""
    port = free_port()
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        async with RedisStore.cluster(f"redis://127.0.0.1:{port}", connect_timeout=0.5):
            pass
    gc.collect()


async def test_a_store_is_used_as_a_block() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreError, match="not open"):
        await store.info("s")


async def test_a_redis_that_accepts_but_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never reads
        port = silent.getsockname()[1]
        async with opened(f"redis://127.0.0.1:{port}/0", timeout=0.3) as store:
            started = time.monotonic()
            with pytest.raises(StoreError):
                await create(store)
            assert time.monotonic() - started < 2


async def test_redis_killed_mid_read_is_a_store_error_in_time_and_the_store_recovers(
    own_redis: RedisServer,
) -> None:
    async with (
        opened(own_redis.url, block=30, failover_timeout=0.5) as store,
        inspector(own_redis.url) as inspect,
    ):
        await create(store)
        await write(store, "s", [b"before"])
        frames = store.read("s")
        async with contextlib.aclosing(frames):
            assert await anext(frames) == b"before"
            async with anyio.create_task_group() as group:

                async def kill_once_waiting() -> None:
                    await until(lambda: listeners_are(inspect, store, "s", 1))
                    own_redis.stop()

                group.start_soon(kill_once_waiting)
                # Woken by the lost connection, the reader rides out a failover
                # for half a second, then gives up.
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


async def test_a_redis_restarted_with_its_data_goes_unnoticed_by_producer_and_reader(
    tmp_path: Path,
) -> None:
    """Redis is killed and started again (keeping its data on disk) while a producer
    writes and a reader follows: both ride it out, and the reader gets every byte once."""
    durable = RedisServer(
        free_port(), ["--appendonly", "yes", "--appendfsync", "always"], tmp_path / "redis"
    )
    durable.start()
    frames = [f"frame {i:02} ".encode() for i in range(20)]
    received = b""
    try:
        async with opened(durable.url, failover_timeout=10) as store:
            await create(store)

            async def follow() -> None:
                nonlocal received
                received = await read_all(store, "s")

            async with anyio.create_task_group() as group:
                group.start_soon(follow)
                offset = await write(store, "s", frames[:10])
                durable.stop()

                async def restart() -> None:
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(durable.start)

                group.start_soon(restart)
                # Sent while Redis is down: held until it is back.
                offset = await write(store, "s", frames[10:], offset)
                await store.finish("s", "done", 60)
    finally:
        durable.stop()
    assert received == b"".join(frames)


# KEYS: meta, frames. ARGV: the size to go back to, then the entries to drop.
_LOSE = """
redis.call('XDEL', KEYS[2], unpack(ARGV, 2))
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
redis.call('XSETID', KEYS[2], last[1] and last[1][1] or '0-0')
redis.call('HSET', KEYS[1], 'size', ARGV[1])
"""


async def lose(inspect: coredis.Redis[bytes], store: RedisStore, entries: list[str]) -> None:
    """Make the stream ``s`` as a replica promoted too early has it: without the last
    ``entries`` (its last entry id is the last it kept), and as many bytes shorter."""
    base = f"{store.prefix}{{s}}:"
    size = min(int(entry.partition("-")[0]) for entry in entries)
    await inspect.eval(_LOSE, keys=[f"{base}meta", f"{base}frames"], args=[size, *entries])


async def follow(store: RedisStore, received: list[bytes]) -> None:
    """Read ``s`` into ``received`` until it ends; what it raised, raised."""
    async with contextlib.aclosing(store.read("s")) as frames:
        async for frame in frames:
            received.append(frame)


async def test_appends_a_failover_lost_are_appended_again_by_the_producers_store(
    redis: RedisServer,
) -> None:
    """A failover to a replica that had not received the last two appends: the
    producer's store finds the stream shorter than it made it, appends them again as
    they were, then the next; a reader that had them and one that had not each get
    every byte once."""
    async with opened(redis.url, block=30) as store, inspector(redis.url) as inspect:
        await create(store)
        had, fresh = list[bytes](), list[bytes]()
        async with anyio.create_task_group() as group:
            group.start_soon(follow, store, had)
            offset = await write(store, "s", [b"kept ", b"lost ", b"also lost "])
            await until(lambda: has(had, 3))
            await lose(inspect, store, ["5-1", "10-1"])
            group.start_soon(follow, store, fresh)
            await until(lambda: has(fresh, 1))
            await write(store, "s", [b"next"], offset)
            await store.finish("s", "done", 60)
        whole = b"kept lost also lost next"
        assert (b"".join(had), b"".join(fresh)) == (whole, whole)
        assert await read_all(store, "s") == whole


async def has(received: list[bytes], count: int) -> bool:
    await anyio.lowlevel.checkpoint()
    return len(received) >= count


async def test_a_loss_beyond_what_the_producer_remembers_ends_every_reader_with_an_error(
    redis: RedisServer,
) -> None:
    """Lost appends of more bytes than the producer's store remembers (256 KiB): the
    stream cannot go on; the producer's next append raises ``StoreError``, its lease
    runs out, and every reader, whether or not it had the lost bytes, ends with an
    error rather than at a shorter end."""
    pieces = [bytes([65 + i]) * 30_000 for i in range(10)]
    async with opened(redis.url, lease=0.5) as store, inspector(redis.url) as inspect:
        await create(store)
        offset = await write(store, "s", pieces)
        await lose(inspect, store, [f"{30_000 * i}-1" for i in range(1, 10)])
        with pytest.raises(StoreError, match="more than this worker can append again"):
            await store.append("s", offset, b"next")
        for received in (list[bytes](), list[bytes]()):
            with anyio.fail_after(3), pytest.raises(ProducerLostError):
                await follow(store, received)
            assert b"".join(received) == pieces[0]


async def test_a_stream_ended_short_of_bytes_a_reader_had_is_an_error_for_it(
    redis: RedisServer,
) -> None:
    """Ended by a worker that did not write it, at a size Redis lost bytes below: the
    reader that had them raises ``StoreError``; it does not end quietly short."""
    prefix = f"test-{secrets.token_hex(4)}:"
    async with (
        opened(redis.url, prefix=prefix, block=30) as store,
        opened(redis.url, prefix=prefix) as other,
        inspector(redis.url) as inspect,
    ):
        await create(store)
        await write(store, "s", [b"kept ", b"lost"])
        frames = store.read("s")
        async with contextlib.aclosing(frames):
            assert await anext(frames) == b"kept "
            assert await anext(frames) == b"lost"
            await lose(inspect, store, ["5-1"])
            await other.finish("s", "failed", 60)
            with anyio.fail_after(2), pytest.raises(StoreError, match="lost"):
                await anext(frames)
        assert await read_all(store, "s") == b"kept "


# -- many readers, cancelled readers, several workers -------------------------


async def test_readers_cancelled_while_waiting_leave_nothing_behind(redis: RedisServer) -> None:
    async with (
        named(redis.url, "cancelled-readers", block=30) as store,
        inspector(redis.url) as inspect,
    ):
        await create(store)
        held = []
        for _ in range(5):
            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(read_all, store, "s")
                await until(lambda: listeners_are(inspect, store, "s", 1))
                group.cancel_scope.cancel()
            held.append(await connections(inspect, "cancelled-readers"))
        # The last reader gone, the worker stops listening to the stream.
        await until(lambda: listeners_are(inspect, store, "s", 0))
        with anyio.fail_after(2):
            await write(store, "s", [b"still ", b"works"])
            await store.finish("s", "done", 60)
            assert await read_all(store, "s") == b"still works"
        # A hundred cancelled reads cost no connection: as many are open after
        # the fifth twenty as after the first (one for news, one or two for
        # commands).
        assert held[-1] == held[0] <= 3


async def test_two_hundred_readers_of_one_stream_share_a_connection_and_their_reads(
    redis: RedisServer,
) -> None:
    frames = [f"frame {i:02} ".encode() for i in range(20)]
    async with (
        named(redis.url, "two-hundred", block=30) as store,
        inspector(redis.url) as inspect,
    ):
        await create(store)
        results: list[bytes] = []

        async def follow() -> None:
            results.append(await read_all(store, "s"))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for _ in range(200):
                    group.start_soon(follow)
                # All 200 wait on one subscription…
                await until(lambda: listeners_are(inspect, store, "s", 1))
                await anyio.sleep(0.2)  # and every one of them is waiting
                scripts = await commands(inspect, "evalsha")
                # …and the producer is not held up by them: its 20 appends, each
                # waking 200 readers in this process, take about half a second.
                started = time.monotonic()
                await write(store, "s", frames)
                assert time.monotonic() - started < 5
                await store.finish("s", "done", 60)
        assert results == [b"".join(frames)] * 200
        # Readers woken at the same place share one read of Redis: 21 writes
        # and about as many reads, not 200 reads per write.
        assert await commands(inspect, "evalsha") - scripts < 21 * 4
        assert await connections(inspect, "two-hundred") <= 3


async def test_a_slow_reader_holds_back_neither_the_others_nor_its_bytes(
    redis: RedisServer,
) -> None:
    """Four readers of one stream follow its tail together; one of them has a client
    that takes 20 ms per frame. The tail does not wait for it: it lets it go, and the
    slow reader reads on its own, from where it is; every reader gets every byte."""
    frames = [bytes([65 + i % 26]) * 1000 for i in range(60)]
    async with opened(redis.url, block=30) as store, inspector(redis.url) as inspect:
        await create(store)
        received: dict[str, bytes] = {}
        ended: dict[str, float] = {}

        async def follow(name: str, pause: float) -> None:
            got = b""
            async with contextlib.aclosing(store.read("s")) as chunks:
                async for chunk in chunks:
                    got += chunk
                    await anyio.sleep(pause)
            received[name], ended[name] = got, time.monotonic()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for name in ("a", "b", "c"):
                    group.start_soon(follow, name, 0)
                group.start_soon(follow, "slow", 0.02)
                await until(lambda: listeners_are(inspect, store, "s", 1))
                await write(store, "s", frames)
                await store.finish("s", "done", 60)
        assert received == dict.fromkeys(("a", "b", "c", "slow"), b"".join(frames))
        # 60 frames at 20 ms each: the slow reader ends a second after the others.
        assert ended["slow"] - max(ended["a"], ended["b"], ended["c"]) > 0.5


async def test_readers_of_many_streams_need_a_handful_of_connections(redis: RedisServer) -> None:
    async with (
        named(redis.url, "many-streams", block=30) as store,
        inspector(redis.url) as inspect,
    ):
        streams = [f"stream-{i:03}" for i in range(100)]
        for stream_id in streams:
            await create(store, stream_id)
        received: dict[str, bytes] = {}

        async def follow(stream_id: str) -> None:
            received[stream_id] = await read_all(store, stream_id)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for stream_id in streams:
                    for _ in range(3):
                        group.start_soon(follow, stream_id)
                await until(lambda: all_listened(inspect, store, streams))
                waiting = await connections(inspect, "many-streams")
                for stream_id in streams:
                    await write(store, stream_id, [stream_id.encode()])
                    await store.finish(stream_id, "done", 60)
        assert received == {stream_id: stream_id.encode() for stream_id in streams}
        # 300 readers waiting on 100 streams: one connection for the news of all
        # of them, one or two for commands.
        assert waiting <= 3


async def all_listened(inspect: coredis.Redis[bytes], store: RedisStore, ids: list[str]) -> bool:
    channels = [f"{store.prefix}{{{stream_id}}}:changed" for stream_id in ids]
    counts = await inspect.pubsub_numsub(*channels)
    return all(count == 1 for count in counts.values())


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


async def test_a_store_opens_as_a_block_on_its_own_client_or_a_given_one(
    redis: RedisServer,
) -> None:
    prefix = f"test-{secrets.token_hex(4)}:"
    async with RedisStore(redis.url, prefix=prefix) as store:
        await create(store)
        await write(store, "s", [b"from a block"])
        await store.finish("s", "done", 60)
        with pytest.raises(RuntimeError, match="open already"):
            await store.__aenter__()
    with pytest.raises(StoreError, match="not open"):
        await store.info("s")
    async with coredis.Redis.from_url(redis.url) as client:
        async with RedisStore(client=client, prefix=prefix) as given:
            assert await read_all(given, "s") == b"from a block"
        assert await client.ping() == b"PONG"  # the client is the caller's: still open
    decoding: Any = coredis.Redis.from_url(redis.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client=decoding)
    with pytest.raises(TypeError):
        RedisStore(redis.url, client=coredis.Redis.from_url(redis.url))
    # Open again after its block, a store connects again.
    async with RedisStore(redis.url, prefix=prefix) as store:
        assert await read_all(store, "s") == b"from a block"
        await store.aclose()  # its connections closed: the next call makes new ones
        assert await read_all(store, "s") == b"from a block"


async def test_a_cluster_store_opens_and_closes_leaving_nothing_open(
    cluster: RedisCluster,
) -> None:
    """coredis's cluster client leaves streams of its own open; the store closes them.
    (Were it not to, collecting the client would warn, which fails this test.)"""
    async with RedisStore.cluster(cluster.urls, prefix=f"test-{secrets.token_hex(4)}:") as store:
        await create(store)
        await store.finish("s", "done", 60)
    del store
    gc.collect()
