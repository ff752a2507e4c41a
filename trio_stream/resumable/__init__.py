"""Resumable streams: runs that outlive their connection, shared across workers.

``ResumableStreams`` starts a run under a stream id and appends its encoded
bytes to a store while it runs, whether or not a client reads; any client can
then read it from any byte offset, on any worker that shares the store.
``MemoryStore`` keeps streams in one process; ``trio_stream.resumable.redis``
has ``RedisStore``, on Redis Streams, for several workers and hosts. Other
stores implement the ``StreamStore`` protocol. Hooks tell the app what the
producers do, and limits bound what they take on.
"""

from ._hooks import (
    OnAcquire,
    OnAppend,
    OnError,
    OnFinish,
    ProducerEnded,
    StreamHooks,
    StreamRole,
    WaitUntil,
)
from ._ids import new_stream_id, validate_stream_id
from ._store import (
    ProducerLostError,
    StoreError,
    StreamExistsError,
    StreamInfo,
    StreamNotFoundError,
    StreamStatus,
    StreamStore,
)
from ._streams import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TTL,
    STREAM_ID_HEADER,
    ResumableStreams,
    StoredStreamResponse,
    StreamTooLargeError,
)
from .memory import MemoryStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TTL",
    "STREAM_ID_HEADER",
    "MemoryStore",
    "OnAcquire",
    "OnAppend",
    "OnError",
    "OnFinish",
    "ProducerEnded",
    "ProducerLostError",
    "ResumableStreams",
    "StoreError",
    "StoredStreamResponse",
    "StreamExistsError",
    "StreamHooks",
    "StreamInfo",
    "StreamNotFoundError",
    "StreamRole",
    "StreamStatus",
    "StreamStore",
    "StreamTooLargeError",
    "WaitUntil",
    "new_stream_id",
    "validate_stream_id",
]
