"""assistant-ui's object stream: a state mirrored by the client, as batches of operations.

What assistant-stream's ``fromObjectStreamResponse`` (also named
``fromGorpStreamResponse``) reads, and its ``ObjectStreamResponse`` and
assistant-stream's Python ``GorpStreamResponse`` write: server-sent events
(header ``assistant-stream-format: object-stream/v0``) each carrying a JSON
array of state operations, ``set`` and ``append-text``, which the client
applies in order to the state it holds. It streams a structured object
rather than a message: a form being filled, a plan, a document.

A run's state is that object: each ``update-state`` chunk (what writes to
``controller.state`` make) is one event. A ``snapshot`` given to the encoder
is the state the client starts from, sent as a ``set`` of the whole state
before the first operations, as assistant-stream's encoders send theirs; a
body with no operations sends it alone at its end, so that a client always
learns it. Nothing else a run makes has a place in the format, which has no
text, tool calls or errors: they are not sent. The format has no end of
message either: a body ends after any event.

``ObjectStreamDecoder`` reads such a body back into ``update-state`` chunks,
the snapshot as the ``set`` at the root it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .._errors import DecodeError
from .._json import normalized
from ..chunks import CHUNK_TYPES, Chunk, StateOperation, UpdateStateChunk
from . import _sse
from ._decoder import StreamDecoder, json_value
from ._encoder import FORMAT_HEADER, StreamEncoder

__all__ = [
    "ASSISTANT_STREAM_FORMAT_HEADER",
    "OBJECT_STREAM_FORMAT",
    "ObjectStreamDecoder",
    "ObjectStreamEncoder",
]

ASSISTANT_STREAM_FORMAT_HEADER = "assistant-stream-format"
"""The header an assistant-stream client reads to know an object stream."""

OBJECT_STREAM_FORMAT = "object-stream/v0"
"""Its value for this format."""

_SAFE_INTEGER = 2**53 - 1


def _has_content(snapshot: Any) -> bool:
    """Whether a snapshot is worth sending: not ``None``, nor an empty dict, list or string."""
    if isinstance(snapshot, dict | list | str):
        return len(snapshot) > 0
    return snapshot is not None


class ObjectStreamEncoder(StreamEncoder):
    """Encodes a run's state operations as object stream events.

    ``snapshot`` is the state the client starts from, taken in its JSON form
    when the encoder is made: pass the run's initial state.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = {
        **_sse.HEADERS,
        ASSISTANT_STREAM_FORMAT_HEADER: OBJECT_STREAM_FORMAT,
        FORMAT_HEADER: "object-stream",
    }
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(self, snapshot: Any = None) -> None:
        self._snapshot: StateOperation | None = None
        if _has_content(snapshot):
            value = normalized(snapshot, "the object stream's snapshot")
            self._snapshot = {"type": "set", "path": [], "value": value}

    def _operations(self, operations: Iterable[StateOperation]) -> list[StateOperation]:
        """``operations``, after the snapshot if it has not been sent."""
        snapshot, self._snapshot = self._snapshot, None
        return [snapshot, *operations] if snapshot is not None else list(operations)

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        events = []
        for chunk in chunks:
            if isinstance(chunk, UpdateStateChunk):
                events.append(_sse.event(self._operations(chunk.operations)))
            elif not isinstance(chunk, CHUNK_TYPES):
                raise TypeError(f"not a chunk: {chunk!r}")
        return b"".join(events)

    def finish(self) -> bytes:
        return _sse.event(self._operations(())) if self._snapshot is not None else b""


class ObjectStreamDecoder(StreamDecoder):
    """Decodes an object stream: each event's operations become an ``update-state`` chunk.

    Reads what any producer of the format writes: paths whose list indexes
    are numbers (as the client reads them) become strings, an empty batch
    gives no chunk, keep-alive comments are skipped.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE

    def __init__(self) -> None:
        self._events = _sse.EventParser()

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for event in self._events.feed(data):
            batch = json_value(event.data, event.offset, "an array of state operations")
            if not isinstance(batch, list):
                raise DecodeError(event.offset, "expected an array of state operations")
            if batch:
                chunks.append(
                    UpdateStateChunk(tuple(_operation(op, event.offset) for op in batch))
                )
        return chunks

    def close(self) -> list[Chunk]:
        self._events.close()
        return []


def _operation(value: Any, offset: int) -> StateOperation:
    """One state operation of a batch."""
    if not isinstance(value, dict):
        raise DecodeError(offset, f"expected each operation as an object, got {value!r:.60}")
    path = value.get("path")
    if not isinstance(path, list):
        raise DecodeError(offset, f"expected an operation's path as an array, got {path!r:.60}")
    keys = [_key(key, offset) for key in path]
    kind = value.get("type")
    if kind == "set":
        return {"type": "set", "path": keys, "value": value.get("value")}
    if kind == "append-text":
        text = value.get("value")
        if not isinstance(text, str):
            raise DecodeError(
                offset, f"expected append-text's value as a string, got {text!r:.60}"
            )
        return {"type": "append-text", "path": keys, "value": text}
    raise DecodeError(
        offset, f"expected an operation of type set or append-text, got {kind!r:.60}"
    )


def _key(key: Any, offset: int) -> str:
    """A key of a path as a string; a list index sent as a number is spelled as the client
    spells it."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) <= _SAFE_INTEGER:
        return str(key)
    raise DecodeError(offset, f"expected the keys of a path as strings, got {key!r:.60}")
