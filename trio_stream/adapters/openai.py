"""A chat completion streamed by an OpenAI-compatible server, piped into a run.

Most runs begin by asking a model, and the model's answer should reach the
front-end as it is generated: text, reasoning, and tool calls whose
arguments stream in. ``stream_chat_completion`` reads the
``chat.completion.chunk`` objects of the official ``openai`` client (or any
async iterable of them) and writes each piece through a controller as it
arrives; ``run_chat_completion`` also makes the request.

The adapter translates; it decides nothing. It does not run the tools the
model asks for: it returns them, with their controllers still open, so that
the caller runs them (in parallel, in a sub-stream, through its own
permission checks) and sets their results. A call left without a result
stays pending, and the wire formats then finish the message with
``tool-calls``, which is what a front-end that runs tools itself expects.

Streaming ``tool_calls`` is the subtle part. Each call is numbered by an
``index``; its ``id`` and function ``name`` normally come with its first
piece, and its argument text follows in pieces, interleaved with those of
the other calls. Servers differ, though: some repeat the id on every piece,
some send an argument piece before the name. A call is therefore opened
(one ``add_tool_call``) as soon as both its id and its name are known, and
argument text that came earlier is held until then. A stream the adapter
cannot read as one message (a tool call that never gets an id, a second
choice, no finish reason) raises ``ChatCompletionStreamError``, naming what
is wrong, rather than guessing.

Errors and cancellation are the run's own: an ``openai.APIError`` raised
while connecting or mid-stream propagates, so the run fails and the
front-end receives an error chunk; when the run is cancelled (the client
went away), the stream is closed, which aborts the HTTP request, and the
model server stops generating.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._controller import RunController, ToolCallController
from .._errors import TrioStreamError
from ..chunks import FinishReason

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types import CompletionUsage
    from openai.types.chat import (
        ChatCompletionAssistantMessageParam,
        ChatCompletionChunk,
        ChatCompletionMessageParam,
        ChatCompletionStreamOptionsParam,
    )
    from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall

__all__ = [
    "FINISH_REASONS",
    "ChatCompletionOutcome",
    "ChatCompletionStreamError",
    "ToolCall",
    "run_chat_completion",
    "stream_chat_completion",
]

FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
    "function_call": "tool-calls",
}
"""OpenAI's finish reasons, as a step's; any other a server sends is ``other``."""

_REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where servers put reasoning, outside the OpenAI schema: DeepSeek and vLLM use
``reasoning_content``, OpenRouter, Groq and newer vLLM ``reasoning``."""

_CLOSE_TIMEOUT = 5.0
"""Seconds that closing the HTTP response may take, cancelled or not."""


class ChatCompletionStreamError(TrioStreamError, ValueError):
    """The stream cannot be read as one assistant message; the text says why."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for.

    ``arguments`` is the JSON text the model wrote, ``args`` its value.
    ``controller`` is the call's open ``ToolCallController``: set the
    result with ``call.controller.set_response(...)``, or leave it unset
    for the front-end to handle.
    """

    id: str
    name: str
    arguments: str
    controller: ToolCallController

    @property
    def args(self) -> Any:
        """The arguments, parsed; ``{}`` when the model sent none.

        Models sometimes write invalid JSON: that raises ``ValueError`` naming
        the call, which a caller may send back to the model as the result.
        """
        if not self.arguments.strip():
            return {}
        try:
            return json.loads(self.arguments)
        except ValueError as exc:
            raise ValueError(
                f"the arguments of tool call {self.name!r} ({self.id}) are not JSON: {exc}"
            ) from None


