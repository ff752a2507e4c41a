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

``feed_merged`` is ``feed`` for a reader that passes the chunks on rather
than the deltas as they were cut: consecutive deltas of one part come as one
chunk (``merged_deltas``). A relay that nests a remote run then handles, and
sends on, a chunk per run of text in a read where there was one per line.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import msgspec

from .._errors import DecodeError
from ..chunks import Chunk, ReasoningDeltaChunk, TextDeltaChunk, ToolCallDeltaChunk

__all__ = ["StreamDecoder", "json_value", "merged_deltas"]

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

    def feed_merged(self, data: bytes) -> list[Chunk]:
        """``feed``, with consecutive deltas of one part merged (``merged_deltas``).

        The same text, arguments and structure in fewer chunks. Decoders that
        can read a run of delta lines at once, without a chunk per line, do.
        """
        return merged_deltas(self.feed(data))

    def decode(self, body: bytes) -> list[Chunk]:
        """The chunks of a whole body: ``feed(body)``, then ``close()``."""
        return self.feed(body) + self.close()


def json_value(text: str, offset: int, what: str) -> Any:
    """``text`` parsed as JSON; ``DecodeError`` at ``offset`` saying ``what`` was expected."""
    try:
        return _decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise DecodeError(offset, f"expected {what} as JSON: {exc}") from None


_Part = tuple[type[Chunk], str | None]
"""What a delta adds to: its kind, and its parent id (a tool call's id for arguments)."""


def _delta(chunk: Chunk) -> tuple[_Part, str] | None:
    """The part a delta adds to and its text; ``None`` for a chunk that is no delta."""
    if type(chunk) is TextDeltaChunk:
        return (TextDeltaChunk, chunk.parent_id), chunk.text_delta
    if type(chunk) is ReasoningDeltaChunk:
        return (ReasoningDeltaChunk, chunk.parent_id), chunk.reasoning_delta
    if type(chunk) is ToolCallDeltaChunk:
        return (ToolCallDeltaChunk, chunk.tool_call_id), chunk.args_text_delta
    return None


def _may_close(part: _Part, text: str) -> bool:
    """Whether a piece of argument text may end the arguments' JSON: it closes a bracket.

    Readers find a call's arguments complete at the delta that closes their
    outermost bracket, and take text after that delta as text after the end.
    Such a delta is the last of a merge, so that the end falls at the same
    place, followed by the same text, merged or not.
    """
    return part[0] is ToolCallDeltaChunk and ("}" in text or "]" in text)


def _joined(first: Chunk, texts: list[str]) -> Chunk:
    """The delta ``first`` with the text of a run of deltas of its part."""
    if len(texts) == 1:
        return first
    text = "".join(texts)
    if type(first) is TextDeltaChunk:
        return TextDeltaChunk(text, first.parent_id)
    if type(first) is ReasoningDeltaChunk:
        return ReasoningDeltaChunk(text, first.parent_id)
    assert type(first) is ToolCallDeltaChunk
    return ToolCallDeltaChunk(first.tool_call_id, text)


def merged_deltas(chunks: list[Chunk]) -> list[Chunk]:
    """``chunks`` with each run of consecutive deltas of one part as one delta.

    A part is the text or the reasoning of one parent id, or the argument
    text of one tool call: what a reader shows is its deltas joined, so where
    they were cut means nothing. Every other chunk, and the order of all,
    stays as it is; a chunk not merged is the same object.
    """
    merged: list[Chunk] = []
    first: Chunk | None = None  # the first delta of the run being merged
    part: _Part | None = None
    texts: list[str] = []
    for chunk in chunks:
        delta = _delta(chunk)
        if first is not None and (
            delta is None or delta[0] != part or _may_close(delta[0], texts[-1])
        ):
            merged.append(_joined(first, texts))
            first = None
        if delta is None:
            merged.append(chunk)
        elif first is None:
            first, (part, text) = chunk, delta
            texts = [text]
        else:
            texts.append(delta[1])
    if first is not None:
        merged.append(_joined(first, texts))
    return merged
