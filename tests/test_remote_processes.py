"""Remote agents across real processes: chains of three, twenty at once, cancellation
at every level, and every way a remote can fail.

The agents are ``tests/remote_app.py``, each served by ``trio-stream serve``
as a process of its own: A (data stream), B (assistant transport) and C
(UI message stream), chained over loopback HTTP as each request says; the
runs that call them run in the test process, on Trio and on asyncio. Every
agent appends what starts and what is cleaned up to a shared file of
records, with the time on the monotonic clock, which on Linux is the same in
every process: the tests measure how long a cancellation takes to reach the
last clean-up in the last process, and record it among the suite's figures.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from trio_stream import RemoteAgentError, RunController, ToolCallController, create_run
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)

from .conftest import collect
from .reliability.figures import FIGURES
from .remote_app import ANSWER_FILE
from .serving import server_process

pytestmark = pytest.mark.anyio

APP = "tests.remote_app:app"
FORMATS = {"A": "data-stream", "B": "assistant-transport", "C": "ui-message-stream"}
SECTION = "remote agents (3 processes)"


@dataclass(frozen=True)
class Record:
    process: str
    event: str
    at: float


class Records:
    """The file every agent appends its starts and clean-ups to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def of(self, tag: str) -> list[Record]:
        records = []
        for line in self.path.read_text().splitlines():
            line_tag, process, event, at = line.split(" ")
            if line_tag == tag:
                records.append(Record(process, event, float(at)))
        return records

    async def wait_for(self, tag: str, wanted: set[tuple[str, str]]) -> list[Record]:
        """The records of ``tag`` once each ``(process, event)`` wanted is among them."""
        deadline = time.monotonic() + 10
        while True:
            records = self.of(tag)
            missing = wanted - {(r.process, r.event) for r in records}
            if not missing:
                return records
            assert time.monotonic() < deadline, f"never recorded: {sorted(missing)}"
            await anyio.sleep(0.01)


@dataclass
class Agents:
    url: dict[str, str]
    records: Records
    folder: Path

    def body(self, mode: str, *chain: str, **options: Any) -> tuple[str, dict[str, Any]]:
        """A fresh tag, and the request body for the chain of agents after the first
        (named, or given by URL)."""
        tag = secrets.token_hex(6)
        following = [self.url.get(n, n) for n in chain]
        return tag, {"tag": tag, "mode": mode, "next": following, **options}


def started(processes: Iterable[str]) -> set[tuple[str, str]]:
    return {(p, e) for p in processes for e in ("run-started", "tool-started")}


def cleaned_up(processes: Iterable[str]) -> set[tuple[str, str]]:
    return {(p, e) for p in processes for e in ("run-cleaned-up", "tool-cleaned-up")}


def last_clean_up(records: list[Record], processes: str, after: float) -> float:
    """Seconds from ``after`` to the last clean-up in ``processes``; none came before it."""
    times = [r.at for r in records if r.process in processes and r.event.endswith("cleaned-up")]
    assert len(times) == 2 * len(processes)
    assert min(times) >= after
    return max(times) - after


def record_figure(name: str, backend: str, seconds: float) -> None:
    FIGURES.record(SECTION, f"{name} ({backend})", f"{seconds * 1000:.1f} ms")


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agents]:
    folder = tmp_path_factory.mktemp("agents")
    records = folder / "records"
    records.touch()
    urls: dict[str, str] = {}
    with (
        agent_process(folder, "A", records) as (urls["A"], _),
        agent_process(folder, "B", records) as (urls["B"], _),
        agent_process(folder, "C", records) as (urls["C"], _),
    ):
        yield Agents(urls, Records(records), folder)


def agent_process(
    folder: Path, name: str, records: Path
) -> Any:  # a server_process context manager
    env = {
        "REMOTE_APP_NAME": name,
        "REMOTE_APP_RECORDS": str(records),
        "REMOTE_APP_FORMAT": FORMATS.get(name, "data-stream"),
    }
    return server_process(folder / f"{name}-{secrets.token_hex(3)}.log", "serve", APP, env=env)


