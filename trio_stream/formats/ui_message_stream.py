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
  JSON, or when the run ends the arguments (``tool-call-args-text-finish``),
  else when the call's result arrives (or at the end of the body for a call
  that never got one). Argument text that is not JSON by then becomes
  ``tool-input-error``.
- A reasoning part opened with a summary (``add_reasoning_part``) starts a
  reasoning block whose ``providerMetadata.trioStream.summary`` holds it.
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

``UIMessageStreamDecoder`` reads such a body back into chunks, whoever wrote
it: this encoder, the AI SDK's ``toUIMessageStreamResponse`` or an app's own
``createUIMessageStream`` writer. It checks each chunk against the fields
the AI SDK's schema requires and, like the AI SDK's reader, refuses a chunk
type it does not know; keys the schema does not name pass, and the ones this
encoder adds are read when present. A body is complete at ``data: [DONE]``,
which the AI SDK always ends with; ``finish`` may be missing (an app's writer
need not send one, nor does an aborted stream). What the chunks cannot hold
of another producer's stream is mapped as ``docs/formats/ui-message-stream.md``
lists.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, NoReturn, get_args
from urllib.parse import unquote_to_bytes

import msgspec

from .. import _json
from .._errors import DecodeError
from .._ids import message_id as new_message_id
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
    StateOperation,
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
from ._decoder import StreamDecoder, json_value
from ._encoder import StreamEncoder
from ._message import (
    MessageOutcome,
    OpenText,
    ToolArguments,
    not_a_chunk,
    open_tool_call,
    start_tool_call,
)

__all__ = ["UIMessageStreamDecoder", "UIMessageStreamEncoder"]

_METADATA_KEY = "trioStream"

_UNNAMED_DATA = "custom"
"""The data part name of ``add_data`` values without a name."""

