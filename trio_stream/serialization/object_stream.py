"""assistant-ui's object stream: encoder, decoder and response, next to the other formats."""

from ..asgi import ObjectStreamResponse
from ..formats.object_stream import (
    ASSISTANT_STREAM_FORMAT_HEADER,
    OBJECT_STREAM_FORMAT,
    ObjectStreamDecoder,
    ObjectStreamEncoder,
)

__all__ = [
    "ASSISTANT_STREAM_FORMAT_HEADER",
    "OBJECT_STREAM_FORMAT",
    "ObjectStreamDecoder",
    "ObjectStreamEncoder",
    "ObjectStreamResponse",
]
