"""``trio-stream demo``: real HTTP through hypercorn on Trio."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "server.log"


@pytest.fixture(scope="module")
def demo_url(log_path: Path) -> Iterator[str]:
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "trio_stream", "demo", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = log_path.read_text()
                    raise RuntimeError(f"the demo server did not start:\n{log_text}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_demo_streams_a_whole_run(demo_url: str) -> None:
    arrivals: list[float] = []
    chunks: list[dict[str, object]] = []
    with httpx.stream("GET", demo_url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            arrivals.append(time.monotonic())
            chunks.append(json.loads(line))
    types = [chunk["type"] for chunk in chunks]
    assert types[0] == "reasoning-delta"
    assert types.count("tool-call-begin") == 3
    assert types.count("tool-result") == 3
    assert types[-1] == "text-delta"
    assert chunks[-1]["text_delta"] == "All done."
    research = next(chunk for chunk in chunks if chunk.get("tool_name") == "research")
    nested = [chunk for chunk in chunks if chunk.get("parent_id") == research["tool_call_id"]]
    assert [chunk["type"] for chunk in nested] == ["text-delta"] * 3 + ["tool-call-begin"]
    # Streamed, not buffered: the body arrived over the run's ~0.8 s, not at once.
    assert arrivals[-1] - arrivals[0] > 0.4


def test_a_client_that_leaves_gets_its_run_cancelled(demo_url: str, log_path: Path) -> None:
    with httpx.stream("GET", demo_url, timeout=30) as response:
        first = next(response.iter_lines())
        assert json.loads(first)["type"] == "reasoning-delta"
    deadline = time.monotonic() + 10
    while "run cancelled; all of its tasks have finished" not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    assert "client disconnected: cancelling its run" in log_path.read_text()
    # The server is unharmed: the next client is served in full.
    with httpx.stream("GET", demo_url, timeout=30) as response:
        lines = list(response.iter_lines())
    assert json.loads(lines[-1]) == {
        "type": "text-delta",
        "text_delta": "All done.",
        "parent_id": None,
    }
