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

The decoder reads such a body back: it keeps what it needs of each part it
has seen started (its kind, its tool call id, its parent id) and turns every
event into the chunks it carries. It reads what assistant-ui's own producers
write too (the npm ``assistant-stream``, the PyPI ``assistant-stream``), and
follows assistant-ui's own reader where the format leaves a choice: an event
of a type it does not know is skipped, a body without ``[DONE]`` is cut
short. What no chunk can say is skipped; the format's page of the docs lists
it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, get_args

from .._errors import DecodeError
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
from ._encoder import FORMAT_HEADER, StreamEncoder
from ._message import (
    MessageOutcome,
    OpenText,
    ToolArguments,
    not_a_chunk,
    open_tool_call,
    start_tool_call,
    with_parent_id,
)

__all__ = ["AssistantTransportDecoder", "AssistantTransportEncoder"]

Path = list[int]


class _ToolPart:
    __slots__ = ("arguments", "ended", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arguments = ToolArguments()
        self.ended = (
            False  # the run ended its arguments: the part is finished, the result may come
        )


class AssistantTransportEncoder(StreamEncoder):
    """Encodes chunks as assistant transport events.

    A tool call's arguments end (``tool-call-args-text-finish``) as soon as
    they are complete JSON, else before its result. When the run ends them
    (a ``tool-call-args-text-finish`` chunk) the part finishes there, with
    its last piece of text, and the result, when it comes, still addresses
    the part.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = {**_sse.HEADERS, FORMAT_HEADER: "assistant-transport"}
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
        if not (tool.ended or tool.arguments.complete):
            self._finish_arguments(tool, events)
        if result is not None:
            events.append(result)
        if not tool.ended:
            events.append({"type": "part-finish", "path": tool.path})

    def _end_arguments(self, chunk: ToolCallArgsTextFinishChunk, events: list[Any]) -> None:
        """Finish the part where the run ends the arguments; its result may follow."""
        tool = open_tool_call(self._tool_parts, chunk.tool_call_id)
        if tool.ended:
            return
        tool.ended = True
        complete = tool.arguments.complete
        if chunk.args_text_delta:
            text = chunk.args_text_delta
            events.append({"type": "text-delta", "textDelta": text, "path": tool.path})
            tool.arguments.add(text)
        if not complete:
            self._finish_arguments(tool, events)
        events.append({"type": "part-finish", "path": tool.path})

    def _reasoning_part(self, chunk: ReasoningPartStartChunk, events: list[Any]) -> None:
        """A reasoning part with its summary, which the producer's reasoning goes into next."""
        parent_id = chunk.parent_id
        self._close_text(parent_id, events)
        part = {"type": "reasoning", "unstable_summary": chunk.unstable_summary}
        self._text.open(parent_id, "reasoning", self._start_part(part, parent_id, events))

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
            case ReasoningPartStartChunk(unstable_summary=None):
                pass  # without a summary, the deltas open the part
            case ReasoningPartStartChunk():
                self._reasoning_part(chunk, events)
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
                self._arguments(chunk, events)
            case ToolCallArgsTextFinishChunk():
                self._end_arguments(chunk, events)
            case ToolResultChunk():
                tool = open_tool_call(self._tool_parts, chunk.tool_call_id)
                self._close_tool(chunk.tool_call_id, events, _result(chunk, tool.path))
            case SourceChunk() | FileChunk():
                self._whole_part(_whole_part(chunk), chunk.parent_id, events)
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
                events.append(_step_finish(chunk))
            case ErrorChunk():
                self._close_all_text(events)
                self._outcome.failed = True
                events.append({"type": "error", "error": chunk.error})
            case UpdateStateChunk():
                events.append({"type": "update-state", "operations": chunk.operations})
            case _:
                not_a_chunk(chunk)

    def _arguments(self, chunk: ToolCallDeltaChunk, events: list[dict[str, Any]]) -> None:
        tool = open_tool_call(self._tool_parts, chunk.tool_call_id)
        delta = chunk.args_text_delta
        events.append({"type": "text-delta", "textDelta": delta, "path": tool.path})
        if tool.arguments.add(delta):
            self._finish_arguments(tool, events)


def _result(chunk: ToolResultChunk, path: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "result",
        "path": path,
        "result": chunk.result,
        "isError": chunk.is_error,
    }
    if chunk.artifact is not None:
        result["artifact"] = chunk.artifact
    return result


def _whole_part(chunk: SourceChunk | FileChunk) -> dict[str, Any]:
    """The part of a source or a file, which starts and finishes at once."""
    if isinstance(chunk, FileChunk):
        return {"type": "file", "data": chunk.data, "mimeType": chunk.mime_type}
    part = {"type": "source", "sourceType": chunk.source_type, "id": chunk.id, "url": chunk.url}
    if chunk.title is not None:
        part["title"] = chunk.title
    return part


def _step_finish(chunk: StepFinishChunk) -> dict[str, Any]:
    return {
        "type": "step-finish",
        "finishReason": chunk.finish_reason,
        "usage": {"inputTokens": chunk.input_tokens, "outputTokens": chunk.output_tokens},
        "isContinued": chunk.is_continued,
    }


# -- decoding ----------------------------------------------------------------

_FINISH_REASONS: dict[str, FinishReason] = {reason: reason for reason in get_args(FinishReason)}

_SKIPPED = ""
"""The kind of a part no chunk can say: one of a type the decoder does not
know, or a source that is not a URL. Like assistant-ui's accumulator, the
decoder still counts it, so that the parts after it keep their paths, and
skips whatever is addressed to it."""

_MISSING: Any = object()

_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number holds exactly."""


def _describe(value: Any) -> str:
    """The JSON type of ``value``, for an error message (never the value: it may be huge)."""
    match value:
        case _ if value is _MISSING:
            return "nothing"
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
    """A JSON object of the body, read field by field.

    A field that is missing or of the wrong type is a ``DecodeError`` at the
    start of the event that holds the object, naming the object and field.
    """

    __slots__ = ("offset", "values", "what")

    def __init__(self, values: dict[str, Any], offset: int, what: str) -> None:
        self.values = values
        self.offset = offset
        self.what = what

    def error(self, problem: str) -> DecodeError:
        """The error to raise for ``problem`` with this object."""
        return DecodeError(self.offset, f"{self.what}: {problem}")

    def _expected(self, key: str, kind: str) -> DecodeError:
        got = _describe(self.values.get(key, _MISSING))
        return self.error(f"expected {key} as {kind}, got {got}")

    def string(self, key: str) -> str:
        value = self.values.get(key)
        if not isinstance(value, str):
            raise self._expected(key, "a string")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is not None and not isinstance(value, str):
            raise self._expected(key, "a string")
        return value

    def array(self, key: str) -> list[Any]:
        value = self.values.get(key)
        if not isinstance(value, list):
            raise self._expected(key, "an array")
        return value

    def object(self, key: str) -> _Fields:
        value = self.values.get(key)
        if not isinstance(value, dict):
            raise self._expected(key, "an object")
        return _Fields(value, self.offset, f"{self.what}'s {key}")

    def flag(self, key: str) -> bool:
        """An optional boolean, false when missing."""
        value = self.values.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._expected(key, "a boolean")
        return value is True

    def count(self, key: str) -> int:
        """An optional token count, 0 when missing."""
        value = self.values.get(key)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._expected(key, "a token count")
        return value

    def path(self) -> list[int] | None:
        """The event's ``path``, a list of indices; ``None`` if it has none."""
        path = self.values.get("path", _MISSING)
        if path is _MISSING:
            return None
        if not isinstance(path, list) or not all(
            isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in path
        ):
            raise self.error("expected path as an array of indices")
        return path


class _Part:
    """What the decoder remembers of a part it has seen started."""

    __slots__ = ("answered", "arguments", "ended", "kind", "parent_id", "tool_call_id")

    def __init__(self, kind: str, parent_id: str | None = None, tool_call_id: str = "") -> None:
        self.kind = kind  # its type: text, reasoning, tool-call, source, file, data
        self.parent_id = parent_id
        self.tool_call_id = tool_call_id
        self.arguments = ToolArguments()  # a tool call's argument text
        self.answered = False  # a tool call whose final result has come
        self.ended = False  # a tool call whose arguments ended before they were JSON


_Reader = Callable[["AssistantTransportDecoder", _Fields, "list[int] | None", "list[Chunk]"], None]


class AssistantTransportDecoder(StreamDecoder):
    """Decodes an assistant transport body into chunks.

    Text into a text or reasoning part becomes a ``TextDeltaChunk`` or a
    ``ReasoningDeltaChunk`` with the part's parent id, text into a tool-call
    part a ``ToolCallDeltaChunk``, a ``result`` a ``ToolResultChunk``; a
    tool-call, source, file or data part's start gives its chunk, and the
    events without a path give theirs. An event of a type the decoder does
    not know is skipped, as assistant-ui's decoder skips it: it comes from a
    newer producer. One that is known but malformed, or addressed to a part
    never started, is a ``DecodeError``. The body ends with ``data: [DONE]``;
    whatever follows is not read for events, as in assistant-ui.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE

    def __init__(self) -> None:
        self._events = _sse.EventParser()
        self._parts: list[_Part] = []  # by index: a part's path is [index]
        self._fed = 0
        self._done = False

    def feed(self, data: bytes) -> list[Chunk]:
        self._fed += len(data)
        chunks: list[Chunk] = []
        for event in self._events.feed(data):
            if not self._done:
                self._read(event, chunks)
        return chunks

    def close(self) -> list[Chunk]:
        self._events.close()
        if not self._done:
            raise DecodeError(self._fed, "the body ends too soon: expected data: [DONE]")
        return []

    def _read(self, event: _sse.Event, chunks: list[Chunk]) -> None:
        if event.event not in ("", "message"):
            # assistant-ui's decoder fails on these too: they are not of the format.
            raise DecodeError(
                event.offset, f"expected an event without a name, not {event.event!r}"
            )
        if event.data == "[DONE]":
            self._done = True
            return
        value = json_value(event.data, event.offset, "an event")
        if not isinstance(value, dict):
            raise DecodeError(
                event.offset, f"expected an event as an object, got {_describe(value)}"
            )
        kind = _Fields(value, event.offset, "an event").string("type")
        fields = _Fields(value, event.offset, f"a {kind} event")
        read = _READERS.get(kind)
        if read is not None:
            read(self, fields, fields.path(), chunks)

    # -- parts ---------------------------------------------------------------

    def _part_start(self, event: _Fields, path: list[int] | None, chunks: list[Chunk]) -> None:
        if path:
            raise event.error(
                "expected path [], a part of the message: nested parts are not supported"
            )
        part = event.object("part")
        kind = part.string("type")
        parent_id = part.optional_string("parentId")
        match kind:
            case "text":
                pass
            case "reasoning":
                summary = part.optional_string("unstable_summary")
                if summary is not None:
                    chunks.append(ReasoningPartStartChunk(summary, parent_id))
            case "tool-call":
                begin = ToolCallBeginChunk(
                    part.string("toolCallId"), part.string("toolName"), parent_id
                )
                self._parts.append(_Part(kind, parent_id, begin.tool_call_id))
                chunks.append(begin)
                return
            case "source" if part.values.get("sourceType") == "url":
                title = part.optional_string("title")
                chunks.append(
                    SourceChunk(part.string("id"), part.string("url"), "url", title, parent_id)
                )
            case "file":
                chunks.append(FileChunk(part.string("data"), part.string("mimeType"), parent_id))
            case "data":
                chunks.append(DataChunk(part.values.get("data"), part.string("name"), parent_id))
            case _:
                kind = _SKIPPED
        self._parts.append(_Part(kind, parent_id))

    def _addressed(self, event: _Fields, path: list[int] | None) -> _Part | None:
        """The part ``event`` is addressed to; ``None`` if the event is to be skipped."""
        if path is None:
            raise event.error("expected path, the [index] of a part")
        if not path:
            # The message itself, which assistant-ui's accumulator ignores too:
            # assistant-stream 0.0.36 sends a result for a call it never
            # started there.
            return None
        if len(path) > 1:
            raise event.error(
                f"expected path [index]: nested parts are not supported, got {len(path)} indices"
            )
        if path[0] >= len(self._parts):
            raise event.error(f"expected the path of a part started before it, got [{path[0]}]")
        part = self._parts[path[0]]
        return None if part.kind == _SKIPPED else part

    def _tool_part(self, event: _Fields, path: list[int] | None) -> _Part | None:
        part = self._addressed(event, path)
        if part is not None and part.kind != "tool-call":
            raise event.error(
                f"expected the path of a tool-call part, got that of a {part.kind} part"
            )
        return part

    def _text_delta(self, event: _Fields, path: list[int] | None, chunks: list[Chunk]) -> None:
        text = event.string("textDelta")
        part = self._addressed(event, path)
        if part is None:
            return
        match part.kind:
            case "text":
                chunks.append(TextDeltaChunk(text, part.parent_id))
            case "reasoning":
                chunks.append(ReasoningDeltaChunk(text, part.parent_id))
            case "tool-call":
                # Argument text after the result or the arguments' end has no
                # place in a run; both assistant-stream packages send a call's
                # "{}" after its result.
                if not (part.answered or part.ended):
                    part.arguments.add(text)
                    chunks.append(ToolCallDeltaChunk(part.tool_call_id, text))
            case _:
                raise event.error(
                    f"expected the path of a part that takes text, got that of a {part.kind} part"
                )

    def _result(self, event: _Fields, path: list[int] | None, chunks: list[Chunk]) -> None:
        is_error = event.flag("isError")
        part = self._tool_part(event, path)
        if part is None or event.values.get("isPreliminary") is True:
            return  # a preliminary result is replaced by the final one
        part.answered = True
        result, artifact = event.values.get("result"), event.values.get("artifact")
        chunks.append(ToolResultChunk(part.tool_call_id, result, artifact, is_error))

    def _arguments_finish(
        self, event: _Fields, path: list[int] | None, chunks: list[Chunk]
    ) -> None:
        part = self._tool_part(event, path)
        if part is None or part.answered or part.ended:
            return
        arguments = part.arguments
        if not (arguments.complete or arguments.empty):
            # Complete JSON says it is complete: only arguments that are not
            # need their end said.
            part.ended = True
            chunks.append(ToolCallArgsTextFinishChunk(part.tool_call_id))

    def _approval(self, event: _Fields, path: list[int] | None, _: list[Chunk]) -> None:
        approval = event.object("approval")
        approval.string("id")
        approval.flag("approved")
        self._tool_part(event, path)

    def _part_finish(self, event: _Fields, path: list[int] | None, _: list[Chunk]) -> None:
        self._addressed(event, path)

    # -- the message ---------------------------------------------------------

    def _update_state(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        operations = tuple(_operation(value, event) for value in event.array("operations"))
        chunks.append(UpdateStateChunk(operations))

    def _error(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        chunks.append(ErrorChunk(event.string("error")))

    def _data(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        chunks.extend(DataChunk(value) for value in event.array("data"))

    def _annotations(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        chunks.append(AnnotationsChunk(tuple(event.array("annotations"))))

    def _step_start(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        chunks.append(StepStartChunk(event.string("messageId")))

    def _step_finish(self, event: _Fields, _: list[int] | None, chunks: list[Chunk]) -> None:
        reason = _FINISH_REASONS.get(event.string("finishReason"), "other")
        usage = event.object("usage") if "usage" in event.values else None
        input_tokens = usage.count("inputTokens") if usage else 0
        output_tokens = usage.count("outputTokens") if usage else 0
        continued = event.flag("isContinued")
        chunks.append(StepFinishChunk(reason, input_tokens, output_tokens, continued))

    def _message_finish(self, event: _Fields, _: list[int] | None, __: list[Chunk]) -> None:
        # Its reason and usage are the steps' own, summed: no chunk of its own.
        event.string("finishReason")


def _operation(value: Any, event: _Fields) -> StateOperation:
    """A state operation of an ``update-state`` event."""
    if not isinstance(value, dict):
        raise event.error(f"expected each operation as an object, got {_describe(value)}")
    operation = _Fields(value, event.offset, f"{event.what}'s operation")
    path = [_state_key(key, operation) for key in operation.array("path")]
    kind = operation.string("type")
    if kind == "set":
        return {"type": "set", "path": path, "value": value.get("value")}
    if kind == "append-text":
        return {"type": "append-text", "path": path, "value": operation.string("value")}
    raise operation.error("expected type set or append-text")


def _state_key(key: Any, operation: _Fields) -> str:
    """A key of a state path, as a string.

    assistant-ui's state accumulator reads a number as the string it spells,
    so a producer may send array indices as numbers; an integer JavaScript
    holds exactly is spelled the same in Python.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) <= _SAFE_INTEGER:
        return str(key)
    raise operation.error(f"expected the keys of path as strings, got {_describe(key)}")


_READERS: dict[str, _Reader] = {
    "part-start": AssistantTransportDecoder._part_start,
    "text-delta": AssistantTransportDecoder._text_delta,
    "tool-call-args-text-finish": AssistantTransportDecoder._arguments_finish,
    "tool-call-approval": AssistantTransportDecoder._approval,
    "result": AssistantTransportDecoder._result,
    "part-finish": AssistantTransportDecoder._part_finish,
    "update-state": AssistantTransportDecoder._update_state,
    "error": AssistantTransportDecoder._error,
    "data": AssistantTransportDecoder._data,
    "annotations": AssistantTransportDecoder._annotations,
    "step-start": AssistantTransportDecoder._step_start,
    "step-finish": AssistantTransportDecoder._step_finish,
    "message-finish": AssistantTransportDecoder._message_finish,
}
"""What each event type the format knows becomes; any other type is skipped."""
