"""A client that leaves mid-answer: the run and every tool it started are cancelled at once.

Run it with:  uv run --group dev python examples/cancel_on_disconnect.py

The run starts three tools that would each wait a minute on a slow
service. The client reads the first lines of the answer and hangs up. The
response notices the disconnect, cancels the run's nursery, and every tool
sees the cancellation within milliseconds; the server logs how long that
took. Nothing keeps running for a client that is gone.
"""

from __future__ import annotations

import logging
import sys
from functools import partial

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run, serve
from trio_stream.asgi import DataStreamResponse

cancelled: list[str] = []
all_cancelled = trio.Event()
client_left = 0.0


async def slow_service(tool: ToolCallController) -> str:
    try:
        await trio.sleep(60)  # a slow API call, in a real app
    except trio.Cancelled:
        waited = (trio.current_time() - client_left) * 1000
        cancelled.append(f"{tool.tool_name} {tool.args['part']} cancelled {waited:.1f} ms after")
        if len(cancelled) == 3:
            all_cancelled.set()
        raise
    return "never reached"


async def run(controller: RunController) -> None:
    controller.append_text("Asking three slow services at once… ")
    for part in (1, 2, 3):
        controller.spawn_tool_call("slow_service", slow_service, args={"part": part})


async def chat(request: object) -> Response:
    return DataStreamResponse(create_run(run))


app = Starlette(routes=[Route("/chat", chat)])


async def main() -> None:
    global client_left
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve, app, port=0, shutdown_trigger=stop.wait))
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", f"{urls[0]}/chat") as response:
                lines = response.aiter_lines()
                print("client read:", await anext(lines))
                client_left = trio.current_time()
            print("client hung up")
        with trio.move_on_after(5):
            await all_cancelled.wait()
        for line in sorted(cancelled):
            print(line)
        stop.set()  # a graceful shutdown: requests in flight finish first


if __name__ == "__main__":
    # The library logs each disconnect: "client disconnected from /chat: run
    # cancelled, all its tasks done in X ms".
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("server log: %(message)s"))
    logging.getLogger("trio_stream").addHandler(handler)
    logging.getLogger("trio_stream").setLevel(logging.INFO)
    trio.run(main)
