"""The body the AI SDK's ``useChat`` posts (``DefaultChatTransport``).

``{"id", "messages", "trigger", "messageId"}`` plus whatever the app adds
through the transport's ``body`` option. ``messages`` is the whole
conversation as UI messages: the same parts the UI message stream produced,
so a tool part is ``tool-<name>`` and a data part ``data-<name>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from ._model import WireModel

__all__ = [
    "DataUIPart",
    "DynamicToolUIPart",
    "FileUIPart",
    "ReasoningUIPart",
    "SourceDocumentUIPart",
    "SourceUrlUIPart",
    "StepStartUIPart",
    "TextUIPart",
    "ToolUIPart",
    "UIMessage",
    "UIMessagePart",
    "UIMessageStreamRequest",
]

ToolState = Literal[
    "input-streaming",
    "input-available",
    "approval-requested",
    "approval-responded",
    "output-available",
    "output-error",
    "output-denied",
]


class TextUIPart(WireModel):
    type: Literal["text"]
    text: str
    state: Literal["streaming", "done"] | None = None


class ReasoningUIPart(WireModel):
    type: Literal["reasoning"]
    text: str
    state: Literal["streaming", "done"] | None = None


class SourceUrlUIPart(WireModel):
    type: Literal["source-url"]
    source_id: str
    url: str
    title: str | None = None


class SourceDocumentUIPart(WireModel):
    type: Literal["source-document"]
    source_id: str
    media_type: str
    title: str
    filename: str | None = None


class FileUIPart(WireModel):
    type: Literal["file"]
    media_type: str
    url: str
    filename: str | None = None


class StepStartUIPart(WireModel):
    type: Literal["step-start"]


class ToolUIPart(WireModel):
    """A call of a tool the app declared; ``type`` is ``tool-<name>``."""

    type: Annotated[str, Field(pattern=r"^tool-.+")]
    tool_call_id: str
    state: ToolState
    input: Any = None
    output: Any = None
    error_text: str | None = None

    @property
    def tool_name(self) -> str:
        return self.type.removeprefix("tool-")


class DynamicToolUIPart(WireModel):
    """A call of a tool not known in advance (MCP, user-defined)."""

    type: Literal["dynamic-tool"]
    tool_name: str
    tool_call_id: str
    state: ToolState
    input: Any = None
    output: Any = None
    error_text: str | None = None


class DataUIPart(WireModel):
    """An app-defined data part; ``type`` is ``data-<name>``."""

    type: Annotated[str, Field(pattern=r"^data-.+")]
    id: str | None = None
    data: Any = None

    @property
    def name(self) -> str:
        return self.type.removeprefix("data-")


_FIXED_TYPES = frozenset(
    {"text", "reasoning", "source-url", "source-document", "file", "step-start", "dynamic-tool"}
)


def _part_tag(part: Any) -> str | None:
    """Which part model validates ``part``: its type, or the family of a prefixed one."""
    kind = part.get("type") if isinstance(part, dict) else getattr(part, "type", None)
    if not isinstance(kind, str):
        return None
    if kind in _FIXED_TYPES:
        return kind
    if kind.startswith("tool-"):
        return "tool-*"
    if kind.startswith("data-"):
        return "data-*"
    return None


UIMessagePart = Annotated[
    Annotated[TextUIPart, Tag("text")]
    | Annotated[ReasoningUIPart, Tag("reasoning")]
    | Annotated[SourceUrlUIPart, Tag("source-url")]
    | Annotated[SourceDocumentUIPart, Tag("source-document")]
    | Annotated[FileUIPart, Tag("file")]
    | Annotated[StepStartUIPart, Tag("step-start")]
    | Annotated[DynamicToolUIPart, Tag("dynamic-tool")]
    | Annotated[ToolUIPart, Tag("tool-*")]
    | Annotated[DataUIPart, Tag("data-*")],
    Discriminator(
        _part_tag,
        custom_error_type="unknown_part_type",
        custom_error_message=(
            "the part's type must be one of text, reasoning, source-url, source-document, "
            "file, step-start, dynamic-tool, tool-<name>, data-<name>"
        ),
    ),
]


class UIMessage(WireModel):
    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePart]
    metadata: Any = None

    @property
    def text(self) -> str:
        """The message's text parts, joined."""
        return "".join(part.text for part in self.parts if isinstance(part, TextUIPart))


class UIMessageStreamRequest(WireModel):
    """What ``useChat`` posts; answer it with a ``UIMessageStreamResponse``."""

    id: str
    messages: Annotated[list[UIMessage], Field(min_length=1)]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = None
