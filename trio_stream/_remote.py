"""Remote agents as tool calls: another server's run, nested under one call of this run.

``RunController.spawn_remote_tool_call`` opens a tool call whose work is a
run served elsewhere: the request is sent from a task of this run, and the
remote run's chunks are relayed as they arrive, nested under the call (its
id is their parent id), to any depth, since a remote run may nest remote
runs of its own. When it ends, its answer (its text, by default) becomes
the call's result.

Structured concurrency crosses the wire. The request belongs to the call's
task: when this run is cancelled (its client left, a sibling failed, the run
ended early), the task is cancelled, which closes the HTTP request, and a
trio-stream server on the other end cancels its run and every tool in it.
And a failure comes back: an error chunk from the remote, a refused
request, a body that breaks off or does not decode, or silence past the
timeout fails the call with a ``RemoteAgentError`` naming the URL and what
happened, which becomes the call's error result with ``errors_as_result``,
and fails this run otherwise (error chunk first, as any failure).

What a relay forwards is what the remote run says, not how it was cut:
consecutive deltas of one part (text or reasoning of one parent, argument
text of one call) that arrive in one read are merged into one
(``merge_deltas`` of ``trio_stream.client.stream``), so that the work per
relayed chunk (renaming, checking, queueing, encoding it again one level
deeper) is paid once per run of text in a read rather than once per delta,
and the body sent on is a line per run rather than a line per delta. A
client sees the same text, in fewer pieces.

Relayed chunks are renamed so that two remotes cannot collide: every tool
call id and parent id of the remote run is prefixed with the local call's
id and a dot, and what the remote run had at its top level gets the local
call's id as parent id. Chunks that describe the remote message as a whole
are not relayed as such: its state updates become data parts named
``remote-state`` (the local run's state is the local run's), and its steps
and annotations are summed up in the outcome the result is made from.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import TrioStreamError
from ._state import StateTree
from ._telemetry import RemoteCall, remote_call
from .chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)

if TYPE_CHECKING:
    import httpx

    from ._controller import ToolCallController

__all__ = ["RemoteAgentError", "RemoteOutcome", "relay_remote_run"]

REMOTE_STATE = "remote-state"
"""The name of the data parts that carry a remote run's state operations."""

CHECKPOINT_EVERY = 256
"""Relayed chunks between two checkpoints of a relay, at most.

A relay puts chunks in the run without a task switch each (see
``ToolCallController._relay``); one network read can bring thousands (of
chunks that no merging joins: tool calls, data, deltas of parts taking
turns), and the run's other tasks (other relays, the response writing them
out) get in at least this often, about every millisecond.
"""


class RemoteAgentError(TrioStreamError, RuntimeError):
    """A remote agent's run failed, or could not be read to its end."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"the remote agent at {url} {message}")
        self.url = url


@dataclass
class RemoteOutcome:
    """What a remote run produced, for the app to make the call's result from."""

    url: str
    text: str = ""
    """Its answer: the text of its top level, joined."""
    state: Any = None
    """Its state, as its state updates built it."""
    data: list[Any] = field(default_factory=list)
    """The values of its unnamed data chunks at its top level."""
    annotations: list[Any] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    """Its last step's finish reason, if it reported steps."""


ResultOf = Callable[[RemoteOutcome], Any]


def _default_result(outcome: RemoteOutcome) -> Any:
    return outcome.text


class _Renamer:
    """Renames a remote run's ids into the local call's namespace."""

    __slots__ = ("_prefix", "local_id")

    def __init__(self, local_id: str) -> None:
        self.local_id = local_id
        self._prefix = local_id + "."

    def id(self, remote_id: str) -> str:
        return self._prefix + remote_id

    def parent(self, remote_parent: str | None) -> str:
        return self.local_id if remote_parent is None else self._prefix + remote_parent


