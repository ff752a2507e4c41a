"""``trio-stream demo --remote``: the page's agent asks two agents in other processes.

The demo starts two specialists (``_specialists``), each a hypercorn server
on Trio in a process of its own; the researcher starts an MCP server over
stdio in turn. The page's agent, the ``Orchestrator``, reasons, then asks
both at once, each as a tool call whose work is the specialist's run
(``spawn_remote_tool_call``): their reasoning, text, tool calls and MCP
progress stream into its tool cards as they happen, nested under the calls.
Then it answers from their results.

Structured concurrency holds across the four processes. Stop on the page
closes the request; the demo cancels the orchestrator's run, which closes its
requests to the specialists, which cancel their runs; the researcher's MCP
call is cancelled on the MCP server. When the demo stops, it stops its
children (``_processes``).
"""

from __future__ import annotations

import re

import trio
from hypercorn.config import Config

from .._controller import RunController, ToolCallController
from .._server import serve
from ._app import Format, create_app
from ._pace import Pace, tokens
from ._processes import start_child

__all__ = ["Orchestrator", "serve_with_specialists"]

_SUM = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:\*\*|[-+*/])\s*\d+(?:\.\d+)?)+")

DEFAULT_SUM = "6 * 7"
"""What the calculator is asked when the message holds no arithmetic."""


def _outcome(call: ToolCallController) -> str:
    response = call.response
    if response is None:
        return "no answer"
    if response.is_error:
        return f"it failed ({response.result})"
    return str(response.result)


class Orchestrator:
    """An agent whose tools are two other agents, served at ``researcher`` and ``calculator``."""

    name = "orchestrator"
    about = (
        "Each answer comes from four processes. This page's agent, an orchestrator, asks two "
        "specialist agents at once, each served in a process of its own: a researcher, which "
        "searches notes with an MCP server's tool, and a calculator. Their runs stream into the "
        "orchestrator's tool cards as they happen. Press Stop mid-run: every run in every "
        "process is cancelled."
    )
    suggestions = (
        "How do nurseries cancel tasks, and what is 17 * 23?",
        "What happens to a sibling when a task fails, and what is 1 / 0?",
    )

    def __init__(self, researcher: str, calculator: str, *, pace: float = 1.0) -> None:
        self.researcher = researcher
        self.calculator = calculator
        self._pace = Pace(pace)

    async def __call__(self, controller: RunController, messages: list[dict[str, str]]) -> str:
        question = messages[-1]["content"].strip() or "(an empty message)"
        found = _SUM.search(question)
        expression = found[0] if found else DEFAULT_SUM
        await self._pace.words(
            controller.append_reasoning,
            "One part of this is to look up, one is arithmetic"
            + ("" if found else f" (there is none in the message, so: {DEFAULT_SUM})")
            + ". Two specialists can do both at once.",
            0.02,
        )
        controller.add_step_start()
        intro = "I am asking the researcher and the calculator, each in its own process. "
        await self._pace.words(controller.append_text, intro)
        async with controller.open_substream() as team:
            # A specialist that fails gives its call an error result, and the answer goes on.
            research = team.spawn_remote_tool_call(
                "ask_researcher",
                self.researcher,
                args={"question": question},
                errors_as_result=True,
            )
            arithmetic = team.spawn_remote_tool_call(
                "ask_calculator",
                self.calculator,
                args={"expression": expression},
                errors_as_result=True,
            )
        # Leaving the block waited for both calls, and everything they started.
        closing = f"The researcher: {_outcome(research)} The calculator: {_outcome(arithmetic)}."
        await self._pace.words(controller.append_text, closing)
        words = len(tokens(intro + closing))
        controller.add_step_finish("stop", input_tokens=len(question.split()), output_tokens=words)
        return intro + closing


async def _start_specialists(nursery: trio.Nursery, pace: float) -> dict[str, str]:
    """Start both specialists in ``nursery``, side by side; their URLs by role."""
    urls: dict[str, str] = {}

    async def start(role: str) -> None:
        arguments = ["-m", "trio_stream.demo._specialists", role, "--pace", str(pace)]
        urls[role] = await start_child(nursery, role, arguments)

    async with trio.open_nursery() as starting:
        starting.start_soon(start, "researcher")
        starting.start_soon(start, "calculator")
    return urls


async def serve_with_specialists(
    *, host: str, port: int, config: Config, format: Format = "data-stream", pace: float = 1.0
) -> None:
    """Start the specialists, serve the demo with the orchestrator, then stop them.

    Serves until SIGINT or SIGTERM (or until cancelled), as ``serve`` does;
    the specialists stop when it returns, however it returns.
    """
    async with trio.open_nursery() as nursery:
        urls = await _start_specialists(nursery, pace)
        agent = Orchestrator(f"{urls['researcher']}/chat", f"{urls['calculator']}/chat", pace=pace)
        await serve(create_app(format=format, agent=agent), host=host, port=port, config=config)
        nursery.cancel_scope.cancel()
