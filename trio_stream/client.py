"""Reading a run served elsewhere: an HTTP response, decoded back into chunks.

``stream(url, json=...)`` sends the request and, inside its ``async with``
block, gives the chunks of the response as they arrive, in whichever of the
formats (``trio_stream.formats.FORMATS``) the server speaks, told by the
response's headers, or by its first event::

    async with trio_stream.client.stream("http://agent/chat", json=body) as chunks:
        async for chunk in chunks:
            ...

It runs on Trio and on asyncio, over httpx. The block owns the request:
leaving it, however it is left (a ``break``, an exception, a cancellation),
closes the connection at once, so a trio-stream server on the other end
cancels its run and every task in it.

Whatever goes wrong is a ``RemoteError`` naming the URL and what happened:
a refused connection, an answer that is not 2xx (``RemoteStatusError``, with
the status and the JSON ``detail``), a body that breaks off, does not decode
or is in no known format, or silence longer than ``silence_timeout``. A body
from a resumable stream (one with an ``x-resumable-stream-id`` header) that
breaks off is resumed from the byte where it stopped, when ``resume_url``
says where: the caller sees no gap and no duplicate.
"""

from __future__ import annotations

import contextlib
import functools
import math
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx

from ._errors import DecodeError, TrioStreamError
from ._telemetry import format_name, inject_trace_context
from .chunks import Chunk
from .formats import FORMATS, StreamDecoder, decoder_for, format_named, merged_deltas

__all__ = ["RemoteError", "RemoteStatusError", "RemoteStream", "stream"]

STREAM_ID_HEADER = "x-resumable-stream-id"

Failure = Literal["unreachable", "status", "broken", "undecodable", "silent"]

_CLOSE_TIMEOUT = 5.0
"""Seconds closing a connection may take, also while the caller is cancelled."""

_DETAIL_BYTES = 64 * 1024
"""The most of an error answer's body read for its ``detail``."""


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of the clients this module makes, made once per process.

    Making them means reading the certificate authorities' bundle: some
    10 to 150 ms of blocking work that a client made per request (a remote
    tool call without an ``http_client``) would otherwise repeat every time.
    """
    return httpx.create_ssl_context()


class RemoteError(TrioStreamError, RuntimeError):
    """A remote stream could not be read to its end.

    ``failure`` says how: ``"unreachable"`` (no connection), ``"status"`` (an
    answer that is not 2xx), ``"broken"`` (the body broke off before its
    end), ``"undecodable"`` (bytes that are not the format), or ``"silent"``
    (nothing for longer than the silence timeout).
    """

    def __init__(self, url: str, failure: Failure, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.failure = failure
        self.reason = reason
        """What happened, without the URL: it reads after the URL and a colon, or
        after "the remote agent at <url>" (``RemoteAgentError``)."""


class RemoteStatusError(RemoteError):
    """The server answered with a status that is not 2xx."""

    def __init__(self, url: str, status_code: int, detail: Any) -> None:
        shown = detail if isinstance(detail, str) else repr(detail)
        super().__init__(url, "status", f"answered {status_code}: {shown}")
        self.status_code = status_code
        self.detail = detail
        """The JSON body's ``detail`` (or the whole JSON body, or its text)."""


