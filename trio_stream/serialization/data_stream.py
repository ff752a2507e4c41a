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
from ._response import RunResponse

__all__ = ["DataStreamEncoder", "DataStreamResponse"]


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


def _tool_call_begin(chunk: ToolCallBeginChunk) -> bytes:
    value = {"toolCallId": chunk.tool_call_id, "toolName": chunk.tool_name}
    if chunk.parent_id is not None:
        value["parentId"] = chunk.parent_id
    return _line(b"b:", value)


def _tool_call_delta(chunk: ToolCallDeltaChunk) -> bytes:
    return _line(b"c:", {"toolCallId": chunk.tool_call_id, "argsTextDelta": chunk.args_text_delta})


def _tool_result(chunk: ToolResultChunk) -> bytes:
    value: dict[str, Any] = {"toolCallId": chunk.tool_call_id, "result": chunk.result}
    if chunk.artifact is not None:
        value["artifact"] = chunk.artifact
    if chunk.is_error:
        value["isError"] = True
    return _line(b"a:", value)


def _data(chunk: DataChunk) -> bytes:
    return _line(b"2:", [chunk.data])


def _error(chunk: ErrorChunk) -> bytes:
    return _line(b"3:", chunk.error)


def _update_state(chunk: UpdateStateChunk) -> bytes:
    return _line(b"aui-state:", chunk.operations)


def _source(chunk: SourceChunk) -> bytes:
    value = {"sourceType": chunk.source_type, "id": chunk.id, "url": chunk.url}
    if chunk.title is not None:
        value["title"] = chunk.title
    if chunk.parent_id is not None:
        value["parentId"] = chunk.parent_id
    return _line(b"h:", value)


def _file(chunk: FileChunk) -> bytes:
    return _line(b"k:", {"data": chunk.data, "mimeType": chunk.mime_type})


def _annotations(chunk: AnnotationsChunk) -> bytes:
    return _line(b"8:", chunk.annotations)


def _step_start(chunk: StepStartChunk) -> bytes:
    return _line(b"f:", {"messageId": chunk.message_id})


def _step_finish(chunk: StepFinishChunk) -> bytes:
    return _line(
        b"e:",
        {
            "finishReason": chunk.finish_reason,
            "usage": {"inputTokens": chunk.input_tokens, "outputTokens": chunk.output_tokens},
            "isContinued": chunk.is_continued,
        },
    )


_ENCODERS: Mapping[type[Any], Callable[[Any], bytes]] = {
    TextDeltaChunk: _text,
    ReasoningDeltaChunk: _reasoning,
    ToolCallBeginChunk: _tool_call_begin,
    ToolCallDeltaChunk: _tool_call_delta,
    ToolResultChunk: _tool_result,
    DataChunk: _data,
    ErrorChunk: _error,
    UpdateStateChunk: _update_state,
    SourceChunk: _source,
    FileChunk: _file,
    AnnotationsChunk: _annotations,
    StepStartChunk: _step_start,
    StepFinishChunk: _step_finish,
}


class DataStreamEncoder(StreamEncoder):
    """Encodes chunks as assistant-ui data stream lines.

    Every chunk maps to one line, so the encoder keeps no state.
    """

    media_type: ClassVar[str] = "text/plain; charset=utf-8"
    headers: ClassVar[Mapping[str, str]] = {"x-vercel-ai-data-stream": "v1"}
    keepalive: ClassVar[bytes] = b"\n"

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        encoders = _ENCODERS
        return b"".join([encoders[type(chunk)](chunk) for chunk in chunks])


class DataStreamResponse(RunResponse):
    """A run streamed as the assistant-ui data stream (``text/plain``).

    Heartbeats are off by default; when on, a blank line goes out after
    each ``heartbeat`` seconds of silence.
    """

    encoder_class = DataStreamEncoder
    default_heartbeat = False
