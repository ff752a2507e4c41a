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

``RunResponse`` and ``StreamEncoder`` are the base classes, for a format of
one's own.
"""

from ._encoder import StreamEncoder
from ._response import DEFAULT_HEARTBEAT_INTERVAL, HeartbeatOption, RunResponse

__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "HeartbeatOption", "RunResponse", "StreamEncoder"]
