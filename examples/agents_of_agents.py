"""Agents of agents: an orchestrator that asks two specialists, each in a process of its own.

Run it with:  uv run --extra mcp python examples/agents_of_agents.py

Four processes, one file; each runs it in one role:

    client ─HTTP─▶ orchestrator ─┬─HTTP─▶ researcher ─stdio─▶ MCP server "notes"
                                 └─HTTP─▶ calculator

The orchestrator asks both specialists at once, as two tool calls whose work
is another server's run (``spawn_remote_tool_call``): their chunks stream
back nested under each call, ids renamed ``<call>.<their id>``, down to the
progress of the researcher's MCP tool. Then it answers from their results.

Leaving works across all of it: a client that hangs up cancels the
orchestrator's run, which closes its two requests, which cancels the
specialists' runs, whose MCP call is cancelled on the MCP server. Every
process logs what it cancelled, with the time, on stderr:

    python examples/agents_of_agents.py --leave-after 0.5

``--serve`` keeps the orchestrator serving on ``--port`` (8000) instead,
for any client: ``curl -N localhost:8000/chat -d '{"question": "What is 6 * 7?"}'``.
"""

from __future__ import annotations

import argparse
import logging
import operator
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, client, create_run, serve
from trio_stream.adapters.mcp import MCPTools
from trio_stream.asgi import DataStreamResponse
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)

log = logging.getLogger("agents")

# -- the MCP server: one tool that reports its progress ---------------------------

NOTES = [
    "A nursery waits for every task started in it.",
    "Cancelling a scope cancels everything inside it.",
    "An exception in one task cancels its siblings, then propagates.",
]


def notes_server() -> MCPServer:
    # The SDK sets the root logger to this level; INFO would log every request.
    notes = MCPServer("notes", log_level="WARNING")

    @notes.tool()
    async def search_notes(query: str, ctx: Context) -> dict[str, Any]:
        """Read the notes one by one, slowly, as a real search would."""
        try:
            for step in range(1, len(NOTES) + 1):
                await ctx.report_progress(step, len(NOTES), f"reading note {step} of {len(NOTES)}")
                await trio.sleep(0.3)
        except trio.Cancelled:
            log.info("search_notes cancelled")
            raise
        return {"query": query, "notes": NOTES[:2]}

    return notes


# -- the specialists ----------------------------------------------------------------


@asynccontextmanager
async def notes_session(app: Starlette) -> AsyncIterator[None]:
    """The researcher's MCP session: the server runs, over stdio, while the app does."""
    server = StdioServerParameters(command=sys.executable, args=[__file__, "notes"])
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        app.state.notes = MCPTools(session)
        yield


async def research(request: Request) -> Response:
    question = (await request.json())["question"]
    tools: MCPTools = request.app.state.notes

    async def run(controller: RunController) -> None:
        try:
            controller.append_reasoning("Searching the notes.")
            async with controller.open_substream() as search:
                call = tools.spawn(search, "search_notes", {"query": question})
            assert call.response is not None  # leaving the block waited for it
            controller.append_text(" ".join(call.response.result["notes"]))
        except trio.Cancelled:
            log.info("run cancelled")
            raise

    return DataStreamResponse(create_run(run))


OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
SUM = re.compile(NUMBER + r"([-+*/])" + NUMBER)


async def calculate(tool: ToolCallController) -> None:
    """Work out ``a + b``, ``a - b``, ``a * b`` or ``a / b``: the input is text, never code."""
    try:
        await trio.sleep(1.0)  # checking its work: stands in for something slow
    except trio.Cancelled:
        log.info("tool calculate cancelled")
        raise
    match = SUM.fullmatch(tool.args["expression"])
    if match is None:
        tool.set_response("that is not a sum I can do", is_error=True)
        return
    left, sign, right = match.groups()
    try:
        tool.set_response(OPERATIONS[sign](float(left), float(right)))
    except ZeroDivisionError:
        tool.set_response("division by zero", is_error=True)


async def calculator(request: Request) -> Response:
    expression = (await request.json())["expression"]

    async def run(controller: RunController) -> None:
        controller.append_reasoning(f"Working out {expression}.")
        async with controller.open_substream() as work:
            call = work.spawn_tool_call("calculate", calculate, args={"expression": expression})
        assert call.response is not None  # leaving the block waited for it
        if call.response.is_error:
            # An error chunk: the orchestrator's call fails with this message.
            controller.add_error(f"cannot work out {expression}: {call.response.result}")
        else:
            controller.append_text(f"{expression} = {call.response.result:g}")

    return DataStreamResponse(create_run(run))


# -- the orchestrator ---------------------------------------------------------------