@pytest.fixture
def mortal(agents: Agents) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An agent M of its own, for a test that kills it."""
    with agent_process(agents.folder, "M", agents.records.path) as served:
        yield served


def remote_call(url: str, body: dict[str, Any], **options: Any) -> Any:
    """A run whose one tool call, ``ask``, is the agent at ``url``."""

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask", f"{url}/chain", json=body, tool_call_id="ask", **options
        )

    return run


# -- chains and parallel calls ------------------------------------------------


async def test_a_chain_of_three_processes_nests_each_run_under_its_caller(
    agents: Agents,
) -> None:
    _, body = agents.body("answer", "B", "C")

    async def run(controller: RunController) -> None:
        controller.state = {"mine": True}
        controller.spawn_remote_tool_call(
            "ask", f"{agents.url['A']}/chain", json=body, tool_call_id="ask"
        )

    chunks = await collect(run)
    # The local state is the local run's: the agents' state updates arrive as data.
    assert [c for c in chunks if isinstance(c, UpdateStateChunk)] == [
        UpdateStateChunk(({"type": "set", "path": [], "value": {"mine": True}},))
    ]
    relayed = [c for c in chunks if not isinstance(c, UpdateStateChunk)]
    at_c = "ask.a_call.b_call"
    assert relayed == [
        ToolCallBeginChunk("ask", "ask"),
        ReasoningDeltaChunk("A asks further down", "ask"),
        ToolCallBeginChunk("ask.a_call", "delegate", "ask"),
        ToolCallDeltaChunk("ask.a_call", '{"by":"A"}'),
        ReasoningDeltaChunk("B asks further down", "ask.a_call"),
        ToolCallBeginChunk(at_c, "delegate", "ask.a_call"),
        ToolCallDeltaChunk(at_c, '{"by":"B"}'),
        ReasoningDeltaChunk("C looks it up", at_c),
        ToolCallBeginChunk(f"{at_c}.lookup", "lookup", at_c),
        ToolCallDeltaChunk(f"{at_c}.lookup", '{"q": "the answer"}'),
        TextDeltaChunk("reading the index", f"{at_c}.lookup"),
        ToolResultChunk(f"{at_c}.lookup", {"found": 42}),
        DataChunk(
            [{"type": "set", "path": [], "value": {"answered_by": "C"}}], "remote-state", at_c
        ),
        SourceChunk("src_1", "https://example.org/index", "url", "The index", at_c),
        FileChunk(ANSWER_FILE, "text/plain", at_c),
        DataChunk({"confidence": 0.9}, "score", at_c),
        # Unnamed data has no parent id in the data stream and assistant
        # transport: it reaches the client as the data of A, the first agent.
        DataChunk("C's notes", None, "ask"),
        TextDeltaChunk("C answers 42", at_c),
        ToolResultChunk(at_c, "C answers 42"),
        TextDeltaChunk("B heard: C answers 42", "ask.a_call"),
        ToolResultChunk("ask.a_call", "B heard: C answers 42"),
        TextDeltaChunk("A heard: B heard: C answers 42", "ask"),
        ToolResultChunk("ask", "A heard: B heard: C answers 42"),
    ]


async def test_twenty_remote_runs_in_parallel_on_one_process_keep_their_ids_apart(
    agents: Agents,
) -> None:
    # C holds each answer until all twenty runs are going at once.
    _, body = agents.body("answer", together=20)

    async def run(controller: RunController) -> None:
        for n in range(20):
            controller.spawn_remote_tool_call(
                "ask", f"{agents.url['C']}/chain", json=body, tool_call_id=f"ask_{n}"
            )

    chunks = await collect(run)
    results = {c.tool_call_id: c.result for c in chunks if isinstance(c, ToolResultChunk)}
    assert results == {
        **{f"ask_{n}": "C answers 42" for n in range(20)},
        **{f"ask_{n}.lookup": {"found": 42} for n in range(20)},
    }
    nested_text = [
        str(c.parent_id)
        for c in chunks
        if isinstance(c, TextDeltaChunk) and c.text_delta == "reading the index"
    ]
    assert sorted(nested_text) == sorted(f"ask_{n}.lookup" for n in range(20))


# -- cancellation at each level -----------------------------------------------


async def test_leaving_the_block_stops_every_run_and_tool_in_every_process(
    agents: Agents, anyio_backend: str
) -> None:
    tag, body = agents.body("slow", "B", "C")
    async with create_run(remote_call(agents.url["A"], body)) as chunks:
        async for chunk in chunks:
            if chunk == TextDeltaChunk("C working", "ask.a_call.b_call"):
                break
        await agents.records.wait_for(tag, started("ABC"))
        left_at = time.monotonic()
    records = await agents.records.wait_for(tag, cleaned_up("ABC"))
    record_figure(
        "leaving the block → last clean-up", anyio_backend, last_clean_up(records, "ABC", left_at)
    )


async def test_a_failing_sibling_stops_every_run_and_tool_in_every_process(
    agents: Agents, anyio_backend: str
) -> None:
    tag, body = agents.body("slow", "B", "C")
    failed_at: list[float] = []

    async def sibling(call: ToolCallController) -> None:
        await agents.records.wait_for(tag, started("ABC"))
        failed_at.append(time.monotonic())
        raise RuntimeError("the sibling gave up")

    async def run(controller: RunController) -> None:
        await remote_call(agents.url["A"], body)(controller)
        controller.spawn_tool_call("check", sibling, tool_call_id="sibling")

    delivered: list[Chunk] = []
    with pytest.raises(RuntimeError, match="the sibling gave up"):
        async with create_run(run) as chunks:
            delivered += [chunk async for chunk in chunks]
    assert delivered[-1] == ErrorChunk("the sibling gave up")
    records = await agents.records.wait_for(tag, cleaned_up("ABC"))
    record_figure(
        "a sibling failing → last clean-up",
        anyio_backend,
        last_clean_up(records, "ABC", failed_at[0]),
    )


async def test_an_agent_cancelling_its_run_stops_the_agents_below_it(
    agents: Agents, anyio_backend: str
) -> None:
    tag, body = agents.body("slow", "B", "C", cancel_at="A", when_started="C")
    chunks = await collect(remote_call(agents.url["A"], body))
    # A's run ended early, without an error: its text so far is the answer.
    assert chunks[-1] == ToolResultChunk("ask", "A working")
    records = await agents.records.wait_for(tag, cleaned_up("ABC"))
    cancelled_at = next(r.at for r in records if r.event == "cancels")
    record_figure(
        "A cancels its run → last clean-up in A, B and C",
        anyio_backend,
        last_clean_up(records, "ABC", cancelled_at),
    )


async def test_an_agent_in_the_middle_cancelling_its_run_stops_the_one_below(
    agents: Agents, anyio_backend: str
) -> None:
    tag, body = agents.body("slow", "B", "C", cancel_at="B", when_started="C")
    async with create_run(remote_call(agents.url["A"], body)) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, ToolResultChunk):
                break
        # B's run ended early, without an error, and its text is A's call's result.
        assert chunk == ToolResultChunk("ask.a_call", "B working")
        records = await agents.records.wait_for(tag, cleaned_up("BC"))
        cancelled_at = next(r.at for r in records if r.event == "cancels")
        seconds = last_clean_up(records, "BC", cancelled_at)
        assert not [r for r in records if r.process == "A" and r.event.endswith("cleaned-up")]
    record_figure("B cancels its run → last clean-up in B and C", anyio_backend, seconds)
    await agents.records.wait_for(tag, cleaned_up("A"))


# -- faults ---------------------------------------------------------------------


async def run_to_its_end(run: Any) -> tuple[list[Chunk], BaseException | None]:
    """Every chunk of ``run``, and what it raised, if it raised."""
    delivered: list[Chunk] = []
    try:
        async with create_run(run) as chunks:
            delivered += [chunk async for chunk in chunks]
    except Exception as exc:
        return delivered, exc
    return delivered, None


async def test_a_remote_error_is_the_calls_error_result(agents: Agents) -> None:
    url = agents.url["C"]
    _, body = agents.body("fail")
    chunks = await collect(remote_call(url, body, errors_as_result=True))
    assert chunks[-2:] == [
        TextDeltaChunk("C is about to fail", "ask"),
        ToolResultChunk(
            "ask", f"the remote agent at {url}/chain failed: the index is corrupt", is_error=True
        ),
    ]


async def test_a_remote_error_down_a_chain_fails_the_run_naming_every_agent(
    agents: Agents,
) -> None:
    _, body = agents.body("fail", "B", "C")
    delivered, raised = await run_to_its_end(remote_call(agents.url["A"], body))
    message = (
        f"the remote agent at {agents.url['A']}/chain failed: "
        f"the remote agent at {agents.url['B']}/chain failed: "
        f"the remote agent at {agents.url['C']}/chain failed: the index is corrupt"
    )
    assert isinstance(raised, RemoteAgentError)
    assert (str(raised), raised.url) == (message, f"{agents.url['A']}/chain")
    assert TextDeltaChunk("C is about to fail", "ask.a_call.b_call") in delivered
    assert delivered[-1] == ErrorChunk(message)


FAULTS = {
    "overloaded": "answered 503: the model is overloaded",
    "garbage": "sent bytes that do not decode: at byte 18: expected a value after '0:' as JSON",
    "untyped": "answered a body of no known format ('text/html; charset=utf-8')",
    "silent": "went silent: nothing arrived for 0.5 s (silence_timeout)",
}


@pytest.mark.parametrize("errors_as_result", [True, False], ids=["as-result", "raised"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_each_fault_is_named(agents: Agents, fault: str, errors_as_result: bool) -> None:
    url = f"{agents.url['C']}/{fault}"
    tag = secrets.token_hex(6)

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask",
            url,
            json={"tag": tag},
            tool_call_id="ask",
            errors_as_result=errors_as_result,
            silence_timeout=0.5,
        )

    delivered, raised = await run_to_its_end(run)
    message = f"the remote agent at {url} {FAULTS[fault]}"
    if errors_as_result:
        assert raised is None
        last = delivered[-1]
        assert isinstance(last, ToolResultChunk)
        assert last.is_error
        assert last.result.startswith(message), last.result
    else:
        assert isinstance(raised, RemoteAgentError)
        assert raised.url == url
        assert str(raised).startswith(message), str(raised)
        assert delivered[-1] == ErrorChunk(str(raised))
    if fault == "silent":  # giving up closed the request, and the silent run was stopped
        await agents.records.wait_for(tag, {("C", "run-cleaned-up")})


async def test_an_agent_killed_mid_body_is_the_calls_error_result(
    agents: Agents, mortal: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, process = mortal
    tag, body = agents.body("slow")
    async with create_run(remote_call(url, body, errors_as_result=True)) as chunks:
        async for chunk in chunks:
            if chunk == TextDeltaChunk("M working", "ask"):
                await agents.records.wait_for(tag, started("M"))
                process.send_signal(signal.SIGKILL)
            if isinstance(chunk, ToolResultChunk):
                break
    assert isinstance(chunk, ToolResultChunk)
    assert chunk.is_error
    assert re.fullmatch(
        rf"the remote agent at {url}/chain broke off mid-body: "
        r"the connection closed before the body's end \(.+\)",
        chunk.result,
    ), chunk.result


async def test_an_agent_killed_in_the_middle_of_a_chain_fails_the_run_and_stops_the_one_below(
    agents: Agents, mortal: tuple[str, subprocess.Popen[bytes]], anyio_backend: str
) -> None:
    url, process = mortal
    tag, body = agents.body("slow", url, "C")
    killed_at: list[float] = []

    async def run(controller: RunController) -> None:
        await remote_call(agents.url["A"], body)(controller)

        async def killer() -> None:
            await agents.records.wait_for(tag, started("AMC"))
            killed_at.append(time.monotonic())
            process.send_signal(signal.SIGKILL)

        controller.start_soon(killer)

    delivered, raised = await run_to_its_end(run)
    assert isinstance(raised, RemoteAgentError)
    assert str(raised).startswith(
        f"the remote agent at {agents.url['A']}/chain failed: "
        f"the remote agent at {url}/chain broke off mid-body: "
    ), str(raised)
    assert delivered[-1] == ErrorChunk(str(raised))
    records = await agents.records.wait_for(tag, cleaned_up("AC"))
    record_figure(
        "M killed → last clean-up in A and C",
        anyio_backend,
        last_clean_up(records, "AC", killed_at[0]),
    )
