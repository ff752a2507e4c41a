"""The log that several processes of one app share, read back line by line.

The agents-of-agents example and ``trio-stream demo --remote`` run agents in
processes of their own, all writing to one standard error, each line as
``<time> <role>[<pid>]: <message>`` (the time as Python's logging writes
it, to the millisecond). Tests read it to see what each process did, and
when.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Logged", "logged", "wait_for"]

_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+)\[(\d+)\]: (.*)")


@dataclass(frozen=True)
class Logged:
    """One line: when (a Unix time), which process, what."""

    at: float
    role: str
    pid: int
    message: str


def logged(text: str) -> list[Logged]:
    """The lines of ``text`` in that form, in order; other lines are left out."""
    found = []
    for line in text.splitlines():
        if match := _LINE.fullmatch(line):
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append(Logged(at, match[2], int(match[3]), match[4]))
    return found


def wait_for(
    log_path: Path, expected: set[tuple[str, str]], *, since: int = 0, timeout: float = 5
) -> dict[tuple[str, str], Logged]:
    """The first line for each ``(role, message start)`` in ``expected``, once all are logged.

    Only lines after the first ``since`` count. Fails, showing the log, if
    they are not all there within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = logged(log_path.read_text())[since:]
        found: dict[tuple[str, str], Logged] = {}
        for role, start in expected:
            first = [
                line for line in lines if line.role == role and line.message.startswith(start)
            ]
            if first:
                found[role, start] = first[0]
        if found.keys() == expected:
            return found
        assert time.monotonic() < deadline, (
            f"missing {sorted(expected - found.keys())} in:\n{log_path.read_text()[-4000:]}"
        )
        time.sleep(0.01)  # another process writes the log
