"""The LangGraph adapter: a graph's events merged into a run's state.

The merge (``append_langgraph_event``) and the choice of a subgraph's state
(``get_tool_call_subgraph_state``) do no I/O, so they are checked in runs on
Trio and on asyncio, with messages built by hand as in assistant-stream's
own tests, and with every event of a real LangGraph agent
(``langgraph_agent.py``: a scripted chat model that streams text and tool
call arguments in pieces, an interrupt, a tool node running a subgraph),
recorded on asyncio in a worker thread. ``stream_langgraph`` runs the agent
itself, so it is checked on asyncio, and refuses Trio.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langgraph.types import StreamMode

from trio_stream import RunController, UsageError, create_run
from trio_stream.adapters.langgraph import (
    LangGraphOutcome,
    append_langgraph_event,
    get_tool_call_subgraph_state,
    stream_langgraph,
)
from trio_stream.chunks import Chunk, ErrorChunk, StateOperation, UpdateStateChunk

from ..conftest import collect
from ..test_state_replay import client_apply
from .langgraph_agent import (
    FIRST_TURN,
    QUESTION,
    RESUME,
    FailingChatModel,
    HangingChatModel,
    ScriptedChatModel,
    build_agent,
    build_chat,
    record_agent_turns,
    thread,
)

pytestmark = pytest.mark.anyio

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
trio_only = pytest.mark.parametrize("anyio_backend", ["trio"])

Event = tuple[Any, str, Any]


def operations(chunks: Sequence[Chunk]) -> list[StateOperation]:
    return [
        op for chunk in chunks if isinstance(chunk, UpdateStateChunk) for op in chunk.operations
    ]


def replayed(initial: Any, ops: Sequence[StateOperation]) -> Any:
    """The state a client that applies ``ops`` to ``initial`` ends with."""
    state = initial
    for op in ops:
        state = client_apply(state, op)
    return state


def sets_at(ops: Sequence[StateOperation], path: list[str]) -> list[Any]:
    return [op["value"] for op in ops if op["type"] == "set" and op["path"] == path]


def appended(ops: Sequence[StateOperation], path: list[str]) -> list[str]:
    return [op["value"] for op in ops if op["type"] == "append-text" and op["path"] == path]


async def merged(initial: Any, *events: Event) -> tuple[list[list[StateOperation]], Any]:
    """Merge ``events`` into a run's state: each event's operations, and the final state.

    The run flushes after every event, so each event's operations are one
    ``update-state`` chunk (an event that changes nothing makes none).
    """
    final: Any = None

    async def run(controller: RunController) -> None:
        nonlocal final
        for namespace, mode, payload in events:
            append_langgraph_event(controller.state, namespace, mode, payload)
            controller.flush()
        final = controller.state.value

    chunks = await collect(run, state=initial)
    batches = [list(chunk.operations) for chunk in chunks if isinstance(chunk, UpdateStateChunk)]
    assert replayed(initial, [op for batch in batches for op in batch]) == final
    return batches, final


def message(msg: Any) -> Event:
    return ((), "messages", (msg, {}))


def tool_call_piece(
    args: str, *, name: str | None = None, call_id: str | None = None
) -> AIMessageChunk:
    piece = {"name": name, "args": args, "id": call_id, "index": 0}
    return AIMessageChunk(content="", id="m1", tool_call_chunks=[piece])  # type: ignore[list-item]


# -- what assistant-stream's tests check ----------------------------------------


async def test_a_message_starts_the_messages_of_an_empty_state() -> None:
    batches, state = await merged({}, message(HumanMessage(content="Hello", id="m1")))

    [only] = state["messages"]
    assert (only["content"], only["id"], only["type"]) == ("Hello", "m1", "human")
    assert batches == [
        [
            {"type": "set", "path": ["messages"], "value": []},
            {"type": "set", "path": ["messages", "0"], "value": only},
        ]
    ]


async def test_new_messages_are_appended_in_order() -> None:
    batches, state = await merged(
        {"messages": []},
        message(HumanMessage(content="A", id="a")),
        message(AIMessage(content="B", id="b")),
    )

    assert [m["content"] for m in state["messages"]] == ["A", "B"]
    assert [[op["path"] for op in batch] for batch in batches] == [
        [["messages", "0"]],
        [["messages", "1"]],
    ]


async def test_chunks_of_one_message_merge_by_id() -> None:
    _, state = await merged(
        {"messages": []},
        message(AIMessageChunk(content="Hello", id="m1")),
        message(AIMessageChunk(content=" world", id="m1")),
    )

    [only] = state["messages"]
    assert (only["content"], only["id"], only["type"]) == ("Hello world", "m1", "ai")


async def test_a_merged_chunk_sends_only_its_text_as_append_text() -> None:
    batches, state = await merged(
        {"messages": []},
        message(AIMessageChunk(content="Hello", id="m1")),
        message(AIMessageChunk(content=" world", id="m1")),
    )

    assert state["messages"][0]["content"] == "Hello world"
    assert batches[1] == [
        {"type": "append-text", "path": ["messages", "0", "content"], "value": " world"}
    ]


async def test_a_plain_dict_state_is_merged_in_place() -> None:
    state: dict[str, Any] = {"messages": []}

    append_langgraph_event(state, (), "messages", (AIMessageChunk(content="Hello", id="m1"), {}))
    append_langgraph_event(state, (), "messages", (AIMessageChunk(content=" world", id="m1"), {}))
    append_langgraph_event(state, (), "updates", {"agent": {"answer": "42"}})

    [only] = state["messages"]
    assert (only["content"], only["type"]) == ("Hello world", "ai")
    assert state["answer"] == "42"


async def test_tool_call_arguments_are_patched_piece_by_piece() -> None:
    batches, state = await merged(
        {"messages": []},
        message(tool_call_piece('{"query"', name="search", call_id="call_1")),
        message(tool_call_piece(':"docs"}')),
    )

    [only] = state["messages"]
    assert only["tool_call_chunks"][0]["args"] == '{"query":"docs"}'
    assert only["tool_calls"] == [
        {"name": "search", "args": {"query": "docs"}, "id": "call_1", "type": "tool_call"}
    ]
    # The arguments parsed so far gain their new key, the text of the
    # arguments gets the second piece appended; the message is not set again.
    assert batches[1] == [
        {
            "type": "set",
            "path": ["messages", "0", "tool_calls", "0", "args", "query"],
            "value": "docs",
        },
        {
            "type": "append-text",
            "path": ["messages", "0", "tool_call_chunks", "0", "args"],
            "value": ':"docs"}',
        },
    ]


async def test_a_whole_message_replaces_the_one_with_its_id() -> None:
    batches, state = await merged(
        {"messages": [{"type": "human", "id": "m1", "content": "old"}]},
        message(HumanMessage(content="new", id="m1")),
    )

    [only] = state["messages"]
    assert only["content"] == "new"
    assert batches == [[{"type": "set", "path": ["messages", "0"], "value": only}]]


async def test_updates_write_every_channel_but_messages_onto_the_state() -> None:
    batches, state = await merged(
        {}, ((), "updates", {"agent": {"answer": "42", "messages": "ignored"}})
    )

    assert state == {"answer": "42"}
    assert batches == [[{"type": "set", "path": ["answer"], "value": "42"}]]


async def test_updates_skip_nodes_that_wrote_no_dict() -> None:
    _, state = await merged({}, ((), "updates", {"bad": "not-a-dict", "agent": {"answer": "42"}}))

    assert state == {"answer": "42"}


async def test_other_stream_modes_change_nothing() -> None:
    batches, state = await merged(
        {"existing": "value"},
        ((), "custom", "anything"),
        ((), "values", {"existing": "other"}),
    )

    assert batches == []
    assert state == {"existing": "value"}


@pytest.mark.parametrize(
    ("artifact", "artifact_field_name"),
    [(None, None), (None, "subgraph_state"), ({"subgraph_state": None}, "subgraph_state")],
)
async def test_a_null_artifact_starts_as_the_default_subgraph_state(
    artifact: Any, artifact_field_name: str | None
) -> None:
    initial = {
        "messages": [ToolMessage(content="", tool_call_id="c1", artifact=artifact).model_dump()]
    }
    final: Any = None

    async def run(controller: RunController) -> None:
        nonlocal final
        state = get_tool_call_subgraph_state(
            controller,
            ("tools:task1",),
            "tools",
            {"answer": "pending"},
            artifact_field_name=artifact_field_name,
        )
        assert state["answer"] == "pending"
        append_langgraph_event(state, (), "updates", {"agent": {"answer": "42"}})
        final = controller.state.value

    chunks = await collect(run, state=initial)

    artifact = final["messages"][0]["artifact"]
    if artifact_field_name:
        artifact = artifact[artifact_field_name]
    assert artifact == {"answer": "42"}
    assert replayed(initial, operations(chunks)) == final


# -- more of the merge ------------------------------------------------------------


async def test_a_tool_message_replaces_the_one_with_its_tool_call_id() -> None:
    streaming = ToolMessage(
        content="", tool_call_id="c1", additional_kwargs={"streaming": True}
    ).model_dump()
    result = ToolMessage(content="sunny", tool_call_id="c1", id="t1")

    _, state = await merged({"messages": [streaming]}, message(result))

    assert state["messages"] == [result.model_dump()]


async def test_a_change_that_removes_something_replaces_the_message() -> None:
    # Arguments that stop being JSON move the call from tool_calls to
    # invalid_tool_calls: a list shrinks, which only a set can say.
    batches, state = await merged(
        {"messages": []},
        message(tool_call_piece('{"q": "a"}', name="search", call_id="c1")),
        message(tool_call_piece("}")),
    )

    [only] = state["messages"]
    assert only["tool_calls"] == []
    assert only["invalid_tool_calls"][0]["args"] == '{"q": "a"}}'
    assert batches[1] == [{"type": "set", "path": ["messages", "0"], "value": only}]


async def test_operations_already_sent_keep_their_values() -> None:
    batches, _ = await merged(
        {"messages": []},
        message(AIMessageChunk(content="Hello", id="m1")),
        message(AIMessageChunk(content=" world", id="m1")),
        message(tool_call_piece('{"q": 1}', name="search", call_id="c1")),
    )

    first: Any = batches[0][0]["value"]
    assert (first["content"], first["tool_calls"], first["tool_call_chunks"]) == ("Hello", [], [])


async def test_the_empty_end_of_stream_chunk_adds_no_message() -> None:
    end = AIMessageChunk(content="", id="lc_run--1", chunk_position="last")

    batches, state = await merged(
        {"messages": []}, message(AIMessageChunk(content="Hi", id="chatcmpl-1")), message(end)
    )

    assert [m["id"] for m in state["messages"]] == ["chatcmpl-1"]
    assert len(batches) == 1


async def test_an_end_of_stream_chunk_with_a_known_id_is_merged() -> None:
    end = AIMessageChunk(content="", id="m1", chunk_position="last")

    batches, state = await merged(
        {"messages": []}, message(AIMessageChunk(content="Hi", id="m1")), message(end)
    )

    assert state["messages"][0]["chunk_position"] == "last"
    assert batches[1] == [
        {"type": "set", "path": ["messages", "0", "chunk_position"], "value": "last"}
    ]


async def test_updates_skip_what_langgraph_adds_itself() -> None:
    _, state = await merged(
        {},
        ((), "updates", {"__interrupt__": ({"value": "?", "id": "i1"},)}),
        ((), "updates", {"__metadata__": {"cached": True}, "agent": {"answer": "42"}}),
    )

    assert state == {"answer": "42"}


async def test_a_string_channel_that_grows_is_sent_as_append_text() -> None:
    batches, state = await merged(
        {"summary": "Trio"}, ((), "updates", {"agent": {"summary": "Trio is nice"}})
    )

    assert state == {"summary": "Trio is nice"}
    assert batches == [[{"type": "append-text", "path": ["summary"], "value": " is nice"}]]


async def test_a_controller_stands_for_its_state() -> None:
    final: Any = None

    async def run(controller: RunController) -> None:
        nonlocal final
        append_langgraph_event(
            controller, (), "messages", (HumanMessage(content="Hi", id="h"), {})
        )
        final = controller.state.value

    await collect(run)

    assert [m["content"] for m in final["messages"]] == ["Hi"]


async def test_a_state_that_is_not_a_dict_is_refused() -> None:
    async def run(controller: RunController) -> None:
        append_langgraph_event(controller.state, (), "updates", {"agent": {"answer": "42"}})

    with pytest.raises(TypeError, match="needs a dict state"):
        await collect(run, state=["a list"])


# -- subgraphs run by tools ---------------------------------------------------------


def calling(tool: str, call_id: str) -> dict[str, Any]:
    return AIMessage(
        content="", id="ai", tool_calls=[{"name": tool, "args": {}, "id": call_id}]
    ).model_dump()


async def test_a_subgraph_event_opens_a_streaming_tool_message() -> None:
    final: Any = None

    async def run(controller: RunController) -> None:
        nonlocal final
        state = get_tool_call_subgraph_state(
            controller, ("tools:t1", "researcher:t2"), "tools", {}, artifact_field_name="sub"
        )
        append_langgraph_event(state, (), "updates", {"researcher": {"notes": "found"}})
        final = controller.state.value

    await collect(run, state={"messages": [calling("research", "c1")]})

    tool_message = final["messages"][1]
    assert tool_message["type"] == "tool"
    assert (tool_message["tool_call_id"], tool_message["name"]) == ("c1", "research")
    assert tool_message["additional_kwargs"] == {"streaming": True}
    assert tool_message["artifact"] == {"sub": {"notes": "found"}}


@pytest.mark.parametrize(
    ("namespace", "subgraph_node", "tool_name"),
    [
        ((), "tools", None),  # the graph's own event
        (("agent:t1",), "tools", None),  # another node's subgraph
        (("tools:t1",), "tools", "other"),  # another tool
        (("tools:t1",), ["agent", "planner"], None),
        (("tools:t1",), lambda names: names == ["agent"], None),
    ],
)
async def test_other_events_belong_in_the_run_state(
    namespace: tuple[str, ...], subgraph_node: Any, tool_name: str | None
) -> None:
    async def run(controller: RunController) -> None:
        state = get_tool_call_subgraph_state(
            controller, namespace, subgraph_node, {}, tool_name=tool_name
        )
        append_langgraph_event(state, (), "updates", {"node": {"answer": "42"}})

    chunks = await collect(run, state={"messages": [calling("research", "c1")]})

    assert operations(chunks) == [{"type": "set", "path": ["answer"], "value": "42"}]


async def test_subgraph_nodes_may_be_named_by_a_list_or_a_function() -> None:
    asked: list[list[str]] = []

    def is_tools(names: list[str]) -> bool:
        asked.append(names)
        return names == ["tools"]

    async def run(controller: RunController) -> None:
        by_list = get_tool_call_subgraph_state(controller, ("tools:t",), ["tools"], {})
        by_function = get_tool_call_subgraph_state(controller, ("x:1", "tools:t"), is_tools, {})
        assert by_list == by_function == {}
        assert len(controller.state["messages"]) == 2  # one tool message, opened once

    await collect(run, state={"messages": [calling("research", "c1")]})

    assert asked == [["x"], ["tools"]]


async def test_a_run_without_state_starts_from_the_default() -> None:
    async def run(controller: RunController) -> None:
        state = get_tool_call_subgraph_state(controller, (), "tools", {"messages": []})
        assert state == {"messages": []}

    chunks = await collect(run)

    assert operations(chunks) == [{"type": "set", "path": [], "value": {"messages": []}}]


# -- a real LangGraph agent ---------------------------------------------------------


def check_first_turn(initial: Any, ops: list[StateOperation], state: Any) -> None:
    """The agent's first turn: its answer streamed in pieces, up to the interrupt."""
    assert replayed(initial, ops) == state
    question, answer = state["messages"]  # no empty end-of-stream message
    assert question == QUESTION.model_dump()
    assert (answer["type"], answer["id"], answer["content"]) == ("ai", "ai-1", "Let me check.")
    assert answer["tool_calls"] == [
        {"name": "research", "args": {"topic": "trio"}, "id": "call-1", "type": "tool_call"}
    ]
    # Set once with the first word, then every piece appended as it came.
    assert [m["content"] for m in sets_at(ops, ["messages", "1"])] == ["Let"]
    assert appended(ops, ["messages", "1", "content"]) == [" ", "me", " ", "check."]
    arguments = ["messages", "1", "tool_call_chunks", "0", "args"]
    [first_piece] = sets_at(ops, arguments[:-1])
    assert first_piece["args"] == '{"top'
    assert appended(ops, arguments) == ['ic": ', '"trio', '"}']
    # The interrupt is no channel: the state has none of it.
    assert set(state) == {"messages"}


