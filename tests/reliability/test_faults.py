"""Faults in the run: whatever breaks, the client gets an error and a clean end,
the server log gets the traceback, and no task survives.

Each scenario of ``faults_scenarios.FAULTS`` is a run callback that breaks in
one way: before its first chunk, mid-stream, while tools run, in a tool's
cleanup after the cancellation, in a tool (failing the run, or reported as
the tool's result), in a tool that cleans up under a shield, in an added
stream's iterator, in a sub-stream, in two tools at once. Every scenario is
served in every wire format by a real ``trio-stream serve`` process (hypercorn
on Trio) and read with httpx. The client must get a 200, the chunks made
before the fault, exactly the expected error chunks, the format's closing
bytes and a complete chunked body; the server's log must show the exception
with its traceback, once; and the tasks of the run, counted by the app, and
the server's Trio tasks, counted by ``trio.lowlevel.current_statistics()``,
must be back where they were. The same scenarios also run in process, on
Trio and asyncio, where the exception that leaves the run is checked too.

``BaseException``\\ s are another matter. ``KeyboardInterrupt`` and
``SystemExit`` mean "stop", not "this run failed": they must never become an
error chunk, nor a tool's error result, and must reach the top of the program.
They are checked in process, around ``anyio.run``, because over HTTP the
correct outcome is a dead server. ``GeneratorExit`` is not raised by runs at
all: it is what closing a generator throws into it, which the run does to an
added stream it abandons; that path is checked instead.

Finally, a client may leave just as its run fails: the race must leave no task
behind, and report the failure in the log once if it was raised, never as a
pile of follow-up errors about the vanished client.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from starlette.types import Message

from tests.conftest import living_tasks
from trio_stream import RunController, ToolCallController, create_run
from trio_stream.asgi import DataStreamResponse
from trio_stream.chunks import Chunk, ErrorChunk, TextDeltaChunk, ToolResultChunk
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder

from ..asgi_calls import SCOPE, SentMessages
from ..clients import sse_events
from ..serving import running_cli
from .faults_app import MESSAGE_ID
from .faults_scenarios import (
    FAULTS,
    INTERRUPT_PLACES,
    RACE_ERROR,
    Fault,
    Probe,
    interrupted,
)
from .figures import Figures

SECTION = "faults in the run"

ASGI_ERROR = "Error in ASGI Framework"
"""What hypercorn logs, followed by the traceback, for an exception out of the app."""

APP = "tests.reliability.faults_app:app"

ENCODERS: dict[str, Callable[[], StreamEncoder]] = {
    "data-stream": DataStreamEncoder,
    "assistant-transport": AssistantTransportEncoder,
    "ui-message-stream": lambda: UIMessageStreamEncoder(message_id=MESSAGE_ID),
    "openai": OpenAIStreamEncoder,
}
"""Each wire format the app serves, as the encoder its response uses."""

SETTLE = 5.0
"""Seconds the server gets to end a run's tasks and log its failure."""


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, however deeply grouped."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


# -- the server and what it says ----------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A ``trio-stream serve`` process of the fault app, and its log."""

    url: str
    log: Path

    def log_mark(self) -> int:
        """Where the log ends now; ``log_since`` reads what comes after."""
        return self.log.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.log.open("rb") as log:
            log.seek(mark)
            return log.read().decode()

    def wait_for_log(self, mark: int, *expected: str) -> str:
        """The log since ``mark``, once it shows every ``expected`` text (or time is up)."""
        deadline = time.monotonic() + SETTLE
        while True:
            text = self.log_since(mark)
            if all(line in text for line in expected) or time.monotonic() > deadline:
                return text
            time.sleep(0.01)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("faults") / "server.log"
    with running_cli(log, "serve", APP) as url:
        yield Server(url, log)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def idle_tasks(client: httpx.Client) -> int:
    """The server's living Trio tasks, connections aside, with only this request running.

    Hypercorn keeps a connection's tasks for a while after its client left,
    so those are left out (``faults_app.census``); everything else, the runs
    and their tools first, must come back to this count.
    """
    count: int = client.get("/stats").json()["server_tasks"]
    return count


