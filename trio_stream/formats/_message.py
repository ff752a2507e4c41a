"""What an encoder remembers about the message it encodes, whatever its format.

Two facts are not in any single chunk: when a tool call's arguments are
complete, and how the message ended. Arguments stream as text and no chunk
says "done", but JSON text that parses as an object or array cannot be
extended and stay JSON, so the moment it parses, it is complete; formats that
can say so (the data stream's ``isFinal``, the assistant transport's
``tool-call-args-text-finish``, the UI message stream's
``tool-input-available``) say it then, so a front-end can show the call as
running rather than as still receiving its arguments. How the message ended
(its finish reason and token usage) is assembled from the ``step-finish``
chunks, the tool calls left without a result, and errors.

The SSE formats also group text into parts the same way: per producer (see
``OpenText``).
"""

from __future__ import annotations

import re
from typing import Any, Generic, Never, NoReturn, TypeVar

import msgspec

from ..chunks import FinishReason, StepFinishChunk

__all__ = [
    "MessageOutcome",
    "OpenText",
    "ToolArguments",
    "not_a_chunk",
    "open_tool_call",
    "start_tool_call",
    "with_parent_id",
]

_decode = msgspec.json.decode

T = TypeVar("T")
H = TypeVar("H")


def with_parent_id(value: dict[str, Any], parent_id: str | None) -> dict[str, Any]:
    """``value``, with a ``parentId`` entry when the chunk came from a sub-stream."""
    if parent_id is not None:
        value["parentId"] = parent_id
    return value


def not_a_chunk(value: Never) -> NoReturn:
    """The end of a ``match`` over every chunk type.

    Typed ``Never``, so that a type checker proves the match complete; at run
    time it refuses whatever else was passed for a chunk.
    """
    raise TypeError(f"not a chunk: {value!r}")


def start_tool_call(calls: dict[str, T], tool_call_id: str, call: T) -> None:
    """Add ``call`` to ``calls``; ``ValueError`` if ``tool_call_id`` is there already."""
    if tool_call_id in calls:
        raise ValueError(f"tool call {tool_call_id!r} was started twice")
    calls[tool_call_id] = call


def open_tool_call(calls: dict[str, T], tool_call_id: str) -> T:
    """The open call ``tool_call_id`` of ``calls``; ``ValueError`` naming it if none."""
    try:
        return calls[tool_call_id]
    except KeyError:
        raise ValueError(
            f"tool call {tool_call_id!r} was not started, or has already finished"
        ) from None


_STRUCTURE = re.compile(r'["\\{}\[\]]')
"""The characters that change a JSON text's nesting: quotes, backslashes, brackets."""


class ToolArguments:
    """A tool call's argument text, and whether it is complete JSON yet.

    A scanner follows the text's nesting as it arrives (brackets outside
    strings, with escapes honoured across piece boundaries), so the whole
    text is parsed only when its outermost bracket closes: linear in the
    length of the arguments, however finely they are streamed.
    """

    __slots__ = ("_depth", "_escape_pending", "_in_string", "complete", "pieces", "value")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.complete = False
        self.value: Any = None
        self._depth = 0
        self._in_string = False
        self._escape_pending = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def empty(self) -> bool:
        """Whether no argument text has arrived: no piece, or only empty ones.

        Such a call has no arguments, the same as one that never streamed any,
        rather than arguments that are not JSON.
        """
        return not any(self.pieces)

    def add(self, piece: str) -> bool:
        """Add a piece of text; true when this piece completes the arguments."""
        self.pieces.append(piece)
        if self.complete or not self._closes_outermost(piece):
            return False
        try:
            self.value = _decode(self.text)
        except msgspec.DecodeError:
            return False  # not JSON after all; perhaps a later piece mends it
        except RecursionError:
            # JSON nested deeper than the decoder's stack allows: no value can
            # be read from it here, which is not the encoder's failure.
            return False
        self.complete = True
        return True

    def _closes_outermost(self, piece: str) -> bool:
        closed = False
        escaped = 0 if self._escape_pending else -1  # the index of an escaped character
        self._escape_pending = False
        for match in _STRUCTURE.finditer(piece):
            index = match.start()
            if index == escaped:
                continue
            char = match.group()
            if self._in_string:
                if char == "\\":
                    if index + 1 == len(piece):
                        self._escape_pending = True
                    else:
                        escaped = index + 1
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]" and self._depth > 0:
                self._depth -= 1
                closed = closed or self._depth == 0
        return closed


class OpenText(Generic[H]):
    """The open text or reasoning part of each producer, by parent id.

    Deltas go into parts per producer: each sub-stream keeps its own open
    part, so parallel sub-streams do not cut one another's text into
    fragments, and anything else a producer adds closes its open part, so
    that its content stays in order. ``H`` is how a format addresses a part:
    a path, an id.
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[str | None, tuple[str, H]] = {}

    def find(self, parent_id: str | None, kind: str) -> H | None:
        """The producer's open part, if it is one of ``kind``."""
        part = self._parts.get(parent_id)
        return part[1] if part is not None and part[0] == kind else None

    def open(self, parent_id: str | None, kind: str, handle: H) -> None:
        """Record the producer's new open part (close the old one first)."""
        self._parts[parent_id] = (kind, handle)

    def close(self, parent_id: str | None) -> tuple[str, H] | None:
        """Forget the producer's open part and return it, if it had one."""
        return self._parts.pop(parent_id, None)

    def close_all(self) -> list[tuple[str, H]]:
        """Forget every open part and return them, in the order they opened."""
        parts = list(self._parts.values())
        self._parts.clear()
        return parts


class MessageOutcome:
    """How a message ended: its finish reason and summed token usage."""

    __slots__ = ("failed", "input_tokens", "last_step_reason", "output_tokens")

    def __init__(self) -> None:
        self.failed = False
        self.last_step_reason: FinishReason | None = None
        self.input_tokens = 0
        self.output_tokens = 0

    def step_finished(self, chunk: StepFinishChunk) -> None:
        self.last_step_reason = chunk.finish_reason
        self.input_tokens += chunk.input_tokens
        self.output_tokens += chunk.output_tokens

    def finish_reason(self, *, pending_tool_calls: bool) -> FinishReason:
        """``error`` after an error; ``tool-calls`` while calls await results;
        else the last step's reason, or ``stop``."""
        if self.failed:
            return "error"
        if pending_tool_calls:
            return "tool-calls"
        return self.last_step_reason or "stop"

    @property
    def usage(self) -> dict[str, int]:
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens}
