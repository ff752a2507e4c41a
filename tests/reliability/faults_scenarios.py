"""Fault scenarios: one run callback per way a run can break, and what must follow.

Each ``Fault`` is a run callback together with what a client, a server log
and a task census must show afterwards. The same table is served over HTTP
by ``faults_app.py`` and run in process by ``test_faults.py``, so a scenario
is written once and checked in every wire format and on both backends.

The callbacks use anyio, not trio, so that they run on asyncio too; on Trio,
anyio is Trio. Every task a scenario starts is wrapped in ``Probe.task``,
which counts it while it lives and notes when its ``finally`` has run: after
the run, nothing may be left alive and every expected cleanup must be done.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from trio_stream import RunCallback, RunController, ToolCallController
from trio_stream.chunks import Chunk, TextDeltaChunk, ToolCallBeginChunk, ToolResultChunk

__all__ = [
    "FAULTS",
    "INTERRUPT_PLACES",
    "RACE_ERROR",
    "SHIELDED_CLEANUP",
    "Fault",
    "Probe",
    "Scenario",
    "by_name",
    "fail_after",
    "interrupted",
]

SHIELDED_CLEANUP = 0.2
"""Seconds the stubborn tool spends in its shielded ``finally``."""


class Probe:
    """What the tasks of one run report about themselves.

    ``live`` counts the tasks inside ``task()`` now; ``finished`` names, in
    order, those whose ``finally`` has completed; ``raised`` counts the
    faults the run actually raised (one that is cancelled first raises none).
    Created inside the event loop (anyio events need one).
    """

    def __init__(self) -> None:
        self.live = 0
        self.finished: list[str] = []
        self.raised = 0
        self._started: dict[str, anyio.Event] = {}

    def _event(self, name: str) -> anyio.Event:
        return self._started.setdefault(name, anyio.Event())

    @contextlib.contextmanager
    def task(self, name: str) -> Iterator[None]:
        """Count the enclosed body as a live task named ``name``."""
        self.live += 1
        self._event(name).set()
        try:
            yield
        finally:
            self.live -= 1
            self.finished.append(name)

    def fault(self, exc: BaseException) -> BaseException:
        """``exc``, counted as raised: ``raise probe.fault(ValueError(...))``."""
        self.raised += 1
        return exc

    async def started(self, *names: str) -> None:
        """Wait until every named task has started, so that a fault finds them running."""
        for name in names:
            await self._event(name).wait()


Scenario = Callable[[RunController, Probe], Coroutine[Any, Any, None]]
"""A fault scenario: a run callback that also reports to a probe."""

Tool = Callable[[ToolCallController], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Fault:
    """A run that breaks, and what must be seen afterwards.

    ``before`` are the chunks the run produces before its fault, in order;
    ``errors`` the texts of the error chunks that follow them, in any order
    (concurrent failures come in no set order); ``raised`` the exceptions the run's
    failure is made of, as (type name, message), empty when the run does not
    fail; ``logged`` what else the log must say (the server logs a failing
    run's exception by itself; a tool failure reported as the tool's result
    is logged by the library); ``finished`` the tasks whose cleanup must
    have completed; ``lasts`` the least time the response takes.
    """

    name: str
    scenario: Scenario
    before: tuple[Chunk, ...]
    errors: tuple[str, ...]
    raised: tuple[tuple[str, str], ...]
    finished: frozenset[str] = field(default_factory=frozenset)
    logged: tuple[str, ...] = ()
    lasts: float = 0.0

    def callback(self, probe: Probe) -> RunCallback:
        """The run callback, reporting to ``probe``."""

        async def run(controller: RunController) -> None:
            await self.scenario(controller, probe)

        run.__qualname__ = f"fault {self.name}"
        return run

    @property
    def fails(self) -> bool:
        """Whether the run itself fails (rather than reporting and going on)."""
        return bool(self.raised)


# -- the callbacks ----------------------------------------------------------------


async def fail_before_the_first_chunk(controller: RunController, probe: Probe) -> None:
    raise RuntimeError("failed before the first chunk")


async def fail_mid_stream(controller: RunController, probe: Probe) -> None:
    controller.append_text("one ")
    await anyio.sleep(0.01)  # the first chunk leaves in a write of its own
    controller.append_text("two ")
    raise RuntimeError("failed mid-stream")


def waiting_tool(probe: Probe, name: str) -> Tool:
    """A tool that waits until it is cancelled."""

    async def tool(call: ToolCallController) -> None:
        with probe.task(name):
            await anyio.sleep_forever()

    return tool


async def fail_while_tools_run(controller: RunController, probe: Probe) -> None:
    names = ("tool 1", "tool 2", "tool 3")
    for number, name in enumerate(names, 1):
        controller.spawn_tool_call(
            "lookup", waiting_tool(probe, name), tool_call_id=f"call_{number}"
        )
    await probe.started(*names)
    controller.append_text("waiting for three tools")
    raise RuntimeError("failed while three tools ran")


async def fail_and_then_fail_in_cleanup(controller: RunController, probe: Probe) -> None:
    async def tool(call: ToolCallController) -> None:
        with probe.task("tool"):
            try:
                await anyio.sleep_forever()
            finally:
                raise RuntimeError("the tool's cleanup failed")

    controller.spawn_tool_call("lookup", tool, tool_call_id="call_1")
    await probe.started("tool")
    raise ValueError("failed while a tool ran")


async def a_tool_raises(controller: RunController, probe: Probe) -> None:
    async def failing(call: ToolCallController) -> None:
        with probe.task("failing tool"):
            await probe.started("waiting tool")
            raise LookupError("no such city: Atlantis")

    controller.spawn_tool_call(
        "weather", waiting_tool(probe, "waiting tool"), tool_call_id="call_1"
    )
    controller.spawn_tool_call("geocode", failing, tool_call_id="call_2")
    controller.append_text("asking two tools")


async def a_tool_raises_as_its_result(controller: RunController, probe: Probe) -> None:
    async def failing(call: ToolCallController) -> None:
        with probe.task("failing tool"):
            raise LookupError("no such city: Atlantis")

    async with controller.open_substream() as tools:
        tools.spawn_tool_call("geocode", failing, tool_call_id="call_1", errors_as_result=True)
    controller.append_text("answered without the tool")


async def a_tool_cleans_up_under_a_shield(controller: RunController, probe: Probe) -> None:
    async def stubborn(call: ToolCallController) -> None:
        with probe.task("stubborn tool"):
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(SHIELDED_CLEANUP)

    controller.spawn_tool_call("upload", stubborn, tool_call_id="call_1")
    await probe.started("stubborn tool")
    controller.append_text("uploading")
    raise RuntimeError("failed while a tool cleaned up slowly")


async def an_added_stream_raises(controller: RunController, probe: Probe) -> None:
    async def broken() -> AsyncIterator[Chunk]:
        with probe.task("broken stream"):
            yield TextDeltaChunk("streamed ")
            await probe.started("idle stream")
            raise ValueError("the upstream broke")

    async def idle() -> AsyncIterator[Chunk]:
        with probe.task("idle stream"):
            await anyio.sleep_forever()
            yield TextDeltaChunk("never")

    controller.add_stream(idle())
    controller.add_stream(broken())


async def a_substream_raises(controller: RunController, probe: Probe) -> None:
    async with controller.open_substream("research") as research:
        research.spawn_tool_call("search", waiting_tool(probe, "search"), tool_call_id="call_1")
        await probe.started("search")
        research.append_text("found nothing")
        raise ValueError("the research failed")


async def two_tools_fail_at_once(controller: RunController, probe: Probe) -> None:
    gate = anyio.Event()

    def failing(name: str, exc: Exception) -> Tool:
        async def tool(call: ToolCallController) -> None:
            with probe.task(name):
                await gate.wait()
                raise exc

        return tool

    controller.spawn_tool_call(
        "geocode", failing("geocoder", LookupError("no such city")), tool_call_id="call_1"
    )
    controller.spawn_tool_call(
        "weather", failing("forecaster", ValueError("no forecast")), tool_call_id="call_2"
    )
    await probe.started("geocoder", "forecaster")
    gate.set()


# -- the table ----------------------------------------------------------------------

FAULTS: tuple[Fault, ...] = (
    Fault(
        "before-first-chunk",
        fail_before_the_first_chunk,
        before=(),
        errors=("failed before the first chunk",),
        raised=(("RuntimeError", "failed before the first chunk"),),
    ),
    Fault(
        "mid-stream",
        fail_mid_stream,
        before=(TextDeltaChunk("one "), TextDeltaChunk("two ")),
        errors=("failed mid-stream",),
        raised=(("RuntimeError", "failed mid-stream"),),
    ),
    Fault(
        "while-tools-run",
        fail_while_tools_run,
        before=(
            ToolCallBeginChunk("call_1", "lookup"),
            ToolCallBeginChunk("call_2", "lookup"),
            ToolCallBeginChunk("call_3", "lookup"),
            TextDeltaChunk("waiting for three tools"),
        ),
        errors=("failed while three tools ran",),
        raised=(("RuntimeError", "failed while three tools ran"),),
        finished=frozenset({"tool 1", "tool 2", "tool 3"}),
    ),
    Fault(
        "cleanup-raises",
        fail_and_then_fail_in_cleanup,
        before=(ToolCallBeginChunk("call_1", "lookup"),),
        errors=("failed while a tool ran", "the tool's cleanup failed"),
        raised=(
            ("ValueError", "failed while a tool ran"),
            ("RuntimeError", "the tool's cleanup failed"),
        ),
        finished=frozenset({"tool"}),
    ),
    Fault(
        "tool-raises",
        a_tool_raises,
        before=(
            ToolCallBeginChunk("call_1", "weather"),
            ToolCallBeginChunk("call_2", "geocode"),
            TextDeltaChunk("asking two tools"),
        ),
        errors=("no such city: Atlantis",),
        raised=(("LookupError", "no such city: Atlantis"),),
        finished=frozenset({"failing tool", "waiting tool"}),
    ),
    Fault(
        "tool-error-as-result",
        a_tool_raises_as_its_result,
        before=(
            ToolCallBeginChunk("call_1", "geocode"),
            ToolResultChunk("call_1", "no such city: Atlantis", is_error=True),
            TextDeltaChunk("answered without the tool"),
        ),
        errors=(),
        raised=(),
        finished=frozenset({"failing tool"}),
        logged=(
            "tool call 'geocode' (call_1) failed; reported as its result",
            "LookupError: no such city: Atlantis",
        ),
    ),
    Fault(
        "shielded-cleanup",
        a_tool_cleans_up_under_a_shield,
        before=(ToolCallBeginChunk("call_1", "upload"), TextDeltaChunk("uploading")),
        errors=("failed while a tool cleaned up slowly",),
        raised=(("RuntimeError", "failed while a tool cleaned up slowly"),),
        finished=frozenset({"stubborn tool"}),
        lasts=SHIELDED_CLEANUP,
    ),
    Fault(
        "add-stream-raises",
        an_added_stream_raises,
        before=(TextDeltaChunk("streamed "),),
        errors=("the upstream broke",),
        raised=(("ValueError", "the upstream broke"),),
        finished=frozenset({"broken stream", "idle stream"}),
    ),
    Fault(
        "substream-raises",
        a_substream_raises,
        before=(
            ToolCallBeginChunk("call_1", "search", parent_id="research"),
            TextDeltaChunk("found nothing", parent_id="research"),
        ),
        errors=("the research failed",),
        raised=(("ValueError", "the research failed"),),
        finished=frozenset({"search"}),
    ),
    Fault(
        "two-failures",
        two_tools_fail_at_once,
        before=(ToolCallBeginChunk("call_1", "geocode"), ToolCallBeginChunk("call_2", "weather")),
        errors=("no such city", "no forecast"),
        raised=(("LookupError", "no such city"), ("ValueError", "no forecast")),
        finished=frozenset({"geocoder", "forecaster"}),
    ),
)


def by_name(name: str) -> Fault:
    """The scenario called ``name``."""
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise KeyError(name)


RACE_ERROR = "failed as the client left"


def fail_after(delay: float) -> Scenario:
    """A run that fails ``delay`` seconds in, while a tool cleans up under a shield.

    The client of the disconnect race leaves at about that time: before the
    failure, while the failure is being handled, or after it.
    """

    async def scenario(controller: RunController, probe: Probe) -> None:
        async def tool(call: ToolCallController) -> None:
            with probe.task("tool"):
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(0.01)

        controller.spawn_tool_call("lookup", tool, tool_call_id="call_1")
        controller.append_text("racing")
        await anyio.sleep(delay)
        raise probe.fault(ValueError(RACE_ERROR))

    return scenario


INTERRUPT_PLACES = ("callback", "tool", "tool-as-result", "substream")
"""Where ``interrupted`` raises: in the callback, in a tool (also one whose
errors become its result), inside a sub-stream."""


def interrupted(place: str, exception: type[BaseException]) -> Scenario:
    """A run that raises ``exception`` at ``place`` while a tool waits beside it."""

    async def scenario(controller: RunController, probe: Probe) -> None:
        controller.spawn_tool_call(
            "lookup", waiting_tool(probe, "waiting tool"), tool_call_id="call_1"
        )
        await probe.started("waiting tool")
        controller.append_text("about to be interrupted")
        if place == "callback":
            raise probe.fault(exception())
        if place == "substream":
            async with controller.open_substream("inner") as inner:
                inner.append_text("inside")
                raise probe.fault(exception())

        async def interrupting(call: ToolCallController) -> None:
            with probe.task("interrupting tool"):
                raise probe.fault(exception())

        controller.spawn_tool_call(
            "interrupt",
            interrupting,
            tool_call_id="call_2",
            errors_as_result=place == "tool-as-result",
        )
        await anyio.sleep_forever()

    return scenario
