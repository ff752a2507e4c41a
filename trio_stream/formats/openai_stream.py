"""The OpenAI chat completions stream: ``chat.completion.chunk`` events.

What an OpenAI-compatible client (the official ``openai`` SDKs, LangChain,
anything that talks to ``/v1/chat/completions`` with ``stream=True``) reads:
server-sent events whose ``choices[0].delta`` carries the assistant's text
(``content``), its reasoning (``reasoning_content``, as DeepSeek and vLLM
send it) and its tool calls, each numbered by ``index``, with its ``id``,
function name and argument text streamed in pieces. A last chunk carries the
``finish_reason``: ``tool_calls`` when the message called tools, ``length``
or ``content_filter`` when the run's last step finished so, else ``stop``;
then an optional usage chunk, then ``data: [DONE]``.

The format describes one assistant message, as a model produces it. What a
run adds beyond that has no place in it and is not sent: tool results, the
chunks of sub-streams (anything with a parent id), state, sources, files,
data, annotations, reasoning summaries and the end of a call's arguments
(only the text a ``tool-call-args-text-finish`` carries is sent). An error
becomes an event with an ``error`` object, as OpenAI sends it, on which the
``openai`` client raises ``APIError``.

``OpenAIStreamDecoder`` reads such a body back into chunks: ours, and those
of OpenAI and of the servers that imitate it (vLLM, DeepSeek, OpenRouter,
Ollama and others), with the differences between them that it tolerates
documented on the class.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec

from .._errors import DecodeError
from .._ids import random_id
from .._json import encode
from ..chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    FinishReason,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from . import _sse
from ._decoder import StreamDecoder
from ._encoder import FORMAT_HEADER, StreamEncoder
from ._message import MessageOutcome, not_a_chunk

__all__ = ["OpenAIStreamDecoder", "OpenAIStreamEncoder"]

_FINISH_REASONS = {"length": "length", "content-filter": "content_filter"}


class OpenAIStreamEncoder(StreamEncoder):
    """Encodes chunks as OpenAI ``chat.completion.chunk`` events.

    ``model`` is reported in every chunk; ``include_usage`` adds the usage
    chunk a client asks for with ``stream_options={"include_usage": True}``,
    with the token counts summed over the run's ``step-finish`` chunks.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = {**_sse.HEADERS, FORMAT_HEADER: "openai-stream"}
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model: str = "trio-stream",
        include_usage: bool = False,
        system_fingerprint: str | None = None,
    ) -> None:
        self.id = random_id("chatcmpl-")
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        header = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "system_fingerprint": system_fingerprint,
        }
        # Every event but the usage one is this prefix, a delta, this suffix.
        self._prefix = b"data: " + encode(header)[:-1] + b',"choices":[{"index":0,"delta":'
        self._finish_reason_key = b',"logprobs":null,"finish_reason":'
        self._suffix = self._finish_reason_key + b"null}]}\n\n"
        self._tool_indices: dict[str, int] = {}
        self._tool_calls = 0
        self._role_sent = False
        self._outcome = MessageOutcome()

    def _delta(self, delta: dict[str, Any]) -> bytes:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return self._prefix + encode(delta) + self._suffix

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        return b"".join([self._encode_one(chunk) for chunk in chunks])

    def _arguments(self, tool_call_id: str, text: str) -> bytes:
        index = self._tool_indices.get(tool_call_id)
        if index is None:  # a call made inside a sub-stream
            return b""
        call = {"index": index, "function": {"arguments": text}}
        return self._delta({"tool_calls": [call]})

    def _encode_one(self, chunk: Chunk) -> bytes:
        match chunk:
            case TextDeltaChunk(parent_id=None):
                return self._delta({"content": chunk.text_delta})
            case ReasoningDeltaChunk(parent_id=None):
                return self._delta({"reasoning_content": chunk.reasoning_delta})
            case ToolCallBeginChunk(parent_id=None):
                # Every call gets an index of its own, even one that reuses an
                # id: its argument deltas then go to the latest call of that id.
                index = self._tool_indices[chunk.tool_call_id] = self._tool_calls
                self._tool_calls += 1
                call = {
                    "index": index,
                    "id": chunk.tool_call_id,
                    "type": "function",
                    "function": {"name": chunk.tool_name, "arguments": ""},
                }
                return self._delta({"tool_calls": [call]})
            case ToolCallDeltaChunk():
                return self._arguments(chunk.tool_call_id, chunk.args_text_delta)
            case ToolCallArgsTextFinishChunk():
                # The format has no end of a call's arguments (the message's
                # end is theirs): only the finish's text is sent.
                text = chunk.args_text_delta
                return self._arguments(chunk.tool_call_id, text) if text else b""
            case StepFinishChunk():
                self._outcome.step_finished(chunk)
                return b""
            case ErrorChunk():
                self._outcome.failed = True
                return _sse.event(
                    {"error": {"message": chunk.error, "type": "server_error", "code": None}}
                )
            case (
                # Chunks of sub-streams, and what a chat completion has no place for.
                TextDeltaChunk()
                | ReasoningDeltaChunk()
                | ReasoningPartStartChunk()
                | ToolCallBeginChunk()
                | ToolResultChunk()
                | DataChunk()
                | UpdateStateChunk()
                | SourceChunk()
                | FileChunk()
                | AnnotationsChunk()
                | StepStartChunk()
            ):
                return b""
            case _:
                return not_a_chunk(chunk)

    def finish(self) -> bytes:
        outcome = self._outcome
        if outcome.failed:
            return _sse.DONE
        # A last step cut short says so; otherwise a message that called tools
        # ends with them.
        reason = _FINISH_REASONS.get(outcome.last_step_reason or "")
        if reason is None:
            reason = "tool_calls" if self._tool_indices else "stop"
        delta = b"{}" if self._role_sent else b'{"role":"assistant"}'
        last = self._prefix + delta + self._finish_reason_key + encode(reason) + b"}]}\n\n"
        if not self.include_usage:
            return last + _sse.DONE
        usage = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {
                "prompt_tokens": outcome.input_tokens,
                "completion_tokens": outcome.output_tokens,
                "total_tokens": outcome.input_tokens + outcome.output_tokens,
            },
        }
        return last + _sse.event(usage) + _sse.DONE


