"""``trio-stream demo``: real HTTP through hypercorn on Trio."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def parse(line: str) -> tuple[str, Any]:
    code, _, value = line.partition(":")
    return code, json.loads(value)


def test_the_demo_streams_a_whole_run(demo_url: str) -> None:
    arrivals: list[float] = []
    lines: list[tuple[str, Any]] = []
    with httpx.stream("GET", demo_url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["x-vercel-ai-data-stream"] == "v1"
        for line in response.iter_lines():
            arrivals.append(time.monotonic())
            lines.append(parse(line))
    codes = [code for code, _ in lines]
    assert codes[0] == "g"  # reasoning first
    assert codes.count("b") == 3  # three tool calls
    assert codes.count("a") == 3  # three results
    assert lines[-2] == ("0", "All done.")
    assert lines[-1] == (
        "d",
        {"finishReason": "stop", "usage": {"inputTokens": 0, "outputTokens": 0}},
    )
    research = next(
        value for code, value in lines if code == "b" and value["toolName"] == "research"
    )
    nested = [
        code
        for code, value in lines
        if isinstance(value, dict) and value.get("parentId") == research["toolCallId"]
    ]
    assert nested == ["aui-text-delta"] * 3 + ["b"]
    # Streamed, not buffered: the body arrived over the run's ~0.8 s, not at once.
    assert arrivals[-1] - arrivals[0] > 0.4


def test_a_client_that_leaves_gets_its_run_cancelled(demo_url: str, log_path: Path) -> None:
    with httpx.stream("GET", demo_url, timeout=30) as response:
        lines = response.iter_lines()
        assert parse(next(lines))[0] == "g"
    deadline = time.monotonic() + 10
    while "client disconnected from /: run cancelled" not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    # The server is unharmed: the next client is served in full.
    with httpx.stream("GET", demo_url, timeout=30) as response:
        assert parse(list(response.iter_lines())[-2]) == ("0", "All done.")