def _relayed(
    chunk: Chunk, names: _Renamer, outcome: RemoteOutcome, answer: list[str]
) -> Chunk | None:
    """``chunk`` as the local run sends it, or ``None`` if only the outcome keeps it.

    The top level's text deltas go to ``answer``, joined into ``outcome.text``
    at the end: adding each to the text so far would copy all of it every
    time, a cost growing with the square of the answer's length.
    """
    match chunk:
        case TextDeltaChunk(text_delta=text, parent_id=parent):
            if parent is None:
                answer.append(text)
            return TextDeltaChunk(text, names.parent(parent))
        case ReasoningDeltaChunk(reasoning_delta=text, parent_id=parent):
            return ReasoningDeltaChunk(text, names.parent(parent))
        case ReasoningPartStartChunk(unstable_summary=summary, parent_id=parent):
            return ReasoningPartStartChunk(summary, names.parent(parent))
        case ToolCallBeginChunk():
            return ToolCallBeginChunk(
                names.id(chunk.tool_call_id), chunk.tool_name, names.parent(chunk.parent_id)
            )
        case ToolCallDeltaChunk():
            return ToolCallDeltaChunk(names.id(chunk.tool_call_id), chunk.args_text_delta)
        case ToolCallArgsTextFinishChunk():
            return ToolCallArgsTextFinishChunk(names.id(chunk.tool_call_id), chunk.args_text_delta)
        case ToolResultChunk():
            return ToolResultChunk(
                names.id(chunk.tool_call_id), chunk.result, chunk.artifact, chunk.is_error
            )
        case DataChunk(parent_id=parent):
            if chunk.name is None and parent is None:
                outcome.data.append(chunk.data)
            return DataChunk(chunk.data, chunk.name, names.parent(parent))
        case SourceChunk():
            return SourceChunk(
                chunk.id, chunk.url, chunk.source_type, chunk.title, names.parent(chunk.parent_id)
            )
        case FileChunk():
            return FileChunk(chunk.data, chunk.mime_type, names.parent(chunk.parent_id))
        case UpdateStateChunk():
            return DataChunk(list(chunk.operations), REMOTE_STATE, names.local_id)
        case AnnotationsChunk():
            outcome.annotations.extend(chunk.annotations)
        case StepFinishChunk():
            outcome.input_tokens += chunk.input_tokens
            outcome.output_tokens += chunk.output_tokens
            outcome.finish_reason = chunk.finish_reason
        case StepStartChunk() | ErrorChunk():
            pass
    return None


async def relay_remote_run(
    call: ToolCallController,
    url: str,
    *,
    json: Any,
    headers: Mapping[str, str] | None,
    http_client: httpx.AsyncClient | None,
    result: ResultOf | None,
    silence_timeout: float | None,
    format: str | None,
    resume_url: str | None,
) -> Any:
    """Send the request, relay the remote run under ``call``, and return the call's result."""
    from . import client

    names = _Renamer(call.tool_call_id)
    outcome = RemoteOutcome(url)
    answer: list[str] = []
    state = StateTree(None, lambda operations: None)
    # The span is current while the request is sent: its traceparent goes with it.
    with remote_call(url) as traced:
        try:
            async with client.stream(
                url,
                json=json,
                headers=headers,
                http_client=http_client,
                silence_timeout=silence_timeout,
                format=format,
                resume_url=resume_url,
                merge_deltas=True,
            ) as chunks:
                try:
                    await _relay_all(call, chunks, names, outcome, answer, state, url, traced)
                finally:
                    traced.read_as(chunks.format)
        except client.RemoteError as exc:
            traced.failed(exc.failure)
            raise RemoteAgentError(url, exc.reason) from exc
    outcome.text = "".join(answer)
    return (result or _default_result)(outcome)


async def _relay_all(
    call: ToolCallController,
    chunks: AsyncIterable[Chunk],
    names: _Renamer,
    outcome: RemoteOutcome,
    answer: list[str],
    state: StateTree,
    url: str,
    traced: RemoteCall,
) -> None:
    count = 0
    async for chunk in chunks:
        if isinstance(chunk, ErrorChunk):
            traced.error_chunk()
            raise RemoteAgentError(url, f"failed: {chunk.error}")
        try:
            if isinstance(chunk, UpdateStateChunk):
                state.apply(list(chunk.operations))
                outcome.state = state.value
            relayed = _relayed(chunk, names, outcome, answer)
            if relayed is not None:
                count += 1
                await call._relay(relayed, checkpoint=count % CHECKPOINT_EVERY == 0)
        except (TrioStreamError, ValueError, TypeError, KeyError) as exc:
            traced.failed("invalid")
            raise RemoteAgentError(url, f"sent a run that is not valid: {exc}") from exc
