"""Calling a response as a plain ASGI app, with no server, on any backend."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Scope

__all__ = ["SCOPE", "SentMessages", "never_disconnect"]

SCOPE: Scope = {"type": "http", "path": "/"}


async def never_disconnect() -> Message:
    """A ``receive`` whose client never leaves."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


class SentMessages(list[Message]):
    """The ASGI messages an app sent, in order."""

    async def send(self, message: Message) -> None:
        self.append(message)

    async def call(self, app: ASGIApp) -> None:
        """Call ``app`` for one request whose client stays; record what it sends."""
        await app(SCOPE, never_disconnect, self.send)

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self if m["type"] == "http.response.body")
