"""The import paths of assistant-stream's ``serialization`` package.

Each format's encoder lives in ``trio_stream.formats`` and its response in
``trio_stream.asgi``; this package and its modules (``data_stream``,
``assistant_transport``, ``ui_message_stream``, ``openai_stream``,
``object_stream``, and ``gorp_stream`` with assistant-stream's names for the
object stream) name them
where an assistant-stream user looks for them.
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

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "AssistantTransportEncoder",
    "AssistantTransportResponse",
    "DataStreamEncoder",
    "DataStreamResponse",
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
