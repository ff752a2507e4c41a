"""The programs in examples/ run and print what their docstrings promise."""

from __future__ import annotations

import re
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


def test_nested_substreams_prints_a_tree_three_levels_deep() -> None:
    lines = run_example("nested_substreams.py").splitlines()
    assert lines[0] == "text 'Surveying the library. '"
    assert lines[1] == "call survey"
    assert lines[-2:] == ["result 'survey done'", "text 'Finished.'"]
    # Siblings run in parallel, so their order varies; each level's content does not.
    assert sorted(lines[2:-2]) == sorted(
        [
            "  text 'Two books on the shelf. '",
            "  call read_book",
            "  call read_book",
            "    text 'Reading Trio, two pages at a time. '",
            "    text 'Reading Anyio, two pages at a time. '",
            *["    call read_page"] * 4,
            *["    result '1: read'", "    result '2: read'"] * 2,
            "  result 'Trio: done'",
            "  result 'Anyio: done'",
        ]
    )


def test_error_handling_reports_expected_and_unexpected_errors() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "error_handling.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *shown, hidden = result.stdout.splitlines()
    assert shown == [
        "GET /expected -> 200",
        '0:"Looking up the city… "',
        '3:"Bad input: no such city: Atlantis"',
        "GET /unexpected -> 200",
        '0:"Looking up the city… "',
        '3:"the geocoder crashed"',
        "GET /hidden -> 200",
        '0:"Looking up the city… "',
    ]
    match = re.fullmatch(
        r'3:"the response failed on the server \(error reference ([0-9a-f]{12})\)"', hidden
    )
    assert match is not None, hidden
    # Both unexpected errors reached the server's log with their tracebacks,
    # the hidden one with the reference its client was given.
    assert result.stderr.count("Error in ASGI Framework") == 2
    assert result.stderr.count("RuntimeError: the geocoder crashed") == 2
    assert f"error reference {match[1]}: the client was sent" in result.stderr
    assert "Bad input" not in result.stderr


def test_cancel_on_disconnect_cancels_every_tool_promptly() -> None:
    lines = run_example("cancel_on_disconnect.py").splitlines()
    assert lines[:2] == ['client read: 0:"Asking three slow services at once… "', "client hung up"]
    # The server's log line and the tools' reports come in either order.
    log = [line for line in lines[2:] if line.startswith("server log: ")]
    assert len(log) == 1
    assert log[0].startswith("server log: client disconnected from /chat: run cancelled")
    cancelled = [line for line in lines[2:] if line not in log]
    assert [line.split(" cancelled")[0] for line in cancelled] == [
        "slow_service 1",
        "slow_service 2",
        "slow_service 3",
    ]
    # Within a second of the client leaving, not after the tools' minute.
    assert all(float(line.split()[3]) < 1000 for line in cancelled)
