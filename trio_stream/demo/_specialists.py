"""The two specialist agents of ``trio-stream demo --remote``, each served in a process of its own.

``python -m trio_stream.demo._specialists researcher|calculator --pace 1``
serves one of them on a free port (see ``_processes``). Each answers
``POST /chat`` with a run in the data stream format, which the orchestrator
relays under one of its tool calls:

- the researcher reasons, searches its notes with the ``search_notes`` tool
  of an MCP server it runs over stdio (``_notes``), whose progress streams
  back as ``tool-progress`` data, and answers from the notes it found;
- the calculator reasons, runs a ``calculate`` tool that shows its work in a
  sub-stream, and answers with the value; an expression it cannot work out
  ends its run with an error chunk, which the orchestrator's call receives
  as its error.

Each logs its cancellations, so that what a Stop on the page did in every
process can be read in the demo's log.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import trio
from mcp import ClientSession, StdioServerParameters, stdio_client
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._controller import RunController, ToolCallController
from .._run import create_run
from .._telemetry import log_extra
from ..adapters.mcp import MCPTools
from ..asgi import DataStreamResponse
from ..requests import RequestBodyError, parse_body
from ._model import calculate
from ._pace import Pace
from ._processes import log_as, serve_child

__all__ = ["calculator_app", "researcher_app"]

logger = logging.getLogger("trio_stream.demo")


class Question(BaseModel):
    question: str = Field(max_length=10_000)


class Expression(BaseModel):
    expression: str = Field(max_length=200)


async def _logged_if_cancelled(what: str, work: Awaitable[None]) -> None:
    try:
        await work
    except anyio.get_cancelled_exc_class():
        logger.info("%s cancelled", what, extra=log_extra())
        raise


def _app(chat: Callable[[Request], Awaitable[Response]], lifespan: Any = None) -> Starlette:
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestBodyError)
        return exc.response()

    return Starlette(
        routes=[Route("/chat", chat, methods=["POST"])],
        lifespan=lifespan,
        exception_handlers={RequestBodyError: refused},
    )


def researcher_app(pace: Pace) -> Starlette:
    """The researcher: its MCP server runs, over stdio, as long as the app does."""
    notes: list[MCPTools] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "trio_stream.demo._notes", "--pace", str(pace.scale)],
        )
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            notes.append(MCPTools(session))
            yield

    async def research(controller: RunController, question: str) -> None:
        await pace.words(
            controller.append_reasoning,
            "The notes server has a search tool: I will search it for the question.",
            0.02,
        )
        async with controller.open_substream() as search:
            call = notes[0].spawn(search, "search_notes", {"query": question})
        assert call.response is not None  # leaving the block waited for the call
        found = call.response.result["notes"]
        answer = f"{len(found)} notes match. " + " ".join(note["text"] for note in found)
        await pace.words(controller.append_text, answer)

    async def chat(request: Request) -> Response:
        question = (await parse_body(request, Question)).question

        async def run(controller: RunController) -> None:
            await _logged_if_cancelled("run", research(controller, question))

        return DataStreamResponse(create_run(run))

    return _app(chat, lifespan)


def calculator_app(pace: Pace) -> Starlette:
    """The calculator: arithmetic only, shown step by step."""

    async def work_out(call: ToolCallController) -> None:
        expression = call.args["expression"]
        async with call.open_substream() as work:
            await pace.words(work.append_text, f"Evaluating {expression}, then checking it. ")
        await pace.sleep(2.0)  # checking takes a while: long enough to press Stop meanwhile
        try:
            value = calculate(expression)
        except ValueError as exc:  # a failure the caller can read, as the call's result
            call.set_response(str(exc), is_error=True)
        else:
            call.set_response({"expression": expression, "value": value})

    async def tool(call: ToolCallController) -> None:
        await _logged_if_cancelled("tool calculate", work_out(call))

    async def answer(controller: RunController, expression: str) -> None:
        await pace.words(controller.append_reasoning, f"Working out {expression}.", 0.02)
        async with controller.open_substream() as work:
            call = work.spawn_tool_call("calculate", tool, args={"expression": expression})
        response = call.response
        assert response is not None
        if response.is_error:
            # An error chunk: the orchestrator's call fails with this message.
            controller.add_error(f"cannot work out {expression}: {response.result}")
            return
        await pace.words(controller.append_text, f"{expression} = {response.result['value']:g}")

    async def chat(request: Request) -> Response:
        expression = (await parse_body(request, Expression)).expression

        async def run(controller: RunController) -> None:
            await _logged_if_cancelled("run", answer(controller, expression))

        return DataStreamResponse(create_run(run))

    return _app(chat)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m trio_stream.demo._specialists")
    parser.add_argument("role", choices=["researcher", "calculator"])
    parser.add_argument("--pace", type=float, default=1.0)
    args = parser.parse_args()
    log_as(args.role)
    pace = Pace(args.pace)
    app = researcher_app(pace) if args.role == "researcher" else calculator_app(pace)
    trio.run(serve_child, app)


if __name__ == "__main__":
    main()
