"""``ResumableStreams``: runs that outlive their connection.

A resumable run is started under a stream id and produces into a store,
whether or not anyone reads: its producer task lives in the
``ResumableStreams`` nursery, not in the request that started it. Every
response, the first one included, is a reader of the store from a byte
offset, so a client that reconnects (to this worker or another one sharing
the store) and asks for the offset where its connection broke receives
exactly the bytes it missed, then the live tail, then the end.

A producer stops when its run finishes or fails (the error chunk is stored
like any other), when ``cancel`` is called from any worker, or when its
server shuts down: at the cut-off of a graceful shutdown (``serve()``), or
when the ``ResumableStreams`` block exits. In every case, whatever moment the
stop lands at, every byte the run wrote is stored once, then the format's
closing bytes once, and the stream is marked with how it ended; a shutdown
also stores an error chunk saying so, since the run did not end by itself. A
disconnected client stops only its own reader.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType

import anyio
from anyio.abc import TaskGroup
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .._errors import collapse, describe
from .._run import Run
from .._shutdown import Shutdown, shutdown_of
from .._telemetry import Reading, bind_log_fields, log_extra, measured, reading, unbind_log_fields
from ..asgi import (
    BodySender,
    HeartbeatOption,
    Interruption,
    ListeningResponse,
    heartbeat_interval,
    write_chunks,
)
from ..chunks import ErrorChunk
from ..formats import StreamEncoder
from ._appender import (
    Appender,
    Limits,
    StreamTooLargeError,
    Superseded,
    encoding_chunk_by_chunk,
)
from ._hooks import OnAcquire, OnAppend, OnError, OnFinish, ProducerEnded, StreamHooks, WaitUntil
from ._ids import new_stream_id, validate_stream_id
from ._store import (
    ProducerLostError,
    StoreError,
    StreamExistsError,
    StreamNotFoundError,
    StreamStatus,
    StreamStore,
)
from .memory import MemoryStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TTL",
    "STREAM_ID_HEADER",
    "ResumableStreams",
    "StreamTooLargeError",
]

logger = logging.getLogger("trio_stream")

STREAM_ID_HEADER = "x-resumable-stream-id"
"""The response header that tells the client its stream id."""

DEFAULT_TTL = 3600.0
"""Seconds a stream stays readable after its last write."""

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The most one stream may store; a run that writes more fails with an error chunk."""

_CLOSING_TIMEOUT = 5.0
"""Seconds the producer may take to store the last bytes of a stream, cancelled or not,
and as many to store how it ended."""


_INTERRUPTIONS: Mapping[str, str] = {
    "gone": "the stream was interrupted: it was deleted or expired",
    "producer-lost": "the stream was interrupted: the server producing it stopped",
    "store-lost": "the stream was interrupted: its store is unavailable",
}
"""What a client is told when its stream breaks off, by why: without internals."""


def _endings(encoder: StreamEncoder) -> dict[str, bytes]:
    """The bytes that end a stream in ``encoder``'s format, for each way it can break off.

    Each is made by a copy of the encoder before the run uses it: its options
    (an OpenAI model name, ids) are in them, and the run's own is untouched.
    """
    endings = {}
    for why, message in _INTERRUPTIONS.items():
        fresh = copy.deepcopy(encoder)
        endings[why] = fresh.encode([ErrorChunk(message)]) + fresh.finish()
    return endings


_OFFSET = re.compile(r"0*([0-9]{1,18})")
"""A byte offset in a query string: ASCII digits, fewer than 10**18 bytes (stores count
sizes in 64-bit integers)."""


def _byte_offset(offset: object) -> int:
    """``offset`` as a count of bytes, from an int or a string of ASCII digits.

    Raises ``ValueError`` otherwise: ``int()`` would also take ``+5``, `` 5``,
    ``1_0`` or non-ASCII digits, which no client counting bytes sends.
    """
    if isinstance(offset, str):
        digits = _OFFSET.fullmatch(offset)
        if digits is not None:
            return int(digits[1])
    elif isinstance(offset, int) and not isinstance(offset, bool):
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        if offset < 10**18:
            return offset
    shown = repr(offset) if len(repr(offset)) <= 40 else repr(offset)[:37] + "..."
    raise ValueError(
        f"offset must be a whole number of bytes in ASCII digits, below 10**18, not {shown}"
    )


