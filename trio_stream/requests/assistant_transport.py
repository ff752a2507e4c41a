"""The body assistant-ui's ``useAssistantTransportRuntime`` posts.

``{"commands", "state", "system", "tools", ...}``: the server keeps the
conversation in its state, so a request carries only what is new, as
commands (a user message, the result of a tool the front-end ran), and the
state snapshot the front-end last received. Call settings and config come
nested (``callSettings``, ``config``) and, for older servers, also spread at
the top level, where they are kept as extra fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._model import WireModel

__all__ = [
    "AddMessageCommand",
    "AddToolResultCommand",
    "AssistantTransportCommand",
    "AssistantTransportRequest",
    "ImagePart",
    "TextPart",
    "TransportAssistantMessage",
    "TransportUserMessage",
]


class TextPart(WireModel):
    type: Literal["text"]
    text: str


class ImagePart(WireModel):
    type: Literal["image"]
    image: str


class TransportUserMessage(WireModel):
    role: Literal["user"]
    parts: list[Annotated[TextPart | ImagePart, Field(discriminator="type")]]
    id: str | None = None

    @property
    def text(self) -> str:
        """The message's text parts, joined."""
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))


class TransportAssistantMessage(WireModel):
    role: Literal["assistant"]
    parts: list[TextPart]

    @property
    def text(self) -> str:
        """The message's text parts, joined."""
        return "".join(part.text for part in self.parts)


class AddMessageCommand(WireModel):
    type: Literal["add-message"]
    message: Annotated[
        TransportUserMessage | TransportAssistantMessage, Field(discriminator="role")
    ]
    parent_id: str | None = None
    source_id: str | None = None


class AddToolResultCommand(WireModel):
    type: Literal["add-tool-result"]
    tool_call_id: str
    result: Any
    tool_name: str | None = None
    is_error: bool = False
    artifact: Any = None


AssistantTransportCommand = Annotated[
    AddMessageCommand | AddToolResultCommand, Field(discriminator="type")
]


class AssistantTransportRequest(WireModel):
    """What the assistant transport runtime posts; answer it with an
    ``AssistantTransportResponse``."""

    commands: list[AssistantTransportCommand]
    state: Any = None
    system: str | None = None
    tools: dict[str, Any] | None = None
    call_settings: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    run_config: dict[str, Any] | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    run_id: str | None = None
