"""Server-sent events framing shared by the SSE formats."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._json import encode

__all__ = ["DONE", "HEADERS", "KEEPALIVE", "MEDIA_TYPE", "event", "events"]

MEDIA_TYPE = "text/event-stream"

HEADERS: Mapping[str, str] = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""Headers that keep caches and buffering proxies from holding an event stream back."""

KEEPALIVE = b": heartbeat\n\n"
"""A comment line: it keeps the connection busy, and every SSE parser skips it."""

DONE = b"data: [DONE]\n\n"
"""The last event of an OpenAI-style stream."""


def event(value: Any) -> bytes:
    """One ``data:`` event carrying ``value`` as JSON.

    JSON text holds no raw line break (they are escaped inside strings), so
    one ``data:`` line always carries the whole value.
    """
    return b"data: " + encode(value) + b"\n\n"


def events(values: Iterable[Any]) -> bytes:
    """One ``data:`` event per value, in order."""
    return b"".join([event(value) for value in values])
