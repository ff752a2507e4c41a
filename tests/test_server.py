"""serve(): any ASGI app on hypercorn with Trio, lifespan handled."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from trio_stream import serve

from .serving import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that knows nothing of lifespan and returns from it at once."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def get(url: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(url)).text


async def test_an_app_that_ignores_lifespan_is_served() -> None:
    async with trio.open_nursery() as nursery:
        [url] = await nursery.start(
            lambda task_status: serve(http_only, port=0, task_status=task_status)
        )
        assert await get(url) == "hello"
        nursery.cancel_scope.cancel()


async def test_without_the_guard_hypercorn_on_trio_dies_at_start_up() -> None:
    # Why the guard exists: this is hypercorn's behaviour with such an app.
    config = Config()
    config.bind = ["127.0.0.1:0"]
    with pytest.raises(BaseException) as failure, trio.fail_after(10):  # noqa: PT011
        await hypercorn_serve(http_only, config)  # type: ignore[arg-type]
    assert failure.group_contains(trio.ClosedResourceError) or isinstance(
        failure.value, trio.ClosedResourceError
    )


async def test_an_app_with_a_lifespan_runs_it_at_start_up_and_shutdown() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        routes=[Route("/", lambda request: PlainTextResponse("ok"))], lifespan=lifespan
    )
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        [url] = await nursery.start(
            lambda task_status: serve(
                app, port=0, shutdown_trigger=shutdown.wait, task_status=task_status
            )
        )
        assert events == ["startup"]
        assert await get(url) == "ok"
        shutdown.set()
    assert events == ["startup", "shutdown"]


def test_the_cli_serves_an_app_given_as_module_and_attribute(tmp_path: Path) -> None:
    (tmp_path / "hello_app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from the cli'})\n"
    )
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "trio_stream", "serve", "hello_app:app", "--port", str(port)],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/").text == "from the cli"
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.05)
        else:
            pytest.fail("the server did not answer")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_cli_names_what_it_cannot_load(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_stream", "serve", "no_such_module:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "cannot import 'no_such_module'" in result.stderr
