"""Hostile payloads, in every format: a stream a client reads whole, or a clear error.

Whatever a run is handed — any JSON value, text full of line breaks,
``data:`` lines, NUL, U+2028, astral characters, empty and ten-megabyte
deltas, values nested hundreds of levels deep — each format must put it on
the wire so that a client reads back exactly what was sent. What cannot be
sent (a lone surrogate, which has no UTF-8 form; a value with no JSON form)
must be refused with a ``SerializationError`` naming the problem, at the
call that tried, or, for a chunk that never went through a controller, end
the stream with an error chunk that says so. Never a broken frame, a hung
response, or a server that stops serving.

Every body is read back by the independent parsers of ``payload_wire``;
a sample of the payloads is also served over HTTP by hypercorn on Trio and
read by the official clients: assistant-ui's decoders and the AI SDK's
``readUIMessageStream`` (npm, in Node.js) and the ``openai`` SDK.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from functools import cache, partial
from typing import Any, ClassVar, NamedTuple

import openai
import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import (
    RunController,
    SerializationError,
    ToolCallController,
    ToolCallError,
    create_run,
)
from trio_stream.asgi import RunResponse
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder

from ..asgi_calls import SentMessages
from ..clients import decode
from ..conftest import collect
from ..scenarios import RESPONSES
from ..serving import running
from .figures import Figures
from .payload_wire import apply_state, read, sse_events
from .payloads import (
    FORMATS,
    HOSTILE_ATOMS,
    TOO_DEEP,
    Error,
    Message,
    Op,
    Payload,
    Reasoning,
    StateText,
    Text,
    Tool,
    ToolCall,
    Unencodable,
    as_js,
    client_payloads,
    convertible,
    expected,
    first_surrogate,
    nested,
    payloads,
    play,
    strict_loads,
    surrogate_texts,
    texts,
    tool_call_id,
    unencodable,
)

SECTION = "payloads"

HANG_LIMIT = 30.0
"""Seconds a response may take before the test calls it hung (they take milliseconds)."""


def cases(count: int) -> settings:
    """Settings for ``count`` cases per format, or the soak profile's 5,000 with ``--soak``.

    (``tests/conftest.py`` loads the profile before this module is imported.)
    """
    return settings(
        max_examples=max(count, settings().max_examples),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # ``figures`` is one object for the whole run
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


class Outcome(NamedTuple):
    """What a response sent, and what it raised once the body was complete."""

    body: bytes
    failure: BaseException | None


def respond(
    wire_format: str,
    callback: Callable[[RunController], Coroutine[Any, Any, None]],
    **options: Any,
) -> Outcome:
    """Serve a run of ``callback`` in ``wire_format`` to an in-process client that stays.

    The response must finish within ``HANG_LIMIT`` and end its body (a last
    ``more_body=False`` message) whatever the run did. A ``SerializationError``
    or ``ToolCallError`` (what a run's checks refuse) it raises after that is
    returned; anything else it raises fails the test.
    """

    async def main() -> Outcome:
        sent = SentMessages()
        failure: BaseException | None = None
        with trio.fail_after(HANG_LIMIT):
            try:
                await sent.call(RESPONSES[wire_format](create_run(callback, **options)))
            except (SerializationError, ToolCallError) as exc:
                failure = exc
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == 200
        assert sent[-1]["more_body"] is False, "the body was never ended"
        return Outcome(sent.body, failure)

    return trio.run(main)


class Tally:
    """Counts, per format, what the tests tried and what they found, into the figures.

    ``case`` wraps one case: it is counted as tried, its time is added to
    the format's, and it counts as a failure found if anything in it fails
    (a broken frame, a hang, a wrong message), before the failure goes on.
    ``failures found`` is therefore measured: 0 on a green run.
    """

    seconds: ClassVar[dict[str, float]] = {}

    def __init__(self, figures: Figures, wire_format: str) -> None:
        self.figures = figures
        self.format = wire_format
        figures.add(SECTION, f"{wire_format}: failures found", 0)

    def add(self, what: str, count: int = 1) -> None:
        self.figures.add(SECTION, f"{self.format}: {what}", count)

    @contextlib.contextmanager
    def case(self) -> Iterator[None]:
        self.add("cases tried")
        started = time.perf_counter()
        try:
            yield
        except Exception:  # not Hypothesis's own exceptions, which end a case early
            self.add("failures found")
            raise
        finally:
            spent = self.seconds.get(self.format, 0.0) + time.perf_counter() - started
            self.seconds[self.format] = spent
            self.figures.record(SECTION, f"{self.format}: seconds spent", round(spent, 1))


def on_the_wire(message: str) -> str:
    """``message`` as an error chunk carries it: lone surrogates spelled out."""
    return message.encode("utf-8", "backslashreplace").decode()


# -- any payload round-trips -------------------------------------------------


@pytest.mark.parametrize("wire_format", FORMATS)
@cases(300)
@given(payload=payloads)
def test_every_payload_reads_back_as_it_was_sent(
    wire_format: str, payload: Payload, figures: Figures
) -> None:
    tally = Tally(figures, wire_format)
    with tally.case():

        async def callback(controller: RunController) -> None:
            await play(controller, payload.ops, pause=payload.pause)

        outcome = respond(wire_format, callback, state={})
        assert outcome.failure is None
        assert read(wire_format, outcome.body) == expected(payload.ops, wire_format)
        if any(isinstance(op, Error) for op in payload.ops):
            tally.add("cases ending in an error chunk or SerializationError")


# -- what cannot be sent is refused at the call, by name --------------------------


class Slot(NamedTuple):
    """A place a run puts a value, and how its errors name it.

    ``send`` gets the run's controller, or, for a slot of a tool call, a
    call the test opened (and closes afterwards).
    """

    send: Callable[[Any, Any], None]
    named: str
    on_call: bool = False


def _send_tool_name(controller: RunController, text: str) -> None:
    controller.spawn_tool_call(text, _tool)


async def _tool(call: ToolCallController) -> None:
    pass


TEXT_SLOTS = {
    "text": Slot(lambda c, text: c.append_text(text), "append_text's text_delta"),
    "reasoning": Slot(
        lambda c, text: c.append_reasoning(text), "append_reasoning's reasoning_delta"
    ),
    "error text": Slot(lambda c, text: c.add_error(text), "add_error's error"),
    "source url": Slot(lambda c, text: c.add_source("s1", text, "title"), "add_source's url"),
    "source title": Slot(
        lambda c, text: c.add_source("s1", "https://example.org", text), "add_source's title"
    ),
    "file data": Slot(lambda c, text: c.add_file(text, "text/plain"), "add_file's data"),
    "data name": Slot(lambda c, text: c.add_data(1, name=text), "add_data's name"),
    "tool name": Slot(_send_tool_name, "tool_name"),
    "tool arguments": Slot(
        lambda call, text: call.append_args_text(text),
        "append_args_text's args_text_delta",
        on_call=True,
    ),
    "state text": Slot(
        lambda c, text: c.append_state_text(["log"], text), "append-text at state path [log]"
    ),
}
"""Where a run takes text: a lone surrogate is refused as not valid Unicode."""


def _send_state(controller: RunController, value: Any) -> None:
    controller.state["key"] = value


def _send_arguments(controller: RunController, value: Any) -> None:
    controller.spawn_tool_call("t", _tool, args={"value": value}, tool_call_id="spawned")


VALUE_SLOTS = {
    "data": Slot(lambda c, value: c.add_data(value), "add_data's data"),
    "tool result": Slot(
        lambda call, value: call.set_response(value), "tool-result of 't' (call_", on_call=True
    ),
    "tool artifact": Slot(
        lambda call, value: call.set_response("done", artifact=value),
        ") artifact cannot",
        on_call=True,
    ),
    "state value": Slot(_send_state, "update-state set at [key]"),
    "annotations": Slot(
        lambda c, value: c.add_annotations([value]), "add_annotations's annotations"
    ),
    "tool arguments": Slot(_send_arguments, "the args of tool call 't'"),
}
"""Where a run takes any JSON value."""


class Refusal(NamedTuple):
    """A value a slot must refuse, and what the refusal must say."""

    slot: Slot
    value: Any
    says: tuple[str, ...]


def _text_refusal(slot: str, text: str) -> Refusal:
    reason = f"is not valid Unicode text: surrogates not allowed at index {first_surrogate(text)}"
    return Refusal(TEXT_SLOTS[slot], text, (TEXT_SLOTS[slot].named, reason))


def _value_refusal(slot: str, bad: Unencodable) -> Refusal:
    named = VALUE_SLOTS[slot].named
    return Refusal(VALUE_SLOTS[slot], bad.value, (named, "cannot be encoded as JSON", bad.problem))


refusals = st.builds(
    _text_refusal, st.sampled_from(sorted(TEXT_SLOTS)), surrogate_texts
) | st.builds(_value_refusal, st.sampled_from(sorted(VALUE_SLOTS)), unencodable)


@pytest.mark.parametrize("wire_format", FORMATS)
@cases(150)
@given(before=payloads, refusal=refusals, caught=st.booleans(), after=texts)
def test_what_cannot_be_sent_is_refused_at_the_call_by_name(
    wire_format: str,
    before: Payload,
    refusal: Refusal,
    caught: bool,
    after: str,
    figures: Figures,
) -> None:
    """The call raises ``SerializationError`` naming the slot and the problem.

    Nothing of the refused value reaches the wire. A run that catches the
    error goes on as if the call had not been made; one that does not
    fails, and its stream ends with an error chunk carrying the message. (A
    slot of a tool call needs the call: it is opened first, and given a
    result after a refusal that was caught.)
    """
    tally = Tally(figures, wire_format)
    with tally.case():
        messages: list[str] = []
        call_op = ToolCall("t", "", (), "refused" if caught else None, False, None)
        call_id = tool_call_id(len(before.ops), call_op)

        async def callback(controller: RunController) -> None:
            await play(controller, before.ops)
            target: Any = controller
            if refusal.slot.on_call:
                target = await controller.add_tool_call("t", call_id)
            if not caught:
                refusal.slot.send(target, refusal.value)
            with pytest.raises(SerializationError) as info:
                refusal.slot.send(target, refusal.value)
            messages.append(str(info.value))
            if refusal.slot.on_call:
                target.set_response("refused")
            controller.append_text(after)

        outcome = respond(wire_format, callback, state={})
        tally.add("cases ending in an error chunk or SerializationError")
        trace: tuple[Op, ...] = (call_op,) if refusal.slot.on_call else ()
        if caught:
            assert outcome.failure is None
            [refused] = messages
            sent = expected((*before.ops, *trace, Text(after)), wire_format)
        else:
            assert isinstance(outcome.failure, SerializationError)
            refused = str(outcome.failure)
            if trace and wire_format == "data-stream":
                # The error ends the arguments of the call it left open: {} for none.
                trace = (dataclasses.replace(call_op, pieces=("{}",)),)
            sent = expected((*before.ops, *trace, Error(on_the_wire(refused))), wire_format)
        assert read(wire_format, outcome.body) == sent
        for words in refusal.says:
            assert words in refused


# -- what has a documented JSON form arrives in it --------------------------------


@pytest.mark.parametrize("wire_format", [f for f in FORMATS if f != "openai"])
@cases(100)
@given(slot=st.sampled_from(["data", "tool result", "state value", "annotations"]), data=st.data())
def test_values_with_a_documented_json_form_arrive_in_it(
    wire_format: str, slot: str, data: st.DataObject, figures: Figures
) -> None:
    """NaN and the infinities as ``null``, bytes as base64, sets and tuples as lists,
    integer keys as strings: what ``trio_stream._json.encode`` documents."""
    tally = Tally(figures, wire_format)
    value, json_form = data.draw(convertible)
    with tally.case():

        async def callback(controller: RunController) -> None:
            target: Any = controller
            if VALUE_SLOTS[slot].on_call:
                target = await controller.add_tool_call("t", "call_1")
            VALUE_SLOTS[slot].send(target, value)

        outcome = respond(wire_format, callback, state={})
        assert outcome.failure is None
        message = read(wire_format, outcome.body)
        match slot:
            case "data":
                assert message.data == [json_form]
            case "tool result":
                assert [tool.result for tool in message.tools] == [json_form]
            case "state value":
                assert message.state == {"key": json_form}
            case "annotations":
                assert message.annotations == [json_form]


# -- chunks copied in whole are checked as the calls that make them -----------------


class Unchecked(NamedTuple):
    """A chunk no format can send, and what refuses it.

    A run's controller refuses such values at the call; a chunk copied in
    with ``add_stream`` is checked the same way when the stream yields it.
    """

    chunk: Chunk
    refused_with: type[Exception]


unchecked_chunks = st.one_of(
    surrogate_texts.map(lambda text: Unchecked(TextDeltaChunk(text), SerializationError)),
    surrogate_texts.map(lambda text: Unchecked(ErrorChunk(text), SerializationError)),
    surrogate_texts.map(
        lambda parent: Unchecked(
            ReasoningDeltaChunk("thinking", parent_id=parent), SerializationError
        )
    ),
    surrogate_texts.map(
        lambda title: Unchecked(SourceChunk("s", "https://x", title=title), SerializationError)
    ),
    surrogate_texts.map(
        lambda key: Unchecked(
            UpdateStateChunk(({"type": "set", "path": [key], "value": 1},)), SerializationError
        )
    ),
    unencodable.map(lambda bad: Unchecked(DataChunk(bad.value), SerializationError)),
    st.just(Unchecked(ToolResultChunk("call_never_started", "result"), ToolCallError)),
    st.just(Unchecked(ToolCallDeltaChunk("call_never_started", "{}"), ToolCallError)),
)


@pytest.mark.parametrize("wire_format", FORMATS)
@cases(150)
@given(before=payloads, good=st.lists(texts, max_size=4), unchecked=unchecked_chunks)
def test_a_chunk_no_format_can_send_fails_the_run_where_the_stream_yields_it(
    wire_format: str,
    before: Payload,
    good: list[str],
    unchecked: Unchecked,
    figures: Figures,
) -> None:
    """Every format alike: what came before it is sent, then an error chunk naming it.

    The body stays one a client reads whole, and no chunk the stream yielded
    before the bad one is lost.
    """
    tally = Tally(figures, wire_format)
    with tally.case():

        async def stream() -> AsyncIterator[Chunk]:
            for text in good:
                yield TextDeltaChunk(text)
            yield unchecked.chunk

        async def callback(controller: RunController) -> None:
            await play(controller, before.ops, pause=before.pause)
            controller.add_stream(stream())

        outcome = respond(wire_format, callback, state={})
        message = read(wire_format, outcome.body)
        tally.add("cases ending in an error chunk or SerializationError")
        assert isinstance(outcome.failure, unchecked.refused_with)
        assert any("add_stream" in note for note in outcome.failure.__notes__)
        assert message.errors[-1] == on_the_wire(str(outcome.failure))
        sent = expected((*before.ops, *(Text(t) for t in good)), wire_format)
        assert message.text.get(None, "") == sent.text.get(None, "")


# -- the regressions ---------------------------------------------------------------


ENCODERS: dict[str, Callable[[], StreamEncoder]] = {
    "data-stream": DataStreamEncoder,
    "assistant-transport": AssistantTransportEncoder,
    "ui-message-stream": UIMessageStreamEncoder,
    "openai": OpenAIStreamEncoder,
}


@pytest.mark.parametrize("wire_format", ["assistant-transport", "ui-message-stream"])
def test_empty_argument_deltas_mean_no_arguments(wire_format: str) -> None:
    # A model that streams "" as its arguments called the tool without any,
    # exactly like one that streams nothing: not with arguments that are not JSON.
    encoder = ENCODERS[wire_format]()
    chunks: list[Chunk] = [
        ToolCallBeginChunk("call_1", "now"),
        ToolCallDeltaChunk("call_1", ""),
        ToolCallDeltaChunk("call_1", ""),
        ToolResultChunk("call_1", "12:00"),
    ]
    body = encoder.start() + encoder.encode(chunks) + encoder.finish()
    events = sse_events(body)
    if wire_format == "ui-message-stream":
        ends = ("tool-input-available", "tool-input-error")
        [call_input] = [e for e in events if e != "[DONE]" and e["type"] in ends]
        assert call_input["type"] == "tool-input-available"
        assert call_input["input"] == {}
    else:
        assert read(wire_format, body).tools == [Tool("call_1", "now", "{}", "12:00")]


@pytest.mark.parametrize(
    "wire_format", ["data-stream", "assistant-transport", "ui-message-stream"]
)
def test_arguments_nested_deeper_than_the_decoder_goes_do_not_fail_the_stream(
    wire_format: str,
) -> None:
    # Valid JSON (a client's parser may well read it), but too deep for the
    # encoder to parse: it is not marked complete, and the stream goes on.
    depth = 100_000
    encoder = ENCODERS[wire_format]()
    chunks: list[Chunk] = [
        ToolCallBeginChunk("call_1", "deep"),
        ToolCallDeltaChunk("call_1", "[" * depth),
        ToolCallDeltaChunk("call_1", "]" * depth),
        ToolResultChunk("call_1", "ok"),
    ]
    body = encoder.start() + encoder.encode(chunks) + encoder.finish()
    if wire_format == "ui-message-stream":
        kinds = [e["type"] for e in sse_events(body) if e != "[DONE]"]
        assert "tool-input-error" in kinds
        assert "tool-output-available" in kinds
    else:
        [tool] = read(wire_format, body).tools
        assert tool.args_text == "[" * depth + "]" * depth
        assert tool.result == "ok"


def circular() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    "send",
    [
        lambda controller, value: controller.add_data(value),
        lambda controller, value: controller.add_annotations([value]),
        lambda controller, value: controller.state.__setitem__("key", value),
    ],
    ids=["data", "annotations", "state"],
)
@pytest.mark.parametrize(
    "value",
    [circular(), {"a": [{"b": circular()}]}, nested(0, 50_000)],
    ids=["circular list", "circular inside", "50,000 levels"],
)
def test_a_value_too_deep_for_json_is_refused_at_the_call(send: Any, value: Any) -> None:
    refused: list[str] = []

    async def callback(controller: RunController) -> None:
        with pytest.raises(SerializationError) as info:
            send(controller, value)
        refused.append(str(info.value))

    outcome = respond("data-stream", callback, state={})
    assert outcome.failure is None
    assert refused[0].endswith(f"cannot be encoded as JSON: it is {TOO_DEEP}")


def test_a_state_value_at_the_edge_of_the_recursion_limit_is_stored_or_refused() -> None:
    # How deep a value may nest depends on how deep the stack already is.
    # Across the edge, each write is stored, or refused as too deep like a
    # circular value: never a bare RecursionError, which would fail the run.
    limit = sys.getrecursionlimit()
    stored: list[int] = []
    refused: list[str] = []

    async def callback(controller: RunController) -> None:
        for depth in range(limit - 300, limit + 50):
            try:
                controller.state["key"] = nested(0, depth)
            except SerializationError as exc:
                refused.append(str(exc))
            else:
                stored.append(depth)

    trio.run(partial(collect, callback, state={}))
    assert stored
    assert refused
    assert all(message.endswith(TOO_DEEP) for message in refused)


def test_a_call_without_arguments_gets_them_before_its_result() -> None:
    # The assistant transport completes a call's empty argument text with
    # "{}"; it must come before the result, which a client takes as the end
    # of the call, not after it.
    encoder = AssistantTransportEncoder()
    chunks: list[Chunk] = [
        ToolCallBeginChunk("call_1", "now"),
        ToolResultChunk("call_1", "12:00"),
    ]
    events = sse_events(encoder.encode(chunks) + encoder.finish())
    assert [event["type"] for event in events[:-1]] == [
        "part-start",
        "text-delta",
        "tool-call-args-text-finish",
        "result",
        "part-finish",
        "message-finish",
    ]
    assert events[1]["textDelta"] == "{}"


# -- empty and ten-megabyte deltas ---------------------------------------------------

TEN_MB = 10 * 2**20


@cache
def ten_megabytes() -> str:
    """Ten megabytes (of UTF-8) of hostile atoms, astral characters and all."""
    pattern = "".join(HOSTILE_ATOMS)
    return pattern * (TEN_MB // len(pattern.encode()) + 1)


@pytest.mark.parametrize("wire_format", FORMATS)
def test_empty_and_ten_megabyte_deltas_read_back_whole(wire_format: str, figures: Figures) -> None:
    """A 10 MB delta is one frame, read back whole; empty deltas are frames too.

    The response holds a few copies of the encoded body at most (the run,
    the frame, the write), and encodes in well under a second; ten
    megabytes of argument text, which the encoders scan to find where the
    JSON ends, take a few seconds at most.
    """
    tally = Tally(figures, wire_format)
    big = ten_megabytes()
    with tally.case():
        ops: tuple[Op, ...] = (
            Text(""),
            Text(big),
            Reasoning(""),
            ToolCall("t", "", ("",), "done", False, None),
        )

        async def callback(controller: RunController) -> None:
            await play(controller, ops)

        tracemalloc.start()
        try:
            started = time.perf_counter()
            outcome = respond(wire_format, callback)
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert outcome.failure is None
        assert read(wire_format, outcome.body) == expected(ops, wire_format)
        assert elapsed < 5
        assert peak < 8 * TEN_MB
        body_size = len(outcome.body) / 2**20
        figures.record(
            SECTION,
            f"{wire_format}: 10 MB delta",
            f"{elapsed:.2f} s, peak {peak / 2**20:.0f} MB for a {body_size:.1f} MB body",
        )

    with tally.case():
        arguments = ToolCall("t", "", (json.dumps({"q": big}),), "done", False, None)

        async def calling(controller: RunController) -> None:
            await play(controller, (arguments,))

        started = time.perf_counter()
        outcome = respond(wire_format, calling)
        elapsed = time.perf_counter() - started
        assert outcome.failure is None
        assert read(wire_format, outcome.body) == expected((arguments,), wire_format)
        assert elapsed < 10
        figures.record(SECTION, f"{wire_format}: 10 MB argument delta", f"{elapsed:.2f} s")


# -- a sample, over HTTP, read by the official clients ------------------------------

FAREWELL = "the model failed: " + "".join(HOSTILE_ATOMS)
"""The error that ends the sample's run: the clients stop reading at an error."""


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``: the same ones every run, fresh ones with ``--soak``."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def take(example: Any) -> None:
        drawn.append(example)

    take()
    return drawn


@cache
def sample(count: int) -> tuple[Op, ...]:
    """The operations of ``count`` payloads, played one after the other in one run.

    One run carries the whole sample, so that each client reads it in one
    Node.js start (some 0.3 s each).
    """
    return tuple(op for payload in draw(client_payloads, count) for op in payload.ops)


def initial_state(ops: tuple[Op, ...]) -> dict[str, Any]:
    """The state the sample starts from: its appended-to keys, empty.

    assistant-ui's decoders refuse ``append-text`` at a key that holds
    nothing, which the library sends when text is appended there (see
    ``test_text_appended_at_a_missing_state_key_reaches_assistant_ui``).
    """
    return {op.key: "" for op in ops if isinstance(op, StateText)}


async def sample_run(controller: RunController, ops: tuple[Op, ...]) -> None:
    controller.state = initial_state(ops)
    await play(controller, ops)
    controller.add_error(FAREWELL)


def expected_sample(ops: tuple[Op, ...], wire_format: str) -> Message:
    message = expected((*ops, Error(FAREWELL)), wire_format)
    if wire_format != "openai":
        message.state = {**initial_state(ops), **message.state}
    return message


REFUSED_TEXT = "a text-delta chunk's text_delta is not valid Unicode text"
"""How the failing run's error chunk starts: ``add_stream`` refused its chunk."""


async def _failing_stream() -> AsyncIterator[Chunk]:
    yield TextDeltaChunk("about to fail ")
    yield TextDeltaChunk("caf\udce9")  # a byte smuggled in by surrogateescape


def http_app(ops: tuple[Op, ...]) -> Starlette:
    """``/{format}``: the sample's run; ``/failing/{format}``: a run whose chunk
    no format can send; the OpenAI ones also at ``.../v1/chat/completions``."""

    async def sample_response(request: Request) -> RunResponse:
        return RESPONSES[request.path_params.get("format", "openai")](
            create_run(lambda controller: sample_run(controller, ops))
        )

    async def failing_response(request: Request) -> RunResponse:
        async def callback(controller: RunController) -> None:
            controller.state = initial_state(ops[:5])
            await play(controller, ops[:5])
            controller.add_stream(_failing_stream())

        return RESPONSES[request.path_params.get("format", "openai")](create_run(callback))

    return Starlette(
        routes=[
            Route("/openai/v1/chat/completions", sample_response, methods=["POST"]),
            Route("/failing/openai/v1/chat/completions", failing_response, methods=["POST"]),
            Route("/failing/{format}", failing_response),
            Route("/{format}", sample_response),
        ]
    )


@pytest.fixture(scope="module")
def sample_size(request: pytest.FixtureRequest) -> int:
    return 200 if request.config.getoption("--soak") else 20


@pytest.fixture(scope="module")
def sample_url(sample_size: int) -> Iterator[str]:
    with running(http_app(sample(sample_size))) as url:
        yield url


def _parent(part: dict[str, Any]) -> str | None:
    parent: str | None = part.get("parentId")
    if parent is None:
        parent = part.get("providerMetadata", {}).get("trioStream", {}).get("parentId")
    return parent


def _from_data_url(url: str, media_type: str) -> str:
    """The base64 data of a file the UI message stream sent as a ``data:`` URL."""
    prefix = f"data:{media_type};base64,"
    assert url.startswith(prefix), f"not the data URL of a {media_type!r} file: {url[:100]!r}"
    return url.removeprefix(prefix)


def assistant_ui_view(decoder: str, message: dict[str, Any]) -> Message:
    """The ``Message`` in what assistant-ui's accumulator built from a stream."""
    seen = Message()
    for part in message["parts"]:
        match part["type"]:
            case "text":
                seen.add_text(_parent(part), part["text"])
            case "reasoning":
                seen.add_reasoning(_parent(part), part["text"])
            case "tool-call":
                seen.tools.append(
                    Tool(
                        part["toolCallId"],
                        part["toolName"],
                        part["argsText"],
                        part.get("result"),
                        part.get("isError", False),
                        part.get("artifact"),
                    )
                )
            case "source":
                seen.sources.append((part["id"], part["url"], part.get("title")))
            case "file":
                data = part["data"]
                if decoder == "ui-message-stream":
                    data = _from_data_url(data, part["mimeType"])
                seen.files.append((part["mimeType"], data))
            case "data":
                seen.named_data.append((part["name"], part["data"]))
    metadata = message["metadata"]
    if decoder == "ui-message-stream":
        for entry in metadata["unstable_data"]:
            if entry["name"] == "custom":
                seen.data.append(entry["data"])
            elif entry["name"] == "update-state":
                seen.state = apply_state(seen.state, entry["data"])
            else:
                seen.named_data.append((entry["name"], entry["data"]))
    else:
        seen.data = metadata["unstable_data"]
        seen.state = metadata["unstable_state"]
        seen.annotations = metadata["unstable_annotations"]
    status = message["status"]
    if status.get("reason") == "error":
        seen.errors.append(status["error"]["message"])
    return seen


def _arguments(value: Any) -> str:
    return json.dumps(as_js(value), sort_keys=True)


def ai_sdk_view(output: dict[str, Any]) -> Message:
    """The ``Message`` in the UI message the AI SDK's ``readUIMessageStream`` built."""
    seen = Message()
    message = output["message"]
    for part in message["parts"]:
        kind = part["type"]
        match kind:
            case "text":
                seen.add_text(_parent(part), part["text"])
            case "reasoning":
                seen.add_reasoning(_parent(part), part["text"])
            case "data-custom":
                seen.data.append(part["data"])
            case "data-update-state":
                seen.state = apply_state(seen.state, part["data"])
            case "source-url":
                seen.sources.append((part["sourceId"], part["url"], part.get("title")))
            case "file":
                seen.files.append(
                    (part["mediaType"], _from_data_url(part["url"], part["mediaType"]))
                )
            case "step-start":
                pass
            case _ if kind.startswith("tool-"):
                failed = part["state"] == "output-error"
                metadata = part.get("resultProviderMetadata", {}).get("trioStream", {})
                seen.tools.append(
                    Tool(
                        part["toolCallId"],
                        kind.removeprefix("tool-"),
                        _arguments(part["input"]),
                        part["errorText"] if failed else part["output"],
                        failed,
                        metadata.get("artifact"),
                    )
                )
            case _ if kind.startswith("data-"):
                seen.named_data.append((kind.removeprefix("data-"), part["data"]))
            case _:
                raise AssertionError(f"a part the sample does not make: {part!r}")
    seen.annotations = message.get("metadata", {}).get("annotations", [])
    seen.errors = [chunk["errorText"] for chunk in output["chunks"] if chunk["type"] == "error"]
    return seen


def as_the_client_shows(message: Message, decoder: str) -> Message:
    """``message`` as ``decoder``'s client shows it, numbers as JavaScript has them.

    Empty text is no part at all; a call without arguments shows ``{}``;
    the clients of the UI message stream show arguments as they parsed
    them; assistant-ui's decoders show an empty title as none, and the one
    of the UI message stream shows neither annotations nor artifacts.
    """
    ui_message_stream = decoder in ("ui-message-stream", "ai-ui-message-stream")
    tools = []
    for tool in message.tools:
        args_text = tool.args_text or "{}"
        artifact = None if decoder == "ui-message-stream" else as_js(tool.artifact)
        if ui_message_stream:
            args_text = _arguments(strict_loads(args_text))
        result = as_js(tool.result)
        tools.append(tool._replace(args_text=args_text, result=result, artifact=artifact))
    return Message(
        text={parent: text for parent, text in message.text.items() if text},
        reasoning={parent: text for parent, text in message.reasoning.items() if text},
        tools=tools,
        data=as_js(message.data),
        named_data=[(name, as_js(value)) for name, value in message.named_data],
        errors=message.errors,
        state=as_js(message.state),
        sources=[
            (id, url, title if decoder == "ai-ui-message-stream" else title or None)
            for id, url, title in message.sources
        ],
        files=message.files,
        annotations=[] if decoder == "ui-message-stream" else as_js(message.annotations),
    )


NPM_DECODERS = {
    "data-stream": ("data-stream", "assistant-ui"),
    "assistant-transport": ("assistant-transport", "assistant-ui"),
    "ui-message-stream": ("ui-message-stream", "assistant-ui"),
    "ai-ui-message-stream": ("ui-message-stream", "the AI SDK"),
}
"""Each official npm decoder (as ``tests/js/decode.mjs`` names it): the format it reads,
and whose it is."""


@pytest.mark.parametrize("decoder", sorted(NPM_DECODERS))
def test_the_npm_clients_read_the_sample_back(
    decoder: str, sample_url: str, sample_size: int, figures: Figures
) -> None:
    """A run failed by a chunk that cannot be sent, then the sample, from the same server.

    The first is read as a message that failed with that error, and the
    server, still serving, sends the second, which is read exactly as sent
    (split into 7-byte pieces: UTF-8 sequences and frames cut everywhere).
    """
    wire_format, client = NPM_DECODERS[decoder]
    tally = Tally(figures, wire_format)
    ops = sample(sample_size)
    with tally.case():
        failing = decode(decoder, url=f"{sample_url}/failing/{wire_format}")
        if decoder == "ai-ui-message-stream":
            errors = ai_sdk_view(failing).errors
        else:
            errors = assistant_ui_view(decoder, failing["message"]).errors
        [error] = errors
        assert error.startswith(REFUSED_TEXT)
        tally.add("cases ending in an error chunk or SerializationError")

        output = decode(decoder, url=f"{sample_url}/{wire_format}", split=7)
        assert output["warnings"] == []
        if decoder == "ai-ui-message-stream":
            seen = ai_sdk_view(output)
        else:
            seen = assistant_ui_view(decoder, output["message"])
        wanted = as_the_client_shows(expected_sample(ops, wire_format), decoder)
        assert as_the_client_shows(seen, decoder) == wanted
    figures.add(SECTION, f"{wire_format}: payloads decoded by {client}", sample_size)


def test_the_openai_client_reads_the_sample_back(
    sample_url: str, sample_size: int, figures: Figures
) -> None:
    """The same, read by the ``openai`` SDK, which raises ``APIError`` at an error event."""
    tally = Tally(figures, "openai")
    ops = sample(sample_size)
    with tally.case():
        client = openai.OpenAI(base_url=f"{sample_url}/failing/openai/v1", api_key="-")
        with pytest.raises(openai.APIError, match=REFUSED_TEXT):
            openai_message(client)
        tally.add("cases ending in an error chunk or SerializationError")

        client = openai.OpenAI(base_url=f"{sample_url}/openai/v1", api_key="-", max_retries=0)
        seen = openai_message(client)
        assert seen == expected_sample(ops, "openai")
    figures.add(SECTION, "openai: payloads decoded by the openai SDK", sample_size)


def openai_message(client: openai.OpenAI) -> Message:
    """Accumulate a streamed completion as an application does; an error event ends it."""
    seen = Message()
    calls: dict[int, tuple[str, str]] = {}
    arguments: dict[int, str] = {}
    try:
        with client:
            completion = client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": "go"}], stream=True
            )
            for chunk in completion:
                delta = chunk.choices[0].delta
                if delta.content is not None:
                    seen.add_text(None, delta.content)
                reasoning = getattr(delta, "reasoning_content", None)
                if reasoning is not None:
                    seen.add_reasoning(None, reasoning)
                for call in delta.tool_calls or []:
                    assert call.function is not None
                    if call.id is not None:
                        calls[call.index] = (call.id, call.function.name or "")
                    arguments[call.index] = arguments.get(call.index, "") + (
                        call.function.arguments or ""
                    )
    except openai.APIError as exc:
        seen.errors.append(exc.message)
        if exc.message.startswith(REFUSED_TEXT):
            raise
    seen.tools = [Tool(*calls[index], arguments.get(index, "")) for index in sorted(calls)]
    return seen


