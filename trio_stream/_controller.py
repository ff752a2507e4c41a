"""Controllers: what a run's callback, its tools and its sub-streams write through.

``RunController`` carries assistant-stream's API unchanged (same names,
same arguments, same synchronous appends) plus what Trio makes possible:
tasks in the run's nursery (``start_soon``, ``start``), tool calls that run as
tasks of their own (``spawn_tool_call``), and sub-streams with child nurseries
(``open_substream``) nested to any depth. Every controller of a run writes to
the same queue, so each producer's chunks keep their order.
"""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import AsyncIterable, Callable, Coroutine, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVarTuple

from . import _ids
from ._buffer import ChunkBuffer, chunk_size
from ._checks import (
    ToolCallLedger,
    check_chunk,
    check_data_name,
    check_step_finish,
    require_optional_str,
    require_str,
)
from ._errors import HIDDEN_TOOL_ERROR, StreamClosedError, wire_message
from ._flusher import Flusher
from ._json import encode_checked, normalized
from ._remote import RemoteOutcome, relay_remote_run
from ._scope import CancellationSignal, Scope
from ._state import Key, StateProxy, StateTree
from ._taskgroups import create_task_group, exit_task_group
from ._telemetry import RunTelemetry, SubstreamTelemetry, ToolTelemetry, error_reference, log_extra
from .chunks import (
    CHUNK_TYPES,
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    FinishReason,
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
)

if TYPE_CHECKING:
    import httpx
    from opentelemetry.context import Context

__all__ = ["RunController", "Substream", "ToolCallController"]

logger = logging.getLogger("trio_stream")

PosArgs = TypeVarTuple("PosArgs")
ToolFunction = Callable[["ToolCallController"], Coroutine[Any, Any, Any]]


