"""AG-UI, the Agent-User Interaction protocol: server-sent events of typed JSON events.

What CopilotKit and the agent frameworks that speak AG-UI read (npm
``@ag-ui/client``'s ``HttpAgent``, the ``ag-ui-protocol`` Python package).
A body is one run: ``RUN_STARTED`` first, then events, then ``RUN_FINISHED``,
or ``RUN_ERROR`` after an error. The client verifies the order: content only
inside a message it saw start, every message, tool call, step and subagent
closed before ``RUN_FINISHED``, nothing at all after ``RUN_ERROR``. The
encoder writes only sequences it accepts.

How a run's chunks map onto events (the docs page has the whole table):

- Text and reasoning are messages: ``TEXT_MESSAGE_START``/``CONTENT``/``END``
  (role ``assistant``) and ``REASONING_START``, ``REASONING_MESSAGE_START``/
  ``CONTENT``/``END``, ``REASONING_END``, one event per delta. Each producer
  (the run, each sub-stream) keeps its own open message, as the other formats
  keep an open text part; the client takes several open messages at once.
- A reasoning part opened with a summary (``add_reasoning_part``) is a new
  reasoning message whose ``REASONING_START`` carries the summary in
  ``metadata.trioStream.summary``.
- A tool call is ``TOOL_CALL_START`` (its ``parentMessageId`` is the
  producer's latest text message, so the client files the call under it),
  ``TOOL_CALL_ARGS`` per argument piece, ``TOOL_CALL_END`` once the arguments
  are complete JSON or the run ends them (else before the result), and
  ``TOOL_CALL_RESULT``, whose
  ``content`` is the result if it is a string and its JSON text otherwise;
  ``metadata.trioStream`` says which, and carries ``isError`` and the
  artifact.
- A sub-stream is a subagent: ``SUBAGENT_STARTED`` with the parent id as its
  ``subagentRunId`` (and ``parentToolCallId``), its events attributed with
  ``subagentRunId``, ``SUBAGENT_FINISHED`` at the parent call's result or at
  the end.
- State operations are ``STATE_DELTA`` JSON Patches against a copy of the
  state the encoder keeps (see ``_json_patch``); a chunk that sets the whole
  state is a ``STATE_SNAPSHOT``.
- Steps are ``STEP_STARTED``/``STEP_FINISHED`` named by the step's message
  id; data, sources, files, annotations and errors are ``CUSTOM`` events.
  A run that had an error ends with ``RUN_ERROR`` repeating the last one,
  since the client accepts nothing after it; errors before that are
  ``CUSTOM`` events, so that the run can go on.

The decoder reads that back, and what other producers send: the
``*_CHUNK`` shorthands, deprecated ``THINKING_*`` events, every JSON Patch
operation, foreign ``CUSTOM`` events (as data chunks named by the event),
and the events without a chunk of their own as data chunks named by their
type. Event types it does not know are skipped, as the client drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import msgspec

from .._errors import DecodeError
from .._ids import message_id as new_message_id
from .._ids import random_id
from .._json import normalized
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
from ._decoder import StreamDecoder, json_value
from ._encoder import FORMAT_HEADER, StreamEncoder
from ._json_patch import PatchError, check_patch, operation_patch, patch_operations
from ._message import OpenText, ToolArguments, not_a_chunk, open_tool_call, start_tool_call

__all__ = ["CUSTOM_PREFIX", "AGUIDecoder", "AGUIEncoder"]

METADATA_KEY = "trioStream"
"""The key of the encoder's own entries in an event's ``metadata``."""

CUSTOM_PREFIX = "trio-stream."
"""The names of the encoder's own ``CUSTOM`` events start with this."""

DATA = CUSTOM_PREFIX + "data"
ERROR = CUSTOM_PREFIX + "error"
SOURCE = CUSTOM_PREFIX + "source"
FILE = CUSTOM_PREFIX + "file"
ANNOTATIONS = CUSTOM_PREFIX + "annotations"
STEP_FINISH = CUSTOM_PREFIX + "step-finish"

SUBSTREAM_NAME = "sub-stream"
"""A subagent's name when its parent id is not a tool call of the run."""


def _tagged(event: dict[str, Any], parent_id: str | None) -> dict[str, Any]:
    """``event``, attributed to the sub-stream ``parent_id`` if there is one."""
    if parent_id is not None:
        event["subagentRunId"] = parent_id
    return event


def _step_summary(chunk: StepFinishChunk) -> dict[str, Any]:
    return {
        "finishReason": chunk.finish_reason,
        "usage": {"inputTokens": chunk.input_tokens, "outputTokens": chunk.output_tokens},
        "isContinued": chunk.is_continued,
    }


class _Call:
    """An encoded tool call: who made it, its message, its arguments."""

    __slots__ = ("arguments", "ended", "message_id", "name", "open", "parent_id")

    def __init__(self, name: str, parent_id: str | None, message_id: str) -> None:
        self.name = name
        self.parent_id = parent_id
        self.message_id = message_id
        self.arguments = ToolArguments()
        self.open = True  # no TOOL_CALL_END since its last TOOL_CALL_START
        self.ended = False  # the run ended its arguments


