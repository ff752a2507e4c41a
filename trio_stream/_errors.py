"""The exceptions trio_stream raises, and how it reports the ones it catches.

Every error the library raises derives from ``TrioStreamError``, and also
from the built-in type a caller would naturally catch (``TypeError`` for a
value that cannot go on the wire, ``RuntimeError`` for using an object at the
wrong time), so both ``except TrioStreamError`` and ``except TypeError`` work.
"""

from __future__ import annotations

import secrets

__all__ = [
    "DecodeError",
    "SerializationError",
    "StreamClosedError",
    "ToolCallError",
    "TrioStreamError",
    "UsageError",
]


class TrioStreamError(Exception):
    """Base class of every exception raised by trio_stream itself."""


class UsageError(TrioStreamError, RuntimeError):
    """A run or controller was used in a way that cannot work.

    For example iterating a run without entering it, or entering it twice.
    """


class StreamClosedError(TrioStreamError, RuntimeError):
    """A chunk was written after the run, or the tool call, had finished."""


class ToolCallError(TrioStreamError, ValueError):
    """A tool call id the run cannot take: one it never started, or one it used already.

    Every format addresses a call's arguments and result by its id, so the
    id must be new when the call starts and known when its result comes.
    """


class SerializationError(TrioStreamError, TypeError):
    """A value handed to a controller cannot be encoded as JSON.

    Raised at the call that produced the value, naming the chunk it was meant
    for, rather than later and deep inside a wire encoder.
    """


class DecodeError(TrioStreamError, ValueError):
    """A body could not be decoded: it is truncated, or not in the format read.

    ``offset`` is the byte of the body where the problem shows (its end, for
    a truncated one), and ``problem`` says what was expected there.
    """

    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(offset, problem)
        self.offset = offset
        self.problem = problem

    def __str__(self) -> str:
        return f"at byte {self.offset}: {self.problem}"


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """Flatten (possibly nested) exception groups into their leaves."""
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in exc.exceptions:
            leaves.extend(leaf_exceptions(inner))
        return leaves
    return [exc]


def collapse(exc: BaseException) -> BaseException:
    """Return the single exception inside ``exc``, or ``exc`` itself.

    Task groups always wrap what their tasks raise in an exception group. A
    run has one failure far more often than several, and callers want to write
    ``except ValueError`` around it, so a group holding exactly one leaf is
    replaced by that leaf. Several concurrent failures stay a group.
    """
    leaves = leaf_exceptions(exc)
    return leaves[0] if len(leaves) == 1 else exc


def describe(exc: BaseException) -> str:
    """The text an error chunk carries for ``exc``: its message, else its type.

    A group is described by its leaves, joined with "; ".
    """
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(leaf) for leaf in leaf_exceptions(exc))
    text = str(exc) or type(exc).__name__
    # A message is shown to a client: lone surrogates, which have no UTF-8
    # form, are spelled out rather than allowed to break the encoding.
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


HIDDEN_RUN_ERROR = "the response failed on the server"
"""What a run that hides its errors tells the client about a failure."""

HIDDEN_TOOL_ERROR = "the tool failed on the server"
"""What a run that hides its errors sends as the result of a failed tool."""


def wire_message(exc: BaseException, *, expose: bool, hidden: str) -> str:
    """The text a client is sent for ``exc``.

    With ``expose``, it is ``describe(exc)``. Otherwise it is ``hidden``
    followed by a fresh reference, and the same reference is added to the
    exception as a note: the exception still propagates (or is logged) with
    its full traceback, which then names the reference, so that an operator
    given the reference by a user finds the one traceback it stands for.
    """
    if expose:
        return describe(exc)
    reference = secrets.token_hex(6)
    exc.add_note(f"error reference {reference}: the client was sent {hidden!r} instead")
    return f"{hidden} (error reference {reference})"
