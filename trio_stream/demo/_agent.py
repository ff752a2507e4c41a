"""The demo's default model: a deterministic, scripted agent.

It needs no network and no API key, and one turn of it exercises everything
the library can express, at a pace a person can follow: reasoning, text
token by token, five tool calls running in parallel with streamed arguments,
a tool that opens a sub-stream holding its own tool calls (one of which
nests once more), a tool that fails and reports the failure as its result,
state updates, sources, a file, a named data part, annotations and a step
with its usage. The same message always produces the same chunks; only the
ids and the timing differ.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from .._controller import RunController, ToolCallController
from .._telemetry import log_extra
from ._pace import Pace, tokens

__all__ = ["Agent", "ScriptedAgent"]

logger = logging.getLogger("trio_stream.demo")


class Agent(Protocol):
    """A model behind the demo.

    It answers the conversation (OpenAI-style ``{"role", "content"}``
    messages, the last one the user's) through the controller, and returns
    the text of its answer, which the conversation's history keeps. It may
    also describe itself for the page's welcome, with ``about`` (a
    paragraph) and ``suggestions`` (messages to start with).
    """

    name: str

    async def __call__(self, controller: RunController, messages: list[dict[str, str]]) -> str:
        """Stream one answer."""
        ...


_CITIES = {"Lisbon": (24, "sunny"), "Kyoto": (17, "light rain")}


def _bar_chart(values: dict[str, int]) -> bytes:
    """A small SVG bar chart: the file the demo attaches."""
    bars = []
    for row, (label, value) in enumerate(values.items()):
        y = 10 + row * 30
        bars.append(
            f'<text x="0" y="{y + 15}" font-size="13" font-family="sans-serif">{label}</text>'
            f'<rect x="60" y="{y}" width="{value * 8}" height="20" rx="3" fill="#4f6bed"/>'
            f'<text x="{66 + value * 8}" y="{y + 15}" font-size="12" '
            f'font-family="sans-serif">{value} °C</text>'
        )
    height = 20 + 30 * len(values)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="{height}" '
        f'viewBox="0 0 320 {height}">{"".join(bars)}</svg>'
    ).encode()


class ScriptedAgent:
    """One scripted assistant turn per user message.

    ``pace`` scales every pause: 1.0 is a realistic speed (a turn takes about
    six seconds), smaller values make tests fast.
    """

    def __init__(self, pace: float = 1.0) -> None:
        self._pace = Pace(pace)
        self.pace = pace
        self.name = "scripted"

    def _tool(
        self,
        controller: RunController,
        name: str,
        args: dict[str, Any],
        work: Callable[[ToolCallController], Awaitable[Any]],
    ) -> ToolCallController:
        async def tool(call: ToolCallController) -> Any:
            try:
                await self._pace.stream_args(call, args)
                return await work(call)
            except anyio.get_cancelled_exc_class():
                logger.info(
                    "demo: tool %s (%s) cancelled",
                    name,
                    call.tool_call_id,
                    extra=log_extra(tool_call_id=call.tool_call_id, tool_name=name),
                )
                raise

        return controller.spawn_tool_call(name, tool, errors_as_result=True)

    async def _weather(self, call: ToolCallController) -> dict[str, Any]:
        city = call.args["city"]
        celsius, sky = _CITIES[city]
        await self._pace.sleep(0.8 if city == "Lisbon" else 1.4)
        return {"city": city, "celsius": celsius, "sky": sky}

    async def _stock_quote(self, call: ToolCallController) -> Any:
        await self._pace.sleep(1.0)
        raise ConnectionError(f"quote service unavailable (HTTP 503) for {call.args['symbol']}")

    async def _calculate(self, call: ToolCallController) -> Any:
        await self._pace.sleep(0.5)
        return {"expression": call.args["expression"], "value": 6 * 7}

    async def _fetch_page(self, call: ToolCallController) -> Any:
        await self._pace.sleep(0.7)
        return {"url": call.args["url"], "status": 200, "words": 1834}

    async def _fetch_and_skim(self, call: ToolCallController) -> Any:
        async with call.open_substream() as skim:
            await self._pace.words(
                skim.append_text,
                "Skimming the section on cancel scopes: a scope cancels everything "
                "inside it, and a nursery waits for all its children.",
                0.04,
            )
        return {"url": call.args["url"], "status": 200, "words": 2411}

    async def _search_docs(self, call: ToolCallController) -> Any:
        async with call.open_substream() as search:
            await self._pace.words(
                search.append_reasoning, "Two pages match; fetch both at once.", 0.03
            )
            await self._pace.words(
                search.append_text,
                f"Searching the docs for “{call.args['query']}”. Reading two pages in parallel. ",
            )
            self._tool(
                search,
                "fetch_page",
                {"url": "https://trio.readthedocs.io/en/stable/reference-core.html"},
                self._fetch_and_skim,
            )
            self._tool(
                search,
                "fetch_page",
                {"url": "https://trio.readthedocs.io/en/stable/design.html"},
                self._fetch_page,
            )
        # Leaving the block waited for both fetches.
        search_done = "Both pages agree: cancellation is scoped and nothing outlives its nursery."
        return {"query": call.args["query"], "pages": 2, "summary": search_done}

    async def __call__(self, controller: RunController, messages: list[dict[str, str]]) -> str:
        question = messages[-1]["content"].strip() or "(an empty message)"
        shown = question if len(question) <= 80 else question[:77] + "…"
        controller.state["progress"] = {"done": 0, "total": 5}
        await self._pace.words(
            controller.append_reasoning,
            f"The user wrote “{shown}”. I will check the weather in two cities, search "
            "the docs, look up a quote and do a sum, all at the same time.",
            0.02,
        )
        controller.add_step_start()
        intro = "Let me look into that. I am running five tools in parallel. "
        await self._pace.words(controller.append_text, intro)

        calls: list[ToolCallController] = []
        async with controller.open_substream() as turn:

            def start(
                name: str, args: dict[str, Any], work: Callable[[ToolCallController], Any]
            ) -> None:
                async def counted(call: ToolCallController) -> Any:
                    # A failure counts as done too; a cancellation does not.
                    try:
                        return await work(call)
                    finally:
                        if not call.is_cancelled:
                            progress = controller.state["progress"]
                            progress["done"] = progress["done"] + 1

                calls.append(self._tool(turn, name, args, counted))

            start("get_weather", {"city": "Lisbon"}, self._weather)
            start("get_weather", {"city": "Kyoto"}, self._weather)
            start("search_docs", {"query": "structured concurrency"}, self._search_docs)
            start("get_stock_quote", {"symbol": "TRIO"}, self._stock_quote)
            start("calculate", {"expression": "6 * 7"}, self._calculate)
        # Leaving the block waited for the five calls and everything they started.

        controller.add_source(
            "trio-docs", "https://trio.readthedocs.io/en/stable/", "Trio documentation"
        )
        controller.add_source(
            "nursery-essay",
            "https://vorpus.org/blog/notes-on-structured-concurrency-or-go-statement-considered-harmful/",
            "Notes on structured concurrency",
        )
        weather = {
            call.args["city"]: call.response.result["celsius"]
            for call in calls
            if call.tool_name == "get_weather" and call.response and not call.response.is_error
        }
        controller.add_file(_bar_chart(weather), "image/svg+xml")
        controller.add_data({"celsius": weather}, name="weather")
        controller.add_annotations([{"agent": self.name, "tools": len(calls)}])
        failed = [call.tool_name for call in calls if call.response and call.response.is_error]
        closing = (
            f"Done. Lisbon is {weather.get('Lisbon')} °C and Kyoto {weather.get('Kyoto')} °C; "
            "the docs say cancellation is scoped; 6 times 7 is 42. "
            + (f"One tool failed ({', '.join(failed)}), so no quote today." if failed else "")
        )
        await self._pace.words(controller.append_text, closing)
        words = len(tokens(intro + closing))
        controller.add_step_finish("stop", input_tokens=len(question.split()), output_tokens=words)
        return intro + closing
