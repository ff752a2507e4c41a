"""The reliability suite: short by default, long with ``pytest --soak``."""

from __future__ import annotations

import pytest

from .figures import FIGURES, Figures


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """Whether the run asked for the long version of each test (``--soak``)."""
    return bool(request.config.getoption("--soak"))


@pytest.fixture
def figures() -> Figures:
    """Where a test records what it measured; see ``figures.py``."""
    return FIGURES
