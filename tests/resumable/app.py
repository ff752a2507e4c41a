"""The app the resumable-stream tests serve: start, resume and cancel, in every format.

Served in the test process (``app_for(store)``) or as a worker process
(``trio-stream serve tests.resumable.app:app``), which takes its store from
the environment (``store_from_environment``): a ``RedisStore`` on
``TEST_REDIS_URL`` (one server), ``TEST_REDIS_SENTINELS`` (``host:port,...``,
with ``TEST_REDIS_SERVICE``) or ``TEST_REDIS_CLUSTER`` (``url,...``), keys
under ``TEST_REDIS_PREFIX``, with ``TEST_REDIS_LEASE``,
``TEST_REDIS_TIMEOUT`` and ``TEST_REDIS_FAILOVER_TIMEOUT`` in seconds if
set; else memory. Each run is the demo's scripted turn, at ``TEST_PACE`` of its
pace (0.02 unless set), or with ``/start/<format>?size=N``, N bytes of
text in 64 KiB deltas, produced as fast as the store takes them; ``?pace=``
sets the script's pace for one run; ``?fail=message`` makes the run raise
``RuntimeError(message)`` after its first text. ``/memory`` reports the
process's resident memory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream import RunController, create_run
from trio_stream.demo import ScriptedAgent
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder
from trio_stream.resumable import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TTL,
    MemoryStore,
    ResumableStreams,
    StreamStore,
)

ENCODERS: dict[str, type[StreamEncoder]] = {
    "data-stream": DataStreamEncoder,
    "assistant-transport": AssistantTransportEncoder,
    "ui-message-stream": UIMessageStreamEncoder,
    "openai": OpenAIStreamEncoder,
}


def app_for(
    store: StreamStore,
    *,
    pace: float = 0.02,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ttl: float = DEFAULT_TTL,
) -> Starlette:
    streams = ResumableStreams(store, max_bytes=max_bytes, ttl=ttl)

    async def start(request: Request) -> Response:
        encoder = ENCODERS[request.path_params["format"]]()
        size = int(request.query_params.get("size", "0"))
        agent = ScriptedAgent(pace=float(request.query_params.get("pace", pace)))

        async def run(controller: RunController) -> None:
            if "fail" in request.query_params:
                controller.append_text("Starting… ")
                await anyio.sleep(0.05)
                raise RuntimeError(request.query_params["fail"])
            if size:
                piece = "x" * 65536
                for _ in range(size // len(piece)):
                    controller.append_text(piece)
                    await controller.drain()
            else:
                await agent(controller, [{"role": "user", "content": "Hi"}])

        return await streams.start(
            create_run(run, state={}), encoder=encoder, stream_id=request.query_params.get("id")
        )

    async def resume(request: Request) -> Response:
        offset = request.query_params.get("offset", "0")
        return await streams.resume(request.path_params["stream_id"], offset=offset)

    async def memory(request: Request) -> Response:
        """This process's resident memory, in bytes (Linux)."""
        status = await anyio.Path("/proc/self/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return JSONResponse({"rss": int(kib) * 1024})

    async def cancel(request: Request) -> Response:
        return await streams.cancel(request.path_params["stream_id"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with streams:
            yield

    return Starlette(
        routes=[
            Route("/start/{format}", start, methods=["POST"]),
            Route("/streams/{stream_id}", resume),
            Route("/streams/{stream_id}", cancel, methods=["DELETE"]),
            Route("/memory", memory),
        ],
        lifespan=lifespan,
    )


def store_from_environment() -> StreamStore:
    """The store the environment describes (see the module's docstring)."""
    from trio_stream.resumable.redis import RedisStore

    options: dict[str, Any] = {"prefix": os.environ.get("TEST_REDIS_PREFIX", "trio-stream:")}
    for name in ("lease", "timeout", "failover_timeout"):
        value = os.environ.get(f"TEST_REDIS_{name.upper()}")
        if value:
            options[name] = float(value)
    if url := os.environ.get("TEST_REDIS_URL"):
        return RedisStore(url, **options)
    if sentinels := os.environ.get("TEST_REDIS_SENTINELS"):
        service = os.environ["TEST_REDIS_SERVICE"]
        return RedisStore.sentinel(sentinels.split(","), service, **options)
    if nodes := os.environ.get("TEST_REDIS_CLUSTER"):
        return RedisStore.cluster(nodes.split(","), **options)
    return MemoryStore()


app = app_for(store_from_environment(), pace=float(os.environ.get("TEST_PACE", "0.02")))
