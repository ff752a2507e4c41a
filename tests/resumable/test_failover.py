"""A Redis primary killed mid-stream, on a real Redis Cluster and behind real Sentinels.

The primary holding the stream is killed (SIGKILL) while a producer writes
and readers follow; its replica is promoted (within about two seconds here,
where failures are detected in half a second). The producer's appends and
the readers' reads ride out the failover, so the readers continue: every
byte once, in order, and the stream ends as its producer ended it. The
killed server stays down.

Each topology here is the test's own, as its primary is killed; the tests
run on Trio only, as what they test is Redis's failover and the store's
riding it out, not the event loop.
"""

from __future__ import annotations

import contextlib
import gc
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from trio_stream.resumable.redis import RedisStore

from .redis_server import (
    RedisCluster,
    RedisSentinel,
    RedisServer,
    redis_cluster,
    redis_sentinel,
)

pytestmark = pytest.mark.anyio

FRAMES = [f"frame {i:02}\n".encode() for i in range(40)]


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture
def failing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with redis_cluster(tmp_path_factory.mktemp("failing-cluster")) as cluster:
        yield cluster
    gc.collect()  # what the test left, collected while its warning filters apply


@pytest.fixture
def failing_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    with redis_sentinel(tmp_path_factory.mktemp("failing-sentinel")) as sentinel:
        yield sentinel


@contextlib.asynccontextmanager
async def streaming(store: RedisStore, readers: int) -> AsyncIterator[list[bytes]]:
    """A stream ``s`` with ``readers`` following it from the start; what each received,
    once the block (which writes and finishes it) is done."""
    await store.create("s", media_type="text/plain", headers=[], endings={}, ttl=60)
    received = [b""] * readers

    async def follow(index: int) -> None:
        async with contextlib.aclosing(store.read("s")) as frames:
            async for frame in frames:
                received[index] += frame

    async with anyio.create_task_group() as group:
        for index in range(readers):
            group.start_soon(follow, index)
        yield received


async def write(store: RedisStore, frames: list[bytes], offset: int, pace: float) -> int:
    for frame in frames:
        await store.append("s", offset, frame)
        offset += len(frame)
        await anyio.sleep(pace)
    return offset


async def killed_mid_stream(store: RedisStore, primary: RedisServer) -> tuple[list[bytes], float]:
    """Write the frames, killing ``primary`` half-way; what three readers received, and
    how long the failover held the producer up."""
    async with streaming(store, readers=3) as received:
        offset = await write(store, FRAMES[:20], 0, pace=0.01)
        primary.stop()
        started = time.monotonic()
        offset = await write(store, FRAMES[20:21], offset, pace=0)  # held until promoted
        held = time.monotonic() - started
        offset = await write(store, FRAMES[21:], offset, pace=0.01)
        await store.finish("s", "done", 60)
    return received, held


# coredis 6.9 finds the new primary by asking every node it knows, the dead one
# included, with clients of its own making, out of the store's reach: each
# attempt on the dead node leaves the in-memory buffers of its connection
# open (see trio_stream/resumable/_coredis_fixes.py), which Python reports
# when they are collected. They are collected as the test ends (by its
# cluster fixture), and only those reports are ignored.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in.*MemoryObject(Send|Receive)Stream\.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_a_cluster_primary_killed_mid_stream_is_ridden_out(
    failing_cluster: RedisCluster,
) -> None:
    prefix = f"failover-{secrets.token_hex(4)}:"
    primary = failing_cluster.node_for(f"{prefix}{{s}}:meta")
    async with RedisStore.cluster(failing_cluster.urls, prefix=prefix) as store:
        received, held = await killed_mid_stream(store, primary)
        assert received == [b"".join(FRAMES)] * 3
        info = await store.info("s")
        assert info is not None
        assert (info.status, info.size) == ("done", len(b"".join(FRAMES)))
        print(f"cluster failover held the producer for {held:.2f} s")


async def test_a_sentinel_primary_killed_mid_stream_is_ridden_out(
    failing_sentinel: RedisSentinel,
) -> None:
    prefix = f"failover-{secrets.token_hex(4)}:"
    primary = failing_sentinel.primary()
    async with RedisStore.sentinel(
        failing_sentinel.addresses, failing_sentinel.service, prefix=prefix
    ) as store:
        received, held = await killed_mid_stream(store, primary)
        assert received == [b"".join(FRAMES)] * 3
        info = await store.info("s")
        assert info is not None
        assert (info.status, info.size) == ("done", len(b"".join(FRAMES)))
        print(f"sentinel failover held the producer for {held:.2f} s")
    assert failing_sentinel.primary() is not primary