def check_second_turn(initial: Any, ops: list[StateOperation], state: Any) -> None:
    """The resumed turn: the subgraph streams into the tool's message, then the answer."""
    assert replayed(initial, ops) == state
    assert state["approved"] == "yes"
    assert state["messages"][:2] == initial["messages"]
    result, answer = state["messages"][2:]
    streaming, replaced_by = sets_at(ops, ["messages", "2"])
    assert streaming["type"] == "tool"
    assert (streaming["tool_call_id"], streaming["name"]) == ("call-1", "research")
    assert streaming["additional_kwargs"] == {"streaming": True}
    subgraph = ["messages", "2", "artifact", "subgraph_state"]
    assert [m["content"] for m in sets_at(ops, [*subgraph, "messages", "0"])] == ["Trio"]
    assert appended(ops, [*subgraph, "messages", "0", "content"]) == [
        *(" ", "is", " ", "a", " ", "library")
    ]
    assert sets_at(ops, [*subgraph, "notes"]) == ["found"]
    # The tool's own message then replaced it, by its tool call id.
    assert replaced_by == result
    assert (result["tool_call_id"], result["content"]) == ("call-1", "Trio is a library")
    assert result["artifact"] == {"subgraph_state": {"notes": "found"}}
    assert result["additional_kwargs"] == {}
    assert (answer["id"], answer["content"]) == ("ai-2", "Trio is nice.")
    assert appended(ops, ["messages", "3", "content"]) == [" ", "is", " ", "nice."]


