"""The import paths of assistant-stream's ``serialization`` package.

Each format's encoder lives in ``trio_stream.formats`` and its response in
``trio_stream.asgi``; this package and its modules name them where an
assistant-stream user looks for them: ``data_stream``,
``assistant_transport``, ``openai_stream``, ``gorp_stream`` (the object
stream under assistant-stream's names), ``heartbeat``, ``stream_encoder``
and ``assistant_stream_response``; and ``ui_message_stream`` and
``object_stream``, which assistant-stream does not have.
"""

from ..asgi import (
    DEFAULT_HEARTBEAT_INTERVAL,
    AssistantTransportResponse,
    DataStreamResponse,
    HeartbeatOption,
    ObjectStreamResponse,
    OpenAIStreamResponse,
    RunResponse,
    UIMessageStreamResponse,
)
from ..formats import StreamEncoder
from ..formats.assistant_transport import AssistantTransportEncoder
from ..formats.data_stream import DataStreamEncoder
from ..formats.object_stream import ObjectStreamEncoder
from ..formats.openai_stream import OpenAIStreamEncoder
from ..formats.ui_message_stream import UIMessageStreamEncoder
from .gorp_stream import GorpStreamEncoder, GorpStreamResponse

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "AssistantTransportEncoder",
    "AssistantTransportResponse",
    "DataStreamEncoder",
    "DataStreamResponse",
    "GorpStreamEncoder",
    "GorpStreamResponse",
    "HeartbeatOption",
    "ObjectStreamEncoder",
    "ObjectStreamResponse",
    "OpenAIStreamEncoder",
    "OpenAIStreamResponse",
    "RunResponse",
    "StreamEncoder",
    "UIMessageStreamEncoder",
    "UIMessageStreamResponse",
]
