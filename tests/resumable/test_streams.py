"""Resumable runs over real HTTP: a client leaves, the run goes on, any client resumes.

Each test serves ``tests/resumable/app.py`` on hypercorn with Trio, with the
store of its parameter (in memory, or Redis on a real server).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import ClassVar

import anyio
import httpx
import pytest
from starlette.types import Message

from trio_stream import RunController, create_run
from trio_stream.chunks import Chunk, ErrorChunk
from trio_stream.formats import StreamEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.resumable import (
    STREAM_ID_HEADER,
    MemoryStore,
    ResumableStreams,
    StreamStore,
    validate_stream_id,
)

from ..asgi_calls import SCOPE, SentMessages, never_disconnect
from ..clients import decode
from ..serving import running
from .app import app_for
from .client import leave_after, resume, start
from .conftest import StoreFactory
from .redis_server import RedisServer

STREAM_ID = "chat-0001-turn-1"


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_store(kind: str, request: pytest.FixtureRequest) -> StreamStore:
    if kind == "memory":
        return MemoryStore()
    from trio_stream.resumable.redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis")
    return RedisStore(server.url, prefix=f"{request.node.name[:40]}:{time.monotonic_ns()}:")


@pytest.fixture
def url(store_kind: str, request: pytest.FixtureRequest) -> Iterator[str]:
    with running(app_for(new_store(store_kind, request))) as base:
        yield base


@pytest.mark.parametrize("fmt", ["data-stream", "assistant-transport", "ui-message-stream"])
def test_a_client_that_left_resumes_exactly_where_it_stopped(url: str, fmt: str) -> None:
    whole = start(url, fmt)
    body = whole.content
    assert b'Done. "' in body  # the whole scripted turn, to its closing text
    assert len(whole.headers[STREAM_ID_HEADER]) == 32
    # Leave after the first frame, in the middle, and just before the end.
    for at_least in (1, len(body) // 2, len(body) - 1):
        stream_id, received = leave_after(url, fmt, at_least)
        rest = resume(url, stream_id, len(received))
        assert rest.status_code == 200
        assert rest.headers[STREAM_ID_HEADER] == stream_id
        assert rest.headers["content-type"] == whole.headers["content-type"]
        joined = received + rest.content
        # The run is the same script: only ids and the order of parallel
        # pieces differ, so compare what the official decoder makes of it
        # with what an uninterrupted client of the same stream got.
        uninterrupted = resume(url, stream_id).content
        assert joined == uninterrupted
    decoder = {"ui-message-stream": "ai-ui-message-stream"}.get(fmt, fmt)
    message = decode(decoder, body=joined)["message"]
    assert message == decode(decoder, body=uninterrupted)["message"]
    assert len([part for part in message["parts"] if "tool" in part["type"]]) == 7


def test_resuming_at_every_offset_of_a_finished_stream_gives_the_rest(url: str) -> None:
    first = start(url)
    stream_id = first.headers[STREAM_ID_HEADER]
    whole = resume(url, stream_id).content
    assert whole == first.content
    for offset in range(0, len(whole) + 1, max(1, len(whole) // 97)):
        assert resume(url, stream_id, offset).content == whole[offset:]
    assert resume(url, stream_id, len(whole)).content == b""


def test_the_run_goes_on_without_its_client_and_ends_once(url: str) -> None:
    stream_id, received = leave_after(url, "data-stream", 1)
    deadline = time.monotonic() + 10
    while True:  # nobody reads; the run still finishes
        rest = resume(url, stream_id, len(received)).content
        if rest.endswith(b"\n") and b'd:{"finishReason":"stop"' in rest:
            break
        assert time.monotonic() < deadline
    assert rest.count(b"d:{") == 1


def test_cancel_stops_the_run_and_ends_the_stream_cleanly(url: str) -> None:
    stream_id, received = leave_after(url, "data-stream", 1, pace=1)  # a six-second run
    cancelled = httpx.delete(f"{url}/streams/{stream_id}")
    assert cancelled.json() == {"cancelled": True}
    started = time.monotonic()
    rest = resume(url, stream_id, len(received))
    assert time.monotonic() - started < 3  # not the run's six seconds
    assert rest.status_code == 200
    # Cancelled before the five tools finished: no closing text, a clean end.
    assert b"Done." not in rest.content
    assert rest.content.endswith(b"\n")
    assert httpx.delete(f"{url}/streams/{stream_id}").json() == {"cancelled": False}


def test_a_run_longer_than_its_ttl_is_kept_by_its_writes(
    store_kind: str, request: pytest.FixtureRequest
) -> None:
    # A turn of about 1.5 s, with at most 0.35 s between two writes.
    with running(app_for(new_store(store_kind, request), ttl=0.6)) as base:
        body = start(base, pace=0.25).content
    assert b"deleted or expired" not in body
    assert b'Done. "' in body
    assert body.count(b'd:{"finishReason":"stop"') == 1


def test_cancelling_runs_while_they_write_ends_each_stream_once(url: str) -> None:
    """Each run writes 64 KiB deltas as fast as the store takes them when it is
    cancelled: its stream still ends at once, with its closing line once."""
    answers = []
    for _ in range(5):
        stream_id, received = leave_after(url, "data-stream", 1, size=32 << 20)
        answers.append(httpx.delete(f"{url}/streams/{stream_id}").json()["cancelled"])
        started = time.monotonic()
        rest = resume(url, stream_id, len(received)).content
        assert time.monotonic() - started < 5  # not the producer's lease
        lines = (received + rest).splitlines()
        assert [line[:2] for line in lines if not line.startswith(b"0:")] == [b"d:"]
        assert lines[-1].startswith(b"d:")
        assert httpx.delete(f"{url}/streams/{stream_id}").json() == {"cancelled": False}
    assert any(answers)  # a run may have ended before its cancel came, but not all


@pytest.mark.parametrize(
    ("stream_id", "offset", "status", "detail"),
    [
        ("nope", "0", 400, "a stream id is 8 to 128 letters, digits, '_' or '-', not 'nope'"),
        ("a" * 129, "0", 400, None),
        (
            "unknown-stream-id",
            "0",
            404,
            "no stream 'unknown-stream-id': unknown, expired or deleted",
        ),
    ],
)
def test_bad_resumes_get_a_json_error(
    url: str, stream_id: str, offset: str, status: int, detail: str | None
) -> None:
    response = httpx.get(f"{url}/streams/{stream_id}", params={"offset": offset})
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}


@pytest.mark.parametrize("stream_id", ["nope", "a" * 129, "bad.id!!"])
def test_start_resume_and_cancel_answer_a_bad_id_alike(url: str, stream_id: str) -> None:
    answers = [
        httpx.post(f"{url}/start/data-stream", params={"id": stream_id}),
        httpx.get(f"{url}/streams/{stream_id}"),
        httpx.delete(f"{url}/streams/{stream_id}"),
    ]
    assert [answer.status_code for answer in answers] == [400, 400, 400]
    details = [answer.json()["detail"] for answer in answers]
    assert details == [details[0]] * 3
    assert details[0].startswith("a stream id is 8 to 128 letters, digits, '_' or '-', not ")


def test_cancelling_a_stream_that_is_not_running_answers_false(url: str) -> None:
    stream_id = start(url).headers[STREAM_ID_HEADER]  # read to its end
    for unknown_or_ended in ("unknown-stream-id", stream_id):
        response = httpx.delete(f"{url}/streams/{unknown_or_ended}")
        assert (response.status_code, response.json()) == (200, {"cancelled": False})


def test_a_bad_offset_is_400_and_one_past_the_end_416(url: str) -> None:
    stream_id = start(url).headers[STREAM_ID_HEADER]
    size = len(resume(url, stream_id).content)
    for offset, status in (("abc", 400), ("-1", 400), (str(size + 1), 416)):
        response = httpx.get(f"{url}/streams/{stream_id}", params={"offset": offset})
        assert response.status_code == status
        assert "detail" in response.json()


def test_an_offset_is_plain_ascii_digits(url: str) -> None:
    not_digits = [
        "1_0",  # int() takes all of these but the last four
        "+5",
        " 5",
        "5 ",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE
        "\uff15",  # FULLWIDTH DIGIT FIVE
        "",
        "5.0",
        "0x5",
        "1" + "0" * 18,  # 10**18: more than any store counts
    ]
    for offset in not_digits:  # checked before the stream is looked up
        response = resume(url, "unknown-stream-id", offset)
        assert response.status_code == 400
        assert response.json()["detail"] == (
            f"offset must be a whole number of bytes in ASCII digits, below 10**18, not {offset!r}"
        )
    whole = start(url)
    stream_id = whole.headers[STREAM_ID_HEADER]
    for offset in ("7", "007", "0" * 30 + "7"):
        assert resume(url, stream_id, offset).content == whole.content[7:]


@pytest.mark.anyio
async def test_an_int_offset_is_checked_too() -> None:
    streams = ResumableStreams(MemoryStore())
    digits = "offset must be a whole number of bytes in ASCII digits, below 10**18, not"
    for offset, detail in (
        (-1, "offset must not be negative, not -1"),
        (True, f"{digits} True"),
        (10**18, f"{digits} {10**18}"),
    ):
        response = await streams.resume("unknown-stream-id", offset=offset)
        assert (response.status_code, json.loads(bytes(response.body))) == (
            400,
            {"detail": detail},
        )
    assert (await streams.resume("unknown-stream-id", offset=5)).status_code == 404


@pytest.mark.anyio
async def test_an_id_is_checked_whole_a_trailing_line_break_included() -> None:
    for almost in ("valid-id-0001\n", "\nvalid-id-0001", "valid-id.0001", "valid:id:0001"):
        with pytest.raises(ValueError, match="a stream id is 8 to 128 letters"):
            validate_stream_id(almost)
        async with ResumableStreams(MemoryStore()) as streams:
            refused = await streams.start(
                create_run(say_hi), encoder=DataStreamEncoder(), stream_id=almost
            )
            assert refused.status_code == 400
            assert (await streams.resume(almost)).status_code == 400
            assert (await streams.cancel(almost)).status_code == 400


async def say_hi(controller: RunController) -> None:
    controller.append_text("hi")


def test_an_id_chosen_by_the_app_is_checked_and_taken_once(url: str) -> None:
    assert start(url, id="chat-0001-turn-1").headers[STREAM_ID_HEADER] == "chat-0001-turn-1"
    taken = httpx.post(f"{url}/start/data-stream", params={"id": "chat-0001-turn-1"})
    assert (taken.status_code, taken.json()) == (
        409,
        {"detail": "a stream 'chat-0001-turn-1' exists already"},
    )
    bad = httpx.post(f"{url}/start/data-stream", params={"id": "../../etc"})
    assert bad.status_code == 400
    assert json.loads(bad.text)["detail"].startswith("a stream id is")


class _Labelled(StreamEncoder):
    """A format of the app's own, with an option, that no path could import."""

    media_type: ClassVar[str] = "text/plain; charset=utf-8"

    def __init__(self, label: str) -> None:
        self.label = label

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        lines = []
        for chunk in chunks:
            text = (
                chunk.error if isinstance(chunk, ErrorChunk) else getattr(chunk, "text_delta", "")
            )
            lines.append(f"{self.label} {chunk.type}: {text}\n")
        return "".join(lines).encode()

    def finish(self) -> bytes:
        return f"{self.label} end\n".encode()


