"""Every async test (modules mark them ``anyio``) runs on Trio and on asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trio

from trio_stream import create_run
from trio_stream.chunks import Chunk


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def collect(
    callback: Callable[[Any], Coroutine[Any, Any, Any]], **kwargs: Any
) -> list[Chunk]:
    """Run ``callback`` to the end and return every chunk it produced."""
    async with create_run(callback, **kwargs) as chunks:
        return [chunk async for chunk in chunks]


def living_tasks(backend: str) -> int:
    """How many tasks the event loop currently has."""
    if backend == "trio":
        return trio.lowlevel.current_statistics().tasks_living
    return len(asyncio.all_tasks())