class AGUIEncoder(StreamEncoder):
    """Encodes chunks as AG-UI events.

    ``thread_id`` and ``run_id`` are the ids of the client's
    ``RunAgentInput`` (new random ids by default), echoed in ``RUN_STARTED``
    and ``RUN_FINISHED``; ``parent_run_id`` too, if given. ``state`` is the
    state the run starts from (``create_run(..., state=...)``), which the
    client holds as well: state operations become JSON Patches against it.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = {**_sse.HEADERS, FORMAT_HEADER: "ag-ui"}
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(
        self,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        state: Any = None,
    ) -> None:
        self.thread_id = random_id("thread_") if thread_id is None else thread_id
        self.run_id = random_id("run_") if run_id is None else run_id
        self.parent_run_id = parent_run_id
        self._state = normalized(state, "the AG-UI encoder's state")
        self._text: OpenText[str] = OpenText()  # message ids
        self._assistant: dict[str | None, str] = {}  # each producer's latest text message
        self._calls: dict[str, _Call] = {}  # awaiting their result
        self._call_names: dict[str, tuple[str, str | None]] = {}  # every call: name, parent
        self._subagents: dict[str, bool] = {}  # started: still open
        self._step: str | None = None
        self._last_error: str | None = None
        self._usage: list[int] | None = None  # input, output tokens over the steps

    def start(self) -> bytes:
        event = {"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id}
        if self.parent_run_id is not None:
            event["parentRunId"] = self.parent_run_id
        return _sse.event(event)

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            self._translate(chunk, events)
        return _sse.events(events)

    def finish(self) -> bytes:
        events: list[dict[str, Any]] = []
        self._close_all(events)
        usage = self._usage_entries()
        if self._last_error is not None:
            # The client takes nothing after RUN_ERROR: it goes last, and says
            # the last error again for clients that show only this event.
            error: dict[str, Any] = {"type": "RUN_ERROR", "message": self._last_error}
            events.append(error if usage is None else {**error, "usage": usage})
            return _sse.events(events)
        finished: dict[str, Any] = {
            "type": "RUN_FINISHED",
            "threadId": self.thread_id,
            "runId": self.run_id,
        }
        if self._calls:
            # Calls without a result are the front-end's to answer.
            finished["outcome"] = {"type": "success", "pendingToolCallIds": list(self._calls)}
        if usage is not None:
            finished["usage"] = usage
        events.append(finished)
        return _sse.events(events)

    def _usage_entries(self) -> list[dict[str, int]] | None:
        if self._usage is None:
            return None
        inputs, outputs = self._usage
        return [{"inputTokens": inputs, "outputTokens": outputs, "totalTokens": inputs + outputs}]

    def _close_all(self, events: list[dict[str, Any]]) -> None:
        for kind, message_id in self._text.close_all():
            self._end_message(kind, message_id, events)
        for tool_call_id, call in self._calls.items():
            if call.open:
                call.open = False
                events.append({"type": "TOOL_CALL_END", "toolCallId": tool_call_id})
        self._end_step(events)
        for parent_id, running in self._subagents.items():
            if running:
                events.append({"type": "SUBAGENT_FINISHED", "subagentRunId": parent_id})
        self._subagents = dict.fromkeys(self._subagents, False)

    # -- messages ----------------------------------------------------------------

    def _end_message(self, kind: str, message_id: str, events: list[dict[str, Any]]) -> None:
        if kind == "text":
            events.append({"type": "TEXT_MESSAGE_END", "messageId": message_id})
        else:
            events.append({"type": "REASONING_MESSAGE_END", "messageId": message_id})
            events.append({"type": "REASONING_END", "messageId": message_id})

    def _close_text(self, parent_id: str | None, events: list[dict[str, Any]]) -> None:
        closed = self._text.close(parent_id)
        if closed is not None:
            self._end_message(*closed, events)

    def _delta(
        self, kind: str, delta: str, parent_id: str | None, events: list[dict[str, Any]]
    ) -> None:
        message_id = self._text.find(parent_id, kind)
        if message_id is None:
            message_id = self._open_message(kind, parent_id, events)
        content = "TEXT_MESSAGE_CONTENT" if kind == "text" else "REASONING_MESSAGE_CONTENT"
        events.append({"type": content, "messageId": message_id, "delta": delta})

    def _open_message(
        self,
        kind: str,
        parent_id: str | None,
        events: list[dict[str, Any]],
        summary: str | None = None,
    ) -> str:
        """Start a new message for the producer (ending its open one); returns its id."""
        self._close_text(parent_id, events)
        self._enter(parent_id, events)
        message_id = new_message_id()
        self._text.open(parent_id, kind, message_id)
        if kind == "text":
            self._assistant[parent_id] = message_id
            start = {"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"}
            events.append(_tagged(start, parent_id))
            return message_id
        span: dict[str, Any] = {"type": "REASONING_START", "messageId": message_id}
        if summary is not None:
            span["metadata"] = {METADATA_KEY: {"summary": summary}}
        events.append(_tagged(span, parent_id))
        start = {"type": "REASONING_MESSAGE_START", "messageId": message_id, "role": "reasoning"}
        events.append(_tagged(start, parent_id))
        return message_id

    def _enter(self, parent_id: str | None, events: list[dict[str, Any]]) -> None:
        """Start the subagent of sub-stream ``parent_id`` if it has not started."""
        if parent_id is None or parent_id in self._subagents:
            return
        self._subagents[parent_id] = True
        started: dict[str, Any] = {"type": "SUBAGENT_STARTED", "subagentRunId": parent_id}
        call = self._call_names.get(parent_id)
        if call is None:
            started["name"] = SUBSTREAM_NAME
        else:
            name, caller = call
            started.update(name=name, parentToolCallId=parent_id)
            if caller is not None:
                started["parentSubagentRunId"] = caller
        events.append(started)

    def _leave(self, parent_id: str, events: list[dict[str, Any]]) -> None:
        """Finish the subagent of sub-stream ``parent_id``, if it is running."""
        if self._subagents.get(parent_id):
            self._close_text(parent_id, events)
            self._subagents[parent_id] = False
            events.append({"type": "SUBAGENT_FINISHED", "subagentRunId": parent_id})

    # -- tool calls --------------------------------------------------------------

    def _begin(self, chunk: ToolCallBeginChunk, events: list[dict[str, Any]]) -> None:
        parent_id = chunk.parent_id
        self._close_text(parent_id, events)
        self._enter(parent_id, events)
        message_id = self._assistant.get(parent_id)
        if message_id is None:
            # The client makes an assistant message of this id to hold the call.
            message_id = self._assistant[parent_id] = new_message_id()
        call = _Call(chunk.tool_name, parent_id, message_id)
        start_tool_call(self._calls, chunk.tool_call_id, call)
        self._call_names[chunk.tool_call_id] = (chunk.tool_name, parent_id)
        events.append(self._call_start(chunk.tool_call_id, call))

    def _call_start(self, tool_call_id: str, call: _Call) -> dict[str, Any]:
        start = {
            "type": "TOOL_CALL_START",
            "toolCallId": tool_call_id,
            "toolCallName": call.name,
            "parentMessageId": call.message_id,
        }
        return _tagged(start, call.parent_id)

    def _arguments(self, tool_call_id: str, delta: str, events: list[dict[str, Any]]) -> None:
        call = open_tool_call(self._calls, tool_call_id)
        if not call.open:
            # More text after arguments that were complete JSON: the client
            # reopens a call that starts again, and appends to its arguments.
            call.open = True
            events.append(self._call_start(tool_call_id, call))
        events.append({"type": "TOOL_CALL_ARGS", "toolCallId": tool_call_id, "delta": delta})
        if call.arguments.add(delta):
            call.open = False
            events.append({"type": "TOOL_CALL_END", "toolCallId": tool_call_id})

    def _end_arguments(
        self, chunk: ToolCallArgsTextFinishChunk, events: list[dict[str, Any]]
    ) -> None:
        call = open_tool_call(self._calls, chunk.tool_call_id)
        if call.ended:
            return
        call.ended = True
        if chunk.args_text_delta:
            self._arguments(chunk.tool_call_id, chunk.args_text_delta, events)
        if call.open:
            call.open = False
            events.append({"type": "TOOL_CALL_END", "toolCallId": chunk.tool_call_id})

    def _result(self, chunk: ToolResultChunk, events: list[dict[str, Any]]) -> None:
        call = open_tool_call(self._calls, chunk.tool_call_id)
        del self._calls[chunk.tool_call_id]
        if call.open:
            events.append({"type": "TOOL_CALL_END", "toolCallId": chunk.tool_call_id})
        own: dict[str, Any] = {}
        content = chunk.result
        if not isinstance(content, str):
            content = msgspec.json.encode(content).decode()
            own["json"] = True
        if chunk.is_error:
            own["isError"] = True
        if chunk.artifact is not None:
            own["artifact"] = chunk.artifact
        result: dict[str, Any] = {
            "type": "TOOL_CALL_RESULT",
            "messageId": new_message_id(),
            "toolCallId": chunk.tool_call_id,
            "content": content,
            "role": "tool",
        }
        if own:
            result["metadata"] = {METADATA_KEY: own}
        events.append(result)
        # A sub-stream under this call is over once the call has its result.
        self._leave(chunk.tool_call_id, events)

    # -- state, steps, the rest --------------------------------------------------

    def _update_state(self, chunk: UpdateStateChunk, events: list[dict[str, Any]]) -> None:
        operations = chunk.operations
        if len(operations) == 1 and operations[0]["type"] == "set" and not operations[0]["path"]:
            self._state = operations[0]["value"]
            events.append({"type": "STATE_SNAPSHOT", "snapshot": self._state})
            return
        patch: list[dict[str, Any]] = []
        for op in operations:
            encoded = operation_patch(self._state, op)
            if encoded is not None:  # else the client could not apply it either
                patch_operation, self._state = encoded
                patch.append(patch_operation)
        if patch:
            events.append({"type": "STATE_DELTA", "delta": patch})

    def _end_step(
        self, events: list[dict[str, Any]], summary: dict[str, Any] | None = None
    ) -> None:
        """Finish the open step, with what a step-finish chunk says (else implicitly)."""
        if self._step is None:
            return
        own = {"implicit": True} if summary is None else summary
        events.append(
            {"type": "STEP_FINISHED", "stepName": self._step, "metadata": {METADATA_KEY: own}}
        )
        self._step = None

    def _step_finish(self, chunk: StepFinishChunk, events: list[dict[str, Any]]) -> None:
        inputs, outputs = self._usage or (0, 0)
        self._usage = [inputs + chunk.input_tokens, outputs + chunk.output_tokens]
        if self._step is None:
            # The client refuses STEP_FINISHED for a step it did not see start.
            events.append({"type": "CUSTOM", "name": STEP_FINISH, "value": _step_summary(chunk)})
        else:
            self._end_step(events, _step_summary(chunk))

    def _custom(
        self, name: str, value: Any, parent_id: str | None, events: list[dict[str, Any]]
    ) -> None:
        self._enter(parent_id, events)
        events.append(_tagged({"type": "CUSTOM", "name": name, "value": value}, parent_id))

    def _translate(self, chunk: Chunk, events: list[dict[str, Any]]) -> None:
        match chunk:
            case TextDeltaChunk():
                self._delta("text", chunk.text_delta, chunk.parent_id, events)
            case ReasoningDeltaChunk():
                self._delta("reasoning", chunk.reasoning_delta, chunk.parent_id, events)
            case ReasoningPartStartChunk(unstable_summary=None):
                pass  # without a summary, the deltas open the message
            case ReasoningPartStartChunk():
                self._open_message("reasoning", chunk.parent_id, events, chunk.unstable_summary)
            case ToolCallBeginChunk():
                self._begin(chunk, events)
            case ToolCallDeltaChunk():
                self._arguments(chunk.tool_call_id, chunk.args_text_delta, events)
            case ToolCallArgsTextFinishChunk():
                self._end_arguments(chunk, events)
            case ToolResultChunk():
                self._result(chunk, events)
            case UpdateStateChunk():
                self._update_state(chunk, events)
            case DataChunk(name=str() as name) if not name.startswith(CUSTOM_PREFIX):
                self._custom(name, chunk.data, chunk.parent_id, events)
            case DataChunk():
                value = {"data": chunk.data}
                if chunk.name is not None:
                    value["name"] = chunk.name
                self._custom(DATA, value, chunk.parent_id, events)
            case SourceChunk():
                source = {"id": chunk.id, "url": chunk.url}
                if chunk.title is not None:
                    source["title"] = chunk.title
                self._custom(SOURCE, source, chunk.parent_id, events)
            case FileChunk():
                file = {"data": chunk.data, "mimeType": chunk.mime_type}
                self._custom(FILE, file, chunk.parent_id, events)
            case AnnotationsChunk():
                self._custom(ANNOTATIONS, chunk.annotations, None, events)
            case ErrorChunk():
                self._last_error = chunk.error
                self._custom(ERROR, chunk.error, None, events)
            case StepStartChunk():
                self._end_step(events)
                self._step = chunk.message_id
                events.append({"type": "STEP_STARTED", "stepName": chunk.message_id})
            case StepFinishChunk():
                self._step_finish(chunk, events)
            case _:
                not_a_chunk(chunk)


# -- decoding ----------------------------------------------------------------------

_TEXT_EVENTS = frozenset(
    {
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "STATE_SNAPSHOT",
        "STATE_DELTA",
        "CUSTOM",
        "STEP_STARTED",
        "STEP_FINISHED",
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
    }
)
"""Events that end what their producer was assembling from ``*_CHUNK`` events."""

_RUN_EVENTS = frozenset({"RUN_STARTED", "RUN_FINISHED", "RUN_ERROR", "MESSAGES_SNAPSHOT"})
"""Events that end what every producer was assembling from ``*_CHUNK`` events."""

_AS_DATA = frozenset({"RAW", "ACTIVITY_SNAPSHOT", "ACTIVITY_DELTA", "REASONING_ENCRYPTED_VALUE"})
"""Events with no chunk of their own: a data chunk named by the type carries each."""

_THINKING = frozenset(
    {
        "THINKING_START",
        "THINKING_END",
        "THINKING_TEXT_MESSAGE_START",
        "THINKING_TEXT_MESSAGE_CONTENT",
        "THINKING_TEXT_MESSAGE_END",
    }
)
"""The reasoning events before 1.0, which the client still translates."""

_FINISH_REASONS = frozenset(
    {"stop", "length", "content-filter", "tool-calls", "error", "other", "unknown"}
)


class _Event:
    """One decoded event: its fields, read with the offset an error names."""

    __slots__ = ("fields", "offset", "type")

    def __init__(self, fields: dict[str, Any], offset: int) -> None:
        self.fields = fields
        self.offset = offset
        self.type: str = fields["type"]

    def fail(self, problem: str) -> DecodeError:
        return DecodeError(self.offset, f"{self.type}: {problem}")

    def text(self, key: str) -> str:
        value = self.fields.get(key)
        if not isinstance(value, str):
            raise self.fail(f"expected {key} as a string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.fields.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"expected {key} as a string, or none")
        return value

    def value(self, key: str) -> Any:
        if key not in self.fields:
            raise self.fail(f"expected {key}")
        return self.fields[key]

    def own(self) -> dict[str, Any]:
        """The encoder's entries of ``metadata``, if any."""
        metadata = self.fields.get("metadata")
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            raise self.fail("expected metadata as an object")
        own = metadata.get(METADATA_KEY)
        return own if isinstance(own, dict) else {}