# -- found by the properties, outside the encoders -----------------------------------


def test_a_state_key_that_is_not_valid_unicode_is_refused_at_the_call() -> None:
    # Accepted, it would end the stream later, with the error chunk of an
    # encoder that cannot encode the update-state chunk.
    refused: list[BaseException] = []

    async def callback(controller: RunController) -> None:
        try:
            controller.state["caf\udce9"] = 1
        except SerializationError as exc:
            refused.append(exc)

    outcome = respond("data-stream", callback, state={})
    assert refused, f"accepted; the response then raised {outcome.failure!r}"


def test_a_parent_id_that_is_not_valid_unicode_is_refused_at_the_call() -> None:
    refused: list[BaseException] = []

    async def callback(controller: RunController) -> None:
        try:
            controller.with_parent_id("caf\udce9").append_text("nested")
        except SerializationError as exc:
            refused.append(exc)

    outcome = respond("data-stream", callback)
    assert refused, f"accepted; the response then raised {outcome.failure!r}"


@pytest.mark.parametrize("decoder", ["data-stream", "assistant-transport"])
def test_text_appended_at_a_missing_state_key_reaches_assistant_ui(decoder: str) -> None:
    async def callback(controller: RunController) -> None:
        controller.append_state_text(["log"], "started")

    outcome = respond(decoder, callback, state={})
    assert outcome.failure is None
    decoded = decode(decoder, body=outcome.body)
    assert decoded["message"]["metadata"]["unstable_state"] == {"log": "started"}


def test_openai_tool_calls_that_reuse_an_id_keep_indices_of_their_own() -> None:
    # A client merges the deltas of one index into one call: two calls must
    # never share one, even when the second reuses the first one's id.
    encoder = OpenAIStreamEncoder()
    chunks: list[Chunk] = [
        ToolCallBeginChunk("call_a", "first"),
        ToolCallBeginChunk("call_a", "again"),
        ToolCallDeltaChunk("call_a", "{}"),
        ToolCallBeginChunk("call_b", "other"),
    ]
    events = sse_events(encoder.encode(chunks) + encoder.finish())
    calls = [event["choices"][0]["delta"]["tool_calls"][0] for event in events[:-2]]
    assert [(call["index"], call.get("id")) for call in calls] == [
        (0, "call_a"),
        (1, "call_a"),
        (1, None),
        (2, "call_b"),
    ]