async def test_a_graphs_events_merge_the_same_on_trio_and_asyncio() -> None:
    turns = await anyio.to_thread.run_sync(lambda: asyncio.run(record_agent_turns()))
    state: Any = {"messages": [QUESTION.model_dump()]}

    for events, check in zip(turns, (check_first_turn, check_second_turn), strict=True):
        final: Any = None

        async def run(controller: RunController, events: list[Any] = events) -> None:
            nonlocal final
            # The loop an assistant-stream application writes.
            for namespace, mode, payload in events:
                target = get_tool_call_subgraph_state(
                    controller, namespace, "tools", {}, artifact_field_name="subgraph_state"
                )
                append_langgraph_event(target, namespace, mode, payload)
            final = controller.state.value

        chunks = await collect(run, state=state)
        check(state, operations(chunks), final)
        state = final


async def streamed(
    initial: Any, events: Any, **options: Any
) -> tuple[list[Chunk], Any, LangGraphOutcome]:
    """Run ``stream_langgraph`` on ``events``: the chunks, final state and outcome."""
    results: dict[str, Any] = {}

    async def run(controller: RunController) -> None:
        results["outcome"] = await stream_langgraph(controller, events, **options)
        results["state"] = controller.state.value

    chunks = await collect(run, state=initial)
    return chunks, results["state"], results["outcome"]


