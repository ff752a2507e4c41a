"""Contenders: which app on which server, started as a process the client is not in."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).parent.parent

ServerKind = Literal["hypercorn-trio", "hypercorn-asyncio", "uvicorn"]


@dataclasses.dataclass(frozen=True)
class Contender:
    """One side of a comparison: an app (``module:attribute``) on a server."""

    name: str
    app: str
    server: ServerKind


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


@contextlib.contextmanager
def serving(contender: Contender, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """Start ``contender`` on a free loopback port; yields it once it accepts connections.

    ``env`` is added to the server process's environment (an app's configuration).
    """
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._serve", contender.server, contender.app, str(port)],
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    _, err = process.communicate()
                    raise RuntimeError(
                        f"{contender.name} did not start:\n{err.decode(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
