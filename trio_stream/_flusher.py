"""Writing into a run from worker threads: ``Flusher``.

A run's controllers belong to its event loop. A worker thread (one started
with ``anyio.to_thread.run_sync``, say, to drive a blocking model client)
could call them through ``anyio.from_thread.run_sync``, but that waits for a
round trip to the loop at every token. A flusher lets the thread write text,
reasoning and state without waiting: its writes collect in a batch, under a
lock, and the event loop takes the whole batch in at its next turn. The
thread never touches the run's queue; the loop does, as with any write.

The order is kept, and stated:

- writes reach the run in the order they were made: one thread's in its
  order, several threads' in the order their calls took the flusher's lock;
- everything the threads wrote goes into the run before the next chunk or
  state write the event loop makes (the run's buffer and state take it in
  first, see ``trio_stream._buffer``), so a write a thread made before the
  loop learnt of it comes first;
- ``flush()`` in a thread returns once what was written before it is in the
  run; leaving the flusher's block takes in what is left, then refuses more.

Values are checked in the thread that writes them, as the controller would
check them, so a mistake raises where it was made; a value is taken in its
JSON form there too. What the run refuses when the batch goes in (the run
has ended, a state path that does not exist) is kept, raised by the block's
end on the event loop, and by the thread's next call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._checks import require_str
from ._errors import StreamClosedError, UsageError
from ._json import normalized
from ._telemetry import log_extra

if TYPE_CHECKING:
    from ._controller import RunController
    from ._state import Key

__all__ = ["Flusher"]

logger = logging.getLogger("trio_stream")

Write = Callable[["RunController"], None]


class Flusher:
    """A run's controller for worker threads; get one with ``controller.open_flusher()``.

    Use it as a context manager on the event loop, and hand it to the
    threads inside the block::

        with controller.open_flusher() as flusher:
            await anyio.to_thread.run_sync(generate, flusher)

    Every method but ``flush`` and ``drain`` returns at once, from any thread.
    """

    __slots__ = (
        "_closed",
        "_controller",
        "_entered",
        "_failure",
        "_lock",
        "_loop_thread",
        "_pending",
        "_scheduled",
        "_taking_in",
        "_token",
    )

    def __init__(self, controller: RunController) -> None:
        try:
            self._token = anyio.lowlevel.current_token()
        except anyio.NoEventLoopError:
            raise UsageError("open a flusher on the run's event loop, not in a thread") from None
        self._controller = controller
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._pending: list[Write] = []
        self._scheduled = False
        self._closed = False
        self._entered = False
        self._taking_in = False
        self._failure: Exception | None = None

    def __enter__(self) -> Flusher:
        if self._entered:
            raise UsageError("a flusher's block can be entered only once")
        self._entered = True
        self._controller._buffer.attach(self._take_in)
        self._controller._state.attach(self._take_in)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closed = True
        try:
            self._take_in()
        finally:
            self._controller._buffer.detach(self._take_in)
            self._controller._state.detach(self._take_in)
        failure, self._failure = self._failure, None
        if failure is None:
            return
        if exc is not None:
            # The block's own exception wins; the refusal must not vanish silently.
            logger.error("a write from a thread was refused", exc_info=failure, extra=log_extra())
            return
        try:
            raise failure
        finally:
            del failure

    # -- writes, from any thread ---------------------------------------------------

    def append_text(self, text_delta: str) -> None:
        """``controller.append_text``, from a thread."""
        require_str(text_delta, "append_text's text_delta")
        self._write(lambda controller: controller.append_text(text_delta))

    def append_reasoning(self, reasoning_delta: str) -> None:
        """``controller.append_reasoning``, from a thread."""
        require_str(reasoning_delta, "append_reasoning's reasoning_delta")
        self._write(lambda controller: controller.append_reasoning(reasoning_delta))

    def append_state_text(self, path: Sequence[Key], text_delta: str) -> None:
        """``controller.append_state_text``, from a thread."""
        keys = _state_path(path)
        require_str(text_delta, "append_state_text's text_delta")
        self._write(lambda controller: controller._state.append_text(keys, text_delta))

    def set_state(self, path: Sequence[Key], value: Any) -> None:
        """Set the value at ``path`` of the run's state (``[]``: the whole state), from a thread.

        The value is taken in its JSON form at the call.
        """
        keys = _state_path(path)
        plain = normalized(value, "set_state's value")
        self._write(lambda controller: controller._state.set(keys, plain))

    def flush(self) -> None:
        """Wait until everything written so far is in the run.

        In a worker thread, this waits for the event loop to take the batch
        in; on the event loop itself, the batch goes in at once.
        """
        if threading.get_ident() == self._loop_thread:
            self._take_in()
        else:
            self._on_loop(anyio.from_thread.run_sync, self._take_in)
        self._raise_failure()

    def drain(self) -> None:
        """In a worker thread: flush, then wait while the run's queue is above its high-water mark.

        A thread that writes faster than the client reads calls this now and
        then, and is held back as ``controller.drain()`` holds back a task.
        """
        if threading.get_ident() == self._loop_thread:
            raise UsageError("on the event loop, await controller.drain() instead")
        self._on_loop(anyio.from_thread.run, self._take_in_and_wait)
        self._raise_failure()

    # -- the batch ---------------------------------------------------------------------

    def _write(self, write: Write) -> None:
        with self._lock:
            if self._closed or self._failure is not None:
                self._raise_failure()
                raise StreamClosedError("the flusher's block has ended; nothing more goes in")
            self._pending.append(write)
            if self._scheduled:
                return  # the batch's turn on the loop is booked already
            self._scheduled = True
        token = self._token
        try:
            token.backend_class.run_sync_soon(self._take_in, (), token.native_token)
        except anyio.RunFinishedError:
            raise StreamClosedError("the run's event loop has ended") from None

    def _on_loop(self, call: Callable[..., Any], function: Callable[[], Any]) -> None:
        try:
            call(function, token=self._token)
        except anyio.RunFinishedError:
            raise StreamClosedError("the run's event loop has ended") from None

    def _raise_failure(self) -> None:
        failure = self._failure
        if failure is not None:
            raise StreamClosedError(
                f"a write from a thread was refused, and nothing more goes in: {failure}"
            ) from failure

    def _take_in(self) -> None:
        """Put the batch into the run, in order (on the event loop)."""
        if self._taking_in:
            return  # a write of the batch, going in: the rest follows it
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        if not batch:
            return
        self._taking_in = True
        try:
            for write in batch:
                write(self._controller)
        except Exception as exc:
            with self._lock:
                self._failure = exc
                self._pending.clear()
        finally:
            self._taking_in = False

    async def _take_in_and_wait(self) -> None:
        self._take_in()
        await self._controller.drain()


def _state_path(path: Sequence[Key]) -> list[str]:
    if isinstance(path, str) or not isinstance(path, Sequence):
        raise TypeError(f"a state path is a list of keys, not {type(path).__name__}")
    keys = []
    for key in path:
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise TypeError(f"a state path's keys are str or int, not {type(key).__name__}")
        keys.append(str(key))
    return keys
