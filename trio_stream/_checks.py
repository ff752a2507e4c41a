"""What a run accepts: every chunk is checked once, when the app makes it.

A chunk that no format could send (a value with no JSON form, text that is
not Unicode, a result for a tool call the run never started, two calls under
one id) is refused at the controller call that makes it, with an error
naming the problem, the same whatever format the run is streamed in. Chunks
copied in from a stream (``add_stream``) pass the same checks, one by one.
The encoders can then assume that every run they are given makes sense.

Values are taken in their JSON form at the call (``normalized``): the chunk
holds a copy made of JSON types only, so a caller changing its object
afterwards changes nothing that is queued, and nothing can become
unencodable between the call and the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from ._errors import StreamClosedError, ToolCallError
from ._json import ensure_text, normalized
from .chunks import (
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

__all__ = [
    "ToolCallLedger",
    "check_chunk",
    "check_data_name",
    "check_step_finish",
    "require_optional_str",
    "require_str",
]

_FINISH_REASONS = frozenset(get_args(FinishReason))

STATE_DATA_NAME = "update-state"
"""The data part name the UI message stream gives state updates."""


def require_str(value: object, what: str) -> None:
    """``TypeError`` unless ``value`` is a ``str``; ``SerializationError`` unless Unicode."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    ensure_text(value, what)


def require_optional_str(value: object, what: str) -> None:
    """``require_str``, allowing ``None``."""
    if value is not None:
        require_str(value, what)


def check_data_name(name: str | None, what: str) -> None:
    """A data part's name: a non-empty string that is not the state's own."""
    if name is None:
        return
    require_str(name, what)
    if not name:
        raise ValueError(f"{what} must not be empty")
    if name == STATE_DATA_NAME:
        raise ValueError(
            f"{what} {name!r} is reserved: the UI message stream sends the run's state "
            f"as data-{name} parts, which clients apply as state updates"
        )


def check_step_finish(finish_reason: object, input_tokens: object, output_tokens: object) -> None:
    """A step's finish reason and its token counts."""
    if finish_reason not in _FINISH_REASONS:
        raise ValueError(
            f"finish_reason must be one of {sorted(_FINISH_REASONS)}, not {finish_reason!r}"
        )
    for name, count in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{name} must be a non-negative int, not {count!r}")


_ANSWERED, _ARGUMENTS_FINISHED, _STREAMING = 0, 1, 2
"""The states of a tool call in a ``ToolCallLedger``, in the order a call goes through them."""


class ToolCallLedger:
    """The tool call ids of one run, and how far each call has come.

    Every format addresses a call's arguments and result by its id, so a
    run may start each id once. A call streams its arguments until they are
    finished (``finish_arguments``) or its result comes; its result comes
    once. What would break that order is refused: argument text after the
    arguments' end or after the result, a second result, anything for a call
    the run never started.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}  # id: _STREAMING, _ARGUMENTS_FINISHED or _ANSWERED

    def begin(self, tool_call_id: str) -> None:
        """Record a new call; ``ToolCallError`` if the run has used the id already."""
        if tool_call_id in self._calls:
            raise ToolCallError(
                f"tool call id {tool_call_id!r} is used already in this run; "
                f"every tool call needs an id of its own"
            )
        self._calls[tool_call_id] = _STREAMING

    def is_open(self, tool_call_id: str) -> bool:
        """Whether the run started the call and its result is still to come."""
        return self._calls.get(tool_call_id, _ANSWERED) != _ANSWERED

    def arguments_finished(self, tool_call_id: str) -> bool:
        """Whether the call's arguments ended, by their finish or by its result."""
        return self._calls.get(tool_call_id) in (_ARGUMENTS_FINISHED, _ANSWERED)

    def require_streaming(self, tool_call_id: str, what: str) -> None:
        """Refuse argument text unless the call is started and still takes it.

        ``ToolCallError`` for an id never started; ``StreamClosedError`` for
        a call whose arguments are finished or that has its result.
        """
        state = self._calls.get(tool_call_id)
        if state == _STREAMING:
            return
        if state == _ARGUMENTS_FINISHED:
            raise StreamClosedError(
                f"{what}: the arguments of tool call {tool_call_id!r} are finished already; "
                f"no argument text may follow their end"
            )
        self.require_open(tool_call_id, what)

    def require_open(self, tool_call_id: str, what: str) -> None:
        """``ToolCallError`` for an id never started, ``StreamClosedError`` for a finished one."""
        state = self._calls.get(tool_call_id)
        if state is None:
            raise ToolCallError(f"{what}: this run started no tool call {tool_call_id!r}")
        if state == _ANSWERED:
            raise StreamClosedError(f"{what}: tool call {tool_call_id!r} has its result already")

    def finish_arguments(self, tool_call_id: str, what: str) -> bool:
        """Record the end of the call's arguments; whether they were still streaming.

        Ending them again, or after the result, changes nothing (false), as
        closing a file twice does; ``ToolCallError`` for an id never started.
        """
        state = self._calls.get(tool_call_id)
        if state is None:
            raise ToolCallError(f"{what}: this run started no tool call {tool_call_id!r}")
        if state != _STREAMING:
            return False
        self._calls[tool_call_id] = _ARGUMENTS_FINISHED
        return True

    def finish(self, tool_call_id: str, what: str) -> None:
        """Record the call's result; the same errors as ``require_open``."""
        self.require_open(tool_call_id, what)
        self._calls[tool_call_id] = _ANSWERED


