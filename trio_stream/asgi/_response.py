"""Starlette responses that stream a body while listening for the client to leave.

``ListeningResponse`` is the sequence every streamed response of the package
shares: send the headers, write the body next to a task listening for
``http.disconnect`` (and for the server's shutdown cut-off), then send the
body's last bytes once that listener has stopped. ``RunResponse`` streams a
run through it; the resumable streams' reader streams a store.

``RunResponse`` owns the run's lifetime. It enters the run inside the
listening task group; when the client goes away, leaving the run's block
cancels every task of the run and waits for them. Listening matters: a run
waiting on a slow tool writes nothing, and a server only notices a vanished
client when it writes, so without the listener an abandoned run would go on
until its next chunk, or forever.

When the run fails, its error chunk is already in the stream; the response
sends it, then the format's closing bytes and the end of the body, and only
then raises, so the client sees a complete body and the server's error
handling sees the exception. A run that has ended by the time its last
batch is encoded has that batch sent with the closing bytes, in the body's
final message: each message is a write of its own on the server, and the end
of the body one more. When the server shuts down gracefully
(``trio_stream.serve``), a run still going at the cut-off is cancelled the
same way, and the client is sent an error chunk saying so and the closing
bytes: a complete body, in time.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._run import Run
from .._shutdown import SHUTDOWN_MESSAGE, Shutdown, shutdown_of
from .._telemetry import Serving, log_extra
from ..chunks import ErrorChunk
from ..formats import StreamEncoder
from ..formats.ag_ui import AGUIEncoder
from ..formats.assistant_transport import AssistantTransportEncoder
from ..formats.data_stream import DataStreamEncoder
from ..formats.object_stream import ObjectStreamEncoder
from ..formats.openai_stream import OpenAIStreamEncoder
from ..formats.ui_message_stream import UIMessageStreamEncoder
from ._delivery import (
    BodySender,
    ClientGone,
    HeartbeatOption,
    Interruption,
    body_sender,
    heartbeat_interval,
    until_interrupted,
    write_chunks_but_last,
)

__all__ = [
    "AGUIResponse",
    "AssistantTransportResponse",
    "DataStreamResponse",
    "ListeningResponse",
    "ObjectStreamResponse",
    "OpenAIStreamResponse",
    "RunResponse",
    "UIMessageStreamResponse",
]

logger = logging.getLogger("trio_stream")


class ListeningResponse(Response, abc.ABC):
    """A streamed body whose writing stops when the client leaves.

    Subclasses write the body in ``produce`` and give its last bytes in
    ``ending``; this class sends the headers, runs ``produce`` next to the
    disconnect listener, and sends the ending after the listener has
    stopped: a server reports the end of a response as a disconnect, which
    must not cancel that last write.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
        except OSError:
            self.left_before_start(scope)
            return
        send_body = body_sender(send)
        interruption = await until_interrupted(
            receive, partial(self.produce, send_body), shutdown=self.shutdown(scope)
        )
        if interruption is not None and interruption.reason == "disconnect":
            self.left(scope, interruption)
        else:
            with contextlib.suppress(ClientGone):
                await send_body(self.ending(scope, interruption), more_body=False)
        await self.ended()

    @abc.abstractmethod
    async def produce(self, send_body: BodySender) -> None:
        """Write the body, but its ending; ``ClientGone`` from a write may propagate."""

    @abc.abstractmethod
    def ending(self, scope: Scope, interruption: Interruption | None) -> bytes:
        """The body's last bytes: after ``produce`` returned, or at the shutdown cut-off."""

    def shutdown(self, scope: Scope) -> Shutdown | None:
        """The shutdown whose cut-off interrupts ``produce``; none by default."""
        return None

    def left_before_start(self, scope: Scope) -> None:
        """The client left before the headers went out: nothing was produced."""

    def left(self, scope: Scope, interruption: Interruption) -> None:
        """The client left while the body was being written."""

    async def ended(self) -> None:
        """Called last, whatever happened."""


