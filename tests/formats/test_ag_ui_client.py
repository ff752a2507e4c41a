"""The AG-UI format read by the official client, ``@ag-ui/client``'s ``HttpAgent``, in Node.

``tests/js/ag_ui.mjs`` runs the agent the way an app (or CopilotKit) does:
it posts a ``RunAgentInput`` to hypercorn on Trio, verifies and applies the
events as they arrive, and rebuilds the conversation and the state with its
own reducer and JSON Patch. Every event must pass ``@ag-ui/core``'s
schemas, the client must log no warning, and what it rebuilt must be what
the run sent. Random runs go through the same client without a server, and
an aborted run must cancel the server's run and its tools.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, ToolCallController, create_run
from trio_stream._state import StateTree
from trio_stream.asgi import DEFAULT_HEARTBEAT_INTERVAL, AGUIResponse, heartbeat_interval
from trio_stream.chunks import (
    Chunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.ag_ui import AGUIDecoder, AGUIEncoder
from trio_stream.requests import AGUIRequest, RequestBodyError, parse_body
from trio_stream.requests.ag_ui import UserMessage

from ..clients import JS
from ..reliability.payloads import as_js
from ..serving import running
from .runs import runs
from .test_ag_ui import carried

AGENT = JS / "ag_ui.mjs"


def run_agent(url: str, run_input: dict[str, Any], abort_after: int | None = None) -> Any:
    """Run the agent at ``url`` with ``HttpAgent``; what the client saw and rebuilt."""
    command = ["node", str(AGENT), "--url", url, "--input", json.dumps(run_input)]
    if abort_after is not None:
        command += ["--abort-after", str(abort_after)]
    result = subprocess.run(command, capture_output=True, timeout=120, check=True)
    return json.loads(result.stdout)


def run_bodies(bodies: list[bytes]) -> Any:
    """Each body run by its own ``HttpAgent``, served by a fetch without a server."""
    result = subprocess.run(
        ["node", str(AGENT), "--bodies"],
        input=json.dumps([body.decode() for body in bodies]).encode(),
        capture_output=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


# -- the server ----------------------------------------------------------------------


class RecordingEncoder(AGUIEncoder):
    """The AG-UI encoder, keeping every chunk it encodes for the test to compare."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.chunks: list[Chunk] = []

    def encode(self, chunks: Any) -> bytes:
        chunks = list(chunks)
        self.chunks += chunks
        return super().encode(chunks)


class Server:
    """What the agent's server saw: the requests, the chunks, its tools' ends."""

    def __init__(self) -> None:
        self.requests: dict[str, AGUIRequest] = {}
        self.encoders: dict[str, RecordingEncoder] = {}
        self.tool_cancelled = threading.Event()
        self.run_cancelled = threading.Event()


SERVER = Server()


async def _fetch(tool: ToolCallController) -> str:
    await anyio.sleep(0.01)
    return "<html>"


async def _research(tool: ToolCallController) -> str:
    async with tool.open_substream() as nested:
        nested.append_text("Reading ")
        await anyio.sleep(0.01)
        nested.append_text("sources")
        nested.spawn_tool_call(
            "fetch", _fetch, args={"url": "https://example.org"}, tool_call_id="call_f"
        )
    return "summary"


async def _failing(tool: ToolCallController) -> None:
    raise LookupError("no such station")


def chat(body: AGUIRequest) -> Any:
    """Reasoning, text, parallel calls with streamed arguments, a sub-stream, state, the rest."""

    async def run(controller: RunController) -> None:
        controller.add_step_start("step-1")
        controller.append_reasoning("The user asks ")
        controller.append_reasoning("about tea.")
        question = body.messages[-1]
        assert isinstance(question, UserMessage)
        controller.append_text(f"You said: {question.text} ")
        first = await controller.add_tool_call("search", "call_s1")
        second = await controller.add_tool_call("search", "call_s2")
        for piece_1, piece_2 in zip(
            ['{"q": ', '"green', ' tea"}'], ['{"q": ', '"black', ' tea"}'], strict=True
        ):
            first.append_args_text(piece_1)
            second.append_args_text(piece_2)
            await anyio.lowlevel.checkpoint()
        second.set_response(["black tea"])
        first.set_response({"hits": 2})
        controller.spawn_tool_call(
            "research", _research, args={"topic": "tea"}, tool_call_id="call_r"
        )
        controller.spawn_tool_call(
            "station", _failing, args={}, tool_call_id="call_x", errors_as_result=True
        )
        controller.state["todo"].append("buy tea")
        controller.state["log"] = "started"
        controller.state["log"] += ", searching"
        controller.add_source("src-1", "https://en.wikipedia.org/wiki/Tea", "Tea")
        controller.add_data({"cups": 3}, name="chart")
        await anyio.sleep(0.1)
        controller.append_text("Done.")
        controller.add_step_finish("stop", input_tokens=5, output_tokens=7)

    return run


