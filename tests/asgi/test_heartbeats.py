"""Heartbeats of many streams at once, on one event loop (one timer task on Trio).

Each stream's keep-alive follows its own last write, whatever the other
streams do: a stream that writes often sends none, a short interval opened
after a long one is kept, and a stream that has ended is forgotten. The
responses are called in process, on Trio and asyncio.
"""

from __future__ import annotations

import anyio
import pytest

from trio_stream import RunController, create_run
from trio_stream.asgi import RunResponse

from .test_keepalive import SSE_COMMENT, Passthrough, writes

pytestmark = pytest.mark.anyio


def paced(pieces: int, every: float):  # type: ignore[no-untyped-def]
    async def callback(controller: RunController) -> None:
        for i in range(pieces):
            controller.append_text(str(i))
            await anyio.sleep(every)

    return callback


async def test_a_stream_that_writes_within_its_interval_sends_no_keepalive() -> None:
    body = await writes(
        RunResponse(create_run(paced(8, 0.01)), encoder=Passthrough(), heartbeat=0.2)
    )
    assert SSE_COMMENT not in body
    assert len(body) == 8


async def test_each_stream_keeps_its_own_interval_next_to_others() -> None:
    results: dict[str, list[bytes]] = {}

    async def serve(name: str, heartbeat: float, silence: float) -> None:
        async def callback(controller: RunController) -> None:
            controller.append_text("a")
            await anyio.sleep(silence)
            controller.append_text("b")

        response = RunResponse(create_run(callback), encoder=Passthrough(), heartbeat=heartbeat)
        results[name] = await writes(response)

    async def writing(heartbeat: float) -> None:
        response = RunResponse(
            create_run(paced(12, heartbeat * 0.1)), encoder=Passthrough(), heartbeat=heartbeat
        )
        results["often"] = await writes(response)

    async with anyio.create_task_group() as streams:
        # The long interval is watched first; the short one, opened after it,
        # must not wait for the long one's deadline.
        streams.start_soon(serve, "long", 5.0, 0.4)
        await anyio.sleep(0.01)
        streams.start_soon(serve, "short", 0.05, 0.4)
        # Writes every 20 ms against a 200 ms interval: only a stall of the
        # whole machine longer than 180 ms could put a comment between them.
        streams.start_soon(writing, 0.2)
    assert results["long"] == [b"data: a\n\n", b"data: b\n\n"]
    assert SSE_COMMENT not in results["often"]
    short = results["short"]
    assert short[0] == b"data: a\n\n"
    assert short[-1] == b"data: b\n\n"
    assert set(short[1:-1]) == {SSE_COMMENT}
    assert 4 <= len(short[1:-1]) <= 8, short


async def test_the_timer_ends_with_the_last_stream_it_watches(anyio_backend: str) -> None:
    if anyio_backend != "trio":
        pytest.skip("the heartbeat timer is Trio's; elsewhere a timeout per wait does the job")
    import trio

    def timers() -> int:
        root = trio.lowlevel.current_root_task()
        assert root is not None
        tasks = [task for nursery in root.child_nurseries for task in nursery.child_tasks]
        return sum(task.name == "trio_stream heartbeats" for task in tasks)

    async def long(controller: RunController) -> None:
        controller.append_text("a")
        await trio.sleep(0.3)

    async with trio.open_nursery() as streams:
        for _ in range(3):
            streams.start_soon(
                writes, RunResponse(create_run(long), encoder=Passthrough(), heartbeat=60)
            )
        await trio.sleep(0.1)
        assert timers() == 1  # one for the three streams
    await trio.testing.wait_all_tasks_blocked()
    assert timers() == 0
    body = await writes(RunResponse(create_run(paced(1, 0)), encoder=Passthrough(), heartbeat=60))
    assert body == [b"data: 0\n\n"]
    await trio.testing.wait_all_tasks_blocked()
    assert timers() == 0
