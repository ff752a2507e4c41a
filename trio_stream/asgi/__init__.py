"""The ASGI side: Starlette responses that stream a run, and how they deliver it.

A response pairs a run with a format's encoder (``trio_stream.formats``) and
owns the I/O: writes, disconnects, the shutdown cut-off and keep-alives.

- ``DataStreamResponse``: assistant-ui's data stream;
- ``AssistantTransportResponse``: assistant-ui's assistant transport (SSE);
- ``UIMessageStreamResponse``: the AI SDK's UI message stream (SSE);
- ``OpenAIStreamResponse``: OpenAI chat completion chunks (SSE);
- ``AGUIResponse``: AG-UI events (SSE), for AG-UI clients such as CopilotKit;
- ``ObjectStreamResponse``: a run's state alone, as assistant-ui's object stream (SSE).

``RunResponse`` streams a run in any encoder's format, and
``ListeningResponse`` is the sequence every streamed response shares, for a
body of one's own (the resumable streams' reader is one). ``add_keepalive``
and ``add_sse_heartbeat`` add keep-alives to any stream of bytes.
"""

from ._delivery import (
    COALESCE_WINDOW,
    DEFAULT_HEARTBEAT_INTERVAL,
    BodySender,
    ClientGone,
    HeartbeatOption,
    Interruption,
    body_sender,
    heartbeat_interval,
    until_interrupted,
    write_chunks,
)
from ._keepalive import KeepAlivePieces, add_keepalive, add_sse_heartbeat
from ._response import (
    AGUIResponse,
    AssistantTransportResponse,
    DataStreamResponse,
    ListeningResponse,
    ObjectStreamResponse,
    OpenAIStreamResponse,
    RunResponse,
    UIMessageStreamResponse,
)

__all__ = [
    "COALESCE_WINDOW",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "AGUIResponse",
    "AssistantTransportResponse",
    "BodySender",
    "ClientGone",
    "DataStreamResponse",
    "HeartbeatOption",
    "Interruption",
    "KeepAlivePieces",
    "ListeningResponse",
    "ObjectStreamResponse",
    "OpenAIStreamResponse",
    "RunResponse",
    "UIMessageStreamResponse",
    "add_keepalive",
    "add_sse_heartbeat",
    "body_sender",
    "heartbeat_interval",
    "until_interrupted",
    "write_chunks",
]
