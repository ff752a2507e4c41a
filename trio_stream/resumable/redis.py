"""``RedisStore``: resumable streams in Redis, shared by every worker and host.

A stream is four keys, all with the stream id as their hash tag so that they
share one cluster slot and one Lua script can touch them all::

    {prefix}{<id>}:meta     hash: media_type, headers (JSON), endings (JSON), status, size, ttl
    {prefix}{<id>}:frames   Redis Stream: the appended bytes, then an end marker
    {prefix}{<id>}:lease    the producer's lease: a string that expires unless renewed
    {prefix}{<id>}:cancel   Redis Stream: one entry once a cancel is requested

The entry ids of ``frames`` *are* byte offsets: the bytes appended at offset
``o`` are the entry ``o-1`` (in entries of at most 64 KiB: a larger append
is several entries, so a reader holds little whatever the producer writes at
once). Offsets only grow, so these are valid stream ids, and a reader
resuming at any byte finds the entry holding it with one ``XREVRANGE``
instead of scanning from the start. ``finish`` adds an entry ``<size>-2``
(after every frame, and never the id of one) carrying the final status:
readers blocked in ``XREAD`` wake up on it and stop.

Every write is one Lua script, so a stream is never half-updated (a frame
without its size, a status without its end marker) and needs one round trip.

Readers follow the live tail with ``XREAD BLOCK``, which holds a connection
for as long as it blocks; those connections are kept apart from the pool
the writes use (see ``_BlockingConnections``), so a thousand waiting readers
never delay a producer's ``append``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections.abc import AsyncGenerator, Awaitable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self, cast, get_args
from urllib.parse import urlsplit, urlunsplit

import anyio
import sniffio
import trio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

try:
    import coredis
    from coredis.connection import BaseConnection, TCPConnection, UnixDomainSocketConnection
    from coredis.exceptions import ConnectionError as RedisConnectionError
    from coredis.exceptions import RedisError
    from coredis.retry import NoRetryPolicy
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_stream.resumable.redis needs coredis: pip install 'trio-stream[redis]'"
    ) from error

from ._store import (
    ProducerLostError,
    StoreError,
    StreamExistsError,
    StreamInfo,
    StreamNotFoundError,
    StreamStatus,
)

__all__ = ["DEFAULT_URL", "RedisStore"]

DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"

_ENTRY_BYTES: Final = 64 * 1024
"""The most bytes one entry holds: a larger append is stored as several entries."""

_BATCH_BYTES: Final = 256 * 1024
"""About how many bytes a reader asks one ``XREAD`` for: what a reader holds at a time,
whatever the stream's size and however slowly its client reads."""

_BATCH_ENTRIES: Final = (16, 256)
"""The first ``XREAD``'s count, and the most any asks for. Redis counts entries, not
bytes: later reads ask for as many frames as ``_BATCH_BYTES`` holds, at the size of
the frames read last."""

_DELETED_GRACE_MS: Final = 60_000
"""How long the frames of a deleted stream may outlive ``delete`` if its second step fails."""

_FINAL: Final = frozenset(s for s in get_args(StreamStatus) if s != "running")

# KEYS: meta, frames, lease, cancel. ARGV: media_type, headers, endings, ttl ms,
# lease ms.
# Frames, lease or cancel left without their meta (which expired first) belong
# to an older stream of the same id: they are dropped, never inherited.
_CREATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'media_type', ARGV[1], 'headers', ARGV[2],
    'endings', ARGV[3], 'status', 'running', 'size', '0', 'ttl', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
return 1
"""

# KEYS: meta, frames. ARGV: offset, offset + the bytes' length, then an entry
# id and its bytes per piece. Sizes and offsets are compared as decimal
# strings computed by Python's exact integers, never as Lua numbers (doubles);
# only lengths of bytes are counted in Lua. A stream that already ends with
# the bytes at that offset has had this very append: nothing is added.
_APPEND: Final = """
local meta = redis.call('HMGET', KEYS[1], 'status', 'size', 'ttl')
if not meta[1] then
    return {0, ''}
