"""Which model the demo talks to: a real one when the environment names it."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._agent import Agent, ScriptedAgent

__all__ = ["agent_from_environment"]


def agent_from_environment(environ: Mapping[str, str] = os.environ) -> Agent:
    """The scripted agent, or an OpenAI-compatible model if ``OPENAI_BASE_URL`` is set."""
    if not environ.get("OPENAI_BASE_URL"):
        return ScriptedAgent()
    raise NotImplementedError
