"""Remote agents as tool calls: another server's run nested under a call of this run.

The remote agents are apps served on hypercorn with Trio (in threads of the
test process), each its own server with its own event loop; the runs that
call them run on Trio and on asyncio.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RemoteAgentError, RemoteOutcome, RunController, create_run
from trio_stream.asgi import DataStreamResponse, RunResponse, UIMessageStreamResponse
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)
from trio_stream.formats import merged_deltas

from .conftest import collect
from .scenarios import RESPONSES
from .serving import running

pytestmark = pytest.mark.anyio


class Remote:
    """A remote agent's app, and what happened in it."""

    def __init__(self, downstream: str | None = None) -> None:
        self.downstream = downstream
        self.cleaned_up: list[str] = []
        self.changed = threading.Condition()
        self.app = Starlette(
            routes=[
                Route("/answer", self.answer, methods=["POST"]),
                Route("/planned", self.planned, methods=["POST"]),
                Route("/slow", self.slow, methods=["POST"]),
                Route("/failing", self.failing, methods=["POST"]),
                Route("/chain", self.chain, methods=["POST"]),
                Route("/openai-compatible", self.openai_compatible, methods=["POST"]),
                Route("/endless", self.endless, methods=["POST"]),
            ]
        )

    def done(self, what: str) -> None:
        with self.changed:
            self.cleaned_up.append(what)
            self.changed.notify_all()

    def wait_cleaned_up(self, count: int, timeout: float) -> list[str]:
        """Block until ``count`` clean-ups happened (or ``timeout``); returns them."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.cleaned_up) >= count, timeout)
            return sorted(self.cleaned_up)

    async def answer(self, request: Request) -> RunResponse:
        question = (await request.json())["question"]

        async def run(controller: RunController) -> None:
            controller.append_reasoning("looking it up")
            call = await controller.add_tool_call("lookup", "call_a")
            call.append_args_text('{"q": "x"}')
            async with call.open_substream() as sub:
                sub.append_text("inside")
            call.set_response("found")
            controller.state = {"step": 1}
            controller.append_text(f"The answer to {question}")
            controller.append_text(" is 42.")

        return UIMessageStreamResponse(create_run(run))

    async def planned(self, request: Request) -> RunResponse:
        """A summarized reasoning part, and a call whose arguments end before its result."""
        fmt = (await request.json())["format"]

        async def run(controller: RunController) -> None:
            controller.add_reasoning_part("Planning")
            controller.append_reasoning("first the lookup")
            call = await controller.add_tool_call("confirm", "call_b")
            call.append_args_text('{"ok": ')
            call.close()
            controller.add_tool_result("call_b", "confirmed")
            controller.append_text("done")

        return RESPONSES[fmt](create_run(run))

    async def slow(self, request: Request) -> RunResponse:
        async def tool(call: Any) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                self.done("tool")

        async def run(controller: RunController) -> None:
            try:
                controller.append_text("working")
                controller.spawn_tool_call("forever", tool)
                await anyio.sleep_forever()
            finally:
                self.done("run")

        return DataStreamResponse(create_run(run))

    async def endless(self, request: Request) -> RunResponse:
        """Text and reasoning deltas in turn, as fast as the client takes them, never ending.

        A relay merges consecutive deltas of one part; these it cannot merge,
        so it relays a chunk for every one, many for each read.
        """

        async def run(controller: RunController) -> None:
            try:
                while True:
                    controller.append_text("x")
                    controller.append_reasoning("y")
                    await controller.drain()
            finally:
                self.done("endless")

        return DataStreamResponse(create_run(run))

    async def failing(self, request: Request) -> RunResponse:
        async def run(controller: RunController) -> None:
            controller.append_text("about to fail")
            raise ValueError("the index is corrupt")

        return DataStreamResponse(create_run(run))

    async def openai_compatible(self, request: Request) -> Response:
        """What an OpenAI-compatible server streams, written by hand: no trio-stream here."""
        events = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
            {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_x",
                                    "type": "function",
                                    "function": {"name": "search", "arguments": '{"q":1}'},
                                }
                            ]
                        },
                    }
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ]
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        return Response(body, media_type="text/event-stream")

    async def chain(self, request: Request) -> RunResponse:
        """Call the next agent down the chain (``/chain`` there too, or ``/slow`` at the end)."""
        assert self.downstream is not None
        target = (await request.json())["target"]

        async def run(controller: RunController) -> None:
            try:
                controller.append_text("delegating")
                controller.spawn_remote_tool_call(
                    "delegate", f"{self.downstream}/{target}", json={"target": "slow"}
                )
            finally:
                self.done("chain")

        return DataStreamResponse(create_run(run))


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[list[str], list[Remote]]]:
    """Three agents: the first calls the second, which calls the third."""
    last = Remote()
    with running(last.app) as last_url:
        middle = Remote(downstream=last_url)
        with running(middle.app) as middle_url:
            first = Remote(downstream=middle_url)
            with running(first.app) as first_url:
                yield [first_url, middle_url, last_url], [first, middle, last]


async def test_a_remote_run_nests_under_its_tool_call(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = chain[0][0]

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask", f"{url}/answer", args={"question": "life"}, tool_call_id="call_1"
        )

    chunks = await collect(run)
    assert chunks[0] == ToolCallBeginChunk("call_1", "ask")
    assert chunks[-1] == ToolResultChunk("call_1", "The answer to life is 42.")
    nested = chunks[2:-1]
    assert ToolCallBeginChunk("call_1.call_a", "lookup", "call_1") in nested
    assert TextDeltaChunk("inside", "call_1.call_a") in nested
    assert ToolResultChunk("call_1.call_a", "found") in nested
    # The remote's two deltas, or one if they arrived in one read: the relay merges them.
    answer = [c for c in nested if isinstance(c, TextDeltaChunk) and c.parent_id == "call_1"]
    assert "".join(c.text_delta for c in answer) == "The answer to life is 42."
    assert (
        DataChunk([{"type": "set", "path": [], "value": {"step": 1}}], "remote-state", "call_1")
        in nested
    )


@pytest.mark.parametrize("fmt", ["data-stream", "assistant-transport", "ui-message-stream"])
async def test_reasoning_parts_and_argument_ends_are_relayed_renamed(
    chain: tuple[list[str], list[Remote]], fmt: str
) -> None:
    url = chain[0][0]

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "plan", f"{url}/planned", json={"format": fmt}, tool_call_id="call_1"
        )

    chunks = await collect(run)
    assert chunks[1:-1] == [
        ReasoningPartStartChunk("Planning", "call_1"),
        ReasoningDeltaChunk("first the lookup", "call_1"),
        ToolCallBeginChunk("call_1.call_b", "confirm", "call_1"),
        ToolCallDeltaChunk("call_1.call_b", '{"ok": '),
        ToolCallArgsTextFinishChunk("call_1.call_b"),
        ToolResultChunk("call_1.call_b", "confirmed"),
        TextDeltaChunk("done", "call_1"),
    ]
    assert chunks[-1] == ToolResultChunk("call_1", "done")


async def test_the_result_is_what_the_app_makes_of_the_outcome(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = chain[0][0]
    outcomes: list[RemoteOutcome] = []

    def summary(outcome: RemoteOutcome) -> Any:
        outcomes.append(outcome)
        return {"answer": outcome.text, "state": outcome.state}

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "ask", f"{url}/answer", json={"question": "x"}, result=summary, tool_call_id="c"
        )

    chunks = await collect(run)
    assert chunks[-1] == ToolResultChunk(
        "c", {"answer": "The answer to x is 42.", "state": {"step": 1}}
    )
    assert outcomes[0].url == f"{url}/answer"


async def test_twenty_remote_runs_in_parallel_keep_their_ids_apart(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = chain[0][0]

    async def run(controller: RunController) -> None:
        for n in range(20):
            controller.spawn_remote_tool_call(
                "ask", f"{url}/answer", args={"question": str(n)}, tool_call_id=f"call_{n}"
            )

    chunks = await collect(run)
    results = {c.tool_call_id: c.result for c in chunks if isinstance(c, ToolResultChunk)}
    for n in range(20):
        assert results[f"call_{n}"] == f"The answer to {n} is 42."
        assert results[f"call_{n}.call_a"] == "found"


async def test_a_remote_failure_is_the_calls_error_result_or_the_runs_failure(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = f"{chain[0][0]}/failing"

    async def tolerant(controller: RunController) -> None:
        controller.spawn_remote_tool_call("ask", url, tool_call_id="c", errors_as_result=True)

    chunks = await collect(tolerant)
    assert chunks[-1] == ToolResultChunk(
        "c", f"the remote agent at {url} failed: the index is corrupt", is_error=True
    )

    async def strict(controller: RunController) -> None:
        controller.spawn_remote_tool_call("ask", url, tool_call_id="c")

    delivered: list[Chunk] = []
    with pytest.raises(RemoteAgentError, match="failed: the index is corrupt") as raised:
        async with create_run(strict) as stream:
            delivered += [chunk async for chunk in stream]
    assert raised.value.url == url
    assert delivered[-1] == ErrorChunk(f"the remote agent at {url} failed: the index is corrupt")


async def test_cancelling_the_caller_cancels_every_run_down_a_chain_of_three(
    chain: tuple[list[str], list[Remote]],
) -> None:
    urls, remotes = chain
    for remote in remotes:
        remote.cleaned_up.clear()

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call("delegate", f"{urls[0]}/chain", json={"target": "chain"})

    async with create_run(run) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, TextDeltaChunk) and chunk.text_delta == "working":
                assert chunk.parent_id is not None
                # Three calls down (ours, the first agent's, the second's):
                # the third agent's run is going. Leave.
                assert chunk.parent_id.count(".") == 2
                break
    assert await anyio.to_thread.run_sync(remotes[2].wait_cleaned_up, 2, 5) == ["run", "tool"]


async def test_any_server_of_a_known_format_is_a_remote_agent(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = f"{chain[0][0]}/openai-compatible"

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call("ask", url, json={"stream": True}, tool_call_id="c")

    # The remote's two deltas, or one if they arrived in one read: the relay merges them.
    assert merged_deltas(await collect(run)) == [
        ToolCallBeginChunk("c", "ask"),
        TextDeltaChunk("Hello", "c"),
        ToolCallBeginChunk("c.call_x", "search", "c"),
        ToolCallDeltaChunk("c.call_x", '{"q":1}'),
        ToolResultChunk("c", "Hello"),
    ]


async def test_a_remote_faster_than_the_caller_is_held_to_the_high_water_mark(
    chain: tuple[list[str], list[Remote]],
) -> None:
    url = f"{chain[0][0]}/endless"
    remote = chain[1][0]
    remote.cleaned_up.clear()

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call("ask", url)

    queued: list[int] = []
    async with create_run(run, high_water_mark=32) as chunks:
        buffer = chunks._buffer
        async for _ in chunks:
            queued.append(len(buffer))
            await anyio.sleep(0.001)
            if len(queued) == 200:
                break
    assert max(queued) <= 32
    assert max(queued) >= 16  # the relay did run ahead, up to the mark
    assert await anyio.to_thread.run_sync(remote.wait_cleaned_up, 1, 5) == ["endless"]


async def test_leaving_a_remote_that_never_stops_streaming_cancels_it(
    chain: tuple[list[str], list[Remote]],
) -> None:
    urls, remotes = chain
    remotes[0].cleaned_up.clear()

    async def run(controller: RunController) -> None:
        controller.spawn_remote_tool_call("ask", f"{urls[0]}/endless")

    received = 0
    async with create_run(run) as chunks:
        async for chunk in chunks:
            received += isinstance(chunk, TextDeltaChunk)
            if received == 10_000:
                break
    assert await anyio.to_thread.run_sync(remotes[0].wait_cleaned_up, 1, 5) == ["endless"]
