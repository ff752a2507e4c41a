"""The assistant-ui data stream: one ``code:json`` line per chunk.

This is the AI SDK 4 data stream protocol with assistant-ui's ``aui-*``
extensions, read by assistant-ui's data stream runtime (the npm package
``assistant-stream``'s ``DataStreamDecoder``). Each line is a type code, a
colon, a JSON value and a newline: ``0:"Hello"`` for text, ``b:``/``c:``/``a:``
for a tool call's start, argument deltas and result, ``3:"message"`` for an
error. A blank line is a keep-alive that decoders skip.

``DataStreamDecoder`` reads such a body back into chunks: the lines this
module's encoder writes, and those that other producers write (the AI SDK 4
and the npm ``assistant-stream`` encoder), as far as a chunk can say them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, cast, get_args

from .._errors import DecodeError
from .._json import encode
from .._telemetry import log_extra
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
from ._decoder import StreamDecoder, json_value, merged_deltas
from ._delta_runs import next_run
from ._encoder import StreamEncoder
from ._lines import Line, Lines
from ._message import (
    MessageOutcome,
    ToolArguments,
    open_tool_call,
    start_tool_call,
    with_parent_id,
)

__all__ = ["DataStreamDecoder", "DataStreamEncoder"]

logger = logging.getLogger("trio_stream")


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


def _reasoning_start(chunk: ReasoningPartStartChunk) -> bytes:
    # Only a summary needs the line: the deltas open a reasoning part anyway.
    if chunk.unstable_summary is None:
        return b""
    value = {"unstable_summary": chunk.unstable_summary}
    return _line(b"aui-reasoning-part-start:", with_parent_id(value, chunk.parent_id))


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
    ReasoningPartStartChunk: _reasoning_start,
    DataChunk: _data,
    UpdateStateChunk: _update_state,
    SourceChunk: _source,
    FileChunk: _file,
    AnnotationsChunk: _annotations,
    StepStartChunk: _step_start,
}


def _dropped(tool_call_id: str) -> None:
    logger.warning(
        "tool call %r: argument text after its arguments ended (at a step's end or an "
        "error) is not sent",
        tool_call_id,
        extra=log_extra(tool_call_id=tool_call_id),
    )


class _Call:
    """What the encoder knows of a call awaiting its result."""

    __slots__ = ("arguments", "ended", "settled")

    def __init__(self) -> None:
        self.arguments = ToolArguments()
        self.ended = False  # an ``isFinal`` line ended the arguments (not by completing JSON)
        self.settled = False  # ended by a step's end or an error, not by the run


class DataStreamEncoder(StreamEncoder):
    """Encodes chunks as assistant-ui data stream lines, one line per chunk.

    A tool call's arguments end with ``isFinal``: on the delta that completes
    their JSON, or on a ``c:`` line of their own where the run ends them
    (``tool-call-args-text-finish``, whose last piece of text it carries,
    ``{}`` for arguments that stayed empty). A step's end and an error end
    the arguments still streaming first, as assistant-stream's encoders do;
    argument text for such a call afterwards is dropped (the client would
    drop it) with a warning. The body ends with a ``d:`` line giving the
    message's finish reason and usage, except after an error, whose ``3:``
    line already ends the message for the client.
    """

    media_type: ClassVar[str] = "text/plain; charset=utf-8"
    headers: ClassVar[Mapping[str, str]] = {"x-vercel-ai-data-stream": "v1"}
    keepalive: ClassVar[bytes] = b"\n"
    default_heartbeat: ClassVar[bool] = False

    def __init__(self) -> None:
        self._tool_calls: dict[str, _Call] = {}
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

    def _arguments(self, tool_call_id: str, text: str) -> bytes:
        call = open_tool_call(self._tool_calls, tool_call_id)
        if call.settled:
            _dropped(tool_call_id)
            return b""
        delta: dict[str, Any] = {"toolCallId": tool_call_id, "argsTextDelta": text}
        if call.arguments.add(text):
            delta["isFinal"] = True
        return _line(b"c:", delta)

    def _end_arguments(self, tool_call_id: str, text: str) -> bytes:
        """The line that ends a call's arguments with ``text``, their last piece."""
        call = open_tool_call(self._tool_calls, tool_call_id)
        if call.ended:
            # Settled at a step's end or an error (the run refuses a second end).
            if text:
                _dropped(tool_call_id)
            return b""
        call.ended = True
        if call.arguments.complete:
            # The line that completed the JSON was final already.
            return self._plain_arguments(tool_call_id, text) if text else b""
        call.arguments.add(text)
        if not text and call.arguments.empty:
            # A client that predates isFinal appends the text and takes it as
            # it is: it needs the {} of a call without arguments.
            text = "{}"
        return _line(b"c:", {"toolCallId": tool_call_id, "argsTextDelta": text, "isFinal": True})

    def _plain_arguments(self, tool_call_id: str, text: str) -> bytes:
        return _line(b"c:", {"toolCallId": tool_call_id, "argsTextDelta": text})

    def _settle_arguments(self) -> bytes:
        """End the arguments still streaming, before a step's end or an error."""
        lines = []
        for tool_call_id, call in self._tool_calls.items():
            if not (call.ended or call.arguments.complete):
                lines.append(self._end_arguments(tool_call_id, ""))
                call.settled = True
        return b"".join(lines)

    def _encode_stateful(self, chunk: Chunk) -> bytes:
        match chunk:
            case ToolCallBeginChunk():
                start_tool_call(self._tool_calls, chunk.tool_call_id, _Call())
                begin = {"toolCallId": chunk.tool_call_id, "toolName": chunk.tool_name}
                return _line(b"b:", with_parent_id(begin, chunk.parent_id))
            case ToolCallDeltaChunk():
                return self._arguments(chunk.tool_call_id, chunk.args_text_delta)
            case ToolCallArgsTextFinishChunk():
                return self._end_arguments(chunk.tool_call_id, chunk.args_text_delta)
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
                return self._settle_arguments() + _line(b"3:", chunk.error)
            case StepFinishChunk():
                self._outcome.step_finished(chunk)
                step = {
                    "finishReason": chunk.finish_reason,
                    "usage": {
                        "inputTokens": chunk.input_tokens,
                        "outputTokens": chunk.output_tokens,
                    },
                    "isContinued": chunk.is_continued,
                }
                return self._settle_arguments() + _line(b"e:", step)
        raise TypeError(f"not a chunk: {chunk!r}")


