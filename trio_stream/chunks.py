"""The chunks a run produces.

A chunk is an immutable, typed record with a ``type`` string and the fields of
the assistant-stream vocabulary, spelled the same way (``text_delta``,
``tool_call_id``, ``args_text_delta``, ``parent_id``…), so code that reads
assistant-stream chunks reads these unchanged. ``type`` is a class attribute:
it identifies the class and cannot be set per instance.

Chunks are msgspec structs: creating one costs well under a microsecond, which
matters when a response streams tens of thousands of tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias, TypedDict

import msgspec

__all__ = [
    "AnnotationsChunk",
    "AppendTextOperation",
    "Chunk",
    "DataChunk",
    "ErrorChunk",
    "FileChunk",
    "FinishReason",
    "ReasoningDeltaChunk",
    "ReasoningPartStartChunk",
    "SetOperation",
    "SourceChunk",
    "StateOperation",
    "StepFinishChunk",
    "StepStartChunk",
    "TextDeltaChunk",
    "ToolCallArgsTextFinishChunk",
    "ToolCallBeginChunk",
    "ToolCallDeltaChunk",
    "ToolResultChunk",
    "UpdateStateChunk",
]

FinishReason: TypeAlias = Literal[
    "stop", "length", "content-filter", "tool-calls", "error", "other", "unknown"
]
"""Why a model step ended; the AI SDK's finish reasons."""


class SetOperation(TypedDict):
    """Replace the value at ``path`` (``[]`` is the whole state)."""

    type: Literal["set"]
    path: list[str]
    value: Any


class AppendTextOperation(TypedDict):
    """Append ``value`` to the string at ``path``."""

    type: Literal["append-text"]
    path: list[str]
    value: str


StateOperation: TypeAlias = SetOperation | AppendTextOperation


class TextDeltaChunk(msgspec.Struct, frozen=True):
    """A piece of the assistant's answer text."""

    type: ClassVar[Literal["text-delta"]] = "text-delta"
    text_delta: str
    parent_id: str | None = None


class ReasoningDeltaChunk(msgspec.Struct, frozen=True):
    """A piece of the model's reasoning, shown apart from the answer."""

    type: ClassVar[Literal["reasoning-delta"]] = "reasoning-delta"
    reasoning_delta: str
    parent_id: str | None = None


class ReasoningPartStartChunk(msgspec.Struct, frozen=True):
    """A reasoning part opens, carrying a summary the app wrote for it.

    The reasoning deltas its producer adds next go into this part. Reasoning
    parts otherwise open with their first delta; the summary (a title shown
    in place of the reasoning, such as "Planning the search") is the only
    reason to open one explicitly, so a start without one changes nothing on
    the wire. ``unstable_`` as in assistant-ui, where the field is
    experimental.
    """

    type: ClassVar[Literal["reasoning-part-start"]] = "reasoning-part-start"
    unstable_summary: str | None = None
    parent_id: str | None = None


class ToolCallBeginChunk(msgspec.Struct, frozen=True):
    """A tool call starts; its arguments and result follow under ``tool_call_id``."""

    type: ClassVar[Literal["tool-call-begin"]] = "tool-call-begin"
    tool_call_id: str
    tool_name: str
    parent_id: str | None = None


class ToolCallDeltaChunk(msgspec.Struct, frozen=True):
    """A piece of a tool call's JSON arguments text."""

    type: ClassVar[Literal["tool-call-delta"]] = "tool-call-delta"
    tool_call_id: str
    args_text_delta: str


class ToolCallArgsTextFinishChunk(msgspec.Struct, frozen=True):
    """A tool call's arguments are complete; ``args_text_delta`` is their last piece, if any.

    The call's result may still be a long way off (a user's approval, a
    slow tool): the front-end shows the call as running with its final
    arguments. No argument text may follow. Arguments that form complete
    JSON are known complete without it; this says so for any arguments, and
    at once.
    """

    type: ClassVar[Literal["tool-call-args-text-finish"]] = "tool-call-args-text-finish"
    tool_call_id: str
    args_text_delta: str = ""


class ToolResultChunk(msgspec.Struct, frozen=True):
    """The outcome of a tool call; ``is_error`` marks a failed one."""

    type: ClassVar[Literal["tool-result"]] = "tool-result"
    tool_call_id: str
    result: Any
    artifact: Any = None
    is_error: bool = False


class DataChunk(msgspec.Struct, frozen=True):
    """Application data for the front-end, outside the message text.

    A ``name`` makes it a data part of that name in the formats that have
    them (``aui-data`` in the data stream, a ``data`` part in the assistant
    transport, ``data-<name>`` in the UI message stream).
    """

    type: ClassVar[Literal["data"]] = "data"
    data: Any
    name: str | None = None
    parent_id: str | None = None


class ErrorChunk(msgspec.Struct, frozen=True):
    """An error message for the front-end."""

    type: ClassVar[Literal["error"]] = "error"
    error: str


class UpdateStateChunk(msgspec.Struct, frozen=True):
    """State operations, applied in order by the front-end."""

    type: ClassVar[Literal["update-state"]] = "update-state"
    operations: tuple[StateOperation, ...]


class SourceChunk(msgspec.Struct, frozen=True):
    """A source (a web page, a document) the answer cites."""

    type: ClassVar[Literal["source"]] = "source"
    id: str
    url: str
    source_type: Literal["url"] = "url"
    title: str | None = None
    parent_id: str | None = None


class FileChunk(msgspec.Struct, frozen=True):
    """A file produced by the assistant; ``data`` is base64-encoded."""

    type: ClassVar[Literal["file"]] = "file"
    data: str
    mime_type: str
    parent_id: str | None = None


class AnnotationsChunk(msgspec.Struct, frozen=True):
    """Message annotations (a list of JSON values)."""

    type: ClassVar[Literal["annotations"]] = "annotations"
    annotations: tuple[Any, ...]


class StepStartChunk(msgspec.Struct, frozen=True):
    """A model generation step begins."""

    type: ClassVar[Literal["step-start"]] = "step-start"
    message_id: str


class StepFinishChunk(msgspec.Struct, frozen=True):
    """A model generation step ends, with its token usage."""

    type: ClassVar[Literal["step-finish"]] = "step-finish"
    finish_reason: FinishReason
    input_tokens: int = 0
    output_tokens: int = 0
    is_continued: bool = False


Chunk: TypeAlias = (
    TextDeltaChunk
    | ReasoningDeltaChunk
    | ReasoningPartStartChunk
    | ToolCallBeginChunk
    | ToolCallDeltaChunk
    | ToolCallArgsTextFinishChunk
    | ToolResultChunk
    | DataChunk
    | ErrorChunk
    | UpdateStateChunk
    | SourceChunk
    | FileChunk
    | AnnotationsChunk
    | StepStartChunk
    | StepFinishChunk
)
"""Any chunk; narrow it with ``chunk.type == "..."`` or ``isinstance``."""

CHUNK_TYPES: tuple[type[Chunk], ...] = (
    TextDeltaChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolResultChunk,
    DataChunk,
    ErrorChunk,
    UpdateStateChunk,
    SourceChunk,
    FileChunk,
    AnnotationsChunk,
    StepStartChunk,
    StepFinishChunk,
)
