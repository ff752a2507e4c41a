"""The figures the reliability suite measures, printed at the end of the run.

A test records what it tried and what it found (``figures.record("payloads",
"data-stream: cases tried", 400)``); the suite prints every figure, grouped by
section, in pytest's terminal summary, and ``docs/reliability.md`` quotes a
run of it. A figure is only ever a measured value: a test records after it
has counted, never a constant.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

__all__ = ["FIGURES", "Figures"]


class Figures:
    """Named figures by section, in the order they were first recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sections: dict[str, dict[str, object]] = {}

    def record(self, section: str, name: str, value: object) -> None:
        """Record ``value``; recording a name again replaces it."""
        with self._lock:
            self._sections.setdefault(section, {})[name] = value

    def add(self, section: str, name: str, amount: int) -> None:
        """Add ``amount`` to a count, starting from 0."""
        with self._lock:
            counts = self._sections.setdefault(section, {})
            previous = counts.get(name, 0)
            assert isinstance(previous, int)
            counts[name] = previous + amount

    def lines(self) -> list[str]:
        with self._lock:
            lines: list[str] = []
            for section, values in self._sections.items():
                lines.append(f"{section}:")
                lines.extend(f"    {name}: {value}" for name, value in values.items())
            return lines

    def save(self, path: Path) -> None:
        with self._lock:
            path.write_text(json.dumps(self._sections, indent=2, default=str) + "\n")


FIGURES = Figures()
"""The one collection the whole run records into (the suite is one process)."""

FIGURES_FILE_VARIABLE = "TRIO_STREAM_RELIABILITY_FIGURES"
"""Set to a path, and the figures are also written there as JSON."""


def save_if_asked() -> None:
    target = os.environ.get(FIGURES_FILE_VARIABLE)
    if target:
        FIGURES.save(Path(target))