_STATE_DATA = "update-state"
"""The data part name of state updates."""


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

    def _open_block(
        self, kind: str, parent_id: str | None, events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Start a new block for the producer (closing its open one); returns its start."""
        self._close_block(parent_id, events)
        self._blocks += 1
        block_id = f"{kind}-{self._blocks}"
        self._text.open(parent_id, kind, block_id)
        start = _with_parent({"type": f"{kind}-start", "id": block_id}, parent_id)
        events.append(start)
        return start

    def _delta(
        self, kind: str, delta: str, parent_id: str | None, events: list[dict[str, Any]]
    ) -> None:
        block_id = self._text.find(parent_id, kind)
        if block_id is None:
            block_id = self._open_block(kind, parent_id, events)["id"]
        events.append({"type": f"{kind}-delta", "id": block_id, "delta": delta})

    def _reasoning_part(
        self, chunk: ReasoningPartStartChunk, events: list[dict[str, Any]]
    ) -> None:
        start = self._open_block("reasoning", chunk.parent_id, events)
        metadata = start.setdefault("providerMetadata", {_METADATA_KEY: {}})
        metadata[_METADATA_KEY]["summary"] = chunk.unstable_summary

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

    def _input_delta(self, tool_call_id: str, text: str, events: list[dict[str, Any]]) -> None:
        call = open_tool_call(self._tool_calls, tool_call_id)
        events.append(
            {"type": "tool-input-delta", "toolCallId": tool_call_id, "inputTextDelta": text}
        )
        if call.arguments.add(text) and not call.input_sent:
            self._input_available(tool_call_id, call, events)

    # -- chunks --------------------------------------------------------------------

    def _translate(self, chunk: Chunk, events: list[dict[str, Any]]) -> None:
        match chunk:
            case TextDeltaChunk():
                self._delta("text", chunk.text_delta, chunk.parent_id, events)
            case ReasoningDeltaChunk():
                self._delta("reasoning", chunk.reasoning_delta, chunk.parent_id, events)
            case ReasoningPartStartChunk(unstable_summary=None):
                pass  # without a summary, the deltas open the block
            case ReasoningPartStartChunk():
                self._reasoning_part(chunk, events)
            case ToolCallBeginChunk():
                start_tool_call(self._tool_calls, chunk.tool_call_id, _ToolCall(chunk.tool_name))
                self._close_block(chunk.parent_id, events)
                events.append(_with_parent(_input_start(chunk), chunk.parent_id))
            case ToolCallDeltaChunk():
                self._input_delta(chunk.tool_call_id, chunk.args_text_delta, events)
            case ToolCallArgsTextFinishChunk():
                self._input_end(chunk, events)
            case ToolResultChunk():
                call = open_tool_call(self._tool_calls, chunk.tool_call_id)
                del self._tool_calls[chunk.tool_call_id]
                if not call.input_sent:
                    self._input_available(chunk.tool_call_id, call, events)
                events.append(_output(chunk))
            case SourceChunk() | FileChunk():
                self._close_block(chunk.parent_id, events)
                events.append(_with_parent(_whole_part(chunk), chunk.parent_id))
            case DataChunk():
                name = _UNNAMED_DATA if chunk.name is None else chunk.name
                events.append({"type": f"data-{name}", "data": chunk.data})
            case UpdateStateChunk():
                events.append({"type": f"data-{_STATE_DATA}", "data": chunk.operations})
            case AnnotationsChunk():
                self._annotations.extend(chunk.annotations)
                metadata = {"annotations": list(self._annotations)}
                events.append({"type": "message-metadata", "messageMetadata": metadata})
            case StepStartChunk():
                events.append(_start_step(chunk))
            case StepFinishChunk():
                self._close_all_blocks(events)
                self._outcome.step_finished(chunk)
                events.append(_finish_step(chunk))
            case ErrorChunk():
                # useChat stops reading at an error: close the text first.
                self._close_all_blocks(events)
                self._outcome.failed = True
                events.append({"type": "error", "errorText": chunk.error})
            case _:
                not_a_chunk(chunk)

    def _input_end(self, chunk: ToolCallArgsTextFinishChunk, events: list[dict[str, Any]]) -> None:
        call = open_tool_call(self._tool_calls, chunk.tool_call_id)
        if chunk.args_text_delta:
            self._input_delta(chunk.tool_call_id, chunk.args_text_delta, events)
        if not call.input_sent:
            self._input_available(chunk.tool_call_id, call, events)


def _input_start(chunk: ToolCallBeginChunk) -> dict[str, Any]:
    return {
        "type": "tool-input-start",
        "toolCallId": chunk.tool_call_id,
        "toolName": chunk.tool_name,
    }


def _output(chunk: ToolResultChunk) -> dict[str, Any]:
    """A tool's result: ``tool-output-error`` (its text) or ``tool-output-available``."""
    if chunk.is_error:
        error = chunk.result
        if not isinstance(error, str):
            error = msgspec.json.encode(error).decode()
        return {"type": "tool-output-error", "toolCallId": chunk.tool_call_id, "errorText": error}
    output: dict[str, Any] = {
        "type": "tool-output-available",
        "toolCallId": chunk.tool_call_id,
        "output": chunk.result,
    }
    if chunk.artifact is not None:
        output["providerMetadata"] = {_METADATA_KEY: {"artifact": chunk.artifact}}
    return output


def _whole_part(chunk: SourceChunk | FileChunk) -> dict[str, Any]:
    """A source or a file: a part of its own, complete in one event."""
    if isinstance(chunk, SourceChunk):
        source = {"type": "source-url", "sourceId": chunk.id, "url": chunk.url}
        if chunk.title is not None:
            source["title"] = chunk.title
        return source
    return {
        "type": "file",
        "url": f"data:{chunk.mime_type};base64,{chunk.data}",
        "mediaType": chunk.mime_type,
    }


def _start_step(chunk: StepStartChunk) -> dict[str, Any]:
    # The AI SDK's start-step has no id: the step's message id rides where its
    # parsers let extra keys through and its message builder ignores them.
    return {
        "type": "start-step",
        "providerMetadata": {_METADATA_KEY: {"messageId": chunk.message_id}},
    }


def _finish_step(chunk: StepFinishChunk) -> dict[str, Any]:
    # Not in the AI SDK's schema, which lets them through; read by
    # assistant-ui's decoder.
    finish_step: dict[str, Any] = {
        "type": "finish-step",
        "finishReason": _ai_finish_reason(chunk.finish_reason),
        "usage": {"inputTokens": chunk.input_tokens, "outputTokens": chunk.output_tokens},
    }
    if chunk.is_continued:
        finish_step["isContinued"] = True
    return finish_step


# -- decoding ------------------------------------------------------------------------

_AI_FINISH_REASONS = frozenset(
    ["stop", "length", "content-filter", "tool-calls", "error", "other"]
)
"""The finish reasons of the AI SDK's ``finish`` schema."""

_FINISH_REASONS: dict[str, FinishReason] = {reason: reason for reason in get_args(FinishReason)}

_DENIED = "the tool call was denied"
"""The error result of a call that ``tool-output-denied`` says was not approved."""

_ABORTED = "the response was aborted"
"""The error an ``abort`` chunk becomes (followed by its reason, if it gives one)."""


def _json_kind(value: Any) -> str:
    """What a JSON value is, for an error message."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"


class _Fields:
    """One UI message chunk's fields, read as the AI SDK's schema types them.

    A field the schema requires and the chunk lacks, or a field of the wrong
    type, is a ``DecodeError`` at the chunk's offset naming the field: the
    AI SDK's client would refuse the chunk too. Keys under
    ``providerMetadata`` are free JSON in that schema, so this encoder's own
    (``trioStream``) are read when well-formed and ignored otherwise.
    """

    __slots__ = ("offset", "type", "values")

    def __init__(self, values: dict[str, Any], type_: str, offset: int) -> None:
        self.values = values
        self.type = type_
        self.offset = offset

    def fail(self, problem: str) -> NoReturn:
        raise DecodeError(self.offset, problem)

    def text(self, key: str) -> str:
        value = self.values.get(key)
        if not isinstance(value, str):
            self._wrong(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.values.get(key)
        if key in self.values and not isinstance(value, str):
            self._wrong(key, "a string")
        return value

    def optional_flag(self, key: str) -> bool:
        value = self.values.get(key, False)
        if not isinstance(value, bool):
            self._wrong(key, "true or false")
        return value

    def trio(self, key: str) -> Any:
        """``providerMetadata.trioStream[key]``, or ``None``."""
        metadata = self.values.get("providerMetadata")
        ours = metadata.get(_METADATA_KEY) if isinstance(metadata, dict) else None
        return ours.get(key) if isinstance(ours, dict) else None

    def trio_text(self, key: str) -> str | None:
        value = self.trio(key)
        return value if isinstance(value, str) else None

    def without_type(self) -> dict[str, Any]:
        """The chunk's fields but ``type``: what a chunk no chunk type holds becomes."""
        return {key: value for key, value in self.values.items() if key != "type"}

    def _wrong(self, key: str, expected: str) -> NoReturn:
        found = _json_kind(self.values[key]) if key in self.values else "no such field"
        self.fail(f"expected the {self.type} chunk's {key} to be {expected}, found {found}")


def _input_text(value: Any, *, raw: bool) -> str:
    """The argument text of a tool call whose input came whole; empty for none.

    A call without argument text has no arguments, ``{}`` in every format, so
    ``{}`` (or no input at all) gives no text. ``raw`` is for the input of
    ``tool-input-error``: a string there is the text that did not parse.
    """
    if isinstance(value, dict) and not value:
        return ""
    if raw and isinstance(value, str):
        return value
    return _json.encode(value).decode()


def _state_operations(data: Any) -> tuple[StateOperation, ...] | None:
    """``data`` as state operations, or ``None`` if it is anything else."""
    if not isinstance(data, list):
        return None
    for operation in data:
        if not (
            isinstance(operation, dict)
            and operation.keys() == {"type", "path", "value"}
            and isinstance(operation["path"], list)
            and all(isinstance(key, str) for key in operation["path"])
        ):
            return None
        kind = operation["type"]
        if kind != "set" and not (kind == "append-text" and isinstance(operation["value"], str)):
            return None
    return tuple(data)


def _base64_data(fields: _Fields, url: str) -> str:
    """The bytes of a ``data:`` URL, base64-encoded (as they are, if they already were)."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        fields.fail("expected a comma before the data of the file chunk's data: URL")
    if not header.lower().endswith(";base64"):
        return base64.b64encode(unquote_to_bytes(payload)).decode()
    try:
        base64.b64decode(payload, validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        fields.fail(f"expected base64 data in the file chunk's data: URL: {exc}")
    return payload


def _token_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class UIMessageStreamDecoder(StreamDecoder):
    """Decodes a UI message stream body into chunks, piece by piece.

    ``message_id`` holds the id of the last ``start`` that gave one, and
    ``finish_reason`` the reason ``finish`` gave: they describe the message,
    which no chunk does.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.finish_reason: FinishReason | None = None
        self._events = _sse.EventParser()
        self._size = 0
        self._done = False
        # The open blocks of each kind, by id: their producer's parent id.
        self._blocks: dict[str, dict[str, str | None]] = {"text": {}, "reasoning": {}}
        # The calls awaiting a result, by id: the argument text that came (if any).
        self._calls: dict[str, ToolArguments] = {}
        self._ended: set[str] = set()  # calls whose arguments ended before they were JSON
        self._answered: set[str] = set()
        self._annotations: list[Any] = []

    def feed(self, data: bytes) -> list[Chunk]:
        self._size += len(data)
        chunks: list[Chunk] = []
        for event in self._events.feed(data):
            self._read(event, chunks)
        return chunks

    def close(self) -> list[Chunk]:
        self._events.close()
        if not self._done:
            raise DecodeError(self._size, "the body ends before data: [DONE]")
        return []

    def _read(self, event: _sse.Event, chunks: list[Chunk]) -> None:
        if self._done:
            raise DecodeError(event.offset, "expected the end of the body after data: [DONE]")
        if event.data == "[DONE]":
            self._done = True
            return
        value = json_value(event.data, event.offset, "a UI message chunk")
        type_ = value.get("type") if isinstance(value, dict) else None
        if not isinstance(type_, str):
            raise DecodeError(
                event.offset, "expected a UI message chunk: a JSON object with a string type"
            )
        fields = _Fields(value, type_, event.offset)
        read = _READERS.get(type_)
        if read is None:
            if not type_.startswith("data-"):
                fields.fail(f"expected a UI message chunk type, not {type_!r}")
            read = UIMessageStreamDecoder._data
        read(self, fields, chunks)

    # -- the message ---------------------------------------------------------------

    def _start(self, fields: _Fields, chunks: list[Chunk]) -> None:
        message_id = fields.optional_text("messageId")
        if message_id is not None:
            self.message_id = message_id
        self._metadata(fields.values.get("messageMetadata"), chunks)

    def _finish(self, fields: _Fields, chunks: list[Chunk]) -> None:
        reason = fields.optional_text("finishReason")
        if reason is not None:
            if reason not in _AI_FINISH_REASONS:
                fields.fail(f"expected a finish reason of the AI SDK, not {reason!r}")
            self.finish_reason = _FINISH_REASONS[reason]
        self._metadata(fields.values.get("messageMetadata"), chunks)

    def _message_metadata(self, fields: _Fields, chunks: list[Chunk]) -> None:
        self._metadata(fields.values.get("messageMetadata"), chunks)

    def _metadata(self, metadata: Any, chunks: list[Chunk]) -> None:
        """Annotations: the new ones of this encoder's list, else the metadata itself."""
        if metadata is None:
            return
        seen = self._annotations
        if isinstance(metadata, dict) and metadata.keys() == {"annotations"}:
            annotations = metadata["annotations"]
            if isinstance(annotations, list) and annotations[: len(seen)] == seen:
                chunks.append(AnnotationsChunk(tuple(annotations[len(seen) :])))
                self._annotations = annotations
                return
        chunks.append(AnnotationsChunk((metadata,)))

    def _error(self, fields: _Fields, chunks: list[Chunk]) -> None:
        chunks.append(ErrorChunk(fields.text("errorText")))

    def _abort(self, fields: _Fields, chunks: list[Chunk]) -> None:
        reason = fields.optional_text("reason")
        chunks.append(ErrorChunk(f"{_ABORTED}: {reason}" if reason else _ABORTED))

    # -- steps -----------------------------------------------------------------------

    def _start_step(self, fields: _Fields, chunks: list[Chunk]) -> None:
        message_id = fields.trio_text("messageId")
        if message_id is None:
            message_id = self.message_id or ""
        chunks.append(StepStartChunk(message_id))

    def _finish_step(self, fields: _Fields, chunks: list[Chunk]) -> None:
        for blocks in self._blocks.values():
            blocks.clear()  # as in the AI SDK, a step's end ends its blocks
        # The AI SDK's finish-step has no fields; these are this encoder's.
        values = fields.values
        reason = values.get("finishReason")
        usage = values.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        chunks.append(
            StepFinishChunk(
                _FINISH_REASONS.get(reason, "unknown") if isinstance(reason, str) else "unknown",
                _token_count(usage.get("inputTokens")),
                _token_count(usage.get("outputTokens")),
                values.get("isContinued") is True,
            )
        )

    # -- text and reasoning ----------------------------------------------------------

    def _block_start(self, fields: _Fields, chunks: list[Chunk]) -> None:
        kind = fields.type.removesuffix("-start")
        parent_id = fields.trio_text("parentId")
        self._blocks[kind][fields.text("id")] = parent_id
        summary = fields.trio_text("summary") if kind == "reasoning" else None
        if summary is not None:
            chunks.append(ReasoningPartStartChunk(summary, parent_id))

    def _block_delta(self, fields: _Fields, chunks: list[Chunk]) -> None:
        kind = fields.type.removesuffix("-delta")
        parent_id = self._open_block(fields, kind)
        delta = fields.text("delta")
        if kind == "text":
            chunks.append(TextDeltaChunk(delta, parent_id))
        else:
            chunks.append(ReasoningDeltaChunk(delta, parent_id))

    def _block_end(self, fields: _Fields, chunks: list[Chunk]) -> None:
        kind = fields.type.removesuffix("-end")
        self._open_block(fields, kind)
        del self._blocks[kind][fields.text("id")]

    def _open_block(self, fields: _Fields, kind: str) -> str | None:
        """The parent id of the open block the chunk names."""
        block_id = fields.text("id")
        blocks = self._blocks[kind]
        if block_id not in blocks:
            fields.fail(f"expected a {kind}-start of block {block_id!r} before its {fields.type}")
        return blocks[block_id]

    # -- tool calls ------------------------------------------------------------------

    def _tool_input_start(self, fields: _Fields, chunks: list[Chunk]) -> None:
        call_id = fields.text("toolCallId")
        if call_id in self._calls or call_id in self._answered:
            fields.fail(f"expected a new tool call id, but {call_id!r} was started already")
        self._calls[call_id] = ToolArguments()
        chunks.append(
            ToolCallBeginChunk(call_id, fields.text("toolName"), fields.trio_text("parentId"))
        )

    def _tool_input_delta(self, fields: _Fields, chunks: list[Chunk]) -> None:
        call_id = fields.text("toolCallId")
        arguments = self._calls.get(call_id)
        if arguments is None:
            fields.fail(f"expected a tool-input-start of tool call {call_id!r} before its input")
        text = fields.text("inputTextDelta")
        if call_id in self._ended:
            return  # input after the input's end has no place in a run
        arguments.add(text)
        chunks.append(ToolCallDeltaChunk(call_id, text))

    def _tool_input(self, fields: _Fields, chunks: list[Chunk]) -> None:
        """``tool-input-available`` or ``-error``: the whole input, unless deltas gave it.

        ``tool-input-error`` is not the call's result, which follows (the AI
        SDK sends a ``tool-output-error``); its ``errorText`` is not kept.
        """
        call_id = fields.text("toolCallId")
        name = fields.text("toolName")
        raw = fields.type == "tool-input-error"
        if raw:
            fields.text("errorText")
        if call_id in self._answered:
            fields.fail(f"expected no more input for tool call {call_id!r}, which has its result")
        arguments = self._calls.get(call_id)
        if arguments is None:
            arguments = self._calls[call_id] = ToolArguments()
            chunks.append(ToolCallBeginChunk(call_id, name, fields.trio_text("parentId")))
        elif arguments.pieces:
            # The input streamed: this ends it. Complete JSON says so itself.
            if not (arguments.complete or arguments.empty or call_id in self._ended):
                self._ended.add(call_id)
                chunks.append(ToolCallArgsTextFinishChunk(call_id))
            return
        text = _input_text(fields.values.get("input", {}), raw=raw)
        arguments.add(text)
        if text:
            chunks.append(ToolCallDeltaChunk(call_id, text))

    def _tool_output_available(self, fields: _Fields, chunks: list[Chunk]) -> None:
        if fields.optional_flag("preliminary"):
            fields.text("toolCallId")
            return  # a chunk holds a call's final result only
        output = fields.values.get("output")
        self._answer(fields, chunks, output, is_error=False, artifact=fields.trio("artifact"))

    def _tool_output_error(self, fields: _Fields, chunks: list[Chunk]) -> None:
        self._answer(fields, chunks, fields.text("errorText"), is_error=True)

    def _tool_output_denied(self, fields: _Fields, chunks: list[Chunk]) -> None:
        self._answer(fields, chunks, _DENIED, is_error=True)

    def _answer(
        self,
        fields: _Fields,
        chunks: list[Chunk],
        result: Any,
        *,
        is_error: bool,
        artifact: Any = None,
    ) -> None:
        """The call's result; a call this body never started may get one too.

        The AI SDK sends the result of an earlier response's call (one that
        waited for an approval) in the next response.
        """
        call_id = fields.text("toolCallId")
        if call_id in self._answered:
            fields.fail(f"expected one result for tool call {call_id!r}, not a second")
        self._calls.pop(call_id, None)
        self._ended.discard(call_id)
        self._answered.add(call_id)
        chunks.append(ToolResultChunk(call_id, result, artifact, is_error))

    def _tool_approval_request(self, fields: _Fields, chunks: list[Chunk]) -> None:
        fields.text("approvalId")
        fields.text("toolCallId")
        chunks.append(DataChunk(fields.without_type(), fields.type))

    # -- sources, files, data --------------------------------------------------------

    def _source_url(self, fields: _Fields, chunks: list[Chunk]) -> None:
        chunks.append(
            SourceChunk(
                fields.text("sourceId"),
                fields.text("url"),
                title=fields.optional_text("title"),
                parent_id=fields.trio_text("parentId"),
            )
        )

    def _source_document(self, fields: _Fields, chunks: list[Chunk]) -> None:
        for key in ("sourceId", "mediaType", "title"):
            fields.text(key)
        fields.optional_text("filename")
        chunks.append(DataChunk(fields.without_type(), fields.type, fields.trio_text("parentId")))

    def _file(self, fields: _Fields, chunks: list[Chunk]) -> None:
        url = fields.text("url")
        media_type = fields.text("mediaType")
        parent_id = fields.trio_text("parentId")
        if url[:5].lower() == "data:":
            chunks.append(FileChunk(_base64_data(fields, url), media_type, parent_id))
        else:  # a file by reference, which a file chunk cannot hold
            chunks.append(DataChunk(fields.without_type(), fields.type, parent_id))

    def _data(self, fields: _Fields, chunks: list[Chunk]) -> None:
        fields.optional_text("id")
        fields.optional_flag("transient")
        name = fields.type.removeprefix("data-")
        data = fields.values.get("data")
        if name == _UNNAMED_DATA:
            chunks.append(DataChunk(data))
            return
        if name == _STATE_DATA:
            operations = _state_operations(data)
            if operations is not None:
                chunks.append(UpdateStateChunk(operations))
                return
        chunks.append(DataChunk(data, name))


_Reader = Callable[[UIMessageStreamDecoder, _Fields, list[Chunk]], None]

_READERS: dict[str, _Reader] = {
    "start": UIMessageStreamDecoder._start,
    "finish": UIMessageStreamDecoder._finish,
    "message-metadata": UIMessageStreamDecoder._message_metadata,
    "error": UIMessageStreamDecoder._error,
    "abort": UIMessageStreamDecoder._abort,
    "start-step": UIMessageStreamDecoder._start_step,
    "finish-step": UIMessageStreamDecoder._finish_step,
    "text-start": UIMessageStreamDecoder._block_start,
    "text-delta": UIMessageStreamDecoder._block_delta,
    "text-end": UIMessageStreamDecoder._block_end,
    "reasoning-start": UIMessageStreamDecoder._block_start,
    "reasoning-delta": UIMessageStreamDecoder._block_delta,
    "reasoning-end": UIMessageStreamDecoder._block_end,
    "tool-input-start": UIMessageStreamDecoder._tool_input_start,
    "tool-input-delta": UIMessageStreamDecoder._tool_input_delta,
    "tool-input-available": UIMessageStreamDecoder._tool_input,
    "tool-input-error": UIMessageStreamDecoder._tool_input,
    "tool-output-available": UIMessageStreamDecoder._tool_output_available,
    "tool-output-error": UIMessageStreamDecoder._tool_output_error,
    "tool-output-denied": UIMessageStreamDecoder._tool_output_denied,
    "tool-approval-request": UIMessageStreamDecoder._tool_approval_request,
    "source-url": UIMessageStreamDecoder._source_url,
    "source-document": UIMessageStreamDecoder._source_document,
    "file": UIMessageStreamDecoder._file,
}
"""How each UI message chunk type is read; ``data-*`` types go to ``_data``."""
