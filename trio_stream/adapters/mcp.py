"""An MCP server's tools, run as tool calls of a run.

A Model Context Protocol server offers tools that another process runs: a
call is a request over a session, the server may report progress while it
works, and the answer is a list of content blocks (text, images, audio,
resources), an optional structured value, and an ``isError`` flag.
``MCPTools`` wraps a session of the official ``mcp`` SDK and runs each call
as a tool call of the run, so the front-end watches it like any other:
its arguments, its progress, its result, and the files it produced.

The session belongs to the application. Opening one starts a server process
(stdio) or an HTTP session with the server, which is worth doing once rather
than per request, so the adapter takes a session that is already open (a
``ClientSession`` or the SDK's ``Client``) and never opens or closes it.

What becomes what, decided once here so that every format shows something
sensible:

- Progress notifications become named data chunks (``tool-progress``) with
  the call's id as their parent id, and the id again inside the value,
  since not every format keeps a data part's parent id.
- The result is the structured content when the server sent one, else the
  text of the text blocks; the artifact is the whole content list, in MCP's
  JSON form; images, audio and embedded resources also go out as files, and
  resource links as sources, all with the call's id as parent id.
- ``isError: true`` becomes an error result. A JSON-RPC error (an unknown
  tool, arguments the server refuses, a timeout, a lost connection) raises
  ``MCPServerError`` naming the server and the tool.

Cancellation needs nothing of the adapter: when the task waiting for a
result is cancelled (the client went away, the run failed, an enclosing
scope was cancelled), the SDK tells the server (``notifications/cancelled``,
or on a 2026-07-28 HTTP session, by closing the request's stream), and the
server cancels the tool's handler.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._controller import RunController, ToolCallController
from .._errors import StreamClosedError, TrioStreamError, UsageError
from .._json import normalized
from .openai import ToolCall

try:
    from mcp import Client, ClientSession, MCPError
    from mcp.types import (
        AudioContent,
        BlobResourceContents,
        CallToolResult,
        ContentBlock,
        EmbeddedResource,
        ImageContent,
        PaginatedRequestParams,
        ResourceLink,
        TextContent,
        TextResourceContents,
        Tool,
    )
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_stream.adapters.mcp needs the mcp SDK: pip install 'trio-stream[mcp]'"
    ) from error

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionToolMessageParam, ChatCompletionToolParam

__all__ = ["PROGRESS_DATA_NAME", "MCPServerError", "MCPTools", "text_for_model"]

PROGRESS_DATA_NAME: Final = "tool-progress"
"""The name of the data chunks that carry a tool call's progress."""

_MAX_TOOL_PAGES = 100
"""Pages of ``tools/list`` read before deciding the server's cursor never ends."""


class MCPServerError(TrioStreamError, RuntimeError):
    """The MCP server answered with an error, or with an answer that cannot be used.

    ``server`` and ``tool_name`` name what was asked (``tool_name`` is
    ``None`` for the tool list); ``code`` and ``server_message`` are the
    JSON-RPC error's, when it was one. The text names the server and the
    tool, for the logs and for a model that reads it as the call's result.
    """

    def __init__(
        self, server: str, tool_name: str | None, server_message: str, code: int | None = None
    ) -> None:
        what = "tool list" if tool_name is None else f"tool {tool_name!r}"
        detail = "" if code is None else f" (error {code})"
        super().__init__(
            f"the {what} of the MCP server {server!r} failed: {server_message}{detail}"
        )
        self.server = server
        self.tool_name = tool_name
        self.server_message = server_message
        self.code = code