# -- decoding ------------------------------------------------------------------------


class _Missing:
    """What a field holds when the object has no such key (``null`` is a value)."""

    __slots__ = ()


_MISSING = _Missing()

_FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))


def _kind(value: Any) -> str:
    """What a JSON value is, for a message saying it is not what was expected."""
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _expected(at: int, what: str, where: str, value: Any) -> DecodeError:
    return DecodeError(at, f"expected {what} {where}, got {_kind(value)}")


class _Object:
    """A line's JSON object, read field by field.

    A field of the wrong type is a ``DecodeError`` at the start of the
    line's value, naming the field and the line. Optional fields take
    ``null`` for absent, as assistant-stream's decoder does.
    """

    __slots__ = ("_at", "_fields", "_where")

    def __init__(self, value: Any, at: int, where: str) -> None:
        if not isinstance(value, dict):
            raise _expected(at, "a JSON object", where, value)
        self._fields: dict[str, Any] = value
        self._at = at
        self._where = where

    def _wrong(self, key: str, what: str, value: Any) -> DecodeError:
        return _expected(self._at, f"{key!r} to be {what}", f"in {self._where}", value)

    def has(self, key: str) -> bool:
        return key in self._fields

    def value(self, key: str) -> Any:
        """A field that must be there, whatever its value."""
        value = self._fields.get(key, _MISSING)
        if value is _MISSING:
            raise self._wrong(key, "present", value)
        return value

    def optional(self, key: str) -> Any:
        """A field's value, ``None`` if absent."""
        return self._fields.get(key)

    def text(self, key: str) -> str:
        value = self._fields.get(key, _MISSING)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._fields.get(key)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def flag(self, key: str) -> bool:
        """A boolean field; absent or ``null`` is false."""
        value = self._fields.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._wrong(key, "a boolean", value)
        return bool(value)

    def object(self, key: str) -> _Object:
        return _Object(self._fields.get(key, _MISSING), self._at, f"{key!r} of {self._where}")

    def optional_object(self, key: str) -> _Object | None:
        return None if self._fields.get(key) is None else self.object(key)

    def optional_array(self, key: str) -> list[Any] | None:
        value = self._fields.get(key)
        if value is not None and not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        return value

    def count(self, key: str) -> int:
        """A token count: a non-negative integer; absent or ``null`` (the AI SDK's NaN) is 0."""
        value = self._fields.get(key)
        if value is None:
            return 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._wrong(key, "a token count", value)
        return value