@asyncio_only
async def test_stream_langgraph_runs_the_agent_into_the_run() -> None:
    agent = build_agent()
    state: Any = {"messages": [QUESTION.model_dump()]}
    options = {"subgraph_node": "tools", "artifact_field_name": "subgraph_state"}
    modes: list[StreamMode] = ["messages", "updates"]

    first = agent.astream(FIRST_TURN, thread("live"), stream_mode=modes, subgraphs=True)
    chunks, after_first, outcome = await streamed(state, first, **options)

    check_first_turn(state, operations(chunks), after_first)
    [pending] = outcome.interrupts
    assert pending.value == {"question": "Run the research?"}

    second = agent.astream(RESUME, thread("live"), stream_mode=modes, subgraphs=True)
    chunks, after_second, outcome = await streamed(after_first, second, **options)

    check_second_turn(after_first, operations(chunks), after_second)
    assert outcome.interrupts == ()


@asyncio_only
@pytest.mark.parametrize(
    "options",
    [
        {"stream_mode": ["messages", "updates"]},
        {"stream_mode": ["messages", "updates"], "subgraphs": True},
        {"stream_mode": ["messages", "updates"], "subgraphs": True, "version": "v2"},
    ],
)
async def test_every_event_shape_of_astream_is_read(options: dict[str, Any]) -> None:
    model = ScriptedChatModel(messages=iter([AIMessage(content="Hi there", id="ai")]))
    events = build_chat(model).astream({"messages": [QUESTION]}, **options)

    _, state, outcome = await streamed(None, events)

    assert [(m["id"], m["content"]) for m in state["messages"]] == [("ai", "Hi there")]
    assert outcome.interrupts == ()


