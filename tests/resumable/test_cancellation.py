"""A resumable run stopped at any moment still ends its stream, once.

A run is stopped three ways: ``cancel`` (from any worker), the shutdown
cut-off of ``serve()``, and the ``ResumableStreams`` block exiting with its
producers cancelled (the app's lifespan cancelled). Whenever that lands, the
stream must end as a client can decode it: every byte the run wrote stored
once, then the format's closing bytes once, and a final status, so that its
readers stop at once instead of waiting out the producer's lease.

``Interrupting`` wraps a real store (in memory, or Redis on a real server)
and stops the run at one call the producer makes: just before it, or after
the store applied it but before its caller got the reply, which leaves the
producer unsure of what was stored. Every such moment of a run is tried, for
each way of stopping it. The last test makes that moment happen on a real
Redis with no stand-in: Redis holds the producer's append while the
shutdown cut-off cancels it, then applies it.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import anyio
import anyio.lowlevel
import coredis
import pytest
from starlette.responses import Response
from starlette.types import Message

from trio_stream import Run, RunController, create_run
from trio_stream._shutdown import SCOPE_KEY, Shutdown
from trio_stream.resumable import (
    STREAM_ID_HEADER,
    ResumableStreams,
    StreamInfo,
    StreamStatus,
    StreamStore,
)
from trio_stream.resumable.redis import RedisStore

from .app import ENCODERS
from .conftest import StoreFactory
from .redis_server import RedisServer
from .test_store import read_all

pytestmark = pytest.mark.anyio

T = TypeVar("T")

STREAM_ID = "stream-under-test"

Phase = Literal["before", "after"]
Point = tuple[str, int, Phase]
"""A store method, which of the producer's calls to it, and whether the stop comes
before the call or after the store applied it."""

POINTS: list[Point] = [
    ("create", 0, "before"),
    ("create", 0, "after"),
    ("wait_cancel_requested", 0, "before"),  # it returns only once a cancel is asked
    ("append", 0, "before"),  # "Hel"
    ("append", 0, "after"),
    ("renew", 0, "before"),
    ("renew", 0, "after"),
    ("append", 1, "before"),  # "lo"
    ("append", 1, "after"),
    ("append", 2, "before"),  # the closing bytes
    ("append", 2, "after"),
    ("finish", 0, "before"),
    ("finish", 0, "after"),
]
"""Every store call of a run that writes "Hel", waits for its lease to be renewed,
and writes "lo", on both sides."""

Way = Literal["cancel", "cut-off", "exit"]
WAYS: list[Way] = ["cancel", "cut-off", "exit"]

SHUT_DOWN = "the stream was interrupted: the server producing it shut down"


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # the shutdown notice is served by hypercorn's Trio worker


class Interrupting:
    """A real store that stops its producer once, at one of its calls.

    The real store does all the work; this only counts the calls and, at
    ``point``, awaits ``stop``: then the caller gets the cancellation instead
    of the call or its reply. ``aclose`` leaves the real store open, for the
    test to read what was stored.

    The producer renews its lease every third of the lease this store shows
    (0.3 s), while the real store keeps the longer lease it was made with.
    Readers give a producer up only after that one: a pause of the whole
    process (a collection of a large heap, a busy machine) must not make a
    reader end the stream as lost, which would end the block and stop the
    run at a moment the test did not choose.
    """

    def __init__(self, store: StreamStore, point: Point | None) -> None:
        self.store = store
        self.lease = 0.3
        self.point = point
        self.stop: Callable[[], Awaitable[None]] | None = None
        self.calls: Counter[str] = Counter()
        self.stopped = False  # ``stop`` was awaited, at ``point``
        self.cancelled = False  # and its caller got a cancellation there
        self.renewed = anyio.Event()  # the producer's first renew has returned
        self.listening = False  # the producer waits for a cancel request
        self.heard = anyio.Event()  # and has heard one

    async def _call(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        index = self.calls[method]
        self.calls[method] += 1
        await self._stop_at((method, index, "before"))
        result = await call()
        await self._stop_at((method, index, "after"))
        return result

    async def _stop_at(self, point: Point) -> None:
        if point != self.point:
            return
        assert self.stop is not None
        self.stopped = True
        try:
            await self.stop()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise

    async def create(
        self,
        stream_id: str,
        *,
        media_type: str,
        headers: Sequence[tuple[str, str]],
        endings: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        async def call() -> None:
            await self.store.create(
                stream_id, media_type=media_type, headers=headers, endings=endings, ttl=ttl
            )

        await self._call("create", call)

    async def append(self, stream_id: str, offset: int, data: bytes) -> None:
        await self._call("append", lambda: self.store.append(stream_id, offset, data))

    async def renew(self, stream_id: str, ttl: float) -> None:
        await self._call("renew", lambda: self.store.renew(stream_id, ttl))
        self.renewed.set()

    async def finish(self, stream_id: str, status: StreamStatus, ttl: float) -> None:
        await self._call("finish", lambda: self.store.finish(stream_id, status, ttl))

    async def wait_cancel_requested(self, stream_id: str) -> None:
        async def call() -> None:
            self.listening = True
            try:
                await self.store.wait_cancel_requested(stream_id)
            finally:
                self.listening = False
            self.heard.set()

        await self._call("wait_cancel_requested", call)

    async def info(self, stream_id: str) -> StreamInfo | None:
        return await self.store.info(stream_id)

    def read(self, stream_id: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        return self.store.read(stream_id, offset)

    async def request_cancel(self, stream_id: str) -> bool:
        return await self.store.request_cancel(stream_id)

    async def delete(self, stream_id: str) -> None:
        await self.store.delete(stream_id)

    async def aclose(self) -> None:
        pass


@dataclass
class Harness:
    """One run, its store and what can stop it."""

    store: Interrupting
    streams: ResumableStreams
    shutdown: Shutdown
    cut: anyio.Event  # the cut-off's callbacks have been called
    lifespan: anyio.CancelScope

    async def stop(self, way: Way) -> None:
        """Stop the run ``way``, and let the cancellation reach the caller if it can."""
        if way == "cancel":
            # As a client's DELETE, on any worker: the producer hears of it
            # from the store, and is cancelled then.
            answer = json.loads(bytes((await self.streams.cancel(STREAM_ID)).body))
            if answer["cancelled"] and self.store.listening:
                await self.store.heard.wait()
        elif way == "cut-off":
            self.shutdown.begin(0.0)
            await self.cut.wait()
        else:
            self.lifespan.cancel()
        await anyio.lowlevel.checkpoint()


def scripted(store: Interrupting) -> Run:
    async def run(controller: RunController) -> None:
        controller.append_text("Hel")
        await store.renewed.wait()
        controller.append_text("lo")

    return create_run(run)


async def served(response: Response, shutdown: Shutdown) -> bytes:
    """The body a client receives, ``response`` served as ``serve()`` serves it."""
    body = b""

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("the client never leaves")

    async def send(message: Message) -> None:
        nonlocal body
        body += message.get("body", b"")

    await response({"type": "http", "extensions": {SCOPE_KEY: shutdown}}, receive, send)
    return body


@dataclass
class Produced:
    status: StreamStatus
    stored: bytes
    received: bytes | None  # by a client reading live; None if it was cut off too
    store: Interrupting


async def produce(store: StreamStore, fmt: str, point: Point | None, way: Way) -> Produced:
    """Run the script into ``store`` as a ``fmt`` stream, stopped ``way`` at ``point``."""
    interrupting = Interrupting(store, point)
    streams = ResumableStreams(interrupting, ttl=60)
    shutdown, cut = Shutdown(), anyio.Event()
    shutdown.on_cut_off(cut.set)
    received = None
    async with anyio.create_task_group() as server:
        server.start_soon(shutdown.cut_off_when_due)
        with anyio.CancelScope() as lifespan:
            harness = Harness(interrupting, streams, shutdown, cut, lifespan)

            async def stop() -> None:
                await harness.stop(way)

            interrupting.stop = stop
            async with streams:
                streams._watch(shutdown)  # as the first response served by serve() does
                response = await streams.start(
                    scripted(interrupting),
                    encoder=ENCODERS[fmt](),
                    stream_id=STREAM_ID,
                    heartbeat=False,
                )
                received = await served(response, shutdown)
        server.cancel_scope.cancel()
    info = await store.info(STREAM_ID)
    assert info is not None
    stored = await read_all(store, STREAM_ID)
    return Produced(info.status, stored, received, interrupting)


def decoded(fmt: str, body: bytes) -> tuple[str, list[str]]:
    """What a client makes of ``body``: its text, and the endings it carries, in order.

    An ending is ``finish`` (the data stream's ``d:`` line, or the OpenAI
    chunk with a ``finish_reason``), an error's message, or ``[DONE]``.
    Nothing may follow an ending but another.
    """
    text, endings = "", list[str]()
    if fmt == "data-stream":
        assert body.endswith(b"\n")
        for line in body.decode().splitlines():
            code, _, value = line.partition(":")
            if code == "0":
                assert not endings, f"text after the end: {body!r}"
                text += json.loads(value)
            else:
                assert code in ("d", "3"), line
                endings.append("finish" if code == "d" else json.loads(value))
        return text, endings
    assert body.endswith(b"\n\n")
    for event in body.decode().removesuffix("\n\n").split("\n\n"):
        assert event.startswith("data: "), event
        payload = event.removeprefix("data: ")
        if payload == "[DONE]":
            endings.append(payload)
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            endings.append(chunk["error"]["message"])
        elif chunk["choices"][0]["finish_reason"] is not None:
            endings.append("finish")
        else:
            assert not endings, f"text after the end: {body!r}"
            text += chunk["choices"][0]["delta"].get("content", "")
    return text, endings


def expected(point: Point, way: Way) -> tuple[StreamStatus, set[str]]:
    """How the stream ends, and the text it holds, when stopped ``way`` at ``point``."""
    method, index, phase = point
    if method == "finish" or (method, index) == ("append", 2):
        return "done", {"Hello"}  # the run had ended: nothing left to stop
    if (method, phase, way) == ("create", "before", "cancel"):
        return "done", {"Hello"}  # no stream to cancel yet
    if (method, index) == ("append", 1):
        return "cancelled", {"Hello"}  # "lo" was handed to the store: it is kept
    if method in ("append", "renew"):
        return "cancelled", {"Hel"}
    return "cancelled", {"", "Hel"}  # stopped as the run starts: "Hel" may be written


def ending(fmt: str, status: StreamStatus, way: Way) -> list[str]:
    last = [SHUT_DOWN] if status == "cancelled" and way != "cancel" else ["finish"]
    return last if fmt == "data-stream" else [*last, "[DONE]"]


@pytest.mark.parametrize("fmt", ["data-stream", "openai"])
async def test_a_run_left_alone_makes_every_call_it_is_stopped_at_below(
    make_store: StoreFactory, fmt: str
) -> None:
    produced = await produce(await make_store(lease=5.0), fmt, None, "cancel")
    assert produced.status == "done"
    assert decoded(fmt, produced.stored) == ("Hello", ending(fmt, "done", "cancel"))
    assert produced.received == produced.stored
    for method, index, _ in POINTS:
        assert produced.store.calls[method] > index, method


@pytest.mark.parametrize("fmt", ["data-stream", "openai"])
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p[0]}#{p[1]}-{p[2]}")
async def test_a_run_stopped_at_any_call_ends_its_stream_once(
    make_store: StoreFactory,
    caplog: pytest.LogCaptureFixture,
    fmt: str,
    way: Way,
    point: Point,
) -> None:
    store = await make_store(lease=5.0)
    with caplog.at_level(logging.ERROR, logger="trio_stream"):
        produced = await produce(store, fmt, point, way)
    status, texts = expected(point, way)
    assert produced.store.stopped
    if point[0] in ("append", "renew") and status == "cancelled":
        # The stop reached the call's caller: it got the cancellation instead
        # of the call or, once the store had applied it, instead of the reply.
        assert produced.store.cancelled
    assert produced.status == status
    text, endings = decoded(fmt, produced.stored)
    assert text in texts
    assert endings == ending(fmt, status, way)
    if way != "exit":  # a client still connected reads all of it
        assert produced.received == produced.stored
    assert await store.request_cancel(STREAM_ID) is False
    assert [record.getMessage() for record in caplog.records] == []


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``condition()`` holds: polled, as Redis has no event to wait for."""
    with anyio.fail_after(5):
        while not await condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_a_cut_off_while_redis_holds_an_append_still_ends_the_stream_once(
    redis: RedisServer,
) -> None:
    """The producer's append reaches Redis, which holds it (``CLIENT PAUSE WRITE``) while
    the cut-off cancels the producer, then applies it: the producer's closing bytes
    follow it, once."""
    more = anyio.Event()

    async def run(controller: RunController) -> None:
        controller.append_text("Hel")
        await more.wait()
        controller.append_text("lo")
        await anyio.sleep_forever()

    store = RedisStore(redis.url, prefix=f"held-{secrets.token_hex(4)}:", lease=1.0)
    streams, shutdown = ResumableStreams(store), Shutdown()
    received = b""
    async with coredis.Redis.from_url(redis.url) as inspect, anyio.create_task_group() as server:

        async def stored_hel() -> bool:
            info = await store.info(stream_id)
            return info is not None and info.size > 0

        async def append_held() -> bool:
            clients = await inspect.client_list()
            return any(c["cmd"] == "evalsha" and "b" in c["flags"] for c in clients)

        async def read_live() -> None:
            nonlocal received
            received = await served(response, shutdown)

        server.start_soon(shutdown.cut_off_when_due)
        async with streams:
            response = await streams.start(
                create_run(run), encoder=ENCODERS["data-stream"](), heartbeat=False
            )
            stream_id = response.headers[STREAM_ID_HEADER]
            async with anyio.create_task_group() as client:
                client.start_soon(read_live)
                await until(stored_hel)
                # Redis takes the next append, and holds it for half a second…
                await inspect.client_pause(500, coredis.PureToken.WRITE)
                more.set()
                await until(append_held)
                shutdown.begin(0.0)  # …while the cut-off cancels the producer
            info = await store.info(stream_id)
            assert info is not None
            assert info.status == "cancelled"
            stored = await read_all(store, stream_id)
        server.cancel_scope.cancel()
    assert stored == b'0:"Hel"\n0:"lo"\n3:"' + SHUT_DOWN.encode() + b'"\n'
    assert received == stored
