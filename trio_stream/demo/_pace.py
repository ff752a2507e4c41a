"""The demo's sense of time: pauses a person can follow, scaled down for tests.

The scripted agents (the one-process agent, the orchestrator, its
specialists and their MCP server) pause between tokens and while their tools
"work", so that a turn unfolds at a speed a person can watch. One factor
scales every pause: 1.0 for people, 0.1 to run ten times faster, 0 to run
without pauses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anyio

from .._controller import ToolCallController

__all__ = ["Pace", "tokens"]

_TOKEN = re.compile(r"\S+\s*|\s+")


def tokens(text: str) -> list[str]:
    """``text`` in the pieces a model would stream: each word with its trailing space."""
    return _TOKEN.findall(text)


class Pace:
    """Pauses, scaled by ``scale`` (1.0: a realistic speed; must not be negative)."""

    __slots__ = ("scale",)

    def __init__(self, scale: float = 1.0) -> None:
        if not scale >= 0:
            raise ValueError(f"pace must not be negative, not {scale}")
        self.scale = scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds * self.scale)

    async def words(self, write: Callable[[str], None], text: str, delay: float = 0.03) -> None:
        """Write ``text`` token by token, as a model generates it."""
        for token in tokens(text):
            write(token)
            await self.sleep(delay)

    async def stream_args(self, call: ToolCallController, args: dict[str, Any]) -> None:
        """Send a call's arguments in pieces of seven characters, as a model generates them."""
        text = json.dumps(args)
        for start in range(0, len(text), 7):
            call.append_args_text(text[start : start + 7])
            await self.sleep(0.04)
        call.args = args
