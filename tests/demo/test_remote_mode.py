"""``trio-stream demo --remote``: the demo's agents in processes the demo starts and stops.

Each test runs the demo as a real process, which starts the researcher and
the calculator, each a process of its own, and the researcher the MCP
server over stdio. The scripted agents run at a fifth of their pace, or
without pauses (``--pace 0``) where only the processes matter.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trio_stream import client
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolResultChunk,
)

from ..reliability.figures import FIGURES
from ..serving import descendants, server_process, still_running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo's URL, once its helper processes answer, and the log they all share."""
    log_path = tmp_path_factory.mktemp("demo-remote") / "demo.log"
    with server_process(log_path, "demo", "--remote", "--pace", "0.2") as (url, _):
        yield url, log_path


async def turn(url: str, text: str) -> list[Chunk]:
    body = {"messages": [{"role": "user", "content": text}]}
    async with client.stream(f"{url}/api/chat/data-stream", json=body) as chunks:
        return [chunk async for chunk in chunks]


def calls_named(chunks: list[Chunk]) -> dict[str, ToolCallBeginChunk]:
    return {c.tool_name: c for c in chunks if isinstance(c, ToolCallBeginChunk)}


def results(chunks: list[Chunk]) -> dict[str, ToolResultChunk]:
    return {c.tool_call_id: c for c in chunks if isinstance(c, ToolResultChunk)}


def text(chunks: list[Chunk], parent_id: str | None) -> str:
    return "".join(
        c.text_delta for c in chunks if isinstance(c, TextDeltaChunk) and c.parent_id == parent_id
    )


def test_the_help_names_the_mode_and_the_page_describes_it(demo: tuple[str, Path]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "trio_stream", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    words = " ".join(shown.split())
    assert "--remote agents of agents: the page's agent asks two specialist agents" in words
    info = httpx.get(f"{demo[0]}/api/info").json()
    assert info["model"] == "orchestrator"
    assert "four processes" in info["about"]
    assert len(info["suggestions"]) == 2


async def test_a_turn_holds_both_specialists_runs_and_the_mcp_tools_progress(
    demo: tuple[str, Path],
) -> None:
    chunks = await turn(demo[0], "How do nurseries cancel tasks, and what is 17 * 23?")
    calls = calls_named(chunks)
    assert calls.keys() == {"ask_researcher", "ask_calculator", "search_notes", "calculate"}
    researcher, calculator = calls["ask_researcher"], calls["ask_calculator"]
    search, calculate = calls["search_notes"], calls["calculate"]
    assert (researcher.parent_id, calculator.parent_id) == (None, None)
    assert search.parent_id == researcher.tool_call_id
    assert search.tool_call_id.startswith(researcher.tool_call_id + ".")
    assert calculate.parent_id == calculator.tool_call_id

    # Three levels down: the calculate call's sub-stream, in the calculator's process.
    assert text(chunks, calculate.tool_call_id) == "Evaluating 17 * 23, then checking it. "
    # Two levels down: the MCP server's progress, from its own process, on its call.
    progress = [c for c in chunks if isinstance(c, DataChunk) and c.name == "tool-progress"]
    assert {c.parent_id for c in progress} == {search.tool_call_id}
    assert [c.data["progress"] for c in progress] == [0, 1, 2, 3, 4]
    assert progress[-1].data["message"] == "summing up"

    done = results(chunks)
    assert done[calculate.tool_call_id].result == {"expression": "17 * 23", "value": 391}
    assert done[calculator.tool_call_id].result == "17 * 23 = 391"
    assert done[researcher.tool_call_id].result.startswith("3 notes match. A nursery waits")
    assert text(chunks, None).endswith(
        f"The researcher: {done[researcher.tool_call_id].result} The calculator: 17 * 23 = 391."
    )


async def test_a_calculator_that_cannot_work_it_out_fails_its_call_not_the_answer(
    demo: tuple[str, Path],
) -> None:
    chunks = await turn(demo[0], "What is 1 / 0?")
    calls = calls_named(chunks)
    done = results(chunks)
    assert done[calls["calculate"].tool_call_id].result == "division by zero"
    failed = done[calls["ask_calculator"].tool_call_id]
    assert failed.is_error
    assert failed.result.endswith("/chat failed: cannot work out 1 / 0: division by zero")
    assert not done[calls["ask_researcher"].tool_call_id].is_error
    assert text(chunks, None).endswith(f"The calculator: it failed ({failed.result}).")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_the_demo_stops_every_process_it_started(
    tmp_path: Path, stop: signal.Signals
) -> None:
    with server_process(tmp_path / "demo.log", "demo", "--remote", "--pace", "0") as (_, demo):
        helpers = descendants(demo.pid)
        # The two specialists, and the researcher's MCP server.
        assert len(helpers) == 3, (tmp_path / "demo.log").read_text()
        asked = time.monotonic()
        demo.send_signal(stop)
        assert demo.wait(timeout=15) == 0
        stopped = time.monotonic() - asked
    assert still_running(helpers) == set()
    FIGURES.record(
        "agents of agents",
        f"demo --remote: {stop.name} to all 4 processes gone",
        f"{stopped:.1f} s",
    )
