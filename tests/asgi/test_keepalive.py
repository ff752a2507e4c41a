"""Keep-alives: which formats send them and when, and the wrappers for any stream of bytes.

The rules are assistant-stream's: a format's keep-alive bytes follow from
its media type unless it declares its own (an SSE comment line for
``text/event-stream``, none otherwise, and then never a heartbeat), and a
silence of the interval sends them, each real piece starting the silence
over. Bodies are written by responses called in process, on Trio and
asyncio.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar

import anyio
import pytest

from trio_stream import RunController, create_run
from trio_stream.asgi import (
    DEFAULT_HEARTBEAT_INTERVAL,
    AssistantTransportResponse,
    DataStreamResponse,
    OpenAIStreamResponse,
    RunResponse,
    add_keepalive,
    add_sse_heartbeat,
    heartbeat_interval,
)
from trio_stream.chunks import Chunk, TextDeltaChunk
from trio_stream.formats import StreamEncoder
from trio_stream.formats.data_stream import DataStreamEncoder

from ..asgi_calls import SentMessages

pytestmark = pytest.mark.anyio

SSE_COMMENT = b": heartbeat\n\n"


class Passthrough(StreamEncoder):
    """A format of the app's own: one ``data:`` line per text delta."""

    media_type: ClassVar[str] = "text/event-stream"

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        return b"".join(
            b"data: " + chunk.text_delta.encode() + b"\n\n"
            for chunk in chunks
            if isinstance(chunk, TextDeltaChunk)
        )


class JsonLines(Passthrough):
    media_type: ClassVar[str] = "application/json"


class WithParameters(Passthrough):
    media_type: ClassVar[str] = "text/event-stream; charset=utf-8"


async def pause(controller: RunController) -> None:
    controller.append_text("hello")
    await anyio.sleep(0.18)
    controller.append_text("world")


async def writes(response: RunResponse) -> list[bytes]:
    """The body's writes, each as sent."""
    sent = SentMessages()
    await sent.call(response)
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


# -- which formats have keep-alives, and heartbeats by default ----------------------


def test_a_custom_encoder_takes_its_keepalive_from_its_media_type() -> None:
    assert Passthrough.keepalive == SSE_COMMENT
    assert WithParameters.keepalive == SSE_COMMENT  # parameters do not change the type
    assert JsonLines.keepalive == b""
    assert heartbeat_interval(Passthrough(), None) == DEFAULT_HEARTBEAT_INTERVAL
    assert heartbeat_interval(JsonLines(), None) is None


def test_a_declared_keepalive_wins_and_turns_heartbeats_on_unless_declared_off() -> None:
    class Lines(JsonLines):
        keepalive: ClassVar[bytes] = b"\n"

    class QuietLines(Lines):
        default_heartbeat: ClassVar[bool] = False

    class QuietEvents(Passthrough):
        keepalive: ClassVar[bytes] = b""

    assert heartbeat_interval(Lines(), None) == DEFAULT_HEARTBEAT_INTERVAL
    assert heartbeat_interval(QuietLines(), None) is None
    assert heartbeat_interval(QuietLines(), 5) == 5.0
    assert heartbeat_interval(QuietEvents(), 5) is None
    assert heartbeat_interval(DataStreamEncoder(), None) is None  # off for the data stream


@pytest.mark.parametrize(
    ("heartbeat", "interval"),
    [(True, DEFAULT_HEARTBEAT_INTERVAL), (False, None), (0, None), (5, 5.0), (0.5, 0.5)],
)
def test_the_heartbeat_option(heartbeat: Any, interval: float | None) -> None:
    assert heartbeat_interval(Passthrough(), heartbeat) == interval


@pytest.mark.parametrize("heartbeat", [-1, -0.5, math.inf, math.nan])
def test_a_heartbeat_that_is_no_interval_is_refused(heartbeat: float) -> None:
    with pytest.raises(ValueError, match="heartbeat must be a positive number"):
        heartbeat_interval(Passthrough(), heartbeat)


# -- heartbeats in responses ---------------------------------------------------------


async def test_a_custom_sse_encoder_sends_comment_lines_in_the_silences() -> None:
    body = await writes(RunResponse(create_run(pause), encoder=Passthrough(), heartbeat=0.05))
    assert body[0] == b"data: hello\n\n"
    assert body[-1] == b"data: world\n\n"
    assert set(body[1:-1]) == {SSE_COMMENT}
    assert len(body[1:-1]) >= 2


async def test_an_encoder_without_keepalive_bytes_never_sends_any() -> None:
    body = await writes(RunResponse(create_run(pause), encoder=JsonLines(), heartbeat=0.05))
    assert b"".join(body) == b"data: hello\n\ndata: world\n\n"


