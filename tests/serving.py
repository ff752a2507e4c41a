"""A real hypercorn server on Trio, in a thread of the test process.

Tests talk to it over loopback HTTP with any client (httpx, curl, Node,
the openai SDK), whatever their own event loop, and can share Python
objects with the app they serve to observe what happened on the server.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import trio
from starlette.types import ASGIApp

from trio_stream import serve

ROOT = Path(__file__).parent.parent
"""The repository, where ``module:app`` paths such as ``tests.resumable.app:app`` resolve."""

__all__ = [
    "ROOT",
    "descendants",
    "free_port",
    "running",
    "running_cli",
    "running_demo",
    "server_process",
    "serving_process",
    "still_running",
]


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


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server_process(
    log_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m trio_stream <arguments> --port <free port>`` as a real process.

    Yields its base URL, once it accepts connections, and the process. Its
    output (hypercorn's log and the library's) goes to ``log_path``, which a
    test reads to see what happened on the server. ``env`` is added to this
    process's environment. On exit the process gets SIGTERM, unless it has
    stopped already.
    """
    with serving_process(
        log_path, [sys.executable, "-m", "trio_stream", *arguments], env=env
    ) as served:
        yield served


@contextlib.contextmanager
def serving_process(
    log_path: Path, command: list[str], env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``command --port <free port>`` as a real process, as ``server_process`` runs it."""
    port = free_port()
    command = [*command, "--port", str(port)]
    environment = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{' '.join(command)} did not start:\n{log_path.read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def descendants(pid: int) -> set[int]:
    """The processes that ``pid`` started, and theirs, down the tree (Linux's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (command) state ppid ...": the command may hold spaces and brackets.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended while being read
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    parents = [pid]
    while parents:
        below = children.get(parents.pop(), [])
        found.update(below)
        parents.extend(below)
    return found


def still_running(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running: neither gone nor a zombie waiting to be reaped."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


@contextlib.contextmanager
def running_cli(
    log_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``server_process`` when only the URL matters."""
    with server_process(log_path, *arguments, env=env) as (url, _):
        yield url


def running_demo(log_path: Path, *options: str) -> contextlib.AbstractContextManager[str]:
    """``python -m trio_stream demo`` as a real process; yields its base URL."""
    return running_cli(log_path, "demo", *options)
