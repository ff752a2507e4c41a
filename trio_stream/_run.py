"""Runs: a callback, the nursery it runs in, and the chunks it produces.

A run is started by entering it::

    async with create_run(callback) as chunks:
        async for chunk in chunks:
            ...

Entering opens a task group that lives exactly as long as the ``async with``
block. Inside it, a supervisor task opens the run's own nursery and calls
``callback(controller)`` in that nursery's body (a task of its own would be
one more per run, for nothing: the body is cancelled with the nursery, and
its failure cancels the nursery's tasks, as a task's would); everything the
callback starts runs in that nursery or in nurseries nested inside it.
Leaving the block, however it is left, cancels whatever is still running and
waits for it, so no task of the run outlives the block.

Why two nurseries: if a task of the run fails, its siblings must be
cancelled, but the consumer (the body of the ``async with``) must not be:
it still has to deliver the error chunk. The run's nursery is therefore
inside the supervisor task, which turns a failure into error chunks, ends the
stream, and keeps the exception until the consumer leaves the block, where it
is raised.

Why not an async generator: an ``async for`` over a generator that owns a
nursery would yield to its caller from inside that nursery, which breaks
cancellation (PEP 789). The ``async with`` form keeps the nursery and the
consumer in one well-nested block, as ``trio.as_safe_channel`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from ._buffer import ChunkBuffer
from ._controller import RunController
from ._errors import HIDDEN_RUN_ERROR, UsageError, collapse, leaf_exceptions, wire_message
from ._json import normalized
from ._scope import Scope
from ._state import StateTree
from ._taskgroups import TaskGroup, create_task_group, runs_no_task
from ._telemetry import RunOutcome, RunTelemetry, log_extra
from .chunks import Chunk, ErrorChunk

__all__ = [
    "DEFAULT_HIGH_WATER_MARK",
    "DEFAULT_HIGH_WATER_SIZE",
    "ChunkStream",
    "Run",
    "RunCallback",
    "create_run",
]

logger = logging.getLogger("trio_stream")

RunCallback = Callable[[RunController], Coroutine[Any, Any, Any]]

DEFAULT_HIGH_WATER_MARK = 256
"""Chunks a run may queue before its asynchronous producers wait for the consumer."""

DEFAULT_HIGH_WATER_SIZE = 1 << 20
"""Characters of text, reasoning, arguments and files a run may queue before its
asynchronous producers wait: what bounds memory when chunks are large."""

_ITERATE_UNENTERED = (
    "a run must be entered before it is iterated: "
    "`async with create_run(callback) as chunks: async for chunk in chunks: ...`. "
    "The `async with` block owns the nursery the run's tasks live in, "
    "so none of them can outlive it."
)


class ChunkStream:
    """The chunks of a running run, in order; iterate it with ``async for``."""

    __slots__ = ("_buffer", "expose_errors")

    def __init__(self, buffer: ChunkBuffer, expose_errors: bool = True) -> None:
        self._buffer = buffer
        self.expose_errors = expose_errors
        """Whether the run puts exception messages on the wire; see ``create_run``."""

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Chunk:
        try:
            return await self._buffer.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def receive(self) -> Chunk:
        """The next chunk; raises ``EndOfStream`` after the last one."""
        return await self._buffer.receive()

    @property
    def queued(self) -> int:
        """How many chunks are ready to be received without waiting."""
        return len(self._buffer)

    async def receive_batch(self, limit: int = 1024) -> list[Chunk]:
        """All chunks queued now (at most ``limit``), waiting for one if none is.

        Raises ``EndOfStream`` after the last one. A consumer that writes to a
        network uses this to send whatever accumulated during its previous
        write in one go, without ever holding back a chunk that is ready. The
        limit bounds one write's size and how long encoding it holds the loop.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        return await self._buffer.receive_batch(limit)


