"""Splitting a body into lines as it arrives, in pieces of any size.

A body reaches a decoder in whatever pieces the network gives: a piece may
end inside a line, inside a UTF-8 sequence, or between the ``\\r`` and the
``\\n`` of one line break. ``Lines`` keeps the unfinished line and hands out
complete ones, decoded, with the byte offset where each starts, so that a
decoder can say where a body went wrong.

Only the new bytes of each piece are searched for a line break, and the
unfinished line grows in place, so a body costs time linear in its size
however finely it is split.
"""

from __future__ import annotations

import re

from .._errors import DecodeError

__all__ = ["Line", "Lines"]

Line = tuple[int, str]
"""A line's byte offset in the body, and its text without the line break."""

_BREAK = re.compile(rb"\r\n|\r|\n")


class Lines:
    """The complete lines of a body fed in pieces.

    With ``cr``, a lone ``\\r`` ends a line too, as in server-sent events;
    without it, only ``\\n`` does, and a ``\\r`` before it is dropped.
    """

    __slots__ = ("_cr", "_offset", "_pending", "_skip_lf")

    def __init__(self, *, cr: bool) -> None:
        self._cr = cr
        self._pending = bytearray()
        self._offset = 0  # of the first byte of ``_pending`` in the body
        self._skip_lf = False  # the last piece ended with a ``\r``

    @property
    def offset(self) -> int:
        """How many bytes have been fed."""
        return self._offset + len(self._pending)

    def feed(self, data: bytes) -> list[Line]:
        """The lines ``data`` completes, in order."""
        taken = self.take(data)
        return [] if taken is None else self.split(*taken)

    def take(self, data: bytes) -> tuple[int, bytes] | None:
        """The lines ``data`` completes as one block of bytes, with its offset in the body.

        The block ends with a line break; ``None`` if ``data`` completes no
        line. ``split`` makes lines of it, as ``feed`` does: a decoder that
        can read a run of lines at once, without a Python step per line,
        takes the block and splits only what it cannot read so.
        """
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                self._offset += 1
                data = data[1:]
        if not data:
            return None
        pending = self._pending
        searched = len(pending)
        pending += data
        last = pending.rfind(b"\n", searched)
        if self._cr:
            last = max(last, pending.rfind(b"\r", searched))
        if last < 0:
            return None
        if self._cr and pending[last] == 0x0D and last == len(pending) - 1:
            self._skip_lf = True  # perhaps the first half of a ``\r\n``
        complete = bytes(pending[: last + 1])
        del pending[: last + 1]
        offset = self._offset
        self._offset += len(complete)
        return offset, complete

    def close(self) -> Line | None:
        """The last line if the body ended without a line break after it."""
        if not self._pending:
            return None
        start, rest = self._offset, bytes(self._pending)
        self._offset += len(rest)
        self._pending.clear()
        return start, _text(rest, start)

    def split(self, offset: int, complete: bytes) -> list[Line]:
        """``complete``, lines ending with a line break taken at ``offset``, as lines."""
        lines: list[Line] = []
        if self._cr and b"\r" in complete:
            start = 0
            for found in _BREAK.finditer(complete):
                lines.append(
                    (offset + start, _text(complete[start : found.start()], offset + start))
                )
                start = found.end()
            return lines
        for raw in complete.split(b"\n")[:-1]:
            end = len(raw)
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            lines.append((offset, _text(raw, offset)))
            offset += end + 1
        return lines


def _text(raw: bytes, offset: int) -> str:
    """``raw`` decoded as UTF-8; ``DecodeError`` at the first byte that is not."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(offset + exc.start, f"expected UTF-8 text: {exc.reason}") from None