class MCPTools:
    """The tools of one MCP server, called through an open session.

    ``session`` is a ``mcp.ClientSession`` (initialized) or a ``mcp.Client``
    (entered); the application opens and closes it. ``server_name`` names the
    server in errors, defaulting to the name it gave when the session opened.
    ``timeout`` bounds each call in seconds; the SDK then cancels the request
    on the server and the call fails with ``MCPServerError``.
    """

    __slots__ = ("_server_name", "_session", "_timeout", "_tools")

    def __init__(
        self,
        session: ClientSession | Client,
        *,
        server_name: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self._session = session
        self._server_name = server_name
        self._timeout = timeout
        self._tools: tuple[Tool, ...] | None = None

    @property
    def server_name(self) -> str:
        """The server's name in errors: the one given, else the server's own."""
        if self._server_name is not None:
            return self._server_name
        info = self._session.server_info
        return info.name if info is not None else "(unnamed)"

    # -- listing -------------------------------------------------------------

    async def list_tools(self) -> tuple[Tool, ...]:
        """Ask the server for its tools (every page) and keep them for ``tools``."""
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            if isinstance(self._session, Client):
                page = await self._session.list_tools(cursor=cursor)
            else:
                params = None if cursor is None else PaginatedRequestParams(cursor=cursor)
                page = await self._session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                self._tools = tuple(tools)
                return self._tools
        raise MCPServerError(
            self.server_name, None, f"its cursor still goes on after {_MAX_TOOL_PAGES} pages"
        )

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The tools found by the last ``list_tools()``; ``UsageError`` before any."""
        if self._tools is None:
            raise UsageError("the tools are not listed yet: await tools.list_tools() first")
        return self._tools

    def __contains__(self, tool_name: object) -> bool:
        """Whether the last ``list_tools()`` found a tool of that name."""
        return any(tool.name == tool_name for tool in self.tools)

    def openai_definitions(self) -> list[ChatCompletionToolParam]:
        """The listed tools as the ``tools`` of an OpenAI chat completion.

        MCP's input schema is a JSON Schema object, which is what OpenAI's
        ``parameters`` are. OpenAI itself accepts only names of letters,
        digits, ``_`` and ``-`` (64 at most); other servers are less strict,
        so the names are passed as they are.
        """
        definitions: list[ChatCompletionToolParam] = []
        for tool in self.tools:
            definition: ChatCompletionToolParam = {
                "type": "function",
                "function": {"name": tool.name, "parameters": tool.input_schema},
            }
            if tool.description:
                definition["function"]["description"] = tool.description
            definitions.append(definition)
        return definitions

    # -- calling -------------------------------------------------------------

    def spawn(
        self,
        controller: RunController,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        errors_as_result: bool = False,
        tool_call_id: str | None = None,
    ) -> ToolCallController:
        """Open a tool call and run the server's tool for it in a task.

        The call is ``controller.spawn_tool_call``'s, with ``arguments`` (a
        JSON object, ``{}`` when omitted) as its arguments: it runs in
        parallel with the rest of the run, its result is the server's, and
        ``errors_as_result`` makes a failure (``MCPServerError`` or any other)
        the call's error result instead of failing the run.
        """
        sent = _checked_arguments(arguments, tool_name)

        async def run_on_server(call: ToolCallController) -> None:
            await self.call(controller, call, sent)

        return controller.spawn_tool_call(
            tool_name,
            run_on_server,
            args=sent,
            tool_call_id=tool_call_id,
            errors_as_result=errors_as_result,
        )

    async def call(
        self,
        controller: RunController,
        call: ToolCallController,
        arguments: Mapping[str, Any] | None = None,
    ) -> CallToolResult:
        """Run the server's tool ``call.tool_name`` for a call that is already open.

        For the calls a model asked for, which ``run_chat_completion`` opens.
        Progress, files and sources are written through ``controller`` with
        the call's id as parent id; the result is set on ``call``, and the
        server's answer returned. Raises ``MCPServerError`` if the server answers
        with an error, leaving the call open.
        """
        sent = _checked_arguments(arguments, call.tool_name)
        nested = controller.with_parent_id(call.tool_call_id)
        try:
            # The call's span current while the request goes out, for a call
            # opened with add_tool_call too: the SDK puts it in the request's
            # _meta, and the server's span becomes the tool call's grandchild.
            with _traced(call):
                result = await self._session.call_tool(
                    call.tool_name,
                    sent,
                    read_timeout_seconds=self._timeout,
                    progress_callback=_ProgressReporter(nested, call),
                )
        except MCPError as exc:
            raise MCPServerError(self.server_name, call.tool_name, exc.message, exc.code) from exc
        except Exception as exc:
            exc.add_note(f"in the tool {call.tool_name!r} of the MCP server {self.server_name!r}")
            raise
        _send_content(nested, result.content)
        call.set_response(
            _result_value(result), artifact=_artifact(result), is_error=result.is_error
        )
        return result

    async def run_tool_calls(
        self, controller: RunController, tool_calls: Iterable[ToolCall]
    ) -> list[ChatCompletionToolMessageParam]:
        """Run a model's tool calls on the server, in parallel; return the model's replies.

        ``tool_calls`` are those of ``run_chat_completion``'s outcome (their
        controllers open), all for this server's tools. Each call gets its
        result; what goes back to the model is one ``tool`` message per call,
        in the calls' order. What the model can correct (arguments that are
        not a JSON object, ``MCPServerError``) becomes an error result and
        its message the reply; any other failure fails the run.
        """
        calls = list(tool_calls)
        replies: dict[str, str] = {}
        async with controller.open_substream() as substream:
            for call in calls:
                substream.start_soon(self._answer, controller, call, replies)
        return [
            {"role": "tool", "tool_call_id": call.id, "content": replies[call.id]}
            for call in calls
        ]

    async def _answer(
        self, controller: RunController, call: ToolCall, replies: dict[str, str]
    ) -> None:
        problem = _argument_problem(call)
        if problem is None:
            try:
                result = await self.call(controller, call.controller, call.args)
            except MCPServerError as exc:
                problem = str(exc)
            else:
                replies[call.id] = text_for_model(result)
                return
        call.controller.set_response(problem, is_error=True)
        replies[call.id] = problem


class _ProgressReporter:
    """Writes a call's progress notifications as data chunks, until its result.

    The SDK runs it in the session's own task for each notification, so a
    notification can come in after the call ended, or after the run did:
    those are dropped, as a finished call has no progress to show.
    """

    __slots__ = ("_call", "_nested")

    def __init__(self, nested: RunController, call: ToolCallController) -> None:
        self._nested = nested
        self._call = call

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        if self._call.closed or self._nested.is_cancelled:
            return
        value = {
            "toolCallId": self._call.tool_call_id,
            "progress": progress,
            "total": total,
            "message": message,
        }
        # The run may have ended while this notification waited for its turn.
        with contextlib.suppress(StreamClosedError):
            self._nested.add_data(value, name=PROGRESS_DATA_NAME)


def _traced(call: ToolCallController) -> contextlib.AbstractContextManager[None]:
    """The tool call's span as the current one, if telemetry records it."""
    telemetry = call._telemetry
    return contextlib.nullcontext() if telemetry is None else telemetry.current()


