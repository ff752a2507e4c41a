"""The one JSON encoding used for everything a run puts on the wire."""

from __future__ import annotations

from typing import Any

import msgspec

from ._errors import SerializationError

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON.

    Besides the JSON types, this accepts what msgspec accepts (dataclasses,
    msgspec structs, datetimes, UUIDs, enums, sets and tuples). Non-finite
    floats become ``null``, since JSON has no spelling for them.
    """
    return _encoder.encode(value)


_TOO_DEEP = "it is nested too deeply, or contains itself"


def encode_checked(value: Any, what: str) -> bytes:
    """``encode``, raising ``SerializationError`` naming ``what`` on failure.

    A value that contains itself, or is nested deeper than the interpreter's
    recursion limit, fails too, with a message that says so: msgspec reports
    both as a ``RecursionError``, which would otherwise escape as a bare
    failure of the run.
    """
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc
    except RecursionError as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {_TOO_DEEP}") from exc


def normalized(value: Any, what: str) -> Any:
    """``value`` as the client will see it: a fresh copy made of JSON types only.

    Tuples and sets become lists, keys become strings, dataclasses become
    dicts. The copy shares nothing with ``value``, so later changes to either
    do not reach the other.
    """
    return _decoder.decode(encode_checked(value, what))


def ensure_serializable(value: Any, what: str) -> None:
    """Raise ``SerializationError`` naming ``what`` if ``value`` cannot be encoded."""
    encode_checked(value, what)


def ensure_text(value: str, what: str) -> None:
    """Raise ``SerializationError`` naming ``what`` if ``value`` is not valid Unicode.

    A Python ``str`` can hold lone surrogates (from ``surrogateescape`` or
    broken decoding), which have no UTF-8 form, so they would fail deep in a
    wire encoder; here they fail at the call that produced them. ASCII text,
    the common case, is checked without encoding.
    """
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise SerializationError(
                f"{what} is not valid Unicode text: {exc.reason} at index {exc.start}"
            ) from None
