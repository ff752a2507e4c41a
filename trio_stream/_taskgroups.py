"""Task groups: Trio's own nurseries on Trio, AnyIO's task groups elsewhere.

Every response opens a few task groups (the request's listener, the run, the
run's nursery), and thousands of responses are open at once on a busy
worker. On Trio, AnyIO's task group wraps the nursery, its cancel scope and
every task it starts (a handle and a wrapping coroutine per task): some
objects more per task group and per task, all of them held for the
response's whole life and walked by the garbage collector. ``TrioTaskGroup``
is the nursery with the few names this package calls, and nothing more.

``exit_task_group`` closes either kind so that one failure surfaces as itself;
``runs_no_task`` tells whether one is known to have no task left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, cast

import anyio
import trio

from ._errors import collapse

__all__ = [
    "Cancellable",
    "TaskGroup",
    "TrioTaskGroup",
    "create_task_group",
    "exit_task_group",
    "runs_no_task",
]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class TaskGroup(Protocol):
    """What this package uses of a task group: AnyIO's, or ``TrioTaskGroup``."""

    @property
    def cancel_scope(self) -> Cancellable: ...

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: object = None
    ) -> None: ...

    async def start(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: object = None
    ) -> Any: ...

    async def __aenter__(self) -> TaskGroup: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None: ...


class TrioTaskGroup:
    """A Trio nursery behind the task group's names; enter it once, like AnyIO's.

    As AnyIO's does on Trio, it turns a group of nothing but ``Cancelled``
    (the task group's tasks cancelled from outside) into one ``Cancelled``.
    """

    __slots__ = ("_manager", "_nursery")

    def __init__(self) -> None:
        self._manager = trio.open_nursery(strict_exception_groups=True)
        self._nursery: trio.Nursery | None = None

    @property
    def cancel_scope(self) -> trio.CancelScope:
        assert self._nursery is not None, "the task group was not entered"
        return self._nursery.cancel_scope

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: object = None
    ) -> None:
        if self._nursery is None:
            raise RuntimeError("This task group is not active; no new tasks can be started.")
        self._nursery.start_soon(func, *args, name=name)

    async def start(
        self, func: Callable[..., Awaitable[Any]], *args: Any, name: object = None
    ) -> Any:
        if self._nursery is None:
            raise RuntimeError("This task group is not active; no new tasks can be started.")
        return await self._nursery.start(func, *args, name=name)

    async def __aenter__(self) -> TrioTaskGroup:
        if self._nursery is not None:
            raise RuntimeError("a task group can be entered only once")
        self._nursery = await self._manager.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            return bool(await self._manager.__aexit__(exc_type, exc, traceback))
        except BaseExceptionGroup as group:
            if group.split(trio.Cancelled)[1] is None:
                raise trio.Cancelled._create() from group
            raise
        finally:
            del exc, traceback


def runs_no_task(task_group: TaskGroup) -> bool:
    """Whether ``task_group`` is known to have no task left.

    A nursery's tasks are known; AnyIO's task group does not say, so for it
    the answer is ``False``, as if some might still run.
    """
    if isinstance(task_group, TrioTaskGroup):
        nursery = task_group._nursery
        return nursery is not None and not nursery.child_tasks
    return False


def create_task_group() -> TaskGroup:
    """A new task group for the running backend: a ``TrioTaskGroup`` on Trio."""
    if trio.lowlevel.in_trio_run():
        return TrioTaskGroup()
    return cast(TaskGroup, anyio.create_task_group())


async def exit_task_group(
    task_group: TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """``task_group.__aexit__``, with a one-leaf exception group unwrapped.

    The leaf is re-raised outside the ``except`` block, so its traceback shows
    where it happened instead of a chain through the group that carried it.
    """
    try:
        return bool(await task_group.__aexit__(exc_type, exc, traceback))
    except BaseException as group:
        single = collapse(group)
        if single is group:
            raise
    raise single
