"""``RedisStore``: resumable streams in Redis, shared by every worker and host.

A stream is four keys, all with the stream id as their hash tag, so that they
share one cluster slot and one Lua script can touch them all::

    {prefix}{<id>}:meta     hash: media_type, headers (JSON), endings (JSON), status,
                            size, ttl, and the nonce of the create that made it
    {prefix}{<id>}:frames   Redis Stream: the appended bytes, then an end marker
    {prefix}{<id>}:lease    the producer's lease: a string that expires unless renewed
    {prefix}{<id>}:cancel   Redis Stream: one entry once a cancel is requested

The entry ids of ``frames`` *are* byte offsets: the bytes appended at offset
``o`` are the entry ``o-1`` (in entries of at most 64 KiB: a larger append
is several entries, so a reader holds little whatever the producer writes at
once). Offsets only grow, so these are valid stream ids, and a reader
resuming at any byte finds the entry holding it with one ``XREVRANGE``
instead of scanning from the start. ``finish`` adds an entry ``<size>-2``
(after every frame, and never the id of one) carrying the final status.

Every write is one Lua script, so a stream is never half-updated (a frame
without its size, a status without its end marker) and needs one round
trip; the scripts that change what a reader or a producer waits for also
publish a notice on the stream's channel (``{prefix}{<id>}:changed``, or
``:cancelled`` for a cancel request). A worker's waiting readers hold no
connection: one Pub/Sub connection hears the notices (``_notices.py``), and
the readers of a worker that have caught up with a stream follow its tail,
which reads each new batch once for all of them (``_following.py``), on the
client's pool, which coredis multiplexes.

The store runs on one Redis server, on Redis Cluster, and behind Sentinel.
While Redis fails over (or restarts), the calls that continue a running
stream (``append``, ``renew``, ``finish``, reading, waiting for a cancel)
are sent again, for up to ``failover_timeout`` seconds: each is safe to
repeat (an append sent again is stored once, a create sent again finds its
own nonce). The calls that start something (``create``, ``info``,
``request_cancel``, ``delete``) fail at once, so that a client is answered
"try again" instead of waiting. Appends a failover lost (Redis replicates
asynchronously) are appended again by the producer's store (``_replay.py``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast, get_args
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.abc import TaskGroup

try:
    import coredis
    from coredis.connection import TCPLocation
    from coredis.exceptions import (
        ClusterDownError,
        ClusterError,
        ReadOnlyError,
        RedisError,
        SentinelError,
        TryAgainError,
    )
    from coredis.exceptions import ConnectionError as RedisConnectionError
    from coredis.retry import NoRetryPolicy
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_stream.resumable.redis needs coredis: pip install 'trio-stream[redis]'"
    ) from error

from .._telemetry import log_extra
from ._coredis_fixes import ClosingSentinelPool, close_buffers_of, close_cluster_layout
from ._following import Entry, Position, Read, Tails
from ._notices import Notices
from ._replay import Replay
from ._store import (
    StoreError,
    StreamExistsError,
    StreamInfo,
    StreamNotFoundError,
    StreamStatus,
)

__all__ = ["DEFAULT_URL", "RedisStore"]

logger = logging.getLogger("trio_stream")

T = TypeVar("T")

DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"

_ENTRY_BYTES: Final = 64 * 1024
"""The most bytes one entry holds: a larger append is stored as several entries."""

_RETRY_DELAYS: Final = (0.05, 0.5)
"""The first and the longest pause between two tries of a call riding out a failover."""

_PASSING: Final = (
    RedisConnectionError,  # unreachable, restarting, loading its data
    TimeoutError,
    ReadOnlyError,  # a primary demoted to a replica
    ClusterDownError,
    TryAgainError,
    ClusterError,  # the cluster client's redirections exhausted mid-failover
    SentinelError,  # no primary known yet, or a stale one
)
"""What Redis raises while it fails over or restarts: a call riding it out is sent again."""

_FINAL: Final = frozenset(s for s in get_args(StreamStatus) if s != "running")

# KEYS: meta, frames, lease, cancel. ARGV: media_type, headers, endings, ttl ms,
# lease ms, nonce.
# Frames, lease or cancel left without their meta (which expired first) belong
# to an older stream of the same id: they are dropped, never inherited. The
# nonce makes a create sent again (its reply lost) succeed instead of finding
# its own stream in the way.
_CREATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    if redis.call('HGET', KEYS[1], 'nonce') == ARGV[6] then
        return 1
    end
    return 0
end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'media_type', ARGV[1], 'headers', ARGV[2],
    'endings', ARGV[3], 'status', 'running', 'size', '0', 'ttl', ARGV[4], 'nonce', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
return 1
"""

