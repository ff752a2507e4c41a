"""RunController: each method, the exact chunk it produces, and what it refuses."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.conftest import collect
from trio_stream import RunController
from trio_stream.chunks import (
    AnnotationsChunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
)

pytestmark = pytest.mark.anyio


async def test_every_append_produces_its_chunk_in_order() -> None:
    async def run(controller: RunController) -> None:
        controller.add_step_start("msg_1")
        controller.append_reasoning("Let me think.")
        controller.append_text("Answer")
        controller.add_data({"progress": 0.5})
        controller.add_source("s1", "https://example.org", title="Example")
        controller.add_file("aGVsbG8=", "text/plain")
        controller.add_annotations([{"kind": "note"}])
        controller.add_error("something minor")
        controller.add_step_finish("stop", input_tokens=12, output_tokens=34)

    assert await collect(run) == [
        StepStartChunk("msg_1"),
        ReasoningDeltaChunk("Let me think."),
        TextDeltaChunk("Answer"),
        DataChunk({"progress": 0.5}),
        SourceChunk(id="s1", url="https://example.org", title="Example"),
        FileChunk("aGVsbG8=", "text/plain"),
        AnnotationsChunk(({"kind": "note"},)),
        ErrorChunk("something minor"),
        StepFinishChunk("stop", input_tokens=12, output_tokens=34),
    ]


async def test_parent_id_is_set_on_the_chunks_that_carry_one() -> None:
    async def run(controller: RunController) -> None:
        tagged = controller.with_parent_id("p")
        tagged.append_text("t")
        tagged.append_reasoning("r")
        tagged.add_source("s", "https://example.org")
        tagged.add_file("eA==", "text/plain")
        await tagged.add_tool_call("tool", "call_1")
        tagged.add_data([1], name="chart")
        tagged.add_reasoning_part("Planning")

    assert [getattr(chunk, "parent_id", None) for chunk in await collect(run)] == ["p"] * 7


async def test_add_reasoning_part_opens_a_part_with_its_summary() -> None:
    async def run(controller: RunController) -> None:
        controller.add_reasoning_part("Planning")
        controller.append_reasoning("thinking")
        controller.add_reasoning_part("")  # an empty summary is a summary

    assert await collect(run) == [
        ReasoningPartStartChunk("Planning"),
        ReasoningDeltaChunk("thinking"),
        ReasoningPartStartChunk(""),
    ]


async def test_copied_streams_may_open_reasoning_parts_with_or_without_a_summary() -> None:
    async def source() -> AsyncIterator[ReasoningPartStartChunk]:
        yield ReasoningPartStartChunk("Planning", "p1")
        yield ReasoningPartStartChunk()
        yield ReasoningPartStartChunk(3)  # type: ignore[arg-type]

    async def run(controller: RunController) -> None:
        controller.add_stream(source())
        await anyio.sleep_forever()

    with pytest.raises(TypeError, match="unstable_summary must be a str, not int"):
        await collect(run)


async def test_add_data_may_name_the_value() -> None:
    async def run(controller: RunController) -> None:
        controller.add_data({"temp": 21}, name="weather")
        controller.add_data(3)

    assert await collect(run) == [DataChunk({"temp": 21}, "weather"), DataChunk(3)]


async def test_add_file_encodes_bytes_as_base64() -> None:
    async def run(controller: RunController) -> None:
        controller.add_file(b"\x89PNG", "image/png")

    (chunk,) = await collect(run)
    assert isinstance(chunk, FileChunk)
    assert base64.b64decode(chunk.data) == b"\x89PNG"


async def test_add_step_start_generates_a_message_id() -> None:
    async def run(controller: RunController) -> None:
        controller.add_step_start()

    (chunk,) = await collect(run)
    assert isinstance(chunk, StepStartChunk)
    assert chunk.message_id.startswith("msg_")


async def test_add_step_finish_defaults_and_continuation() -> None:
    async def run(controller: RunController) -> None:
        controller.add_step_finish("tool-calls", is_continued=True)

    assert await collect(run) == [StepFinishChunk("tool-calls", 0, 0, True)]


def append_bad_state_text(controller: RunController) -> None:
    controller.state = {"log": ""}
    controller.append_state_text(["log"], "\ud800")


@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        (lambda c: c.append_text(3), "append_text's text_delta must be a str, not int"),
        (lambda c: c.append_reasoning(None), "must be a str, not NoneType"),
        (lambda c: c.add_error(ValueError("x")), "add_error's error must be a str"),
        (lambda c: c.add_source("id", 5), "add_source's url must be a str"),
        (lambda c: c.add_file(1.5, "a/b"), "add_file's data must be a str"),
        (lambda c: c.add_annotations("abc"), "expects a list, not str"),
        (lambda c: c.add_data(1, name=""), "add_data's name must not be empty"),
        (lambda c: c.add_reasoning_part(None), "unstable_summary must be a str, not NoneType"),
        (lambda c: c.add_data(1, name=5), "add_data's name must be a str, not int"),
        (lambda c: c.add_data({}, name="update-state"), "'update-state' is reserved"),
        (lambda c: c.add_annotations([object()]), "cannot be encoded as JSON"),
        (lambda c: c.add_step_finish("done"), "finish_reason must be one of"),
        (lambda c: c.add_step_finish("stop", input_tokens=-1), "input_tokens must be"),
        (lambda c: c.add_stream([1, 2]), "expects an async iterable, not list"),
        (
            lambda c: c.append_text("caf\udce9"),  # a byte smuggled in by surrogateescape
            "append_text's text_delta is not valid Unicode text: surrogates not allowed at "
            "index 3",
        ),
        (
            append_bad_state_text,
            r"append-text at state path .*log.* is not valid Unicode text",
        ),
        (lambda c: c.add_source("\udfff", "https://x"), "add_source's id is not valid Unicode"),
    ],
)
async def test_bad_arguments_are_refused_with_a_clear_message(misuse: Any, message: str) -> None:
    async def run(controller: RunController) -> None:
        with pytest.raises((TypeError, ValueError), match=message):
            misuse(controller)
        controller.append_text("still fine")

    # (The state case sets a state first: its update-state chunk comes before.)
    assert (await collect(run))[-1] == TextDeltaChunk("still fine")


async def test_add_stream_copies_another_stream_in() -> None:
    async def source() -> AsyncIterator[TextDeltaChunk]:
        for word in ("a", "b", "c"):
            await anyio.lowlevel.checkpoint()
            yield TextDeltaChunk(word, parent_id="sub")

    async def run(controller: RunController) -> None:
        controller.add_stream(source())

    assert await collect(run) == [TextDeltaChunk(w, parent_id="sub") for w in "abc"]


async def test_add_stream_refuses_items_that_are_not_chunks() -> None:
    async def source() -> AsyncIterator[Any]:
        yield {"type": "text-delta"}

    async def run(controller: RunController) -> None:
        controller.add_stream(source())

    with pytest.raises(TypeError, match="the stream yielded a dict, not a chunk"):
        await collect(run)


async def test_add_stream_closes_its_generator_when_cancelled() -> None:
    closed = False

    async def endless() -> AsyncIterator[TextDeltaChunk]:
        nonlocal closed
        try:
            while True:
                yield TextDeltaChunk("x")
                await anyio.sleep(0.001)
        finally:
            closed = True

    async def run(controller: RunController) -> None:
        controller.add_stream(endless())

    from trio_stream import create_run

    async with create_run(run) as chunks:
        await chunks.receive()
    assert closed


async def test_start_waits_for_a_task_to_report_ready() -> None:
    async def server(controller: RunController, *, task_status: Any) -> None:
        controller.append_text("listening")
        task_status.started(8080)
        await anyio.sleep(0.01)
        controller.append_text("served")

    async def run(controller: RunController) -> None:
        port = await controller.start(server, controller)
        controller.append_text(f"port {port}")

    assert await collect(run) == [
        TextDeltaChunk("listening"),
        TextDeltaChunk("port 8080"),
        TextDeltaChunk("served"),
    ]


async def test_writing_after_the_run_finished_is_an_error() -> None:
    from trio_stream import StreamClosedError

    leaked: list[RunController] = []

    async def run(controller: RunController) -> None:
        leaked.append(controller)

    await collect(run)
    with pytest.raises(StreamClosedError, match="the run has finished"):
        leaked[0].append_text("too late")


async def test_data_and_annotations_are_sent_as_they_were_at_the_call() -> None:
    async def callback(controller: RunController) -> None:
        progress: dict[str, Any] = {"done": 0}
        notes = [{"step": 0}]
        for step in range(1, 4):
            progress["done"] = step
            notes[0]["step"] = step
            controller.add_data(progress, name="progress")
            controller.add_annotations(notes)
        progress["done"] = object()  # no longer JSON: must not matter now

    chunks = await collect(callback)
    assert [c.data for c in chunks if isinstance(c, DataChunk)] == [
        {"done": 1},
        {"done": 2},
        {"done": 3},
    ]
    assert [c.annotations for c in chunks if isinstance(c, AnnotationsChunk)] == [
        ({"step": 1},),
        ({"step": 2},),
        ({"step": 3},),
    ]


async def test_a_failing_added_stream_cancels_and_awaits_the_others() -> None:
    started, closed = anyio.Event(), anyio.Event()

    async def blocking() -> AsyncIterator[TextDeltaChunk]:
        started.set()
        try:
            await anyio.sleep_forever()
            yield TextDeltaChunk("never")
        finally:
            closed.set()

    async def failing() -> AsyncIterator[TextDeltaChunk]:
        await started.wait()
        raise RuntimeError("substream failed")
        yield TextDeltaChunk("never")

    async def run(controller: RunController) -> None:
        controller.add_stream(blocking())
        controller.add_stream(failing())

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="substream failed"):
        await collect(run)
    assert closed.is_set()
