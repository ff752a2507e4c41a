"""What an app controls of its resumable streams: hooks, ``wait_until``, limits, headers.

Hooks tell the app what its producers do (a stream started or read, bytes
stored, how it ended, why it failed), for metrics or billing; none of them
can break a producer. ``wait_until`` hands a platform that freezes idle
instances something to wait on while a producer outlives its responses.
Limits bound what a worker takes on, each with an error that says which.
Every test runs on both stores and both event loops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest
from starlette.responses import Response

from trio_stream import RunController, create_run
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.resumable import (
    STREAM_ID_HEADER,
    ResumableStreams,
    StreamNotFoundError,
    StreamTooLargeError,
)

from ..asgi_calls import SentMessages
from .conftest import StoreFactory
from .test_store import read_all

pytestmark = pytest.mark.anyio

STREAM_ID = "chat-0001-turn-1"

END = DataStreamEncoder().finish()
"""The data stream's last line, after a run of text alone."""


async def body_of(response: Response) -> bytes:
    """The whole body a client staying to the end receives."""
    sent = SentMessages()
    await sent.call(response)
    return sent.body


def json_of(response: Response) -> tuple[int, Any]:
    return response.status_code, json.loads(bytes(response.body))


async def say(controller: RunController) -> None:
    controller.append_text("Hel")
    await anyio.sleep(0.01)
    controller.append_text("lo")


async def fail(controller: RunController) -> None:
    controller.append_text("partial")
    await anyio.sleep(0.01)
    raise RuntimeError("the model is down")