# KEYS: meta, frames. ARGV: the channel, offset, offset + the bytes' length,
# then an entry id and its bytes per piece. Sizes and offsets are compared as
# decimal strings computed by Python's exact integers, never as Lua numbers
# (doubles); only lengths of bytes are counted in Lua. A stream that already
# ends with the bytes at that offset has had this very append: nothing is added.
_APPEND: Final = """
local meta = redis.call('HMGET', KEYS[1], 'status', 'size', 'ttl')
if not meta[1] then
    return {0, ''}
end
if meta[1] ~= 'running' then
    return {1, meta[1]}
end
if meta[2] == ARGV[2] then
    for i = 4, #ARGV, 2 do
        redis.call('XADD', KEYS[2], ARGV[i], 'data', ARGV[i + 1])
    end
    redis.call('HSET', KEYS[1], 'size', ARGV[3])
    redis.call('PUBLISH', ARGV[1], 'a')
elseif meta[2] ~= ARGV[3] then
    return {2, meta[2]}
else
    local pieces = {}
    for i = 5, #ARGV, 2 do
        pieces[#pieces + 1] = ARGV[i]
    end
    local data = table.concat(pieces)
    -- The stream's last #data bytes, from the entries at its end.
    local tail, missing, before = {}, #data, '+'
    while missing > 0 do
        local entries = redis.call('XREVRANGE', KEYS[2], before, '-', 'COUNT', 64)
        if #entries == 0 then
            break
        end
        for _, entry in ipairs(entries) do
            local stored = entry[2][2]
            tail[#tail + 1] = stored
            missing = missing - #stored
            before = '(' .. entry[1]
            if missing <= 0 then
                break
            end
        end
    end
    local reversed = {}
    for i = #tail, 1, -1 do
        reversed[#reversed + 1] = tail[i]
    end
    if string.sub(table.concat(reversed), -#data) ~= data then
        return {2, meta[2]}
    end
end
redis.call('PEXPIRE', KEYS[1], meta[3])
redis.call('PEXPIRE', KEYS[2], meta[3])
return {3, ''}
"""

# KEYS: meta, frames, lease, cancel. ARGV: ttl ms, lease ms.
_RENEW: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
    return 0
end
redis.call('HSET', KEYS[1], 'ttl', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[1])
if status == 'running' then
    redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
end
return 1
"""

# KEYS: meta, frames, lease, cancel. ARGV: status, ttl ms, the channel, and
# the size the producer knows the stream to have, or ''. Finishing twice
# changes the status but adds no second end marker. A running stream shorter
# than its producer knows (decimal strings, compared by length first) has
# lost appends in a failover: it is not finished, and its size is returned.
_FINISH: Final = """
local meta = redis.call('HMGET', KEYS[1], 'status', 'size')
if not meta[1] then
    return 0
end
local known = ARGV[4]
if meta[1] == 'running' and known ~= '' and
        (#meta[2] < #known or (#meta[2] == #known and meta[2] < known)) then
    return {2, meta[2]}
end
if meta[1] == 'running' then
    redis.call('XADD', KEYS[2], meta[2] .. '-2', 'end', ARGV[1])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ttl', ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'f')
return 1
"""

# KEYS: meta, frames, lease. ARGV: an entry id, the most entries to return,
# and '1' to start at the entry holding the byte the id names (for an id
# '<offset>-1', the entry at or before it: the frame holding that byte or,
# past the end of a finished stream, its end marker), else after the id.
# Returns nil for no stream, else its status, whether its lease is held, and
# the entries.
_READ: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
    return false
end
local start = '(' .. ARGV[1]
if ARGV[3] == '1' then
    local holding = redis.call('XREVRANGE', KEYS[2], ARGV[1], '-', 'COUNT', 1)
    start = holding[1] and holding[1][1] or '-'
end
return {status, redis.call('EXISTS', KEYS[3]),
    redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', ARGV[2])}
"""

# KEYS: meta, cancel. ARGV: the channel.
_CANCEL: Final = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('XADD', KEYS[2], '*', 'requested', '1')
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[1], 'c')
return 1
"""

# KEYS: meta, frames, lease, cancel. ARGV: the channel. Readers woken by the
# notice find no stream.
_DELETE: Final = """
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[1], 'd')
return 1
"""


def _ms(seconds: float) -> int:
    """Whole milliseconds, at least one: Redis reads ``0`` as "forever" or "now"."""
    return max(1, math.ceil(seconds * 1000))


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _check_options(
    lease: float, block: float | None, timeout: float, failover_timeout: float, connections: int
) -> None:
    for name, value in (("lease", lease), ("block", block), ("timeout", timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, not {value}")
    if not failover_timeout >= 0:
        raise ValueError(f"failover_timeout must not be negative, not {failover_timeout}")
    if connections < 2:
        raise ValueError(f"max_connections must be at least 2, not {connections}")


def _location(address: str) -> TCPLocation:
    """A ``host:port`` or a ``redis://host:port`` URL as a coredis location."""
    parts = urlsplit(address if "//" in address else f"//{address}")
    if not parts.hostname or parts.port is None:
        raise ValueError(f"a Redis node is host:port or redis://host:port, not {address!r}")
    return TCPLocation(parts.hostname, parts.port)


