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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).parent.parent

ServerKind = Literal["hypercorn-trio", "hypercorn-asyncio", "uvicorn"]


@dataclasses.dataclass(frozen=True)
class Contender:
    """One side of a comparison: an app (``module:attribute``) on a server.

    With ``workers``, the server's own command runs that many worker
    processes under a parent (``trio-stream serve --workers`` or
    ``uvicorn --workers``), without an access log.
    """

    name: str
    app: str
    server: ServerKind
    workers: int | None = None


def trio_stream(app: str) -> Contender:
    return Contender("trio-stream · hypercorn-trio", app, "hypercorn-trio")


def assistant_stream(app: str) -> list[Contender]:
    return [
        Contender("assistant-stream · uvicorn", app, "uvicorn"),
        Contender("assistant-stream · hypercorn-asyncio", app, "hypercorn-asyncio"),
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(contender: Contender, port: int) -> list[str]:
    """The command line that serves ``contender`` on ``port``."""
    if contender.workers is None:
        return [sys.executable, "-m", "bench._serve", contender.server, contender.app, str(port)]
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(contender.workers)]
    where.append("--no-access-log")
    if contender.server == "hypercorn-trio":
        # The backlog is trio-stream's default, the same as bench._serve's.
        return [sys.executable, "-m", "trio_stream", "serve", contender.app, *where]
    if contender.server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", contender.app, *where),
            *("--backlog", "4096", "--log-level", "warning", "--lifespan", "off"),
        ]
    raise ValueError(f"no command for {contender.server} with workers")


@contextlib.contextmanager
def serving(contender: Contender, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """Start ``contender`` on a free loopback port; yields it once it accepts connections.

    ``env`` is added to the server process's environment (an app's configuration).

    With workers, the port accepts connections as soon as the parent listens:
    the workers may still be starting. The server runs in a session of its
    own, so that whatever it started is killed with it at the end.
    """
    port = _free_port()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            _command(contender, port),
            cwd=ROOT,
            env=None if env is None else {**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        errors.seek(0)
                        raise RuntimeError(
                            f"{contender.name} did not start:\n"
                            f"{errors.read().decode(errors='replace')}"
                        ) from None
                    time.sleep(0.05)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
