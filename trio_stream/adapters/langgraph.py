"""A LangGraph graph's stream, merged into a run's state.

A LangGraph agent reports what it does as events. With
``stream_mode=["messages", "updates"]``, a ``messages`` event carries one
message, or one piece (an ``AIMessageChunk``) of a message that a chat model
is writing; an ``updates`` event carries what each node wrote to the
graph's state. assistant-ui's assistant transport draws an agent from the
run's *state*, so this adapter does not turn events into text and tool call
chunks: it keeps ``state["messages"]`` equal to the graph's messages, as
LangChain's ``model_dump()`` dicts, and copies the other channels of every
update onto the state.

The merge is ``append_langgraph_event(state, namespace, type, payload)``,
with assistant-stream's arguments and meaning. The pieces of a message are
joined by id with LangChain's own ``add_ai_message_chunks``, then written as
the smallest operations that turn the old message into the new one: the new
part of the text as ``append-text``, a new tool call as a ``set`` of one
list item, the next piece of its arguments as ``append-text`` again. A
front-end thus receives each piece once, not the whole message per token.
Only a change that removes something (a key, a list item) replaces the
message whole.

``get_tool_call_subgraph_state`` points an event of a subgraph run by a tool
(its namespace names the tool node) at the artifact of that tool's message,
so the tool card shows the subgraph's state while it works.
``stream_langgraph(controller, graph.astream(...))`` does both for every
event of a stream and reports the graph's interrupts.

LangGraph runs on asyncio only. The merge does no I/O and works in any run,
but ``stream_langgraph`` refuses to start in a Trio run: serve the app on
asyncio (hypercorn's asyncio worker, or uvicorn), where trio-stream runs
too. It reads the graph in an asyncio task outside the run's cancel scopes,
so that cancelling the run stops the graph the way LangGraph expects: one
cancellation, then its own clean-up, which cancels the running nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, MutableMapping
from collections.abc import Sequence as SequenceABC
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio
import sniffio
from anyio.streams.memory import MemoryObjectSendStream

from .._controller import RunController
from .._errors import UsageError
from .._state import StateProxy
from ..chunks import StateOperation

try:
    from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage
    from langchain_core.messages.ai import add_ai_message_chunks
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trio_stream.adapters.langgraph needs LangGraph: pip install 'trio-stream[langgraph]'"
    ) from error

if TYPE_CHECKING:
    from langgraph.types import Interrupt

__all__ = [
    "LangGraphOutcome",
    "SubgraphNode",
    "append_langgraph_event",
    "get_tool_call_subgraph_state",
    "stream_langgraph",
]

SubgraphNode: TypeAlias = str | list[str] | Callable[[list[str]], bool]
"""The node (or nodes) whose events go to a tool message's artifact."""

_RESERVED_UPDATES: Final = frozenset({"__interrupt__", "__metadata__"})
"""Entries of an ``updates`` event that LangGraph adds itself: no node's update."""

_CLOSE_TIMEOUT = 5.0
"""Seconds that stopping the graph may take, once the run no longer reads it."""

_ON_TRIO = (
    "LangGraph runs on asyncio only, and this run is on {library}: serve the app on "
    "asyncio (hypercorn's asyncio worker, `hypercorn -k asyncio`, or uvicorn), where "
    "trio-stream runs too"
)


@dataclass(frozen=True, slots=True)
class LangGraphOutcome:
    """How a graph's stream ended.

    ``interrupts`` are the graph's ``Interrupt`` objects (``.id``,
    ``.value``), each once, in the order they came; empty when the graph ran
    to its end. Resume with ``Command(resume=...)`` on the same thread.
    """

    interrupts: tuple[Interrupt, ...]


# -- the merge ----------------------------------------------------------------