end
if meta[1] ~= 'running' then
    return {1, meta[1]}
end
if meta[2] == ARGV[1] then
    for i = 3, #ARGV, 2 do
        redis.call('XADD', KEYS[2], ARGV[i], 'data', ARGV[i + 1])
    end
    redis.call('HSET', KEYS[1], 'size', ARGV[2])
elseif meta[2] ~= ARGV[2] then
    return {2, meta[2]}
else
    local pieces = {}
    for i = 4, #ARGV, 2 do
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

# KEYS: meta, frames, lease, cancel. ARGV: status, ttl ms. Finishing twice
# changes the status but adds no second end marker.
_FINISH: Final = """
local meta = redis.call('HMGET', KEYS[1], 'status', 'size')
if not meta[1] then
    return 0
end
if meta[1] == 'running' then
    redis.call('XADD', KEYS[2], meta[2] .. '-2', 'end', ARGV[1])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ttl', ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
return 1
"""

# KEYS: meta, frames. ARGV: the id of a frame starting at the offset read from.
# The entry at or before it is the frame holding the offset (or, past the end
# of a finished stream, its end marker).
_OPEN: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return false
end
return redis.call('XREVRANGE', KEYS[2], ARGV[1], '-', 'COUNT', 1)
"""

# KEYS: meta, lease, frames. ARGV: the last entry id a reader has seen.
_STATE: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
    return {'', 0, 0}
end
return {status, redis.call('EXISTS', KEYS[2]),
    #redis.call('XRANGE', KEYS[3], '(' .. ARGV[1], '+', 'COUNT', 1)}
"""

# KEYS: meta, cancel.
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
return 1
"""

# KEYS: meta, frames, lease, cancel. ARGV: grace ms. The marker wakes readers
# blocked on the frames; Redis serves them only once this script has ended,
# and only if the key still exists then, so the frames are unlinked by a
# second command (and expire soon if that one never comes).
_DELETE: Final = """
redis.call('XADD', KEYS[2], '*', 'deleted', '1')
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('UNLINK', KEYS[1], KEYS[3], KEYS[4])
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


Entry = tuple[bytes, dict[bytes, bytes]]


def _entries(raw: object) -> list[Entry]:
    """Entries as Redis returns them (``[[id, [field, value, ...]], ...]``)."""
    entries: list[Entry] = []
    for entry_id, flat in cast(list[tuple[bytes, list[bytes]]], raw):
        entries.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return entries


def _frame_start(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0])


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


async def _closing_buffers(connection: BaseConnection, running: Awaitable[None]) -> None:
    """Run a coredis connection, then close the in-memory streams it made for itself.

    coredis 6.9 makes them when the connection is constructed, and closes them
    only once it has connected: a connection to an unreachable Redis leaves
    them to the garbage collector, which warns (``ResourceWarning``) about
    each of them.
    """
    try:
        await running
    finally:
        for value in vars(connection).values():
            if isinstance(value, MemoryObjectSendStream | MemoryObjectReceiveStream):
                value.close()


class _TCPConnection(TCPConnection):
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await _closing_buffers(self, super().run(task_status=task_status))


class _UnixConnection(UnixDomainSocketConnection):
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await _closing_buffers(self, super().run(task_status=task_status))