@dataclass(frozen=True, slots=True)
class ChatCompletionOutcome:
    """How the model's message ended, and what it asked for.

    ``finish_reason`` is the step's (mapped as in ``FINISH_REASONS``);
    ``usage`` is the server's last usage report, if it sent one.
    """

    id: str
    model: str
    finish_reason: FinishReason
    text: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    usage: CompletionUsage | None

    def assistant_message(self) -> ChatCompletionAssistantMessageParam:
        """The message to append to ``messages`` before asking the model again.

        Reasoning is left out, as the APIs that send it ask.
        """
        message: ChatCompletionAssistantMessageParam = {
            "role": "assistant",
            "content": self.text or None,
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


async def run_chat_completion(
    controller: RunController,
    client: AsyncOpenAI,
    *,
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    stream_options: ChatCompletionStreamOptionsParam | None = None,
    **params: Any,
) -> ChatCompletionOutcome:
    """Ask ``client`` for a streamed chat completion and pipe it into ``controller``.

    ``params`` go to ``client.chat.completions.create`` as they are
    (``tools``, ``temperature``…). ``stream_options`` adds to
    ``{"include_usage": True}``, which makes the server report the step's
    tokens (a server that rejects it needs ``{"include_usage": False}``). Whatever fails
    (``openai.APIConnectionError`` when the server is down, ``APIError`` on
    an error status or mid-stream) propagates with a note naming the server
    and the model; the note is for logs, the error chunk keeps the message
    alone.
    """
    options: ChatCompletionStreamOptionsParam = {"include_usage": True}
    if stream_options:
        options.update(stream_options)
    try:
        stream = await client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options=options, **params
        )
        return await stream_chat_completion(controller, stream)
    except Exception as exc:
        exc.add_note(f"while streaming a chat completion of {model!r} from {client.base_url}")
        raise


async def stream_chat_completion(
    controller: RunController, stream: AsyncIterable[ChatCompletionChunk]
) -> ChatCompletionOutcome:
    """Write a streamed chat completion through ``controller``, piece by piece.

    The step starts (``add_step_start`` with the completion's id) at the first
    chunk and finishes (``add_step_finish`` with the finish reason and the
    usage) after the last. Returns the outcome, once the stream has ended.

    The stream is closed however this returns: at its end, on an error, or
    when the run is cancelled, which aborts the request to the model server.
    """
    reader = _MessageReader(controller)
    iterator = aiter(stream)
    try:
        async for chunk in iterator:
            await reader.read(chunk)
            # Bound what a fast model can queue ahead of a slow client.
            await controller.drain()
    finally:
        await _close(stream, iterator)
    return reader.outcome()


async def _close(stream: object, iterator: AsyncIterator[object]) -> None:
    # Shielded: when the run is cancelled, closing is what tells the model
    # server to stop, and a cancelled await would skip it. The openai
    # client's ``AsyncStream`` iterates through a generator of its own, so
    # both it and the stream (which owns the HTTP response) are closed.
    with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
        for closable in (iterator, stream) if iterator is not stream else (stream,):
            aclose = getattr(closable, "aclose", None)
            if aclose is not None:
                await aclose()


