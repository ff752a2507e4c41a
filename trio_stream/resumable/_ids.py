"""Stream ids: the only key to a stream, so generated ones cannot be guessed."""

from __future__ import annotations

import re
import secrets

__all__ = ["new_stream_id", "validate_stream_id"]

_VALID = re.compile(r"[A-Za-z0-9_-]{8,128}")


def new_stream_id() -> str:
    """A new stream id: 24 random bytes (192 bits), URL-safe base64, 32 characters."""
    return secrets.token_urlsafe(24)


def validate_stream_id(stream_id: object) -> str:
    """``stream_id`` if it is 8 to 128 letters, digits, ``_`` or ``-``; else ``ValueError``.

    The characters are safe in a URL path, a header and a Redis key. An id
    chosen by the app (a chat id, say) is accepted, but only a generated one
    is unguessable: whoever knows an id can read the stream, so an app that
    picks its own ids must check who asks.
    """
    if not isinstance(stream_id, str) or _VALID.fullmatch(stream_id) is None:
        shown = repr(stream_id) if len(repr(stream_id)) <= 40 else repr(stream_id)[:37] + "..."
        raise ValueError(f"a stream id is 8 to 128 letters, digits, '_' or '-', not {shown}")
    return stream_id
