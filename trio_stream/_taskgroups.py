"""Closing task groups so that one failure surfaces as itself."""

from __future__ import annotations

from types import TracebackType

import anyio.abc

from ._errors import collapse


async def exit_task_group(
    task_group: anyio.abc.TaskGroup,
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