def append_langgraph_event(
    state: StateProxy | MutableMapping[str, Any] | RunController,
    _namespace: SequenceABC[str] | str,
    type: str,  # shadows the builtin: assistant-stream's name for the event's mode
    payload: Any,
) -> None:
    """Merge one event of a graph's stream into ``state``.

    ``state`` is a run's state (``controller.state``, or any dict proxy in
    it), a plain dict, changed in place, or a controller, whose state becomes
    ``{}`` if it has none. ``type`` is the event's stream mode:

    - ``messages``: ``payload`` is ``(message, metadata)``. A message whose
      ``id`` (or ``tool_call_id``) is already in ``state["messages"]`` is
      merged into it when it is a chunk, and replaces it otherwise; any other
      is appended. An empty chunk that only marks the end of a model's stream
      (``chunk_position="last"``) and matches no message adds nothing.
    - ``updates``: ``payload`` maps node names to what they wrote; each
      channel but ``messages`` (which the ``messages`` events carry) is
      written to ``state``. Updates that are not dicts, and LangGraph's own
      ``__interrupt__`` and ``__metadata__`` entries, are skipped.
    - any other mode is ignored. The namespace is not used: pass the state a
      namespace's events belong in (see ``get_tool_call_subgraph_state``).
    """
    if type == "messages":
        _merge_message(_StateWriter(state), payload)
    elif type == "updates":
        _write_updates(_StateWriter(state), payload)


def _merge_message(writer: _StateWriter, payload: Any) -> None:
    message = payload[0] if isinstance(payload, tuple | list) and payload else payload
    if not isinstance(message, BaseMessage):
        raise TypeError(
            "a LangGraph messages event carries (message, metadata), "
            f"not {payload.__class__.__name__}"
        )
    incoming = message.model_dump()
    is_chunk = isinstance(message, AIMessageChunk)
    if is_chunk:
        incoming["type"] = "ai"
    messages = writer.get("messages")
    base = [*writer.path, "messages"]
    operations: list[StateOperation] = []
    if messages is None:
        operations.append({"type": "set", "path": base, "value": []})
        messages = []
    elif not isinstance(messages, list):
        raise TypeError(f"state['messages'] is a {messages.__class__.__name__}, not a list")
    index = _matching_message(messages, incoming)
    if index is None:
        if isinstance(message, AIMessageChunk) and _marks_end_only(message):
            return
        path = [*base, str(len(messages))]
        operations.append({"type": "set", "path": path, "value": incoming})
    elif is_chunk:
        path = [*base, str(index)]
        merged = _joined(messages[index], incoming)
        if not _patch(path, messages[index], merged, operations):
            operations = [{"type": "set", "path": path, "value": merged}]
    else:
        operations.append({"type": "set", "path": [*base, str(index)], "value": incoming})
    writer.apply(operations)


def _matching_message(messages: list[Any], incoming: Mapping[str, Any]) -> int | None:
    """The index of the message ``incoming`` continues or replaces, if any."""
    message_id = incoming.get("id")
    tool_call_id = incoming.get("tool_call_id")
    for index, existing in enumerate(messages):
        if not isinstance(existing, Mapping):
            continue
        if message_id is not None and existing.get("id") == message_id:
            return index
        if tool_call_id is not None and existing.get("tool_call_id") == tool_call_id:
            return index
    return None


def _marks_end_only(chunk: AIMessageChunk) -> bool:
    """Whether ``chunk`` is the empty end-of-stream marker LangChain adds.

    LangChain closes a model's stream with an empty chunk flagged
    ``chunk_position="last"``, whose id is the run's own when the model's
    chunks carried the provider's: merged by id, it would start a new,
    empty message.
    """
    return (
        getattr(chunk, "chunk_position", None) == "last"
        and not chunk.content
        and not chunk.tool_call_chunks
        and not chunk.usage_metadata
    )