# -- chunks copied in whole (add_stream) ---------------------------------------------

Check = Callable[[Any, ToolCallLedger], Chunk | None]


def _text(chunk: TextDeltaChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.text_delta, "a text-delta chunk's text_delta")
    require_optional_str(chunk.parent_id, "a text-delta chunk's parent_id")
    return chunk


def _reasoning(chunk: ReasoningDeltaChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.reasoning_delta, "a reasoning-delta chunk's reasoning_delta")
    require_optional_str(chunk.parent_id, "a reasoning-delta chunk's parent_id")
    return chunk


def _reasoning_start(chunk: ReasoningPartStartChunk, _: ToolCallLedger) -> Chunk:
    require_optional_str(chunk.unstable_summary, "a reasoning-part-start chunk's unstable_summary")
    require_optional_str(chunk.parent_id, "a reasoning-part-start chunk's parent_id")
    return chunk


def _begin(chunk: ToolCallBeginChunk, calls: ToolCallLedger) -> Chunk:
    require_str(chunk.tool_call_id, "a tool-call-begin chunk's tool_call_id")
    require_str(chunk.tool_name, "a tool-call-begin chunk's tool_name")
    require_optional_str(chunk.parent_id, "a tool-call-begin chunk's parent_id")
    calls.begin(chunk.tool_call_id)
    return chunk


def _delta(chunk: ToolCallDeltaChunk, calls: ToolCallLedger) -> Chunk:
    require_str(chunk.tool_call_id, "a tool-call-delta chunk's tool_call_id")
    require_str(chunk.args_text_delta, "a tool-call-delta chunk's args_text_delta")
    calls.require_streaming(chunk.tool_call_id, "a tool-call-delta chunk")
    return chunk


def _arguments_finish(chunk: ToolCallArgsTextFinishChunk, calls: ToolCallLedger) -> Chunk | None:
    what = "a tool-call-args-text-finish chunk"
    require_str(chunk.tool_call_id, f"{what}'s tool_call_id")
    require_str(chunk.args_text_delta, f"{what}'s args_text_delta")
    if calls.finish_arguments(chunk.tool_call_id, what):
        return chunk
    if chunk.args_text_delta:
        calls.require_streaming(chunk.tool_call_id, what)  # raises: text after the end
    # The arguments ended already: a repeat, or the one assistant-stream's
    # controllers send after every result. It changes nothing.
    return None


def _result(chunk: ToolResultChunk, calls: ToolCallLedger) -> Chunk:
    require_str(chunk.tool_call_id, "a tool-result chunk's tool_call_id")
    result = normalized(chunk.result, f"tool-result of {chunk.tool_call_id}")
    artifact = normalized(chunk.artifact, f"tool-result artifact of {chunk.tool_call_id}")
    calls.finish(chunk.tool_call_id, "a tool-result chunk")
    return ToolResultChunk(chunk.tool_call_id, result, artifact, bool(chunk.is_error))


