"""The formats by name, and which one a response's body is in.

A client reading another server's run should not have to be told the
format. The data stream and the UI message stream name themselves in a
header (``x-vercel-ai-data-stream``, ``x-vercel-ai-ui-message-stream``), the
object stream in ``assistant-stream-format``, and this package's encoders of
the other formats send ``x-trio-stream-format``. Other producers of those
say nothing but ``text/event-stream``; their first event does: a
``chat.completion.chunk``, an AG-UI event (``RUN_STARTED``…), an assistant
transport chunk, or an array of state operations. ``decoder_for`` reads the headers, and
when they are not enough returns a decoder that looks at the first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from .._errors import DecodeError
from ..chunks import Chunk
from ._decoder import StreamDecoder
from ._encoder import FORMAT_HEADER, StreamEncoder
from ._sse import EventParser, is_event_stream
from .ag_ui import AGUIDecoder, AGUIEncoder
from .assistant_transport import AssistantTransportDecoder, AssistantTransportEncoder
from .data_stream import DataStreamDecoder, DataStreamEncoder
from .object_stream import (
    ASSISTANT_STREAM_FORMAT_HEADER,
    OBJECT_STREAM_FORMAT,
    ObjectStreamDecoder,
    ObjectStreamEncoder,
)
from .openai_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from .ui_message_stream import UIMessageStreamDecoder, UIMessageStreamEncoder

__all__ = ["FORMATS", "FORMAT_HEADER", "Format", "decoder_for", "format_named"]


@dataclass(frozen=True, slots=True)
class Format:
    """A wire format: its name and its two classes."""

    name: str
    encoder: type[StreamEncoder]
    decoder: type[StreamDecoder]


FORMATS: Mapping[str, Format] = {
    format.name: format
    for format in (
        Format("data-stream", DataStreamEncoder, DataStreamDecoder),
        Format("assistant-transport", AssistantTransportEncoder, AssistantTransportDecoder),
        Format("ui-message-stream", UIMessageStreamEncoder, UIMessageStreamDecoder),
        Format("openai-stream", OpenAIStreamEncoder, OpenAIStreamDecoder),
        Format("ag-ui", AGUIEncoder, AGUIDecoder),
        Format("object-stream", ObjectStreamEncoder, ObjectStreamDecoder),
    )
}
"""Every format, by its name."""

_BY_HEADER = {
    "x-vercel-ai-data-stream": "data-stream",
    "x-vercel-ai-ui-message-stream": "ui-message-stream",
}


def format_named(name: str) -> Format:
    """The format called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"no format {name!r}; the formats are {', '.join(FORMATS)}") from None


def decoder_for(headers: Mapping[str, str], *, format: str | None = None) -> StreamDecoder:
    """A decoder for a body with these response ``headers``.

    ``format``, if given, decides. Otherwise the headers do; an event stream
    they do not name gets a decoder that tells its format by its first event.
    ``ValueError`` if nothing can: a body that is neither of the above.
    """
    if format is not None:
        return format_named(format).decoder()
    lowered = {name.lower(): value for name, value in headers.items()}
    named = lowered.get(FORMAT_HEADER)
    if named is not None:
        return format_named(named.strip()).decoder()
    for header, name in _BY_HEADER.items():
        if header in lowered:
            return FORMATS[name].decoder()
    if lowered.get(ASSISTANT_STREAM_FORMAT_HEADER, "").strip() == OBJECT_STREAM_FORMAT:
        return ObjectStreamDecoder()
    if is_event_stream(lowered.get("content-type", "")):
        return _FirstEventTells()
    raise ValueError(
        f"cannot tell the format of a {lowered.get('content-type', 'untyped')!r} body; "
        f"pass format= (one of {', '.join(FORMATS)})"
    )


def _format_of(event: Any) -> str | None:
    """The format whose events look like ``event`` (a decoded JSON value)."""
    if isinstance(event, list):
        return "object-stream"  # a batch of state operations
    if not isinstance(event, dict):
        return None
    if "choices" in event or event.get("object") == "chat.completion.chunk":
        return "openai-stream"
    kind = event.get("type")
    if not isinstance(kind, str):
        return "openai-stream" if "error" in event else None
    if kind.isupper():
        return "ag-ui"
    if "path" in event or kind in ("part-start", "update-state", "message-finish"):
        return "assistant-transport"
    return "ui-message-stream"


class _FirstEventTells(StreamDecoder):
    """Holds the body until its first event says the format, then decodes it in that."""

    media_type: ClassVar[str] = "text/event-stream"

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self._events = EventParser()
        self._decoder: StreamDecoder | None = None

    def feed(self, data: bytes) -> list[Chunk]:
        if self._decoder is not None:
            return self._decoder.feed(data)
        self._held.append(data)
        for event in self._events.feed(data):
            if event.data == "[DONE]":
                continue
            try:
                value = msgspec.json.decode(event.data)
            except msgspec.DecodeError:
                value = None
            name = _format_of(value)
            if name is None:
                shown = event.data[:80]
                raise DecodeError(event.offset, f"expected an event of a known format: {shown!r}")
            self._decoder = FORMATS[name].decoder()
            held, self._held = b"".join(self._held), []
            return self._decoder.feed(held)
        return []

    def close(self) -> list[Chunk]:
        if self._decoder is None:
            self._events.close()
            raise DecodeError(self._events_end(), "the body ends before its first event")
        return self._decoder.close()

    def _events_end(self) -> int:
        return sum(len(piece) for piece in self._held)
