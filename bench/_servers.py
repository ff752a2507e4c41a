"""Contenders: which app on which server, started as a process the client is not in."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).parent.parent

ServerKind = Literal["trio-stream serve", "hypercorn-trio", "hypercorn-asyncio", "uvicorn"]
"""How a contender is served.

``trio-stream serve``: the command as users run it (hypercorn's Trio worker
with what the command ships: its backlog, its collector thresholds, its
graceful shutdown). ``uvicorn``: uvicorn's command, with its defaults (uvloop
and httptools, as ``uvicorn[standard]`` installs them). ``hypercorn-trio``
and ``hypercorn-asyncio``: hypercorn itself, on Trio or asyncio, started by
``bench._serve`` (hypercorn's own command would serve from a child process).
"""

BACKLOG = 4096
"""Every server's listen backlog: trio-stream serve's default, given to the others."""


@dataclasses.dataclass(frozen=True)
class Contender:
    """One side of a comparison: an app (``module:attribute``) on a server.

    With ``workers``, the server's own command runs that many worker
    processes under a parent (``trio-stream serve --workers`` or
    ``uvicorn --workers``). With ``serve_gc``, the server process runs with
    the garbage collector thresholds of ``trio-stream serve`` (``bench._gc``).
    No server writes an access log.
    """

    name: str
    app: str
    server: ServerKind
    workers: int | None = None
    serve_gc: bool = False


OURS = "trio-stream · hypercorn-trio"
PEER = "assistant-stream · uvicorn"
PEER_GC = "assistant-stream · uvicorn · trio-stream serve's GC thresholds"
PEER_HYPERCORN = "assistant-stream · hypercorn-asyncio"
CEILING = "ceiling · hypercorn-trio"
SERVE_CEILING = "ceiling · trio-stream serve"
PEER_CEILING = "ceiling · uvicorn"


def trio_stream(app: str) -> Contender:
    return Contender(OURS, app, "trio-stream serve")


def assistant_stream(app: str) -> list[Contender]:
    return [Contender(PEER, app, "uvicorn"), Contender(PEER_HYPERCORN, app, "hypercorn-asyncio")]


def assistant_stream_gc(app: str) -> Contender:
    """The peer on uvicorn, with the collector thresholds that ``trio-stream serve`` ships."""
    return Contender(PEER_GC, app, "uvicorn", serve_gc=True)


def ceilings() -> list[Contender]:
    """The bare apps of ``bench.apps_bare`` on hypercorn-trio, ``trio-stream serve`` and uvicorn.

    On hypercorn-trio as it ships (``hypercorn.trio.serve``, Trio's accept
    loop) with the collector thresholds of ``trio-stream serve``: the server
    alone. Through ``trio-stream serve`` itself (hypercorn's connections
    driven from the command's own accept loop): the same server command as
    our row, so that the distance between the two is the library's alone.
    On uvicorn with Python's defaults, as the peer's row runs.
    """
    return [
        Contender(CEILING, "bench.apps_bare:trio_app", "hypercorn-trio", serve_gc=True),
        Contender(SERVE_CEILING, "bench.apps_bare:trio_app", "trio-stream serve"),
        Contender(PEER_CEILING, "bench.apps_bare:asyncio_app", "uvicorn"),
    ]


@dataclasses.dataclass
class Server:
    url: str
    pid: int

    def rss(self) -> int:
        """The server process's resident memory, in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) * 1024


def ceiling_of(contender: Contender) -> str | None:
    """The name of the ceiling on ``contender``'s server, if it is one of ``ceilings()``."""
    if contender.name in (CEILING, SERVE_CEILING, PEER_CEILING) or contender.workers is not None:
        return None
    if contender.server == "trio-stream serve":
        return SERVE_CEILING
    if contender.server == "hypercorn-trio":
        return CEILING
    if contender.server == "uvicorn":
        return PEER_CEILING
    return None


def ceilings_of(contenders: list[Contender]) -> dict[str, str]:
    """Each contender's name -> its server's ceiling's (``Figure.ceilings``)."""
    return {c.name: ceiling for c in contenders if (ceiling := ceiling_of(c)) is not None}


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    process: subprocess.Popen[Any], port: int, timeout: float, failure: Callable[[], str]
) -> None:
    """Return once ``port`` accepts connections.

    Raises ``RuntimeError(failure())`` if ``process`` exits first or
    ``timeout`` seconds pass: ``failure`` is called only then, so that it can
    read what the process wrote.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(failure()) from None
            time.sleep(0.05)


def _command(contender: Contender, port: int) -> list[str]:
    """The command line that serves ``contender`` on ``port``."""
    where = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    if contender.workers is not None:
        if contender.server not in ("trio-stream serve", "uvicorn"):
            raise ValueError(f"no command for {contender.server} with workers")
        where += ["--workers", str(contender.workers)]
    if contender.server == "trio-stream serve":
        if contender.serve_gc:
            raise ValueError("trio-stream serve sets its collector thresholds itself")
        # The backlog is the command's default, BACKLOG.
        module = ["trio_stream", "serve", contender.app, *where]
    elif contender.server == "uvicorn":
        module = ["uvicorn", contender.app, *where, "--backlog", str(BACKLOG)]
        module += ["--log-level", "warning", "--lifespan", "off"]
    else:
        module = ["bench._serve", contender.server, contender.app, str(port)]
    if contender.serve_gc:
        module = ["bench._gc", *module]
    return [sys.executable, "-m", *module]


@contextlib.contextmanager
def serving(contender: Contender, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """Start ``contender`` on a free loopback port; yields it once it accepts connections.

    ``env`` is added to the server process's environment (an app's configuration).

    With workers, the port accepts connections as soon as the parent listens:
    the workers may still be starting. The server runs in a session of its
    own, so that whatever it started is killed with it at the end.
    """
    port = free_port()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            _command(contender, port),
            cwd=ROOT,
            env=None if env is None else {**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )

        def failure() -> str:
            errors.seek(0)
            return f"{contender.name} did not start:\n{errors.read().decode(errors='replace')}"

        try:
            wait_for_port(process, port, 30, failure)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
