"""The assistant transport: server-sent events, one JSON event per chunk.

The format of assistant-ui's assistant transport runtime (the npm package
``assistant-stream``'s ``AssistantTransportDecoder`` feeding its
``AssistantMessageAccumulator``). A message is a tree of content parts, each
addressed by a ``path`` of indices. ``part-start`` appends a part (its index
is the count of parts started before it), ``text-delta`` streams text or a
tool call's argument text into the part at ``path``, ``result`` completes a
tool call, and ``part-finish`` closes a part. State updates, errors, data,
annotations and steps concern the whole message and have no path. The stream
ends with ``data: [DONE]``.

Text is grouped into parts per producer: each sub-stream (each parent id)
keeps its own open text part, so parallel sub-streams do not split one
another's text into fragments. Anything else a producer adds (a tool call, a
source, a file, or text of the other kind) closes its open text part, so its
text before and after stays in order around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

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
from . import _sse
from ._encoder import StreamEncoder
from ._message import (
    MessageOutcome,
    OpenText,
    ToolArguments,
    not_a_chunk,
    open_tool_call,
    start_tool_call,
    with_parent_id,
)

__all__ = ["AssistantTransportEncoder"]

Path = list[int]


class _ToolPart:
    __slots__ = ("arguments", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arguments = ToolArguments()


class AssistantTransportEncoder(StreamEncoder):
    """Encodes chunks as assistant transport events."""

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = _sse.HEADERS
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(self) -> None:
        self._parts = 0
        self._text: OpenText[Path] = OpenText()
        self._tool_parts: dict[str, _ToolPart] = {}
        self._outcome = MessageOutcome()

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            self._translate(chunk, events)
        return _sse.events(events)

    def finish(self) -> bytes:
        events: list[dict[str, Any]] = []
        self._close_all_text(events)
        pending = bool(self._tool_parts)
        for tool_call_id in list(self._tool_parts):
            self._close_tool(tool_call_id, events)
        outcome = self._outcome
        if not outcome.failed:
            # After an error the client already shows the message as failed.
            reason = outcome.finish_reason(pending_tool_calls=pending)
            events.append(
                {"type": "message-finish", "finishReason": reason, "usage": outcome.usage}
            )
        return _sse.events(events) + _sse.DONE

    # -- parts -------------------------------------------------------------

    def _start_part(self, part: dict[str, Any], parent_id: str | None, events: list[Any]) -> Path:
        events.append({"type": "part-start", "part": with_parent_id(part, parent_id), "path": []})
        path = [self._parts]
        self._parts += 1
        return path

    def _close_text(self, parent_id: str | None, events: list[Any]) -> None:
        closed = self._text.close(parent_id)
        if closed is not None:
            events.append({"type": "part-finish", "path": closed[1]})

    def _close_all_text(self, events: list[Any]) -> None:
        events.extend({"type": "part-finish", "path": path} for _, path in self._text.close_all())

    def _finish_arguments(self, tool: _ToolPart, events: list[Any]) -> None:
        if tool.arguments.empty:
            # The accumulator parses the argument text; an empty one is not JSON.
            events.append({"type": "text-delta", "textDelta": "{}", "path": tool.path})
        events.append({"type": "tool-call-args-text-finish", "path": tool.path})

    def _close_tool(
        self, tool_call_id: str, events: list[Any], result: dict[str, Any] | None = None
    ) -> None:
        # The arguments end before the result: a client reads a call's
        # arguments as final once it has its result.
        tool = self._tool_parts.pop(tool_call_id)
        if not tool.arguments.complete:
            self._finish_arguments(tool, events)
        if result is not None:
            events.append(result)
        events.append({"type": "part-finish", "path": tool.path})

    def _text_delta(self, kind: str, text: str, parent_id: str | None, events: list[Any]) -> None:
        path = self._text.find(parent_id, kind)
        if path is None:
            self._close_text(parent_id, events)
            path = self._start_part({"type": kind}, parent_id, events)
            self._text.open(parent_id, kind, path)
        events.append({"type": "text-delta", "textDelta": text, "path": path})

    def _whole_part(self, part: dict[str, Any], parent_id: str | None, events: list[Any]) -> None:
        self._close_text(parent_id, events)
        path = self._start_part(part, parent_id, events)
        events.append({"type": "part-finish", "path": path})

    # -- chunks ------------------------------------------------------------

    def _translate(self, chunk: Chunk, events: list[dict[str, Any]]) -> None:
        match chunk:
            case TextDeltaChunk():
                self._text_delta("text", chunk.text_delta, chunk.parent_id, events)
            case ReasoningDeltaChunk():
                self._text_delta("reasoning", chunk.reasoning_delta, chunk.parent_id, events)
            case ToolCallBeginChunk():
                self._close_text(chunk.parent_id, events)
                part = {
                    "type": "tool-call",
                    "toolCallId": chunk.tool_call_id,
                    "toolName": chunk.tool_name,
                }
                tool = _ToolPart(self._start_part(part, chunk.parent_id, events))
                start_tool_call(self._tool_parts, chunk.tool_call_id, tool)
            case ToolCallDeltaChunk():
                tool = open_tool_call(self._tool_parts, chunk.tool_call_id)
                events.append(
                    {"type": "text-delta", "textDelta": chunk.args_text_delta, "path": tool.path}
                )
                if tool.arguments.add(chunk.args_text_delta):
                    self._finish_arguments(tool, events)
            case ToolResultChunk():
                tool = open_tool_call(self._tool_parts, chunk.tool_call_id)
                result: dict[str, Any] = {
                    "type": "result",
                    "path": tool.path,
                    "result": chunk.result,
                    "isError": chunk.is_error,
                }
                if chunk.artifact is not None:
                    result["artifact"] = chunk.artifact
                self._close_tool(chunk.tool_call_id, events, result)
            case SourceChunk():
                part = {
                    "type": "source",
                    "sourceType": chunk.source_type,
                    "id": chunk.id,
                    "url": chunk.url,
                }
                if chunk.title is not None:
                    part["title"] = chunk.title
                self._whole_part(part, chunk.parent_id, events)
            case FileChunk():
                part = {"type": "file", "data": chunk.data, "mimeType": chunk.mime_type}
                self._whole_part(part, chunk.parent_id, events)
            case DataChunk(name=None):
                events.append({"type": "data", "data": [chunk.data]})
            case DataChunk():
                data_part = {"type": "data", "name": chunk.name, "data": chunk.data}
                self._whole_part(data_part, chunk.parent_id, events)
            case AnnotationsChunk():
                events.append({"type": "annotations", "annotations": chunk.annotations})
            case StepStartChunk():
                events.append({"type": "step-start", "messageId": chunk.message_id})
            case StepFinishChunk():
                self._outcome.step_finished(chunk)
                events.append(
                    {
                        "type": "step-finish",
                        "finishReason": chunk.finish_reason,
                        "usage": {
                            "inputTokens": chunk.input_tokens,
                            "outputTokens": chunk.output_tokens,
                        },
                        "isContinued": chunk.is_continued,
                    }
                )
            case ErrorChunk():
                self._close_all_text(events)
                self._outcome.failed = True
                events.append({"type": "error", "error": chunk.error})
            case UpdateStateChunk():
                events.append({"type": "update-state", "operations": chunk.operations})
            case _:
                not_a_chunk(chunk)
