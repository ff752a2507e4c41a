"""A real MCP server, built with the ``mcp`` SDK, for the MCP adapter's tests.

Run over stdio as ``python -m tests.adapters.mcp_server`` (on Trio), or served
over streamable HTTP as ``python -m trio_stream serve
tests.adapters.mcp_server:app`` (hypercorn on Trio). Its tools report
progress, return every kind of content, fail in both of MCP's ways, and one
of them waits until it is cancelled.

What the server sees that the client cannot is appended, one JSON object a
line, to the file named by the environment variable ``MCP_TEST_RECORD``: a
handler starting (``started``), a handler cancelled (``cancelled``: the
event loop's cancellation exception reached it) and each
``notifications/cancelled`` that arrives (``cancel-notice``), with the
request ids they concern and the time. The tests read it to see what happened on the
server's side.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from typing import Any

import anyio
from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    INVALID_PARAMS,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

RECORD_VARIABLE = "MCP_TEST_RECORD"

PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n a tiny picture").decode()
SOUND = base64.b64encode(b"RIFF a short sound").decode()
BYTES = base64.b64encode(b"\x00\x01\x02").decode()


def record(event: str, **details: Any) -> None:
    """Append what the server saw to the record file, if the test asked for one."""
    path = os.environ.get(RECORD_VARIABLE)
    if path:
        line = json.dumps({"event": event, "at": time.time(), **details})
        with open(path, "a") as file:
            file.write(line + "\n")


async def notice_cancellations(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Middleware: every ``notifications/cancelled`` the client sends is recorded."""
    if ctx.method == "notifications/cancelled":
        params = ctx.params or {}
        record("cancel-notice", request=str(params.get("requestId")), reason=params.get("reason"))
    return await call_next(ctx)


server = MCPServer("test-tools", middleware=[notice_cancellations])


@server.tool(structured_output=False)
async def count(steps: int, ctx: Context) -> str:
    """Count to ``steps``, reporting each step as progress."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"counted to {steps}"


@server.tool()
def forecast(city: str) -> dict[str, Any]:
    """A structured result (and its JSON as text, as the SDK sends it)."""
    return {"city": city, "celsius": 24}


@server.tool()
def render() -> CallToolResult:
    """Every kind of content block in one result."""
    return CallToolResult(
        content=[
            TextContent(text="A chart and its data."),
            ImageContent(data=PIXEL, mime_type="image/png"),
            AudioContent(data=SOUND, mime_type="audio/wav"),
            EmbeddedResource(
                resource=TextResourceContents(
                    uri="file:///data.csv", mime_type="text/csv", text="x,y\n1,2\n"
                )
            ),
            EmbeddedResource(resource=BlobResourceContents(uri="file:///raw.bin", blob=BYTES)),
            ResourceLink(uri="https://example.org/report", name="report", title="The report"),
        ]
    )


@server.tool()
def fail(reason: str) -> str:
    """A tool failure: the result has ``isError`` set and the reason as text."""
    raise ToolError(reason)


@server.tool()
def reject(reason: str) -> str:
    """A protocol error: the server answers the request with a JSON-RPC error."""
    raise MCPError(INVALID_PARAMS, reason)


ARRIVED: dict[str, anyio.Event] = {}
"""The tools of the fake model's parallel calls that have started, by name."""


async def meet(name: str, other: str) -> None:
    """Say that ``name`` started, then wait for ``other``: only parallel calls both return."""
    ARRIVED.setdefault(name, anyio.Event()).set()
    with anyio.fail_after(10):
        await ARRIVED.setdefault(other, anyio.Event()).wait()


@server.tool()
async def get_weather(city: str) -> dict[str, Any]:
    """The fake model's first tool: returns once ``search`` runs too."""
    await meet("get_weather", "search")
    return {"city": city, "celsius": 24}


@server.tool()
async def search(q: str) -> dict[str, Any]:
    """The fake model's second tool: returns once ``get_weather`` runs too."""
    await meet("search", "get_weather")
    return {"hits": [f"{q} docs"]}


@server.tool()
async def wait(token: str, ctx: Context) -> str:
    """Report that it started, then wait until the request is cancelled."""
    record("started", token=token, request=ctx.request_id)
    await ctx.report_progress(0, None, "waiting")
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        record("cancelled", token=token, request=ctx.request_id)
        raise
    return "never"


app = server.streamable_http_app()
"""The server over streamable HTTP, at ``/mcp``."""


if __name__ == "__main__":
    anyio.run(server.run_stdio_async, backend=sys.argv[1] if len(sys.argv) > 1 else "trio")
