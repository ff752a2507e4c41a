"""Errors: the error chunk comes first, then the exception propagates."""

from __future__ import annotations

import logging
import re

import anyio
import pytest

from tests.conftest import collect
from trio_stream import RunController, SerializationError, ToolCallController, create_run
from trio_stream.chunks import Chunk, ErrorChunk, TextDeltaChunk, ToolResultChunk

pytestmark = pytest.mark.anyio


async def consume(run: object, received: list[Chunk]) -> None:
    async with create_run(run) as chunks:  # type: ignore[arg-type]
        async for chunk in chunks:
            received.append(chunk)


async def test_the_error_chunk_is_delivered_before_the_exception_propagates() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("partial")
        raise ValueError("model unavailable")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="model unavailable"):
        await consume(run, received)
    assert received == [TextDeltaChunk("partial"), ErrorChunk("model unavailable")]


async def test_a_failure_before_the_first_chunk() -> None:
    async def run(controller: RunController) -> None:
        raise KeyError("missing")

    received: list[Chunk] = []
    with pytest.raises(KeyError):
        await consume(run, received)
    assert received == [ErrorChunk("'missing'")]


async def test_an_exception_without_a_message_is_named_by_its_type() -> None:
    async def run(controller: RunController) -> None:
        raise RuntimeError

    received: list[Chunk] = []
    with pytest.raises(RuntimeError):
        await consume(run, received)
    assert received == [ErrorChunk("RuntimeError")]


async def test_a_failing_task_cancels_its_siblings_and_propagates_as_itself() -> None:
    sibling_cancelled = False

    async def sibling(controller: RunController) -> None:
        nonlocal sibling_cancelled
        try:
            await anyio.sleep_forever()
        finally:
            sibling_cancelled = True

    async def failing(controller: RunController) -> None:
        await anyio.sleep(0.01)
        raise ValueError("tool crashed")

    async def run(controller: RunController) -> None:
        controller.start_soon(sibling, controller)
        controller.start_soon(failing, controller)
        controller.append_text("working")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="tool crashed") as caught:
        await consume(run, received)
    assert type(caught.value) is ValueError
    assert received == [TextDeltaChunk("working"), ErrorChunk("tool crashed")]
    assert sibling_cancelled


async def test_concurrent_failures_propagate_as_an_exception_group() -> None:
    async def fail(message: str, gate: anyio.Event) -> None:
        await gate.wait()
        raise ValueError(message)

    async def run(controller: RunController) -> None:
        gate = anyio.Event()
        controller.start_soon(fail, "first", gate)
        controller.start_soon(fail, "second", gate)
        await anyio.sleep(0.01)
        gate.set()

    received: list[Chunk] = []
    with pytest.raises(ExceptionGroup) as caught:
        await consume(run, received)
    assert sorted(str(exc) for exc in caught.value.exceptions) == ["first", "second"]
    assert sorted(received, key=str) == [ErrorChunk("first"), ErrorChunk("second")]


async def test_a_failure_in_a_nested_substream_surfaces_as_the_original_type() -> None:
    async def run(controller: RunController) -> None:
        async with controller.open_substream("a") as a, a.open_substream("b") as b:
            b.append_text("deep")
            raise LookupError("deep failure")

    received: list[Chunk] = []
    with pytest.raises(LookupError, match="deep failure"):
        await consume(run, received)
    assert received == [TextDeltaChunk("deep", parent_id="b"), ErrorChunk("deep failure")]


async def test_add_error_inside_except_reports_and_finishes_normally() -> None:
    async def run(controller: RunController) -> None:
        try:
            raise ValueError("not a number")
        except ValueError as exc:
            controller.add_error(f"Bad input: {exc}")
            return

    assert await collect(run) == [ErrorChunk("Bad input: not a number")]


async def test_cancellation_is_never_an_error_chunk() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("x")
        await anyio.sleep_forever()

    received: list[Chunk] = []
    with anyio.move_on_after(0.05):
        await consume(run, received)
    assert received == [TextDeltaChunk("x")]


async def test_cancelling_the_run_from_inside_ends_it_without_error() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("stopping")
        controller.cancel()
        await anyio.sleep_forever()

    assert await collect(run) == [TextDeltaChunk("stopping")]


class Fatal(BaseException):
    """Stands in for KeyboardInterrupt and SystemExit."""


async def test_a_base_exception_is_not_turned_into_a_chunk() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("x")
        raise Fatal

    received: list[Chunk] = []
    with pytest.raises(Fatal):
        await consume(run, received)
    assert ErrorChunk("Fatal") not in received


async def fails_in_cleanup(controller: RunController) -> None:
    controller.append_text("x")
    try:
        await anyio.sleep_forever()
    finally:
        raise RuntimeError("cleanup failed")