class RemoteStream:
    """The chunks of one remote response, in order; iterate it with ``async for``.

    ``offset`` is how many bytes of the body have arrived, and ``stream_id``
    the resumable stream's id if the server gave one.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        response: httpx.Response,
        decoder: StreamDecoder,
        resume: _Resume | None,
        merge_deltas: bool = False,
    ) -> None:
        self.url = url
        self.response = response
        self.stream_id = response.headers.get(STREAM_ID_HEADER)
        self.offset = 0
        self._client = client
        self._decoder = decoder
        self._resume = resume
        self._feed = decoder.feed_merged if merge_deltas else decoder.feed
        self._merge_deltas = merge_deltas
        self._ready: deque[Chunk] = deque()
        self._ended = False
        self._pieces = response.aiter_bytes()
        self._resumptions = 0

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def format(self) -> str | None:
        """The name of the format the body is read in (``FORMATS``); ``None`` while an
        event stream that did not name it has not shown its first event yet."""
        decoder = getattr(self._decoder, "_decoder", self._decoder)  # a sniffing one's choice
        return None if decoder is None else format_name(decoder)

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> Chunk:
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            try:
                piece = await self._next_piece()
                if piece is None:
                    self._ended = True
                    self._ready.extend(self._closed())
                else:
                    self.offset += len(piece)
                    self._ready.extend(self._decoded(piece))
            except RemoteError:
                self._ended = True  # the stream cannot go on after its failure
                raise
        return self._ready.popleft()

    async def aclose(self) -> None:
        """Stop reading: close the body (``stream``'s block does it on leaving)."""
        self._ended = True
        await _abandon(self.response, self._pieces)

    def _closed(self) -> list[Chunk]:
        try:
            held = self._decoder.close()
        except DecodeError as exc:
            reason = f"broke off mid-body: the body ended before its format's end ({exc})"
            raise RemoteError(self.url, "broken", reason) from exc
        return merged_deltas(held) if self._merge_deltas else held

    def _decoded(self, piece: bytes) -> list[Chunk]:
        try:
            return self._feed(piece)
        except DecodeError as exc:
            reason = f"sent bytes that do not decode: {exc}"
            raise RemoteError(self.url, "undecodable", reason) from exc

    async def _next_piece(self) -> bytes | None:
        """The body's next bytes, ``None`` at its end; a resumable body that breaks off
        is resumed where it broke."""
        while True:
            try:
                piece = await anext(self._pieces)
            except StopAsyncIteration:
                return None
            except (httpx.ReadTimeout, httpx.TransportError) as exc:
                await self._resume_after(exc)
                continue
            self._resumptions = 0
            return piece

    async def _resume_after(self, exc: httpx.HTTPError) -> None:
        """Resume the body after ``exc`` broke it off, or raise ``RemoteError`` saying how.

        Each attempt waits first, ``backoff`` doubled at each one. The
        attempts count until a resumed body brings bytes again: a resume
        request that fails, is answered 5xx, or whose body breaks off before
        its first byte spends one. A 4xx answer (an unknown stream, an offset
        past its end) ends the stream at once: asking again cannot help.
        """
        broken = _broken(self.url, exc, self.response.request)
        resume = self._resume
        if resume is None or not resume.attempts or self.stream_id is None:
            raise broken from exc
        if broken.failure == "silent":  # a server that is there, and says nothing
            raise broken from exc
        await _abandon(self.response, self._pieces)
        url = resume.url.format(stream_id=self.stream_id)
        at = f"broke off mid-body at byte {self.offset}"
        last: RemoteError = broken
        while self._resumptions < resume.attempts:
            self._resumptions += 1
            await anyio.sleep(resume.backoff * 2 ** (self._resumptions - 1))
            request = self._client.build_request(
                "GET", url, params={"offset": str(self.offset)}, timeout=resume.timeout
            )
            try:
                self.response = await _send(self._client, request, url)
            except RemoteStatusError as refused:
                if refused.status_code < 500:
                    reason = f"{at}, and resuming it was refused ({refused})"
                    raise RemoteError(self.url, "broken", reason) from refused
                last = refused
            except RemoteError as failed:
                last = failed
            else:
                self._pieces = self.response.aiter_bytes()
                return
        reason = f"{at}, and {resume.attempts} attempts to resume it failed (the last: {last})"
        raise RemoteError(self.url, "broken", reason) from last


async def _abandon(response: httpx.Response, pieces: AsyncIterator[bytes]) -> None:
    """Close a response whose body was not read to its end.

    httpx reads a body through a chain of async generators, and Trio warns
    about each one collected unfinished. Once the response is closed, the
    next read fails through the whole chain, which finishes every one.
    """
    await response.aclose()
    with contextlib.suppress(Exception):
        async for _ in pieces:
            pass


class _Resume:
    __slots__ = ("attempts", "backoff", "timeout", "url")

    def __init__(self, url: str, attempts: int, backoff: float, timeout: httpx.Timeout) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout


def _broken(url: str, exc: httpx.HTTPError, request: httpx.Request) -> RemoteError:
    """How the body of ``request`` broke off, from what httpx raised while reading it."""
    if isinstance(exc, httpx.ReadTimeout):
        return RemoteError(url, "silent", _silence(request, "nothing arrived"))
    reason = f"the connection closed before the body's end ({exc or type(exc).__name__})"
    return RemoteError(url, "broken", f"broke off mid-body: {reason}")


def _seconds(request: httpx.Request, timeout: str) -> str:
    """One of the request's timeouts (``"read"``, ``"connect"``…), as ``"0.5 s"``."""
    seconds = request.extensions.get("timeout", {}).get(timeout)
    return "ever" if seconds is None else f"{seconds:g} s"


def _silence(request: httpx.Request, what: str) -> str:
    return f"went silent: {what} for {_seconds(request, 'read')} (silence_timeout)"


async def _send(client: httpx.AsyncClient, request: httpx.Request, url: str) -> httpx.Response:
    """Send ``request``, returning a 2xx response whose body is still to be read.

    The current span's trace context goes with it (``traceparent``), so that a
    server that traces continues the caller's trace.
    """
    inject_trace_context(request.headers)
    try:
        response = await client.send(request, stream=True)
    except httpx.ReadTimeout as exc:
        raise RemoteError(url, "silent", _silence(request, "no answer")) from exc
    except httpx.PoolTimeout as exc:
        reason = "cannot be reached: no connection of the client's pool came free in time"
        raise RemoteError(url, "unreachable", reason) from exc
    except httpx.ConnectTimeout as exc:
        waited = _seconds(request, "connect")
        reason = f"cannot be reached: no connection within {waited} (connect_timeout)"
        raise RemoteError(url, "unreachable", reason) from exc
    except httpx.TimeoutException as exc:
        waited = _seconds(request, "write")
        reason = f"cannot be reached: the request was not taken within {waited}"
        raise RemoteError(url, "unreachable", reason) from exc
    except httpx.TransportError as exc:
        raise RemoteError(url, "unreachable", f"cannot be reached ({exc})") from exc
    if response.is_success:
        return response
    try:
        detail = await _detail(response)
    finally:
        await response.aclose()
    raise RemoteStatusError(url, response.status_code, detail)


async def _detail(response: httpx.Response) -> Any:
    """What an error answer says: its JSON ``detail``, its JSON, or its text."""
    body = b""
    with contextlib.suppress(httpx.HTTPError):
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) >= _DETAIL_BYTES:
                break
    try:
        value = httpx.Response(200, content=body).json()
    except ValueError:
        return body[:_DETAIL_BYTES].decode("utf-8", "replace") or response.reason_phrase
    if isinstance(value, dict) and "detail" in value:
        return value["detail"]
    return value


