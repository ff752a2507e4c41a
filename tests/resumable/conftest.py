"""Every store test runs against each store: in memory, and Redis on real servers.

``make_store`` makes open stores of the kind of its parameter: memory and
one Redis server by default, and also a Redis Cluster and a primary behind
Sentinel where a module widens ``store_kind`` (``test_store.py``, the
contract, does). The topologies are started once per session, when a test
first needs them.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from trio_stream.resumable import MemoryStore, StreamStore
from trio_stream.resumable.redis import RedisStore

from .redis_server import (
    RedisCluster,
    RedisSentinel,
    RedisServer,
    redis_cluster,
    redis_sentinel,
    redis_server,
)

StoreFactory = Callable[..., Awaitable[StreamStore]]

TOPOLOGIES = ["redis", "cluster", "sentinel"]
"""Every way ``RedisStore`` runs on Redis."""


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as servers:
        yield servers


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    with redis_sentinel(tmp_path_factory.mktemp("sentinel")) as servers:
        yield servers


def redis_store(kind: str, request: pytest.FixtureRequest, **options: Any) -> RedisStore:
    """A ``RedisStore`` on the topology ``kind``, with a key prefix of its own; not open."""
    options.setdefault("prefix", f"test-{secrets.token_hex(4)}:")
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        return RedisStore(server.url, **options)
    if kind == "cluster":
        servers: RedisCluster = request.getfixturevalue("cluster")
        return RedisStore.cluster(servers.urls, **options)
    assert kind == "sentinel", kind
    watched: RedisSentinel = request.getfixturevalue("sentinel")
    return RedisStore.sentinel(watched.addresses, watched.service, **options)


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(
    store_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[StoreFactory]:
    """Makes fresh, open stores of one kind (``await make_store(lease=...)``), closed
    after the test; with ``opened=False``, stores for a ``ResumableStreams`` to open."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(lease: float = 2.0, *, opened: bool = True) -> StreamStore:
            if store_kind == "memory":
                store: StreamStore = MemoryStore(lease=lease)
                stack.push_async_callback(store.aclose)
                return store
            unopened = redis_store(store_kind, request, lease=lease)
            if not opened:
                return unopened
            return await stack.enter_async_context(unopened)

        yield make


@pytest.fixture
async def store(make_store: StoreFactory) -> StreamStore:
    return await make_store()