class Run:
    """A run not started yet. Start it with ``async with``; see ``create_run``."""

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_callback",
        "_entered",
        "_expose_errors",
        "_failure",
        "_high_water_mark",
        "_high_water_size",
        "_initial_state",
        "_root",
        "_task_group",
        "_telemetry",
    )

    def __init__(
        self,
        callback: RunCallback,
        state: Any,
        high_water_mark: int,
        high_water_size: int,
        expose_errors: bool,
    ) -> None:
        self._callback = callback
        self._expose_errors = expose_errors
        self._initial_state = state
        self._high_water_mark = high_water_mark
        self._high_water_size = high_water_size
        self._entered = False
        self._buffer: ChunkBuffer | None = None
        self._task_group: TaskGroup | None = None
        self._root: Scope | None = None
        self._failure: BaseException | None = None
        self._telemetry = RunTelemetry(callback)

    @property
    def run_id(self) -> str:
        """This run's id (``run_…``), which its log lines and its span carry."""
        return self._telemetry.run_id

    if not TYPE_CHECKING:
        # Hidden from type checkers, so that they flag ``async for`` on a run.
        def __aiter__(self) -> NoReturn:
            raise UsageError(_ITERATE_UNENTERED)

    async def __aenter__(self) -> ChunkStream:
        if self._entered:
            raise UsageError("a run can be entered only once; call create_run() again")
        self._entered = True
        self._telemetry.entered()
        buffer = self._buffer = ChunkBuffer(self._high_water_mark, self._high_water_size)
        task_group = create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._supervise, buffer, name=f"trio_stream run {self._callback!r}")
        return ChunkStream(buffer, self._expose_errors)

    async def _supervise(self, buffer: ChunkBuffer) -> None:
        telemetry = self._telemetry
        current = telemetry.activate()  # the run's tasks, started from here, inherit its span
        try:
            async with create_task_group() as task_group:
                self._root = Scope(task_group, None, telemetry.trace_context)
                state = StateTree(self._initial_state, buffer.add_operations)
                controller = RunController(
                    buffer,
                    state,
                    self._root,
                    None,
                    expose_errors=self._expose_errors,
                    telemetry=telemetry,
                )
                await self._callback(controller)
                if runs_no_task(task_group):
                    # Nothing of the run is left to add a chunk. Ending the
                    # stream now, in the step that queued the last chunk,
                    # rather than after the nursery's closing checkpoint, lets
                    # the consumer read that chunk knowing it is the last (a
                    # response sends it with the format's ending, one write
                    # less).
                    buffer.close()
        except Exception as exc:
            # Only a group of Exceptions lands here: a failure that arrives
            # together with a cancellation is a BaseExceptionGroup and
            # propagates as it is, since nobody is left to read the chunk.
            for leaf in leaf_exceptions(exc):
                error = wire_message(leaf, expose=self._expose_errors, hidden=HIDDEN_RUN_ERROR)
                buffer.put(ErrorChunk(error), len(error))
                telemetry.error_chunk("run_failure", None if self._expose_errors else error)
            self._failure = collapse(exc)
        finally:
            buffer.close()
            telemetry.deactivate(current)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group, buffer = self._task_group, self._buffer
        if task_group is None or buffer is None:
            raise UsageError("the run was not entered, or has already been exited")
        self._task_group = None
        left_early = not buffer.closed
        if left_early:
            # The consumer left before the end: stop the run.
            if self._root is not None:
                self._root.cancel()
            task_group.cancel_scope.cancel()
        # The body's own exception is not handed to the task group: it would
        # come back wrapped in a group. It propagates by itself below.
        failure: BaseException | None = None
        try:
            await task_group.__aexit__(None, None, None)
        except BaseException as raised:
            failure = raised
        stored, self._failure = self._failure, None
        cancelled = anyio.get_cancelled_exc_class()
        failure = _real_failure(failure, stored, cancelled)
        self._telemetry.exited(
            self._outcome(left_early, failure, cancelled),
            failure if isinstance(failure, Exception) else None,
        )
        if failure is None:
            return
        if exc is not None and not isinstance(exc, cancelled):
            # The consumer's own error wins; the run's must not vanish silently.
            if not isinstance(failure, cancelled):
                logger.error(
                    "run %r failed while its consumer was raising %r",
                    self._callback,
                    exc,
                    exc_info=failure,
                    extra=log_extra(run_id=self.run_id),
                )
            return
        # A failure of the run itself, or one that cancelled the consumer's
        # body (as a nursery would, the real error wins over the Cancelled).
        try:
            raise failure
        finally:
            del failure  # no reference cycle through this frame

    def _outcome(
        self, left_early: bool, failure: BaseException | None, cancelled: type[BaseException]
    ) -> RunOutcome:
        if failure is not None and not isinstance(failure, cancelled):
            return "failed"
        if left_early or failure is not None:
            return "cancelled"
        if self._root is not None and self._root.signal.is_set():
            return "cancelled"  # controller.cancel(): the run ended early, without an error
        return "done"


def _real_failure(
    raised: BaseException | None,
    stored: BaseException | None,
    cancelled: type[BaseException],
) -> BaseException | None:
    """What leaving a run raises, given what its task group raised and what the
    supervisor stored.

    A run cancelled from outside (the client left) whose task fails in its
    clean-up ends with the failure and cancellations together. The failure
    wins, as itself: on Trio it arrives grouped with the ``Cancelled``s, which
    are dropped here; on asyncio the task group raises only a
    ``CancelledError`` and the failure is the one the supervisor stored.
    """
    if raised is None:
        return stored
    if isinstance(raised, BaseExceptionGroup):
        _, rest = raised.split(cancelled)
        raised = collapse(rest if rest is not None else raised)
    if isinstance(raised, cancelled) and stored is not None:
        return stored
    return raised


def create_run(
    callback: RunCallback,
    *,
    state: Any = None,
    high_water_mark: int = DEFAULT_HIGH_WATER_MARK,
    high_water_size: int = DEFAULT_HIGH_WATER_SIZE,
    expose_errors: bool = True,
) -> Run:
    """Prepare a run of ``callback``; enter it with ``async with`` to start it.

    ``callback`` is an async function taking a ``RunController``.
    ``state`` is the initial state the controller's ``state`` proxy edits; the
    run works on a JSON copy of it, and the original is never modified.
    ``high_water_mark`` bounds how many chunks asynchronous producers may
    queue ahead of a slow consumer, and ``high_water_size`` how many
    characters of text, reasoning, tool arguments and file data.

    ``expose_errors=False`` keeps exception messages off the wire: the error
    chunk of a failure (and the result of a tool failing with
    ``errors_as_result``) then says only that something failed, with a
    reference, and the exception carries the same reference in a note, so the
    traceback the server logs can be found from what the user saw. Use it
    wherever clients are not trusted with the server's internals (see the
    security page of the docs). Messages sent with ``add_error`` are the
    application's own and go out as they are.

    If the callback or any task of the run raises, the others are cancelled,
    an error chunk per exception is delivered after every chunk produced
    before it, the stream ends, and the exception is raised when the
    ``async with`` block exits (one failure as itself, several as an
    exception group).
    """
    if not callable(callback):
        raise TypeError(f"create_run expects an async callable, not {type(callback).__name__}")
    if high_water_mark < 1:
        raise ValueError(f"high_water_mark must be at least 1, not {high_water_mark}")
    if high_water_size < 1:
        raise ValueError(f"high_water_size must be at least 1, not {high_water_size}")
    state = normalized(state, "create_run's state")
    return Run(callback, state, high_water_mark, high_water_size, expose_errors)
