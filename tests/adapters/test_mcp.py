"""The MCP adapter, against a real MCP server in another process.

The server is ``mcp_server.py``, built with the official ``mcp`` SDK. Most
tests start it over stdio, one process per test; the others share one
process serving it over streamable HTTP (hypercorn on Trio), and talk to it
with the SDK's ``ClientSession`` (the 2025-11-25 handshake) and its
``Client`` (which negotiates 2026-07-28). The client side runs on Trio and on
asyncio. What only the server can see (a handler starting, a handler
cancelled, a ``notifications/cancelled`` arriving) is read from the record
it keeps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import RunController, SerializationError, UsageError, create_run
from trio_stream.adapters.mcp import PROGRESS_DATA_NAME, MCPServerError, MCPTools, text_for_model
from trio_stream.adapters.openai import ToolCall, run_chat_completion
from trio_stream.asgi import DataStreamResponse
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    SourceChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
)

from ..asgi_calls import SentMessages
from ..clients import decode, sse_events, summarize
from ..conftest import collect
from ..openai_warnings import ignore_openai_client_warnings
from ..reliability.figures import FIGURES
from ..scenarios import RESPONSES
from ..serving import ROOT, running, server_process
from . import test_openai as fake_model
from .mcp_server import BYTES, PIXEL, RECORD_VARIABLE, SOUND

pytestmark = pytest.mark.anyio

ignore_mcp_http_client_warnings = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object "
    "(Response.aiter_bytes|Response.aiter_text|EventSource.__aiter__"
    "|PoolByteStream.__aiter__) :pytest.PytestUnraisableExceptionWarning"
)
"""The warnings the ``mcp`` SDK's HTTP client causes on Trio, which the HTTP tests ignore.

When a request's event stream is closed before its end (a cancelled call,
the session closing), the client leaves async generators of its HTTP library
unexhausted, and Trio warns when it collects them. The responses themselves
are closed.
"""

CANCELLATION_BOUND = 5.0
"""Seconds the server may take to see a cancellation (it takes milliseconds)."""


# -- the server's side ------------------------------------------------------------


class ServerRecord:
    """What the test server wrote about its handlers, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, event: str, since: float = 0, **match: Any) -> list[dict[str, Any]]:
        """The events of that kind, at ``since`` or later, with the values in ``match``."""
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        events = [json.loads(line) for line in lines]
        return [
            e
            for e in events
            if e["event"] == event
            and e["at"] >= since
            and all(e.get(k) == v for k, v in match.items())
        ]

    async def wait_for(self, event: str, since: float = 0, **match: Any) -> dict[str, Any]:
        """The first such event, once the server has written it."""
        with anyio.fail_after(CANCELLATION_BOUND):
            # Another process writes the file: nothing to wait on but time.
            while not (found := self.events(event, since, **match)):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        return found[0]


@pytest.fixture
def record(tmp_path: Path) -> ServerRecord:
    return ServerRecord(tmp_path / "record.jsonl")


@contextlib.asynccontextmanager
async def stdio_session(record: ServerRecord) -> AsyncIterator[ClientSession]:
    """A session with a new server process, over its stdin and stdout."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tests.adapters.mcp_server"],
        cwd=ROOT,
        env={RECORD_VARIABLE: str(record.path)},
    )
    with record.path.with_suffix(".log").open("w") as log:
        async with (
            stdio_client(server, errlog=log) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerRecord]]:
    """The test server over streamable HTTP; yields its endpoint and its record."""
    folder = tmp_path_factory.mktemp("mcp-http")
    record = ServerRecord(folder / "record.jsonl")
    env = {RECORD_VARIABLE: str(record.path)}
    arguments = ("serve", "tests.adapters.mcp_server:app")
    with server_process(folder / "server.log", *arguments, env=env) as (url, _):
        yield f"{url}/mcp", record


@contextlib.asynccontextmanager
async def http_session(url: str, protocol: str) -> AsyncIterator[ClientSession | Client]:
    """A ``ClientSession`` for the 2025-11-25 protocol, a ``Client`` for 2026-07-28."""
    if protocol == "2026-07-28":
        async with Client(url) as client:
            assert client.protocol_version == protocol
            yield client
        return
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert session.protocol_version == protocol
        yield session


PROTOCOLS = ["2025-11-25", "2026-07-28"]


def progress(call_id: str, step: int, steps: int) -> DataChunk:
    """The data chunk that a ``count`` step's progress notification becomes."""
    value = {
        "toolCallId": call_id,
        "progress": float(step),
        "total": float(steps),
        "message": f"step {step} of {steps}",
    }
    return DataChunk(value, PROGRESS_DATA_NAME, call_id)