def _line_string(value: Any, code: str, at: int) -> str:
    if not isinstance(value, str):
        raise _expected(at, "a JSON string", f"after '{code}:'", value)
    return value


def _line_array(value: Any, code: str, at: int) -> list[Any]:
    if not isinstance(value, list):
        raise _expected(at, "a JSON array", f"after '{code}:'", value)
    return value


def _finish_reason(fields: _Object) -> FinishReason:
    """The ``finishReason``; one no chunk knows is ``other``, as assistant-stream reads it."""
    reason = fields.text("finishReason")
    return cast(FinishReason, reason) if reason in _FINISH_REASONS else "other"


def _usage(fields: _Object) -> tuple[int, int]:
    """Input and output tokens: assistant-ui's names, else the AI SDK 4's."""
    usage = fields.optional_object("usage")
    if usage is None:
        return 0, 0
    if usage.has("inputTokens") or usage.has("outputTokens"):
        return usage.count("inputTokens"), usage.count("outputTokens")
    return usage.count("promptTokens"), usage.count("completionTokens")


def _state_operation(value: Any, at: int) -> StateOperation:
    fields = _Object(value, at, "a state operation of an 'aui-state:' line")
    kind = fields.value("type")
    path = fields.value("path")
    if not isinstance(path, list) or not all(isinstance(key, str) for key in path):
        raise DecodeError(at, "expected a state operation's 'path' to be an array of strings")
    if kind == "set":
        return {"type": "set", "path": path, "value": fields.value("value")}
    if kind == "append-text":
        return {"type": "append-text", "path": path, "value": fields.text("value")}
    raise DecodeError(
        at, f"expected a state operation of type 'set' or 'append-text', not {kind!r}"
    )


def _text_line(value: Any, at: int) -> list[Chunk]:
    return [TextDeltaChunk(_line_string(value, "0", at))]


def _reasoning_line(value: Any, at: int) -> list[Chunk]:
    return [ReasoningDeltaChunk(_line_string(value, "g", at))]


def _aui_text_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'aui-text-delta:' line")
    return [TextDeltaChunk(fields.text("textDelta"), fields.text("parentId"))]


def _aui_reasoning_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'aui-reasoning-delta:' line")
    return [ReasoningDeltaChunk(fields.text("reasoningDelta"), fields.text("parentId"))]


def _reasoning_start_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'aui-reasoning-part-start:' line")
    summary = fields.optional_text("unstable_summary")
    return [ReasoningPartStartChunk(summary, fields.optional_text("parentId"))]


def _data_line(value: Any, at: int) -> list[Chunk]:
    # The AI SDK 4 may send several values in one line; each is one chunk.
    return [DataChunk(item) for item in _line_array(value, "2", at)]


