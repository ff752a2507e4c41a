"""Wire formats: an encoder and a Starlette response per format.

Each format lives in a module of its own, with its encoder (chunks to bytes,
no I/O) beside the response that streams a run in that format:

- ``data_stream``: ``DataStreamResponse``, assistant-ui's data stream;
- ``assistant_transport``: ``AssistantTransportResponse``, assistant-ui's
  assistant transport (SSE);
- ``openai_stream``: ``OpenAIStreamResponse``, OpenAI chat completion chunks
  (SSE);
- ``ui_message_stream``: ``UIMessageStreamResponse``, the AI SDK's UI message
  stream (SSE).

All of them are importable from this package too, as in assistant-stream.
``RunResponse`` and ``StreamEncoder`` are the base classes, for a format of
one's own.
"""

from ._encoder import StreamEncoder
from ._response import DEFAULT_HEARTBEAT_INTERVAL, HeartbeatOption, RunResponse
from .assistant_transport import AssistantTransportEncoder, AssistantTransportResponse
from .data_stream import DataStreamEncoder, DataStreamResponse
from .openai_stream import OpenAIStreamEncoder, OpenAIStreamResponse
from .ui_message_stream import UIMessageStreamEncoder, UIMessageStreamResponse

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "AssistantTransportEncoder",
    "AssistantTransportResponse",
    "DataStreamEncoder",
    "DataStreamResponse",
    "HeartbeatOption",
    "OpenAIStreamEncoder",
    "OpenAIStreamResponse",
    "RunResponse",
    "StreamEncoder",
    "UIMessageStreamEncoder",
    "UIMessageStreamResponse",
]