def _data(chunk: DataChunk, _: ToolCallLedger) -> Chunk:
    check_data_name(chunk.name, "a data chunk's name")
    require_optional_str(chunk.parent_id, "a data chunk's parent_id")
    return DataChunk(normalized(chunk.data, "a data chunk's data"), chunk.name, chunk.parent_id)


def _error(chunk: ErrorChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.error, "an error chunk's error")
    return chunk


def _operation(op: object) -> StateOperation:
    if not isinstance(op, dict) or op.get("type") not in ("set", "append-text"):
        raise ValueError(f"a state operation is a set or append-text dict, not {op!r}")
    path = op.get("path")
    if not isinstance(path, list | tuple):
        raise TypeError(f"a state operation's path is a list of str, not {path!r}")
    for key in path:
        require_str(key, "a state operation's path key")
    if op["type"] == "set":
        return {"type": "set", "path": list(path), "value": normalized(op.get("value"), "a set")}
    require_str(op.get("value"), "an append-text operation's value")
    return {"type": "append-text", "path": list(path), "value": op["value"]}


def _state(chunk: UpdateStateChunk, _: ToolCallLedger) -> Chunk:
    if not isinstance(chunk.operations, list | tuple):
        raise TypeError("an update-state chunk's operations are a list of operations")
    return UpdateStateChunk(tuple(_operation(op) for op in chunk.operations))


def _source(chunk: SourceChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.id, "a source chunk's id")
    require_str(chunk.url, "a source chunk's url")
    require_optional_str(chunk.title, "a source chunk's title")
    require_optional_str(chunk.parent_id, "a source chunk's parent_id")
    if chunk.source_type != "url":
        raise ValueError(f"a source chunk's source_type is 'url', not {chunk.source_type!r}")
    return chunk


def _file(chunk: FileChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.data, "a file chunk's data")
    require_str(chunk.mime_type, "a file chunk's mime_type")
    require_optional_str(chunk.parent_id, "a file chunk's parent_id")
    return chunk


def _annotations(chunk: AnnotationsChunk, _: ToolCallLedger) -> Chunk:
    if not isinstance(chunk.annotations, list | tuple):
        raise TypeError("an annotations chunk's annotations are a list")
    return AnnotationsChunk(tuple(normalized(list(chunk.annotations), "annotations")))


def _step_start(chunk: StepStartChunk, _: ToolCallLedger) -> Chunk:
    require_str(chunk.message_id, "a step-start chunk's message_id")
    return chunk


def _step_finish(chunk: StepFinishChunk, _: ToolCallLedger) -> Chunk:
    check_step_finish(chunk.finish_reason, chunk.input_tokens, chunk.output_tokens)
    if not isinstance(chunk.is_continued, bool):
        raise TypeError("a step-finish chunk's is_continued is a bool")
    return chunk


_CHECKS: dict[type[Any], Check] = {
    TextDeltaChunk: _text,
    ReasoningDeltaChunk: _reasoning,
    ReasoningPartStartChunk: _reasoning_start,
    ToolCallBeginChunk: _begin,
    ToolCallDeltaChunk: _delta,
    ToolCallArgsTextFinishChunk: _arguments_finish,
    ToolResultChunk: _result,
    DataChunk: _data,
    ErrorChunk: _error,
    UpdateStateChunk: _state,
    SourceChunk: _source,
    FileChunk: _file,
    AnnotationsChunk: _annotations,
    StepStartChunk: _step_start,
    StepFinishChunk: _step_finish,
}


def check_chunk(chunk: object, calls: ToolCallLedger) -> Chunk | None:
    """``chunk``, checked as its controller call would check it, values in JSON form.

    Raises what that call raises, and ``TypeError`` for what is not a chunk.
    ``None`` for a chunk that changes nothing, as its call would send
    nothing: the end of arguments that have ended already.
    """
    check = _CHECKS.get(type(chunk))
    if check is None:
        raise TypeError(f"not a chunk: a {type(chunk).__name__}")
    return check(chunk, calls)