def settled(client: httpx.Client, probe: str, idle: int) -> dict[str, Any]:
    """The probe's report once its run's tasks and the server's are back to idle.

    Gives up after ``SETTLE`` seconds and returns what it last saw: a leak.
    """
    deadline = time.monotonic() + SETTLE
    while True:
        stats: dict[str, Any] = client.get("/stats", params={"probe": probe}).json()
        if not leaked(stats, idle) or time.monotonic() > deadline:
            return stats
        time.sleep(0.01)


def leaked(stats: dict[str, Any], idle: int) -> int:
    """Tasks of the run, or of other requests, still alive; or server tasks above idle."""
    count: int = stats["live"] + stats["request_tasks"] + max(0, stats["server_tasks"] - idle)
    return count


def assert_no_task_survives(stats: dict[str, Any], idle: int) -> None:
    assert stats["live"] == 0
    assert stats["request_tasks"] == 0
    assert stats["server_tasks"] == idle


def new_probe(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# -- what a body must look like -------------------------------------------------------


def normalized(body: bytes) -> bytes:
    """``body`` with the OpenAI stream's random completion id and timestamp blanked."""
    return re.sub(
        rb'"id":"chatcmpl-[^"]*","object":"chat.completion.chunk","created":\d+',
        b'"id":"chatcmpl-","object":"chat.completion.chunk","created":0',
        body,
    )


def rendered(wire: str, chunks: tuple[Chunk, ...]) -> bytes:
    """The whole body a fresh encoder gives ``chunks``: opening, chunks, closing bytes."""
    encoder = ENCODERS[wire]()
    return normalized(encoder.start() + encoder.encode(chunks) + encoder.finish())


def expected_bodies(wire: str, fault: Fault) -> set[bytes]:
    """Every body the fault may give: concurrent failures' error chunks come in any order."""
    return {
        rendered(wire, fault.before + tuple(ErrorChunk(error) for error in errors))
        for errors in itertools.permutations(fault.errors)
    }


def error_texts(wire: str, body: bytes) -> list[str]:
    """The texts of the error chunks in ``body``, read as each format's client reads them."""
    if wire == "data-stream":
        lines = body.decode().splitlines()
        return [json.loads(line.removeprefix("3:")) for line in lines if line.startswith("3:")]
    events = [event for event in sse_events(body) if isinstance(event, dict)]
    if wire == "openai":
        return [event["error"]["message"] for event in events if "error" in event]
    key = "errorText" if wire == "ui-message-stream" else "error"
    return [event[key] for event in events if event.get("type") == "error"]


def assert_ends_cleanly(wire: str, body: bytes, failed: bool) -> None:
    """The format's own end of a message, after an error or after a normal finish."""
    if wire == "data-stream":
        assert body.endswith(b"\n")
        last = body.decode().splitlines()[-1]
        # After an error the 3: line ends the message; otherwise the d: line does.
        assert last.startswith("3:" if failed else "d:"), last
        return
    events = sse_events(body)
    assert events[-1] == "data: [DONE]"
    assert events.count("data: [DONE]") == 1
    if wire == "ui-message-stream":
        assert events[-2]["type"] == "finish"
        assert events[-2]["finishReason"] == ("error" if failed else "stop")
    if wire == "assistant-transport":
        finishes = [e for e in events if isinstance(e, dict) and e["type"] == "message-finish"]
        assert len(finishes) == (0 if failed else 1)


def assert_reported(log: str, fault: Fault) -> int:
    """The log shows the fault's exception with its traceback, once.

    Returns how many exception reports the log holds (hypercorn's for an
    exception out of the app, the library's for a tool failure it turned
    into a result).
    """
    reports = log.count(ASGI_ERROR) + log.count("failed; reported as its result")
    assert reports == 1, log
    assert "Traceback (most recent call last)" in log
    if fault.fails:
        assert ASGI_ERROR in log
        for type_name, message in fault.raised:
            assert f"{type_name}: {message}" in log, log
        # The traceback goes down to the scenario's own frame.
        assert "faults_scenarios.py" in log
    for line in fault.logged:
        assert line in log, log
    return reports


# -- over HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize("wire", list(ENCODERS))
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_over_http_the_client_gets_the_error_and_a_clean_end_and_the_log_the_traceback(
    server: Server, client: httpx.Client, figures: Figures, fault: Fault, wire: str
) -> None:
    """Served by hypercorn on Trio and read by httpx, as a browser's fetch would read it."""
    idle = idle_tasks(client)
    mark = server.log_mark()
    probe = new_probe(fault.name)
    started = time.monotonic()
    response = client.get(f"/fault/{wire}/{fault.name}", params={"probe": probe})
    took = time.monotonic() - started
    figures.add(SECTION, "fault scenarios tried (scenarios x formats, over HTTP)", 1)

    # What the client sees: reading the body at all proves its chunked
    # transfer was complete (httpx raises on a truncated one).
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(ENCODERS[wire]().media_type)
    body = response.content
    assert sorted(error_texts(wire, body)) == sorted(fault.errors)
    assert_ends_cleanly(wire, body, failed=fault.fails)
    assert normalized(body) in expected_bodies(wire, fault)
    # A response waits for every task of its run, however long a shielded
    # cleanup takes, before it ends.
    assert took >= fault.lasts

    stats = settled(client, probe, idle)
    figures.add(SECTION, "tasks leaked", leaked(stats, idle))
    assert_no_task_survives(stats, idle)
    assert sorted(stats["finished"]) == sorted(fault.finished)

    expected = [ASGI_ERROR] if fault.fails else list(fault.logged)
    log = server.wait_for_log(mark, *expected)
    figures.add(SECTION, "exceptions logged", assert_reported(log, fault))


@pytest.mark.parametrize("wire", list(ENCODERS))
def test_a_client_leaving_as_its_run_fails_leaves_no_task_and_one_report_at_most(
    server: Server, client: httpx.Client, figures: Figures, soak: bool, wire: str
) -> None:
    """The run fails some milliseconds after its first chunk, while a tool's
    shielded cleanup delays the end, and the client leaves some milliseconds
    after it got its first bytes: before the fault, during, or after.

    Whichever comes first, the run's tasks all end, the server's task count
    comes back, and the log holds the failure once if the run raised it (the
    probe counts the raise), or not at all, and nothing about the client
    being gone beyond hypercorn's access line and the library's one notice.
    """
    rounds = 200 if soak else 12
    raised = 0
    for round_ in range(rounds):
        delay = 0.002 * (round_ % 6)
        leave = 0.002 * ((round_ * 5) % 7)
        idle = idle_tasks(client)
        mark = server.log_mark()
        probe = new_probe("race")
        with (
            httpx.Client(base_url=server.url, timeout=30) as racer,
            racer.stream("GET", f"/race/{wire}", params={"probe": probe, "delay": delay}) as reply,
        ):
            assert reply.status_code == 200
            next(reply.iter_raw())
            time.sleep(leave)
        stats = settled(client, probe, idle)
        figures.add(SECTION, "tasks leaked", leaked(stats, idle))
        assert_no_task_survives(stats, idle)
        assert stats["finished"] == ["tool"]

        fault_line = f"ValueError: {RACE_ERROR}"
        log = server.wait_for_log(mark, *([fault_line] if stats["raised"] else []))
        reports = log.count(fault_line)
        assert reports == stats["raised"], log
        assert log.count(ASGI_ERROR) <= reports, log
        for noise in ("ClientGone", "ClosedResourceError", "BrokenResourceError", "[WARNING]"):
            assert noise not in log, log
        assert log.count("client disconnected") <= 1, log
        raised += stats["raised"]
        figures.add(SECTION, "exceptions logged", reports)
    figures.add(SECTION, "client-leaves-as-run-fails races", rounds)
    figures.add(SECTION, "races in which the run raised before it was cancelled", raised)


# -- in process, on both backends --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_in_process_the_chunks_end_with_the_errors_and_the_failure_propagates(
    anyio_backend: str, figures: Figures, fault: Fault
) -> None:
    """The run's side of every scenario, on Trio and on asyncio: the chunks, the
    exception the ``async with`` block raises (one failure as itself, several
    as an ``ExceptionGroup``), and every task done when the block is left."""
    idle = living_tasks(anyio_backend)
    probe = Probe()
    received: list[Chunk] = []
    raised: Exception | None = None
    try:
        async with create_run(fault.callback(probe)) as chunks:
            async for chunk in chunks:
                received.append(chunk)
    except Exception as exc:
        raised = exc

    before, errors = received[: len(fault.before)], received[len(fault.before) :]
    assert before == list(fault.before)
    assert sorted(errors, key=str) == sorted((ErrorChunk(e) for e in fault.errors), key=str)
    if fault.fails:
        assert raised is not None
        found = sorted((type(leaf).__name__, str(leaf)) for leaf in leaves(raised))
        assert found == sorted(fault.raised)
        if len(fault.raised) == 1:
            assert type(raised).__name__ == fault.raised[0][0]
        else:
            assert type(raised) is ExceptionGroup
    else:
        assert raised is None
    figures.add(SECTION, "tasks leaked", probe.live + living_tasks(anyio_backend) - idle)
    assert probe.live == 0
    assert sorted(probe.finished) == sorted(fault.finished)
    assert living_tasks(anyio_backend) == idle
    figures.add(SECTION, "in-process fault runs (scenarios x backends)", 1)


