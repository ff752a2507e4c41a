"""A real hypercorn server on Trio, in a thread of the test process.

Tests talk to it over loopback HTTP with any client (httpx, curl, Node,
the openai SDK), whatever their own event loop, and can share Python
objects with the app they serve to observe what happened on the server.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

import trio
from starlette.types import ASGIApp

from trio_stream import serve

__all__ = ["running"]


@contextlib.contextmanager
def running(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    urls: queue.Queue[list[str] | BaseException] = queue.Queue()
    stop = threading.Event()
    token: list[trio.lowlevel.TrioToken] = []

    async def main() -> None:
        token.append(trio.lowlevel.current_trio_token())
        shutdown = trio.Event()

        async def shutdown_trigger() -> None:
            await shutdown.wait()

        async with trio.open_nursery() as nursery:

            async def serve_app(task_status: trio.TaskStatus[list[str]]) -> None:
                await serve(
                    app, port=0, shutdown_trigger=shutdown_trigger, task_status=task_status
                )

            urls.put(await nursery.start(serve_app))
            await trio.to_thread.run_sync(stop.wait)
            shutdown.set()

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            urls.put(exc)

    thread = threading.Thread(target=thread_main, name="hypercorn-trio", daemon=True)
    thread.start()
    started = urls.get(timeout=30)
    if isinstance(started, BaseException):
        raise started  # why the server did not start
    try:
        yield started[0]
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the server did not shut down"
