"""The demo chat: a web page and a streaming endpoint per wire format.

``trio-stream demo`` serves it with hypercorn on Trio. Its model is a
scripted agent that needs nothing external, or an OpenAI-compatible server
when ``OPENAI_BASE_URL`` is set.
"""

from ._agent import Agent, ScriptedAgent
from ._app import FORMATS, Format, create_app

__all__ = ["FORMATS", "Agent", "Format", "ScriptedAgent", "create_app"]