@pytest.mark.anyio
async def test_an_added_stream_left_at_a_yield_is_closed_without_a_chunk_of_its_own(
    anyio_backend: str,
) -> None:
    """``GeneratorExit`` is how the run closes an added stream's generator that
    it stops reading: with the queue full, the copy waits and the generator
    sits at a ``yield`` when the run fails. Closing runs the generator's
    cleanup, and neither adds a chunk nor changes the run's exception."""
    closed_by: list[type[BaseException]] = []

    async def endless() -> AsyncIterator[Chunk]:
        try:
            for number in itertools.count():
                yield TextDeltaChunk(f"{number} ")
        except BaseException as exc:
            closed_by.append(type(exc))
            raise

    async def run(controller: RunController) -> None:
        controller.add_stream(endless())
        await anyio.sleep(0.01)
        raise ValueError("the model failed")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="the model failed"):
        async with create_run(run, high_water_mark=2) as chunks:
            async for chunk in chunks:
                received.append(chunk)
                await anyio.sleep(0.001)  # a slow reader: the queue fills up
    assert closed_by == [GeneratorExit]
    assert [chunk for chunk in received if isinstance(chunk, ErrorChunk)] == [
        ErrorChunk("the model failed")
    ]
    assert received[-1] == ErrorChunk("the model failed")


