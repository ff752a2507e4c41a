"""What every wire format provides besides its encoder: a decoder from bytes to chunks.

A decoder reads the body of one response, as a client receives it, back
into the chunks it carries: a stream from another agent can then be nested
in a run, checked in a test, or read by a Python client. It is synchronous
and does no I/O, like an encoder, and takes the body in pieces of any size
(the network decides where they split)::

    decoder = DataStreamDecoder()
    async for piece in response.aiter_bytes():
        for chunk in decoder.feed(piece):
            ...
    for chunk in decoder.close():  # raises DecodeError if the body was cut short
        ...

Decoders read what other producers write too, not only this package's
encoders; what each format cannot carry is listed on its page of the docs.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import msgspec

from .._errors import DecodeError
from ..chunks import Chunk

__all__ = ["StreamDecoder", "json_value"]

_decode = msgspec.json.decode


class StreamDecoder(abc.ABC):
    """Decodes the body of one response into chunks, piece by piece.

    Use a new decoder for every body: it remembers what it has read.
    """

    media_type: ClassVar[str]
    """The ``content-type`` of the bodies it reads."""

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[Chunk]:
        """The chunks completed by ``data``, the next piece of the body, in order.

        Keep-alives are skipped, and the format's error events become
        ``ErrorChunk``s. Raises ``DecodeError`` where the body is not in the
        format; the decoder cannot be used after that.
        """

    @abc.abstractmethod
    def close(self) -> list[Chunk]:
        """End the body: the chunks still held, in order.

        Raises ``DecodeError`` if the body was cut short (it ends inside a
        line or an event, or before the format's end of message).
        """

    def decode(self, body: bytes) -> list[Chunk]:
        """The chunks of a whole body: ``feed(body)``, then ``close()``."""
        return self.feed(body) + self.close()


def json_value(text: str, offset: int, what: str) -> Any:
    """``text`` parsed as JSON; ``DecodeError`` at ``offset`` saying ``what`` was expected."""
    try:
        return _decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise DecodeError(offset, f"expected {what} as JSON: {exc}") from None
