"""The demo's helper processes: started by it, found by their URL, stopped with it.

``trio-stream demo --remote`` runs its specialist agents as child processes,
each a hypercorn server on Trio. A child binds a free port and prints its URL
as its first line of output, which is how the demo finds it (no port is
guessed, so none can be taken in between). It runs until its standard input
closes: the demo closes it to stop the child when the demo stops, and the
kernel closes it if the demo dies, even of SIGKILL, so no child outlives it.

Each child runs in a session of its own: the terminal's Ctrl-C reaches the
demo only, which stops its children in order (the researcher first closes its
MCP server) rather than all of them at once. Children share the demo's
standard error, where each logs as ``<time> <role>[<pid>]: <message>``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from functools import partial

import trio
from starlette.types import ASGIApp

from .._server import serve
from .._telemetry import log_extra

__all__ = ["log_as", "serve_child", "start_child"]

logger = logging.getLogger("trio_stream.demo")

STOP_TIMEOUT = 5.0
"""Seconds a child gets to shut down once asked, before it is killed."""


async def _stop(process: trio.Process) -> None:
    """Ask a child to stop by closing its standard input; kill it if it lingers.

    Trio runs this, shielded, when the task running the child is cancelled,
    and cancels it once the child has exited.
    """
    assert process.stdin is not None
    await process.stdin.aclose()
    await trio.sleep(STOP_TIMEOUT)
    logger.warning(
        "demo: %s did not stop in %.0f s: killed",
        process.args,
        STOP_TIMEOUT,
        extra=log_extra(pid=process.pid),
    )
    process.kill()


async def _first_line(process: trio.Process, name: str) -> str:
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        piece = await process.stdout.receive_some()
        if not piece:
            raise RuntimeError(f"the demo's {name} exited before it started; see its log above")
        line += piece
    return line.decode().strip()


async def start_child(nursery: trio.Nursery, name: str, arguments: Sequence[str]) -> str:
    """Run ``python <arguments>`` in ``nursery`` until the nursery is cancelled; its URL.

    A child that exits by itself is logged; the demo goes on without it (its
    calls then fail as unreachable).
    """

    async def run(task_status: trio.TaskStatus[trio.Process]) -> None:
        result = await trio.run_process(
            [sys.executable, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            check=False,
            deliver_cancel=_stop,
            task_status=task_status,
        )
        logger.warning(
            "demo: the %s exited with code %d",
            name,
            result.returncode,
            extra=log_extra(returncode=result.returncode),
        )

    process: trio.Process = await nursery.start(run)
    url = await _first_line(process, name)
    logger.info(
        "demo: %s (pid %d) on %s",
        name,
        process.pid,
        url,
        extra=log_extra(pid=process.pid, url=url),
    )
    return url


async def _stdin_closed() -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stdin:
        while await stdin.receive_some():
            pass


async def serve_child(app: ASGIApp) -> None:
    """Serve ``app`` on a free port, print its URL, and stop when stdin closes."""
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve, app, port=0, shutdown_trigger=_stdin_closed))
        print(urls[0], flush=True)


def log_as(role: str) -> None:
    """Log the demo's lines and the library's to stderr, each with the time, role and pid."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s {role}[%(process)d]: %(message)s"))
    library = logging.getLogger("trio_stream")
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