class RunController:
    """Writes chunks into a run and runs tasks in one of its nurseries.

    The callback given to ``create_run`` receives the root controller.
    ``with_parent_id`` gives a view that tags chunks with another parent id
    and shares this controller's nursery; ``open_substream`` gives a child
    controller with a nursery of its own.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_expose_errors",
        "_parent_id",
        "_scope",
        "_state",
        "_telemetry",
        "_tool_calls",
    )

    def __init__(
        self,
        buffer: ChunkBuffer,
        state: StateTree,
        scope: Scope,
        parent_id: str | None,
        *,
        telemetry: RunTelemetry,
        tool_calls: ToolCallLedger | None = None,
        expose_errors: bool = True,
    ) -> None:
        self._buffer = buffer
        self._state = state
        self._scope = scope
        self._parent_id = parent_id
        self._telemetry = telemetry
        self._tool_calls = ToolCallLedger() if tool_calls is None else tool_calls
        self._expose_errors = expose_errors

    @property
    def run_id(self) -> str:
        """The id of the run this controller writes into, as its log lines and spans name it."""
        return self._telemetry.run_id

    @property
    def parent_id(self) -> str | None:
        """The parent id this controller puts on the chunks that carry one."""
        return self._parent_id

    def with_parent_id(self, parent_id: str) -> RunController:
        """A controller for the same nursery whose chunks carry ``parent_id``."""
        require_str(parent_id, "with_parent_id's parent_id")
        return RunController(
            self._buffer,
            self._state,
            self._scope,
            parent_id,
            telemetry=self._telemetry,
            tool_calls=self._tool_calls,
            expose_errors=self._expose_errors,
        )

    # -- message content -------------------------------------------------

    def append_text(self, text_delta: str) -> None:
        """Append a piece of answer text."""
        require_str(text_delta, "append_text's text_delta")
        self._buffer.put(TextDeltaChunk(text_delta, self._parent_id), len(text_delta))

    def append_reasoning(self, reasoning_delta: str) -> None:
        """Append a piece of reasoning."""
        require_str(reasoning_delta, "append_reasoning's reasoning_delta")
        self._buffer.put(
            ReasoningDeltaChunk(reasoning_delta, self._parent_id), len(reasoning_delta)
        )

    def add_reasoning_part(self, unstable_summary: str) -> None:
        """Open a reasoning part carrying ``unstable_summary``, a summary the app wrote.

        The summary is shown in place of the part's reasoning (a title such
        as "Planning the search"); the reasoning this controller appends next
        goes into the part. It opens a part even if one is open, and even if
        no reasoning follows.
        """
        require_str(unstable_summary, "add_reasoning_part's unstable_summary")
        self._buffer.put(ReasoningPartStartChunk(unstable_summary, self._parent_id))

    def add_data(self, data: Any, *, name: str | None = None) -> None:
        """Send a JSON value to the front-end as a data chunk.

        With a ``name``, the value becomes a named data part of the message
        (``data-<name>`` for the AI SDK), placed among its other parts. The
        name ``update-state`` is the state's own there, and refused.

        The value is sent as it is at this call: the chunk holds its JSON form,
        so changing the object afterwards (a progress dict updated in a loop)
        does not change what is sent, even while the chunk waits in the queue.
        """
        data = normalized(data, "add_data's data")
        check_data_name(name, "add_data's name")
        self._buffer.put(DataChunk(data, name, self._parent_id))

    def add_error(self, error: str) -> None:
        """Send an error message; the run goes on (see the docs on errors)."""
        require_str(error, "add_error's error")
        self._buffer.put(ErrorChunk(error), len(error))
        self._telemetry.error_chunk("add_error")

    def add_source(self, id: str, url: str, title: str | None = None) -> None:
        """Cite a URL source."""
        require_str(id, "add_source's id")
        require_str(url, "add_source's url")
        require_optional_str(title, "add_source's title")
        self._buffer.put(SourceChunk(id=id, url=url, title=title, parent_id=self._parent_id))

    def add_file(self, data: str | bytes, mime_type: str) -> None:
        """Send a file: ``data`` is base64 text, or raw bytes to be encoded."""
        if isinstance(data, bytes | bytearray | memoryview):
            data = base64.b64encode(data).decode("ascii")
        require_str(data, "add_file's data")
        require_str(mime_type, "add_file's mime_type")
        self._buffer.put(FileChunk(data, mime_type, self._parent_id), len(data))

    def add_annotations(self, annotations: Sequence[Any]) -> None:
        """Attach message annotations (a list of JSON values), as they are at this call."""
        if isinstance(annotations, str | bytes) or not isinstance(annotations, Sequence):
            raise TypeError(f"add_annotations expects a list, not {type(annotations).__name__}")
        items = tuple(normalized(list(annotations), "add_annotations's annotations"))
        self._buffer.put(AnnotationsChunk(items))

    def add_step_start(self, message_id: str | None = None) -> None:
        """Start a model step; ``message_id`` defaults to a new random id."""
        if message_id is None:
            message_id = _ids.message_id()
        require_str(message_id, "add_step_start's message_id")
        self._buffer.put(StepStartChunk(message_id))

    def add_step_finish(
        self,
        finish_reason: FinishReason,
        input_tokens: int = 0,
        output_tokens: int = 0,
        is_continued: bool = False,
    ) -> None:
        """Finish a model step and report its token usage."""
        check_step_finish(finish_reason, input_tokens, output_tokens)
        self._buffer.put(
            StepFinishChunk(finish_reason, input_tokens, output_tokens, bool(is_continued))
        )

    # -- tool calls ------------------------------------------------------

    async def add_tool_call(
        self, tool_name: str, tool_call_id: str | None = None
    ) -> ToolCallController:
        """Open a tool call and return its controller.

        Waits first if the run's queue is above its high-water mark.
        """
        await self._buffer.wait_writable()
        return ToolCallController(self, tool_name, tool_call_id)

    def spawn_tool_call(
        self,
        tool_name: str,
        tool: ToolFunction,
        *,
        args: Any = None,
        tool_call_id: str | None = None,
        errors_as_result: bool = False,
    ) -> ToolCallController:
        """Open a tool call and run ``tool(tool_call_controller)`` as a task.

        ``args``, when given, is sent at once as the call's JSON arguments
        text, and ``tool`` finds it as ``tool_call_controller.args``. The task
        runs in this controller's nursery, in parallel with everything else;
        whatever ``tool`` returns becomes the call's result, unless it already
        set a response or closed the call.

        If ``tool`` raises, the run fails as with any task, unless
        ``errors_as_result`` is true: then the exception's message becomes the
        call's result with ``is_error`` set (a generic message with a reference,
        if the run hides its errors), it is logged, and the run goes on.
        Returns the tool call's controller; its ``response`` holds the result
        once the task is done.
        """
        arguments = None
        if args is not None:
            arguments = encode_checked(args, f"the args of tool call {tool_name!r}").decode()
        call = ToolCallController(self, tool_name, tool_call_id)
        if arguments is not None:
            call.args = args
            call.append_args_text(arguments)
        self._scope.task_group.start_soon(
            _run_tool,
            call,
            tool,
            errors_as_result,
            name=f"trio_stream tool {tool_name} {call.tool_call_id}",
        )
        return call

    def spawn_remote_tool_call(
        self,
        tool_name: str,
        url: str,
        *,
        args: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        result: Callable[[RemoteOutcome], Any] | None = None,
        errors_as_result: bool = False,
        tool_call_id: str | None = None,
        silence_timeout: float | None = None,
        format: str | None = None,
        resume_url: str | None = None,
    ) -> ToolCallController:
        """Open a tool call whose work is another agent's run, served at ``url``.

        Like ``spawn_tool_call``, with a task that sends ``json`` (``args`` if
        not given) to ``url`` and relays the remote run's chunks as they
        arrive, nested under this call (see ``trio_stream._remote``); its text
        becomes the result, or what ``result(outcome)`` returns. Cancelling
        this run closes the request, which cancels the remote run. A remote
        that fails (an error chunk, a refused request, a broken or
        undecodable body, silence past ``silence_timeout`` seconds) raises
        ``RemoteAgentError`` naming the URL; with ``errors_as_result`` it
        becomes the call's error result instead. ``headers``, ``http_client``,
        ``format`` and ``resume_url`` (where a resumable remote's stream is
        read again if the connection breaks) are as for
        ``trio_stream.client.stream``.
        """
        body = args if json is None else json

        async def remote(call: ToolCallController) -> Any:
            return await relay_remote_run(
                call,
                url,
                json=body,
                headers=headers,
                http_client=http_client,
                result=result,
                silence_timeout=silence_timeout,
                format=format,
                resume_url=resume_url,
            )

        return self.spawn_tool_call(
            tool_name,
            remote,
            args=args,
            tool_call_id=tool_call_id,
            errors_as_result=errors_as_result,
        )

    def add_tool_result(
        self,
        tool_call_id: str,
        result: Any,
        *,
        artifact: Any = None,
        is_error: bool = False,
    ) -> None:
        """Send the result of a call of this run whose controller is not at hand.

        Raises ``ToolCallError`` if the run started no call ``tool_call_id``,
        and ``StreamClosedError`` if the call has its result already. The
        result is sent as it is at this call (its JSON form).
        """
        require_str(tool_call_id, "add_tool_result's tool_call_id")
        chunk = ToolResultChunk(
            tool_call_id,
            normalized(result, f"tool-result of {tool_call_id}"),
            normalized(artifact, f"tool-result artifact of {tool_call_id}"),
            bool(is_error),
        )
        self._tool_calls.finish(tool_call_id, "add_tool_result")
        self._buffer.put(chunk)
        self._telemetry.tool_answered(tool_call_id, chunk.is_error)

    # -- streams, tasks and nurseries ------------------------------------

    def add_stream(self, stream: AsyncIterable[Chunk]) -> None:
        """Copy every chunk of ``stream`` into the run, from a task of this nursery.

        The copy waits while the run's queue is above its high-water mark, so
        a fast stream cannot outgrow a slow consumer. Every chunk is checked
        as the controller call that makes it would check it (a result for a
        tool call the run never started fails the run, say).
        """
        if not isinstance(stream, AsyncIterable):
            raise TypeError(f"add_stream expects an async iterable, not {type(stream).__name__}")
        self._scope.task_group.start_soon(
            _copy_stream, self, stream, name="trio_stream add_stream"
        )

    def start_soon(
        self,
        func: Callable[[*PosArgs], Coroutine[Any, Any, Any]],
        *args: *PosArgs,
        name: object = None,
    ) -> None:
        """Run ``func(*args)`` as a task in this controller's nursery."""
        self._scope.task_group.start_soon(func, *args, name=name)

    async def start(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object, name: object = None
    ) -> Any:
        """Start ``func(*args, task_status=...)`` in this nursery and wait until it
        reports ready; returns the value it passes to ``task_status.started``."""
        return await self._scope.task_group.start(func, *args, name=name)

    async def _forward(self, chunk: Chunk, *, checkpoint: bool = True) -> None:
        """Put a chunk made elsewhere (a stream, a remote run), checked as a call's would be.

        Waits first while the queue is full, and is a checkpoint either way,
        unless ``checkpoint`` is false: then it waits only while the queue is
        full, for a producer that reaches checkpoints of its own.
        """
        checked = check_chunk(chunk, self._tool_calls)
        if checked is None:
            return
        buffer = self._buffer
        if checkpoint or buffer.full:
            await buffer.wait_writable()
        buffer.put(checked, chunk_size(checked))

    def open_substream(self, parent_id: str | None = None) -> Substream:
        """A child controller with its own nursery, as an async context manager.

        ``async with controller.open_substream("p1") as sub:`` — chunks written
        through ``sub`` carry ``parent_id`` (this controller's when omitted);
        tasks started through it run in the child nursery, and leaving the
        block waits for them. Cancelling this controller's scope cancels the
        sub-stream and everything below it.
        """
        if parent_id is not None:
            require_str(parent_id, "open_substream's parent_id")
        return Substream(self, parent_id if parent_id is not None else self._parent_id)

    async def drain(self) -> None:
        """Wait until the run's queue is below its high-water mark.

        A producer that appends synchronously in a loop and awaits this
        between items gets the same back-pressure as ``add_stream``.
        """
        await self._buffer.wait_writable()

    # -- state -----------------------------------------------------------

    @property
    def state(self) -> Any:
        """The run's state: a ``StateProxy`` for a dict or list, else the value."""
        value = self._state.value
        if isinstance(value, dict | list):
            return StateProxy(self._state)
        return value

    @state.setter
    def state(self, value: Any) -> None:
        self._state.assign([], value)

    def append_state_text(self, path: Sequence[Key], text_delta: str) -> None:
        """Append ``text_delta`` to the string at ``path`` (an ``append-text`` operation)."""
        self._state.append_text(path, text_delta)

    def flush(self) -> None:
        """Emit pending state operations now instead of with the next chunk."""
        self._buffer.flush()

    # -- worker threads ----------------------------------------------------------

    def open_flusher(self) -> Flusher:
        """A ``Flusher``: this controller's writes, for worker threads.

        ``with controller.open_flusher() as flusher:`` on the event loop, then
        hand ``flusher`` to threads, which append text, reasoning and state
        through it without waiting for the loop. See ``trio_stream._flusher``.
        """
        return Flusher(self)

    # -- cancellation ----------------------------------------------------

    @property
    def is_cancelled(self) -> bool:
        """Whether this controller's scope (or one enclosing it) was cancelled."""
        return self._scope.signal.is_set()

    @property
    def cancelled_event(self) -> CancellationSignal:
        """A signal to poll (``is_set()``) or wait on (``await wait()``)."""
        return self._scope.signal

    def cancel(self) -> None:
        """Cancel this controller's scope: the whole run for the root controller.

        Every task of the scope and of the sub-streams nested in it is
        cancelled; the run then ends normally, with no error chunk.
        """
        self._scope.cancel()


