"""Validation at the call: what no format could send is refused when the app makes it.

Every refusal is raised by the controller call (or, for ``add_stream``, by the
chunk the stream yields), names the problem, and is the same whatever format
the run is streamed in: encoders are never handed a run that makes no sense.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from trio_stream import (
    RunController,
    SerializationError,
    StreamClosedError,
    ToolCallController,
    ToolCallError,
    create_run,
)
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    StepFinishChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)

from .asgi_calls import SentMessages
from .conftest import collect
from .scenarios import RESPONSES

pytestmark = pytest.mark.anyio


async def test_a_result_for_a_call_the_run_never_started_is_refused() -> None:
    async def run(controller: RunController) -> None:
        with pytest.raises(ToolCallError, match="started no tool call 'call_9'"):
            controller.add_tool_result("call_9", "done")
        controller.append_text("went on")

    assert await collect(run) == [TextDeltaChunk("went on")]


async def test_a_tool_call_id_is_used_once_per_run() -> None:
    async def tool(call: ToolCallController) -> str:
        return "done"

    async def run(controller: RunController) -> None:
        await controller.add_tool_call("search", "call_1")
        with pytest.raises(ToolCallError, match="'call_1' is used already"):
            await controller.add_tool_call("search", "call_1")
        controller.add_tool_result("call_1", "found")
        with pytest.raises(ToolCallError, match="'call_1' is used already"):
            controller.spawn_tool_call("search", tool, tool_call_id="call_1")
        async with controller.open_substream("p") as sub:
            with pytest.raises(ToolCallError, match="'call_1' is used already"):
                await sub.add_tool_call("search", "call_1")

    assert await collect(run) == [
        ToolCallBeginChunk("call_1", "search"),
        ToolResultChunk("call_1", "found"),
    ]


async def test_nothing_is_added_to_a_call_after_its_result() -> None:
    async def run(controller: RunController) -> None:
        call = await controller.add_tool_call("search", "call_1")
        controller.add_tool_result("call_1", "found")
        assert call.closed
        with pytest.raises(StreamClosedError, match="'call_1' has its result already"):
            call.append_args_text("{}")
        with pytest.raises(StreamClosedError, match="'call_1' has its result already"):
            call.set_response("again")
        with pytest.raises(StreamClosedError, match="'call_1' has its result already"):
            controller.add_tool_result("call_1", "again")

    chunks = await collect(run)
    assert [chunk.type for chunk in chunks] == ["tool-call-begin", "tool-result"]


async def test_a_spawned_tool_answered_by_id_sends_no_second_result() -> None:
    async def tool(call: ToolCallController) -> str:
        await anyio.sleep(0.01)
        return "from the task"

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("approve", tool, tool_call_id="call_1")
        controller.add_tool_result("call_1", "approved by the user")

    chunks = await collect(run)
    assert chunks[-1] == ToolResultChunk("call_1", "approved by the user")
    assert sum(isinstance(chunk, ToolResultChunk) for chunk in chunks) == 1


async def test_a_result_is_sent_as_it_was_at_the_call() -> None:
    sent_value: dict[str, Any] = {"rows": [1, 2]}
    call_response: list[Any] = []

    async def run(controller: RunController) -> None:
        call = await controller.add_tool_call("query", "call_1")
        call.set_response(sent_value, artifact=(1, 2))
        sent_value["rows"].append(3)  # after the call: not sent
        assert call.response is not None
        call_response.append(call.response.result)

    chunks = await collect(run)
    assert chunks[-1] == ToolResultChunk("call_1", {"rows": [1, 2]}, [1, 2])
    assert call_response == [sent_value]  # the app's own object, for the app


async def _streamed(*chunks: Any) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    ("chunk", "error", "match"),
    [
        (ToolCallDeltaChunk("nobody", "{}"), ToolCallError, "started no tool call 'nobody'"),
        (ToolResultChunk("nobody", 1), ToolCallError, "started no tool call 'nobody'"),
        (ToolCallBeginChunk("call_1", "again"), ToolCallError, "'call_1' is used already"),
        (TextDeltaChunk(42), TypeError, "text_delta must be a str, not int"),  # type: ignore[arg-type]
        (DataChunk(object()), SerializationError, "data cannot be encoded as JSON"),
        (DataChunk(1, name="update-state"), ValueError, "'update-state' is reserved"),
        (StepFinishChunk("done"), ValueError, "finish_reason must be one of"),  # type: ignore[arg-type]
        (
            UpdateStateChunk(({"type": "remove", "path": []},)),  # type: ignore[arg-type]
            ValueError,
            "a set or append-text dict",
        ),
    ],
)
async def test_add_stream_checks_each_chunk_as_the_call_that_makes_it(
    chunk: Chunk, error: type[Exception], match: str
) -> None:
    async def run(controller: RunController) -> None:
        await controller.add_tool_call("search", "call_1")
        controller.add_stream(_streamed(TextDeltaChunk("before"), chunk))

    with pytest.raises(error, match=match) as raised:
        await collect(run)
    assert any("add_stream" in note for note in raised.value.__notes__)


async def test_add_stream_sends_values_in_their_json_form() -> None:
    async def run(controller: RunController) -> None:
        await controller.add_tool_call("search", "call_1")
        controller.add_stream(_streamed(ToolResultChunk("call_1", (1, 2), {"k": {3}})))

    chunks = await collect(run)
    assert chunks[-1] == ToolResultChunk("call_1", [1, 2], {"k": [3]})


@pytest.mark.parametrize("format_name", sorted(RESPONSES))
async def test_every_format_ends_an_invalid_run_alike(format_name: str) -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("before")
        controller.add_tool_result("call_9", "done")

    sent = SentMessages()
    with pytest.raises(ToolCallError):
        await sent.call(RESPONSES[format_name](create_run(run)))
    assert sent[-1]["more_body"] is False
    delivered: list[Chunk] = []
    with pytest.raises(ToolCallError):
        async with create_run(run) as chunks:
            delivered += [chunk async for chunk in chunks]
    assert delivered == [
        TextDeltaChunk("before"),
        ErrorChunk("add_tool_result: this run started no tool call 'call_9'"),
    ]
