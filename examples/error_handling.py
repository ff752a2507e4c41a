"""Errors over HTTP: an expected one reported kindly, an unexpected one reported and raised.

Run it with:  uv run --group dev python examples/error_handling.py

It serves two routes with hypercorn on Trio on a free port and reads both
with an HTTP client, printing each body:

- ``/expected`` catches the error it expects and sends a friendly error
  chunk with ``controller.add_error``; the run ends normally.
- ``/unexpected`` lets the exception escape: the client first receives an
  error chunk with its message and a clean end of the body, then the
  exception propagates to the server, which logs it with its traceback.
- ``/hidden`` is the same failure with ``expose_errors=False``, as a public
  endpoint should have it: the client is told only that the response failed,
  with a reference, and the traceback in the log carries the same reference.
"""

from __future__ import annotations

from functools import partial

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, create_run, serve
from trio_stream.asgi import DataStreamResponse


def parse_city(text: str) -> str:
    raise ValueError(f"no such city: {text}")


async def expected(controller: RunController) -> None:
    controller.append_text("Looking up the city… ")
    try:
        parse_city("Atlantis")
    except ValueError as e:
        controller.add_error(f"Bad input: {e}")
        return


async def unexpected(controller: RunController) -> None:
    controller.append_text("Looking up the city… ")
    raise RuntimeError("the geocoder crashed")


async def route_expected(request: object) -> Response:
    return DataStreamResponse(create_run(expected))


async def route_unexpected(request: object) -> Response:
    return DataStreamResponse(create_run(unexpected))


async def route_hidden(request: object) -> Response:
    return DataStreamResponse(create_run(unexpected, expose_errors=False))


app = Starlette(
    routes=[
        Route("/expected", route_expected),
        Route("/unexpected", route_unexpected),
        Route("/hidden", route_hidden),
    ]
)


async def main() -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve, app, port=0, shutdown_trigger=stop.wait))
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            for path in ("/expected", "/unexpected", "/hidden"):
                response = await client.get(path)
                print(f"GET {path} -> {response.status_code}")
                print(response.text, end="")
        stop.set()  # a graceful shutdown: requests in flight finish first


if __name__ == "__main__":
    # The bodies go to stdout; hypercorn's log, with the unexpected error's
    # traceback, to stderr.
    trio.run(main)
