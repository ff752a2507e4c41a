"""What an event loop costs on its own: the floor under every run that awaits per delta."""

from __future__ import annotations

import asyncio
import time

import trio
import trio.lowlevel
import uvloop

__all__ = ["switch_seconds"]


def switch_seconds(n: int) -> dict[str, float]:
    """Seconds per ``sleep(0)`` of one task alone on each event loop, over ``n`` of them.

    A run that awaits after each delta pays at least this per delta, whatever
    the library: it bounds how far any library on that loop can go.
    """

    async def trio_loop() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await trio.lowlevel.checkpoint()
        return (time.perf_counter() - started) / n

    async def asyncio_loop() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await asyncio.sleep(0)
        return (time.perf_counter() - started) / n

    return {
        "trio": trio.run(trio_loop),
        "asyncio": asyncio.run(asyncio_loop()),
        "uvloop": uvloop.run(asyncio_loop()),
    }