def orchestrator(researcher: str, calculator: str) -> Starlette:
    async def chat(request: Request) -> Response:
        question = (await request.json())["question"]
        sum_asked = SUM.search(question)

        async def run(controller: RunController) -> None:
            controller.append_reasoning("One part to look up, one sum to do: ask both at once.")
            controller.append_text("Asking the researcher and the calculator. ")
            async with controller.open_substream() as team:
                notes = team.spawn_remote_tool_call(
                    "ask_researcher", researcher, args={"question": question}
                )
                # If the calculator fails (no sum in the question, a division by
                # zero), its error is the call's result, and the answer goes on.
                total = team.spawn_remote_tool_call(
                    "ask_calculator",
                    calculator,
                    args={"expression": sum_asked[0].strip() if sum_asked else question},
                    errors_as_result=True,
                )
            # Leaving the block waited for both calls: their results are in.
            assert notes.response is not None
            assert total.response is not None
            controller.append_text(f"From the notes: {notes.response.result} ")
            if total.response.is_error:
                controller.append_text(f"No sum, though: {total.response.result}")
            else:
                controller.append_text(f"And {total.response.result}.")

        return DataStreamResponse(create_run(run))

    return Starlette(routes=[Route("/chat", chat, methods=["POST"])])


# -- the processes ------------------------------------------------------------------


async def stop_specialist(process: trio.Process) -> None:
    """Close its stdin, which tells it to shut down; kill it if it hangs."""
    assert process.stdin is not None
    await process.stdin.aclose()
    await trio.sleep(5)
    process.kill()


async def start_specialist(nursery: trio.Nursery, role: str) -> str:
    """Run this file as ``role`` in a process of the nursery's; return its URL.

    It runs in a session of its own: the terminal's Ctrl-C reaches this
    process only, which stops its children when its nursery is cancelled.
    """
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            [sys.executable, __file__, role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            check=False,
            deliver_cancel=stop_specialist,
        )
    )
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        piece = await process.stdout.receive_some()
        if not piece:
            raise RuntimeError(f"the {role} stopped before it started")
        line += piece
    url = line.decode().strip() + "/chat"
    log.info("%s on %s", role, url)
    return url


async def until_stdin_closes() -> None:
    """Return when the parent closes our stdin, or dies: time to shut down."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stdin:
        while await stdin.receive_some():
            pass


async def run_specialist(app: Starlette) -> None:
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            partial(serve, app, port=0, shutdown_trigger=until_stdin_closes)
        )
        print(urls[0], flush=True)  # tells the orchestrator where to find us


def describe(chunk: Chunk, depths: dict[str, int]) -> str | None:
    """One line for a chunk, indented by its depth in the tree; ``None`` to skip it."""

    def inside(parent_id: str | None) -> int:
        return 0 if parent_id is None else depths[parent_id] + 1

    match chunk:
        case ToolCallBeginChunk():
            depth = depths[chunk.tool_call_id] = inside(chunk.parent_id)
            line = f"call {chunk.tool_name} ({chunk.tool_call_id})"
        case ToolCallDeltaChunk():
            depth, line = depths[chunk.tool_call_id], f"  args: {chunk.args_text_delta}"
        case ToolResultChunk():
            outcome = "error" if chunk.is_error else "result"
            depth, line = depths[chunk.tool_call_id], f"  {outcome}: {chunk.result}"
        case ReasoningDeltaChunk():
            depth, line = inside(chunk.parent_id), f"reasoning: {chunk.reasoning_delta}"
        case TextDeltaChunk():
            depth, line = inside(chunk.parent_id), f"text: {chunk.text_delta}"
        case DataChunk(name="tool-progress"):
            depth, line = inside(chunk.parent_id), f"progress: {chunk.data['message']}"
        case _:
            return None
    return "    " * depth + line


async def ask(url: str, question: str, leave_after: float) -> None:
    depths: dict[str, int] = {}
    async with client.stream(f"{url}/chat", json={"question": question}) as chunks:
        with trio.move_on_after(leave_after):
            async for chunk in chunks:
                if line := describe(chunk, depths):
                    print(line, flush=True)
            return
    print("client left", flush=True)
    await trio.sleep(0.5)  # the specialists' logs come in


async def main(args: argparse.Namespace) -> None:
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        researcher = await start_specialist(nursery, "researcher")
        calculator = await start_specialist(nursery, "calculator")
        app = orchestrator(researcher, calculator)
        if args.serve:
            await serve(app, port=args.port)  # until Ctrl-C
        else:
            urls = await nursery.start(partial(serve, app, port=0, shutdown_trigger=done.wait))
            await ask(urls[0], args.question, args.leave_after)
            done.set()
        nursery.cancel_scope.cancel()  # stops the specialists


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = ["orchestrator", "researcher", "calculator", "notes"]
    parser.add_argument("role", nargs="?", choices=roles, default="orchestrator")
    parser.add_argument("--question", default="What is structured concurrency, and 17 * 23?")
    parser.add_argument("--leave-after", type=float, default=float("inf"), metavar="SECONDS")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    handler = logging.StreamHandler()  # stderr: every process shares the terminal's
    handler.setFormatter(logging.Formatter(f"%(asctime)s {args.role}[%(process)d]: %(message)s"))
    for name in ("agents", "trio_stream"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False
    log.info("started")
    if args.role == "notes":
        trio.run(notes_server().run_stdio_async)
    elif args.role == "researcher":
        trio.run(
            run_specialist,
            Starlette(routes=[Route("/chat", research, methods=["POST"])], lifespan=notes_session),
        )
    elif args.role == "calculator":
        trio.run(run_specialist, Starlette(routes=[Route("/chat", calculator, methods=["POST"])]))
    else:
        trio.run(main, args)