@asyncio_only
@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_interrupts_are_reported_once_from_updates_and_values(version: str) -> None:
    options: dict[str, Any] = {"stream_mode": ["updates", "values"], "version": version}
    events = build_agent().astream(FIRST_TURN, thread(version), **options)

    _, state, outcome = await streamed({}, events)

    [pending] = outcome.interrupts
    assert pending.value == {"question": "Run the research?"}
    assert "__interrupt__" not in state


@asyncio_only
async def test_a_stream_with_one_mode_is_refused_with_the_fix() -> None:
    model = ScriptedChatModel(messages=iter([AIMessage(content="Hi", id="ai")]))
    events = build_chat(model).astream({"messages": [QUESTION]}, stream_mode="messages")

    with pytest.raises(UsageError, match=r"stream_mode as a list"):
        await streamed({}, events)


@asyncio_only
async def test_cancelling_the_run_cancels_the_graph() -> None:
    model = HangingChatModel(messages=iter([AIMessage(content="Thinking", id="ai")]))
    events = build_chat(model).astream(
        {"messages": [QUESTION]}, stream_mode=["messages"], subgraphs=True
    )

    async def run(controller: RunController) -> None:
        controller.start_soon(stream_langgraph, controller, events)
        with anyio.fail_after(5):
            # The state has no event to wait on: look until the first piece is in.
            while not (controller.state and controller.state.get("messages")):  # noqa: ASYNC110
                await anyio.sleep(0.005)
        controller.cancel()

    chunks = await collect(run)

    assert model.cancelled == [True]
    assert replayed(None, operations(chunks))["messages"][0]["content"] == "Thinking"
    assert not any(isinstance(chunk, ErrorChunk) for chunk in chunks)