@pytest.mark.anyio
async def test_a_stream_broken_off_ends_in_its_encoders_words_on_another_worker() -> None:
    # The reader is on a worker that never saw the encoder: what ends the body
    # was stored with the stream, made by the encoder with its options.
    store = MemoryStore()
    sent = SentMessages()
    text_sent = anyio.Event()

    async def send(message: Message) -> None:
        await sent.send(message)
        if b"hi" in sent.body:
            text_sent.set()

    async def run(controller: RunController) -> None:
        controller.append_text("hi")
        await anyio.sleep_forever()

    async with ResumableStreams(store) as producing, ResumableStreams(store) as reading:
        started = await producing.start(create_run(run), encoder=_Labelled("[agent-7]"))
        stream_id = started.headers[STREAM_ID_HEADER]
        async with anyio.create_task_group() as readers:
            readers.start_soon(await reading.resume(stream_id), SCOPE, never_disconnect, send)
            await text_sent.wait()
            await store.delete(stream_id)
    assert sent.body.decode() == (
        "[agent-7] text-delta: hi\n"
        "[agent-7] error: the stream was interrupted: it was deleted or expired\n"
        "[agent-7] end\n"
    )


@pytest.mark.anyio
@pytest.mark.parametrize("late_write", [True, False], ids=["writes-again", "just-ends"])
async def test_a_producer_whose_stream_was_deleted_never_touches_its_successor(
    make_store: StoreFactory, caplog: pytest.LogCaptureFixture, late_write: bool
) -> None:
    """An app that picks its own ids may delete a stream and start another one under the
    same id while the first run still goes on: that run's producer stops at its next
    write, or at its end, and the new stream keeps only its own bytes and its own end."""
    store = await make_store(opened=False)
    release_old = anyio.Event()
    new_written = anyio.Event()

    async def old(controller: RunController) -> None:
        controller.append_text("old text")
        await release_old.wait()
        if late_write:
            controller.append_text("late")

    async def new(controller: RunController) -> None:
        controller.append_text("new")
        await new_written.wait()
        controller.append_text(" tail")

    async with ResumableStreams(store) as streams:
        await streams.start(create_run(old), encoder=DataStreamEncoder(), stream_id=STREAM_ID)
        with anyio.fail_after(5):
            while (info := await store.info(STREAM_ID)) is None or info.size == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await store.delete(STREAM_ID)
        second = await streams.start(
            create_run(new), encoder=DataStreamEncoder(), stream_id=STREAM_ID
        )
        with anyio.fail_after(5):
            while (info := await store.info(STREAM_ID)) is None or info.size == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        release_old.set()  # the old run writes or ends, and its producer with it
        with anyio.fail_after(5):
            while not any("no longer this producer's" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        new_written.set()
        sent = SentMessages()
        await sent.call(second)
        end = DataStreamEncoder().finish()
        assert sent.body == b'0:"new"\n0:" tail"\n' + end
        info = await store.info(STREAM_ID)
        assert info is not None
        assert info.status == "done"
