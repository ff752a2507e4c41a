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
from typing import ClassVar

from ..chunks import Chunk

__all__ = ["StreamEncoder"]


class StreamEncoder(abc.ABC):
    """Encodes the chunks of one run as the body of one response.

    Use a new encoder for every body: it remembers what it has encoded.
    """

    media_type: ClassVar[str]
    """The body's ``content-type``."""

    headers: ClassVar[Mapping[str, str]] = {}
    """Headers a client of this format expects, besides ``content-type``."""

    keepalive: ClassVar[bytes]
    """Bytes that keep an idle connection open and that clients ignore."""

    default_heartbeat: ClassVar[bool] = False
    """Whether ``keepalive`` goes out after silence unless the caller says otherwise.

    On for the SSE formats, whose proxies and clients may drop a quiet
    connection; off for formats whose clients may not expect the bytes.
    """

    def start(self) -> bytes:
        """Bytes that open the body, before any chunk."""
        return b""

    @abc.abstractmethod
    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        """The bytes for ``chunks``, in order; may be empty.

        A batch encodes to exactly the bytes its chunks would give one at a
        time, so a response may group chunks however it likes.

        A batch is all or nothing: if encoding raises (a value with no JSON
        form, a tool call that was never started), the encoder is left as it
        was before the call. None of the batch went out, so the error chunk
        and the closing bytes that follow must not refer to any of it (a part
        the client never saw start, a block it never saw open).
        """

    def finish(self) -> bytes:
        """Bytes that close the body, after the last chunk (also after an error)."""
        return b""
