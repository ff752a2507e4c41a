"""What every wire format provides: a stateful encoder from chunks to bytes.

An encoder turns a run's chunks into the bytes of one response body. It is
stateful because most formats are: the assistant transport numbers content
parts, the UI message stream opens and closes text blocks, the OpenAI stream
numbers tool calls and picks the finish reason from what it has seen. It is
synchronous and does no I/O, so the same encoder serves a Starlette response,
a WebSocket, a file or a test, and is trivial to benchmark.

The life of an encoder, for one body::

    encoder = DataStreamEncoder()
    body = encoder.start()
    async with create_run(callback) as chunks:
        async for chunk in chunks:
            body += encoder.encode([chunk])
    body += encoder.finish()
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ..chunks import Chunk
from ._sse import KEEPALIVE, is_event_stream

__all__ = ["FORMAT_HEADER", "StreamEncoder"]

FORMAT_HEADER = "x-trio-stream-format"
"""The response header naming the body's format, for formats whose media type says nothing
more than ``text/event-stream`` (see ``decoder_for``)."""


class StreamEncoder(abc.ABC):
    """Encodes the chunks of one run as the body of one response.

    Use a new encoder for every body: it remembers what it has encoded.
    """

    media_type: ClassVar[str]
    """The body's ``content-type``."""

    headers: ClassVar[Mapping[str, str]] = {}
    """Headers a client of this format expects, besides ``content-type``."""

    keepalive: ClassVar[bytes] = b""
    """Bytes that keep an idle connection open and that clients ignore.

    A format that does not set them gets an SSE comment line if its media
    type is ``text/event-stream`` (every SSE parser skips one), and none
    otherwise: a format with nothing its clients are sure to ignore is never
    sent keep-alives, whatever ``heartbeat`` asks.
    """

    _derived: ClassVar[frozenset[str]] = frozenset()
    """The keep-alive settings the class has from its media type, not from its own say."""

    default_heartbeat: ClassVar[bool] = False
    """Whether ``keepalive`` goes out after silence unless the caller says otherwise.

    A format that does not set it has heartbeats on whenever it has
    keep-alive bytes (its own, or the SSE comment line it gets from its media
    type): proxies and clients may drop a quiet connection. The data stream
    sets it off, as its clients may not expect the blank lines.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # What a format declares itself wins; what follows from its media type
        # is worked out again for each subclass, whose media type may differ.
        declared = {
            name
            for base in cls.__mro__
            if issubclass(base, StreamEncoder) and base is not StreamEncoder
            for name in ("keepalive", "default_heartbeat")
            if name in vars(base) and name not in vars(base).get("_derived", ())
        }
        derived = []
        if "keepalive" not in declared:
            media_type = getattr(cls, "media_type", "")
            sse = isinstance(media_type, str) and is_event_stream(media_type)
            cls.keepalive = KEEPALIVE if sse else b""
            derived.append("keepalive")
        if "default_heartbeat" not in declared:
            cls.default_heartbeat = bool(cls.keepalive)
            derived.append("default_heartbeat")
        cls._derived = frozenset(derived)

    def start(self) -> bytes:
        """Bytes that open the body, before any chunk."""
        return b""

    @abc.abstractmethod
    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        """The bytes for ``chunks``, in order; may be empty.

        A batch encodes to exactly the bytes its chunks would give one at a
        time, so a response may group chunks however it likes.

        The chunks of a run are valid by construction: its controllers refuse
        what a format could not encode (a value with no JSON form, a result
        for a tool call that was never started) at the call that makes it.
        An encoder may therefore assume its input makes sense, and raises
        ``ValueError`` or ``TypeError`` on chunks that do not, as a run never
        produces.
        """

    def finish(self) -> bytes:
        """Bytes that close the body, after the last chunk (also after an error)."""
        return b""
