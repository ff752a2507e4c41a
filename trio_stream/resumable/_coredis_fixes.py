"""The one place the Redis store reaches past coredis's public API, and why.

coredis 6.9 leaves two kinds of in-memory streams (``anyio`` memory object
streams) open, which Python reports when they are collected
(``ResourceWarning: Unclosed MemoryObjectSendStream``), and which a test
suite run with warnings as errors (this one) reports as failures:

- a connection makes its buffers when it is constructed, and closes them
  only once it has connected: every attempt to reach a Redis that is down
  (failing over, restarting, unreachable) leaves six behind;
- a cluster client's layout opens a pair for the errors it counts, and
  never closes it.

The store applies these fixes to the clients it makes (never to one handed
to it): its pools make connections of a subclass that closes its buffers
when it ends, and a closed cluster client's layout streams are closed. They
touch coredis's pool attribute ``connection_class`` (public), the method a
Sentinel pool constructs its connections with, and the names of the layout's
streams (both private): should a later coredis change those, the fixes do
nothing, and the tests that reach a Redis that is down, fail one over, and
open and close a cluster store, with these warnings as errors, say so.

One case is out of reach: to learn a cluster's layout, coredis makes
clients of its own for each node it knows, and those left by a node that is
down are not closed. The two tests that meet it (a cluster primary killed,
a cluster that cannot be reached) ignore exactly those reports.
"""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from coredis.connection import BaseConnection, SentinelManagedConnection
from coredis.pool import SentinelConnectionPool

__all__ = ["ClosingSentinelPool", "close_buffers_of", "close_cluster_layout"]

C = TypeVar("C", bound=BaseConnection)

_CLOSING: dict[type[Any], type[Any]] = {}


def _close_buffers(connection: object) -> None:
    for value in vars(connection).values():
        if isinstance(value, MemoryObjectSendStream | MemoryObjectReceiveStream):
            value.close()


def _closing(connection_class: type[C]) -> type[C]:
    """``connection_class``, whose connections close their buffers when they end."""
    closing = _CLOSING.get(connection_class)
    if closing is None:

        class Closing(connection_class):  # type: ignore[valid-type,misc]
            async def run(
                self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                try:
                    await super().run(task_status=task_status)
                finally:
                    _close_buffers(self)

        Closing.__name__ = Closing.__qualname__ = connection_class.__name__
        closing = _CLOSING[connection_class] = Closing
    return closing


def close_buffers_of(pool: Any) -> None:
    """Make the connections ``pool`` makes from now on close their buffers when they end."""
    pool.connection_class = _closing(pool.connection_class)


class ClosingSentinelPool(SentinelConnectionPool):
    """A Sentinel pool whose connections close their buffers when they end.

    coredis's makes its connections of one class, whatever its
    ``connection_class``: this makes them of that class's closing subclass,
    at the primary (or a replica) that the Sentinels name.
    """

    async def _construct_connection(self) -> SentinelManagedConnection:
        if self.is_primary:
            location = await self.get_primary_location()
        else:
            location = await self.get_replica()
        return _closing(SentinelManagedConnection)(
            location, self.service_name, self.is_primary, **self.connection_kwargs
        )


def close_cluster_layout(client: Any) -> None:
    """Close the streams a closed ``coredis.RedisCluster`` client's layout left open."""
    layout = getattr(client.connection_pool, "cluster_layout", None)
    for stream in getattr(layout, "_error_stream", ()):
        if isinstance(stream, MemoryObjectSendStream | MemoryObjectReceiveStream):
            stream.close()