async def test_a_failure_during_cancellation_cleanup_still_propagates() -> None:
    with pytest.raises(RuntimeError, match="cleanup failed"):
        async with create_run(fails_in_cleanup) as chunks:
            await chunks.receive()


async def test_a_run_failure_while_the_consumer_raises_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "trio_stream"), pytest.raises(KeyError):
        async with create_run(fails_in_cleanup) as chunks:
            await chunks.receive()
            raise KeyError("consumer")
    assert "cleanup failed" in caplog.text


async def test_unserializable_data_is_reported_naming_the_chunk() -> None:
    async def run(controller: RunController) -> None:
        controller.add_data({"when": object()})

    received: list[Chunk] = []
    with pytest.raises(SerializationError, match="add_data's data cannot be encoded as JSON"):
        await consume(run, received)
    assert len(received) == 1
    assert isinstance(received[0], ErrorChunk)
    assert "add_data's data" in received[0].error


async def test_unserializable_tool_results_name_the_tool_call() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("lookup", "call_1")
        with pytest.raises(SerializationError, match=r"tool-result of 'lookup' \(call_1\)"):
            tool.set_response({1, 2, object()})
        assert not tool.closed
        tool.set_response("fine")

    chunks = await collect(run)
    assert chunks[-1].type == "tool-result"


# -- keeping exception details off the wire ---------------------------------

HIDDEN = re.compile(r"the response failed on the server \(error reference ([0-9a-f]{12})\)")


def hidden_reference(chunk: Chunk) -> str:
    """The reference of a hidden error chunk; fails on anything else."""
    assert isinstance(chunk, ErrorChunk), chunk
    match = HIDDEN.fullmatch(chunk.error)
    assert match is not None, chunk.error
    return match[1]


async def test_a_run_that_hides_errors_sends_a_reference_and_notes_it_on_the_exception() -> None:
    async def run(controller: RunController) -> None:
        controller.append_text("partial")
        raise ValueError("password=hunter2 rejected by db.internal:5432")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="hunter2") as raised:
        async with create_run(run, expose_errors=False) as chunks:
            received.extend([chunk async for chunk in chunks])
    assert received[0] == TextDeltaChunk("partial")
    reference = hidden_reference(received[1])
    assert len(received) == 2
    assert "hunter2" not in repr(received)
    # The traceback the server logs carries the reference the user saw.
    assert raised.value.__notes__ == [
        f"error reference {reference}: "
        "the client was sent 'the response failed on the server' instead"
    ]


async def test_each_concurrent_failure_gets_its_own_reference() -> None:
    async def fail(message: str) -> None:
        raise RuntimeError(message)

    async def run(controller: RunController) -> None:
        controller.start_soon(fail, "secret one")
        controller.start_soon(fail, "secret two")
        await anyio.sleep_forever()

    received: list[Chunk] = []
    with pytest.raises(ExceptionGroup) as raised:
        async with create_run(run, expose_errors=False) as chunks:
            received.extend([chunk async for chunk in chunks])
    references = {hidden_reference(chunk) for chunk in received}
    assert len(references) == 2
    noted = {
        note.split()[2].rstrip(":") for leaf in raised.value.exceptions for note in leaf.__notes__
    }
    assert noted == references


async def test_hidden_errors_reach_substreams_and_tools_reported_as_results(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken_tool(call: ToolCallController) -> None:
        raise ConnectionError("upstream 10.0.0.7 refused")

    async def run(controller: RunController) -> None:
        async with controller.open_substream("p1") as sub:
            call = sub.spawn_tool_call("lookup", broken_tool, errors_as_result=True)
        assert call.response is not None
        controller.add_error("the application's own message goes out as it is")

    with caplog.at_level(logging.WARNING, logger="trio_stream"):
        chunks = await collect(run, expose_errors=False)
    [result] = [chunk for chunk in chunks if isinstance(chunk, ToolResultChunk)]
    assert result.is_error
    match = re.fullmatch(
        r"the tool failed on the server \(error reference ([0-9a-f]{12})\)", result.result
    )
    assert match is not None, result.result
    assert "10.0.0.7" not in repr(chunks)
    assert chunks[-1] == ErrorChunk("the application's own message goes out as it is")
    [record] = caplog.records
    assert record.exc_info is not None
    assert "10.0.0.7" in str(record.exc_info[1])
    assert match[1] in "".join(getattr(record.exc_info[1], "__notes__", []))


async def test_errors_are_exposed_by_default() -> None:
    async def run(controller: RunController) -> None:
        raise ValueError("shown")

    received: list[Chunk] = []
    with pytest.raises(ValueError, match="shown") as raised:
        await consume(run, received)
    assert received == [ErrorChunk("shown")]
    assert not hasattr(raised.value, "__notes__")