def failing(body: AGUIRequest) -> Any:
    async def run(controller: RunController) -> None:
        controller.append_text("Before the error")
        await anyio.sleep(0.01)
        raise RuntimeError("the model is down")

    return run


def endless(body: AGUIRequest) -> Any:
    """A run whose tool never returns: only the client leaving ends it."""

    async def wait(tool: ToolCallController) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            SERVER.tool_cancelled.set()

    async def run(controller: RunController) -> None:
        try:
            controller.append_text("Working")
            controller.spawn_tool_call("wait", wait, args={}, tool_call_id="call_w")
            await anyio.sleep_forever()
        finally:
            SERVER.run_cancelled.set()

    return run


SCENARIOS = {"chat": chat, "failing": failing, "endless": endless}


async def agent(request: Request) -> Response:
    try:
        body = await parse_body(request, AGUIRequest)
    except RequestBodyError as error:
        return error.response()
    SERVER.requests[body.run_id] = body
    encoder = SERVER.encoders[body.run_id] = RecordingEncoder(
        thread_id=body.thread_id, run_id=body.run_id, state=body.state
    )
    callback = SCENARIOS[request.path_params["scenario"]](body)
    return AGUIResponse(create_run(callback, state=body.state), encoder=encoder)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    routes = [Route("/agent/{scenario}", agent, methods=["POST"])]
    with running(Starlette(routes=routes)) as base:
        yield f"{base}/agent"


def run_input(run_id: str) -> dict[str, Any]:
    return {
        "threadId": "thread-1",
        "runId": run_id,
        "state": {"todo": ["tea"]},
        "messages": [{"id": "u1", "role": "user", "content": "I like tea."}],
        "tools": [{"name": "confirm", "description": "Ask the user", "parameters": {}}],
        "context": [{"description": "timezone", "value": "Europe/Lisbon"}],
        "forwardedProps": {"mode": "fast"},
    }


def received(output: Any) -> list[Chunk]:
    """The client's copy of the body, read by this package's decoder."""
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in output["wire"])
    return AGUIDecoder(state={"todo": ["tea"]}).decode(body)


