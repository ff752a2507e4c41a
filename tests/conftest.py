"""Every async test (modules mark them ``anyio``) runs on Trio and on asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, settings

from trio_stream import create_run
from trio_stream.chunks import Chunk

# Property tests draw from a fixed seed in the suite (no example database, no
# seed that changes per run, so a failure in CI replays with the same command)
# and explore fresh cases, many more, with ``--soak``. Hypothesis may still
# cut generation short by time, so the counts of cases vary a little.
settings.register_profile(
    "default",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help="run the reliability suite's long version: more cases, longer load",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--soak"):
        settings.load_profile("soak")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from .reliability.figures import FIGURES, save_if_asked

    lines = FIGURES.lines()
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
        save_if_asked()


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