def call_id_of(chunks: list[Chunk]) -> str:
    """The id of the tool call a run's chunks begin with."""
    begin = chunks[0]
    assert isinstance(begin, ToolCallBeginChunk)
    return begin.tool_call_id


async def spawned(tools: MCPTools, tool_name: str, **spawn: Any) -> list[Chunk]:
    """The chunks of a run that spawns one call of ``tool_name``."""

    async def run(controller: RunController) -> None:
        tools.spawn(controller, tool_name, **spawn)

    return await collect(run)


# -- a tool call's life -------------------------------------------------------------


async def test_a_tool_call_streams_its_progress_then_its_result(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        chunks = await spawned(MCPTools(session), "count", arguments={"steps": 3})
    call_id = call_id_of(chunks)
    assert chunks == [
        ToolCallBeginChunk(call_id, "count"),
        ToolCallDeltaChunk(call_id, '{"steps":3}'),
        progress(call_id, 1, 3),
        progress(call_id, 2, 3),
        progress(call_id, 3, 3),
        ToolResultChunk(call_id, "counted to 3", [{"type": "text", "text": "counted to 3"}]),
    ]


async def test_structured_content_is_the_result(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        chunks = await spawned(MCPTools(session), "forecast", arguments={"city": "Lisbon"})
    [result] = [c for c in chunks if isinstance(c, ToolResultChunk)]
    assert result.result == {"city": "Lisbon", "celsius": 24}
    # The artifact keeps the content blocks: here, the same value as text.
    [block] = result.artifact
    assert block["type"] == "text"
    assert json.loads(block["text"]) == result.result


async def test_images_audio_and_resources_become_files_and_sources_of_the_call(
    record: ServerRecord,
) -> None:
    async with stdio_session(record) as session:
        chunks = await spawned(MCPTools(session), "render")
    call_id = call_id_of(chunks)
    csv = base64.b64encode(b"x,y\n1,2\n").decode()
    assert chunks[2:-1] == [
        FileChunk(PIXEL, "image/png", call_id),
        FileChunk(SOUND, "audio/wav", call_id),
        FileChunk(csv, "text/csv", call_id),
        FileChunk(BYTES, "application/octet-stream", call_id),
        SourceChunk(
            id="https://example.org/report",
            url="https://example.org/report",
            title="The report",
            parent_id=call_id,
        ),
    ]
    result = chunks[-1]
    assert isinstance(result, ToolResultChunk)
    assert (result.result, result.is_error) == ("A chart and its data.", False)
    assert result.artifact == [
        {"type": "text", "text": "A chart and its data."},
        {"type": "image", "data": PIXEL, "mimeType": "image/png"},
        {"type": "audio", "data": SOUND, "mimeType": "audio/wav"},
        {
            "type": "resource",
            "resource": {"uri": "file:///data.csv", "mimeType": "text/csv", "text": "x,y\n1,2\n"},
        },
        {"type": "resource", "resource": {"uri": "file:///raw.bin", "blob": BYTES}},
        {
            "type": "resource_link",
            "uri": "https://example.org/report",
            "name": "report",
            "title": "The report",
        },
    ]


async def test_a_model_reads_the_text_and_a_line_for_the_rest(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        rendered = await session.call_tool("render")
        forecast = await session.call_tool("forecast", {"city": "Lisbon"})
    assert text_for_model(rendered).splitlines() == [
        "A chart and its data.",
        "[image: image/png]",
        "[audio: audio/wav]",
        "x,y",
        "1,2",
        "",
        "[resource: file:///raw.bin]",
        "[resource link: https://example.org/report]",
    ]
    assert json.loads(text_for_model(forecast)) == {"city": "Lisbon", "celsius": 24}
    # Structured content alone is given as JSON.
    bare = CallToolResult(content=[], structured_content={"celsius": 24})
    assert text_for_model(bare) == '{"celsius": 24}'
    picture = CallToolResult(content=[ImageContent(data=PIXEL, mime_type="image/png")])
    assert text_for_model(picture) == "[image: image/png]"
    two_texts = CallToolResult(content=[TextContent(text="a"), TextContent(text="b")])
    assert text_for_model(two_texts) == "a\nb"


async def test_is_error_becomes_an_error_result(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        tools = MCPTools(session)
        failed = await spawned(tools, "fail", arguments={"reason": "the disk is full"})
        unknown = await spawned(tools, "nope")
    for chunks, message in [(failed, "the disk is full"), (unknown, "Unknown tool: nope")]:
        result = chunks[-1]
        assert isinstance(result, ToolResultChunk)
        assert result.is_error
        assert isinstance(result.result, str)
        assert result.result.endswith(message)
        assert result.artifact == [{"type": "text", "text": result.result}]


async def test_a_json_rpc_error_fails_the_run_naming_the_server_and_the_tool(
    record: ServerRecord,
) -> None:
    received: list[Chunk] = []

    async def run(controller: RunController) -> None:
        tools.spawn(controller, "reject", {"reason": "not today"})

    async with stdio_session(record) as session:
        tools = MCPTools(session)
        with pytest.raises(MCPServerError) as failure:
            async with create_run(run) as chunks:
                async for chunk in chunks:
                    received.append(chunk)
    error = failure.value
    assert str(error) == (
        "the tool 'reject' of the MCP server 'test-tools' failed: not today (error -32602)"
    )
    assert (error.server, error.tool_name, error.code) == ("test-tools", "reject", -32602)
    assert error.server_message == "not today"
    assert received[-1] == ErrorChunk(str(error))


async def test_with_errors_as_result_a_json_rpc_error_is_the_calls_result(
    record: ServerRecord,
) -> None:
    async with stdio_session(record) as session:
        tools = MCPTools(session, server_name="checker")
        chunks = await spawned(
            tools, "reject", arguments={"reason": "not today"}, errors_as_result=True
        )
    call_id = call_id_of(chunks)
    assert chunks[-1] == ToolResultChunk(
        call_id,
        "the tool 'reject' of the MCP server 'checker' failed: not today (error -32602)",
        is_error=True,
    )


async def test_arguments_are_a_json_object_checked_at_the_call(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        tools = MCPTools(session)

        async def run(controller: RunController) -> None:
            with pytest.raises(TypeError, match=r"must be a mapping \(a JSON object\), not list"):
                tools.spawn(controller, "count", [3])  # type: ignore[arg-type]
            with pytest.raises(SerializationError):
                tools.spawn(controller, "count", {"steps": object()})
            # Omitted arguments are sent as an empty object.
            tools.spawn(controller, "render")

        chunks = await collect(run)
    assert chunks[1] == ToolCallDeltaChunk(call_id_of(chunks), "{}")


# -- cancellation -------------------------------------------------------------------


def report_delay(case: str, seconds: float) -> None:
    """Print, with the suite's figures, how long the server took to see a cancellation."""
    FIGURES.record(
        "MCP: the cancelled tool's handler on the server", case, f"{seconds * 1000:.1f} ms"
    )


class SiblingFailed(Exception):
    """What fails the run while the server's tool waits."""


async def wait_on_the_server(
    tools: MCPTools, token: str, how: str, cancelled_at: list[float]
) -> list[Chunk]:
    """Run the ``wait`` tool and stop the run once the server reports it waiting.

    ``how``: the consumer leaves the run, or another task fails it. The
    moment of the cancellation goes to ``cancelled_at``.
    """
    received: list[Chunk] = []
    waiting = anyio.Event()

    async def fail_once_waiting(controller: RunController) -> None:
        call = tools.spawn(controller, "wait", {"token": token})
        await waiting.wait()
        assert not call.closed
        cancelled_at.append(time.time())
        raise SiblingFailed

    async def wait_only(controller: RunController) -> None:
        tools.spawn(controller, "wait", {"token": token})

    callback = fail_once_waiting if how == "the run fails" else wait_only
    with contextlib.suppress(SiblingFailed):
        async with create_run(callback) as chunks:
            async for chunk in chunks:
                received.append(chunk)
                if not isinstance(chunk, DataChunk):
                    continue
                waiting.set()
                if how == "the consumer leaves":
                    cancelled_at.append(time.time())
                    break
    return received


@pytest.mark.parametrize("how", ["the consumer leaves", "the run fails"])
async def test_cancelling_the_run_cancels_the_tools_handler_on_the_server(
    record: ServerRecord, how: str, anyio_backend: str
) -> None:
    token = uuid.uuid4().hex
    cancelled_at: list[float] = []
    async with stdio_session(record) as session:
        tools = MCPTools(session)
        received = await wait_on_the_server(tools, token, how, cancelled_at)
        # The session outlives the run: only the request can have been cancelled.
        started = await record.wait_for("started", token=token)
        cancelled = await record.wait_for("cancelled", token=token)
        notice = await record.wait_for("cancel-notice", request=started["request"])
        still_usable = await spawned(tools, "count", arguments={"steps": 1})
    assert notice["reason"] == "caller cancelled"
    assert cancelled["request"] == started["request"]
    took = cancelled["at"] - cancelled_at[0]
    assert 0 <= took < CANCELLATION_BOUND
    report_delay(f"stdio, {how}, {anyio_backend}", took)
    # The call got no result: it was cancelled with the run.
    assert not any(isinstance(c, ToolResultChunk) for c in received)
    assert isinstance(still_usable[-1], ToolResultChunk)


async def test_a_call_past_its_timeout_fails_and_is_cancelled_on_the_server(
    record: ServerRecord,
) -> None:
    token = uuid.uuid4().hex
    async with stdio_session(record) as session:
        tools = MCPTools(session, timeout=0.5)
        chunks = await spawned(tools, "wait", arguments={"token": token}, errors_as_result=True)
        started = await record.wait_for("started", token=token)
        await record.wait_for("cancelled", token=token)
        notice = await record.wait_for("cancel-notice", request=started["request"])
    assert notice["reason"] == "timed out after 0.5s"
    result = chunks[-1]
    assert isinstance(result, ToolResultChunk)
    assert result.is_error
    assert result.result == (
        "the tool 'wait' of the MCP server 'test-tools' failed: "
        "Request 'tools/call' timed out (error -32001)"
    )


# -- streamable HTTP ----------------------------------------------------------------


@ignore_mcp_http_client_warnings
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_over_streamable_http_progress_results_and_cancellation(
    http_server: tuple[str, ServerRecord], protocol: str, anyio_backend: str
) -> None:
    url, record = http_server
    token = uuid.uuid4().hex
    cancelled_at: list[float] = []
    async with http_session(url, protocol) as session:
        tools = MCPTools(session)
        assert "count" in [tool.name for tool in await tools.list_tools()]
        counted = await spawned(tools, "count", arguments={"steps": 2})
        await wait_on_the_server(tools, token, "the consumer leaves", cancelled_at)
        started = await record.wait_for("started", token=token)
        cancelled = await record.wait_for("cancelled", token=token)
        if protocol == "2025-11-25":
            await record.wait_for("cancel-notice", started["at"], request=started["request"])
    call_id = call_id_of(counted)
    assert counted[2:] == [
        progress(call_id, 1, 2),
        progress(call_id, 2, 2),
        ToolResultChunk(call_id, "counted to 2", [{"type": "text", "text": "counted to 2"}]),
    ]
    took = cancelled["at"] - cancelled_at[0]
    assert 0 <= took < CANCELLATION_BOUND
    report_delay(f"streamable HTTP, {protocol}, {anyio_backend}", took)
    # Request ids are the session's, so only the notices since this call's
    # start concern it (the server cancels the handler before it passes a
    # notice on to be recorded, so they may come after its cancellation).
    notices = record.events("cancel-notice", started["at"], request=started["request"])
    if protocol == "2025-11-25":
        assert [e["reason"] for e in notices] == ["caller cancelled"]
    else:
        # This version's HTTP has no notifications from the client: the SDK
        # closes the request's stream, and the server cancels its handler.
        assert notices == []


# -- what each format shows ---------------------------------------------------------

PROGRESS_VALUES = [
    {"progress": 1.0, "total": 2.0, "message": "step 1 of 2"},
    {"progress": 2.0, "total": 2.0, "message": "step 2 of 2"},
]


@ignore_mcp_http_client_warnings
@pytest.mark.parametrize(
    "decoder", ["data-stream", "assistant-transport", "ui-message-stream", "ai-ui-message-stream"]
)
async def test_every_format_shows_the_progress_with_the_call_it_belongs_to(
    http_server: tuple[str, ServerRecord], decoder: str
) -> None:
    url, _ = http_server
    response_format = "ui-message-stream" if decoder == "ai-ui-message-stream" else decoder
    async with http_session(url, "2025-11-25") as session:
        tools = MCPTools(session)

        async def run(controller: RunController) -> None:
            tools.spawn(controller, "count", {"steps": 2}, tool_call_id="call_count")

        sent = SentMessages()
        await sent.call(RESPONSES[response_format](create_run(run)))
    output = await anyio.to_thread.run_sync(partial(decode, decoder, body=sent.body))
    assert output["warnings"] == []
    message = output["message"]
    values = [{"toolCallId": "call_count", **value} for value in PROGRESS_VALUES]
    call = ("tool-call", "count", {"steps": 2}, "counted to 2", False, None)
    if decoder == "ai-ui-message-stream":
        parts = [part for part in message["parts"] if part["type"] != "step-start"]
        assert [(part["type"], part.get("output")) for part in parts] == [
            ("tool-count", "counted to 2"),
            ("data-tool-progress", None),
            ("data-tool-progress", None),
        ]
        assert [part["data"] for part in parts[1:]] == values
    elif decoder == "ui-message-stream":
        # assistant-ui's decoder keeps the data parts of this format apart.
        assert summarize(message["parts"]) == [call]
        assert message["metadata"]["unstable_data"] == [
            {"name": "tool-progress", "data": value} for value in values
        ]
    else:
        assert summarize(message["parts"]) == [
            call,
            *(("data", "tool-progress", value, "call_count") for value in values),
        ]


@ignore_mcp_http_client_warnings
async def test_the_openai_stream_shows_the_call_and_nothing_of_its_progress(
    http_server: tuple[str, ServerRecord],
) -> None:
    url, _ = http_server
    async with http_session(url, "2025-11-25") as session:
        tools = MCPTools(session)

        async def run(controller: RunController) -> None:
            tools.spawn(controller, "count", {"steps": 2}, tool_call_id="call_count")

        sent = SentMessages()
        await sent.call(RESPONSES["openai"](create_run(run)))
    events = sse_events(sent.body)
    deltas = [event["choices"][0]["delta"] for event in events[:-1]]
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "count", "arguments": ""}
    assert deltas[1]["tool_calls"][0]["function"] == {"arguments": '{"steps":2}'}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert len(events) == 4
    assert b"progress" not in sent.body


# -- the model's tools ---------------------------------------------------------------


async def test_the_tools_are_listed_as_openai_function_tools(record: ServerRecord) -> None:
    async with stdio_session(record) as session:
        tools = MCPTools(session)
        with pytest.raises(UsageError, match=r"await tools.list_tools\(\) first"):
            tools.openai_definitions()
        listed = await tools.list_tools()
    assert tools.tools == listed
    assert "count" in tools
    assert "nope" not in tools
    definitions = {d["function"]["name"]: d for d in tools.openai_definitions()}
    assert list(definitions) == [tool.name for tool in listed]
    [count] = [tool for tool in listed if tool.name == "count"]
    assert definitions["count"] == {
        "type": "function",
        "function": {
            "name": "count",
            "description": "Count to ``steps``, reporting each step as progress.",
            "parameters": count.input_schema,
        },
    }
    assert count.input_schema["required"] == ["steps"]


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    """The fake OpenAI-compatible model of the OpenAI adapter's tests."""
    with running(fake_model.APP) as url:
        yield f"{url}/v1"


@ignore_openai_client_warnings
async def test_a_model_loop_runs_the_models_mcp_tool_calls_in_parallel(
    record: ServerRecord, model_server: str
) -> None:
    # What docs/adapters/mcp.md shows. The fake model asks for get_weather
    # and search at once; on the server, each waits until the other has
    # started, so they succeed only if they run in parallel.
    async def assistant(tools: MCPTools, controller: RunController) -> None:
        messages: list[Any] = [fake_model.user("tools")]
        async with fake_model.client(model_server) as model:
            for _ in range(3):
                outcome = await run_chat_completion(
                    controller,
                    model,
                    model="fake-model",
                    messages=messages,
                    tools=tools.openai_definitions(),
                )
                if not outcome.tool_calls:
                    return
                messages.append(outcome.assistant_message())
                messages += await tools.run_tool_calls(controller, outcome.tool_calls)

    async with stdio_session(record) as session:
        tools = MCPTools(session)
        await tools.list_tools()
        chunks = await collect(partial(assistant, tools))
    first, second = fake_model.REQUESTS[-2:]
    assert first["tools"] == tools.openai_definitions()
    replies = [m for m in second["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], json.loads(m["content"])) for m in replies] == [
        ("call_w", {"city": "Lisbon", "celsius": 24}),
        ("call_s", {"hits": ["trio docs"]}),
    ]
    results = {c.tool_call_id: c for c in chunks if isinstance(c, ToolResultChunk)}
    assert results["call_w"].result == {"city": "Lisbon", "celsius": 24}
    assert results["call_s"].result == {"hits": ["trio docs"]}
    assert not any(result.is_error for result in results.values())
    assert TextDeltaChunk("It is 24 °C in Lisbon.") in chunks


async def test_what_the_model_can_correct_is_its_reply(record: ServerRecord) -> None:
    # Calls as run_chat_completion returns them: open, with the model's
    # argument text, which a model sometimes gets wrong.
    requested = [
        ("call_json", "count", '{"steps": 2'),
        ("call_list", "count", "[2]"),
        ("call_refused", "reject", '{"reason": "not today"}'),
        ("call_failed", "fail", '{"reason": "the disk is full"}'),
    ]
    replies: list[Any] = []

    async def assistant(tools: MCPTools, controller: RunController) -> None:
        calls = [
            ToolCall(id, name, arguments, await controller.add_tool_call(name, id))
            for id, name, arguments in requested
        ]
        replies.extend(await tools.run_tool_calls(controller, calls))

    async with stdio_session(record) as session:
        chunks = await collect(partial(assistant, MCPTools(session)))
    texts = {reply["tool_call_id"]: reply["content"] for reply in replies}
    assert list(texts) == [id for id, _, _ in requested]
    assert texts["call_json"].startswith(
        "the arguments of tool call 'count' (call_json) are not JSON"
    )
    assert (
        texts["call_list"]
        == "the arguments of tool call 'count' (call_list) are not a JSON object"
    )
    assert texts["call_refused"] == (
        "the tool 'reject' of the MCP server 'test-tools' failed: not today (error -32602)"
    )
    assert texts["call_failed"].endswith("the disk is full")
    # The front-end sees each as an error result, with the same text.
    results = {c.tool_call_id: c for c in chunks if isinstance(c, ToolResultChunk)}
    assert all(result.is_error for result in results.values())
    assert {id: result.result for id, result in results.items()} == texts


# -- in an app ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lifespan(app: Starlette, record: ServerRecord) -> AsyncIterator[None]:
    """What docs/adapters/mcp.md shows: one session for the app's lifetime."""
    async with stdio_session(record) as session:
        app.state.tools = MCPTools(session)
        await app.state.tools.list_tools()
        yield


async def chat(request: Request) -> DataStreamResponse:
    tools: MCPTools = request.app.state.tools

    async def run(controller: RunController) -> None:
        controller.append_text("Counting…")
        tools.spawn(controller, "count", {"steps": 2}, tool_call_id="call_count")

    return DataStreamResponse(create_run(run))


def test_an_app_keeps_its_session_open_in_its_lifespan(record: ServerRecord) -> None:
    # Hypercorn on Trio runs the lifespan, which starts the server process;
    # each request's run calls the tools over the one session.
    app = Starlette(
        routes=[Route("/chat", chat, methods=["POST"])],
        lifespan=partial(lifespan, record=record),
    )
    with running(app) as url:
        outputs = [decode("data-stream", url=f"{url}/chat", post={}) for _ in range(2)]
    for output in outputs:
        assert output["warnings"] == []
        assert summarize(output["message"]["parts"]) == [
            ("text", "Counting…", None),
            ("tool-call", "count", {"steps": 2}, "counted to 2", False, None),
            *(
                ("data", "tool-progress", {"toolCallId": "call_count", **value}, "call_count")
                for value in PROGRESS_VALUES
            ),
        ]
