"""The client: another server's run, read over HTTP into chunks, on Trio and asyncio.

Each test serves an app on hypercorn with Trio (in a thread of the test
process) and reads it with ``trio_stream.client.stream``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from trio_stream import RunController, create_run
from trio_stream.asgi import AGUIResponse, RunResponse
from trio_stream.chunks import Chunk, ErrorChunk, TextDeltaChunk
from trio_stream.client import RemoteError, RemoteStatusError, stream
from trio_stream.formats import FORMATS, merged_deltas

from .conftest import collect
from .scenarios import RESPONSES, SCENARIOS
from .serving import free_port, running

pytestmark = pytest.mark.anyio

RESPONSE_OF: dict[str, type[RunResponse]] = {
    "data-stream": RESPONSES["data-stream"],
    "assistant-transport": RESPONSES["assistant-transport"],
    "ui-message-stream": RESPONSES["ui-message-stream"],
    "openai-stream": RESPONSES["openai"],
    "ag-ui": AGUIResponse,
}

cleaned_up = threading.Event()

DATA_STREAM = "text/plain; charset=utf-8"


async def answer(controller: RunController) -> None:
    """A run of every kind of chunk, the same every time (no random ids, no races)."""
    controller.add_step_start("msg_1")
    controller.append_reasoning("thinking")
    controller.append_text("Checking. ")
    call = await controller.add_tool_call("weather", "call_1")
    call.append_args_text('{"city": "Lisbon"}')
    call.set_response({"celsius": 24}, artifact={"source": "sensor"})
    async with call.open_substream() as sub:
        sub.append_text("nested")
    controller.state = {"progress": 1}
    controller.add_source("s1", "https://example.org", "Example")
    controller.add_data({"k": 1}, name="card")
    controller.append_text("Done.")
    controller.add_step_finish("stop", 3, 4)


async def chatty(controller: RunController) -> None:
    """Hundreds of deltas of each kind, in several parts, appended without waiting."""
    for i in range(200):
        controller.append_text(f"{i} ")
        if i % 50 == 0:
            controller.append_reasoning("hm ")
    call = await controller.add_tool_call("f", "call_1")
    for piece in ('{"q": "', *"abcdefgh", '"}'):
        call.append_args_text(piece)
    async with call.open_substream() as sub:
        for i in range(200):
            sub.append_text(f"{i} ")
    call.set_response("done")


async def many(request: Request) -> RunResponse:
    return RESPONSE_OF[request.path_params["format"]](create_run(chatty))


async def scenario(request: Request) -> RunResponse:
    response = RESPONSE_OF[request.path_params["format"]]
    return response(create_run(SCENARIOS[request.path_params["scenario"]]))


async def fixed(request: Request) -> RunResponse:
    return RESPONSE_OF[request.path_params["format"]](create_run(answer))


async def endless(request: Request) -> RunResponse:
    async def run(controller: RunController) -> None:
        try:
            controller.append_text("first")
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    return RESPONSE_OF["data-stream"](create_run(run))


def raw(body: bytes, media_type: str, headers: dict[str, str] | None = None) -> Any:
    async def respond(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=headers)

    return respond


async def refusing(request: Request) -> Response:
    return JSONResponse({"detail": "the model is overloaded"}, status_code=503)


async def broken(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        yield b'0:"half a "\n'
        raise RuntimeError("the worker died")

    return StreamingResponse(
        pieces(), media_type="text/plain", headers={"x-vercel-ai-data-stream": "v1"}
    )


async def silent(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        yield b'0:"and then "\n'
        await anyio.sleep(30)

    return StreamingResponse(
        pieces(), media_type="text/plain", headers={"x-vercel-ai-data-stream": "v1"}
    )


APP = Starlette(
    routes=[
        Route("/scenario/{format}/{scenario}", scenario, methods=["GET", "POST"]),
        Route("/fixed/{format}", fixed, methods=["GET", "POST"]),
        Route("/many/{format}", many, methods=["POST"]),
        Route("/endless", endless, methods=["POST"]),
        Route(
            "/foreign-openai",
            raw(
                b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n',
                "text/event-stream",
            ),
            methods=["POST"],
        ),
        Route(
            "/garbage",
            raw(b"0:this is not json\n", DATA_STREAM, {"x-vercel-ai-data-stream": "v1"}),
            methods=["POST"],
        ),
        Route("/untyped", raw(b"hello", "text/plain"), methods=["POST"]),
        Route("/refusing", refusing, methods=["POST"]),
        Route("/text-error", PlainTextResponse("no", status_code=500).__call__, methods=["POST"]),
        Route("/broken", broken, methods=["POST"]),
        Route("/silent", silent, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(APP) as base:
        yield base


async def read(url: str, **options: Any) -> list[Chunk]:
    async with stream(url, **options) as chunks:
        return [chunk async for chunk in chunks]


@pytest.mark.parametrize("format_name", sorted(RESPONSE_OF))
async def test_a_run_reads_back_as_its_format_carries_it(url: str, format_name: str) -> None:
    served = f"{url}/fixed/{format_name}"
    async with httpx.AsyncClient() as client:
        body = (await client.get(served)).content
    expected = FORMATS[format_name].decoder().decode(body)
    assert expected  # the format carries something of every run
    assert await read(served) == expected  # the format told by the headers
    assert await read(served, format=format_name) == expected
    if format_name != "openai-stream":  # the one format that carries part of a run
        assert {type(chunk) for chunk in expected} == {
            type(chunk) for chunk in await collect(answer)
        }


@pytest.mark.parametrize("format_name", sorted(RESPONSE_OF))
async def test_merged_deltas_say_what_the_deltas_say_in_fewer_chunks(
    url: str, format_name: str
) -> None:
    served = f"{url}/many/{format_name}"
    plain, merged = await read(served), await read(served, merge_deltas=True)
    # Merged where a read of the body brought them together; merged fully,
    # the two are one and the same.
    assert merged_deltas(merged) == merged_deltas(plain)
    assert len(merged) < len(plain) / 4


async def test_a_foreign_event_stream_is_told_by_its_first_event(url: str) -> None:
    assert await read(f"{url}/foreign-openai") == [TextDeltaChunk("hi")]


async def test_leaving_the_block_closes_the_request_and_the_server_cancels_its_run(
    url: str,
) -> None:
    cleaned_up.clear()
    async with stream(f"{url}/endless") as chunks:
        async for chunk in chunks:
            assert chunk == TextDeltaChunk("first")
            break
    with anyio.fail_after(5):
        await anyio.to_thread.run_sync(cleaned_up.wait)


async def test_an_answer_that_is_not_2xx_carries_its_status_and_detail(url: str) -> None:
    with pytest.raises(RemoteStatusError) as refused:
        await read(f"{url}/refusing")
    assert (refused.value.status_code, refused.value.detail) == (503, "the model is overloaded")
    assert str(refused.value) == f"{url}/refusing: answered 503: the model is overloaded"
    with pytest.raises(RemoteStatusError, match="answered 404"):
        await read(f"{url}/nowhere")


async def test_what_goes_wrong_is_named(url: str) -> None:
    cases = {
        f"http://127.0.0.1:{free_port()}/": "unreachable",
        f"{url}/garbage": "undecodable",
        f"{url}/broken": "broken",
    }
    for target, failure in cases.items():
        with pytest.raises(RemoteError) as raised:
            await read(target)
        assert raised.value.failure == failure
        assert raised.value.url == target
    with pytest.raises(RemoteError) as raised:
        await read(f"{url}/silent", silence_timeout=0.3)
    assert raised.value.failure == "silent"
    with pytest.raises(RemoteError) as raised:
        await read(f"{url}/untyped")
    assert raised.value.failure == "undecodable"
    assert str(raised.value).startswith(
        f"{url}/untyped: answered a body of no known format ('text/plain; charset=utf-8'); "
    )


async def test_a_failed_stream_gives_its_connection_back_to_the_callers_client(url: str) -> None:
    # One connection in the pool: a response left open would hold it, and
    # the next request would wait for it until the pool's timeout.
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        for failing in ("untyped", "garbage", "broken", "refusing"):
            with pytest.raises(RemoteError):
                await read(f"{url}/{failing}", http_client=client, connect_timeout=2)
        assert await read(f"{url}/foreign-openai", http_client=client, connect_timeout=2) == [
            TextDeltaChunk("hi")
        ]


async def test_an_unknown_format_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="no format 'ag-iu'"):
        stream(f"http://127.0.0.1:{free_port()}/", format="ag-iu")


async def test_an_error_chunk_is_a_chunk_not_an_exception(url: str) -> None:
    chunks = await read(f"{url}/scenario/data-stream/failing")
    assert isinstance(chunks[-1], ErrorChunk)