def _aui_data_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'aui-data:' line")
    return [DataChunk(fields.value("data"), fields.text("name"), fields.optional_text("parentId"))]


def _error_line(value: Any, at: int) -> list[Chunk]:
    # As assistant-stream reads it: a string, an object's "error" (its code
    # and severity have no chunk to go in), else the value's JSON text.
    if isinstance(value, str):
        return [ErrorChunk(value)]
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return [ErrorChunk(value["error"])]
    return [ErrorChunk(encode(value).decode())]


def _state_line(value: Any, at: int) -> list[Chunk]:
    operations = _line_array(value, "aui-state", at)
    return [UpdateStateChunk(tuple(_state_operation(op, at) for op in operations))]


def _source_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'h:' line")
    parent_id = fields.optional_text("parentId")
    source_type = fields.text("sourceType")
    if source_type == "document":
        return []  # a SourceChunk is a URL; a document source has none
    if source_type != "url":
        raise DecodeError(at, f"expected 'sourceType' 'url' or 'document', not {source_type!r}")
    title = fields.optional_text("title")
    return [SourceChunk(fields.text("id"), fields.text("url"), title=title, parent_id=parent_id)]


def _file_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "a 'k:' line")
    parent_id = fields.optional_text("parentId")
    return [FileChunk(fields.text("data"), fields.text("mimeType"), parent_id)]


def _annotations_line(value: Any, at: int) -> list[Chunk]:
    return [AnnotationsChunk(tuple(_line_array(value, "8", at)))]


def _step_start_line(value: Any, at: int) -> list[Chunk]:
    return [StepStartChunk(_Object(value, at, "an 'f:' line").text("messageId"))]


def _step_finish_line(value: Any, at: int) -> list[Chunk]:
    fields = _Object(value, at, "an 'e:' line")
    reason = _finish_reason(fields)
    input_tokens, output_tokens = _usage(fields)
    return [StepFinishChunk(reason, input_tokens, output_tokens, fields.flag("isContinued"))]


def _message_finish_line(value: Any, at: int) -> list[Chunk]:
    # The message's finish reason and usage follow from its chunks (the
    # steps, the calls left without a result, an error): no chunk of its own.
    fields = _Object(value, at, "a 'd:' line")
    _finish_reason(fields)
    _usage(fields)
    return []


def _ignored_line(value: Any, at: int) -> list[Chunk]:
    # Redacted reasoning and reasoning signatures: assistant-stream ignores
    # them, whatever their value, and no chunk can carry them.
    return []


_Reader = Callable[[Any, int], list[Chunk]]

# Lines whose chunks depend on nothing but the line.
_STATELESS_LINES: Mapping[str, _Reader] = {
    "0": _text_line,
    "g": _reasoning_line,
    "aui-text-delta": _aui_text_line,
    "aui-reasoning-delta": _aui_reasoning_line,
    "aui-reasoning-part-start": _reasoning_start_line,
    "2": _data_line,
    "aui-data": _aui_data_line,
    "3": _error_line,
    "aui-state": _state_line,
    "h": _source_line,
    "k": _file_line,
    "8": _annotations_line,
    "f": _step_start_line,
    "e": _step_finish_line,
    "d": _message_finish_line,
    "i": _ignored_line,
    "j": _ignored_line,
}

_TOOL_CALL_LINES = ("b", "c", "a", "9", "aui-tool-call-approval")

_CODES = ", ".join(repr(code) for code in [*_STATELESS_LINES, *_TOOL_CALL_LINES])


class _ToolCall:
    """What the decoder knows of one tool call."""

    __slots__ = ("args_closed", "arguments", "ended", "finished", "has_args")

    def __init__(self) -> None:
        self.has_args = False  # some argument text arrived
        self.arguments = ToolArguments()
        self.args_closed = False  # an ``isFinal`` delta or a whole call closed them
        self.ended = False  # ``isFinal`` ended arguments that are not complete JSON
        self.finished = False  # its result arrived


