"""Random identifiers for tool calls and messages."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix`` followed by ``length`` random letters and digits.

    24 characters from 62 carry 142 bits, enough that ids cannot be guessed,
    and the shape (``call_…``) matches what OpenAI-compatible clients expect.
    """
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def tool_call_id() -> str:
    """A new OpenAI-style tool call id, such as ``call_3XkQ…``."""
    return random_id("call_")


def message_id() -> str:
    """A new message id, such as ``msg_9fTz…``."""
    return random_id("msg_")