_CLOSING: Final[dict[type[BaseConnection], type[BaseConnection]]] = {
    TCPConnection: _TCPConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


class _Started:
    """Passes a connection's start, or the error that prevented it, to ``TaskGroup.start``."""

    def __init__(self, status: TaskStatus[BaseException | None]) -> None:
        self._status = status
        self.done = False

    def started(self, value: None = None) -> None:
        self.done = True
        self._status.started(None)

    def failed(self, error: BaseException) -> None:
        if not self.done:
            self.done = True
            self._status.started(error)


class _BlockingConnections:
    """Connections for ``XREAD BLOCK``, each held by one waiting reader at a time.

    A blocking command occupies its connection until it returns, so it
    cannot share one with other commands the way coredis multiplexes the
    rest. And a blocking command cancelled half-way (a client going away
    cancels its reader) leaves its connection with a reply still to come:
    it must be closed, not reused. coredis 6.9's pool does close it, but
    loses the pool slot with it, so its pool would run dry after
    ``max_connections`` cancelled reads. These connections are therefore
    counted here by a ``CapacityLimiter``, which cancellation cannot
    corrupt, and run in the client pool's task group like its own.
    """

    def __init__(self, pool: coredis.ConnectionPool[Any], limit: int) -> None:
        self._pool = pool
        self._limiter = anyio.CapacityLimiter(limit)
        self._idle: list[BaseConnection] = []
        self._open: set[BaseConnection] = set()

    async def request(
        self, command: bytes, *args: bytes | str | int, reply_within: float
    ) -> object:
        """Run ``command`` on a connection of its own and return its reply.

        Raises ``TimeoutError`` if no reply comes within ``reply_within`` seconds.
        """
        async with self._limiter:
            connection = await self._take()
            try:
                reply = await connection.create_request(
                    command,
                    *args,
                    decode=False,
                    timeout=reply_within,
                    disconnect_on_cancellation=True,
                )
            except BaseException:
                # The reply may still come: nobody else may read it.
                connection.invalidate()
                raise
            if connection.usable:
                self._idle.append(connection)
            return reply

    async def _take(self) -> BaseConnection:
        while self._idle:
            idle = self._idle.pop()
            if idle.usable:
                return idle
            idle.invalidate()
        pool = self._pool
        if pool.location is None:
            raise RedisConnectionError("the coredis pool has no location to connect to")
        connection_class = _CLOSING.get(pool.connection_class, pool.connection_class)
        connection: BaseConnection = connection_class(pool.location, **pool.connection_kwargs)
        error: BaseException | None = await pool.task_group.start(self._run, connection)
        if error is not None:
            raise error
        return connection

    async def _run(
        self,
        connection: BaseConnection,
        *,
        task_status: TaskStatus[BaseException | None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        started = _Started(task_status)
        self._open.add(connection)
        try:
            await connection.run(task_status=started)
        except Exception as error:
            # Runs in the pool's task group: an error raised here would cancel
            # everything the client serves. It goes to whoever asked instead.
            started.failed(error)
        finally:
            self._open.discard(connection)
            with contextlib.suppress(ValueError):
                self._idle.remove(connection)

    def close(self) -> None:
        """Close every connection, interrupting the commands waiting on them."""
        for connection in list(self._open):
            connection.invalidate()
        self._idle.clear()


class _Owner:
    """A task holding the coredis pool open for a store used without ``async with``."""

    def __init__(self) -> None:
        self.opened = anyio.Event()
        self.stop = anyio.Event()
        self.stopped = anyio.Event()
        self.failure: Exception | None = None
        self.task: object = None  # an asyncio task is kept referenced while it runs

    async def hold(self, client: coredis.Redis[bytes]) -> None:
        try:
            async with client:
                self.opened.set()
                await self.stop.wait()
        except Exception as error:
            # Runs outside any nursery of the application: an exception here
            # would end the whole run (Trio) or go unnoticed (asyncio). The
            # store reports it to its next caller, and opens a new pool then.
            self.failure = error
        finally:
            self.opened.set()
            self.stopped.set()


class RedisStore:
    """Streams kept in Redis, shared by every process that connects to it.

    ``RedisStore(url)`` connects on first use; ``aclose`` closes its
    connections (a later use connects again). coredis runs a pool's
    connections in a task group, which the store opens in a task of its own
    (a Trio system task, or an asyncio task) unless you give it one: used as
    ``async with RedisStore(url) as store:``, the pool's task group is the
    block, and the store closes with it. Or hand it a ``coredis.Redis``
    client (``decode_responses=False``) that your application has opened
    already; the store then uses that client's pool and never closes it.

    ``lease`` is how long a stream stays running without its producer calling
    ``renew``: if the producer's process dies, readers raise
    ``ProducerLostError`` within ``lease + block`` seconds. ``block`` is how
    long one ``XREAD`` waits in Redis before a reader checks that the stream
    and its producer are still there (a third of the lease by default).
    Finishing and deleting a stream wake its readers at once.

    ``connect_timeout`` bounds connecting and ``timeout`` every command, so a
    lost Redis raises ``StoreError`` instead of hanging; commands are not
    retried. ``max_blocking_connections`` is how many reads may wait in Redis
    at once, each on a connection of its own; more wait for a free one.
    A store belongs to the event loop that first uses it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: coredis.Redis[bytes] | None = None,
        prefix: str = "trio-stream:",
        lease: float = 15.0,
        block: float | None = None,
        connect_timeout: float = 2.0,
        timeout: float = 10.0,
        max_blocking_connections: int = 1000,
    ) -> None:
        if url is not None and client is not None:
            raise TypeError("pass a url or a client, not both")
        if lease <= 0:
            raise ValueError(f"lease must be positive, not {lease}")
        if block is not None and block <= 0:
            raise ValueError(f"block must be positive, not {block}")
        if max_blocking_connections < 1:
            raise ValueError(
                f"max_blocking_connections must be at least 1, not {max_blocking_connections}"
            )
        self.lease = lease
        self.prefix = prefix
        self.block = lease / 3 if block is None else block
        self.timeout = timeout
        if client is None:
            url = DEFAULT_URL if url is None else url
            self.url = _redacted(url)
            self._owns_client = True
            self._client: coredis.Redis[bytes] = coredis.Redis.from_url(
                url,
                connect_timeout=connect_timeout,
                stream_timeout=timeout,
                # A retried write could be applied twice (a create seen as a
                # clash, an append at a stale offset): failures surface at once.
                retry_policy=NoRetryPolicy(),
            )
            pool = self._client.connection_pool
            pool.connection_class = _CLOSING.get(pool.connection_class, pool.connection_class)
        else:
            if client.decode_responses:
                raise ValueError("RedisStore needs a client with decode_responses=False")
            self.url = f"redis://{client.connection_pool.location}"
            self._owns_client = False
            self._client = client
        self._blocking = _BlockingConnections(
            self._client.connection_pool, max_blocking_connections
        )
        self._entered = False  # by ``async with``
        self._owner: _Owner | None = None  # or by a task of its own
        register = self._client.register_script
        self._create = register(_CREATE)
        self._append = register(_APPEND)
        self._renew = register(_RENEW)
        self._finish = register(_FINISH)
        self._open = register(_OPEN)
        self._state = register(_STATE)
        self._cancel = register(_CANCEL)
        self._delete = register(_DELETE)

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    async def __aenter__(self) -> Self:
        if self._owns_client and self._owner is None and not self._entered:
            await self._client.__aenter__()
            self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            if self._entered:
                self._entered = False
                # The block's own exception is not passed on: coredis would
                # wrap it in an ExceptionGroup along with its task group's.
                await self._client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Close the store's connections; using the store again reconnects.

        A client handed to the store stays open: it belongs to the caller.
        """
        self._blocking.close()
        if self._entered:
            self._client.connection_pool.disconnect()
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.stop.set()
            await owner.stopped.wait()

    async def _ready(self) -> None:
        """Open the pool if nobody has: in a task of the store's own."""
        if self._entered:
            return
        if not self._owns_client:
            try:
                self._client.connection_pool.task_group  # noqa: B018 - raises if not open
            except RuntimeError as error:
                raise StoreError(
                    f"the coredis client of {self!r} is not open: enter it with `async with`"
                ) from error
            return
        owner = self._owner
        if owner is not None and owner.opened.is_set() and not owner.stopped.is_set():
            return  # open: the common case, without a checkpoint
        if owner is None or owner.stopped.is_set():
            owner = self._owner = _Owner()
            library = sniffio.current_async_library()
            if library == "trio":
                trio.lowlevel.spawn_system_task(owner.hold, self._client, name=repr(self))
            elif library == "asyncio":
                owner.task = asyncio.get_running_loop().create_task(owner.hold(self._client))
            else:  # pragma: no cover - coredis runs on these two only
                raise StoreError(f"RedisStore runs on Trio or asyncio, not {library}")
        await owner.opened.wait()
        if owner.failure is not None:
            raise StoreError(
                f"cannot open a connection pool to Redis at {self.url}: {owner.failure}"
            ) from owner.failure

    # -- keys and errors -----------------------------------------------------

    def _keys(self, stream_id: str) -> tuple[str, str, str, str]:
        """meta, frames, lease, cancel: the hash tag ``{<id>}`` puts them on one slot."""
        base = f"{self.prefix}{{{stream_id}}}:"
        return f"{base}meta", f"{base}frames", f"{base}lease", f"{base}cancel"

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Raise what Redis or the network raised as ``StoreError``, naming the server."""
        try:
            yield
        except RedisConnectionError as error:
            raise StoreError(f"{action}: cannot reach Redis at {self.url} ({error})") from error
        except TimeoutError as error:
            raise StoreError(
                f"{action}: Redis at {self.url} did not answer in time ({error})"
            ) from error
        except (RedisError, OSError) as error:
            raise StoreError(
                f"{action}: Redis at {self.url} failed ({type(error).__name__}: {error})"
            ) from error

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
        await self._ready()
        with self._translated(f"create stream {stream_id!r}"):
            created: object = await self._create(
                keys=self._keys(stream_id),
                args=[media_type, encoded, ends, _ms(ttl), _ms(self.lease)],
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
        meta, frames, _, _ = self._keys(stream_id)
        # Entries of at most ``_ENTRY_BYTES``, so that what a reader holds stays
        # bounded however much the producer appends at once.
        data = bytes(data)
        args: list[str | bytes | int] = [offset, offset + len(data)]
        for start in range(0, len(data), _ENTRY_BYTES):
            args += [f"{offset + start}-1", data[start : start + _ENTRY_BYTES]]
        await self._ready()
        with self._translated(f"append to stream {stream_id!r}"):
            code, value = cast(list[Any], await self._append(keys=[meta, frames], args=args))
        if code == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        if code == 1:
            raise ValueError(f"stream {stream_id!r} has finished ({value.decode()})")
        if code == 2:
            raise ValueError(
                f"append at {offset}, but stream {stream_id!r} has {value.decode()} bytes"
            )

    async def renew(self, stream_id: str, ttl: float) -> None:
        """Extend the producer's lease, and the stream's ``ttl``."""
        await self._ready()
        with self._translated(f"renew stream {stream_id!r}"):
            renewed: object = await self._renew(
                keys=self._keys(stream_id), args=[_ms(ttl), _ms(self.lease)]
            )
        if renewed == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")

    async def finish(self, stream_id: str, status: StreamStatus, ttl: float) -> None:
        """Mark the stream ended with ``status``; it stays readable for ``ttl`` seconds."""
        if status not in _FINAL:
            raise ValueError(f"a stream ends done, failed or cancelled, not {status!r}")
        await self._ready()
        with self._translated(f"finish stream {stream_id!r}"):
            finished: object = await self._finish(
                keys=self._keys(stream_id), args=[status, _ms(ttl)]
            )
        if finished == 0:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")

    # -- anyone's side -------------------------------------------------------

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's record, or ``None`` if there is no such stream."""
        meta = self._keys(stream_id)[0]
        await self._ready()
        with self._translated(f"read stream {stream_id!r}"):
            fields = await self._client.hgetall(meta)
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
        stream is running, and ``StoreError`` if the store is lost. An offset
        past the end of a finished stream yields nothing.
        """
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        meta, frames, lease, _ = self._keys(stream_id)
        action = f"read stream {stream_id!r}"
        await self._ready()
        with self._translated(action):
            found: object = await self._open(keys=[meta, frames], args=[f"{offset}-1"])
        if found is None:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        batch = _entries(found)
        # ``cursor`` is the last entry seen, ``expected`` where the next frame
        # must start (anywhere, for the one found holding ``offset``): a gap
        # means the stream was replaced under this reader.
        cursor, expected = b"0-0", None if batch else 0
        count, most = _BATCH_ENTRIES
        block_ms = _ms(self.block)
        while True:
            if batch:
                held = sum(len(fields.get(b"data", b"")) for _, fields in batch)
                count = max(1, min(most, _BATCH_BYTES * len(batch) // max(held, 1)))
            for entry_id, fields in batch:
                data = fields.get(b"data")
                if data is None:
                    if b"deleted" in fields:
                        raise StreamNotFoundError(f"stream {stream_id!r} was deleted")
                    return  # the end marker
                start = _frame_start(entry_id)
                if expected is not None and start != expected:
                    raise StreamNotFoundError(f"stream {stream_id!r} was deleted or replaced")
                cursor, expected = entry_id, start + len(data)
                if expected > offset:
                    yield data[max(offset - start, 0) :]
            await self._ready()
            with self._translated(action):
                reply = await self._blocking.request(
                    b"XREAD",
                    b"COUNT",
                    count,
                    b"BLOCK",
                    block_ms,
                    b"STREAMS",
                    frames,
                    cursor,
                    reply_within=self.block + self.timeout,
                )
            if reply is not None:
                # One stream asked for, so one in the reply.
                (entries,) = cast(dict[bytes, object], reply).values()
                batch = _entries(entries)
                continue
            batch = []
            # Nothing for ``block`` seconds: is anyone still writing?
            await self._ready()
            with self._translated(action):
                status, alive, more = cast(
                    list[Any], await self._state(keys=[meta, lease, frames], args=[cursor])
                )
            if not status:
                raise StreamNotFoundError(f"stream {stream_id!r} was deleted or expired")
            if status == b"running" and not alive and not more:
                raise ProducerLostError(
                    f"stream {stream_id!r} is running, but its producer stopped renewing its lease"
                )

    async def request_cancel(self, stream_id: str) -> bool:
        """Ask the stream's producer, wherever it runs, to cancel the run.

        Returns whether the stream exists and was running.
        """
        meta, _, _, cancel = self._keys(stream_id)
        await self._ready()
        with self._translated(f"cancel stream {stream_id!r}"):
            return bool(await self._cancel(keys=[meta, cancel]))

    async def wait_cancel_requested(self, stream_id: str) -> None:
        """Return when ``request_cancel`` has been called for the stream.

        Raises ``StreamNotFoundError`` if there is no such stream when called.
        """
        meta, _, _, cancel = self._keys(stream_id)
        action = f"wait for a cancel of stream {stream_id!r}"
        await self._ready()
        with self._translated(action):
            exists = await self._client.exists([meta])
        if not exists:
            raise StreamNotFoundError(f"no stream {stream_id!r}: unknown, expired or deleted")
        block_ms = _ms(self.block)
        while True:
            # From 0-0, so a request made before this call counts too.
            await self._ready()
            with self._translated(action):
                reply = await self._blocking.request(
                    b"XREAD",
                    b"COUNT",
                    1,
                    b"BLOCK",
                    block_ms,
                    b"STREAMS",
                    cancel,
                    b"0-0",
                    reply_within=self.block + self.timeout,
                )
            if reply is not None:
                return

    async def delete(self, stream_id: str) -> None:
        """Forget the stream; readers following it end with ``StreamNotFoundError``."""
        keys = self._keys(stream_id)
        await self._ready()
        with self._translated(f"delete stream {stream_id!r}"):
            await self._delete(keys=keys, args=[_DELETED_GRACE_MS])
            await self._client.unlink([keys[1]])