class AGUIDecoder(StreamDecoder):
    """Decodes an AG-UI event stream into chunks.

    ``state`` is the state the run starts from, which ``STATE_DELTA``
    patches apply to (``RunAgentInput.state``); a ``RUN_STARTED`` that
    echoes its input's state replaces it.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE

    def __init__(self, *, state: Any = None) -> None:
        self._events = _sse.EventParser()
        self._fed = 0
        self._state = normalized(state, "the AG-UI decoder's state")
        self._run = "before"  # running, finished, errored
        self._last_error: str | None = None
        self._new_run()

    def _new_run(self) -> None:
        """Forget what the last run had open: a body may hold several runs."""
        self._owners: dict[str, str | None] = {}  # message id: the parent id of its producer
        self._open_text: set[str] = set()
        self._open_reasoning: set[str] = set()
        self._open_spans: set[str] = set()
        self._calls: set[str] = set()  # begun
        self._open_calls: set[str] = set()
        self._arguments: dict[str, ToolArguments] = {}  # of calls awaiting their result
        self._ended: set[str] = set()  # calls whose arguments ended before they were JSON
        self._subagents: dict[str, str] = {}  # subagentRunId: the parent id it stands for
        self._running: set[str] = set()
        self._steps: set[tuple[str | None, str]] = set()
        self._lanes: dict[str | None, tuple[str, str]] = {}  # what *_CHUNK events assemble

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        self._fed += len(data)
        for event in self._events.feed(data):
            fields = json_value(event.data, event.offset, "an AG-UI event")
            if not isinstance(fields, dict):
                raise DecodeError(event.offset, "expected an AG-UI event: a JSON object")
            if not isinstance(fields.get("type"), str) or not fields["type"]:
                raise DecodeError(event.offset, "expected an AG-UI event's type as a string")
            self._decode(_Event(fields, event.offset), chunks)
        return chunks

    def close(self) -> list[Chunk]:
        self._events.close()
        if self._run in ("before", "running"):
            raise DecodeError(self._fed, "the body ends before RUN_FINISHED or RUN_ERROR")
        return []

    # -- the run -------------------------------------------------------------

    def _decode(self, event: _Event, chunks: list[Chunk]) -> None:
        handler = self._HANDLERS.get(event.type)
        if handler is None:
            return  # a type the protocol does not have: the client drops it too
        self._check_order(event)
        if event.type in _RUN_EVENTS:
            self._close_lanes(list(self._lanes))
        elif event.type in _TEXT_EVENTS:
            self._close_lanes([event.optional_text("subagentRunId")])
        handler(self, event, chunks)

    def _check_order(self, event: _Event) -> None:
        kind, run = event.type, self._run
        if run == "before" and kind not in ("RUN_STARTED", "RUN_ERROR"):
            raise event.fail("expected RUN_STARTED first")
        if run == "running" and kind == "RUN_STARTED":
            raise event.fail("a run is still going: expected RUN_FINISHED or RUN_ERROR first")
        if run == "finished" and kind not in ("RUN_STARTED", "RUN_ERROR"):
            raise event.fail("after RUN_FINISHED, expected RUN_STARTED")
        if run == "errored" and kind != "RUN_STARTED":
            raise event.fail("after RUN_ERROR, expected RUN_STARTED")

    def _run_started(self, event: _Event, chunks: list[Chunk]) -> None:
        event.text("threadId")
        event.text("runId")
        if self._run != "before":
            self._new_run()
        self._run = "running"
        given = event.fields.get("input")
        if isinstance(given, dict) and given.get("state") is not None:
            self._state = given["state"]

    def _run_finished(self, event: _Event, chunks: list[Chunk]) -> None:
        open_things = (
            ("text messages", self._open_text),
            ("reasoning messages", self._open_reasoning),
            ("reasoning spans", self._open_spans),
            ("tool calls", self._open_calls),
            ("steps", {name for _, name in self._steps}),
            ("subagents", self._running),
        )
        for what, ids in open_things:
            if ids:
                raise event.fail(f"{what} are still open: {', '.join(sorted(ids))}")
        self._run = "finished"
        outcome = event.fields.get("outcome")
        interrupted = isinstance(outcome, dict) and outcome.get("type") != "success"
        if event.fields.get("result") is not None or interrupted:
            chunks.append(DataChunk(event.fields, "RUN_FINISHED"))

    def _run_error(self, event: _Event, chunks: list[Chunk]) -> None:
        message = event.text("message")
        self._run = "errored"
        if message != self._last_error:  # else it ends the run with the last error again
            chunks.append(ErrorChunk(message))

    # -- messages ------------------------------------------------------------

    def _parent(self, event: _Event) -> str | None:
        """The parent id of the sub-stream ``event`` is attributed to, if any."""
        tag = event.optional_text("subagentRunId")
        return None if tag is None else self._subagents.get(tag, tag)

    def _start(self, event: _Event, open_ids: set[str], kind: str) -> str:
        message_id = event.text("messageId")
        if message_id in open_ids:
            raise event.fail(f"message {message_id!r} is already open")
        open_ids.add(message_id)
        self._owners.setdefault(message_id, self._parent(event))
        return message_id

    def _continued(self, event: _Event, open_ids: set[str]) -> str:
        message_id = event.text("messageId")
        if message_id not in open_ids:
            raise event.fail(f"no open message {message_id!r}: expected its start first")
        return message_id

    def _text_start(self, event: _Event, chunks: list[Chunk]) -> None:
        self._start(event, self._open_text, "text")

    def _text_content(self, event: _Event, chunks: list[Chunk]) -> None:
        message_id = self._continued(event, self._open_text)
        chunks.append(TextDeltaChunk(event.text("delta"), self._owners[message_id]))

    def _text_end(self, event: _Event, chunks: list[Chunk]) -> None:
        self._open_text.discard(self._continued(event, self._open_text))

    def _reasoning_span(self, event: _Event, chunks: list[Chunk]) -> None:
        message_id = self._start(event, self._open_spans, "reasoning")
        summary = event.own().get("summary")
        if isinstance(summary, str):
            chunks.append(ReasoningPartStartChunk(summary, self._owners[message_id]))

    def _reasoning_span_end(self, event: _Event, chunks: list[Chunk]) -> None:
        self._open_spans.discard(self._continued(event, self._open_spans))

    def _reasoning_start(self, event: _Event, chunks: list[Chunk]) -> None:
        self._start(event, self._open_reasoning, "reasoning")

    def _reasoning_content(self, event: _Event, chunks: list[Chunk]) -> None:
        message_id = self._continued(event, self._open_reasoning)
        chunks.append(ReasoningDeltaChunk(event.text("delta"), self._owners[message_id]))

    def _reasoning_end(self, event: _Event, chunks: list[Chunk]) -> None:
        self._open_reasoning.discard(self._continued(event, self._open_reasoning))

    def _thinking(self, event: _Event, chunks: list[Chunk]) -> None:
        if event.type == "THINKING_TEXT_MESSAGE_CONTENT":
            chunks.append(ReasoningDeltaChunk(event.text("delta"), self._parent(event)))

    # -- tool calls ----------------------------------------------------------

    def _call_parent(self, event: _Event) -> str | None:
        if event.fields.get("subagentRunId") is not None:
            return self._parent(event)
        # Untagged, a call belongs to whoever owns the message it joins.
        return self._owners.get(event.optional_text("parentMessageId") or "")

    def _call_start(self, event: _Event, chunks: list[Chunk]) -> None:
        tool_call_id = event.text("toolCallId")
        name = event.text("toolCallName")
        if tool_call_id in self._open_calls:
            raise event.fail(f"tool call {tool_call_id!r} is already open")
        self._open_calls.add(tool_call_id)
        if tool_call_id not in self._calls:  # else it reopens the call for more arguments
            self._calls.add(tool_call_id)
            self._arguments[tool_call_id] = ToolArguments()
            chunks.append(ToolCallBeginChunk(tool_call_id, name, self._call_parent(event)))

    def _open_call(self, event: _Event) -> str:
        tool_call_id = event.text("toolCallId")
        if tool_call_id not in self._open_calls:
            raise event.fail(f"no open tool call {tool_call_id!r}: expected TOOL_CALL_START")
        return tool_call_id

    def _call_args(self, event: _Event, chunks: list[Chunk]) -> None:
        tool_call_id = self._open_call(event)
        delta = event.text("delta")
        if tool_call_id in self._ended:
            return  # text after the arguments' end has no place in a run
        arguments = self._arguments.get(tool_call_id)
        if arguments is not None:
            arguments.add(delta)
        chunks.append(ToolCallDeltaChunk(tool_call_id, delta))

    def _call_end(self, event: _Event, chunks: list[Chunk]) -> None:
        tool_call_id = self._open_call(event)
        self._open_calls.discard(tool_call_id)
        arguments = self._arguments.get(tool_call_id)
        if arguments is None or arguments.complete or arguments.empty:
            return  # complete JSON says it is complete
        if tool_call_id not in self._ended:
            self._ended.add(tool_call_id)
            chunks.append(ToolCallArgsTextFinishChunk(tool_call_id))

    def _call_result(self, event: _Event, chunks: list[Chunk]) -> None:
        tool_call_id = event.text("toolCallId")
        event.text("messageId")
        content = event.value("content")
        if not isinstance(content, str | list):
            raise event.fail("expected content as a string or a list of parts")
        own = event.own()
        result = content
        self._arguments.pop(tool_call_id, None)
        self._ended.discard(tool_call_id)
        if own.get("json") is True and isinstance(content, str):
            result = json_value(content, event.offset, "a tool result's JSON text")
        chunks.append(
            ToolResultChunk(tool_call_id, result, own.get("artifact"), own.get("isError") is True)
        )

    # -- state ---------------------------------------------------------------

    def _state_snapshot(self, event: _Event, chunks: list[Chunk]) -> None:
        self._state = event.value("snapshot")
        chunks.append(UpdateStateChunk(({"type": "set", "path": [], "value": self._state},)))

    def _state_delta(self, event: _Event, chunks: list[Chunk]) -> None:
        patch = event.value("delta")
        problem = check_patch(patch)
        if problem is not None:
            raise event.fail(problem)
        try:
            operations, self._state = patch_operations(self._state, patch)
        except PatchError:
            # The client keeps its state and warns; the event is handed on whole.
            chunks.append(DataChunk(event.fields, "STATE_DELTA", self._parent(event)))
            return
        if operations:
            chunks.append(UpdateStateChunk(tuple(operations)))

    # -- the rest ------------------------------------------------------------

    def _custom(self, event: _Event, chunks: list[Chunk]) -> None:
        name = event.text("name")
        value = event.value("value")
        parent_id = self._parent(event)
        decode = _OWN_CUSTOM.get(name)
        if decode is None:
            chunks.append(DataChunk(value, name, parent_id))
            return
        chunk = decode(value, parent_id)
        if chunk is None:
            raise event.fail(f"the value of {name} is not what this encoder writes")
        if isinstance(chunk, ErrorChunk):
            self._last_error = chunk.error
        chunks.append(chunk)

    def _as_data(self, event: _Event, chunks: list[Chunk]) -> None:
        chunks.append(DataChunk(event.fields, event.type, self._parent(event)))

    def _messages_snapshot(self, event: _Event, chunks: list[Chunk]) -> None:
        if not isinstance(event.value("messages"), list):
            raise event.fail("expected messages as a list")
        chunks.append(DataChunk(event.fields, event.type))

    def _step_started(self, event: _Event, chunks: list[Chunk]) -> None:
        step = (event.optional_text("subagentRunId"), event.text("stepName"))
        if step in self._steps:
            raise event.fail(f"step {step[1]!r} is already open")
        self._steps.add(step)
        chunks.append(StepStartChunk(step[1]))

    def _step_finished(self, event: _Event, chunks: list[Chunk]) -> None:
        step = (event.optional_text("subagentRunId"), event.text("stepName"))
        if step not in self._steps:
            raise event.fail(f"step {step[1]!r} was not started")
        self._steps.remove(step)
        own = event.own()
        if own.get("implicit") is True:
            return  # closed only because the next step started, or the run ended
        chunk = _step_finish(own) if own else StepFinishChunk("unknown")
        if chunk is None:
            raise event.fail("its metadata is not what this encoder writes")
        chunks.append(chunk)

    def _subagent_started(self, event: _Event, chunks: list[Chunk]) -> None:
        subagent = event.text("subagentRunId")
        event.text("name")
        if subagent in self._running:
            raise event.fail(f"subagent {subagent!r} is already running")
        self._running.add(subagent)
        self._subagents[subagent] = event.optional_text("parentToolCallId") or subagent

    def _subagent_finished(self, event: _Event, chunks: list[Chunk]) -> None:
        subagent = event.text("subagentRunId")
        if subagent not in self._running:
            raise event.fail(f"no running subagent {subagent!r}")
        self._running.discard(subagent)
        self._close_lanes([subagent])
        if event.type == "SUBAGENT_ERROR":
            chunks.append(ErrorChunk(event.text("message")))

    # -- the *_CHUNK shorthands ------------------------------------------------

    def _close_lanes(self, owners: list[str | None]) -> None:
        """End what ``owners`` were assembling from chunk events, as the client does."""
        for owner in owners:
            lane = self._lanes.pop(owner, None)
            if lane is not None:
                kind, entity = lane
                {"text": self._open_text, "reasoning": self._open_reasoning}.get(
                    kind, self._open_calls
                ).discard(entity)

    def _lane(self, event: _Event, kind: str, entity: str | None) -> str | None:
        """Whose assembly a chunk event continues or starts."""
        tag = event.optional_text("subagentRunId")
        if entity is not None:
            for owner, (open_kind, open_entity) in self._lanes.items():
                if (open_kind, open_entity) == (kind, entity):
                    return owner
            return tag
        if tag is not None:
            return tag
        parent_lane = self._lanes.get(None)
        if parent_lane is not None and parent_lane[0] == kind:
            return None
        candidates = [owner for owner, (open_kind, _) in self._lanes.items() if open_kind == kind]
        if len(candidates) > 1:
            raise event.fail("no id and no subagentRunId, while several are open: ambiguous")
        return candidates[0] if candidates else None

    def _shorthand(self, event: _Event, chunks: list[Chunk]) -> None:
        kind = {"TEXT_MESSAGE_CHUNK": "text", "TOOL_CALL_CHUNK": "tool"}.get(
            event.type, "reasoning"
        )
        entity = event.optional_text("toolCallId" if kind == "tool" else "messageId")
        delta = event.optional_text("delta")
        owner = self._lane(event, kind, entity)
        lane = self._lanes.get(owner)
        if lane is None or lane[0] != kind or entity not in (None, lane[1]):
            self._close_lanes([owner])
            if entity is None:
                raise event.fail(f"the first {event.type} of a stream needs its id")
            self._open_lane(event, kind, entity, owner, chunks)
            lane = (kind, entity)
        if delta is None:
            return
        if kind == "tool":
            chunks.append(ToolCallDeltaChunk(lane[1], delta))
        elif kind == "text":
            chunks.append(TextDeltaChunk(delta, self._owners[lane[1]]))
        else:
            chunks.append(ReasoningDeltaChunk(delta, self._owners[lane[1]]))

    def _open_lane(
        self, event: _Event, kind: str, entity: str, owner: str | None, chunks: list[Chunk]
    ) -> None:
        self._lanes[owner] = (kind, entity)
        if kind == "tool":
            name = event.optional_text("toolCallName")
            if name is None:
                raise event.fail("the first TOOL_CALL_CHUNK of a call needs its toolCallName")
            self._open_calls.add(entity)
            if entity not in self._calls:
                self._calls.add(entity)
                chunks.append(ToolCallBeginChunk(entity, name, self._call_parent(event)))
            return
        open_ids = self._open_text if kind == "text" else self._open_reasoning
        if entity in open_ids:
            raise event.fail(f"message {entity!r} is already open")
        open_ids.add(entity)
        self._owners.setdefault(entity, self._parent(event))

    _HANDLERS: ClassVar[dict[str, Callable[[AGUIDecoder, _Event, list[Chunk]], None]]] = {
        "RUN_STARTED": _run_started,
        "RUN_FINISHED": _run_finished,
        "RUN_ERROR": _run_error,
        "TEXT_MESSAGE_START": _text_start,
        "TEXT_MESSAGE_CONTENT": _text_content,
        "TEXT_MESSAGE_END": _text_end,
        "TEXT_MESSAGE_CHUNK": _shorthand,
        "REASONING_START": _reasoning_span,
        "REASONING_MESSAGE_START": _reasoning_start,
        "REASONING_MESSAGE_CONTENT": _reasoning_content,
        "REASONING_MESSAGE_END": _reasoning_end,
        "REASONING_MESSAGE_CHUNK": _shorthand,
        "REASONING_END": _reasoning_span_end,
        "TOOL_CALL_START": _call_start,
        "TOOL_CALL_ARGS": _call_args,
        "TOOL_CALL_END": _call_end,
        "TOOL_CALL_CHUNK": _shorthand,
        "TOOL_CALL_RESULT": _call_result,
        "STATE_SNAPSHOT": _state_snapshot,
        "STATE_DELTA": _state_delta,
        "MESSAGES_SNAPSHOT": _messages_snapshot,
        "CUSTOM": _custom,
        "STEP_STARTED": _step_started,
        "STEP_FINISHED": _step_finished,
        "SUBAGENT_STARTED": _subagent_started,
        "SUBAGENT_FINISHED": _subagent_finished,
        "SUBAGENT_ERROR": _subagent_finished,
        **dict.fromkeys(_AS_DATA, _as_data),
        **dict.fromkeys(_THINKING, _thinking),
    }


# -- the encoder's own CUSTOM events, read back ------------------------------------


def _data(value: Any, parent_id: str | None) -> Chunk | None:
    if not isinstance(value, dict) or "data" not in value:
        return None
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        return None
    return DataChunk(value["data"], name, parent_id)


def _error(value: Any, parent_id: str | None) -> Chunk | None:
    return ErrorChunk(value) if isinstance(value, str) else None


def _source(value: Any, parent_id: str | None) -> Chunk | None:
    if not isinstance(value, dict):
        return None
    source_id, url, title = value.get("id"), value.get("url"), value.get("title")
    if not (isinstance(source_id, str) and isinstance(url, str)):
        return None
    if title is not None and not isinstance(title, str):
        return None
    return SourceChunk(source_id, url, title=title, parent_id=parent_id)


def _file(value: Any, parent_id: str | None) -> Chunk | None:
    if not isinstance(value, dict):
        return None
    data, mime_type = value.get("data"), value.get("mimeType")
    if not (isinstance(data, str) and isinstance(mime_type, str)):
        return None
    return FileChunk(data, mime_type, parent_id)


def _annotations(value: Any, parent_id: str | None) -> Chunk | None:
    return AnnotationsChunk(tuple(value)) if isinstance(value, list) else None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _step_finish(value: Any, parent_id: str | None = None) -> StepFinishChunk | None:
    if not isinstance(value, dict):
        return None
    reason, usage = value.get("finishReason"), value.get("usage")
    continued = value.get("isContinued")
    if reason not in _FINISH_REASONS or not isinstance(usage, dict):
        return None
    inputs, outputs = _count(usage.get("inputTokens")), _count(usage.get("outputTokens"))
    if inputs is None or outputs is None or not isinstance(continued, bool):
        return None
    finish_reason: FinishReason = reason
    return StepFinishChunk(finish_reason, inputs, outputs, continued)


_OWN_CUSTOM = {
    DATA: _data,
    ERROR: _error,
    SOURCE: _source,
    FILE: _file,
    ANNOTATIONS: _annotations,
    STEP_FINISH: _step_finish,
}
"""The encoder's own CUSTOM events; other names are data chunks of that name."""
