"""The body assistant-ui's ``useDataStreamRuntime`` posts.

``{"system", "messages", "tools", "runConfig", "state", ...}``, where
``messages`` is the conversation in the AI SDK's model message form: a
system message's content is a string; user, assistant and tool messages
carry lists of typed parts (a string is accepted too, as the AI SDK does).
Call settings (``temperature``...) and the app's own ``body`` option are
spread at the top level, and kept as extra fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._model import WireModel

__all__ = [
    "AssistantModelMessage",
    "DataStreamRequest",
    "FileContent",
    "ImageContent",
    "ModelMessage",
    "ReasoningContent",
    "SystemModelMessage",
    "TextContent",
    "ToolCallContent",
    "ToolModelMessage",
    "ToolResultContent",
    "UserModelMessage",
]


class TextContent(WireModel):
    type: Literal["text"]
    text: str


class ReasoningContent(WireModel):
    type: Literal["reasoning"]
    text: str


class FileContent(WireModel):
    type: Literal["file"]
    data: str
    media_type: str
    filename: str | None = None


class ImageContent(WireModel):
    type: Literal["image"]
    image: str
    mime_type: str | None = None


class ToolCallContent(WireModel):
    type: Literal["tool-call"]
    tool_call_id: str
    tool_name: str
    input: Any = None


class ToolResultContent(WireModel):
    type: Literal["tool-result"]
    tool_call_id: str
    tool_name: str
    output: Any = None


UserContent = Annotated[TextContent | FileContent | ImageContent, Field(discriminator="type")]
AssistantContent = Annotated[
    TextContent | ReasoningContent | ToolCallContent | FileContent, Field(discriminator="type")
]


class SystemModelMessage(WireModel):
    role: Literal["system"]
    content: str


class UserModelMessage(WireModel):
    role: Literal["user"]
    content: str | list[UserContent]


class AssistantModelMessage(WireModel):
    role: Literal["assistant"]
    content: str | list[AssistantContent]


class ToolModelMessage(WireModel):
    role: Literal["tool"]
    content: list[ToolResultContent]


ModelMessage = Annotated[
    SystemModelMessage | UserModelMessage | AssistantModelMessage | ToolModelMessage,
    Field(discriminator="role"),
]


class DataStreamRequest(WireModel):
    """What ``useDataStreamRuntime`` posts; answer it with a ``DataStreamResponse``."""

    messages: Annotated[list[ModelMessage], Field(min_length=1)]
    system: str | None = None
    tools: dict[str, Any] | None = None
    run_config: dict[str, Any] | None = None
    state: Any = None
    unstable_assistant_message_id: Annotated[
        str | None, Field(alias="unstable_assistantMessageId")
    ] = None
    thread_id: str | None = None
    parent_id: str | None = None
