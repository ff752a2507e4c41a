"""The programs in examples/ run and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_parallel_tools() -> None:
    lines = run_example("parallel_tools.py").splitlines()
    types = [line.split()[0] for line in lines]
    assert types.count("tool-call-begin") == 5
    assert types.count("tool-result") == 5
    assert lines[0].startswith("text-delta")
    assert "Working on it." in lines[0]
    assert lines[-1].startswith("text-delta")
    assert "All three tools are done." in lines[-1]
    # The nested fetches carry the research call's id as their parent.
    research_id = next(
        line.split("tool_call_id='")[1].split("'")[0]
        for line in lines
        if "tool_name='research'" in line
    )
    nested = [line for line in lines if "tool_name='fetch'" in line]
    assert len(nested) == 2
    assert all(f"parent_id='{research_id}'" in line for line in nested)


def test_errors_and_cancellation() -> None:
    assert run_example("errors_and_cancellation.py").splitlines() == [
        "received TextDeltaChunk(text_delta='Looking that up… ', parent_id=None)",
        "received ErrorChunk(error='the search backend is down')",
        "raised ConnectionError('the search backend is down')",
        "received TextDeltaChunk(text_delta='tick ', parent_id=None)",
        "endless run cleaned up (cancelled: True)",
        "block exited",
    ]
