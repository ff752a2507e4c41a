"""Every store test runs against each store: in memory, and Redis on a real server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from trio_stream.resumable import MemoryStore, StreamStore

from .redis_server import RedisServer, redis_server

StoreFactory = Callable[..., StreamStore]


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Makes fresh stores of one kind (``make_store(lease=...)``); Redis ones get a key
    prefix of their own. All are closed after the test."""
    made: list[StreamStore] = []

    def make(lease: float = 2.0) -> StreamStore:
        if request.param == "memory":
            store: StreamStore = MemoryStore(lease=lease)
        else:
            from trio_stream.resumable.redis import RedisStore

            server: RedisServer = request.getfixturevalue("redis")
            store = RedisStore(server.url, prefix=f"test-{secrets.token_hex(4)}:", lease=lease)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.aclose()


@pytest.fixture
def store(make_store: StoreFactory) -> StreamStore:
    return make_store()
