"""The AI SDK's UI message stream: server-sent events of UI message chunks.

The format ``useChat`` and ``readUIMessageStream`` of the Vercel AI SDK (5
and later) read, and assistant-ui's ``UIMessageStreamDecoder``. The body opens
with ``start`` and closes with ``finish`` and ``data: [DONE]``. Text and
reasoning come in blocks (``text-start``, ``text-delta``…, ``text-end``,
addressed by an ``id``); a tool call is ``tool-input-start``, its argument
text as ``tool-input-delta``, ``tool-input-available`` with the parsed input,
then ``tool-output-available`` or ``tool-output-error``.

How a run's chunks map onto it:

- A chunk from a sub-stream carries its parent id in
  ``providerMetadata.trioStream.parentId``, on the chunk that starts a part
  (``text-start``, ``reasoning-start``, ``tool-input-start``, ``source-url``,
  ``file``), so a front-end can nest the part under its parent tool call.
  Each producer keeps its own open text block, as in the assistant transport.
- ``tool-input-available`` goes out as soon as the argument text is complete
  JSON, else when the call's result arrives (or at the end of the body for a
  call that never got one). Argument text that is not JSON by then becomes
  ``tool-input-error``.
- A tool result's artifact goes in ``providerMetadata.trioStream.artifact``
  of ``tool-output-available``.
- State updates become ``data-update-state`` parts whose ``data`` is the
  list of operations; ``add_data(value, name=...)`` values become
  ``data-<name>`` parts, ``data-custom`` without a name; the annotations so
  far become the message metadata (``{"annotations": [...]}``).
- Files become ``data:`` URLs; steps become ``start-step`` / ``finish-step``,
  the step's message id in ``providerMetadata.trioStream.messageId`` of
  ``start-step``.
- ``finish`` carries the finish reason (``error`` after an error,
  ``tool-calls`` if calls are left without a result, else the last step's,
  else ``stop``) and the token usage summed over the steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec

from .._ids import message_id as new_message_id
from ..chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    FinishReason,
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
)

__all__ = ["UIMessageStreamEncoder"]

_METADATA_KEY = "trioStream"


class _ToolCall:
    __slots__ = ("arguments", "input_sent", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.arguments = ToolArguments()
        self.input_sent = False


def _ai_finish_reason(reason: FinishReason) -> str:
    # The AI SDK has no "unknown"; "other" is its nearest.
    return "other" if reason == "unknown" else reason


def _with_parent(event: dict[str, Any], parent_id: str | None) -> dict[str, Any]:
    if parent_id is not None:
        event["providerMetadata"] = {_METADATA_KEY: {"parentId": parent_id}}
    return event


class UIMessageStreamEncoder(StreamEncoder):
    """Encodes chunks as AI SDK UI message stream events.

    ``message_id`` is sent in the ``start`` chunk; by default a new random id.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = {
        **_sse.HEADERS,
        "x-vercel-ai-ui-message-stream": "v1",
    }
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(self, *, message_id: str | None = None) -> None:
        self.message_id = new_message_id() if message_id is None else message_id
        self._blocks = 0
        self._text: OpenText[str] = OpenText()  # block ids
        self._tool_calls: dict[str, _ToolCall] = {}
        self._annotations: list[Any] = []
        self._outcome = MessageOutcome()

    def start(self) -> bytes:
        return _sse.event({"type": "start", "messageId": self.message_id})

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            self._translate(chunk, events)
        return _sse.events(events)

    def finish(self) -> bytes:
        events: list[dict[str, Any]] = []
        self._close_all_blocks(events)
        pending = bool(self._tool_calls)
        for tool_call_id, call in self._tool_calls.items():
            if not call.input_sent:
                self._input_available(tool_call_id, call, events)
        self._tool_calls.clear()
        outcome = self._outcome
        reason = outcome.finish_reason(pending_tool_calls=pending)
        events.append(
            {"type": "finish", "finishReason": _ai_finish_reason(reason), "usage": outcome.usage}
        )
        return _sse.events(events) + _sse.DONE

    # -- blocks --------------------------------------------------------------

    def _close_block(self, parent_id: str | None, events: list[dict[str, Any]]) -> None:
        closed = self._text.close(parent_id)
        if closed is not None:
            kind, block_id = closed
            events.append({"type": f"{kind}-end", "id": block_id})

    def _close_all_blocks(self, events: list[dict[str, Any]]) -> None:
        events.extend(
            {"type": f"{kind}-end", "id": block_id} for kind, block_id in self._text.close_all()
        )

    def _delta(
        self, kind: str, delta: str, parent_id: str | None, events: list[dict[str, Any]]
    ) -> None:
        block_id = self._text.find(parent_id, kind)
        if block_id is None:
            self._close_block(parent_id, events)
            self._blocks += 1
            block_id = f"{kind}-{self._blocks}"
            self._text.open(parent_id, kind, block_id)
            events.append(_with_parent({"type": f"{kind}-start", "id": block_id}, parent_id))
        events.append({"type": f"{kind}-delta", "id": block_id, "delta": delta})

    # -- tool calls --------------------------------------------------------------

    def _input_available(
        self, tool_call_id: str, call: _ToolCall, events: list[dict[str, Any]]
    ) -> None:
        call.input_sent = True
        arguments = call.arguments
        event: dict[str, Any] = {"toolCallId": tool_call_id, "toolName": call.name}
        if arguments.complete or arguments.empty:
            value = arguments.value if arguments.complete else {}
            event.update(type="tool-input-available", input=value)
        else:
            event.update(
                type="tool-input-error",
                input=arguments.text,
                errorText="the arguments are not valid JSON",
            )
        events.append(event)

    # -- chunks --------------------------------------------------------------------

    def _translate(self, chunk: Chunk, events: list[dict[str, Any]]) -> None:
        match chunk:
            case TextDeltaChunk():
                self._delta("text", chunk.text_delta, chunk.parent_id, events)
            case ReasoningDeltaChunk():
                self._delta("reasoning", chunk.reasoning_delta, chunk.parent_id, events)
            case ToolCallBeginChunk():
                start_tool_call(self._tool_calls, chunk.tool_call_id, _ToolCall(chunk.tool_name))
                self._close_block(chunk.parent_id, events)
                event = {
                    "type": "tool-input-start",
                    "toolCallId": chunk.tool_call_id,
                    "toolName": chunk.tool_name,
                }
                events.append(_with_parent(event, chunk.parent_id))
            case ToolCallDeltaChunk():
                call = open_tool_call(self._tool_calls, chunk.tool_call_id)
                events.append(
                    {
                        "type": "tool-input-delta",
                        "toolCallId": chunk.tool_call_id,
                        "inputTextDelta": chunk.args_text_delta,
                    }
                )
                if call.arguments.add(chunk.args_text_delta) and not call.input_sent:
                    self._input_available(chunk.tool_call_id, call, events)
            case ToolResultChunk():
                call = open_tool_call(self._tool_calls, chunk.tool_call_id)
                del self._tool_calls[chunk.tool_call_id]
                if not call.input_sent:
                    self._input_available(chunk.tool_call_id, call, events)
                if chunk.is_error:
                    error = chunk.result
                    if not isinstance(error, str):
                        error = msgspec.json.encode(error).decode()
                    events.append(
                        {
                            "type": "tool-output-error",
                            "toolCallId": chunk.tool_call_id,
                            "errorText": error,
                        }
                    )
                else:
                    output: dict[str, Any] = {
                        "type": "tool-output-available",
                        "toolCallId": chunk.tool_call_id,
                        "output": chunk.result,
                    }
                    if chunk.artifact is not None:
                        output["providerMetadata"] = {_METADATA_KEY: {"artifact": chunk.artifact}}
                    events.append(output)
            case SourceChunk():
                self._close_block(chunk.parent_id, events)
                source = {"type": "source-url", "sourceId": chunk.id, "url": chunk.url}
                if chunk.title is not None:
                    source["title"] = chunk.title
                events.append(_with_parent(source, chunk.parent_id))
            case FileChunk():
                self._close_block(chunk.parent_id, events)
                file = {
                    "type": "file",
                    "url": f"data:{chunk.mime_type};base64,{chunk.data}",
                    "mediaType": chunk.mime_type,
                }
                events.append(_with_parent(file, chunk.parent_id))
            case DataChunk():
                name = "custom" if chunk.name is None else chunk.name
                events.append({"type": f"data-{name}", "data": chunk.data})
            case UpdateStateChunk():
                events.append({"type": "data-update-state", "data": chunk.operations})
            case AnnotationsChunk():
                self._annotations.extend(chunk.annotations)
                events.append(
                    {
                        "type": "message-metadata",
                        "messageMetadata": {"annotations": list(self._annotations)},
                    }
                )
            case StepStartChunk():
                # The AI SDK's start-step has no id: the step's message id
                # rides where its parsers let extra keys through and its
                # message builder ignores them.
                events.append(
                    {
                        "type": "start-step",
                        "providerMetadata": {_METADATA_KEY: {"messageId": chunk.message_id}},
                    }
                )
            case StepFinishChunk():
                self._close_all_blocks(events)
                self._outcome.step_finished(chunk)
                # Not in the AI SDK's schema, which lets them through; read by
                # assistant-ui's decoder.
                finish_step: dict[str, Any] = {
                    "type": "finish-step",
                    "finishReason": _ai_finish_reason(chunk.finish_reason),
                    "usage": {
                        "inputTokens": chunk.input_tokens,
                        "outputTokens": chunk.output_tokens,
                    },
                }
                if chunk.is_continued:
                    finish_step["isContinued"] = True
                events.append(finish_step)
            case ErrorChunk():
                # useChat stops reading at an error: close the text first.
                self._close_all_blocks(events)
                self._outcome.failed = True
                events.append({"type": "error", "errorText": chunk.error})
            case _:
                not_a_chunk(chunk)