def _joined(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """The message ``existing`` becomes with the chunk ``incoming``, as a dict."""
    merged = add_ai_message_chunks(
        AIMessageChunk(**{**existing, "type": "AIMessageChunk"}),
        AIMessageChunk(**{**incoming, "type": "AIMessageChunk"}),
    ).model_dump()
    merged["type"] = "ai"
    return merged


def _patch(path: list[str], current: Any, new: Any, operations: list[StateOperation]) -> bool:
    """Add to ``operations`` what turns ``current`` into ``new`` at ``path``.

    Dicts and lists are patched item by item, and a string that extends the
    current one gets ``append-text`` with the new part. Returns ``False``,
    having added nothing, when ``new`` lacks a key or an item of ``current``:
    operations only set and append, so that takes a replacement.
    """
    if current == new:
        return True
    added: list[StateOperation] = []
    if isinstance(current, dict) and isinstance(new, dict):
        if not current.keys() <= new.keys():
            return False
        for key, value in new.items():
            if key not in current:
                added.append({"type": "set", "path": [*path, key], "value": value})
            elif not _patch([*path, key], current[key], value, added):
                return False
    elif isinstance(current, list) and isinstance(new, list):
        if len(new) < len(current):
            return False
        for index, item in enumerate(new):
            if index >= len(current):
                added.append({"type": "set", "path": [*path, str(index)], "value": item})
            elif not _patch([*path, str(index)], current[index], item, added):
                return False
    elif isinstance(current, str) and current and isinstance(new, str) and new.startswith(current):
        added.append({"type": "append-text", "path": path, "value": new[len(current) :]})
    else:
        added.append({"type": "set", "path": path, "value": new})
    operations.extend(added)
    return True


def _write_updates(writer: _StateWriter, payload: Mapping[str, Any]) -> None:
    for node, channels in payload.items():
        if node in _RESERVED_UPDATES or not isinstance(channels, Mapping):
            continue
        for channel, value in channels.items():
            if channel != "messages":
                writer.assign(channel, value)


class _StateWriter:
    """Reads and writes the state ``append_langgraph_event`` was given.

    A run's state is written through its tree, one batch of operations per
    event (all or none, copy-on-write); a plain dict is changed in place.
    """

    __slots__ = ("_plain", "_proxy", "path")

    def __init__(self, state: StateProxy | MutableMapping[str, Any] | RunController) -> None:
        if isinstance(state, RunController):
            if state.state is None:
                state.state = {}
            state = state.state
        self._proxy: StateProxy | None = None
        self._plain: MutableMapping[str, Any] | None = None
        self.path: list[str] = []
        """Where the state is in the run's (``[]`` for a plain dict)."""
        if isinstance(state, StateProxy) and isinstance(state._current(), dict):
            self._proxy = state
            self.path = state._path
        elif isinstance(state, MutableMapping):
            self._plain = state
        else:
            raise TypeError(
                "append_langgraph_event needs a dict state (controller.state, a dict in it, "
                f"or a plain dict), not {state!r}"
            )

    def get(self, key: str) -> Any:
        """The value of ``key``, or ``None``; a run's is shared: read only."""
        if self._proxy is not None:
            return self._proxy._current().get(key)
        assert self._plain is not None
        return self._plain.get(key)

    def assign(self, key: str, value: Any) -> None:
        """``state[key] = value``, with the run's ``append-text`` for extended strings."""
        if self._proxy is not None:
            self._proxy[key] = value
        else:
            assert self._plain is not None
            self._plain[key] = value

    def apply(self, operations: list[StateOperation]) -> None:
        """Apply ``operations``, whose paths start with ``self.path``."""
        if not operations:
            return
        if self._proxy is not None:
            self._proxy._tree.apply(operations)
            return
        assert self._plain is not None
        for op in operations:
            _apply_in_place(self._plain, op)


def _apply_in_place(root: MutableMapping[str, Any], op: StateOperation) -> None:
    *parents, last = op["path"]
    node: Any = root
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        index = int(last)
        if index == len(node):
            node.append(op["value"])
        elif op["type"] == "append-text":
            node[index] += op["value"]
        else:
            node[index] = op["value"]
    elif op["type"] == "append-text":
        node[last] = (node.get(last) or "") + op["value"]
    else:
        node[last] = op["value"]


# -- subgraphs run by tools ---------------------------------------------------


def get_tool_call_subgraph_state(
    controller: RunController,
    namespace: SequenceABC[str],
    subgraph_node: SubgraphNode,
    default_state: Mapping[str, Any],
    *,
    artifact_field_name: str | None = None,
    tool_name: str | list[str] | None = None,
) -> Any:
    """The state an event from ``namespace`` belongs in.

    ``namespace`` is the event's, such as ``("tools:<task id>",)``. When one
    of its nodes is ``subgraph_node`` (a name, a list of names, or a function
    given a one-item list of the name), the event comes from a subgraph that
    a tool runs, and its state is the artifact of that tool's message, the
    last of ``state["messages"]``. If the last message is instead the AI
    message calling the tool (the last of its ``tool_calls``, and one of
    ``tool_name`` if given), a tool message is added for it first, marked
    ``additional_kwargs={"streaming": True}``, until the tool's own result
    replaces it. With ``artifact_field_name``, the state is that field of the
    artifact. A missing (or null) artifact or field starts as
    ``default_state``, and so does the run's state if it has none.

    Any other event belongs in the run's state itself, which is returned.
    """
    if controller.state is None:
        controller.state = default_state
    state = controller.state
    for part in namespace:
        if not _names_subgraph(subgraph_node, part.split(":")[0]):
            continue
        messages = state.get("messages") if isinstance(state, StateProxy) else None
        if not messages:
            return state
        last = messages[-1]
        if last["type"] == "ai":
            calls = last.get("tool_calls")
            if not calls or not _names_tool(tool_name, calls[-1]["name"]):
                return state
            call = calls[-1]
            messages.append(
                ToolMessage(
                    tool_call_id=call["id"],
                    name=call["name"],
                    artifact={} if artifact_field_name else default_state,
                    content="",
                    additional_kwargs={"streaming": True},
                ).model_dump()
            )
            last = messages[-1]
        if last["type"] == "tool":
            return _artifact_state(last, default_state, artifact_field_name)
    return state


def _names_subgraph(subgraph_node: SubgraphNode, node: str) -> bool:
    if isinstance(subgraph_node, str):
        return node == subgraph_node
    if isinstance(subgraph_node, list):
        return node in subgraph_node
    return bool(subgraph_node([node]))


def _names_tool(tool_name: str | list[str] | None, name: str) -> bool:
    if tool_name is None:
        return True
    if isinstance(tool_name, str):
        return name == tool_name
    return name in tool_name


def _artifact_state(
    message: StateProxy, default_state: Mapping[str, Any], field: str | None
) -> Any:
    if message.get("artifact") is None:
        message["artifact"] = {} if field else default_state
    artifact = message["artifact"]
    if not field:
        return artifact
    if artifact.get(field) is None:
        artifact[field] = default_state
    return artifact[field]


# -- streaming a graph --------------------------------------------------------


async def stream_langgraph(
    controller: RunController,
    events: AsyncIterable[Any],
    *,
    subgraph_node: SubgraphNode | None = None,
    default_state: Mapping[str, Any] | None = None,
    artifact_field_name: str | None = None,
    tool_name: str | list[str] | None = None,
) -> LangGraphOutcome:
    """Merge every event of ``events`` into the run's state, as they come.

    ``events`` is what ``graph.astream(input, config, stream_mode=[...],
    subgraphs=...)`` returns: ``stream_mode`` must be a list, so that each
    event names its mode (``["messages", "updates"]`` is what the merge
    reads), and ``version="v2"`` stream parts are read too. Each event goes
    through ``append_langgraph_event``, into the run's state (``default_state``,
    else ``{}``, when it has none), or, with ``subgraph_node``, into the state
    ``get_tool_call_subgraph_state`` picks for its namespace, given these
    same arguments.

    Returns once the stream has ended, with the graph's interrupts. An
    exception of the graph propagates, after the events before it were
    merged. The graph is read by an asyncio task of its own, stopped however
    this returns: when the run is cancelled, LangGraph cancels the nodes
    still running (the module's documentation says why a task of its own).

    Raises ``UsageError`` at once in a Trio run: LangGraph needs asyncio.
    """
    _require_asyncio()
    start = dict(default_state) if default_state is not None else {}
    interrupts: dict[Any, Interrupt] = {}
    async with _iterated_apart(events) as received:
        async for event in received:
            namespace, mode, payload = _event_parts(event)
            _collect_interrupts(event, mode, payload, interrupts)
            if subgraph_node is None:
                if controller.state is None:
                    controller.state = start
                state = controller.state
            else:
                state = get_tool_call_subgraph_state(
                    controller,
                    namespace,
                    subgraph_node,
                    start,
                    artifact_field_name=artifact_field_name,
                    tool_name=tool_name,
                )
            append_langgraph_event(state, namespace, mode, payload)
            # Bound what a fast graph can queue ahead of a slow client.
            await controller.drain()
    return LangGraphOutcome(tuple(interrupts.values()))


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = "no event loop"
        raise UsageError(_ON_TRIO.format(library=library)) from None


def _event_parts(event: Any) -> tuple[tuple[str, ...], str, Any]:
    """``(namespace, mode, payload)`` of an event of ``astream`` with a list of modes."""
    if isinstance(event, Mapping) and isinstance(event.get("type"), str) and "data" in event:
        return tuple(event.get("ns", ())), event["type"], event["data"]
    if isinstance(event, tuple):
        if len(event) == 3 and isinstance(event[0], tuple) and isinstance(event[1], str):
            return event[0], event[1], event[2]
        if len(event) == 2 and isinstance(event[0], str):
            return (), event[0], event[1]
    raise UsageError(
        f"a LangGraph stream event that names no mode: {event!r:.200}. Call astream with "
        'stream_mode as a list, such as stream_mode=["messages", "updates"]'
    )


def _collect_interrupts(
    event: Any, mode: str, payload: Any, interrupts: dict[Any, Interrupt]
) -> None:
    """Add the interrupts an ``updates`` or ``values`` event reports, by id."""
    found: Any = ()
    if mode in ("updates", "values") and isinstance(payload, Mapping):
        found = payload.get("__interrupt__") or ()
    if mode == "values" and isinstance(event, Mapping):
        found = (*found, *(event.get("interrupts") or ()))
    for interrupt in found:
        interrupts.setdefault(getattr(interrupt, "id", None) or id(interrupt), interrupt)


@asynccontextmanager
async def _iterated_apart(events: AsyncIterable[Any]) -> AsyncIterator[AsyncIterable[Any]]:
    """The events of ``events``, read by an asyncio task of their own.

    LangGraph cleans up after asyncio's cancellation, which is delivered
    once. An AnyIO cancel scope, such as a run's, cancels its tasks again at
    every await until they leave it, which cuts LangGraph's clean-up short
    and leaves the graph's nodes running after the run. Here the graph runs
    in a task outside the run's scopes, cancelled once on the way out and
    awaited (shielded, within a bound) until the graph has stopped.
    An exception of the graph is raised here once its events are read.
    """
    send, receive = anyio.create_memory_object_stream[Any]()
    reader = asyncio.get_running_loop().create_task(_read_into(events, send))
    try:
        with receive:
            yield receive
    finally:
        reader.cancel()  # nothing, if it is done
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            await asyncio.wait([reader])
        failure = reader.exception() if reader.done() and not reader.cancelled() else None
    if failure is not None:
        raise failure


async def _read_into(events: AsyncIterable[Any], send: MemoryObjectSendStream[Any]) -> None:
    iterator = aiter(events)
    with send:
        try:
            async for event in iterator:
                await send.send(event)
        finally:
            # Cancelled while waiting to hand on an event, the graph is
            # paused at a yield: closing it is what stops its tasks.
            for closable in (iterator, events) if iterator is not events else (events,):
                aclose = getattr(closable, "aclose", None)
                if aclose is not None:
                    await aclose()
