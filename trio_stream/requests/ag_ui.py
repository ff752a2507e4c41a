"""The body an AG-UI client posts: ``RunAgentInput``.

``{"threadId", "runId", "state", "messages", "tools", "context",
"forwardedProps", ...}``, what ``@ag-ui/client``'s ``HttpAgent`` (and
CopilotKit through it) sends to run an agent. ``messages`` is the whole
conversation, each message typed by its ``role``: ``developer``, ``system``,
``user`` (text, or a list of text and media parts), ``assistant`` (text and
tool calls), ``tool`` (a tool call's result), ``activity`` and ``reasoning``.
``state`` is the state the client holds: start the run from it, and give it
to the encoder, whose state updates are patches against it. ``tools`` are
the tools the client offers (it runs them itself, so a call to one is left
for the client to answer), ``context`` is ambient information for the run,
``forwardedProps`` is the app's own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._model import WireModel

__all__ = [
    "AGUIMessage",
    "AGUIRequest",
    "ActivityMessage",
    "AssistantMessage",
    "BinaryPart",
    "ContentPart",
    "Context",
    "DataSource",
    "DeveloperMessage",
    "FileSource",
    "FunctionCall",
    "MediaPart",
    "ReasoningMessage",
    "ResumeEntry",
    "SystemMessage",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "UrlSource",
    "UserMessage",
]


class DataSource(WireModel):
    """Bytes carried inline, base64-encoded."""

    type: Literal["data"]
    value: str
    mime_type: str


class UrlSource(WireModel):
    """Bytes to be fetched from a URL."""

    type: Literal["url"]
    value: str
    mime_type: str | None = None


class FileSource(WireModel):
    """Bytes already at a model provider, by the handle it issued."""

    type: Literal["file"]
    value: str
    provider: str | None = None
    mime_type: str | None = None


PartSource = Annotated[DataSource | UrlSource | FileSource, Field(discriminator="type")]


class TextPart(WireModel):
    type: Literal["text"]
    text: str
    id: str | None = None
    metadata: Any = None


class MediaPart(WireModel):
    """An image, audio, video or document part; ``source`` says where its bytes are."""

    type: Literal["image", "audio", "video", "document"]
    source: PartSource
    id: str | None = None
    metadata: Any = None


class BinaryPart(WireModel):
    """The media part of clients before AG-UI 1.0: inline ``data``, a ``url`` or an ``id``."""

    type: Literal["binary"]
    mime_type: str
    data: str | None = None
    url: str | None = None
    id: str | None = None
    filename: str | None = None


ContentPart = Annotated[TextPart | MediaPart | BinaryPart, Field(discriminator="type")]


def _joined_text(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


class _Message(WireModel):
    id: str
    metadata: dict[str, Any] | None = None
    subagent_run_id: str | None = None
    encrypted_value: str | None = None


class DeveloperMessage(_Message):
    role: Literal["developer"]
    content: str
    name: str | None = None

    @property
    def text(self) -> str:
        return self.content


class SystemMessage(_Message):
    role: Literal["system"]
    content: str
    name: str | None = None

    @property
    def text(self) -> str:
        return self.content


class UserMessage(_Message):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text: its content, or its text parts joined."""
        return _joined_text(self.content)


class FunctionCall(WireModel):
    name: str
    arguments: str
    """The arguments as JSON text, as the model wrote them."""


class ToolCall(WireModel):
    id: str
    type: Literal["function"]
    function: FunctionCall
    encrypted_value: str | None = None
    metadata: dict[str, Any] | None = None


class AssistantMessage(_Message):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        return self.content or ""


class ToolMessage(_Message):
    """What a tool call returned, ``tool_call_id`` naming the call."""

    role: Literal["tool"]
    content: str | list[ContentPart]
    tool_call_id: str
    error: str | None = None

    @property
    def text(self) -> str:
        return _joined_text(self.content)


class ActivityMessage(_Message):
    """Structured progress a front-end shows as a widget of its own."""

    role: Literal["activity"]
    activity_type: str
    content: dict[str, Any]


class ReasoningMessage(_Message):
    role: Literal["reasoning"]
    content: str

    @property
    def text(self) -> str:
        return self.content


AGUIMessage = Annotated[
    DeveloperMessage
    | SystemMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | ActivityMessage
    | ReasoningMessage,
    Field(discriminator="role"),
]


class Tool(WireModel):
    """A tool the client offers; ``parameters`` is its JSON Schema."""

    name: str
    description: str
    parameters: Any = None
    metadata: dict[str, Any] | None = None


class Context(WireModel):
    """A named piece of ambient information for the run."""

    description: str
    value: str


class ResumeEntry(WireModel):
    """An answer to an interrupt of an earlier run."""

    interrupt_id: str
    status: Literal["resolved", "cancelled"]
    payload: Any = None
    metadata: dict[str, Any] | None = None


class AGUIRequest(WireModel):
    """What an AG-UI client posts (``RunAgentInput``); answer it with an ``AGUIResponse``."""

    thread_id: str
    run_id: str
    messages: list[AGUIMessage]
    state: Any = None
    tools: list[Tool] = Field(default_factory=list)
    context: list[Context] = Field(default_factory=list)
    forwarded_props: Any = None
    parent_run_id: str | None = None
    protocol_version: str | None = None
    resume: list[ResumeEntry] | None = None
