"""Notices: one Redis Pub/Sub connection wakes every waiting reader of a worker.

Each script that changes a stream publishes a notice on the stream's
channel, and a worker subscribes, on one connection, to the channels of the
streams its readers wait on: thousands of waiting readers hold no connection
of their own, and the commands they send when woken share the client's
pool, which coredis multiplexes. A blocking ``XREAD`` cannot do this
everywhere: on Redis Cluster one command may only name keys of one slot, and
each stream has a slot of its own.

A notice says only "this stream changed"; a reader then reads from its own
cursor. Pub/Sub keeps nothing for a subscriber that is away, so a notice can
be lost when the connection drops: that delays a reader until it checks its
stream on its own (every ``block`` seconds), and can never cost it a byte or
repeat one. After each (re)subscription every watcher of the channel is
woken, in case something was said while nobody listened.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .._errors import describe
from .._telemetry import log_extra

try:
    import coredis
    from coredis.retry import NoRetryPolicy
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_stream.resumable.redis needs coredis: pip install 'trio-stream[redis]'"
    ) from error

__all__ = ["Notices", "Watch"]

logger = logging.getLogger("trio_stream")

_RETRY_DELAYS = (0.05, 2.0)
"""The first and the longest pause before connecting again after losing the connection."""


class Watch:
    """What this worker knows of one channel: who waits on it, and whether it is heard."""

    __slots__ = ("changed", "subscribed", "users")

    def __init__(self) -> None:
        self.users = 0
        self.subscribed = anyio.Event()
        """Set once Redis confirmed the subscription on the current connection."""
        self.changed = anyio.Event()
        """Set, and replaced, at every notice: a waiter takes the current one, then looks."""

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class Notices:
    """Subscriptions to the channels of the streams this worker's readers wait on.

    ``run`` holds the Pub/Sub connection, in a task of the store's own, and
    connects again whenever it is lost (Redis restarted, failed over, or a
    cluster node gone): subscriptions are then made again, and every watcher
    woken. ``watching(channel)`` subscribes for the block it covers, and
    unsubscribes when the last watcher of the channel leaves.
    """

    def __init__(
        self, client: coredis.Redis[bytes] | coredis.RedisCluster[bytes], *, timeout: float
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._watches: dict[bytes, Watch] = {}
        self._to_subscribe: set[bytes] = set()
        self._to_unsubscribe: set[bytes] = set()
        self._asked = anyio.Event()
        self.connections = 0
        """How many times the Pub/Sub connection was made (for tests and figures)."""

    @contextlib.asynccontextmanager
    async def watching(self, channel: str, *, wait: float) -> AsyncIterator[Watch]:
        """Watch ``channel`` for the block, waiting at most ``wait`` seconds for the
        subscription to be confirmed (a watcher that does not hear notices still checks
        its stream every ``block`` seconds)."""
        key = channel.encode()
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = Watch()
        watch.users += 1
        if watch.users == 1:
            self._to_unsubscribe.discard(key)
            if not watch.subscribed.is_set():
                self._ask(self._to_subscribe, key)
        try:
            with anyio.move_on_after(wait):
                await watch.subscribed.wait()
            yield watch
        finally:
            watch.users -= 1
            if watch.users == 0:
                self._to_subscribe.discard(key)
                self._ask(self._to_unsubscribe, key)

    def _ask(self, requests: set[bytes], key: bytes) -> None:
        requests.add(key)
        self._asked.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the Pub/Sub connection until cancelled, connecting again when it is lost."""
        task_status.started()
        first, longest = _RETRY_DELAYS
        delay = first
        while True:
            try:
                await self._listen()
            except Exception as error:  # any failure: connect again
                # Runs for the store's life: an error raised here would close
                # the store under its users. Readers and producers still check
                # their streams themselves, and report a Redis that is gone.
                logger.info(
                    "resumable streams: notices interrupted (%s)",
                    describe(error),
                    extra=log_extra(),
                )
            finally:
                self._lost()
            await anyio.sleep(delay)
            delay = min(delay * 2, longest)

    async def _listen(self) -> None:
        pubsub: Any = self._client.pubsub(
            retry_policy=NoRetryPolicy(),
            subscription_timeout=self._timeout,
            max_idle_seconds=max(1.0, self._timeout),
        )
        async with pubsub, anyio.create_task_group() as group:
            self.connections += 1
            # Every channel still watched, subscribed again on this connection.
            self._to_subscribe |= {key for key, watch in self._watches.items() if watch.users}
            self._asked.set()
            group.start_soon(self._subscribe_as_asked, pubsub)
            while True:
                message = await pubsub.get_message()
                if message is not None:
                    self._heard(message["type"], message["channel"])

    async def _subscribe_as_asked(self, pubsub: Any) -> None:
        while True:
            await self._asked.wait()
            self._asked = anyio.Event()
            leaving = [key for key in self._to_unsubscribe if not self._users(key)]
            joining = [key for key in self._to_subscribe if self._users(key)]
            self._to_unsubscribe.clear()
            self._to_subscribe.clear()
            if leaving:
                for key in leaving:
                    if key in self._watches:
                        self._watches[key].subscribed = anyio.Event()
                await pubsub.unsubscribe(*leaving)
            if joining:
                await pubsub.subscribe(*joining)

    def _users(self, key: bytes) -> int:
        watch = self._watches.get(key)
        return 0 if watch is None else watch.users

    def _heard(self, kind: str, channel: object) -> None:
        key = channel if isinstance(channel, bytes) else str(channel).encode()
        watch = self._watches.get(key)
        if watch is None:
            return
        if kind == "subscribe":
            # Heard from now on; what was said before, the watchers look for.
            watch.subscribed.set()
            watch.wake()
        elif kind == "unsubscribe":
            if watch.users == 0:
                del self._watches[key]
            else:  # watched again meanwhile
                self._ask(self._to_subscribe, key)
        elif kind == "message":
            watch.wake()

    def _lost(self) -> None:
        """The connection is gone: nothing is heard until it is back; everyone looks."""
        for watch in self._watches.values():
            watch.subscribed = anyio.Event()
            watch.wake()
        for key in [key for key, watch in self._watches.items() if not watch.users]:
            del self._watches[key]
        self._to_unsubscribe.clear()
