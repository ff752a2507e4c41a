"""The accept loop of serve(): a burst is drained at each wake, a failed accept is not fatal
unless the listening socket itself is broken, and a shutdown refuses new clients while the
open ones finish."""

from __future__ import annotations

import errno
import gc
import logging
import socket
import sys
from collections.abc import Iterator

import httpx
import pytest
import trio
import trio.testing
from hypercorn.config import Config

from trio_stream import serve
from trio_stream._accepting import ACCEPT_BATCH, _accept

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


class StepCounter(trio.abc.Instrument):
    """Counts the scheduler's steps of the tasks named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


def listening() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


async def start_serving(nursery: trio.Nursery, app: object, stop: trio.Event) -> str:
    """Start ``serve(app)`` on a free port in ``nursery``, until ``stop`` is set: its URL."""
    [url] = await nursery.start(
        lambda task_status: serve(
            app,  # type: ignore[arg-type]
            port=0,
            shutdown_trigger=stop.wait,
            task_status=task_status,
        )
    )
    return str(url)


async def test_a_burst_of_clients_takes_a_step_per_batch_not_per_client() -> None:
    clients = 3 * ACCEPT_BATCH
    with listening() as listener:
        # Every client has connected before the loop starts: all queued in the kernel.
        queued = [socket.create_connection(listener.getsockname()) for _ in range(clients)]
        served: list[trio.abc.Stream] = []
        all_served = trio.Event()

        async def handle(stream: trio.abc.Stream) -> None:
            served.append(stream)
            if len(served) == clients:
                all_served.set()
            await trio.sleep_forever()

        counter = StepCounter("accept loop")
        trio.lowlevel.add_instrument(counter)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_accept, listener, None, nursery, handle, name="accept loop")
                with trio.fail_after(10):
                    await all_served.wait()
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(counter)
            for client in queued:
                client.close()
    assert len(served) == clients
    # A batch per wake and a step to wait again: about 2 steps a batch; one
    # client per pass would have been a step per client.
    assert counter.steps <= 2 * (clients // ACCEPT_BATCH) + 3, counter.steps


class ScriptedListener:
    """A listening socket whose ``accept`` follows a script; readable, so that waits end."""

    def __init__(self, readable: socket.socket, script: list[OSError | socket.socket]) -> None:
        self._readable = readable
        self._script: Iterator[OSError | socket.socket] = iter(script)

    def fileno(self) -> int:
        return self._readable.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        step = next(self._script, BlockingIOError())
        if isinstance(step, OSError):
            raise step
        return step, None


async def test_a_client_that_left_is_passed_over_and_a_full_table_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    readable, other = socket.socketpair()
    client, kept = socket.socketpair()
    other.send(b"x")  # ``readable`` stays readable: every wait ends at once
    script: list[OSError | socket.socket] = [
        OSError(errno.ECONNABORTED, "gone before it was accepted"),
        OSError(errno.EHOSTUNREACH, "its network failed while it waited"),
        OSError(errno.EMFILE, "too many open files"),
        client,
    ]
    served = trio.Event()

    async def handle(stream: trio.abc.Stream) -> None:
        served.set()

    with readable, other, kept, caplog.at_level(logging.WARNING, logger="trio_stream"):
        async with trio.open_nursery() as nursery:
            listener = ScriptedListener(readable, script)
            nursery.start_soon(_accept, listener, None, nursery, handle)  # type: ignore[arg-type]
            with trio.fail_after(5):
                await served.wait()
            nursery.cancel_scope.cancel()
    [warning] = caplog.records
    assert warning.getMessage() == (
        "accepting a connection failed (EMFILE); trying again in 0.1 s"
    )


async def test_a_broken_listening_socket_ends_the_loop_with_its_error() -> None:
    readable, other = socket.socketpair()
    other.send(b"x")
    broken = ScriptedListener(readable, [OSError(errno.EBADF, "bad file descriptor")])

    async def handle(stream: trio.abc.Stream) -> None:
        raise AssertionError("nothing was accepted")

    with readable, other, pytest.RaisesGroup(pytest.RaisesExc(OSError, match="bad file")):
        async with trio.open_nursery() as nursery:  # the connections' nursery
            await _accept(broken, None, nursery, handle)  # type: ignore[arg-type]


async def test_a_shutdown_refuses_new_clients_while_an_open_stream_finishes() -> None:
    release = trio.Event()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await release.wait()
        await send({"type": "http.response.body", "body": b"finished"})  # type: ignore[operator]

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await start_serving(nursery, app, stop)
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("GET", url) as open_stream,
        ):
            stop.set()
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(httpx.ConnectError):
                await client.get(url, headers={"connection": "close"})
            release.set()
            assert await open_stream.aread() == b"finished"


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="on 3.12 and later, an exception caught in hypercorn's read loop keeps its frames "
    "(and through them the emptied TCPServer) in a traceback cycle of its own",
)
async def test_an_ended_connection_is_freed_without_the_garbage_collector() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    stop = trio.Event()
    gc.collect()
    gc.disable()
    try:
        async with trio.open_nursery() as nursery:
            url = await start_serving(nursery, app, stop)
            async with httpx.AsyncClient(timeout=10) as client:
                for _ in range(5):
                    response = await client.get(url, headers={"connection": "close"})
                    assert response.content == b"ok"
            await trio.testing.wait_all_tasks_blocked()  # the connections' tasks have ended
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [type(o).__qualname__ for o in gc.garbage if "hypercorn" in type(o).__module__]
            stop.set()
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


async def test_http3_is_refused_by_name() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        raise AssertionError("never started")

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.quic_bind = ["127.0.0.1:0"]
    with pytest.raises(ValueError, match="does not serve HTTP/3"):
        await serve(app, config=config)  # type: ignore[arg-type]