class ToolCallController:
    """One tool call: stream its arguments, then set its response.

    ``close()`` ends the arguments without a response, when the response
    comes later or from elsewhere (``add_tool_result``, after a user's
    approval): the front-end then shows the call with its final arguments.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_owner",
        "_response",
        "_telemetry",
        "args",
        "tool_call_id",
        "tool_name",
    )

    def __init__(self, owner: RunController, tool_name: str, tool_call_id: str | None) -> None:
        require_str(tool_name, "tool_name")
        if tool_call_id is None:
            tool_call_id = _ids.tool_call_id()
        require_str(tool_call_id, "tool_call_id")
        self._owner = owner
        self.tool_name = tool_name
        self.tool_call_id = tool_call_id
        self.args: Any = None
        """The arguments given to ``spawn_tool_call``, for the tool function to read."""
        self._closed = False
        self._response: ToolResultChunk | None = None
        owner._tool_calls.begin(tool_call_id)
        owner._buffer.put(ToolCallBeginChunk(tool_call_id, tool_name, owner._parent_id))
        self._telemetry: ToolTelemetry | None = owner._telemetry.tool_opened(
            tool_name, tool_call_id, owner._scope.trace_context
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ToolCallController {self.tool_name!r} {self.tool_call_id} {state}>"

    @property
    def parent_id(self) -> str | None:
        """The parent id of the tool-call-begin chunk."""
        return self._owner._parent_id

    @property
    def closed(self) -> bool:
        """Whether the call was closed, or has its result (from here or ``add_tool_result``)."""
        return self._closed or not self._owner._tool_calls.is_open(self.tool_call_id)

    @property
    def response(self) -> ToolResultChunk | None:
        """The result set with ``set_response``, holding the objects given to it."""
        return self._response

    def _check_not_closed(self, what: str) -> None:
        if self._closed:
            raise StreamClosedError(
                f"{what}: tool call {self.tool_name!r} ({self.tool_call_id}) is already closed"
            )

    def append_args_text(self, args_text_delta: str) -> None:
        """Append a piece of the call's JSON arguments text."""
        self._check_not_closed("append_args_text")
        self._owner._tool_calls.require_streaming(self.tool_call_id, "append_args_text")
        require_str(args_text_delta, "append_args_text's args_text_delta")
        self._owner._buffer.put(
            ToolCallDeltaChunk(self.tool_call_id, args_text_delta), len(args_text_delta)
        )

    def set_response(self, result: Any, *, artifact: Any = None, is_error: bool = False) -> None:
        """Send the call's result and close it.

        The result is sent as it is at this call: the chunk queued holds its
        JSON form. ``response`` keeps the objects given here, for the app.
        """
        self._check_not_closed("set_response")
        self._owner._tool_calls.require_open(self.tool_call_id, "set_response")
        what = f"tool-result of {self.tool_name!r} ({self.tool_call_id})"
        sent = ToolResultChunk(
            self.tool_call_id,
            normalized(result, what),
            normalized(artifact, f"{what} artifact"),
            bool(is_error),
        )
        self._owner._tool_calls.finish(self.tool_call_id, "set_response")
        self._owner._buffer.put(sent)
        self._response = ToolResultChunk(self.tool_call_id, result, artifact, bool(is_error))
        self._closed = True
        if self._telemetry is not None:
            self._telemetry.ended("error_result" if is_error else "result")

    def set_result(self, result: Any) -> None:
        """Deprecated spelling of ``set_response``."""
        warnings.warn(
            "set_result() is deprecated; use set_response()", DeprecationWarning, stacklevel=2
        )
        self.set_response(result)

    def close(self) -> None:
        """End the call's arguments and close this controller, without a result.

        A ``tool-call-args-text-finish`` chunk says the arguments are
        complete, unless they ended already (with a response, or an earlier
        ``close``). The result can still come later, from the run's
        ``add_tool_result``. Closing twice is harmless, and so is closing
        after the run ended.
        """
        if self._closed:
            return
        self._closed = True
        owner = self._owner
        if owner._buffer.closed:
            return
        if owner._tool_calls.finish_arguments(self.tool_call_id, "close"):
            owner._buffer.put(ToolCallArgsTextFinishChunk(self.tool_call_id))

    async def _relay(self, chunk: Chunk, *, checkpoint: bool = False) -> None:
        """Put a chunk a remote run made, in this call's run (see ``trio_stream._remote``).

        Waits only while the run's queue is full, and is a checkpoint only if
        asked. The relay reads the remote body from the network, a checkpoint
        per read, and a read gives many chunks at once: a checkpoint per chunk
        on top would cost a task switch per chunk, most of what relaying
        costs, and hand the response one chunk per write.
        """
        await self._owner._forward(chunk, checkpoint=checkpoint)

    def open_substream(self, parent_id: str | None = None) -> Substream:
        """A child controller whose chunks carry this call's id as parent id.

        See ``RunController.open_substream``.
        """
        if parent_id is not None:
            require_str(parent_id, "open_substream's parent_id")
        within = None if self._telemetry is None else self._telemetry.trace_context
        return Substream(
            self._owner, parent_id if parent_id is not None else self.tool_call_id, within
        )

    @property
    def is_cancelled(self) -> bool:
        """Whether the scope the call belongs to was cancelled."""
        return self._owner.is_cancelled

    @property
    def cancelled_event(self) -> CancellationSignal:
        """The cancellation signal of the scope the call belongs to."""
        return self._owner.cancelled_event


