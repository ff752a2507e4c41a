"""Graceful shutdown, as a response sees it: the cut-off and what it sends then.

The whole path, SIGTERM to a served process with 100 streams in flight, is
in ``tests/reliability/test_shutdown.py``.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.lowlevel

from trio_stream import RunController, create_run
from trio_stream._shutdown import SCOPE_KEY, SHUTDOWN_MESSAGE, Shutdown, ShutdownNotice
from trio_stream.asgi import DataStreamResponse, until_interrupted

from .asgi_calls import SentMessages, never_disconnect

pytestmark = pytest.mark.anyio


def scope_with(shutdown: Shutdown) -> dict[str, object]:
    return {"type": "http", "path": "/chat", "extensions": {SCOPE_KEY: shutdown}}


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # the shutdown notice is served by hypercorn's Trio worker


@pytest.mark.parametrize(("graceful_timeout", "grace"), [(3.0, 2.0), (10.0, 9.0), (1.0, 0.5)])
async def test_the_cut_off_leaves_a_second_or_half_the_timeout_for_the_last_writes(
    graceful_timeout: float, grace: float
) -> None:
    shutdown = Shutdown()
    assert not shutdown.begun
    assert shutdown.cut_off_at == math.inf
    shutdown.begin(graceful_timeout)
    shutdown.begin(100.0)  # a second signal changes nothing
    assert shutdown.begun
    assert shutdown.cut_off_at - trio.current_time() == pytest.approx(grace, abs=0.05)


async def test_callbacks_are_called_at_the_cut_off_and_not_before() -> None:
    shutdown = Shutdown()
    called: list[str] = []
    shutdown.on_cut_off(lambda: called.append("kept"))
    withdraw = shutdown.on_cut_off(lambda: called.append("withdrawn"))
    withdraw()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutdown.cut_off_when_due)
        await trio.sleep(0.1)
        assert called == []  # the shutdown has not begun
        shutdown.begin(0.0)
    assert called == ["kept"]
    shutdown.on_cut_off(lambda: called.append("late"))  # after the cut-off: at once
    assert called == ["kept", "late"]


async def test_a_run_still_going_at_the_cut_off_is_cancelled_and_its_body_completed() -> None:
    cleaned_up = False

    async def run(controller: RunController) -> None:
        nonlocal cleaned_up
        controller.append_text("partial")
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up = True

    shutdown = Shutdown()
    sent = SentMessages()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutdown.cut_off_when_due)
        nursery.start_soon(
            DataStreamResponse(create_run(run)), scope_with(shutdown), never_disconnect, sent.send
        )
        await trio.sleep(0.05)
        shutdown.begin(0.2)
    assert cleaned_up
    assert sent.body == b'0:"partial"\n3:"' + SHUTDOWN_MESSAGE.encode() + b'"\n'
    assert sent[-1]["more_body"] is False


async def test_a_run_that_ends_before_the_cut_off_ends_as_usual() -> None:
    async def run(controller: RunController) -> None:
        await trio.sleep(0.1)
        controller.append_text("done")

    shutdown = Shutdown()
    sent = SentMessages()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutdown.cut_off_when_due)
        shutdown.begin(1.0)  # the cut-off comes in 0.5 s; the run needs 0.1
        await DataStreamResponse(create_run(run))(
            scope_with(shutdown), never_disconnect, sent.send
        )
        nursery.cancel_scope.cancel()
    assert sent.body.startswith(b'0:"done"\nd:{"finishReason":"stop"')
    assert b"3:" not in sent.body


async def test_work_that_finishes_is_not_interrupted() -> None:
    async def work() -> None:
        await trio.lowlevel.checkpoint()

    assert await until_interrupted(never_disconnect, work, shutdown=Shutdown()) is None


async def test_the_notice_reaches_http_scopes_only() -> None:
    seen: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(dict(scope))

    shutdown = Shutdown()
    notice = ShutdownNotice(app, shutdown)  # type: ignore[arg-type]
    await notice({"type": "http", "extensions": {"other": {}}}, never_disconnect, None)  # type: ignore[arg-type]
    await notice({"type": "lifespan"}, never_disconnect, None)  # type: ignore[arg-type]
    assert seen[0]["extensions"] == {"other": {}, SCOPE_KEY: shutdown}
    assert "extensions" not in seen[1]
