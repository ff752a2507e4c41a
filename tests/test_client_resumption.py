"""The client resumes a resumable stream whose connection broke off mid-body.

The server (hypercorn with Trio, in a thread of the test process) keeps its
runs in ``ResumableStreams``; its start route can be told to cut its first
response after N bytes of body, as a dropped connection does: the response
sends exactly N bytes, then fails, and hypercorn closes the connection
without ending the body. The client, given the resume route, asks for the
rest from the offset it holds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trio_stream import RunController, create_run
from trio_stream.chunks import Chunk, TextDeltaChunk, ToolResultChunk
from trio_stream.client import RemoteError, stream
from trio_stream.formats import FORMATS
from trio_stream.resumable import MemoryStore, ResumableStreams

from .conftest import collect
from .serving import free_port, running

pytestmark = pytest.mark.anyio


class Cut(Exception):
    """What the cut response raises, once its N bytes are out."""


class CutAfter:
    """An ASGI app sending ``response`` until ``limit`` bytes of body, then failing."""

    def __init__(self, response: ASGIApp, limit: int) -> None:
        self.response = response
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0

        async def cutting(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if sent + len(body) >= self.limit:
                    room = self.limit - sent
                    await send(
                        {"type": "http.response.body", "body": body[:room], "more_body": True}
                    )
                    raise Cut(f"cut after {self.limit} bytes")
                sent += len(body)
            await send(message)

        await self.response(scope, receive, cutting)
        raise Cut(f"the body ended before {self.limit} bytes")


async def answer(controller: RunController) -> None:
    """The same chunks every time, some of them after the first response is cut."""
    controller.append_text("Let me see. ")
    call = await controller.add_tool_call("lookup", "call_1")
    call.append_args_text('{"q": "tides"}')
    for n in range(12):
        await anyio.sleep(0.005)
        controller.append_text(f"wave {n}, ")
    call.set_response({"high": "06:12"})
    controller.add_data({"tide": "high"}, name="card")
    controller.append_text("done.")


class Server:
    """The resumable app, and the resume requests it answered."""

    def __init__(self) -> None:
        self.streams = ResumableStreams(MemoryStore())
        self.resumed: dict[str, list[int]] = {}
        self.refused: dict[str, int] = {}
        self.app = Starlette(
            routes=[
                Route("/start/{format}", self.start, methods=["POST"]),
                Route("/streams/{stream_id}", self.resume),
                Route("/unavailable/{stream_id}", self.unavailable),
                Route("/gone/{stream_id}", self.gone),
            ],
            lifespan=self.lifespan,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.streams:
            yield

    async def start(self, request: Request) -> Any:
        encoder = FORMATS[request.path_params["format"]].encoder()
        response = await self.streams.start(create_run(answer), encoder=encoder)
        if "cut" in request.query_params:
            return CutAfter(response, int(request.query_params["cut"]))
        return response

    async def resume(self, request: Request) -> Response:
        stream_id = request.path_params["stream_id"]
        offset = request.query_params.get("offset", "0")
        self.resumed.setdefault(stream_id, []).append(int(offset))
        return await self.streams.resume(stream_id, offset=offset)

    async def unavailable(self, request: Request) -> Response:
        stream_id = request.path_params["stream_id"]
        self.refused[stream_id] = self.refused.get(stream_id, 0) + 1
        return JSONResponse({"detail": "the store is down"}, status_code=503)

    async def gone(self, request: Request) -> Response:
        stream_id = request.path_params["stream_id"]
        self.refused[stream_id] = self.refused.get(stream_id, 0) + 1
        return JSONResponse({"detail": "no such stream"}, status_code=404)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Server]]:
    served = Server()
    with running(served.app) as url:
        yield url, served


async def read(url: str, **options: Any) -> tuple[list[Chunk], int, str | None]:
    """The chunks of a stream, how many bytes of body it read, and its stream id."""
    async with stream(url, **options) as chunks:
        return [chunk async for chunk in chunks], chunks.offset, chunks.stream_id


@pytest.mark.parametrize("format_name", ["data-stream", "ui-message-stream"])
async def test_a_body_cut_anywhere_reads_as_the_uncut_one(
    server: tuple[str, Server], format_name: str
) -> None:
    url, served = server
    async with httpx.AsyncClient() as client:
        whole = (await client.post(f"{url}/start/{format_name}")).content
    uncut, size, _ = await read(f"{url}/start/{format_name}")
    assert size == len(whole)
    assert TextDeltaChunk("done.") in uncut
    for cut in (1, 17, len(whole) // 3, len(whole) // 2, len(whole) - 3):
        chunks, offset, stream_id = await read(
            f"{url}/start/{format_name}?cut={cut}", resume_url=f"{url}/streams/{{stream_id}}"
        )
        assert chunks == uncut, f"cut at byte {cut}"
        assert offset == len(whole)
        # One resumption, from the byte where the body broke off.
        assert stream_id is not None
        assert served.resumed[stream_id] == [cut]


async def test_without_a_resume_url_a_cut_body_is_a_broken_stream(
    server: tuple[str, Server],
) -> None:
    url, _ = server
    target = f"{url}/start/data-stream?cut=40"
    with pytest.raises(RemoteError) as raised:
        await read(target)
    assert raised.value.failure == "broken"
    assert str(raised.value).startswith(f"{target}: broke off mid-body: ")


async def test_a_resume_url_that_keeps_failing_ends_after_the_attempts_with_backoff(
    server: tuple[str, Server],
) -> None:
    url, served = server
    target = f"{url}/start/data-stream?cut=40"
    began = time.monotonic()
    with pytest.raises(RemoteError) as raised:
        await read(
            target,
            resume_url=f"{url}/unavailable/{{stream_id}}",
            resume_attempts=3,
            resume_backoff=0.05,
        )
    waited = time.monotonic() - began
    stream_id = str(raised.value).split("/unavailable/")[1].split(":")[0]
    assert served.refused[stream_id] == 3
    assert raised.value.failure == "broken"
    assert str(raised.value) == (
        f"{target}: broke off mid-body at byte 40, and 3 attempts to resume it failed "
        f"(the last: {url}/unavailable/{stream_id}: answered 503: the store is down)"
    )
    assert 0.05 + 0.1 + 0.2 <= waited < 10  # the backoff doubles


async def test_a_resume_refused_for_good_is_not_tried_again(
    server: tuple[str, Server],
) -> None:
    url, served = server
    target = f"{url}/start/data-stream?cut=40"
    with pytest.raises(RemoteError) as raised:
        await read(target, resume_url=f"{url}/gone/{{stream_id}}", resume_backoff=0.01)
    stream_id = str(raised.value).split("/gone/")[1].split(":")[0]
    assert served.refused[stream_id] == 1
    assert str(raised.value) == (
        f"{target}: broke off mid-body at byte 40, and resuming it was refused "
        f"({url}/gone/{stream_id}: answered 404: no such stream)"
    )


async def test_an_unreachable_resume_url_is_tried_the_attempts_given(
    server: tuple[str, Server],
) -> None:
    url, _ = server
    target = f"{url}/start/data-stream?cut=40"
    with pytest.raises(RemoteError) as raised:
        await read(
            target,
            resume_url=f"http://127.0.0.1:{free_port()}/streams/{{stream_id}}",
            resume_attempts=2,
            resume_backoff=0.01,
        )
    assert str(raised.value).startswith(
        f"{target}: broke off mid-body at byte 40, and 2 attempts to resume it failed "
    )
    assert "cannot be reached" in str(raised.value)


async def test_a_remote_tool_call_reads_a_resumable_agent_through_a_cut(
    server: tuple[str, Server],
) -> None:
    url, _ = server

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask",
            f"{url}/start/data-stream?cut=60",
            tool_call_id="ask",
            resume_url=f"{url}/streams/{{stream_id}}",
        )

    chunks = await collect(run)
    text = [c.text_delta for c in chunks if isinstance(c, TextDeltaChunk)]
    assert "".join(text) == "Let me see. " + "".join(f"wave {n}, " for n in range(12)) + "done."
    assert chunks[-1] == ToolResultChunk("ask", "".join(text))