class stream:
    """Send a request and read its response's chunks inside ``async with``.

    ``json`` is the request body, sent as JSON with ``method`` (``POST``);
    ``headers`` are added to the request. ``http_client`` is an
    ``httpx.AsyncClient`` of the caller's (its pool, its settings; the block
    never closes it); by default a client is made for the block.

    ``format`` names the format to read (``"data-stream"``,
    ``"openai-stream"``…: a name in ``trio_stream.formats.FORMATS``) when
    the response does not tell. ``silence_timeout`` is how many seconds may
    pass without a byte before the stream counts as dead (none by default:
    the SSE formats send keep-alives, and a slow tool may keep a run quiet
    for long). ``resume_url``, with ``{stream_id}`` in it, is where a
    resumable stream can be read again from an ``offset`` (the resumable
    streams' resume route); a body that breaks off is then resumed, with up
    to ``resume_attempts`` attempts in a row that bring no byte, each after
    ``resume_backoff`` seconds, doubled at each attempt.

    With ``merge_deltas``, consecutive deltas of one part that arrive in one
    read of the body come as one chunk (``StreamDecoder.feed_merged``): the
    same text, reasoning and arguments, in fewer, larger chunks, which is
    what a reader that passes chunks on (a relay) wants; where the deltas
    were cut is then the network's choice rather than the server's.
    """

    def __init__(
        self,
        url: str,
        *,
        json: Any = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        format: str | None = None,
        silence_timeout: float | None = None,
        connect_timeout: float = 10.0,
        resume_url: str | None = None,
        resume_attempts: int = 5,
        resume_backoff: float = 0.1,
        merge_deltas: bool = False,
    ) -> None:
        if silence_timeout is not None and not (
            math.isfinite(silence_timeout) and silence_timeout > 0
        ):
            raise ValueError(f"silence_timeout must be positive seconds, not {silence_timeout!r}")
        if resume_url is not None and "{stream_id}" not in resume_url:
            raise ValueError(f"resume_url needs a {{stream_id}} placeholder: {resume_url!r}")
        if resume_attempts < 0:
            raise ValueError(f"resume_attempts must be 0 or more, not {resume_attempts!r}")
        if format is not None:
            format_named(format)  # an unknown name is the caller's mistake: say so now
        self.url = url
        self._json = json
        self._method = method
        self._headers = dict(headers or {})
        self._http_client = http_client
        self._format = format
        self._timeout = httpx.Timeout(connect_timeout, read=silence_timeout)
        self._resume_url = resume_url
        self._resume_attempts = resume_attempts
        self._resume_backoff = resume_backoff
        self._merge_deltas = merge_deltas
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> RemoteStream:
        if self._stack is not None:
            raise RuntimeError("a stream(...) block can be entered only once")
        async with contextlib.AsyncExitStack() as stack:
            client = self._http_client
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(verify=_tls()))
            request = client.build_request(
                self._method,
                self.url,
                json=self._json,
                headers=self._headers,
                timeout=self._timeout,
            )
            response = await _send(client, request, self.url)
            stack.push_async_callback(response.aclose)
            remote = RemoteStream(
                self.url,
                client,
                response,
                self._decoder(response),
                self._resume(),
                merge_deltas=self._merge_deltas,
            )
            stack.push_async_callback(remote.aclose)
            self._stack = stack.pop_all()
        return remote

    def _decoder(self, response: httpx.Response) -> StreamDecoder:
        try:
            return decoder_for(response.headers, format=self._format)
        except ValueError:
            kind = response.headers.get("content-type", "untyped")
            reason = (
                f"answered a body of no known format ({kind!r}); if it is one of "
                f"{', '.join(FORMATS)}, pass format="
            )
            raise RemoteError(self.url, "undecodable", reason) from None

    def _resume(self) -> _Resume | None:
        if self._resume_url is None:
            return None
        return _Resume(
            self._resume_url, self._resume_attempts, self._resume_backoff, self._timeout
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None
        # Closing an unread response closes its connection: the server hears
        # the client leave, and a trio-stream server cancels its run.
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            await stack.aclose()
