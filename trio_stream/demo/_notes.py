"""The MCP server behind the demo's researcher: a few notes, searched slowly.

Built with the official ``mcp`` SDK and run over stdio by the researcher
(``python -m trio_stream.demo._notes --pace 1``), on Trio. Its one tool,
``search_notes``, reads the notes one at a time and reports its progress
after each, which the researcher's run relays as ``tool-progress`` data, and
the page shows on the tool's card. When the call is cancelled (the
researcher's run was), the SDK cancels the handler, which logs it.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import trio
from mcp.server.mcpserver import Context, MCPServer

from .._telemetry import log_extra
from ._pace import Pace
from ._processes import log_as

__all__ = ["NOTES", "notes_server"]

logger = logging.getLogger("trio_stream.demo")

NOTES = [
    {
        "title": "Nurseries",
        "text": "A nursery waits for every task started in it before its block ends.",
    },
    {
        "title": "Cancel scopes",
        "text": "Cancelling a scope cancels everything running inside it, however deep.",
    },
    {
        "title": "Errors",
        "text": "When a task raises, its siblings are cancelled, then the error propagates.",
    },
    {
        "title": "Across processes",
        "text": "Closing a request is a cancellation the server on the other end can act on.",
    },
]


def notes_server(pace: Pace) -> MCPServer:
    """The server, with its one tool."""
    # The SDK configures the root logger at this level; its INFO lines would
    # fill the demo's log with one line per request.
    server = MCPServer("notes", log_level="WARNING")

    @server.tool()
    async def search_notes(query: str, ctx: Context) -> dict[str, Any]:
        """Search the notes on structured concurrency, reporting each note read."""
        try:
            for number, note in enumerate(NOTES, start=1):
                await ctx.report_progress(
                    number - 1, len(NOTES), f"reading “{note['title']}” ({number} of {len(NOTES)})"
                )
                await pace.sleep(0.5)
            # Not the last thing before the result: a notification the client
            # handles after the result is dropped (the call is over by then).
            await ctx.report_progress(len(NOTES), len(NOTES), "summing up")
            await pace.sleep(0.3)
        except trio.Cancelled:
            logger.info("tool search_notes cancelled", extra=log_extra(tool_name="search_notes"))
            raise
        return {"query": query, "notes": NOTES[:3]}

    return server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m trio_stream.demo._notes")
    parser.add_argument("--pace", type=float, default=1.0)
    args = parser.parse_args()
    log_as("notes")
    trio.run(notes_server(Pace(args.pace)).run_stdio_async)


if __name__ == "__main__":
    main()