def _argument_problem(call: ToolCall) -> str | None:
    """Why the model's arguments cannot be sent, in words the model can act on."""
    try:
        arguments = call.args
    except ValueError as exc:
        return str(exc)
    if not isinstance(arguments, dict):
        return f"the arguments of tool call {call.name!r} ({call.id}) are not a JSON object"
    return None


def _checked_arguments(arguments: Mapping[str, Any] | None, tool_name: str) -> dict[str, Any]:
    # MCP takes arguments as a JSON object. Sent in their JSON form, so the
    # front-end sees exactly what the server receives.
    if arguments is None:
        return {}
    if not isinstance(arguments, Mapping):
        raise TypeError(
            f"the arguments of MCP tool {tool_name!r} must be a mapping (a JSON object), "
            f"not {type(arguments).__name__}"
        )
    sent: dict[str, Any] = normalized(arguments, f"the arguments of MCP tool {tool_name!r}")
    return sent


def _result_value(result: CallToolResult) -> Any:
    if result.structured_content is not None:
        return result.structured_content
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _artifact(result: CallToolResult) -> list[Any]:
    return [
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content
    ]


def _send_content(nested: RunController, content: Sequence[ContentBlock]) -> None:
    """Files for the binary and embedded content, sources for the links."""
    for block in content:
        match block:
            case ImageContent() | AudioContent():
                nested.add_file(block.data, block.mime_type)
            case EmbeddedResource(resource=BlobResourceContents() as resource):
                nested.add_file(resource.blob, resource.mime_type or "application/octet-stream")
            case EmbeddedResource(resource=TextResourceContents() as resource):
                data = base64.b64encode(resource.text.encode()).decode("ascii")
                nested.add_file(data, resource.mime_type or "text/plain")
            case ResourceLink():
                nested.add_source(block.uri, block.uri, block.title or block.name)


def text_for_model(result: CallToolResult) -> str:
    """What a model reads of a result: its text, and a line for the rest.

    Text blocks and text resources are given as they are; images, audio,
    binary resources and links by a bracketed line naming them (their bytes
    are no use to a text model); a result with nothing else gives its
    structured content as JSON.
    """
    lines: list[str] = []
    for block in result.content:
        match block:
            case TextContent():
                lines.append(block.text)
            case ImageContent() | AudioContent():
                lines.append(f"[{block.type}: {block.mime_type}]")
            case EmbeddedResource(resource=BlobResourceContents() as resource):
                lines.append(f"[resource: {resource.uri}]")
            case EmbeddedResource(resource=TextResourceContents() as resource):
                lines.append(resource.text)
            case ResourceLink():
                lines.append(f"[resource link: {block.uri}]")
    if not lines and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(lines)
