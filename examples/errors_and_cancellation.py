"""What a consumer sees when a run fails, and when it stops reading early.

Run it with:  uv run python examples/errors_and_cancellation.py
"""

from __future__ import annotations

import trio

from trio_stream import RunController, create_run


async def failing_run(controller: RunController) -> None:
    controller.append_text("Looking that up… ")
    await trio.sleep(0.05)
    raise ConnectionError("the search backend is down")


async def endless_run(controller: RunController) -> None:
    try:
        while True:
            controller.append_text("tick ")
            await controller.drain()
            await trio.sleep(0.01)
    finally:
        print(f"endless run cleaned up (cancelled: {controller.is_cancelled})")


async def main() -> None:
    # 1. The error chunk arrives first, then the exception propagates.
    try:
        async with create_run(failing_run) as chunks:
            async for chunk in chunks:
                print("received", chunk)
    except ConnectionError as exc:
        print("raised", repr(exc))

    # 2. Leaving the block early cancels the run and waits for its cleanup.
    async with create_run(endless_run) as chunks:
        async for chunk in chunks:
            print("received", chunk)
            break
    print("block exited")


if __name__ == "__main__":
    trio.run(main)
