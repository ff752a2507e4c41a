"""Typed, validated models of the bodies chat front-ends post.

One module per front-end request, mirroring ``trio_stream.formats``:
``data_stream.DataStreamRequest`` (assistant-ui's data stream runtime),
``assistant_transport.AssistantTransportRequest`` (assistant-ui's assistant
transport), ``ui_message_stream.UIMessageStreamRequest`` (the AI SDK's
``useChat``) and ``ag_ui.AGUIRequest`` (an AG-UI client's ``RunAgentInput``).
They are pydantic models, so FastAPI takes them as body parameters;
``parse_body`` validates them for any Starlette request, with a
size bound and a 4xx JSON answer for each kind of bad body.
"""

from ._body import CLIENT_CLOSED_REQUEST, DEFAULT_MAX_BODY_SIZE, RequestBodyError, parse_body
from .ag_ui import AGUIRequest
from .assistant_transport import AssistantTransportRequest
from .data_stream import DataStreamRequest
from .ui_message_stream import UIMessageStreamRequest

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "DEFAULT_MAX_BODY_SIZE",
    "AGUIRequest",
    "AssistantTransportRequest",
    "DataStreamRequest",
    "RequestBodyError",
    "UIMessageStreamRequest",
    "parse_body",
]
