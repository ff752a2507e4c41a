"""Server-sent events, both ways: the framing the SSE formats write, and a parser.

Writing is one ``data:`` line per event. JSON text holds no raw line break
(they are escaped inside strings), so one line always carries a whole value.

Reading follows the WHATWG event stream rules, so it takes what any SSE
producer writes, not only this package: ``\\r\\n``, ``\\r`` or ``\\n`` line
breaks, several ``data:`` lines joined by ``\\n``, ``event:`` and ``id:``
fields, comment lines (keep-alives) skipped, a leading byte order mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .._errors import DecodeError
from .._json import encode
from ._lines import Lines

__all__ = [
    "DONE",
    "HEADERS",
    "KEEPALIVE",
    "MEDIA_TYPE",
    "Event",
    "EventParser",
    "event",
    "events",
    "is_event_stream",
]

MEDIA_TYPE = "text/event-stream"

HEADERS: Mapping[str, str] = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""Headers that keep caches and buffering proxies from holding an event stream back."""

KEEPALIVE = b": heartbeat\n\n"
"""A comment line: it keeps the connection busy, and every SSE parser skips it."""

DONE = b"data: [DONE]\n\n"
"""The last event of an OpenAI-style stream."""


def is_event_stream(media_type: str) -> bool:
    """Whether ``media_type`` (parameters allowed) is ``text/event-stream``."""
    return media_type.partition(";")[0].strip().lower() == MEDIA_TYPE


def event(value: Any) -> bytes:
    """One ``data:`` event carrying ``value`` as JSON."""
    return b"data: " + encode(value) + b"\n\n"


def events(values: Iterable[Any]) -> bytes:
    """One ``data:`` event per value, in order."""
    return b"".join([event(value) for value in values])


class Event(NamedTuple):
    """One server-sent event."""

    offset: int
    """The byte of the body where the event's first line starts."""
    data: str
    """Its ``data:`` lines, joined by ``\\n``."""
    event: str = ""
    """Its ``event:`` field; empty when it has none (a ``message``)."""
    id: str | None = None
    """Its ``id:`` field, if it has one."""


class EventParser:
    """The events of a body fed in pieces of any size."""

    __slots__ = ("_data", "_event", "_id", "_lines", "_start")

    def __init__(self) -> None:
        self._lines = Lines(cr=True)
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._start: int | None = None  # where the event being read starts

    def feed(self, data: bytes) -> list[Event]:
        """The events ``data`` completes, in order."""
        found: list[Event] = []
        for offset, line in self._lines.feed(data):
            self._line(offset, line, found)
        return found

    def close(self) -> None:
        """End the body; ``DecodeError`` if it ends inside an event."""
        last = self._lines.close()
        end = self._lines.offset
        if last is not None:
            raise DecodeError(end, "the body ends inside a line: expected a line break")
        if self._start is not None:
            raise DecodeError(end, "the body ends inside an event: expected a blank line")

    def _line(self, offset: int, line: str, found: list[Event]) -> None:
        if offset == 0 and line[:1] == "\ufeff":
            line = line[1:]  # a byte order mark
        if not line:
            data = "\n".join(self._data)
            if data or len(self._data) > 1:  # one empty ``data:`` line is no event
                found.append(Event(self._start or 0, data, self._event, self._id))
            self._data, self._event, self._start = [], "", None
            return
        if line[0] == ":":
            return  # a comment: a keep-alive
        if self._start is None:
            self._start = offset
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