class OpenAIStreamDecoder(StreamDecoder):
    """Reads an OpenAI chat completions stream back into chunks.

    It reads one assistant message, as ``choices[0]`` carries it:

    - ``content`` becomes ``TextDeltaChunk``s, and so does ``refusal``: a
      refusal is what the model says instead of an answer, to be shown like
      one. Reasoning becomes ``ReasoningDeltaChunk``s, from
      ``reasoning_content`` (DeepSeek, older vLLM) or else ``reasoning``
      (vLLM since 0.19.1, OpenRouter, Ollama, Groq); a delta with both, as
      some servers send for either kind of client, counts once. Empty
      deltas add nothing and give no chunk.
    - A tool call starts with the delta that carries its ``id``, which must
      also carry its function name: a ``ToolCallBeginChunk``, followed by a
      ``ToolCallDeltaChunk`` if it brings argument text already. Later
      deltas at its ``index`` carry more of its arguments, whether they
      repeat its id or not. A new id at an index already used starts a new
      call there, as servers that number every call 0 send them; a delta
      without an ``index`` (Gemini's compatible API) belongs to the last
      call that came without one. A legacy ``function_call`` delta is a tool
      call with the id ``function_call``.
    - The ``finish_reason`` and the ``usage`` (from the usage chunk, or the
      ``usage`` field of any chunk: the last one counts) become one
      ``StepFinishChunk``, at ``data: [DONE]``: only there is it certain
      that no usage chunk follows. ``stop``, ``length`` and
      ``content_filter`` keep their meaning, ``tool_calls`` and
      ``function_call`` become ``tool-calls``, any other reason ``other``,
      and usage without a reason ``unknown``. A body with neither has no
      ``StepFinishChunk``.
    - An ``error`` event becomes an ``ErrorChunk`` with the error's
      ``message``, and decoding goes on.

    The ``[DONE]`` event must end the body: without it the body was cut
    short, and ``close`` raises ``DecodeError``, unless an error event
    explained the end (servers differ on sending ``[DONE]`` after an
    error). The ``openai`` client stops at the end of the body either way,
    so it cannot tell a finished stream from a dropped one.

    Choices other than 0 (a request with ``n`` > 1) raise ``DecodeError``:
    their messages cannot be told apart in chunks. What a chunk has no field
    for is skipped: ``role``, ``audio``, ``logprobs``, the response's ``id``,
    ``model`` and ``created``, and anything a server adds.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE

    def __init__(self) -> None:
        self._events = _sse.EventParser()
        self._size = 0
        self._tool_calls = _ToolCalls()
        self._finish_reason: str | None = None
        self._usage: _Usage | None = None
        self._failed = False
        self._ended = False  # by ``[DONE]``, or by ``close`` after an error

    def feed(self, data: bytes) -> list[Chunk]:
        self._size += len(data)
        chunks: list[Chunk] = []
        for event in self._events.feed(data):
            self._read(event, chunks)
        return chunks

    def close(self) -> list[Chunk]:
        self._events.close()
        if self._ended:
            return []
        if not self._failed:
            raise DecodeError(self._size, "the body ends before data: [DONE]: it was cut short")
        self._ended = True
        return self._step_finish()

    def _read(self, event: _sse.Event, chunks: list[Chunk]) -> None:
        if self._ended:
            raise DecodeError(event.offset, "expected the body to end after data: [DONE]")
        if event.data == "[DONE]":
            self._ended = True
            chunks.extend(self._step_finish())
            return
        value = _parse(event)
        if value.error is not None:
            self._failed = True
            chunks.append(ErrorChunk(_error_message(value.error)))
            return
        if value.usage is not None:
            self._usage = value.usage
        for choice in value.choices or ():
            if choice.index != 0:
                raise DecodeError(
                    event.offset,
                    f"expected choice 0 only, not choice {choice.index}: a request with n > 1"
                    " streams several messages, and chunks carry one",
                )
            if choice.finish_reason is not None:
                self._finish_reason = choice.finish_reason
            if choice.delta is not None:
                self._read_delta(choice.delta, event.offset, chunks)

    def _read_delta(self, delta: _Delta, offset: int, chunks: list[Chunk]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            chunks.append(ReasoningDeltaChunk(reasoning))
        if delta.content:
            chunks.append(TextDeltaChunk(delta.content))
        if delta.refusal:
            chunks.append(TextDeltaChunk(delta.refusal))
        calls = self._tool_calls
        if delta.function_call is not None:
            named = delta.function_call.name is not None
            call_id = _FUNCTION_CALL if named else None
            calls.read(_FUNCTION_CALL, call_id, delta.function_call, offset, chunks)
        for call in delta.tool_calls or ():
            calls.read(call.index, call.id, call.function, offset, chunks)

    def _step_finish(self) -> list[Chunk]:
        reason, usage = self._finish_reason, self._usage
        if reason is None and usage is None:
            return []
        usage = usage or _Usage()
        return [
            StepFinishChunk(
                "unknown" if reason is None else _CHUNK_FINISH_REASONS.get(reason, "other"),
                usage.prompt_tokens or 0,
                usage.completion_tokens or 0,
            )
        ]


_CHUNK_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
}
"""The finish reasons of the wire, as chunks spell them."""

_FUNCTION_CALL = "function_call"
"""The id, and the index, of a legacy ``function_call``: a message has one at most."""


# What the decoder reads of an event, as msgspec structs: decoding checks the
# types of these fields (content is a string, an index an integer) and skips
# every other field, so that what servers add costs nothing.


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None
    function_call: _Function | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Event(msgspec.Struct):
    """A ``chat.completion.chunk``, or an error event."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None


