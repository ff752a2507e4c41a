"""A message streamed by Anthropic's Messages API, piped into a run.

The counterpart of ``trio_stream.adapters.openai`` for Claude models:
``stream_message`` reads the events of a streamed message (what the
official ``anthropic`` client's ``messages.create(..., stream=True)`` or
``messages.stream(...)`` yields, or any async iterable of those event
objects) and writes each piece through a controller as it arrives;
``run_message`` also makes the request; ``run_tool_loop`` asks the model,
runs the tools it calls, in parallel, sends their results back, and asks
again until the model answers.

A Messages stream is a sequence of *content blocks*, each opened by
``content_block_start``, filled by ``content_block_delta`` events and closed
by ``content_block_stop``, between a ``message_start`` and a
``message_stop``. What becomes what, decided once here:

- ``text`` blocks are text. Their citations that point at a URL (web search
  results, search results given with a ``source``) become sources, one per
  URL and message: the formats show sources, and citations have no place of
  their own in them.
- ``thinking`` blocks are reasoning. The signature that closes them, and
  ``redacted_thinking`` blocks (encrypted, nothing readable), are not sent to
  the front-end; both are kept in the outcome, since the API wants them back
  unchanged when the conversation goes on.
- ``tool_use`` blocks are tool calls, opened when the block starts, their
  ``input_json_delta`` pieces streamed as the call's argument text. They are
  returned open, for the caller (or ``run_tool_loop``) to run.
- ``server_tool_use`` blocks (web search, web fetch, code execution…) are tool
  calls too, which the API runs itself: the ``*_tool_result`` block that
  follows sets the call's result, an error result when its content is one
  of the API's ``*_error`` objects. Opaque ``encrypted_*`` fields are left
  out of what the front-end sees.
- ``stop_reason`` becomes the step's finish reason (``STOP_REASONS``), and
  the usage its tokens: input counts what the model read, cached or not.

The API announces that new event, block and delta types will appear, and
asks clients to pass over the ones they do not know: so does the adapter,
keeping unknown blocks in the outcome as they started. What cannot be read
as one message (a delta for a block that never started or already stopped,
a delta of the wrong kind for its block, events out of order, data that is
not JSON, a stream that ends before ``message_stop``) raises
``MessageStreamError``, naming the problem.

Errors and cancellation are the run's own, as for the OpenAI adapter: an
``anthropic.APIError`` (including the ``error`` event the API sends
mid-stream) propagates, and a cancelled run closes the stream, which aborts
the HTTP request.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._controller import RunController, ToolCallController, ToolFunction, _run_tool
from .._errors import ToolCallError, TrioStreamError, UsageError
from .._json import encode_checked
from ..chunks import FinishReason
from .openai import ToolCall

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic, AsyncMessageStream
    from anthropic.types import (
        MessageParam,
        RawMessageStreamEvent,
        ToolResultBlockParam,
        Usage,
    )

__all__ = [
    "STOP_REASONS",
    "MessageOutcome",
    "MessageStreamError",
    "ToolCall",
    "ToolLoopOutcome",
    "run_message",
    "run_tool_loop",
    "stream_message",
    "tool_result_message",
]

STOP_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
    "pause_turn": "other",
}
"""The API's stop reasons, as a step's; any other one is ``other``."""

_MESSAGE_EVENTS: Final = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop"}
    | {"message_delta", "message_stop"}
)
"""The events that make a message, between ``message_start`` and ``message_stop``."""
_TOOL_BLOCKS: Final = frozenset({"tool_use", "server_tool_use"})
_DELTA_BLOCKS: Final[Mapping[str, str]] = {
    "text_delta": "text",
    "citations_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "thinking",
    "input_json_delta": "tool_use",  # or server_tool_use
}
"""The kind of block each delta type fills."""

_CLOSE_TIMEOUT = 5.0
"""Seconds that closing the HTTP response may take, cancelled or not."""


class MessageStreamError(TrioStreamError, ValueError):
    """The stream cannot be read as one message; the text says why."""


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """How the model's message ended, and what it asked for.

    ``stop_reason`` is the API's, ``finish_reason`` the step's (mapped as in
    ``STOP_REASONS``). ``tool_calls`` are the ``tool_use`` blocks, their
    controllers still open; the server's own tool calls are not among them,
    as they have their results already. ``content`` is every block of the
    message as the API takes it back, thinking signatures and server tool
    results included. ``usage`` is the message's, as the stream last
    reported it.
    """

    id: str
    model: str
    stop_reason: str
    finish_reason: FinishReason
    text: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    content: tuple[dict[str, Any], ...]
    usage: Usage | None

    def assistant_message(self) -> MessageParam:
        """The message to append to ``messages`` before asking the model again.

        Every block goes back as it came, except empty text blocks, which the
        API refuses.
        """
        content: list[Any] = [
            block for block in self.content if not (block["type"] == "text" and not block["text"])
        ]
        return {"role": "assistant", "content": content}


@dataclass(frozen=True, slots=True)
class ToolLoopOutcome:
    """What ``run_tool_loop`` did: one message outcome per round, and the conversation.

    ``messages`` holds the messages given, then each model message and the
    tool results sent back after it: what to send with the user's next
    message.
    """

    messages: tuple[MessageParam, ...]
    outcomes: tuple[MessageOutcome, ...]

    @property
    def text(self) -> str:
        """The text of every round, in order."""
        return "".join(outcome.text for outcome in self.outcomes)

    @property
    def finish_reason(self) -> FinishReason:
        """The last round's finish reason."""
        return self.outcomes[-1].finish_reason

    @property
    def pending_tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls of the last round left without a result, for the front-end."""
        return tuple(call for call in self.outcomes[-1].tool_calls if not call.controller.closed)


async def run_message(
    controller: RunController,
    client: AsyncAnthropic,
    *,
    model: str,
    messages: Iterable[MessageParam],
    max_tokens: int,
    **params: Any,
) -> MessageOutcome:
    """Ask ``client`` for a streamed message and pipe it into ``controller``.

    ``params`` go to ``client.messages.create`` as they are (``tools``,
    ``system``, ``thinking``, ``temperature``…). Whatever fails
    (``anthropic.APIConnectionError`` when the server is down,
    ``APIStatusError`` on an error status or an ``error`` event mid-stream)
    propagates with a note naming the server and the model; the note is for
    logs, the error chunk keeps the message alone.
    """
    try:
        stream = await client.messages.create(
            model=model, messages=messages, max_tokens=max_tokens, stream=True, **params
        )
        return await stream_message(controller, stream)
    except Exception as exc:
        exc.add_note(f"while streaming a message of {model!r} from {client.base_url}")
        raise


async def stream_message(
    controller: RunController,
    stream: AsyncIterable[RawMessageStreamEvent] | AsyncMessageStream[Any],
) -> MessageOutcome:
    """Write a streamed message through ``controller``, block by block, piece by piece.

    ``stream`` is what ``messages.create(..., stream=True)`` returns, the
    ``AsyncMessageStream`` of ``async with messages.stream(...)`` (its
    derived events are passed over, as the raw ones carry the same), or any
    async iterable of the API's event objects. The step starts
    (``add_step_start`` with the message's id) at ``message_start`` and
    finishes (``add_step_finish``) after ``message_stop``. Returns the
    outcome once the stream has ended.

    The stream is closed however this returns: at its end, on an error, or
    when the run is cancelled, which aborts the request to the model server.
    """
    reader = _MessageReader(controller)
    iterator = aiter(stream)
    try:
        while True:
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                break
            except json.JSONDecodeError as exc:
                raise MessageStreamError(
                    f"the stream sent an event that is not JSON: {exc}"
                ) from exc
            await reader.read(event)
            # Bound what a fast model can queue ahead of a slow client.
            await controller.drain()
    finally:
        await _close(stream, iterator)
    return reader.outcome()


async def _close(stream: object, iterator: AsyncIterator[object]) -> None:
    # Shielded: when the run is cancelled, closing is what tells the model
    # server to stop. The anthropic client's streams iterate through a
    # generator of their own and close their HTTP response with ``close()``,
    # so both the generator and the stream are closed.
    with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
        for closable in (iterator, stream) if iterator is not stream else (stream,):
            close = getattr(closable, "aclose", None) or getattr(closable, "close", None)
            if close is not None:
                closing = close()
                if inspect.isawaitable(closing):
                    await closing


# -- reading the events ----------------------------------------------------------


def _field(value: object, name: str) -> Any:
    # The client builds events without validating them, so a field the
    # server left out is ``None`` (or absent, on other objects).
    return getattr(value, name, None)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MessageStreamError(f"{what} should be text, not {type(value).__name__}: {value!r}")
    return value


def _as_json(value: object, what: str) -> dict[str, Any]:
    """A block or citation as the API's JSON, without the fields it left empty.

    The client builds a block it cannot match to one of its models (a new
    type, a new shape of result) into the nearest one all the same; its
    serializer would warn about it, but the JSON is the API's, unchanged.
    """
    if isinstance(value, Mapping):
        return {key: item for key, item in value.items() if item is not None}
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        result: dict[str, Any] = to_dict(mode="json", exclude_none=True, warnings=False)
        return result
    model_dump = getattr(value, "model_dump", None)
    if model_dump is not None:
        dumped: dict[str, Any] = model_dump(
            mode="json", by_alias=True, exclude_none=True, warnings=False
        )
        return dumped
    raise MessageStreamError(f"{what} should be an object, not {type(value).__name__}")


def _without_encrypted(value: Any) -> Any:
    """``value`` without the opaque ``encrypted_*`` fields, which only the API reads."""
    if isinstance(value, dict):
        return {
            key: _without_encrypted(item)
            for key, item in value.items()
            if not key.startswith("encrypted_")
        }
    if isinstance(value, list):
        return [_without_encrypted(item) for item in value]
    return value


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class _Block:
    """What has arrived of one content block."""

    __slots__ = ("call", "citations", "index", "pieces", "start", "stopped", "type")

    def __init__(self, index: int, block_type: str, start: dict[str, Any]) -> None:
        self.index = index
        self.type = block_type
        self.start = start
        self.pieces: list[str] = []
        self.citations: list[dict[str, Any]] = []
        self.call: ToolCallController | None = None
        self.stopped = False

    def __str__(self) -> str:
        return f"block {self.index} ({self.type})"

    def content(self) -> dict[str, Any]:
        """The block as the API takes it back."""
        block = dict(self.start)
        if self.type == "text":
            block["text"] = "".join(self.pieces)
            if self.citations:
                block["citations"] = [*block.get("citations", ()), *self.citations]
        elif self.type == "thinking":
            block["thinking"] = "".join(self.pieces)
        elif self.type in _TOOL_BLOCKS and self.pieces:
            # Input that is no JSON object (a message cut short by max_tokens)
            # goes back as it started; ToolCall.args names the problem.
            block["input"] = _json_object("".join(self.pieces)) or block.get("input", {})
        return block

    def arguments(self) -> str:
        """A tool call's argument text: the pieces streamed, else the start's input."""
        if self.pieces:
            return "".join(self.pieces)
        return json.dumps(self.start.get("input", {}), ensure_ascii=False)


class _MessageReader:
    """Turns the events of one message into controller calls."""

    __slots__ = (
        "_blocks",
        "_controller",
        "_id",
        "_model",
        "_sources",
        "_stop_reason",
        "_stopped",
        "_usage",
    )

    def __init__(self, controller: RunController) -> None:
        self._controller = controller
        self._id: str | None = None
        self._model = ""
        self._blocks: dict[int, _Block] = {}
        self._sources: set[str] = set()
        self._stop_reason: str | None = None
        self._stopped = False
        self._usage: Any = None

    async def read(self, event: Any) -> None:
        event_type = _field(event, "type")
        if event_type == "message_start":
            self._start(event)
            return
        if event_type == "error":
            error = _field(event, "error")
            raise MessageStreamError(f"the stream sent an error: {_field(error, 'message')}")
        if event_type not in _MESSAGE_EVENTS:
            return  # ping, the client's derived events, and types to come
        if self._id is None or self._stopped:
            where = "before message_start" if self._id is None else "after message_stop"
            raise MessageStreamError(f"the stream sent {event_type} {where}")
        if event_type == "content_block_start":
            await self._start_block(event)
        elif event_type == "content_block_delta":
            self._read_delta(event)
        elif event_type == "content_block_stop":
            self._stop_block(event)
        elif event_type == "message_delta":
            self._read_message_delta(event)
        else:
            self._stop()

    def _start(self, event: Any) -> None:
        if self._id is not None:
            raise MessageStreamError("the stream sent a second message_start")
        message = _field(event, "message")
        self._id = _text(_field(message, "id"), "message_start's message.id")
        self._model = _field(message, "model") or ""
        usage = _field(message, "usage")
        self._usage = usage.model_copy() if hasattr(usage, "model_copy") else usage
        self._controller.add_step_start(self._id)

    def _index(self, event: Any) -> int:
        index = _field(event, "index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise MessageStreamError(f"a {_field(event, 'type')} event has no index")
        return index

    def _open_block(self, index: int, event_name: str) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            raise MessageStreamError(
                f"the stream sent {event_name} for block {index}, which never started"
            )
        if block.stopped:
            raise MessageStreamError(
                f"the stream sent {event_name} for {block}, which had stopped"
            )
        return block

    async def _start_block(self, event: Any) -> None:
        index = self._index(event)
        if index in self._blocks:
            raise MessageStreamError(f"block {index} started twice")
        start = _as_json(_field(event, "content_block"), f"the content_block of block {index}")
        block_type = _text(start.get("type"), f"the type of block {index}")
        block = self._blocks[index] = _Block(index, block_type, start)
        if block_type == "text":
            self._append_text(block, start.get("text", ""))
            for citation in start.get("citations") or ():
                self._cite(citation)
        elif block_type == "thinking":
            self._append_reasoning(block, start.get("thinking", ""))
        elif block_type in _TOOL_BLOCKS:
            block.call = await self._open_call(block)
        elif block_type.endswith("_tool_result") and "tool_use_id" in start:
            self._set_server_result(block)

    def _append_text(self, block: _Block, text: object) -> None:
        text = _text(text, f"the text of {block}")
        if text:
            block.pieces.append(text)
            self._controller.append_text(text)

    def _append_reasoning(self, block: _Block, thinking: object) -> None:
        thinking = _text(thinking, f"the thinking of {block}")
        if thinking:
            block.pieces.append(thinking)
            self._controller.append_reasoning(thinking)

    async def _open_call(self, block: _Block) -> ToolCallController:
        tool_call_id = _text(block.start.get("id"), f"the id of {block}")
        name = _text(block.start.get("name"), f"the name of {block}")
        for other in self._blocks.values():
            if other.call is not None and other.call.tool_call_id == tool_call_id:
                raise MessageStreamError(f"{other} and {block} have the same id {tool_call_id!r}")
        return await self._controller.add_tool_call(name, tool_call_id)

    def _set_server_result(self, block: _Block) -> None:
        """A server tool's result: it closes the call its ``server_tool_use`` opened."""
        tool_call_id = _text(block.start["tool_use_id"], f"the tool_use_id of {block}")
        content = block.start.get("content")
        # An error is an object whose type says so; a result is a list or an object.
        is_error = isinstance(content, dict) and str(content.get("type")).endswith("_error")
        try:
            # Also answers a call an earlier message of the run opened, as a
            # paused turn's continuation may.
            self._controller.add_tool_result(
                tool_call_id, _without_encrypted(content), is_error=is_error
            )
        except ToolCallError as exc:
            raise MessageStreamError(
                f"{block} answers tool call {tool_call_id!r}, which no server_tool_use "
                "block opened, or which has its result already"
            ) from exc

    def _read_delta(self, event: Any) -> None:
        index = self._index(event)
        delta = _field(event, "delta")
        delta_type = _field(delta, "type")
        if delta_type not in _DELTA_BLOCKS:
            return  # a kind of delta to come
        block = self._open_block(index, delta_type)
        expected = _DELTA_BLOCKS[delta_type]
        if block.type != expected and not (expected == "tool_use" and block.type in _TOOL_BLOCKS):
            raise MessageStreamError(
                f"the stream sent {delta_type} for {block}, which is not a {expected} block"
            )
        if delta_type == "text_delta":
            self._append_text(block, _field(delta, "text"))
        elif delta_type == "thinking_delta":
            self._append_reasoning(block, _field(delta, "thinking"))
        elif delta_type == "signature_delta":
            block.start["signature"] = _text(
                _field(delta, "signature"), f"the signature of {block}"
            )
        elif delta_type == "citations_delta":
            citation = _as_json(_field(delta, "citation"), f"a citation of {block}")
            block.citations.append(citation)
            self._cite(citation)
        else:
            piece = _text(_field(delta, "partial_json"), f"the partial_json of {block}")
            if piece:
                block.pieces.append(piece)
                assert block.call is not None
                block.call.append_args_text(piece)

    def _cite(self, citation: Mapping[str, Any]) -> None:
        """A citation of a URL becomes a source, once per URL and message."""
        kind = citation.get("type")
        url = citation.get("source") if kind == "search_result_location" else citation.get("url")
        if not isinstance(url, str) or not url or url in self._sources:
            return
        title = citation.get("title")
        self._controller.add_source(
            f"{self._id}-{len(self._sources)}", url, title if isinstance(title, str) else None
        )
        self._sources.add(url)

    def _stop_block(self, event: Any) -> None:
        block = self._open_block(self._index(event), "content_block_stop")
        block.stopped = True
        if block.type in _TOOL_BLOCKS and not block.pieces:
            # The whole input came with the start, or there is none: the
            # front-end gets it as the call's arguments all the same.
            assert block.call is not None
            block.call.append_args_text(block.arguments())

    def _read_message_delta(self, event: Any) -> None:
        reason = _field(_field(event, "delta"), "stop_reason")
        if reason is not None:
            self._stop_reason = _text(reason, "message_delta's stop_reason")
        usage = _field(event, "usage")
        if usage is None or self._usage is None:
            return
        # Counts are running totals; the optional ones are sent only when known.
        for name in (
            "output_tokens",
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "server_tool_use",
        ):
            value = _field(usage, name)
            if value is not None:
                setattr(self._usage, name, value)

    def _stop(self) -> None:
        for block in self._blocks.values():
            if not block.stopped:
                raise MessageStreamError(f"the message stopped before {block} did")
        self._stopped = True

    def outcome(self) -> MessageOutcome:
        """Finish the step; the stream has ended."""
        if not self._stopped:
            raise MessageStreamError(
                "the stream ended before message_stop: the model server stopped "
                "before the end of the message"
            )
        if self._stop_reason is None:
            raise MessageStreamError("the message stopped without a stop_reason")
        assert self._id is not None
        reason = STOP_REASONS.get(self._stop_reason, "other")
        input_tokens, output_tokens = _token_counts(self._usage)
        self._controller.add_step_finish(
            reason, input_tokens=input_tokens, output_tokens=output_tokens
        )
        blocks = [self._blocks[index] for index in sorted(self._blocks)]
        return MessageOutcome(
            id=self._id,
            model=self._model,
            stop_reason=self._stop_reason,
            finish_reason=reason,
            text="".join(piece for b in blocks if b.type == "text" for piece in b.pieces),
            reasoning="".join(piece for b in blocks if b.type == "thinking" for piece in b.pieces),
            tool_calls=tuple(
                ToolCall(b.start["id"], b.start["name"], b.arguments(), b.call)
                for b in blocks
                if b.type == "tool_use" and b.call is not None
            ),
            content=tuple(block.content() for block in blocks),
            usage=self._usage,
        )


def _token_counts(usage: Any) -> tuple[int, int]:
    """The step's input tokens (read from the cache or not) and output tokens."""
    if usage is None:
        return 0, 0
    read = sum(
        _field(usage, name) or 0
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return int(read), int(_field(usage, "output_tokens") or 0)


# -- the model loop ------------------------------------------------------------


def tool_result_message(tool_calls: Iterable[ToolCall]) -> MessageParam:
    """The user message that answers ``tool_calls``: one ``tool_result`` block each.

    Each call must have its result (``call.controller.response``): a string
    is sent as it is, any other value as its JSON; an error result is sent
    with ``is_error``. Raises ``UsageError`` for a call without one.
    """
    blocks: list[ToolResultBlockParam] = []
    for call in tool_calls:
        response = call.controller.response
        if response is None:
            raise UsageError(
                f"tool call {call.name!r} ({call.id}) has no result to send back: "
                "set it with call.controller.set_response(...) first"
            )
        result = response.result
        if not isinstance(result, str):
            result = encode_checked(result, f"the result of tool call {call.name!r}").decode()
        block: ToolResultBlockParam = {"type": "tool_result", "tool_use_id": call.id}
        if result:
            block["content"] = result
        if response.is_error:
            block["is_error"] = True
        blocks.append(block)
    return {"role": "user", "content": blocks}


async def run_tool_loop(
    controller: RunController,
    client: AsyncAnthropic,
    *,
    model: str,
    messages: Iterable[MessageParam],
    max_tokens: int,
    tool_functions: Mapping[str, ToolFunction],
    max_rounds: int = 8,
    errors_as_result: bool = True,
    **params: Any,
) -> ToolLoopOutcome:
    """Ask the model, run the tools it calls, send the results back; until it answers.

    Each round is one ``run_message`` (``params`` go with every request:
    ``tools``, ``system``…), then the round's ``tool_use`` calls run in
    parallel, each as a task in a sub-stream: ``tool_functions[name](call)``
    with ``call.args`` holding the model's input, as for
    ``RunController.spawn_tool_call``; what it returns is the result. The
    results go back in one user message, and the next round begins.

    The loop ends when the model answers without calling a tool, when a call
    is left without a result (a tool with no function here, whose call stays
    open for the front-end, or a function that closed its call), or after
    ``max_rounds`` requests: the calls of a last round that still asked for
    tools get an error result saying they were not run. A ``pause_turn``
    round (the API paused a long server-side turn) is continued by the next.

    With ``errors_as_result`` (the default) a tool that raises gets the
    exception's message as an error result, which the model reads and can
    act on; without, the run fails. Input that is not a JSON object is an
    error result either way.
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, not {max_rounds}")
    history: list[MessageParam] = list(messages)
    outcomes: list[MessageOutcome] = []
    for round_number in range(1, max_rounds + 1):
        outcome = await run_message(
            controller, client, model=model, messages=history, max_tokens=max_tokens, **params
        )
        outcomes.append(outcome)
        reply = outcome.assistant_message()
        if reply["content"]:
            history.append(reply)
        if outcome.stop_reason == "pause_turn":
            continue
        if not outcome.tool_calls:
            break
        if round_number == max_rounds:
            _refuse(outcome.tool_calls, f"the round limit ({max_rounds}) was reached")
        else:
            await _run_tool_calls(controller, outcome.tool_calls, tool_functions, errors_as_result)
        answered = [call for call in outcome.tool_calls if call.controller.response is not None]
        if answered:
            history.append(tool_result_message(answered))
        if len(answered) < len(outcome.tool_calls):
            break
    return ToolLoopOutcome(tuple(history), tuple(outcomes))


async def _run_tool_calls(
    controller: RunController,
    calls: Iterable[ToolCall],
    tool_functions: Mapping[str, ToolFunction],
    errors_as_result: bool,
) -> None:
    """Run the calls there is a function for, in parallel; wait for them all."""
    async with controller.open_substream() as tasks:
        for call in calls:
            function = tool_functions.get(call.name)
            if function is None:
                continue  # the front-end's to run
            problem = _input_problem(call)
            if problem is not None:
                call.controller.set_response(problem, is_error=True)
                continue
            call.controller.args = call.args
            tasks.start_soon(
                _run_tool,
                call.controller,
                function,
                errors_as_result,
                name=f"trio_stream tool {call.name} {call.id}",
            )


def _input_problem(call: ToolCall) -> str | None:
    """Why a call's input cannot be given to its tool, in words the model can act on."""
    try:
        arguments = call.args
    except ValueError as exc:
        return str(exc)
    if not isinstance(arguments, dict):
        return f"the input of tool call {call.name!r} ({call.id}) is not a JSON object"
    return None


def _refuse(calls: Iterable[ToolCall], why: str) -> None:
    for call in calls:
        if not call.controller.closed:
            call.controller.set_response(f"not run: {why}", is_error=True)