class _ToolCallPieces:
    """What has arrived of the tool call at one index."""

    __slots__ = ("arguments", "controller", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        self.controller: ToolCallController | None = None


class _MessageReader:
    """Turns the chunks of one completion into controller calls."""

    __slots__ = (
        "_calls",
        "_controller",
        "_finish_reason",
        "_id",
        "_model",
        "_reasoning",
        "_text",
        "_usage",
    )

    def __init__(self, controller: RunController) -> None:
        self._controller = controller
        self._id: str | None = None
        self._model = ""
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _ToolCallPieces] = {}
        self._finish_reason: str | None = None
        self._usage: CompletionUsage | None = None

    async def read(self, chunk: ChatCompletionChunk) -> None:
        if self._id is None:
            self._id = chunk.id or ""
            self._model = chunk.model or ""
            self._controller.add_step_start(chunk.id or None)
        if chunk.usage is not None:
            self._usage = chunk.usage  # some servers report it on every chunk
        for choice in chunk.choices or ():
            if choice.index != 0:
                raise ChatCompletionStreamError(
                    f"the stream has a choice {choice.index}: a run streams one message, "
                    "so ask for one choice (n=1)"
                )
            if choice.delta is not None:
                await self._read_delta(choice.delta)
            if choice.finish_reason is not None:
                self._finish_reason = choice.finish_reason

    async def _read_delta(self, delta: ChoiceDelta) -> None:
        controller = self._controller
        reasoning = _reasoning(delta)
        if reasoning:
            self._reasoning.append(reasoning)
            controller.append_reasoning(reasoning)
        # A refusal is the answer the user gets: shown as text.
        for text in (delta.content, delta.refusal):
            if text:
                self._text.append(text)
                controller.append_text(text)
        if delta.function_call is not None:
            raise ChatCompletionStreamError(
                "the stream calls a function the deprecated way (delta.function_call): "
                "pass tools=[...] rather than functions=[...]"
            )
        for piece in delta.tool_calls or ():
            await self._read_tool_call(piece)

    async def _read_tool_call(self, piece: ChoiceDeltaToolCall) -> None:
        index = piece.index
        if not isinstance(index, int) or isinstance(index, bool):
            raise ChatCompletionStreamError(f"a tool call piece has no index: {piece!r}")
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _ToolCallPieces()
        if piece.id:
            if call.id is None:
                self._check_new_id(index, piece.id)
                call.id = piece.id
            elif piece.id != call.id:
                raise ChatCompletionStreamError(
                    f"tool call {index} changed its id from {call.id!r} to {piece.id!r}"
                )
        function = piece.function
        if function is None:
            return
        if function.name:
            if call.name is None:
                call.name = function.name
            elif function.name != call.name:
                raise ChatCompletionStreamError(
                    f"tool call {index} changed its name from {call.name!r} to {function.name!r}"
                )
        if function.arguments:
            call.arguments.append(function.arguments)
            if call.controller is not None:
                call.controller.append_args_text(function.arguments)
        if call.controller is None and call.id is not None and call.name is not None:
            call.controller = await self._controller.add_tool_call(call.name, call.id)
            if call.arguments:
                # What arrived before the call could be opened, in one piece.
                call.controller.append_args_text("".join(call.arguments))

    def _check_new_id(self, index: int, tool_call_id: str) -> None:
        for other_index, other in self._calls.items():
            if other.id == tool_call_id:
                raise ChatCompletionStreamError(
                    f"tool calls {other_index} and {index} have the same id {tool_call_id!r}"
                )

    def outcome(self) -> ChatCompletionOutcome:
        """Finish the step; the stream has ended."""
        if self._id is None or self._finish_reason is None:
            raise ChatCompletionStreamError(
                "the stream ended without a finish reason: the model server stopped "
                "before the end of the message"
            )
        calls = []
        for index, call in sorted(self._calls.items()):
            if call.controller is None:
                missing = " or ".join(
                    what
                    for what, value in (("an id", call.id), ("a function name", call.name))
                    if value is None
                )
                raise ChatCompletionStreamError(f"tool call {index} never got {missing}")
            assert call.id is not None
            assert call.name is not None
            calls.append(ToolCall(call.id, call.name, "".join(call.arguments), call.controller))
        reason = FINISH_REASONS.get(self._finish_reason, "other")
        usage = self._usage
        self._controller.add_step_finish(
            reason,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
        )
        return ChatCompletionOutcome(
            id=self._id,
            model=self._model,
            finish_reason=reason,
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=tuple(calls),
            usage=usage,
        )


def _reasoning(delta: ChoiceDelta) -> str | None:
    # Extra fields of the client's models are attributes. Servers in
    # transition send both names with the same text: the first one wins.
    for field in _REASONING_FIELDS:
        value = getattr(delta, field, None)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ChatCompletionStreamError(
                f"delta.{field} should be text, not {type(value).__name__}: {value!r}"
            )
        return value
    return None
