"""Trio-native structured concurrency for streaming assistant responses.

``create_run(callback)`` prepares a run; ``async with`` starts it and yields
its chunks. The callback receives a ``RunController`` and streams text,
reasoning, tool calls, state, sources, files and errors through it, in a
nursery that the ``async with`` block owns.
"""

from ._controller import RunController, Substream, ToolCallController
from ._errors import (
    DecodeError,
    SerializationError,
    StreamClosedError,
    ToolCallError,
    TrioStreamError,
    UsageError,
)
from ._flusher import Flusher
from ._remote import RemoteAgentError, RemoteOutcome
from ._run import (
    DEFAULT_HIGH_WATER_MARK,
    DEFAULT_HIGH_WATER_SIZE,
    ChunkStream,
    Run,
    RunCallback,
    create_run,
)
from ._scope import CancellationSignal
from ._server import LifespanGuard, serve
from ._state import StateProxy

__all__ = [
    "DEFAULT_HIGH_WATER_MARK",
    "DEFAULT_HIGH_WATER_SIZE",
    "CancellationSignal",
    "ChunkStream",
    "DecodeError",
    "Flusher",
    "LifespanGuard",
    "RemoteAgentError",
    "RemoteOutcome",
    "Run",
    "RunCallback",
    "RunController",
    "SerializationError",
    "StateProxy",
    "StreamClosedError",
    "Substream",
    "ToolCallController",
    "ToolCallError",
    "TrioStreamError",
    "UsageError",
    "create_run",
    "serve",
]

__version__ = "0.1.0"