@pytest.mark.anyio
async def test_a_tool_failing_in_its_cleanup_after_the_client_left_is_raised_as_itself(
    anyio_backend: str,
) -> None:
    """The client leaves, the run is cancelled, and a tool's ``finally`` raises.

    Nobody is left to read an error chunk, but the failure is a real bug in the
    tool: the response must raise it, as itself, so that the server logs it
    (as it does when the client leaves while the run itself fails).
    """
    probe = Probe()

    async def tool(call: ToolCallController) -> None:
        with probe.task("tool"):
            try:
                await anyio.sleep_forever()
            finally:
                raise RuntimeError("cleanup failed after the client left")

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("lookup", tool, tool_call_id="call_1")
        await anyio.sleep_forever()

    async def receive() -> Message:
        await probe.started("tool")
        return {"type": "http.disconnect"}

    sent = SentMessages()
    with pytest.raises(RuntimeError, match="cleanup failed after the client left"):
        await DataStreamResponse(create_run(run))(SCOPE, receive, sent.send)
    assert probe.finished == ["tool"]


# -- BaseExceptions ------------------------------------------------------------------------

BACKENDS = ("trio", "asyncio")
INTERRUPTS = (KeyboardInterrupt, SystemExit)


@dataclass
class Outcome:
    """What an interrupted run left behind, seen from inside and outside the loop."""

    probe: Probe | None = None
    raised_in_loop: BaseException | None = None
    raised_by_loop: BaseException | None = None
    received: list[Chunk] | None = None
    body: bytes = b""


