"""examples/agents_of_agents.py: four real processes, one tree of chunks, one cancellation.

The example serves its orchestrator (``--serve``) and starts the two
specialists, one of which starts the MCP server over stdio. The tests ask it
questions over HTTP with ``trio_stream.client``, on Trio and on asyncio, and
read what each process did from the log they all write to, one line each
thing, stamped with the time, the role and the pid.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from trio_stream import client
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolResultChunk,
)

from .process_log import logged, wait_for
from .reliability.figures import FIGURES
from .serving import ROOT, serving_process, still_running

pytestmark = pytest.mark.anyio

EXAMPLE = ROOT / "examples" / "agents_of_agents.py"

NOTES = [
    "A nursery waits for every task started in it.",
    "Cancelling a scope cancels everything inside it.",
]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The orchestrator's URL, once all four processes run, and their log."""
    log_path = tmp_path_factory.mktemp("agents") / "processes.log"
    command = [sys.executable, str(EXAMPLE), "--serve"]
    with serving_process(log_path, command) as (url, _):
        yield url, log_path


async def ask(url: str, question: str) -> list[Chunk]:
    async with client.stream(f"{url}/chat", json={"question": question}) as chunks:
        return [chunk async for chunk in chunks]


class Tree:
    """A run's chunks, by tool call."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self.calls = {c.tool_call_id: c for c in chunks if isinstance(c, ToolCallBeginChunk)}
        self.results = {c.tool_call_id: c for c in chunks if isinstance(c, ToolResultChunk)}

    def call(self, name: str) -> ToolCallBeginChunk:
        (call,) = [call for call in self.calls.values() if call.tool_name == name]
        return call

    def text(self, parent_id: str | None) -> str:
        return "".join(
            c.text_delta
            for c in self.chunks
            if isinstance(c, TextDeltaChunk) and c.parent_id == parent_id
        )


async def test_a_question_comes_back_as_one_tree_from_four_processes(
    team: tuple[str, Path],
) -> None:
    url, _ = team
    tree = Tree(await ask(url, "What is a nursery, and 17 * 23?"))

    # The orchestrator's two calls, at the top; each specialist's own call one
    # level down, its id renamed into its caller's.
    researcher, calculator = tree.call("ask_researcher"), tree.call("ask_calculator")
    assert researcher.parent_id is None
    assert calculator.parent_id is None
    search, calculate = tree.call("search_notes"), tree.call("calculate")
    assert search.parent_id == researcher.tool_call_id
    assert search.tool_call_id.startswith(f"{researcher.tool_call_id}.call_")
    assert calculate.parent_id == calculator.tool_call_id
    assert calculate.tool_call_id.startswith(f"{calculator.tool_call_id}.call_")
    assert len(tree.calls) == 4

    # The MCP tool's progress, two levels down, under its call; its result.
    progress = [c for c in tree.chunks if isinstance(c, DataChunk) and c.name == "tool-progress"]
    assert {c.parent_id for c in progress} == {search.tool_call_id}
    assert [(c.data["progress"], c.data["total"], c.data["message"]) for c in progress] == [
        (1.0, 3.0, "reading note 1 of 3"),
        (2.0, 3.0, "reading note 2 of 3"),
        (3.0, 3.0, "reading note 3 of 3"),
    ]
    # Inside the value, the id the researcher gave the call: only parent ids are renamed.
    assert {c.data["toolCallId"] for c in progress} == {search.tool_call_id.split(".")[1]}
    assert tree.results[search.tool_call_id].result == {
        "query": "What is a nursery, and 17 * 23?",
        "notes": NOTES,
    }
    assert tree.results[calculate.tool_call_id].result == 391.0

    # Each specialist's reasoning and text, under its call; the text is the call's result.
    reasoning = {
        c.parent_id: c.reasoning_delta for c in tree.chunks if isinstance(c, ReasoningDeltaChunk)
    }
    assert reasoning[researcher.tool_call_id] == "Searching the notes."
    assert reasoning[calculator.tool_call_id] == "Working out 17 * 23."
    assert tree.text(researcher.tool_call_id) == " ".join(NOTES)
    assert tree.text(calculator.tool_call_id) == "17 * 23 = 391"
    assert tree.results[researcher.tool_call_id].result == " ".join(NOTES)
    assert tree.results[calculator.tool_call_id].result == "17 * 23 = 391"

    # The answer, written from both results once both were in.
    assert tree.text(None) == (
        f"Asking the researcher and the calculator. From the notes: {' '.join(NOTES)} "
        "And 17 * 23 = 391."
    )
    assert tree.chunks.index(tree.results[calculator.tool_call_id]) < next(
        i
        for i, c in enumerate(tree.chunks)
        if isinstance(c, TextDeltaChunk) and "From the notes" in c.text_delta
    )


async def test_a_specialist_that_fails_is_an_error_result_and_the_answer_goes_on(
    team: tuple[str, Path],
) -> None:
    url, _ = team
    tree = Tree(await ask(url, "What is a nursery, and 1 / 0?"))
    calculate = tree.results[tree.call("calculate").tool_call_id]
    assert (calculate.result, calculate.is_error) == ("division by zero", True)
    # The calculator's run ended with an error chunk; here it is the call's error.
    failed = tree.results[tree.call("ask_calculator").tool_call_id]
    assert failed.is_error
    assert re.fullmatch(
        r"the remote agent at http://127\.0\.0\.1:\d+/chat failed: "
        r"cannot work out 1 / 0: division by zero",
        failed.result,
    )
    assert not tree.results[tree.call("ask_researcher").tool_call_id].is_error
    assert tree.text(None).endswith(f"No sum, though: {failed.result}")


async def test_a_client_that_leaves_cancels_every_run_in_every_process(
    team: tuple[str, Path], anyio_backend: str
) -> None:
    url, log_path = team
    before = len(logged(log_path.read_text()))
    async with client.stream(f"{url}/chat", json={"question": "What is 6 * 7?"}) as chunks:
        seen = set()
        async for chunk in chunks:
            if isinstance(chunk, ToolCallBeginChunk) and chunk.tool_name == "calculate":
                seen.add("the calculator's tool runs")
            if isinstance(chunk, DataChunk) and chunk.name == "tool-progress":
                seen.add("the MCP tool runs")
            if len(seen) == 2:
                left = time.time()
                break

    expected = {
        ("orchestrator", "client disconnected from /chat: run cancelled"),
        ("researcher", "run cancelled"),
        ("researcher", "client disconnected from /chat: run cancelled"),
        ("notes", "search_notes cancelled"),
        ("calculator", "tool calculate cancelled"),
        ("calculator", "client disconnected from /chat: run cancelled"),
    }
    found = await anyio.to_thread.run_sync(partial(wait_for, log_path, expected, since=before))
    # Each process cleaned up after the client left (the log's times are to the millisecond).
    assert min(line.at for line in found.values()) >= left - 0.001
    last = max(line.at for line in found.values()) - left
    FIGURES.record(
        "agents of agents",
        f"client leaves -> last clean-up in the 4 processes ({anyio_backend} client)",
        f"{last * 1000:.0f} ms",
    )
    assert len({line.pid for line in found.values()}) == 4


def test_the_command_at_its_top_prints_the_tree_and_leaves_no_process_behind() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "reasoning: One part to look up, one sum to do: ask both at once.",
        "text: Asking the researcher and the calculator. ",
    ]
    assert lines[-1] == "text: And 17 * 23 = 391."
    # Indented by depth: the orchestrator's calls, the specialists' runs, the MCP progress.
    shown = "\n".join(lines)
    assert re.search(r"^call ask_researcher \(call_\w+\)$", shown, re.M)
    assert re.search(r"^    call search_notes \(call_\w+\.call_\w+\)$", shown, re.M)
    assert re.search(r"^        progress: reading note 3 of 3$", shown, re.M)
    assert re.search(r"^    text: 17 \* 23 = 391$", shown, re.M)
    # Four processes logged; none is left.
    pids = {line.role: line.pid for line in logged(result.stderr)}
    assert pids.keys() == {"orchestrator", "researcher", "calculator", "notes"}
    assert len(set(pids.values())) == 4
    assert still_running(set(pids.values())) == set()