def summary(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The client's assistant and reasoning messages: role, text, producer, calls."""
    return [
        (
            message["role"],
            message.get("content", ""),
            message.get("subagentRunId"),
            [
                (c["id"], c["function"]["name"], c["function"]["arguments"])
                for c in message.get("toolCalls", [])
            ],
        )
        for message in messages
        if message["role"] in ("assistant", "reasoning")
    ]


def tool_messages(messages: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {
        message["toolCallId"]: (message["content"], message.get("metadata"))
        for message in messages
        if message["role"] == "tool"
    }


# -- over HTTP -------------------------------------------------------------------------


def test_the_client_rebuilds_what_the_run_sent(url: str) -> None:
    output = run_agent(f"{url}/chat", run_input("run-chat"))
    assert output.get("error") is None
    assert output["invalid"] == []  # every event passes @ag-ui/core's schemas
    assert output["warnings"] == []
    assert [event["type"] for event in output["events"]][:2] == ["RUN_STARTED", "STEP_STARTED"]
    assert output["events"][-1]["type"] == "RUN_FINISHED"

    # The server read the client's RunAgentInput with AGUIRequest.
    request = SERVER.requests["run-chat"]
    assert (request.thread_id, request.forwarded_props) == ("thread-1", {"mode": "fast"})
    assert [tool.name for tool in request.tools] == ["confirm"]

    messages = output["messages"]
    assert messages[0] == {"id": "u1", "role": "user", "content": "I like tea."}
    main = ("call_s1", "search", '{"q": "green tea"}'), ("call_s2", "search", '{"q": "black tea"}')
    spawned = ("call_r", "research", '{"topic":"tea"}'), ("call_x", "station", "{}")
    assert summary(messages) == [
        ("reasoning", "The user asks about tea.", None, []),
        ("assistant", "You said: I like tea. ", None, [*main, *spawned]),
        # The sub-stream of call_r, and the call it made.
        (
            "assistant",
            "Reading sources",
            "call_r",
            [("call_f", "fetch", '{"url":"https://example.org"}')],
        ),
        ("assistant", "Done.", None, []),
    ]
    assert tool_messages(messages) == {
        "call_s1": ('{"hits":2}', {"trioStream": {"json": True}}),
        "call_s2": ('["black tea"]', {"trioStream": {"json": True}}),
        "call_f": ("<html>", None),
        "call_r": ("summary", None),
        "call_x": ("no such station", {"trioStream": {"isError": True}}),
    }
    assert output["state"] == {"todo": ["tea", "buy tea"], "log": "started, searching"}
    customs = [(e["name"], e["value"]) for e in output["events"] if e["type"] == "CUSTOM"]
    assert customs == [
        (
            "trio-stream.source",
            {"id": "src-1", "url": "https://en.wikipedia.org/wiki/Tea", "title": "Tea"},
        ),
        ("chart", {"cups": 3}),
    ]
    # And this package's decoder reads the client's copy back into the run's chunks.
    assert received(output) == SERVER.encoders["run-chat"].chunks


def test_a_failed_run_ends_with_run_error(url: str) -> None:
    output = run_agent(f"{url}/failing", run_input("run-failing"))
    assert (output["invalid"], output["warnings"]) == ([], [])
    assert [event["type"] for event in output["events"]][-3:] == [
        "CUSTOM",
        "TEXT_MESSAGE_END",
        "RUN_ERROR",
    ]
    assert output["events"][-1]["message"] == "the model is down"
    assert summary(output["messages"]) == [("assistant", "Before the error", None, [])]
    assert received(output) == SERVER.encoders["run-failing"].chunks


def test_aborting_the_agent_cancels_the_run_and_its_tools(url: str) -> None:
    # RUN_STARTED, the text's START, CONTENT, END, then the call's START, ARGS, END.
    output = run_agent(f"{url}/endless", run_input("run-endless"), abort_after=7)
    assert [event["type"] for event in output["events"]][:7] == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
    ]
    assert SERVER.tool_cancelled.wait(timeout=5), "the tool was not cancelled"
    assert SERVER.run_cancelled.wait(timeout=5), "the run was not cancelled"


def test_the_response_is_an_event_stream_with_heartbeats(url: str) -> None:
    response = httpx.post(f"{url}/failing", json=run_input("run-headers"), timeout=30)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert heartbeat_interval(AGUIEncoder(), None) == DEFAULT_HEARTBEAT_INTERVAL
    assert AGUIEncoder.keepalive == b": heartbeat\n\n"


# -- random runs, without a server -----------------------------------------------------


def expected_calls(chunks: list[Chunk]) -> dict[str, tuple[str, str, str | None]]:
    calls: dict[str, tuple[str, str, str | None]] = {}
    for chunk in chunks:
        if isinstance(chunk, ToolCallBeginChunk):
            calls[chunk.tool_call_id] = (chunk.tool_name, "", chunk.parent_id)
        elif isinstance(chunk, ToolCallDeltaChunk | ToolCallArgsTextFinishChunk):
            name, arguments, parent = calls[chunk.tool_call_id]
            calls[chunk.tool_call_id] = (name, arguments + chunk.args_text_delta, parent)
    return calls


def expected_text(chunks: list[Chunk], kind: type[Any]) -> dict[str | None, str]:
    text: dict[str | None, str] = {}
    for chunk in chunks:
        if isinstance(chunk, kind):
            delta = (
                chunk.text_delta if isinstance(chunk, TextDeltaChunk) else chunk.reasoning_delta
            )
            text[chunk.parent_id] = text.get(chunk.parent_id, "") + delta
    return {owner: joined for owner, joined in text.items() if joined}


def client_text(messages: list[dict[str, Any]], role: str) -> dict[str | None, str]:
    text: dict[str | None, str] = {}
    for message in messages:
        if message["role"] == role:
            owner = message.get("subagentRunId")
            text[owner] = text.get(owner, "") + message.get("content", "")
    return {owner: joined for owner, joined in text.items() if joined}


def client_calls(messages: list[dict[str, Any]]) -> dict[str, tuple[str, str, str | None]]:
    return {
        call["id"]: (
            call["function"]["name"],
            call["function"]["arguments"],
            message.get("subagentRunId"),
        )
        for message in messages
        if message["role"] == "assistant"
        for call in message.get("toolCalls", [])
    }


def final_state(chunks: list[Chunk]) -> Any:
    state = StateTree({}, lambda ops: None)
    for chunk in carried(chunks):
        if isinstance(chunk, UpdateStateChunk):
            state.apply(list(chunk.operations))
    return state.value


@settings(max_examples=8)
@given(st.lists(runs(), min_size=12, max_size=12))
def test_the_client_takes_every_run_and_rebuilds_it(batch: list[list[Chunk]]) -> None:
    bodies = []
    for chunks in batch:
        encoder = AGUIEncoder(state={})  # what HttpAgent holds when it has no state
        bodies.append(encoder.start() + encoder.encode(chunks) + encoder.finish())
    for chunks, output in zip(batch, run_bodies(bodies), strict=True):
        assert output.get("error") is None
        assert (output["invalid"], output["warnings"]) == ([], [])
        messages = output["messages"]
        assert client_text(messages, "assistant") == expected_text(chunks, TextDeltaChunk)
        assert client_text(messages, "reasoning") == expected_text(chunks, ReasoningDeltaChunk)
        assert client_calls(messages) == expected_calls(chunks)
        results = {
            chunk.tool_call_id: chunk.result
            if isinstance(chunk.result, str)
            else msgspec.json.encode(chunk.result).decode()
            for chunk in chunks
            if isinstance(chunk, ToolResultChunk)
        }
        assert {call: content for call, (content, _) in tool_messages(messages).items()} == results
        assert as_js(output["state"]) == as_js(final_state(chunks))