async def test_the_data_stream_sends_blank_lines_when_asked_only() -> None:
    off = await writes(DataStreamResponse(create_run(pause)))
    assert b"\n" not in off[:-1]
    on = await writes(DataStreamResponse(create_run(pause), heartbeat=0.05))
    assert on[0] == b'0:"hello"\n'
    assert on[1:3] == [b"\n", b"\n"]
    # The last text leaves in a write of its own or with the body's ending.
    world = next(i for i, body in enumerate(on) if body.startswith(b'0:"world"\n'))
    assert world > 2


@pytest.mark.parametrize("response", [AssistantTransportResponse, OpenAIStreamResponse])
async def test_sse_formats_send_comment_lines_unless_turned_off(response: Any) -> None:
    body = await writes(response(create_run(pause), heartbeat=0.05))
    assert body.count(SSE_COMMENT) >= 2
    assert body[-1].endswith(b"data: [DONE]\n\n")
    quiet = await writes(response(create_run(pause), heartbeat=False))
    assert SSE_COMMENT not in quiet


async def test_chunks_closer_than_the_interval_leave_no_room_for_one() -> None:
    async def steady(controller: RunController) -> None:
        for i in range(3):
            await anyio.sleep(0.05)
            controller.append_text(str(i))

    body = await writes(AssistantTransportResponse(create_run(steady), heartbeat=0.5))
    assert SSE_COMMENT not in body


# -- add_keepalive and add_sse_heartbeat ---------------------------------------------


async def pieces(*items: bytes | float) -> AsyncIterator[bytes]:
    """``items`` in order: bytes are yielded, numbers are pauses of that many seconds."""
    for item in items:
        if isinstance(item, bytes):
            yield item
        else:
            await anyio.sleep(item)


async def test_add_sse_heartbeat_fills_a_silence_of_any_byte_stream() -> None:
    async with add_sse_heartbeat(pieces(b"data: 1\n\n", 0.18, b"data: 2\n\n"), 0.05) as body:
        got = [piece async for piece in body]
    assert got[0] == b"data: 1\n\n"
    assert got[-1] == b"data: 2\n\n"
    assert set(got[1:-1]) == {SSE_COMMENT}
    assert len(got) >= 4


async def test_add_keepalive_sends_the_given_token_and_pieces_reset_the_timer() -> None:
    async with add_keepalive(pieces(b"a", 0.12, b"b", b"c"), 0.05, b"\n") as body:
        got = [piece async for piece in body]
    assert [piece for piece in got if piece != b"\n"] == [b"a", b"b", b"c"]
    assert got.index(b"b") >= 3  # after the silence's keep-alives
    assert got[-2:] == [b"b", b"c"]
    async with add_keepalive(pieces(0.02, b"a", 0.02, b"b"), 0.5, b"\n") as quick:
        assert [piece async for piece in quick] == [b"a", b"b"]


async def test_leaving_the_block_cancels_a_read_in_progress() -> None:
    cancelled = anyio.Event()

    async def stuck() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    async with add_keepalive(stuck(), 0.05, SSE_COMMENT) as body:
        assert await body.__anext__() == b"data: 1\n\n"
        assert await body.__anext__() == SSE_COMMENT
    assert cancelled.is_set()


async def test_leaving_the_block_closes_the_source_with_no_read_pending() -> None:
    closed = anyio.Event()

    async def source() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"
        finally:
            closed.set()

    async with add_keepalive(source(), 10, SSE_COMMENT) as body:
        assert await body.__anext__() == b"data: 1\n\n"
    assert closed.is_set()


async def test_the_sources_failure_comes_out_of_the_iteration_as_itself() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        raise ConnectionError("upstream went away")

    got: list[bytes] = []
    with pytest.raises(ConnectionError, match="upstream went away"):
        async with add_keepalive(failing(), 1, b"\n") as body:
            async for piece in body:
                got.append(piece)
    assert got == [b"a"]


async def test_add_keepalive_refuses_what_is_not_an_interval_or_a_token() -> None:
    with pytest.raises(ValueError, match="positive"):
        async with add_keepalive(pieces(), 0, b"\n"):
            pass
    with pytest.raises(TypeError, match="non-empty bytes"):
        async with add_keepalive(pieces(), 1, ": heartbeat\n\n"):  # type: ignore[arg-type]
            pass


async def test_a_source_of_text_is_refused_when_it_gives_text() -> None:
    async def words() -> AsyncIterator[str]:
        yield "text"

    with pytest.raises(TypeError, match="carries bytes, not str"):
        async with add_keepalive(words(), 1, b"\n") as body:  # type: ignore[arg-type]
            async for _ in body:
                pass