class DataStreamDecoder(StreamDecoder):
    """Decodes a data stream body into chunks, line by line.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as assistant-stream splits
    them; blank lines are keep-alives. The body has no end line that every
    producer writes (this package's encoder ends with ``d:``,
    assistant-stream's Python encoders write none), so ``close`` reports a
    body that ends inside a line, and no other cut. A type code that is not
    the protocol's is a ``DecodeError``, as it is for assistant-stream's
    decoder, which is strict by default. So is a line for a tool call that
    never started, as there.
    """

    media_type: ClassVar[str] = DataStreamEncoder.media_type

    def __init__(self) -> None:
        self._lines = Lines(cr=True)
        self._calls: dict[str, _ToolCall] = {}

    def feed(self, data: bytes) -> list[Chunk]:
        return self._read(self._lines.feed(data))

    def feed_merged(self, data: bytes) -> list[Chunk]:
        """``feed`` with deltas merged, each run of delta lines read at once.

        Runs of text and reasoning lines are read without a step per line
        (``trio_stream.formats._delta_runs``); the lines between them, and a
        run with a line that is not well-formed, are read as ``feed`` reads
        them. A body with ``\\r`` line breaks is read line by line throughout.
        """
        taken = self._lines.take(data)
        if taken is None:
            return []
        offset, block = taken
        if b"\r" in block:
            return merged_deltas(self._read(self._lines.split(offset, block)))
        chunks: list[Chunk] = []
        done = 0
        while (run := next_run(block, done)) is not None:
            start, stop, read = run
            chunks += self._read_lines(offset, block, done, start)
            chunks += self._read_lines(offset, block, start, stop) if read is None else read
            done = stop
        chunks += self._read_lines(offset, block, done, len(block))
        return merged_deltas(chunks)

    def _read_lines(self, offset: int, block: bytes, start: int, stop: int) -> list[Chunk]:
        """The chunks of the lines ``block[start:stop]``, read one by one; ``block`` is at
        ``offset`` in the body."""
        if start == stop:
            return []
        return self._read(self._lines.split(offset + start, block[start:stop]))

    def _read(self, lines: list[Line]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for offset, line in lines:
            chunks += self._line(offset, line)
        return chunks

    def close(self) -> list[Chunk]:
        end = self._lines.offset
        try:
            rest = self._lines.close()
        except DecodeError:  # cut inside a UTF-8 sequence: cut all the same
            rest = (end, "")
        if rest is not None:
            raise DecodeError(end, "the body ends inside a line: expected a line break")
        return []

    def _line(self, offset: int, line: str) -> list[Chunk]:
        if offset == 0 and line.startswith("\ufeff"):
            line = line[1:]  # a byte order mark, which a client's text decoder drops
            offset = 3
        if not line or line.isspace():
            return []  # a keep-alive
        code, colon, text = line.partition(":")
        if not colon:
            raise DecodeError(offset, "expected a line of the form code:JSON, found no ':'")
        stateless = _STATELESS_LINES.get(code)
        if stateless is None and code not in _TOOL_CALL_LINES:
            raise DecodeError(offset, f"unknown type code {code!r}: expected one of {_CODES}")
        at = offset + len(code) + 1  # the codes are ASCII
        value = json_value(text, at, f"a value after '{code}:'")
        if stateless is not None:
            return stateless(value, at)
        return self._tool_call_line(code, value, at)

    def _tool_call_line(self, code: str, value: Any, at: int) -> list[Chunk]:
        if code == "b":
            return self._begin(_Object(value, at, "a 'b:' line"), at)
        if code == "c":
            return self._delta(_Object(value, at, "a 'c:' line"), at)
        if code == "a":
            return self._result(_Object(value, at, "an 'a:' line"), at)
        if code == "9":
            return self._whole_call(_Object(value, at, "a '9:' line"), at)
        return self._approval(_Object(value, at, "an 'aui-tool-call-approval:' line"), at)

    def _call(self, tool_call_id: str, at: int) -> _ToolCall:
        call = self._calls.get(tool_call_id)
        if call is None:
            raise DecodeError(
                at, f"expected a tool call started by a 'b:' or '9:' line, not {tool_call_id!r}"
            )
        return call

    def _open_call(self, tool_call_id: str, at: int) -> _ToolCall:
        call = self._call(tool_call_id, at)
        if call.finished:
            raise DecodeError(at, f"tool call {tool_call_id!r} has its result already")
        return call

    def _begin(self, fields: _Object, at: int) -> list[Chunk]:
        tool_call_id = fields.text("toolCallId")
        tool_name = fields.text("toolName")
        parent_id = fields.optional_text("parentId")
        if tool_call_id in self._calls:
            raise DecodeError(at, f"tool call {tool_call_id!r} starts twice: expected a new id")
        self._calls[tool_call_id] = _ToolCall()
        return [ToolCallBeginChunk(tool_call_id, tool_name, parent_id)]

    def _delta(self, fields: _Object, at: int) -> list[Chunk]:
        tool_call_id = fields.text("toolCallId")
        delta = fields.text("argsTextDelta")
        is_final = fields.flag("isFinal")
        call = self._open_call(tool_call_id, at)
        if call.ended:
            return []  # text after the end: a client drops it too
        call.has_args = call.has_args or bool(delta)
        call.arguments.add(delta)
        call.args_closed = call.args_closed or is_final
        if is_final and not (call.arguments.complete or call.arguments.empty):
            # The end of arguments that are not JSON (yet): only the line says it.
            call.ended = True
            return [ToolCallArgsTextFinishChunk(tool_call_id, delta)]
        # An end at complete JSON, or of no arguments, follows from the text.
        return [ToolCallDeltaChunk(tool_call_id, delta)]

    def _result(self, fields: _Object, at: int) -> list[Chunk]:
        tool_call_id = fields.text("toolCallId")
        result = fields.value("result")
        artifact = fields.optional("artifact")
        is_error = fields.flag("isError")
        fields.optional_array("modelContent")
        call = self._open_call(tool_call_id, at)
        if fields.flag("isPreliminary"):
            return []  # a progress report; the call's result is still to come
        call.finished = True
        return [ToolResultChunk(tool_call_id, result, artifact, is_error)]

    def _whole_call(self, fields: _Object, at: int) -> list[Chunk]:
        """A ``9:`` line: the AI SDK 4's tool call with its whole arguments.

        It may come alone, or after the call's ``b:`` and ``c:`` lines
        streamed the same arguments; only arguments not streamed yet
        become a chunk.
        """
        tool_call_id = fields.text("toolCallId")
        tool_name = fields.text("toolName")
        args = fields.optional("args")
        if args is not None and not isinstance(args, dict | list):
            raise _expected(at, "'args' to be an object", "in a '9:' line", args)
        chunks: list[Chunk] = []
        call = self._calls.get(tool_call_id)
        if call is None:
            call = self._calls[tool_call_id] = _ToolCall()
            chunks.append(ToolCallBeginChunk(tool_call_id, tool_name))
        if args is not None and not (call.has_args or call.args_closed or call.finished):
            text = encode(args).decode()
            chunks.append(ToolCallDeltaChunk(tool_call_id, text))
            call.arguments.add(text)
            call.has_args = True
        call.args_closed = True
        return chunks

    def _approval(self, fields: _Object, at: int) -> list[Chunk]:
        self._call(fields.text("toolCallId"), at)
        approval = fields.optional_object("approval")
        if approval is None:
            raise _expected(
                at, "'approval' to be an object", "in an 'aui-tool-call-approval:' line", None
            )
        approval.text("id")
        approval.flag("approved")
        return []  # no chunk asks for, or records, an approval
