"""The object stream under assistant-stream's names (``serialization.gorp_stream``).

assistant-stream's ``GorpStreamEncoder`` and ``GorpStreamResponse`` are this
package's ``ObjectStreamEncoder`` and ``ObjectStreamResponse``: the same
bytes, from a run's state operations rather than from batches handed in.
"""

from ..asgi import ObjectStreamResponse as GorpStreamResponse
from ..formats.object_stream import (
    ASSISTANT_STREAM_FORMAT_HEADER,
)
from ..formats.object_stream import OBJECT_STREAM_FORMAT as GORP_STREAM_FORMAT
from ..formats.object_stream import ObjectStreamDecoder as GorpStreamDecoder
from ..formats.object_stream import ObjectStreamEncoder as GorpStreamEncoder

__all__ = [
    "ASSISTANT_STREAM_FORMAT_HEADER",
    "GORP_STREAM_FORMAT",
    "GorpStreamDecoder",
    "GorpStreamEncoder",
    "GorpStreamResponse",
]
