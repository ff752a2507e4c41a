"""The app ``test_security.py`` attacks: failing runs, a chat body, resumable streams.

- ``POST /fail/{format}?expose=0|1``: streams a little, has a tool fail
  (reported as its result), then fails, each exception carrying a secret;
- ``POST /chat``: a data stream request body, read with ``parse_body``;
- ``POST /streams`` and ``GET /streams/{stream_id}?offset=``: resumable
  streams in a ``MemoryStore``.

Serve it with ``python -m trio_stream serve tests.reliability.security_app:app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.requests import DataStreamRequest, RequestBodyError, parse_body
from trio_stream.resumable import MemoryStore, ResumableStreams

from ..scenarios import RESPONSES

SECRET = "postgres://admin:s3cr3t@10.1.2.3/prod"
"""What a careless exception message gives away."""

streams = ResumableStreams(MemoryStore())


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with streams:
        yield


async def failing(controller: RunController) -> None:
    async def lookup(call: ToolCallController) -> None:
        raise ConnectionError(f"tool could not reach {SECRET}")

    controller.append_text("Looking it up")
    async with controller.open_substream() as sub:
        sub.spawn_tool_call("lookup", lookup, args={"q": "x"}, errors_as_result=True)
    raise RuntimeError(f"query failed on {SECRET}")


async def fail(request: Request) -> Response:
    expose = request.query_params.get("expose") == "1"
    response = RESPONSES[request.path_params["format"]]
    return response(create_run(failing, expose_errors=expose))


async def chat(request: Request) -> Response:
    try:
        body = await parse_body(request, DataStreamRequest)
    except RequestBodyError as exc:
        return exc.response()
    return JSONResponse({"messages": len(body.messages)})


async def start(request: Request) -> Response:
    async def run(controller: RunController) -> None:
        controller.append_text("stored")

    return await streams.start(create_run(run), encoder=DataStreamEncoder())


async def resume(request: Request) -> Response:
    return await streams.resume(
        request.path_params["stream_id"], offset=request.query_params.get("offset", "0")
    )


app = Starlette(
    routes=[
        Route("/fail/{format}", fail, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
        Route("/streams", start, methods=["POST"]),
        Route("/streams/{stream_id:path}", resume),
    ],
    lifespan=lifespan,
)