def _entries(raw: object) -> list[Entry]:
    """Entries as Redis returns them (``[[id, [field, value, ...]], ...]``)."""
    entries: list[Entry] = []
    for entry_id, flat in cast(list[tuple[bytes, list[bytes]]], raw):
        entries.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return entries


def _info(stream_id: str, fields: dict[bytes, bytes]) -> StreamInfo:
    """A stream's record from its meta hash; ``KeyError`` or ``ValueError`` if malformed."""
    status = fields[b"status"].decode()
    if status not in get_args(StreamStatus):
        raise ValueError(f"unknown status {status!r}")
    return StreamInfo(
        stream_id=stream_id,
        media_type=fields[b"media_type"].decode(),
        headers=tuple((str(n), str(v)) for n, v in json.loads(fields[b"headers"])),
        endings={
            str(kind): base64.b64decode(ending)
            for kind, ending in json.loads(fields[b"endings"]).items()
        },
        status=cast(StreamStatus, status),
        size=int(fields[b"size"]),
    )


class RedisStore:
    """Streams kept in Redis, shared by every process that connects to it.

    Open it as a block, ``async with RedisStore(url) as store:`` (a
    ``ResumableStreams`` block opens its store): the block holds its
    connections and the task that hears its notices, and closes them.

    ``RedisStore(url)`` uses one Redis server; ``RedisStore.cluster(urls)``
    a Redis Cluster; ``RedisStore.sentinel(sentinels, service)`` the primary
    that Redis Sentinel names, whichever it is. Or hand it a ``coredis``
    client (``coredis.Redis`` or ``coredis.RedisCluster``, with
    ``decode_responses=False``) that your application has opened: the store
    then uses it and never closes it.

    ``lease`` is how long a stream stays running without its producer calling
    ``renew``: if the producer's process dies, readers raise
    ``ProducerLostError`` within ``lease + 2 * block`` seconds. ``block`` is
    how long a reader waits for news of its stream before it looks for itself
    (a third of the lease by default); finishing and deleting a stream wake
    its readers at once.

    ``connect_timeout`` bounds connecting and ``timeout`` every command, so a
    lost Redis raises ``StoreError`` instead of hanging. While Redis fails
    over, the calls that continue a running stream are sent again for up to
    ``failover_timeout`` seconds (set it above the time your Sentinel or
    Cluster takes to promote a replica); the calls that start something fail
    at once. ``max_connections`` bounds the connections the store makes to
    each Redis server: one for its notices, the others shared by all its
    commands, which coredis sends without waiting for each other's replies.
    A store belongs to the event loop that opens it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: coredis.Redis[bytes] | coredis.RedisCluster[bytes] | None = None,
        prefix: str = "trio-stream:",
        lease: float = 15.0,
        block: float | None = None,
        connect_timeout: float = 2.0,
        timeout: float = 10.0,
        failover_timeout: float = 15.0,
        max_connections: int = 8,
    ) -> None:
        if url is not None and client is not None:
            raise TypeError("pass a url or a client, not both")
        _check_options(lease, block, timeout, failover_timeout, max_connections)
        self.lease = lease
        self.prefix = prefix
        self.block = lease / 3 if block is None else block
        self.timeout = timeout
        self.failover_timeout = failover_timeout
        self._owned: list[contextlib.AbstractAsyncContextManager[Any]] = []
        if client is None:
            url = DEFAULT_URL if url is None else url
            self.url = _redacted(url)
            client = coredis.Redis.from_url(
                url,
                connect_timeout=connect_timeout,
                stream_timeout=timeout,
                max_connections=max_connections,
                # The store sends again what is safe to send again, and only that.
                retry_policy=NoRetryPolicy(),
            )
            close_buffers_of(client.connection_pool)
            self._owned.append(client)
        else:
            if client.decode_responses:
                raise ValueError("RedisStore needs a client with decode_responses=False")
            self.url = repr(client)
        self._client: coredis.Redis[bytes] | coredis.RedisCluster[bytes] = client
        self._notices = Notices(client, timeout=timeout)
        self._tails = Tails(self._notices, self._read_after, lambda i: self._channels(i)[0])
        self._replay = Replay()
        self._group: TaskGroup | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._after_close: Callable[[], None] = lambda: None
        self._scripts = [
            client.register_script(script)
            for script in (_CREATE, _APPEND, _RENEW, _FINISH, _READ, _CANCEL, _DELETE)
        ]
        (
            self._create,
            self._append,
            self._renew,
            self._finish,
            self._read,
            self._cancel,
            self._delete,
        ) = self._scripts

    @classmethod
    def cluster(
        cls,
        nodes: str | Sequence[str],
        *,
        prefix: str = "trio-stream:",
        lease: float = 15.0,
        block: float | None = None,
        connect_timeout: float = 2.0,
        timeout: float = 10.0,
        failover_timeout: float = 15.0,
        max_connections: int = 8,
    ) -> RedisStore:
        """A store on a Redis Cluster, found from ``nodes``: URLs (``redis://[user:pass@]
        host:port``; credentials are taken from the first) of some of its nodes, any
        of which may be down."""
        urls = [nodes] if isinstance(nodes, str) else list(nodes)
        if not urls:
            raise ValueError("a cluster needs at least one node to start from")
        first = urlsplit(urls[0] if "//" in urls[0] else f"//{urls[0]}")
        client: coredis.RedisCluster[bytes] = coredis.RedisCluster(
            startup_nodes=[_location(url) for url in urls],
            decode_responses=False,
            username=first.username,
            password=first.password,
            ssl=first.scheme == "rediss",
            connect_timeout=connect_timeout,
            stream_timeout=timeout,
            max_connections=max_connections,
            max_connections_per_node=True,
            retry_policy=NoRetryPolicy(),
        )
        store = cls(
            client=client,
            prefix=prefix,
            lease=lease,
            block=block,
            connect_timeout=connect_timeout,
            timeout=timeout,
            failover_timeout=failover_timeout,
            max_connections=max_connections,
        )
        close_buffers_of(client.connection_pool)
        store._owned.append(client)
        store._after_close = lambda: close_cluster_layout(client)
        store.url = "cluster " + ",".join(repr(_location(url)) for url in urls)
        return store

    @classmethod
    def sentinel(
        cls,
        sentinels: Sequence[str],
        service: str,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        prefix: str = "trio-stream:",
        lease: float = 15.0,
        block: float | None = None,
        connect_timeout: float = 2.0,
        timeout: float = 10.0,
        failover_timeout: float = 15.0,
        max_connections: int = 8,
    ) -> RedisStore:
        """A store on the primary of ``service`` that the Redis Sentinels at ``sentinels``
        (``host:port`` each) name, asking them again when it fails over. ``username``
        and ``password`` are the primary's."""
        if not sentinels:
            raise ValueError("Sentinel needs at least one sentinel to ask")
        manager: coredis.Sentinel[bytes] = coredis.Sentinel(
            [_location(address) for address in sentinels],
            connect_timeout=connect_timeout,
            stream_timeout=timeout,
        )
        for asked in manager.sentinels:
            close_buffers_of(asked.connection_pool)
        client = manager.primary_for(
            service,
            connection_pool_class=ClosingSentinelPool,
            max_connections=max_connections,
            db=db,
            username=username,
            password=password,
        )
        store = cls(
            client=client,
            prefix=prefix,
            lease=lease,
            block=block,
            connect_timeout=connect_timeout,
            timeout=timeout,
            failover_timeout=failover_timeout,
            max_connections=max_connections,
        )
        store._owned += [manager, client]
        store.url = f"sentinel service {service!r} via {','.join(sentinels)}"
        return store

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError(f"{self!r} is open already")
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._after_close)
            for owned in self._owned:
                try:
                    # A cluster client asks the cluster for its layout here.
                    await owned.__aenter__()
                except (RedisError, OSError, TimeoutError) as error:
                    raise self._failure("open the store", error) from error
                # Not given the block's exception: coredis would wrap it in an
                # ExceptionGroup along with its task group's.
                stack.push_async_callback(owned.__aexit__, None, None, None)
            group = await stack.enter_async_context(anyio.create_task_group())
            await group.start(self._notices.run)
            group.start_soon(self._load_scripts)
            self._tails.group, self._tails.block = group, self.block
            self._group, self._exit = group, stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        group, stack = self._group, self._exit
        if group is None or stack is None:
            return
        self._group = self._exit = self._tails.group = None
        group.cancel_scope.cancel()
        await stack.__aexit__(None, None, None)

    async def _load_scripts(self) -> None:
        """Load the scripts into Redis once, rather than have every first call of each
        find it missing and load it (coredis's ``Script`` does, which is what covers a
        Redis restarted or failed over since)."""
        for script in self._scripts:
            try:
                await self._client.script_load(script.script)
            except (RedisError, OSError, TimeoutError) as error:
                logger.debug(
                    "scripts not loaded into Redis at %s: %r",
                    self.url,
                    error,
                    extra=log_extra(url=self.url),
                )
                return

    async def aclose(self) -> None:
        """Close the store's connections; an open store connects again when next used.

        The store itself closes at the end of its ``async with`` block; a
        client handed to the store is the caller's, and stays open.
        """
        if self._group is not None:
            self._client.connection_pool.disconnect()

    # -- keys, channels and calls ---------------------------------------------

    def _keys(self, stream_id: str) -> tuple[str, str, str, str]:
        """meta, frames, lease, cancel: the hash tag ``{<id>}`` puts them on one slot."""
        base = f"{self.prefix}{{{stream_id}}}:"
        return f"{base}meta", f"{base}frames", f"{base}lease", f"{base}cancel"

    def _channels(self, stream_id: str) -> tuple[str, str]:
        """Where news of a stream is published: its changes, and a cancel request."""
        base = f"{self.prefix}{{{stream_id}}}:"
        return f"{base}changed", f"{base}cancelled"

    async def _call(
        self, action: str, request: Callable[[], Awaitable[T]], *, ride_out: bool = True
    ) -> T:
        """``request()``, raising what Redis or the network raised as ``StoreError``.

        While Redis fails over or restarts (``_PASSING``), a request that
        ``ride_out`` allows is sent again, for up to ``failover_timeout``
        seconds: it must be safe to repeat.
        """
        if self._group is None:
            raise StoreError(f"{self!r} is not open: use it as `async with store:`")
        give_up_at: float | None = None
        delay = _RETRY_DELAYS[0]
        while True:
            try:
                return await request()
            except _PASSING as error:
                now = anyio.current_time()
                if give_up_at is None:
                    give_up_at = now + (self.failover_timeout if ride_out else 0.0)
                if now >= give_up_at:
                    raise self._failure(action, error) from error
                logger.debug(
                    "%s: Redis at %s: %r; trying again",
                    action,
                    self.url,
                    error,
                    extra=log_extra(url=self.url),
                )
                if isinstance(self._client, coredis.RedisCluster):
                    # What the client's own retries would do: the errors it is told
                    # of make it ask the cluster again which node holds which slot.
                    await self._client.on_retry_error(error)
            except (RedisError, OSError) as error:
                raise self._failure(action, error) from error
            await anyio.sleep(min(delay, give_up_at - now))
            delay = min(delay * 2, _RETRY_DELAYS[1])

    def _failure(self, action: str, error: Exception) -> StoreError:
        """What ``error`` means for the store's caller, naming the server."""
        if isinstance(error, RedisConnectionError):
            return StoreError(f"{action}: cannot reach Redis at {self.url} ({error})")
        if isinstance(error, TimeoutError):
            return StoreError(f"{action}: Redis at {self.url} did not answer in time ({error})")
        return StoreError(
            f"{action}: Redis at {self.url} failed ({type(error).__name__}: {error})"
        )

    # -- the producer's side -------------------------------------------------

    async def create(
        self,
        stream_id: str,
        *,
        media_type: str,
        headers: Sequence[tuple[str, str]],
        endings: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        """Record a new, running stream, kept for ``ttl`` seconds after its last write.

        Raises ``StreamExistsError`` if the id is taken.
        """
        encoded = json.dumps([[name, value] for name, value in headers])
        ends = json.dumps({kind: base64.b64encode(end).decode() for kind, end in endings.items()})
        args: list[str | int] = [
            media_type,
            encoded,
            ends,
            _ms(ttl),
            _ms(self.lease),
            secrets.token_hex(8),
        ]
        created: object = await self._call(
            f"create stream {stream_id!r}",
            lambda: self._create(keys=self._keys(stream_id), args=args),
            ride_out=False,
        )
        if created == 0:
            raise StreamExistsError(f"a stream {stream_id!r} exists already")

    async def append(self, stream_id: str, offset: int, data: bytes) -> None:
        """Add ``data`` (not empty) at byte ``offset``, which is the stream's size so far,
        and keep the stream its ``ttl`` from now.

        If the stream already ends with ``data`` at ``offset`` (this append was
        applied, but its reply was lost), nothing is added. Raises
        ``ValueError`` if ``offset`` is not the size, or the stream has
        finished; the stream is left as it was.
        """
        if not data:
            raise ValueError("append needs bytes to add")
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        data = bytes(data)
        code, value = await self._append_once(stream_id, offset, data)
        if code == 2 and int(value) < offset and self._replay.end(stream_id) == offset:
            # Shorter than this store made it: a failover lost appends.
            await self._append_again(stream_id, int(value), offset)
            code, value = await self._append_once(stream_id, offset, data)
        if code == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        if code == 1:
            raise ValueError(f"stream {stream_id!r} has finished ({value.decode()})")
        if code == 2:
            raise ValueError(
                f"append at {offset}, but stream {stream_id!r} has {value.decode()} bytes"
            )
        self._replay.remember(stream_id, offset, data)

    async def _append_once(self, stream_id: str, offset: int, data: bytes) -> tuple[int, bytes]:
        """The append script's answer: its code, and the status or size it names."""
        meta, frames, _, _ = self._keys(stream_id)
        # Entries of at most ``_ENTRY_BYTES``, so that what a reader holds stays
        # bounded however much the producer appends at once.
        args: list[str | bytes | int] = [self._channels(stream_id)[0], offset, offset + len(data)]
        for start in range(0, len(data), _ENTRY_BYTES):
            args += [f"{offset + start}-1", data[start : start + _ENTRY_BYTES]]
        code, value = cast(
            list[Any],
            await self._call(
                f"append to stream {stream_id!r}",
                lambda: self._append(keys=[meta, frames], args=args),
            ),
        )
        return int(code), bytes(value)

    async def _append_again(self, stream_id: str, size: int, end: int) -> None:
        """Append again what took the stream from ``size`` bytes to ``end``, as it was
        appended; raise ``StoreError`` if this store no longer has it all."""
        pieces = self._replay.since(stream_id, size, end)
        if pieces is None:
            raise StoreError(
                f"stream {stream_id!r} in Redis at {self.url} lost bytes {size} to {end} "
                "(a failover to a replica that had not received them), more than this "
                "worker can append again"
            )
        logger.warning(
            "resumable stream %s: Redis lost bytes %d to %d (a failover?); appending them again",
            stream_id,
            size,
            end,
            extra=log_extra(stream_id=stream_id, url=self.url),
        )
        for offset, data in pieces:
            code, value = await self._append_once(stream_id, offset, data)
            if code != 3:
                raise StoreError(
                    f"stream {stream_id!r} in Redis at {self.url} changed while its lost "
                    f"bytes were appended again ({code}, {value!r})"
                )

    async def renew(self, stream_id: str, ttl: float) -> None:
        """Extend the producer's lease, and the stream's ``ttl``."""
        renewed: object = await self._call(
            f"renew stream {stream_id!r}",
            lambda: self._renew(keys=self._keys(stream_id), args=[_ms(ttl), _ms(self.lease)]),
        )
        if renewed == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")

    async def finish(self, stream_id: str, status: StreamStatus, ttl: float) -> None:
        """Mark the stream ended with ``status``; it stays readable for ``ttl`` seconds."""
        if status not in _FINAL:
            raise ValueError(f"a stream ends done, failed or cancelled, not {status!r}")
        known = self._replay.end(stream_id)
        args: list[str | int] = [status, _ms(ttl), self._channels(stream_id)[0], known or ""]

        async def finish() -> object:
            return await self._call(
                f"finish stream {stream_id!r}",
                lambda: self._finish(keys=self._keys(stream_id), args=args),
            )

        finished = await finish()
        if isinstance(finished, list) and known is not None:
            # Shorter than this store made it: a failover lost appends.
            await self._append_again(stream_id, int(finished[1]), known)
            finished = await finish()
        if finished == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        self._replay.forget(stream_id)

    async def wait_cancel_requested(self, stream_id: str) -> None:
        """Return when ``request_cancel`` has been called for the stream.

        Raises ``StreamNotFoundError`` if there is no such stream when called.
        """
        meta, _, _, cancel = self._keys(stream_id)
        action = f"wait for a cancel of stream {stream_id!r}"
        if not await self._call(action, lambda: self._client.exists([meta])):
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        channel = self._channels(stream_id)[1]
        async with self._notices.watching(channel, wait=self.block) as watch:
            while True:
                # From before looking: a request made while we look wakes us.
                changed = watch.changed
                if await self._call(action, lambda: self._client.exists([cancel])):
                    return
                with anyio.move_on_after(self.block):
                    await changed.wait()

    # -- anyone's side -------------------------------------------------------

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's record, or ``None`` if there is no such stream."""
        meta = self._keys(stream_id)[0]
        fields = await self._call(
            f"read stream {stream_id!r}", lambda: self._client.hgetall(meta), ride_out=False
        )
        if not fields:
            return None
        try:
            return _info(stream_id, fields)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise StoreError(f"{meta} in Redis at {self.url} is not a stream's record") from error

    async def read(self, stream_id: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The stream's bytes from ``offset``: those stored, then live ones as they are
        appended, until the stream ends.

        Raises ``StreamNotFoundError`` (before yielding) for an unknown id,
        ``ProducerLostError`` if the producer's lease runs out while the
        stream is running, and ``StoreError`` if the store is lost, or has
        lost bytes this reader has had. An offset past the end of a finished
        stream yields nothing.
        """
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        position = Position(stream_id, offset)
        found = await self._read_stream(stream_id, f"{offset}-1", position.count, holding=True)
        while True:
            for data in position.take(found.entries):
                yield data
            if position.ended:
                return
            if found.to_the_end:
                position.check(found, self.block)
                # Caught up: the stream's tail reads on for every reader here.
                if (listener := self._tails.follow(stream_id, position.cursor)) is not None:
                    with listener:
                        while True:
                            await listener.wait()
                            if (handed := listener.take()) is None:
                                break  # let go: read on alone
                            for data in position.take(handed.entries):
                                yield data
                            if position.ended:
                                return
                            if handed.to_the_end:
                                position.check(handed, self.block)
            found = await self._read_after(stream_id, position.cursor, position.count)

    async def _read_after(self, stream_id: str, cursor: bytes, count: int) -> Read:
        return await self._read_stream(stream_id, cursor.decode(), count)

    async def _read_stream(
        self, stream_id: str, start: str, count: int, *, holding: bool = False
    ) -> Read:
        """Up to ``count`` entries after the entry ``start`` (from the one holding it, if
        ``holding``), with the stream's status and lease."""
        meta, frames, lease, _ = self._keys(stream_id)
        args: list[str | int] = [start, count, "1" if holding else "0"]
        raw: object = await self._call(
            f"read stream {stream_id!r}", lambda: self._read(keys=[meta, frames, lease], args=args)
        )
        if raw is None:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        status, leased, entries = cast(list[Any], raw)
        return Read(status, bool(leased), _entries(entries), count)

    async def request_cancel(self, stream_id: str) -> bool:
        """Ask the stream's producer, wherever it runs, to cancel the run.

        Returns whether the stream exists and was running.
        """
        meta, _, _, cancel = self._keys(stream_id)
        channel = self._channels(stream_id)[1]
        return bool(
            await self._call(
                f"cancel stream {stream_id!r}",
                lambda: self._cancel(keys=[meta, cancel], args=[channel]),
                ride_out=False,
            )
        )

    async def delete(self, stream_id: str) -> None:
        """Forget the stream; readers following it end with ``StreamNotFoundError``."""
        self._replay.forget(stream_id)
        channel = self._channels(stream_id)[0]
        await self._call(
            f"delete stream {stream_id!r}",
            lambda: self._delete(keys=self._keys(stream_id), args=[channel]),
            ride_out=False,
        )
