"""The agent ``test_remote_processes.py`` runs as separate processes, chained by HTTP.

Serve it with ``python -m trio_stream serve tests.remote_app:app``. The
environment configures one process:

- ``REMOTE_APP_NAME``: the process's name in the chain (``A``, ``B``…), in
  its text, its tool call ids and its records;
- ``REMOTE_APP_RECORDS``: a file where the process appends a line for each
  thing that starts and each clean-up (``tag process event monotonic-time``),
  so the test process sees what happened in every process, and when: on
  Linux, ``time.monotonic()`` is the same clock in every process;
- ``REMOTE_APP_FORMAT``: the format it answers in (``data-stream`` unless set).

``POST /chain`` takes ``{"tag", "mode", "next", ...}``. ``next`` is the list of
agents further down (base URLs): the first is called with
``spawn_remote_tool_call`` and given the rest; the last in the list does the
work itself. ``mode`` says which work:

- ``answer``: the last agent answers with one chunk of every kind; each agent
  above waits for the answer of the one below and answers with what it heard;
  ``together: N`` makes the last agent hold its answer until N of its runs
  with the same tag are going at once;
- ``slow``: every agent streams a line of text, starts a tool that waits
  forever, and waits forever itself, recording each start and each clean-up;
  with ``cancel_at`` naming it, an agent cancels its own run
  (``controller.cancel()``) once ``when_started`` has recorded its tool's start;
- ``fail``: the last agent writes a line and raises.

And routes that fail in each way a remote can: ``/overloaded`` (503 with a
JSON ``detail``), ``/garbage`` (a data stream line that is not JSON),
``/untyped`` (an HTML page, as a proxy in the way answers) and ``/silent`` (a
line, then nothing, without keep-alives).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    RunResponse,
    UIMessageStreamResponse,
)

NAME = os.environ.get("REMOTE_APP_NAME", "agent")
RECORDS = Path(os.environ.get("REMOTE_APP_RECORDS", os.devnull))
RESPONSES: dict[str, type[RunResponse]] = {
    "data-stream": DataStreamResponse,
    "assistant-transport": AssistantTransportResponse,
    "ui-message-stream": UIMessageStreamResponse,
}
RESPONSE = RESPONSES[os.environ.get("REMOTE_APP_FORMAT", "data-stream")]

ANSWER_FILE = "YW5zd2Vy"  # base64 of "answer"


def record(tag: str, event: str) -> None:
    """Append ``tag NAME event time`` to the records, in one write (``O_APPEND``)."""
    line = f"{tag} {NAME} {event} {time.monotonic()!r}\n".encode()
    descriptor = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


async def recorded(tag: str, process: str, event: str) -> None:
    """Wait until ``process`` has recorded ``event`` under ``tag``."""
    wanted = f"{tag} {process} {event} "
    while True:
        lines = (await anyio.Path(RECORDS).read_text()).splitlines()
        if any(line.startswith(wanted) for line in lines):
            return
        await anyio.sleep(0.01)  # another process writes it: nothing here to wait on


class Gathering:
    """The runs of one tag waiting until ``size`` of them are going at once."""

    def __init__(self) -> None:
        self.arrived = 0
        self.complete = anyio.Event()

    async def join(self, size: int) -> None:
        self.arrived += 1
        if self.arrived >= size:
            self.complete.set()
        with anyio.fail_after(10):
            await self.complete.wait()


gatherings: dict[str, Gathering] = {}


def delegate(controller: RunController, body: dict[str, Any]) -> ToolCallController:
    """Call the next agent down with the rest of the chain."""
    following, *rest = body["next"]
    return controller.spawn_remote_tool_call(
        "delegate",
        f"{following}/chain",
        args={"by": NAME},
        json={**body, "next": rest},
        tool_call_id=f"{NAME.lower()}_call",
    )


async def answer(controller: RunController, body: dict[str, Any]) -> None:
    if body["next"]:
        controller.append_reasoning(f"{NAME} asks further down")
        async with controller.open_substream() as sub:
            call = delegate(sub, body)
        assert call.response is not None
        controller.append_text(f"{NAME} heard: {call.response.result}")
        return
    if "together" in body:
        await gatherings.setdefault(body["tag"], Gathering()).join(body["together"])
    controller.add_step_start(f"msg_{NAME}")
    controller.append_reasoning(f"{NAME} looks it up")
    lookup = await controller.add_tool_call("lookup", "lookup")
    lookup.append_args_text('{"q": "the answer"}')
    async with lookup.open_substream() as sub:
        sub.append_text("reading the index")
    lookup.set_response({"found": 42})
    controller.state = {"answered_by": NAME}
    controller.add_source("src_1", "https://example.org/index", "The index")
    controller.add_file(ANSWER_FILE, "text/plain")
    controller.add_data({"confidence": 0.9}, name="score")
    controller.add_data(f"{NAME}'s notes")
    controller.append_text(f"{NAME} answers 42")
    controller.add_step_finish("stop", 5, 7)


async def slow(controller: RunController, body: dict[str, Any]) -> None:
    tag = body["tag"]

    async def wait(call: ToolCallController) -> None:
        record(tag, "tool-started")
        try:
            await anyio.sleep_forever()
        finally:
            record(tag, "tool-cleaned-up")

    record(tag, "run-started")
    try:
        controller.append_text(f"{NAME} working")
        controller.spawn_tool_call("wait", wait, tool_call_id=f"{NAME.lower()}_wait")
        if body["next"]:
            delegate(controller, body)
        if body.get("cancel_at") == NAME:
            await recorded(tag, body["when_started"], "tool-started")
            record(tag, "cancels")
            controller.cancel()
        await anyio.sleep_forever()
    finally:
        record(tag, "run-cleaned-up")


async def fail(controller: RunController, body: dict[str, Any]) -> None:
    if body["next"]:
        async with controller.open_substream() as sub:
            delegate(sub, body)
        return
    controller.append_text(f"{NAME} is about to fail")
    raise ValueError("the index is corrupt")


MODES: dict[str, Callable[[RunController, dict[str, Any]], Any]] = {
    "answer": answer,
    "slow": slow,
    "fail": fail,
}


async def chain(request: Request) -> Response:
    body = await request.json()
    work = MODES[body["mode"]]

    async def run(controller: RunController) -> None:
        await work(controller, body)

    return RESPONSE(create_run(run))


async def overloaded(request: Request) -> Response:
    return JSONResponse({"detail": "the model is overloaded"}, status_code=503)


async def garbage(request: Request) -> Response:
    return Response(
        b'0:"fine so far"\n0:this is not json\n',
        media_type="text/plain",
        headers={"x-vercel-ai-data-stream": "v1"},
    )


async def untyped(request: Request) -> Response:
    return Response(b"<html><body>Bad gateway</body></html>", media_type="text/html")


async def silent(request: Request) -> Response:
    tag = (await request.json())["tag"]

    async def run(controller: RunController) -> None:
        try:
            controller.append_text("thinking very hard")
            await anyio.sleep_forever()
        finally:
            record(tag, "run-cleaned-up")

    return DataStreamResponse(create_run(run), heartbeat=False)


app = Starlette(
    routes=[
        Route("/chain", chain, methods=["POST"]),
        Route("/overloaded", overloaded, methods=["POST"]),
        Route("/garbage", garbage, methods=["POST"]),
        Route("/untyped", untyped, methods=["POST"]),
        Route("/silent", silent, methods=["POST"]),
    ]
)