@asyncio_only
async def test_an_error_in_the_graph_fails_the_run() -> None:
    model = FailingChatModel(messages=iter([]))
    events = build_chat(model).astream({"messages": [QUESTION]}, stream_mode=["messages"])

    async def run(controller: RunController) -> None:
        await stream_langgraph(controller, events)

    received: list[Chunk] = []
    with pytest.raises(ConnectionError, match="the model is down"):
        async with create_run(run) as chunks:
            received.extend([chunk async for chunk in chunks])

    assert received == [ErrorChunk(error="the model is down")]


@trio_only
async def test_stream_langgraph_refuses_trio_and_says_what_to_do() -> None:
    model = ScriptedChatModel(messages=iter([AIMessage(content="Hi", id="ai")]))
    events = build_chat(model).astream({"messages": [QUESTION]}, stream_mode=["messages"])

    async def run(controller: RunController) -> None:
        await stream_langgraph(controller, events)

    received: list[Chunk] = []
    with pytest.raises(UsageError) as raised:
        async with create_run(run) as chunks:
            received.extend([chunk async for chunk in chunks])

    message = str(raised.value)
    assert "LangGraph runs on asyncio only, and this run is on trio" in message
    assert "hypercorn -k asyncio" in message
    assert "uvicorn" in message
    assert received == [ErrorChunk(error=message)]
    assert len(list(model.messages)) == 1  # the model was never asked


def test_without_langgraph_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] == "langchain_core":
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "trio_stream.adapters.langgraph")

    with pytest.raises(ImportError, match=r"pip install 'trio-stream\[langgraph\]'"):
        importlib.import_module("trio_stream.adapters.langgraph")
