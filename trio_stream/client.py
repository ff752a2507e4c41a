"""Reading a run served elsewhere: an HTTP response, decoded back into chunks.

``stream(url, json=...)`` sends the request and, inside its ``async with``
block, gives the chunks of the response as they arrive, in whichever of the
five formats the server speaks (told by the response's headers, or by its
first event)::

    async with trio_stream.client.stream("http://agent/chat", json=body) as chunks:
        async for chunk in chunks:
            ...

It runs on Trio and on asyncio, over httpx. The block owns the request:
leaving it, however it is left (a ``break``, an exception, a cancellation),
closes the connection at once, so a trio-stream server on the other end
cancels its run and every task in it.

Whatever goes wrong is a ``RemoteError`` naming the URL and what happened:
a refused connection, an answer that is not 2xx (``RemoteStatusError``, with
the status and the JSON ``detail``), a body that breaks off or does not
decode, or silence longer than ``silence_timeout``. A body from a resumable
stream (one with an ``x-resumable-stream-id`` header) that breaks off is
resumed from the byte where it stopped, when ``resume_url`` says where: the
caller sees no gap and no duplicate.
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
from .chunks import Chunk
from .formats import StreamDecoder, decoder_for

__all__ = ["RemoteError", "RemoteStatusError", "RemoteStream", "stream"]

STREAM_ID_HEADER = "x-resumable-stream-id"

Failure = Literal["unreachable", "status", "broken", "undecodable", "silent"]

_CLOSE_TIMEOUT = 5.0
"""Seconds closing a connection may take, also while the caller is cancelled."""

_DETAIL_BYTES = 64 * 1024
"""The most of an error answer's body read for its ``detail``."""


class RemoteError(TrioStreamError, RuntimeError):
    """A remote stream could not be read to its end.

    ``failure`` says how: ``"unreachable"`` (no connection), ``"status"`` (an
    answer that is not 2xx), ``"broken"`` (the body broke off before its
    end), ``"undecodable"`` (bytes that are not the format), or ``"silent"``
    (nothing for longer than the silence timeout).
    """

    def __init__(self, url: str, failure: Failure, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.failure = failure


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
    ) -> None:
        self.url = url
        self.response = response
        self.stream_id = response.headers.get(STREAM_ID_HEADER)
        self.offset = 0
        self._client = client
        self._decoder = decoder
        self._resume = resume
        self._ready: deque[Chunk] = deque()
        self._ended = False
        self._pieces = response.aiter_bytes()
        self._resumptions = 0

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> Chunk:
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            piece = await self._next_piece()
            if piece is None:
                self._ended = True
                self._ready.extend(self._closed())
            else:
                self.offset += len(piece)
                self._ready.extend(self._decoded(piece))
        return self._ready.popleft()

    async def aclose(self) -> None:
        """Stop reading: close the body (``stream``'s block does it on leaving)."""
        self._ended = True
        await _abandon(self.response, self._pieces)

    def _closed(self) -> list[Chunk]:
        try:
            return self._decoder.close()
        except DecodeError as exc:
            raise RemoteError(
                self.url, "broken", f"the body ended before its format's end ({exc})"
            ) from exc

    def _decoded(self, piece: bytes) -> list[Chunk]:
        try:
            return self._decoder.feed(piece)
        except DecodeError as exc:
            message = f"sent bytes that do not decode: {exc}"
            raise RemoteError(self.url, "undecodable", message) from exc

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
        """Resume the body after ``exc`` broke it off, or raise ``RemoteError`` saying how."""
        failure, message = _broken(exc)
        resume = self._resume
        if resume is None or self.stream_id is None or failure == "silent":
            raise RemoteError(self.url, failure, message) from exc
        self._resumptions += 1
        if self._resumptions > resume.attempts:
            message = f"{message}, and {resume.attempts} resumptions failed"
            raise RemoteError(self.url, failure, message) from exc
        await _abandon(self.response, self._pieces)
        await anyio.sleep(resume.backoff * 2 ** (self._resumptions - 1))
        url = resume.url.format(stream_id=self.stream_id)
        request = self._client.build_request(
            "GET", url, params={"offset": str(self.offset)}, timeout=resume.timeout
        )
        self.response = await _send(self._client, request, url)
        self._pieces = self.response.aiter_bytes()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings of the clients made for a block, made once per process.

    They are httpx's defaults, which httpx would otherwise build again for
    every client, loading the certificate store each time: tens of
    milliseconds of CPU per block, a second before the first request of a
    run that calls fifty remote agents. A context can be shared by clients.
    """
    return httpx.create_ssl_context()


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


def _broken(exc: httpx.HTTPError) -> tuple[Failure, str]:
    """How a body broke off, from what httpx raised while reading it."""
    if isinstance(exc, httpx.ReadTimeout):
        return "silent", "sent nothing for longer than the silence timeout"
    return "broken", f"the connection broke off mid-body ({exc or type(exc).__name__})"


async def _send(client: httpx.AsyncClient, request: httpx.Request, url: str) -> httpx.Response:
    """Send ``request``, returning a 2xx response whose body is still to be read."""
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise RemoteError(url, "unreachable", f"did not answer in time ({exc})") from exc
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

    ``format`` names the format to read (``"data-stream"``, ``"ag-ui"``…)
    when the response does not tell. ``silence_timeout`` is how many seconds
    may pass without a byte before the stream counts as dead (none by
    default: the SSE formats send keep-alives, and a slow tool may keep a
    run quiet for long). ``resume_url``, with ``{stream_id}`` in it, is where
    a resumable stream can be read again from an ``offset`` (the resumable
    streams' resume route); a body that breaks off is then resumed up to
    ``resume_attempts`` times, waiting ``resume_backoff`` seconds, doubled at
    each attempt, before each.
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
    ) -> None:
        if silence_timeout is not None and not (
            math.isfinite(silence_timeout) and silence_timeout > 0
        ):
            raise ValueError(f"silence_timeout must be positive seconds, not {silence_timeout!r}")
        if resume_url is not None and "{stream_id}" not in resume_url:
            raise ValueError(f"resume_url needs a {{stream_id}} placeholder: {resume_url!r}")
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
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> RemoteStream:
        if self._stack is not None:
            raise RuntimeError("a stream(...) block can be entered only once")
        async with contextlib.AsyncExitStack() as stack:
            client = self._http_client
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(verify=_tls_context()))
            request = client.build_request(
                self._method,
                self.url,
                json=self._json,
                headers=self._headers,
                timeout=self._timeout,
            )
            response = await _send(client, request, self.url)
            remote = RemoteStream(
                self.url,
                client,
                response,
                decoder_for(response.headers, format=self._format),
                self._resume(),
            )
            stack.push_async_callback(remote.aclose)
            self._stack = stack.pop_all()
        return remote

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
