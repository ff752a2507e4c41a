"""What an app is told of its resumable streams: hooks, and ``wait_until``.

A producer lives in the ``ResumableStreams`` nursery, far from the request
that started it, so an app that meters streams (bytes stored, streams
started, how each ended) or alerts on failures learns of them through
hooks. They are plain functions, called on the event loop at the moment
things happen: a hook that blocks holds up the producer, and one that needs
to await must hand the work to a task of its own. A hook that raises is
logged, and changes nothing: the producer goes on and its stream ends as it
would have.

``wait_until`` is for platforms that stop an instance once its responses are
sent (serverless functions), unless told of work still going on: a
resumable run outlives its first response whenever its client leaves. The
hook receives, for each stream started, an awaitable that finishes when the
producer has stored the stream's end; hand it to the platform's own
``wait_until``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from .._telemetry import log_extra
from ._store import StreamStatus

__all__ = [
    "OnAcquire",
    "OnAppend",
    "OnError",
    "OnFinish",
    "ProducerEnded",
    "StreamHooks",
    "StreamRole",
    "WaitUntil",
]

logger = logging.getLogger("trio_stream")

StreamRole = Literal["producer", "consumer"]
"""Who acquired a stream: the producer ``start`` made, or a reader ``resume`` made."""

OnAcquire = Callable[[str, StreamRole], object]
"""``on_acquire(stream_id, role)``: a stream was started, or a client resumes it."""

OnAppend = Callable[[str, int], object]
"""``on_append(stream_id, byte_length)``: bytes were stored, every time."""

OnFinish = Callable[[str, StreamStatus, str | None], object]
"""``on_finish(stream_id, status, error)``: the stream's end is stored; ``error`` says why
it failed or was interrupted, ``None`` when it is ``done`` or was cancelled on request."""

OnError = Callable[[str, Exception], object]
"""``on_error(stream_id, exception)``: the run failed, outgrew a limit, or the store failed."""

WaitUntil = Callable[[Awaitable[None]], object]
"""``wait_until(producer_ended)``: an awaitable that finishes when the producer has ended."""


class ProducerEnded:
    """Finishes when one stream's producer has ended, its stream's end stored or lost.

    It never raises, can be awaited any number of times, on the event loop the
    producer runs on, and needs no awaiting at all.
    """

    __slots__ = ("_ended",)

    def __init__(self) -> None:
        self._ended = anyio.Event()

    def set(self) -> None:
        self._ended.set()

    def __await__(self) -> Generator[Any, None, None]:
        return self._ended.wait().__await__()


@dataclass(frozen=True, slots=True)
class StreamHooks:
    """The hooks of a ``ResumableStreams``, each optional."""

    on_acquire: OnAcquire | None = None
    on_append: OnAppend | None = None
    on_finish: OnFinish | None = None
    on_error: OnError | None = None
    wait_until: WaitUntil | None = None

    def __post_init__(self) -> None:
        for name in ("on_acquire", "on_append", "on_finish", "on_error", "wait_until"):
            hook = getattr(self, name)
            if hook is None:
                continue
            if not callable(hook):
                raise TypeError(f"{name} must be a function, not {type(hook).__name__}")
            if inspect.iscoroutinefunction(hook):
                # Its coroutine would never run, and the producer cannot wait
                # on it without being held up by it.
                raise TypeError(
                    f"{name} is called as a plain function, on the event loop; "
                    "an async one would never run (start a task from it instead)"
                )

    def call(self, name: str, stream_id: str, *args: Any) -> None:
        """Call the hook ``name``, if there is one; log what it raises."""
        hook: Callable[..., object] | None = getattr(self, name)
        if hook is None:
            return
        try:
            hook(*args) if name == "wait_until" else hook(stream_id, *args)
        except Exception:
            logger.exception(
                "resumable stream %s: its %s hook raised",
                stream_id,
                name,
                extra=log_extra(stream_id=stream_id),
            )