_decode_event = msgspec.json.Decoder(_Event).decode


def _parse(event: _sse.Event) -> _Event:
    try:
        return _decode_event(event.data)
    except msgspec.ValidationError as exc:
        raise DecodeError(event.offset, f"expected a chat.completion.chunk: {exc}") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise DecodeError(
            event.offset, f"expected a chat.completion.chunk as JSON: {exc}"
        ) from None


def _error_message(error: Any) -> str:
    """What an error event says: its ``message``, else the error itself as text."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return encode(error).decode()


_Index = int | str | None
"""Where a tool call is on the wire: its ``index``, ``None`` without one, or ``_FUNCTION_CALL``."""


class _ToolCalls:
    """The message's tool calls, by where their deltas put them."""

    __slots__ = ("_at", "_ids")

    def __init__(self) -> None:
        self._at: dict[_Index, str] = {}  # the id of the latest call at each index
        self._ids: set[str] = set()

    def read(
        self,
        index: _Index,
        call_id: str | None,
        function: _Function | None,
        offset: int,
        chunks: list[Chunk],
    ) -> None:
        """Read one delta of the call at ``index``, whose ``id`` is ``call_id`` if it says."""
        function = function or _Function()
        current = self._at.get(index)
        if call_id is not None and call_id != current:
            current = self._begin(index, call_id, function.name, offset, chunks)
        elif current is None:
            raise DecodeError(
                offset, f"{_where(index)} continues no call: expected {_first(index)}"
            )
        if function.arguments:
            chunks.append(ToolCallDeltaChunk(current, function.arguments))

    def _begin(
        self, index: _Index, call_id: str, name: str | None, offset: int, chunks: list[Chunk]
    ) -> str:
        if name is None:
            raise DecodeError(
                offset, f"{_where(index)} has no function name: expected {_first(index)}"
            )
        if call_id in self._ids:
            raise DecodeError(
                offset, f"{_where(index)} starts a call with the id {call_id!r} of an earlier one"
            )
        self._ids.add(call_id)
        self._at[index] = call_id
        chunks.append(ToolCallBeginChunk(call_id, name))
        return call_id


def _where(index: _Index) -> str:
    if index == _FUNCTION_CALL:
        return "a function_call delta"
    if index is None:
        return "a tool call delta without an index"
    return f"a tool call delta at index {index}"


def _first(index: _Index) -> str:
    if index == _FUNCTION_CALL:
        return "the call's first delta, with the function name"
    return "the call's first delta, with its id and function name"
