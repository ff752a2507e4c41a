"""The app the fault tests serve: every fault scenario, in every wire format.

Served as a real server process (``trio-stream serve
tests.reliability.faults_app:app``), whose log the tests read:

- ``/fault/<format>/<scenario>?probe=<id>`` streams a scenario of
  ``faults_scenarios.FAULTS``, its tasks reporting to the probe ``<id>``;
- ``/race/<format>?probe=<id>&delay=<s>`` streams a run that fails after
  ``delay`` seconds, for a client that leaves at about that time;
- ``/interrupt/<format>?probe=<id>&exception=KeyboardInterrupt`` streams a
  run whose callback raises that ``BaseException``;
- ``/stats?probe=<id>`` reports the server's living Trio tasks (see
  ``census``), and the probe's live tasks, finished cleanups and raised
  faults.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream import Run, RunController, create_run
from trio_stream.asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    OpenAIStreamResponse,
    UIMessageStreamResponse,
)
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder

from .faults_scenarios import Probe, by_name, fail_after, interrupted

__all__ = ["FORMATS", "MESSAGE_ID", "app"]

MESSAGE_ID = "msg_faults"
"""The UI message stream's message id, fixed so that a body can be predicted."""

FORMATS: dict[str, Callable[[Run], Response]] = {
    "data-stream": DataStreamResponse,
    "assistant-transport": AssistantTransportResponse,
    "ui-message-stream": lambda run: UIMessageStreamResponse(
        run, encoder=UIMessageStreamEncoder(message_id=MESSAGE_ID)
    ),
    "openai": OpenAIStreamResponse,
}

INTERRUPTS: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
}

PROBES: dict[str, Probe] = {}


def probe_for(request: Request) -> Probe:
    probe = PROBES[request.query_params["probe"]] = Probe()
    return probe


async def fault(request: Request) -> Response:
    scenario = by_name(request.path_params["scenario"])
    run = create_run(scenario.callback(probe_for(request)))
    return FORMATS[request.path_params["format"]](run)


async def race(request: Request) -> Response:
    probe = probe_for(request)
    scenario = fail_after(float(request.query_params["delay"]))

    async def run(controller: RunController) -> None:
        await scenario(controller, probe)

    return FORMATS[request.path_params["format"]](create_run(run))


async def interrupt(request: Request) -> Response:
    probe = probe_for(request)
    scenario = interrupted("callback", INTERRUPTS[request.query_params["exception"]])

    async def run(controller: RunController) -> None:
        await scenario(controller, probe)

    return FORMATS[request.path_params["format"]](create_run(run))


REQUEST_TASK = "hypercorn.trio.task_group._handle"
"""The task hypercorn runs one request's ASGI call in, on Trio."""

CONNECTION_TASK = "trio._highlevel_serve_listeners._run_handler"
"""The task serving one connection, which starts a request task per request."""


def census() -> dict[str, int]:
    """The server's living Trio tasks, and how many belong to what.

    ``request_tasks``: the tasks of requests other than the caller's (a
    request's task and everything below it: its run, tools, listeners);
    ``connection_tasks``: hypercorn's tasks for its connections, requests
    aside. Hypercorn keeps a connection's tasks for a while after its client
    has gone (until its keep-alive timeout), so the server's own count,
    connections aside, is what must come back to idle after a request.
    """
    me = trio.lowlevel.current_task()
    counts = {"request_tasks": 0, "connection_tasks": 0}

    def size(task: trio.lowlevel.Task) -> int:
        return 1 + sum(size(child) for n in task.child_nurseries for child in n.child_tasks)

    def walk(task: trio.lowlevel.Task, in_connection: bool) -> None:
        if task.name == REQUEST_TASK:
            if task is not me:
                counts["request_tasks"] += size(task)
            return
        in_connection = in_connection or task.name == CONNECTION_TASK
        if in_connection:
            counts["connection_tasks"] += 1
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, in_connection)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root, in_connection=False)
    living = trio.lowlevel.current_statistics().tasks_living
    return {"tasks_living": living, **counts, "server_tasks": living - counts["connection_tasks"]}


async def stats(request: Request) -> Response:
    # Tasks about to end (the previous request's, finishing its last send)
    # would make the count flicker: let everything else settle first.
    await trio.testing.wait_all_tasks_blocked()
    figures: dict[str, object] = dict(census())
    name = request.query_params.get("probe")
    if name is not None:
        probe = PROBES[name]
        figures["live"] = probe.live
        figures["finished"] = probe.finished
        figures["raised"] = probe.raised
    return JSONResponse(figures)


app = Starlette(
    routes=[
        Route("/fault/{format}/{scenario}", fault),
        Route("/race/{format}", race),
        Route("/interrupt/{format}", interrupt),
        Route("/stats", stats),
    ]
)
