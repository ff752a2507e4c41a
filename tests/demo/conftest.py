"""The browser test's screenshots, listed at the end of every run (no ``-s`` needed)."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    screenshots = [
        (report.nodeid, value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", ())
        if name == "screenshot"
    ]
    if screenshots:
        terminalreporter.section("demo screenshots")
        for nodeid, path in screenshots:
            terminalreporter.write_line(f"{nodeid}: {path}")