class Hooks:
    """Records every hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.finished = anyio.Event()

    def kwargs(self) -> dict[str, Any]:
        return {
            "on_acquire": lambda *args: self.calls.append(("acquire", *args)),
            "on_append": lambda *args: self.calls.append(("append", *args)),
            "on_finish": self.on_finish,
            "on_error": lambda *args: self.calls.append(("error", *args)),
        }

    def on_finish(self, *args: Any) -> None:
        self.calls.append(("finish", *args))
        self.finished.set()

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == kind]


async def test_hooks_see_a_stream_start_grow_be_read_and_end(make_store: StoreFactory) -> None:
    hooks = Hooks()
    async with ResumableStreams(await make_store(opened=False), **hooks.kwargs()) as streams:
        started = await streams.start(
            create_run(say), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        body = await body_of(started)
        await hooks.finished.wait()
        assert await body_of(await streams.resume(STREAM_ID)) == body
    assert hooks.of("acquire") == [(STREAM_ID, "producer"), (STREAM_ID, "consumer")]
    appended = hooks.of("append")
    assert {stream_id for stream_id, _ in appended} == {STREAM_ID}
    assert sum(size for _, size in appended) == len(body)  # the closing bytes too
    assert hooks.of("finish") == [(STREAM_ID, "done", None)]
    assert hooks.of("error") == []
    # The end is reported once the stream's status is stored, after every byte.
    assert [call[0] for call in hooks.calls[-3:]] == ["append", "finish", "acquire"]


async def test_a_failing_run_reports_its_exception_and_ends_failed(
    make_store: StoreFactory,
) -> None:
    hooks = Hooks()
    store = await make_store(opened=False)
    async with ResumableStreams(store, **hooks.kwargs()) as streams:
        started = await streams.start(
            create_run(fail), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        assert await body_of(started) == b'0:"partial"\n3:"the model is down"\n'
        await hooks.finished.wait()
        info = await store.info(STREAM_ID)
        assert info is not None
        assert info.status == "failed"
    [(stream_id, error)] = hooks.of("error")
    assert stream_id == STREAM_ID
    assert isinstance(error, RuntimeError)
    assert str(error) == "the model is down"
    assert hooks.of("finish") == [(STREAM_ID, "failed", "the model is down")]


async def test_a_cancelled_stream_ends_cancelled_without_an_error(
    make_store: StoreFactory,
) -> None:
    hooks = Hooks()

    async def forever(controller: RunController) -> None:
        controller.append_text("waiting")
        await anyio.sleep_forever()

    async with ResumableStreams(await make_store(opened=False), **hooks.kwargs()) as streams:
        await streams.start(create_run(forever), encoder=DataStreamEncoder(), stream_id=STREAM_ID)
        assert json_of(await streams.cancel(STREAM_ID)) == (200, {"cancelled": True})
        await hooks.finished.wait()
    assert hooks.of("finish") == [(STREAM_ID, "cancelled", None)]
    assert hooks.of("error") == []


async def test_a_stream_cut_by_a_shutdown_ends_cancelled_and_says_so(
    make_store: StoreFactory,
) -> None:
    hooks = Hooks()

    async def forever(controller: RunController) -> None:
        controller.append_text("waiting")
        await anyio.sleep_forever()

    async with ResumableStreams(await make_store(opened=False), **hooks.kwargs()) as streams:
        await streams.start(create_run(forever), encoder=DataStreamEncoder(), stream_id=STREAM_ID)
    # Leaving the block stops its producers, each storing its stream's end first.
    assert hooks.of("finish") == [
        (STREAM_ID, "cancelled", "the stream was interrupted: the server producing it shut down")
    ]
    assert hooks.of("error") == []


async def test_hooks_that_raise_break_nothing_and_are_logged(
    make_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("the hook is broken")

    store = await make_store(opened=False)
    done: list[Awaitable[None]] = []
    names = ("acquire", "append", "finish", "error")
    with caplog.at_level(logging.ERROR, logger="trio_stream"):
        async with ResumableStreams(
            store,
            on_acquire=boom,
            on_append=boom,
            on_finish=boom,
            on_error=boom,
            wait_until=done.append,
        ) as streams:
            whole = await streams.start(create_run(say), encoder=DataStreamEncoder())
            assert await body_of(whole) == b'0:"Hel"\n0:"lo"\n' + END
            failed = await streams.start(
                create_run(fail), encoder=DataStreamEncoder(), stream_id=STREAM_ID
            )
            assert await body_of(failed) == b'0:"partial"\n3:"the model is down"\n'
            for producer in done:
                await producer
            info = await store.info(STREAM_ID)
            assert info is not None
            assert info.status == "failed"
            assert (await streams.resume(STREAM_ID)).status_code == 200
    failures = [r for r in caplog.records if "hook raised" in r.getMessage()]
    assert {r.getMessage().rsplit(": ", 1)[1] for r in failures} == {
        f"its on_{name} hook raised" for name in names
    }
    assert all(r.exc_info is not None for r in failures)


async def test_wait_until_is_given_what_ends_with_the_producer(
    make_store: StoreFactory,
) -> None:
    store = await make_store(opened=False)
    waited: list[Awaitable[None]] = []
    release = anyio.Event()

    async def slow(controller: RunController) -> None:
        controller.append_text("Hel")
        await release.wait()
        controller.append_text("lo")

    async with ResumableStreams(store, wait_until=waited.append) as streams:
        started = await streams.start(
            create_run(slow), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        assert len(waited) == 1
        # No client reads it: only what wait_until holds keeps the producer's
        # instance alive until the stream is stored whole.
        assert started.status_code == 200
        release.set()
        with anyio.fail_after(5):
            await waited[0]
        info = await store.info(STREAM_ID)
        assert info is not None
        assert info.status == "done"
        await waited[0]  # as often as wanted, once over
        assert await read_all(store, STREAM_ID) == b'0:"Hel"\n0:"lo"\n' + END


async def test_at_most_max_streams_run_at_once_and_the_next_start_is_a_503(
    make_store: StoreFactory,
) -> None:
    release = anyio.Event()
    done: list[Awaitable[None]] = []

    async def waits(controller: RunController) -> None:
        controller.append_text("…")
        await release.wait()

    async with ResumableStreams(
        await make_store(opened=False), max_streams=2, wait_until=done.append
    ) as streams:
        for _ in range(2):
            started = await streams.start(create_run(waits), encoder=DataStreamEncoder())
            assert started.status_code == 200
        refused = await streams.start(create_run(waits), encoder=DataStreamEncoder())
        assert json_of(refused) == (
            503,
            {"detail": "this server runs its most streams at once (2); try again later"},
        )
        release.set()
        for producer in done:
            await producer
        again = await streams.start(create_run(say), encoder=DataStreamEncoder())
        assert again.status_code == 200
        assert await body_of(again)


async def test_a_refused_start_holds_no_place_among_max_streams(make_store: StoreFactory) -> None:
    done: list[Awaitable[None]] = []
    async with ResumableStreams(
        await make_store(opened=False), max_streams=1, wait_until=done.append
    ) as streams:
        first = await streams.start(
            create_run(say), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        await body_of(first)
        await done[0]
        for _ in range(3):  # the id is taken, by a stream that has ended
            again = await streams.start(
                create_run(say), encoder=DataStreamEncoder(), stream_id=STREAM_ID
            )
            assert again.status_code == 409
        assert (
            await streams.start(create_run(say), encoder=DataStreamEncoder())
        ).status_code == 200


async def test_a_chunk_over_max_chunk_bytes_stops_the_run_after_what_came_before(
    make_store: StoreFactory,
) -> None:
    hooks = Hooks()
    store = await make_store(opened=False)

    async def big_result(controller: RunController) -> None:
        controller.append_text("small")
        controller.append_text("x" * 100)
        controller.append_text("never stored")

    limit = len(b'0:"small"\n') + 10
    async with ResumableStreams(store, max_chunk_bytes=limit, **hooks.kwargs()) as streams:
        started = await streams.start(
            create_run(big_result), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        message = f"a chunk of 105 bytes is more than the stream's bound of {limit} bytes a chunk"
        assert await body_of(started) == b'0:"small"\n' + f'3:"{message}"\n'.encode()
        await hooks.finished.wait()
    [(_, error)] = hooks.of("error")
    assert isinstance(error, StreamTooLargeError)
    assert str(error) == message
    assert hooks.of("finish") == [(STREAM_ID, "failed", message)]


async def test_a_stream_with_more_than_max_entries_writes_is_stopped(
    make_store: StoreFactory,
) -> None:
    hooks = Hooks()
    stored, stored_sizes = anyio.create_memory_object_stream[int](16)

    async def one_write_a_word(controller: RunController) -> None:
        for word in ("one ", "two ", "three ", "four"):
            controller.append_text(word)
            await stored_sizes.receive()  # stored: the next word is a write of its own

    kwargs = {**hooks.kwargs(), "on_append": lambda _, size: stored.send_nowait(size)}
    async with ResumableStreams(
        await make_store(opened=False), max_entries=3, **kwargs
    ) as streams:
        started = await streams.start(
            create_run(one_write_a_word), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        assert await body_of(started) == (
            b'0:"one "\n0:"two "\n0:"three "\n3:"the stream reached its bound of 3 writes"\n'
        )
        await hooks.finished.wait()
    assert hooks.of("finish") == [
        (STREAM_ID, "failed", "the stream reached its bound of 3 writes")
    ]
    stored.close()
    stored_sizes.close()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive, not 0"):
        ResumableStreams(max_bytes=0)
    with pytest.raises(ValueError, match="max_chunk_bytes must be positive, not 0"):
        ResumableStreams(max_chunk_bytes=0)
    with pytest.raises(ValueError, match="max_entries must be positive, not -1"):
        ResumableStreams(max_entries=-1)
    with pytest.raises(ValueError, match="max_streams must be positive, not 0"):
        ResumableStreams(max_streams=0)


def test_hooks_are_plain_functions() -> None:
    async def on_append(stream_id: str, size: int) -> None:
        pass

    with pytest.raises(TypeError, match="on_append is called as a plain function"):
        ResumableStreams(on_append=on_append)


async def test_extra_headers_go_on_every_stream_response_but_cannot_change_its_id(
    make_store: StoreFactory,
) -> None:
    headers = {"Cache-Control": "private, max-age=0", STREAM_ID_HEADER: "spoofed-stream-id"}
    async with ResumableStreams(await make_store(opened=False)) as streams:
        started = await streams.start(
            create_run(say), encoder=DataStreamEncoder(), stream_id=STREAM_ID, headers=headers
        )
        resumed = await streams.resume(STREAM_ID, headers=headers)
        for response in (started, resumed):
            assert response.headers["cache-control"] == "private, max-age=0"
            assert response.headers[STREAM_ID_HEADER] == STREAM_ID
            assert response.headers["x-vercel-ai-data-stream"] == "v1"
            assert response.headers.getlist(STREAM_ID_HEADER) == [STREAM_ID]
            await body_of(response)


async def test_a_producer_whose_stream_was_deleted_reports_it_and_no_end(
    make_store: StoreFactory,
) -> None:
    """The stream of a run still going on is deleted and started again under its id
    (see test_streams): the first producer reports the loss, and only the second
    stream's end is reported."""
    store = await make_store(opened=False)
    hooks = Hooks()
    release_old = anyio.Event()
    done: list[Awaitable[None]] = []

    async def old(controller: RunController) -> None:
        controller.append_text("old text")
        await release_old.wait()
        controller.append_text("late")

    async def new(controller: RunController) -> None:
        controller.append_text("new")
        await release_old.wait()
        await anyio.sleep(0.05)
        controller.append_text(" tail")

    async with ResumableStreams(store, wait_until=done.append, **hooks.kwargs()) as streams:
        await streams.start(create_run(old), encoder=DataStreamEncoder(), stream_id=STREAM_ID)
        with anyio.fail_after(5):
            while (info := await store.info(STREAM_ID)) is None or info.size == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await store.delete(STREAM_ID)
        second = await streams.start(
            create_run(new), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        release_old.set()
        await done[0]
        assert await body_of(second) == b'0:"new"\n0:" tail"\n' + END
        await done[1]
        info = await store.info(STREAM_ID)
        assert info is not None
        assert info.status == "done"
    [(stream_id, error)] = hooks.of("error")
    assert stream_id == STREAM_ID
    assert isinstance(error, StreamNotFoundError)
    assert hooks.of("finish") == [(STREAM_ID, "done", None)]
