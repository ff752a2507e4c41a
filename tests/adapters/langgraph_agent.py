"""A real LangGraph agent for the adapter's tests, with a scripted chat model.

``ScriptedChatModel`` is LangChain's ``GenericFakeChatModel`` taught to
stream what a provider streams: the text word by word, then each tool call
as ``tool_call_chunks`` whose arguments come five characters at a time, the
first piece with the call's name and id, the others with neither.

``build_agent()`` compiles a graph with every part the adapter handles:

- ``agent`` asks the model; if it calls tools, ``approve`` interrupts the
  graph (``interrupt({"question": ...})``) and writes the answer it is
  resumed with to the ``approved`` channel;
- ``tools`` is LangGraph's ``ToolNode``, whose one tool, ``research``,
  runs a subgraph (a ``researcher`` node that asks a model of its own and
  writes ``notes``) and returns the subgraph's notes as its artifact;
- then ``agent`` again, whose model now answers with text only.

The first turn (``FIRST_TURN``) ends at the interrupt; resuming with
``Command(resume="yes")`` on the same thread runs the rest.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

QUESTION = HumanMessage(content="What is Trio?", id="h1")
FIRST_TURN: dict[str, Any] = {"messages": [QUESTION]}
RESUME: Command[str] = Command(resume="yes")
ARGUMENT_PIECE = 5
"""Characters of a tool call's arguments per chunk."""


class ScriptedChatModel(GenericFakeChatModel):
    """Streams each scripted ``AIMessage`` as a provider would, in chunks."""

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        assert isinstance(message, AIMessage)
        assert isinstance(message.content, str)
        for word in re.split(r"(\s)", message.content):
            if word:
                yield ChatGenerationChunk(message=AIMessageChunk(content=word, id=message.id))
        for index, call in enumerate(message.tool_calls):
            arguments = json.dumps(call["args"])
            for start in range(0, len(arguments), ARGUMENT_PIECE):
                first = start == 0
                piece = {
                    "name": call["name"] if first else None,
                    "args": arguments[start : start + ARGUMENT_PIECE],
                    "id": call["id"] if first else None,
                    "index": index,
                }
                chunk = AIMessageChunk(content="", id=message.id, tool_call_chunks=[piece])  # type: ignore[list-item]
                yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        # No I/O to wait for: the default would step through it in threads.
        for chunk in self._stream(messages, stop):
            yield chunk


class HangingChatModel(ScriptedChatModel):
    """Streams its first message, then waits for ever; records its cancellation."""

    cancelled: list[bool] = []  # noqa: RUF012 - a pydantic field, copied per instance

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(True)
            raise


class FailingChatModel(ScriptedChatModel):
    """A model whose server is down."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        raise ConnectionError("the model is down")
        yield  # an async generator, as the interface wants


class ResearchState(MessagesState):
    notes: str


class AgentState(MessagesState):
    approved: str


def _research_graph() -> Any:
    model = ScriptedChatModel(messages=iter([AIMessage(content="Trio is a library", id="sub-1")]))

    async def researcher(state: ResearchState) -> dict[str, Any]:
        answer = await model.ainvoke(state["messages"])
        return {"messages": [answer], "notes": "found"}

    graph = StateGraph(ResearchState)
    graph.add_node("researcher", researcher)
    graph.add_edge(START, "researcher")
    return graph.compile()


def build_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent described above, with a fresh model script and checkpointer."""
    research_graph = _research_graph()

    @tool(response_format="content_and_artifact")
    async def research(topic: str) -> tuple[str, dict[str, Any]]:
        """Research a topic."""
        result = await research_graph.ainvoke(
            {"messages": [HumanMessage(content=topic, id="sub-h")]}
        )
        return result["messages"][-1].content, {"subgraph_state": {"notes": result["notes"]}}

    model = ScriptedChatModel(
        messages=iter(
            [
                AIMessage(
                    content="Let me check.",
                    id="ai-1",
                    tool_calls=[{"name": "research", "args": {"topic": "trio"}, "id": "call-1"}],
                ),
                AIMessage(content="Trio is nice.", id="ai-2"),
            ]
        )
    )

    async def agent(state: AgentState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def approve(state: AgentState) -> dict[str, Any]:
        return {"approved": interrupt({"question": "Run the research?"})}

    def route(state: AgentState) -> str:
        last = state["messages"][-1]
        return "approve" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(AgentState)
    graph.add_node("agent", agent)
    graph.add_node("approve", approve)
    graph.add_node("tools", ToolNode([research]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["approve", END])
    graph.add_edge("approve", "tools")
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver())


def build_chat(model: ScriptedChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One node that asks ``model``, and nothing else."""

    async def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    return graph.compile()


def thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


async def record_agent_turns() -> list[list[Any]]:
    """Both turns of the agent, streamed as the adapter reads them, event by event.

    Runs on asyncio, as LangGraph needs, and returns plain lists that a run
    on any backend can replay.
    """
    agent = build_agent()
    turns = []
    for turn in (FIRST_TURN, RESUME):
        events = agent.astream(
            turn, thread("recorded"), stream_mode=["messages", "updates"], subgraphs=True
        )
        turns.append([event async for event in events])
    return turns
