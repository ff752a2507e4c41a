"""The one JSON encoding used for everything a run puts on the wire."""

from __future__ import annotations

from typing import Any

import msgspec

from ._errors import SerializationError

_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON.

    Besides the JSON types, this accepts what msgspec accepts (dataclasses,
    msgspec structs, datetimes, UUIDs, enums, sets and tuples). Non-finite
    floats become ``null``, since JSON has no spelling for them.
    """
    return _encoder.encode(value)


def encode_checked(value: Any, what: str) -> bytes:
    """:func:`encode`, raising :class:`SerializationError` naming ``what`` on failure."""
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def ensure_serializable(value: Any, what: str) -> None:
    """Raise :class:`SerializationError` naming ``what`` if ``value`` cannot be encoded."""
    encode_checked(value, what)