def _json_error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


def _with_extra(own: Iterable[tuple[str, str]], extra: Mapping[str, str] | None) -> dict[str, str]:
    """A stream's headers: its format's, then the app's ``extra`` ones, which replace a
    format's header of the same name but never the stream id's (set last)."""
    headers = {name.lower(): value for name, value in own}
    for name, value in (extra or {}).items():
        if name.lower() != STREAM_ID_HEADER:
            headers[name.lower()] = value
    return headers


class ResumableStreams:
    """Starts runs into a store and serves them, from any offset, to any client.

    Use it as an async context manager around the app's life (its lifespan):
    the block is the nursery the producers run in. ``store`` defaults to a
    ``MemoryStore``. ``ttl`` is how long a stream stays readable after its
    last write.

    Limits, each ``None`` for none: ``max_bytes`` bounds what one stream may
    store, ``max_chunk_bytes`` what one chunk of it may take once encoded, and
    ``max_entries`` how many writes it may take (each a store entry); a run
    that goes past one is stopped with an error chunk saying which, and its
    stream ends ``failed``. ``max_streams`` bounds the streams this object
    produces at once: ``start`` answers 503 beyond it.

    Hooks (see ``trio_stream.resumable.StreamHooks``) are plain functions
    told of what the producers do: ``on_acquire(stream_id, role)``,
    ``on_append(stream_id, byte_length)``, ``on_finish(stream_id, status,
    error)``, ``on_error(stream_id, exception)``; ``wait_until(awaitable)``
    gets, for each stream started, what finishes when its producer has
    ended. A hook that raises is logged and changes nothing.
    """

    def __init__(
        self,
        store: StreamStore | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_chunk_bytes: int | None = None,
        max_entries: int | None = None,
        max_streams: int | None = None,
        on_acquire: OnAcquire | None = None,
        on_append: OnAppend | None = None,
        on_finish: OnFinish | None = None,
        on_error: OnError | None = None,
        wait_until: WaitUntil | None = None,
    ) -> None:
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
        for name, bound in (
            ("max_bytes", max_bytes),
            ("max_chunk_bytes", max_chunk_bytes),
            ("max_entries", max_entries),
            ("max_streams", max_streams),
        ):
            if bound is not None and bound < 1:
                raise ValueError(f"{name} must be positive, not {bound!r}")
        self.store: StreamStore = store if store is not None else MemoryStore()
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.max_entries = max_entries
        self.max_streams = max_streams
        self.hooks = StreamHooks(on_acquire, on_append, on_finish, on_error, wait_until)
        self._producers: TaskGroup | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._watched: Shutdown | None = None
        self._stoppable: set[anyio.CancelScope] = set()
        self._stopped = False
        self._producing = 0

    async def __aenter__(self) -> ResumableStreams:
        if self._producers is not None:
            raise RuntimeError("ResumableStreams is already entered")
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(self.store, contextlib.AbstractAsyncContextManager):
                # A store with connections of its own (RedisStore) opens them
                # for the block, and closes them after the producers are done.
                await stack.enter_async_context(self.store)
            else:
                stack.push_async_callback(self.store.aclose)
            self._producers = await stack.enter_async_context(anyio.create_task_group())
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._producers is not None
        assert self._exit_stack is not None
        # Shutting down: every producer still running is cancelled, and
        # stores the end of its stream before the block exits.
        self._producers.cancel_scope.cancel()
        stack, self._exit_stack, self._producers = self._exit_stack, None, None
        self._watched, self._stopped = None, False
        await stack.__aexit__(exc_type, exc, traceback)

    def _watch(self, shutdown: Shutdown) -> None:
        """Stop every producer at ``shutdown``'s cut-off.

        Their readers on this worker then still have time to send the end of
        the stream, and readers elsewhere learn of the shutdown from the store
        at once, rather than after the server's deadline.
        """
        if self._producers is None or self._watched is shutdown:
            return
        self._watched = shutdown
        shutdown.on_cut_off(self._stop_producers)

    def _stop_producers(self) -> None:
        logger.warning(
            "server shutting down: stopping its %d resumable streams",
            len(self._stoppable),
            extra=log_extra(),
        )
        # Not the task group's own scope: that one also covers the body of the
        # ``async with``, the app's lifespan, which must go on.
        self._stopped = True
        for scope in self._stoppable:
            scope.cancel()

    # -- HTTP ------------------------------------------------------------

    async def start(
        self,
        run: Run,
        *,
        encoder: StreamEncoder,
        stream_id: str | None = None,
        heartbeat: HeartbeatOption = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Start ``run`` under ``stream_id`` (a new unguessable one by default).

        Returns the response that streams it from the start, with the id in
        the ``x-resumable-stream-id`` header and ``headers`` added to the
        format's own; or a JSON error: 400 for an invalid id, 409 for one in
        use, 503 when the store cannot be reached or this object produces
        ``max_streams`` streams already. ``heartbeat`` works as for
        ``RunResponse``; keep-alives are stored with the stream, so every
        reader's byte offsets agree.
        """
        if self._producers is None:
            raise RuntimeError("start() needs the ResumableStreams block entered (async with)")
        if not isinstance(run, Run):
            raise TypeError(f"start() needs a run made by create_run, not {type(run).__name__}")
        if stream_id is None:
            stream_id = new_stream_id()
        else:
            try:
                validate_stream_id(stream_id)
            except ValueError as exc:
                return _json_error(400, str(exc))
        if self.max_streams is not None and self._producing >= self.max_streams:
            return _json_error(
                503,
                f"this server runs its most streams at once ({self.max_streams}); try again later",
            )
        interval = heartbeat_interval(encoder, heartbeat)
        endings = _endings(encoder)
        ended = ProducerEnded()
        refused = await self._create_and_produce(stream_id, run, encoder, interval, endings, ended)
        if refused is not None:
            return refused
        self.hooks.call("on_acquire", stream_id, "producer")
        self.hooks.call("wait_until", stream_id, ended)
        return StoredStreamResponse(
            self.store,
            stream_id,
            offset=0,
            media_type=encoder.media_type,
            headers=_with_extra(encoder.headers.items(), headers),
            endings=endings,
            streams=self,
        )

    async def _create_and_produce(
        self,
        stream_id: str,
        run: Run,
        encoder: StreamEncoder,
        interval: float | None,
        endings: Mapping[str, bytes],
        ended: ProducerEnded,
    ) -> Response | None:
        """Record the stream and start its producer; or the JSON error saying why not.

        A stream created must get its producer, or it would stay running with
        nobody to end it: a cancellation (the client gone, the server
        stopping) lands after both. The store bounds how long create takes.
        """
        producers = self._producers
        assert producers is not None
        with anyio.CancelScope(shield=True):
            self._producing += 1  # counted at once: another start may come meanwhile
            started = False
            try:
                refused = await self._create(stream_id, encoder, endings, run.run_id)
                if refused is not None:
                    return refused
                producers.start_soon(
                    self._produce,
                    stream_id,
                    run,
                    encoder,
                    interval,
                    ended,
                    name=f"trio_stream producer {stream_id}",
                )
                started = True
            finally:
                if not started:
                    self._producing -= 1
        return None

    async def _create(
        self, stream_id: str, encoder: StreamEncoder, endings: Mapping[str, bytes], run_id: str
    ) -> Response | None:
        """Record a new stream; or the JSON error saying why it cannot be."""
        try:
            created = self.store.create(
                stream_id,
                media_type=encoder.media_type,
                headers=tuple(encoder.headers.items()),
                endings=endings,
                ttl=self.ttl,
            )
            await measured("create", created)
        except StreamExistsError:
            return _json_error(409, f"a stream {stream_id!r} exists already")
        except StoreError:
            logger.exception(
                "resumable stream %s not started",
                stream_id,
                extra=log_extra(run_id=run_id, stream_id=stream_id),
            )
            return _json_error(503, "the stream store is unavailable; try again later")
        return None

    async def resume(
        self,
        stream_id: str,
        *,
        offset: int | str = 0,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The response that streams ``stream_id`` from byte ``offset`` to its end,
        with ``headers`` added to the format's own.

        ``offset`` is how many bytes of the stream the client already has: an
        int, or a string from a query parameter, of plain ASCII digits. A JSON
        error answers an invalid id or offset (400), an unknown or expired
        stream (404), an offset past the end of a finished stream (416), and a
        store that cannot be reached (503).
        """
        try:
            validate_stream_id(stream_id)
            position = _byte_offset(offset)
        except ValueError as exc:
            return _json_error(400, str(exc))
        try:
            info = await measured("info", self.store.info(stream_id))
        except StoreError:
            logger.exception(
                "resumable stream %s not resumed", stream_id, extra=log_extra(stream_id=stream_id)
            )
            return _json_error(503, "the stream store is unavailable; try again later")
        if info is None:
            return _json_error(404, f"no stream {stream_id!r}: unknown, expired or deleted")
        if info.status != "running" and position > info.size:
            return _json_error(
                416, f"offset {position} is past the end of the stream ({info.size} bytes)"
            )
        self.hooks.call("on_acquire", stream_id, "consumer")
        return StoredStreamResponse(
            self.store,
            stream_id,
            offset=position,
            media_type=info.media_type,
            headers=_with_extra(info.headers, headers),
            endings=info.endings,
            streams=self,
        )

    async def cancel(self, stream_id: str) -> Response:
        """Cancel the run of ``stream_id``, on whichever worker runs it.

        Returns the answer, like ``start`` and ``resume``: ``{"cancelled":
        true}`` if the run was going on, ``{"cancelled": false}`` if it had
        ended or there is no such stream; or a JSON error: 400 for an invalid
        id, 503 when the store cannot be reached. A cancelled stream ends
        cleanly, marked ``cancelled``, and stays readable. (To learn whether
        it was running without a response: ``store.request_cancel``.)
        """
        try:
            validate_stream_id(stream_id)
        except ValueError as exc:
            return _json_error(400, str(exc))
        try:
            cancelled = await measured("request_cancel", self.store.request_cancel(stream_id))
        except StoreError:
            logger.exception(
                "resumable stream %s not cancelled",
                stream_id,
                extra=log_extra(stream_id=stream_id),
            )
            return _json_error(503, "the stream store is unavailable; try again later")
        return JSONResponse({"cancelled": cancelled})

    # -- the producer ----------------------------------------------------

    async def _produce(
        self,
        stream_id: str,
        run: Run,
        encoder: StreamEncoder,
        heartbeat: float | None,
        ended: ProducerEnded,
    ) -> None:
        """Run ``run`` into the store; never raises (it lives in the shared nursery)."""
        try:
            with anyio.CancelScope() as stop:
                if self._stopped:
                    stop.cancel()
                self._stoppable.add(stop)
                # Every line the producer logs names the run and its stream.
                fields = bind_log_fields(run_id=run.run_id, stream_id=stream_id)
                try:
                    await self._produce_until_stopped(stream_id, run, encoder, heartbeat)
                finally:
                    self._stoppable.discard(stop)
                    unbind_log_fields(fields)
        finally:
            self._producing -= 1
            ended.set()

    async def _produce_until_stopped(
        self, stream_id: str, run: Run, encoder: StreamEncoder, heartbeat: float | None
    ) -> None:
        limits = Limits(self.max_bytes, self.max_chunk_bytes, self.max_entries)
        by_chunk = encoding_chunk_by_chunk(encoder) if self.max_chunk_bytes is not None else None
        appender = Appender(
            self.store,
            stream_id,
            limits,
            chunks=by_chunk,
            appended=lambda size: self.hooks.call("on_append", stream_id, size),
        )
        status: StreamStatus = "cancelled"
        closing = b""
        failure: Exception | None = None  # the run's, for the hooks
        why: str | None = None
        lost: Exception | None = None
        try:
            status, closing, failure = await self._run_into(
                appender, run, encoder, by_chunk or encoder, heartbeat
            )
        except anyio.get_cancelled_exc_class():
            # The server is shutting down.
            closing = encoder.encode([ErrorChunk(_SHUTDOWN_INTERRUPTION)])
            why = _SHUTDOWN_INTERRUPTION
            raise
        except Exception as exc:
            # Nothing more can be stored; readers find the lease run out, or
            # the stream gone.
            lost = _one(exc)
            if isinstance(lost, Superseded):
                logger.warning(
                    "resumable stream %s: %s; its run is stopped",
                    stream_id,
                    lost,
                    extra=log_extra(),
                )
            else:
                logger.exception(
                    "resumable stream %s lost its store", stream_id, extra=log_extra()
                )
        finally:
            if failure is not None:
                self.hooks.call("on_error", stream_id, failure)
                why = describe(failure)
            if lost is None:
                lost = await self._close(appender, closing + encoder.finish(), status)
                if lost is None:
                    self.hooks.call("on_finish", stream_id, status, why)
            if lost is not None:
                self.hooks.call("on_error", stream_id, lost)
            logger.info(
                "resumable stream %s ended: %s, %d bytes",
                stream_id,
                status,
                appender.stored,
                extra=log_extra(),
            )

    async def _run_into(
        self,
        appender: Appender,
        run: Run,
        encoder: StreamEncoder,
        writing: StreamEncoder,
        heartbeat: float | None,
    ) -> tuple[StreamStatus, bytes, Exception | None]:
        """Run ``run`` into its stream until it ends or a cancel is requested.

        ``writing`` encodes the run's chunks: ``encoder``, or a view of it that
        keeps each chunk's bytes apart. Returns how the stream ended, the
        bytes to store before the format's closing ones, and why it failed.
        Raises what the store raised, ``Superseded`` when the stream is no
        longer the producer's, and the cancellation of a shutdown.
        """
        store, stream_id = self.store, appender.stream_id
        status: StreamStatus = "failed"
        closing = b""
        failure: Exception | None = None
        cancel_requested = False
        async with anyio.create_task_group() as producer:

            async def keep_lease() -> None:
                while True:
                    await anyio.sleep(store.lease / 3)
                    try:
                        await measured("renew", store.renew(stream_id, self.ttl))
                    except StreamNotFoundError as exc:
                        raise appender.superseded() from exc

            async def cancel_on_request() -> None:
                nonlocal cancel_requested
                await store.wait_cancel_requested(stream_id)
                cancel_requested = True
                producer.cancel_scope.cancel()

            producer.start_soon(keep_lease)
            producer.start_soon(cancel_on_request)
            try:
                await appender.write(encoder.start())
                async with run as chunks:
                    await write_chunks(chunks, writing, appender.write, heartbeat)
                status = "done"
            except StreamTooLargeError as exc:
                logger.warning(
                    "resumable stream %s stopped: %s", stream_id, exc, extra=log_extra()
                )
                closing = encoder.encode([ErrorChunk(str(exc))])
                failure = exc
            except (StoreError, Superseded):
                raise  # nothing more can be stored
            except Exception as exc:
                # The run failed; its error chunk is already stored.
                logger.exception(
                    "resumable stream %s: the run failed", stream_id, extra=log_extra()
                )
                failure = _one(exc)
            producer.cancel_scope.cancel()
        if cancel_requested:
            return "cancelled", closing, None
        return status, closing, failure

    async def _close(
        self, appender: Appender, closing: bytes, status: StreamStatus
    ) -> Exception | None:
        """Store the stream's last bytes, then how it ended, also while cancelled.

        Each step has its own time and fails on its own: a stream whose last
        bytes cannot be stored is still marked ended, so that its readers stop
        at once rather than when the producer's lease runs out; unless the
        stream is no longer this producer's, whose end it must not mark.
        Returns why the end could not be stored, or ``None``.
        """
        stream_id = appender.stream_id

        async def last_bytes() -> None:
            if closing or appender.unsure:
                await appender.append(closing)
            else:  # nothing to append that would tell if the stream is still ours
                info = await self.store.info(stream_id)
                if info is None or info.status != "running" or info.size != appender.stored:
                    raise appender.superseded()

        with anyio.CancelScope(shield=True):
            failed = await _closing_step(stream_id, "last bytes", last_bytes)
            if not isinstance(failed, Superseded):
                failed = await _closing_step(
                    stream_id,
                    "status",
                    lambda: measured("finish", self.store.finish(stream_id, status, self.ttl)),
                )
        return failed


def _one(exc: Exception) -> Exception:
    """The exception inside a group of one (a task group's), else ``exc``."""
    leaf = collapse(exc)
    return leaf if isinstance(leaf, Exception) else exc


async def _closing_step(
    stream_id: str, what: str, step: Callable[[], Awaitable[None]]
) -> Exception | None:
    """Run one step of storing a stream's end, within its time; a failure is logged, and
    returned."""
    failure: Exception | None = None
    with anyio.move_on_after(_CLOSING_TIMEOUT) as late:
        try:
            await step()
        except Superseded as exc:
            logger.warning(
                "resumable stream %s: %s; its end is not stored",
                stream_id,
                exc,
                extra=log_extra(stream_id=stream_id),
            )
            return exc
        except Exception as exc:
            logger.exception(
                "resumable stream %s: its %s could not be stored",
                stream_id,
                what,
                extra=log_extra(stream_id=stream_id),
            )
            failure = exc
    if late.cancelled_caught:
        logger.error(
            "resumable stream %s: its %s could not be stored within %s s",
            stream_id,
            what,
            _CLOSING_TIMEOUT,
            extra=log_extra(stream_id=stream_id),
        )
        return TimeoutError(f"the {what} of stream {stream_id!r} could not be stored in time")
    return failure


_SHUTDOWN_INTERRUPTION = "the stream was interrupted: the server producing it shut down"


def _why(failure: Exception) -> str:
    """Why a stream broke off, as ``StreamInfo.endings`` names it."""
    if isinstance(failure, StreamNotFoundError):
        return "gone"
    if isinstance(failure, ProducerLostError):
        return "producer-lost"
    return "store-lost"


def _request_fields(scope: Scope) -> dict[str, object]:
    """The log fields of a reader's request: its path and its client."""
    client = scope.get("client")
    return {"path": scope.get("path"), "client": f"{client[0]}:{client[1]}" if client else None}


class StoredStreamResponse(ListeningResponse):
    """A stored stream, from an offset to its end, as a response body.

    A client that disconnects stops this reader only; the run goes on. When
    the store fails mid-stream, the client gets an error chunk in the
    stream's format (its ``endings``) and a clean end.
    """

    def __init__(
        self,
        store: StreamStore,
        stream_id: str,
        *,
        offset: int,
        media_type: str,
        headers: dict[str, str],
        endings: Mapping[str, bytes],
        streams: ResumableStreams | None = None,
    ) -> None:
        self.store = store
        self.streams = streams
        self.stream_id = stream_id
        self.offset = offset
        self.endings = endings
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers({**headers, STREAM_ID_HEADER: stream_id})
        self._sent = offset
        self._failure: Exception | None = None
        self._reading: Reading | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._reading = reading(self.headers)
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._reading is not None:
                self._reading.ended()

    def shutdown(self, scope: Scope) -> None:
        # A reader is not cut at the shutdown: the producers are, and the
        # store then ends the stream for every reader, on every worker.
        shutdown = shutdown_of(scope)
        if shutdown is not None and self.streams is not None:
            self.streams._watch(shutdown)

    async def produce(self, send_body: BodySender) -> None:
        if self._reading is not None:
            send_body = self._reading.counting(send_body)
        try:
            async with contextlib.aclosing(self._frames()) as frames:
                async for frame in frames:
                    await send_body(frame)
                    self._sent += len(frame)
        except (StoreError, StreamNotFoundError) as exc:
            self._failure = exc

    def left(self, scope: Scope, interruption: Interruption) -> None:
        if self._reading is not None:
            self._reading.left()
        logger.info(
            "client left resumable stream %s at byte %d; the run goes on",
            self.stream_id,
            self._sent,
            extra=log_extra(stream_id=self.stream_id, **_request_fields(scope)),
        )

    def ending(self, scope: Scope, interruption: Interruption | None) -> bytes:
        failure = self._failure
        if failure is None:
            return b""
        logger.error(
            "resumable stream %s: %s",
            self.stream_id,
            describe(failure),
            extra=log_extra(stream_id=self.stream_id, **_request_fields(scope)),
        )
        return self.endings.get(_why(failure), b"")

    def _frames(self) -> AsyncGenerator[bytes, None]:
        return self.store.read(self.stream_id, self.offset)