class Substream:
    """``async with`` gives a child ``RunController`` with its own nursery.

    Leaving the block waits for the child's tasks. If one fails, the others
    are cancelled and the failure propagates from the block: a single
    exception as itself, several as an exception group.
    """

    __slots__ = ("_owner", "_parent_id", "_scope", "_telemetry", "_within")

    def __init__(
        self, owner: RunController, parent_id: str | None, within: Context | None = None
    ) -> None:
        self._owner = owner
        self._parent_id = parent_id
        self._within = within  # the span of the tool call that opened it, if any
        self._scope: Scope | None = None
        self._telemetry: SubstreamTelemetry | None = None

    async def __aenter__(self) -> RunController:
        if self._scope is not None:
            raise RuntimeError("a sub-stream can be entered only once")
        owner = self._owner
        await owner._buffer.wait_writable()
        task_group = create_task_group()
        await task_group.__aenter__()
        parent = self._within if self._within is not None else owner._scope.trace_context
        telemetry = self._telemetry = owner._telemetry.substream_opened(parent, self._parent_id)
        traced = parent if telemetry is None else telemetry.trace_context
        self._scope = Scope(task_group, owner._scope, traced)
        return RunController(
            owner._buffer,
            owner._state,
            self._scope,
            self._parent_id,
            telemetry=owner._telemetry,
            tool_calls=owner._tool_calls,
            expose_errors=owner._expose_errors,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        scope = self._scope
        assert scope is not None
        failure = exc
        try:
            return await exit_task_group(scope.task_group, exc_type, exc, traceback)
        except BaseException as raised:
            failure = raised
            raise
        finally:
            scope.detach()
            if self._telemetry is not None:
                self._telemetry.closed(failure)


async def _run_tool(call: ToolCallController, tool: ToolFunction, errors_as_result: bool) -> None:
    telemetry = call._telemetry
    if telemetry is None:
        await _call_tool(call, tool, errors_as_result)
        return
    with telemetry.current():
        try:
            await _call_tool(call, tool, errors_as_result)
        except Exception as exc:
            telemetry.ended("failed", exc)
            raise
        except BaseException:
            telemetry.ended("cancelled")
            raise


async def _call_tool(call: ToolCallController, tool: ToolFunction, errors_as_result: bool) -> None:
    try:
        result = await tool(call)
    except Exception as exc:
        if not errors_as_result or call.closed:
            raise
        message = wire_message(exc, expose=call._owner._expose_errors, hidden=HIDDEN_TOOL_ERROR)
        reference = error_reference(message) if not call._owner._expose_errors else None
        logger.warning(
            "tool call %r (%s) failed; reported as its result",
            call.tool_name,
            call.tool_call_id,
            exc_info=exc,
            extra=log_extra(
                tool_call_id=call.tool_call_id,
                tool_name=call.tool_name,
                error_reference=reference,
            ),
        )
        if call._telemetry is not None:
            call._telemetry.failed_as_result(exc, None if reference is None else message)
        call.set_response(message, is_error=True)
        return
    if not call.closed:
        call.set_response(result)


async def _copy_stream(controller: RunController, stream: AsyncIterable[Chunk]) -> None:
    iterator = aiter(stream)

    async def copy() -> None:
        async for item in iterator:
            if not isinstance(item, CHUNK_TYPES):
                raise TypeError(
                    f"add_stream: the stream yielded a {type(item).__name__}, not a chunk"
                )
            try:
                await controller._forward(item)
            except Exception as exc:
                exc.add_note(f"in a {item.type} chunk that the stream given to add_stream yielded")
                raise

    if hasattr(iterator, "aclose"):
        async with aclosing(iterator):  # type: ignore[type-var]
            await copy()
    else:
        await copy()
