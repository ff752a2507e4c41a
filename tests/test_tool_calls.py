"""Tool calls: opened, streamed, answered — by hand or as parallel tasks."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from functools import partial

import anyio
import pytest

from tests.conftest import collect
from trio_stream import RunController, StreamClosedError, ToolCallController, ToolCallError
from trio_stream.chunks import (
    Chunk,
    StepFinishChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)

pytestmark = pytest.mark.anyio


async def test_a_tool_call_streams_arguments_then_its_response() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("get_weather", "call_1")
        tool.append_args_text('{"city":')
        tool.append_args_text('"Paris"}')
        tool.set_response({"celsius": 21}, artifact={"raw": "..."})

    assert await collect(run) == [
        ToolCallBeginChunk("call_1", "get_weather"),
        ToolCallDeltaChunk("call_1", '{"city":'),
        ToolCallDeltaChunk("call_1", '"Paris"}'),
        ToolResultChunk("call_1", {"celsius": 21}, artifact={"raw": "..."}),
    ]


async def test_tool_call_ids_default_to_openai_style_random_ids() -> None:
    ids: list[str] = []

    async def run(controller: RunController) -> None:
        for _ in range(50):
            ids.append((await controller.add_tool_call("t")).tool_call_id)

    await collect(run)
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{24}", tool_call_id) for tool_call_id in ids)
    assert len(set(ids)) == 50


async def test_a_closed_tool_call_refuses_more_output() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        tool.set_response("done", is_error=True)
        assert tool.closed
        assert tool.response == ToolResultChunk("call_1", "done", is_error=True)
        with pytest.raises(StreamClosedError, match=r"'t' \(call_1\) is already closed"):
            tool.append_args_text("{}")
        with pytest.raises(StreamClosedError):
            tool.set_response("again")
        tool.close()  # closing twice is harmless

    assert [chunk.type for chunk in await collect(run)] == ["tool-call-begin", "tool-result"]


async def test_set_result_is_a_deprecated_set_response() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        with pytest.deprecated_call():
            tool.set_result(42)

    assert (await collect(run))[-1] == ToolResultChunk("call_1", 42)


async def test_add_tool_result_answers_a_call_by_id() -> None:
    async def run(controller: RunController) -> None:
        await controller.add_tool_call("search", "call_9")
        controller.add_tool_result("call_9", ["a"], is_error=False)

    assert await collect(run) == [
        ToolCallBeginChunk("call_9", "search"),
        ToolResultChunk("call_9", ["a"]),
    ]


async def test_spawned_tool_calls_run_in_parallel_and_keep_their_own_order() -> None:
    running = 0
    most_at_once = 0

    async def tool(call: ToolCallController) -> str:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        for i in range(3):
            call.append_args_text(str(i))
            await anyio.sleep(0.01)
        running -= 1
        return f"result of {call.tool_call_id}"

    async def run(controller: RunController) -> None:
        for n in range(10):
            controller.spawn_tool_call("count", tool, tool_call_id=f"call_{n}")

    chunks = await collect(run)
    assert most_at_once == 10
    for n in range(10):
        own = [chunk for chunk in chunks if getattr(chunk, "tool_call_id", None) == f"call_{n}"]
        assert own == [
            ToolCallBeginChunk(f"call_{n}", "count"),
            ToolCallDeltaChunk(f"call_{n}", "0"),
            ToolCallDeltaChunk(f"call_{n}", "1"),
            ToolCallDeltaChunk(f"call_{n}", "2"),
            ToolResultChunk(f"call_{n}", f"result of call_{n}"),
        ]
    # Their chunks interleave on the stream: all ten began before any finished.
    first_result = next(i for i, chunk in enumerate(chunks) if chunk.type == "tool-result")
    assert [chunk.type for chunk in chunks[:first_result]].count("tool-call-begin") == 10


async def test_spawn_tool_call_streams_args_as_json() -> None:
    async def tool(call: ToolCallController) -> str:
        return f"searched for {call.args['q']}"

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("search", tool, args={"q": "trio", "n": 3}, tool_call_id="c")

    chunks = await collect(run)
    assert chunks[0] == ToolCallBeginChunk("c", "search")
    assert isinstance(chunks[1], ToolCallDeltaChunk)
    assert json.loads(chunks[1].args_text_delta) == {"q": "trio", "n": 3}
    assert chunks[2] == ToolResultChunk("c", "searched for trio")


async def test_a_tool_returning_nothing_gets_a_null_result() -> None:
    async def tool(call: ToolCallController) -> None:
        assert call.args is None

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("noop", tool, tool_call_id="c")

    assert (await collect(run))[-1] == ToolResultChunk("c", None)


async def test_a_response_set_by_the_tool_itself_is_kept() -> None:
    async def tool(call: ToolCallController) -> str:
        call.set_response("explicit", artifact=[1])
        return "ignored"

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("t", tool, tool_call_id="c")

    assert (await collect(run))[-1] == ToolResultChunk("c", "explicit", artifact=[1])


async def test_a_failing_tool_fails_the_run_by_default() -> None:
    async def tool(call: ToolCallController) -> None:
        raise ConnectionError("backend down")

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("t", tool, tool_call_id="c")
        await anyio.sleep_forever()

    with pytest.raises(ConnectionError, match="backend down"):
        await collect(run)


async def test_errors_as_result_turns_a_tool_failure_into_its_result() -> None:
    async def broken(call: ToolCallController) -> None:
        raise ConnectionError("backend down")

    async def fine(call: ToolCallController) -> str:
        await anyio.sleep(0.02)
        return "ok"

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("broken", broken, tool_call_id="b", errors_as_result=True)
        controller.spawn_tool_call("fine", fine, tool_call_id="f", errors_as_result=True)

    chunks: list[Chunk] = await collect(run)
    assert ToolResultChunk("b", "backend down", is_error=True) in chunks
    assert chunks[-1] == ToolResultChunk("f", "ok")
    assert not any(chunk.type == "error" for chunk in chunks)


async def test_results_can_be_gathered_by_waiting_on_a_substream() -> None:
    async def double(call: ToolCallController, n: int) -> int:
        await anyio.sleep(0.01 * (5 - n))
        return n * 2

    async def run(controller: RunController) -> None:
        async with controller.open_substream() as step:
            calls = [step.spawn_tool_call("double", partial(double, n=n)) for n in range(5)]
        results = [call.response.result for call in calls if call.response is not None]
        controller.append_text(f"sum={sum(results)}")

    chunks = await collect(run)
    assert chunks[-1] == TextDeltaChunk("sum=20")


async def test_tool_call_arguments_must_be_text() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t")
        with pytest.raises(TypeError, match="must be a str, not dict"):
            tool.append_args_text({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="tool_name must be a str"):
            await controller.add_tool_call(None)  # type: ignore[arg-type]

    await collect(run)


async def test_errors_as_result_describes_every_failure_of_a_tool() -> None:
    async def fail(message: str, gate: anyio.Event) -> None:
        await gate.wait()
        raise ValueError(message)

    async def tool(call: ToolCallController) -> None:
        gate = anyio.Event()
        async with call.open_substream() as sub:
            sub.start_soon(fail, "first", gate)
            sub.start_soon(fail, "second", gate)
            await anyio.sleep(0.01)
            gate.set()  # both resume and raise before either can be cancelled

    async def run(controller: RunController) -> None:
        controller.spawn_tool_call("t", tool, tool_call_id="c", errors_as_result=True)

    result = (await collect(run))[-1]
    assert isinstance(result, ToolResultChunk)
    assert result.is_error
    assert sorted(result.result.split("; ")) == ["first", "second"]


# -- the end of a call's arguments ---------------------------------------------------


async def test_close_ends_the_arguments_once_and_the_result_may_come_later() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("ask_human", "call_1")
        tool.append_args_text('{"q": "ok?"')
        tool.close()
        tool.close()  # a repeat changes nothing
        assert tool.closed
        controller.append_text("waiting for the answer")
        controller.add_tool_result("call_1", "yes")

    assert await collect(run) == [
        ToolCallBeginChunk("call_1", "ask_human"),
        ToolCallDeltaChunk("call_1", '{"q": "ok?"'),
        ToolCallArgsTextFinishChunk("call_1"),
        TextDeltaChunk("waiting for the answer"),
        ToolResultChunk("call_1", "yes"),
    ]


async def test_arguments_after_their_end_are_refused_at_the_call() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        tool.close()
        with pytest.raises(StreamClosedError, match=r"'t' \(call_1\) is already closed"):
            tool.append_args_text("{}")

        async def late() -> AsyncIterator[Chunk]:
            yield ToolCallDeltaChunk("call_1", "{}")

        controller.add_stream(late())

    with pytest.raises(StreamClosedError, match="arguments of tool call 'call_1' are finished"):
        await collect(run)


async def test_a_response_or_a_close_after_the_response_sends_no_end_of_its_own() -> None:
    # The result settles the arguments; a call closed after it (as a tool's
    # clean-up may close it) sends nothing more.
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        tool.append_args_text("{}")
        tool.set_response("done")
        tool.close()
        other = await controller.add_tool_call("t", "call_2")
        controller.add_tool_result("call_2", "done")
        other.close()

    assert [chunk.type for chunk in await collect(run)] == [
        "tool-call-begin",
        "tool-call-delta",
        "tool-result",
        "tool-call-begin",
        "tool-result",
    ]


async def test_a_closed_call_takes_no_response_from_its_controller() -> None:
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        tool.close()
        with pytest.raises(StreamClosedError, match="already closed"):
            tool.set_response("late")

    await collect(run)


async def test_a_spawned_tool_that_closes_its_call_leaves_the_result_to_the_app() -> None:
    async def approve(call: ToolCallController) -> None:
        call.close()  # the arguments are final: the user decides now

    async def run(controller: RunController) -> None:
        call = controller.spawn_tool_call("delete", approve, args={"path": "/tmp/x"})
        await anyio.sleep(0.01)
        assert call.response is None
        controller.add_tool_result(call.tool_call_id, "approved")

    chunks = await collect(run)
    assert [chunk.type for chunk in chunks] == [
        "tool-call-begin",
        "tool-call-delta",
        "tool-call-args-text-finish",
        "tool-result",
    ]


async def test_closing_after_the_run_ended_is_harmless() -> None:
    kept: list[ToolCallController] = []

    async def run(controller: RunController) -> None:
        kept.append(await controller.add_tool_call("t", "call_1"))

    await collect(run)
    kept[0].close()
    assert kept[0].closed


async def test_copied_streams_end_arguments_as_the_calls_do() -> None:
    async def stream() -> AsyncIterator[Chunk]:
        yield ToolCallBeginChunk("c1", "search")
        yield ToolCallDeltaChunk("c1", '{"q": ')
        yield ToolCallArgsTextFinishChunk("c1", "1}")  # the last piece rides on the end
        yield ToolCallArgsTextFinishChunk("c1")  # a repeat: dropped
        yield ToolResultChunk("c1", "found")
        yield ToolCallArgsTextFinishChunk("c1")  # what assistant-stream sends after a result
        yield ToolCallBeginChunk("c2", "ping")
        yield ToolResultChunk("c2", "pong")
        yield ToolCallArgsTextFinishChunk("c2")

    async def run(controller: RunController) -> None:
        controller.add_stream(stream())

    assert await collect(run) == [
        ToolCallBeginChunk("c1", "search"),
        ToolCallDeltaChunk("c1", '{"q": '),
        ToolCallArgsTextFinishChunk("c1", "1}"),
        ToolResultChunk("c1", "found"),
        ToolCallBeginChunk("c2", "ping"),
        ToolResultChunk("c2", "pong"),
    ]


@pytest.mark.parametrize(
    ("late", "error", "message"),
    [
        (ToolCallArgsTextFinishChunk("c1", "more"), StreamClosedError, "are finished already"),
        (ToolCallDeltaChunk("c1", "more"), StreamClosedError, "are finished already"),
        (ToolCallArgsTextFinishChunk("c9"), ToolCallError, "started no tool call 'c9'"),
    ],
)
async def test_copied_streams_may_not_add_arguments_after_their_end(
    late: Chunk, error: type[Exception], message: str
) -> None:
    async def stream() -> AsyncIterator[Chunk]:
        yield ToolCallBeginChunk("c1", "search")
        yield ToolCallArgsTextFinishChunk("c1", "{}")
        yield late

    async def run(controller: RunController) -> None:
        controller.add_stream(stream())

    with pytest.raises(error, match=message) as raised:
        await collect(run)
    assert "the stream given to add_stream yielded" in str(raised.value.__notes__)


async def test_a_steps_end_leaves_the_arguments_to_the_run() -> None:
    # The wire may settle arguments still streaming at a step's end (the data
    # stream does); the run does not refuse their text: parallel producers
    # have steps of their own.
    async def run(controller: RunController) -> None:
        tool = await controller.add_tool_call("t", "call_1")
        tool.append_args_text('{"a": ')
        controller.add_step_finish("tool-calls")
        tool.append_args_text("1}")

    chunks = await collect(run)
    assert chunks[-2:] == [StepFinishChunk("tool-calls"), ToolCallDeltaChunk("call_1", "1}")]
