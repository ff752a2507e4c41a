"""Scopes: the nurseries of a run, and the cancellation signal each one carries.

A run has a root scope (the nursery its callback runs in) and one child scope
per open sub-stream, nested to any depth. Cancelling a scope cancels its
nursery, and with it every nursery nested inside, which is what structured
concurrency gives for free. The cooperative signal is extra bookkeeping on top:
code that cannot be interrupted at a checkpoint (a thread, a ``finally``
block, a loop with no awaits) polls ``is_cancelled`` or waits on the signal,
and that signal must be set for the scope and all its descendants at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import trio

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from ._taskgroups import TaskGroup

__all__ = ["CancellationSignal", "Scope"]


class CancellationSignal:
    """A read-only view of whether a scope has been cancelled.

    Most scopes are never waited on, only polled, if at all: the event a
    wait needs is made by the first ``wait()``, not for every run.
    """

    __slots__ = ("_event", "_set_already")

    def __init__(self) -> None:
        self._set_already = False
        self._event: anyio.Event | trio.Event | None = None

    def is_set(self) -> bool:
        """Whether the scope has been cancelled."""
        return self._set_already

    async def wait(self) -> None:
        """Wait until the scope is cancelled."""
        event = self._event
        if event is None:
            # Trio's own event on Trio: AnyIO's wraps one.
            event = self._event = trio.Event() if trio.lowlevel.in_trio_run() else anyio.Event()
            if self._set_already:
                event.set()
        await event.wait()

    def _set(self) -> None:
        self._set_already = True
        if self._event is not None:
            self._event.set()


class Scope:
    """One nursery of a run, linked into the run's tree of scopes."""

    __slots__ = ("_children", "_parent", "signal", "task_group", "trace_context")

    def __init__(
        self,
        task_group: TaskGroup,
        parent: Scope | None,
        trace_context: Context | None = None,
    ) -> None:
        self.task_group = task_group
        self.trace_context = trace_context
        """The context of the scope's span (the run's, a sub-stream's), if traced: the
        parent of the spans of the tool calls opened in it."""
        self.signal = CancellationSignal()
        self._parent = parent
        self._children: set[Scope] = set()
        if parent is not None:
            parent._children.add(self)
            if parent.signal.is_set():
                self.signal._set()

    def cancel(self) -> None:
        """Set the signal here and below, then cancel the nursery."""
        self._mark_cancelled()
        self.task_group.cancel_scope.cancel()

    def _mark_cancelled(self) -> None:
        if not self.signal.is_set():
            self.signal._set()
        for child in self._children:
            child._mark_cancelled()

    def detach(self) -> None:
        """Unlink from the parent once the nursery has closed."""
        if self._parent is not None:
            self._parent._children.discard(self)
            self._parent = None
