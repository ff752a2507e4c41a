"""``trio-stream demo``: the README's first command, as a real process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..serving import running_demo


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "server.log"


@pytest.fixture(scope="module")
def demo_url(log_path: Path) -> Iterator[str]:
    with running_demo(log_path, "--format", "assistant-transport") as url:
        yield url


def test_the_demo_serves_the_page_and_says_which_model(demo_url: str, log_path: Path) -> None:
    assert "<html" in httpx.get(f"{demo_url}/").text
    assert httpx.get(f"{demo_url}/api/info").json()["format"] == "assistant-transport"
    assert "(hypercorn, trio; model: scripted)" in log_path.read_text()


def test_a_turn_streams_at_a_pace_a_person_can_follow(demo_url: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hello"}]}
    arrivals: list[float] = []
    lines: list[str] = []
    with httpx.stream("POST", f"{demo_url}/api/chat/data-stream", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            arrivals.append(time.monotonic())
            lines.append(line)
    assert lines[-1].startswith('d:{"finishReason":"stop"')
    assert sum(line.startswith("b:") for line in lines) == 7  # five tools, two nested
    # Streamed as produced: the turn takes seconds, not one burst.
    assert arrivals[-1] - arrivals[0] > 2


def test_a_client_that_leaves_gets_its_run_cancelled(demo_url: str, log_path: Path) -> None:
    body = {"messages": [{"role": "user", "content": "Hello"}]}
    with httpx.stream("POST", f"{demo_url}/api/chat/data-stream", json=body, timeout=30) as reply:
        next(reply.iter_lines())
    deadline = time.monotonic() + 10
    expected = "client disconnected from /api/chat/data-stream: run cancelled"
    while expected not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    # The server is unharmed: the next request is answered.
    assert httpx.get(f"{demo_url}/api/info").status_code == 200


def test_the_module_runs_as_the_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_stream", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--format" in result.stdout
    assert "data-stream" in result.stdout