class RunResponse(ListeningResponse):
    """Streams a run's chunks as a response body, in the format of an encoder.

    Starlette and FastAPI accept it as a route's return value. ``status_code``,
    ``headers`` and ``background`` work as for any Starlette response; the
    format's own headers are added unless ``headers`` sets them.

    ``encoder`` defaults to a new ``encoder_class()``; pass one to set a
    format's options. ``heartbeat`` sends the format's keep-alive bytes after
    that much silence: ``None`` keeps the format's default, ``True`` means
    every 15 s, ``False`` turns it off.
    """

    encoder_class: ClassVar[type[StreamEncoder] | None] = None
    """The format of a subclass; ``RunResponse`` itself needs an ``encoder``."""

    def __init__(
        self,
        run: Run,
        *,
        encoder: StreamEncoder | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
        heartbeat: HeartbeatOption = None,
    ) -> None:
        if not isinstance(run, Run):
            raise TypeError(
                f"{type(self).__name__} streams a run made by create_run(callback), "
                f"not {type(run).__name__}"
            )
        if encoder is None:
            if self.encoder_class is None:
                raise TypeError("RunResponse needs an encoder: RunResponse(run, encoder=...)")
            encoder = self.encoder_class()
        elif self.encoder_class is not None and not isinstance(encoder, self.encoder_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.encoder_class.__name__}, "
                f"not {type(encoder).__name__}"
            )
        self.run = run
        self.encoder = encoder
        self.heartbeat = heartbeat_interval(encoder, heartbeat)
        self.status_code = status_code
        self.media_type = encoder.media_type
        self.background = background
        self.init_headers(headers)
        self._add_format_headers(encoder)
        self._failure: Exception | None = None
        self._serving: Serving | None = None
        self._last_body = b""

    def _add_format_headers(self, encoder: StreamEncoder) -> None:
        """Add the format's headers to ``raw_headers``, but those already set.

        As ``self.headers.setdefault`` would, without building the headers
        object for a response that never reads it.
        """
        raw_headers = self.raw_headers
        present = {name for name, _ in raw_headers}
        for name, value in encoder.headers.items():
            key = name.lower().encode("latin-1")
            if key not in present:
                present.add(key)
                raw_headers.append((key, value.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The run's span continues the caller's trace, and its log lines name
        # the request, from here to the end of the response.
        serving = self._serving = Serving(self.run._telemetry, scope, self.encoder)
        try:
            await super().__call__(scope, receive, send)
        finally:
            serving.ended()

    def shutdown(self, scope: Scope) -> Shutdown | None:
        return shutdown_of(scope)

    def left_before_start(self, scope: Scope) -> None:
        logger.info(
            "client disconnected from %s: the run was not started",
            scope.get("path"),
            extra=log_extra(),
        )

    async def produce(self, send_body: BodySender) -> None:
        serving = self._serving
        assert serving is not None
        try:
            opening = self.encoder.start()
            if opening:
                await send_body(opening)
                serving.bytes += len(opening)
            async with self.run as chunks:
                # The last batch's bytes go out with the ending: one write less.
                self._last_body = await write_chunks_but_last(
                    chunks, self.encoder, serving.counting(send_body), self.heartbeat
                )
        except ClientGone:
            raise
        except Exception as exc:
            # The error chunk is in the body already; the failure is raised
            # once the body has ended.
            self._failure = exc

    def left(self, scope: Scope, interruption: Interruption) -> None:
        # Leaving the run's block waited for every task of the run.
        if self._serving is not None:
            self._serving.run.disconnected()
        logger.info(
            "client disconnected from %s: run cancelled, all its tasks done in %.1f ms",
            scope.get("path"),
            (time.perf_counter() - interruption.at) * 1000,
            extra=log_extra(),
        )

    def ending(self, scope: Scope, interruption: Interruption | None) -> bytes:
        last_body, self._last_body = self._last_body, b""
        if interruption is None:
            # Also after a failure: the error chunk goes out with the rest,
            # and a client must see a complete body, not a truncated transfer.
            return self._counted(last_body + self.encoder.finish())
        if self._serving is not None:
            self._serving.run.cut_off()
        logger.warning(
            "server shutting down: the run of %s was cancelled (all its tasks done in "
            "%.1f ms) and its client sent an error chunk",
            scope.get("path"),
            (time.perf_counter() - interruption.at) * 1000,
            extra=log_extra(),
        )
        return self._counted(
            last_body + self.encoder.encode([ErrorChunk(SHUTDOWN_MESSAGE)]) + self.encoder.finish()
        )

    def _counted(self, body: bytes) -> bytes:
        if self._serving is not None:
            self._serving.bytes += len(body)
        return body

    async def ended(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            try:
                raise failure
            finally:
                del failure
        if self.background is not None:
            await self.background()


class DataStreamResponse(RunResponse):
    """A run streamed as the assistant-ui data stream (``text/plain``).

    Heartbeats are off by default; when on, a blank line goes out after
    each ``heartbeat`` seconds of silence.
    """

    encoder_class = DataStreamEncoder


class AssistantTransportResponse(RunResponse):
    """A run streamed as assistant transport events (``text/event-stream``).

    Heartbeats are on by default: an SSE comment after 15 s of silence.
    """

    encoder_class = AssistantTransportEncoder


class UIMessageStreamResponse(RunResponse):
    """A run streamed as the AI SDK's UI message stream (``text/event-stream``).

    Heartbeats are on by default: an SSE comment after 15 s of silence.
    """

    encoder_class = UIMessageStreamEncoder


class OpenAIStreamResponse(RunResponse):
    """A run streamed as OpenAI ``chat.completion.chunk`` events.

    Heartbeats are on by default: an SSE comment after 15 s of silence.
    Pass ``encoder=OpenAIStreamEncoder(model=..., include_usage=...)`` to set
    the model name or add the usage chunk.
    """

    encoder_class = OpenAIStreamEncoder


class AGUIResponse(RunResponse):
    """A run streamed as AG-UI events (``text/event-stream``), for an AG-UI client.

    Heartbeats are on by default: an SSE comment after 15 s of silence.
    Pass ``encoder=AGUIEncoder(thread_id=..., run_id=..., state=...)`` with
    the ids and the state of the client's ``RunAgentInput``, so that the
    events name its run and the state updates patch the state it holds.
    """

    encoder_class = AGUIEncoder


class ObjectStreamResponse(RunResponse):
    """A run's state streamed as assistant-ui's object stream (``text/event-stream``).

    Only the state travels: each batch of operations is an event, which
    the client (``fromObjectStreamResponse``) applies to the state it holds.
    ``snapshot`` is the state the client starts from, sent before the first
    operations: pass the run's initial state. Heartbeats are on by default:
    an SSE comment after 15 s of silence.
    """

    encoder_class = ObjectStreamEncoder

    def __init__(
        self,
        run: Run,
        *,
        snapshot: Any = None,
        encoder: StreamEncoder | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
        heartbeat: HeartbeatOption = None,
    ) -> None:
        if snapshot is not None:
            if encoder is not None:
                raise TypeError("give the snapshot to the encoder: ObjectStreamEncoder(snapshot)")
            encoder = ObjectStreamEncoder(snapshot)
        super().__init__(
            run,
            encoder=encoder,
            status_code=status_code,
            headers=headers,
            background=background,
            heartbeat=heartbeat,
        )
