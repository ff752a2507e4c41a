"""The assistant-ui data stream: one ``code:json`` line per chunk.

This is the AI SDK 4 data stream protocol with assistant-ui's ``aui-*``
extensions, read by assistant-ui's data stream runtime (the npm package
``assistant-stream``'s ``DataStreamDecoder``). Each line is a type code, a
colon, a JSON value and a newline: ``0:"Hello"`` for text, ``b:``/``c:``/``a:``
for a tool call's start, argument deltas and result, ``3:"message"`` for an
error. A blank line is a keep-alive that decoders skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from .._json import encode
from ..chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from ._encoder import StreamEncoder
from ._message import (
    MessageOutcome,
    ToolArguments,
    open_tool_call,
    start_tool_call,
    with_parent_id,
)

__all__ = ["DataStreamEncoder"]


def _line(code: bytes, value: Any) -> bytes:
    return code + encode(value) + b"\n"


def _text(chunk: TextDeltaChunk) -> bytes:
    if chunk.parent_id is None:
        return b"0:" + encode(chunk.text_delta) + b"\n"
    return _line(b"aui-text-delta:", {"textDelta": chunk.text_delta, "parentId": chunk.parent_id})


def _reasoning(chunk: ReasoningDeltaChunk) -> bytes:
    if chunk.parent_id is None:
        return b"g:" + encode(chunk.reasoning_delta) + b"\n"
    return _line(
        b"aui-reasoning-delta:",
        {"reasoningDelta": chunk.reasoning_delta, "parentId": chunk.parent_id},
    )


def _data(chunk: DataChunk) -> bytes:
    if chunk.name is None:
        return _line(b"2:", [chunk.data])
    value = {"name": chunk.name, "data": chunk.data}
    return _line(b"aui-data:", with_parent_id(value, chunk.parent_id))


def _update_state(chunk: UpdateStateChunk) -> bytes:
    return _line(b"aui-state:", chunk.operations)


def _source(chunk: SourceChunk) -> bytes:
    value = {"sourceType": chunk.source_type, "id": chunk.id, "url": chunk.url}
    if chunk.title is not None:
        value["title"] = chunk.title
    return _line(b"h:", with_parent_id(value, chunk.parent_id))


def _file(chunk: FileChunk) -> bytes:
    value = {"data": chunk.data, "mimeType": chunk.mime_type}
    return _line(b"k:", with_parent_id(value, chunk.parent_id))


def _annotations(chunk: AnnotationsChunk) -> bytes:
    return _line(b"8:", chunk.annotations)


def _step_start(chunk: StepStartChunk) -> bytes:
    return _line(b"f:", {"messageId": chunk.message_id})


# Chunks whose line depends on nothing but the chunk.
_STATELESS: Mapping[type[Any], Callable[[Any], bytes]] = {
    TextDeltaChunk: _text,
    ReasoningDeltaChunk: _reasoning,
    DataChunk: _data,
    UpdateStateChunk: _update_state,
    SourceChunk: _source,
    FileChunk: _file,
    AnnotationsChunk: _annotations,
    StepStartChunk: _step_start,
}


class DataStreamEncoder(StreamEncoder):
    """Encodes chunks as assistant-ui data stream lines, one line per chunk.

    A tool call's argument delta that completes its JSON is marked
    ``isFinal``; the body ends with a ``d:`` line giving the message's finish
    reason and usage, except after an error, whose ``3:`` line already ends
    the message for the client.
    """

    media_type: ClassVar[str] = "text/plain; charset=utf-8"
    headers: ClassVar[Mapping[str, str]] = {"x-vercel-ai-data-stream": "v1"}
    keepalive: ClassVar[bytes] = b"\n"

    def __init__(self) -> None:
        self._tool_calls: dict[str, ToolArguments] = {}
        self._outcome = MessageOutcome()

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        stateless = _STATELESS
        lines = []
        for chunk in chunks:
            line = stateless.get(type(chunk))
            lines.append(line(chunk) if line is not None else self._encode_stateful(chunk))
        return b"".join(lines)

    def finish(self) -> bytes:
        outcome = self._outcome
        if outcome.failed:
            return b""
        reason = outcome.finish_reason(pending_tool_calls=bool(self._tool_calls))
        return _line(b"d:", {"finishReason": reason, "usage": outcome.usage})

    def _encode_stateful(self, chunk: Chunk) -> bytes:
        match chunk:
            case ToolCallBeginChunk():
                start_tool_call(self._tool_calls, chunk.tool_call_id, ToolArguments())
                begin = {"toolCallId": chunk.tool_call_id, "toolName": chunk.tool_name}
                return _line(b"b:", with_parent_id(begin, chunk.parent_id))
            case ToolCallDeltaChunk():
                delta: dict[str, Any] = {
                    "toolCallId": chunk.tool_call_id,
                    "argsTextDelta": chunk.args_text_delta,
                }
                call = open_tool_call(self._tool_calls, chunk.tool_call_id)
                if call.add(chunk.args_text_delta):
                    delta["isFinal"] = True
                return _line(b"c:", delta)
            case ToolResultChunk():
                open_tool_call(self._tool_calls, chunk.tool_call_id)
                del self._tool_calls[chunk.tool_call_id]
                result: dict[str, Any] = {"toolCallId": chunk.tool_call_id, "result": chunk.result}
                if chunk.artifact is not None:
                    result["artifact"] = chunk.artifact
                if chunk.is_error:
                    result["isError"] = True
                return _line(b"a:", result)
            case ErrorChunk():
                self._outcome.failed = True
                return _line(b"3:", chunk.error)
            case StepFinishChunk():
                self._outcome.step_finished(chunk)
                return _line(
                    b"e:",
                    {
                        "finishReason": chunk.finish_reason,
                        "usage": {
                            "inputTokens": chunk.input_tokens,
                            "outputTokens": chunk.output_tokens,
                        },
                        "isContinued": chunk.is_continued,
                    },
                )
        raise TypeError(f"not a chunk: {chunk!r}")
