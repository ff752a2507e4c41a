"""The run callbacks of the reference document work unchanged, in a plain
``python -c`` on Trio."""

from __future__ import annotations

import subprocess
import sys

SMOKE = r"""
import trio
from trio_stream import create_run


async def chat_run(controller):
    controller.append_text("Hello from FastAPI!")


async def chat_sse_run(controller):
    controller.append_text("Streaming over SSE...")


async def failing_run(controller):
    raise ValueError("no such city")


async def handled_run(controller):
    try:
        await failing_run(controller)
    except ValueError as e:
        controller.add_error(f"Bad input: {e}")
        return


async def show(callback):
    try:
        async with create_run(callback) as chunks:
            async for chunk in chunks:
                print(chunk.type, repr(getattr(chunk, "text_delta", None) or chunk.error))
    except ValueError as e:
        print("re-raised", repr(e))


async def main():
    for callback in (chat_run, chat_sse_run, failing_run, handled_run):
        await show(callback)


trio.run(main)
"""


def test_the_reference_callbacks_run_on_trio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SMOKE], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        "text-delta 'Hello from FastAPI!'",
        "text-delta 'Streaming over SSE...'",
        "error 'no such city'",
        "re-raised ValueError('no such city')",
        "error 'Bad input: no such city'",
    ]