def interrupt(backend: str, place: str, exception: type[BaseException], *, via: str) -> Outcome:
    """Run ``interrupted(place, exception)`` to the end in a loop of its own.

    ``via`` is ``"run"`` (a consumer reading ``create_run``) or ``"response"``
    (a ``DataStreamResponse`` called as an ASGI app). The loop is this
    function's own because on asyncio a task's ``KeyboardInterrupt`` or
    ``SystemExit`` leaves the loop itself, whatever the library does; so is
    what leaves ``anyio.run``: caught here, it never reaches pytest.
    """
    outcome = Outcome()

    async def main() -> None:
        if backend == "asyncio":
            # The loop reports this very task's exception as never retrieved
            # when the task is collected, possibly at interpreter exit; it is
            # retrieved here, below, from what anyio.run raises.
            asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
        probe = outcome.probe = Probe()
        scenario = interrupted(place, exception)

        async def callback(controller: RunController) -> None:
            await scenario(controller, probe)

        try:
            if via == "run":
                received = outcome.received = []
                async with create_run(callback) as chunks:
                    async for chunk in chunks:
                        received.append(chunk)
            else:
                sent = SentMessages()
                try:
                    await sent.call(DataStreamResponse(create_run(callback)))
                finally:
                    outcome.body = sent.body
        except BaseException as exc:
            outcome.raised_in_loop = exc
            raise

    try:
        anyio.run(main, backend=backend)
    except BaseException as exc:
        outcome.raised_by_loop = exc
    # asyncio leaves tasks whose exception was never retrieved; their
    # finalizers log it. Collected now, they log into this test's capture,
    # rather than whenever the collector next runs, in whatever pytest is
    # doing then (CPython 3.11 fails to build an AST when a finalizer runs
    # during it: "AST constructor recursion depth mismatch").
    gc.collect()
    return outcome


@pytest.mark.parametrize("place", INTERRUPT_PLACES)
@pytest.mark.parametrize("exception", INTERRUPTS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_base_exception_leaves_the_run_as_itself_and_never_as_a_chunk(
    figures: Figures, backend: str, exception: type[BaseException], place: str
) -> None:
    """Raised in the callback, in a tool (even one whose errors are its result)
    or in a sub-stream, it cancels the run's other tasks, is not described in
    an error chunk nor a tool result, leaves the ``async with`` block as itself
    (not in a group: the run collapses a lone failure, whatever its kind) and
    then leaves the event loop."""
    outcome = interrupt(backend, place, exception, via="run")
    assert outcome.probe is not None
    assert outcome.received is not None
    assert outcome.probe.raised == 1
    assert type(outcome.raised_in_loop) is exception
    assert type(outcome.raised_by_loop) is exception
    assert not [c for c in outcome.received if isinstance(c, ErrorChunk | ToolResultChunk)]
    assert outcome.probe.live == 0
    assert "waiting tool" in outcome.probe.finished
    figures.add(SECTION, "BaseException runs (kinds x places x backends)", 1)


@pytest.mark.parametrize("exception", INTERRUPTS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_base_exception_in_a_run_leaves_its_response_without_an_error_chunk(
    backend: str, exception: type[BaseException]
) -> None:
    """The response does not catch it: no error chunk, no closing bytes (the
    process is going down, not the message), and the exception, alone, in what
    leaves the ASGI call and the loop."""
    outcome = interrupt(backend, "callback", exception, via="response")
    assert outcome.probe is not None
    assert outcome.raised_in_loop is not None
    assert outcome.raised_by_loop is not None
    assert [type(leaf) for leaf in leaves(outcome.raised_in_loop)] == [exception]
    assert [type(leaf) for leaf in leaves(outcome.raised_by_loop)] == [exception]
    lines = outcome.body.decode().splitlines()
    assert lines[0] == 'b:{"toolCallId":"call_1","toolName":"lookup"}'
    assert not [line for line in lines if line.startswith(("3:", "d:"))]
    assert outcome.probe.live == 0
    assert outcome.probe.finished == ["waiting tool"]


@pytest.mark.parametrize("exception", INTERRUPTS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_base_exception_leaves_the_response_as_itself(
    backend: str, exception: type[BaseException]
) -> None:
    """As it leaves the run: a server handles a bare ``KeyboardInterrupt`` as
    one (hypercorn stops), while a group holding one passes for an app error."""
    outcome = interrupt(backend, "callback", exception, via="response")
    assert type(outcome.raised_in_loop) is exception


def accepts_connections(url: str) -> bool:
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    try:
        socket.create_connection((address.hostname, address.port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_keyboard_interrupt_in_a_run_stops_the_server_instead_of_being_logged(
    tmp_path: Path,
) -> None:
    """Over HTTP, the one thing to see is the server going down, as it does when
    an ASGI app raises ``KeyboardInterrupt`` itself: a worker that logs it as a
    failed request and serves on has swallowed it."""
    with running_cli(tmp_path / "server.log", "serve", APP) as url:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(
                f"{url}/interrupt/data-stream",
                params={"probe": "interrupt", "exception": "KeyboardInterrupt"},
                timeout=10,
            )
        deadline = time.monotonic() + 2
        while accepts_connections(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not accepts_connections(url), (tmp_path / "server.log").read_text()
