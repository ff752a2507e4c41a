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
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ..chunks import FinishReason, StepFinishChunk

__all__ = ["MessageOutcome", "ToolArguments", "open_tool_call", "start_tool_call"]

_decode = msgspec.json.decode

T = TypeVar("T")


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


class ToolArguments:
    """A tool call's argument text, and whether it is complete JSON yet."""

    __slots__ = ("complete", "pieces", "value")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.complete = False
        self.value: Any = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(self, piece: str) -> bool:
        """Add a piece of text; true when this piece completes the arguments."""
        self.pieces.append(piece)
        if self.complete or not piece.rstrip().endswith(("}", "]")):
            return False
        # Only text ending in a closing bracket can be a complete object or
        # array: trying to parse just then keeps streamed arguments linear.
        try:
            self.value = _decode(self.text)
        except msgspec.DecodeError:
            return False
        self.complete = True
        return True


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
