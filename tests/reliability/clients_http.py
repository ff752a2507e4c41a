"""A raw HTTP/1.1 client on Trio sockets, for clients that misbehave on purpose.

An HTTP library decides for its user when bytes are read and how a
connection ends. The reliability tests need the opposite: read exactly k
bytes of a response and hang up, send half a request, stop reading with a
tiny receive buffer, end with a FIN, a half-close or a reset. So this module
speaks HTTP/1.1 by hand: it writes request bytes, reads raw response bytes,
and parses them (status, headers, chunked framing) only when asked.

It also knows what a complete body of ``server_app``'s runs looks like in
each format, so a test can tell a complete stream from a truncated one
without comparing bytes that legitimately differ between runs (timestamps,
message ids, the interleaving of parallel tools).
"""

from __future__ import annotations

import json
import re
import resource
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import trio

__all__ = [
    "FORMATS",
    "DeltaClock",
    "Ending",
    "HttpResponse",
    "KeepAliveConnection",
    "Target",
    "chunk_boundaries",
    "connect",
    "end_connection",
    "fetch",
    "fetch_json",
    "fetch_timed",
    "parse_response",
    "problems",
    "raise_open_file_limit",
    "read_exactly",
    "read_to_end",
    "request_bytes",
]

FORMATS = ("data-stream", "assistant-transport", "ui-message-stream", "openai")

Ending = Literal["close", "reset", "half-close"]
"""How a client leaves: ``close`` (a FIN, or a reset if it left bytes unread),
``reset`` (``SO_LINGER`` 0: always a reset), ``half-close`` (it shuts down its
side, reads what the server still sends, then closes)."""


def raise_open_file_limit() -> int:
    """Raise this process's limit on open files to its hard limit; returns it.

    Thousands of streams are thousands of sockets, on both sides: a default
    soft limit of 1,024 would turn the load into ``EMFILE`` errors.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class Target:
    """Where the server listens."""

    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        assert parts.hostname is not None, url
        assert parts.port is not None, url
        return cls(parts.hostname, parts.port)


def request_bytes(
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    body: bytes | None = None,
    keep_alive: bool = False,
) -> bytes:
    """The bytes of one HTTP/1.1 request (``Connection: close`` unless ``keep_alive``)."""
    if params:
        path = f"{path}?{urlencode(params)}"
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: */*"]
    if not keep_alive:
        lines.append("Connection: close")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def connect(target: Target, *, receive_buffer: int | None = None) -> trio.SocketStream:
    """A connection to ``target``; ``receive_buffer`` shrinks the kernel's receive buffer.

    The buffer is set before connecting, since the window it implies is
    announced in the handshake.
    """
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect((target.host, target.port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def read_exactly(stream: trio.SocketStream, count: int) -> bytes:
    """Exactly ``count`` bytes, or fewer if the server closed first."""
    data = bytearray()
    while len(data) < count:
        piece = await stream.receive_some(count - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


async def read_to_end(stream: trio.SocketStream) -> bytes:
    """Everything until the server closes the connection."""
    data = bytearray()
    while piece := await stream.receive_some(65536):
        data += piece
    return bytes(data)


async def end_connection(stream: trio.SocketStream, ending: Ending) -> None:
    """Leave the way ``ending`` says; returns once the socket is closed."""
    if ending == "reset":
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif ending == "half-close":
        try:
            await stream.send_eof()
            with trio.move_on_after(5):
                await read_to_end(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await stream.aclose()


@dataclass
class HttpResponse:
    """A response as received: status, headers, and the body's payload if it was chunked.

    ``complete`` says whether the chunked body ended with its terminating
    zero-size chunk: a body cut short is not complete.
    """

    raw: bytes
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""
    complete: bool = False
    size: int = 0
    """How many bytes of ``raw`` the response took, once complete."""

    def json(self) -> Any:
        return json.loads(self.payload)


def _header_end(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return -1 if end < 0 else end + 4


def parse_response(raw: bytes) -> HttpResponse:
    """Parse what a client received, however much of a response it is."""
    response = HttpResponse(raw)
    end = _header_end(raw)
    if end < 0:
        return response
    head = raw[: end - 4].decode("latin-1").split("\r\n")
    response.status = int(head[0].split()[1])
    for line in head[1:]:
        name, _, value = line.partition(":")
        response.headers[name.strip().lower()] = value.strip()
    body = raw[end:]
    if response.headers.get("transfer-encoding", "").lower() != "chunked":
        length = int(response.headers.get("content-length", "0"))
        response.payload = body[:length]
        response.complete = len(body) >= length
        response.size = end + length
        return response
    payload = bytearray()
    for start, stop in _chunks(body):
        if start == stop:
            response.complete = True
            response.size = end + stop + 2
            break
        payload += body[start:stop]
    response.payload = bytes(payload)
    return response


def _chunks(body: bytes) -> list[tuple[int, int]]:
    """Where each whole chunk's data is in a chunked ``body``; ``(i, i)`` is the last chunk."""
    found: list[tuple[int, int]] = []
    at = 0
    while True:
        line_end = body.find(b"\r\n", at)
        if line_end < 0:
            return found
        size = int(body[at:line_end].split(b";")[0], 16)
        start = line_end + 2
        if size == 0:
            if body[start : start + 2] == b"\r\n":
                found.append((start, start))
            return found
        if len(body) < start + size + 2:
            return found
        found.append((start, start + size))
        at = start + size + 2


def chunk_boundaries(raw: bytes) -> list[int]:
    """The offsets in a whole response where a piece of it ends: headers, each chunk's
    size line, data and CRLF. A client that leaves there leaves between two writes."""
    end = _header_end(raw)
    offsets = [end]
    for start, stop in _chunks(raw[end:]):
        offsets += [end + start, end + stop, end + stop + 2]
    return sorted(set(offsets))


async def fetch(
    target: Target,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    body: bytes | None = None,
) -> HttpResponse:
    """One whole request and response, on a connection of its own."""
    stream = await connect(target)
    async with stream:
        await stream.send_all(request_bytes(method, path, params, body=body))
        return parse_response(await read_to_end(stream))


_STAMPED = re.compile(rb"t(\d{5})@(\d+\.\d{6});")

_LOOKBACK = 64
"""Bytes of earlier data scanned again with new data: more than a stamp's length."""


class DeltaClock:
    """A response's bytes as they arrive, and how long each text delta took to come.

    Every text delta of ``server_app`` carries the ``time.monotonic()`` at
    which its run appended it (``t00012@1234.567890;``); its delivery time is
    its arrival minus that. The monotonic clock is one clock for every
    process of a Linux machine, so the server's reading and the client's
    compare. A stamp never straddles two HTTP chunks (the server writes
    whole encoded chunks), but may straddle two reads, hence the look-back.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.delivery: list[float] = []
        self._next = 0

    def feed(self, piece: bytes, arrived: float) -> None:
        scan_from = max(len(self.data) - _LOOKBACK, 0)
        self.data += piece
        for match in _STAMPED.finditer(self.data, scan_from):
            if int(match[1]) == self._next:
                self._next += 1
                self.delivery.append(arrived - float(match[2]))


async def fetch_timed(
    target: Target, path: str, params: dict[str, Any] | None = None
) -> tuple[HttpResponse, list[float]]:
    """``GET path`` read to the end; the response and each text delta's delivery time."""
    clock = DeltaClock()
    stream = await connect(target)
    async with stream:
        await stream.send_all(request_bytes("GET", path, params))
        while piece := await stream.receive_some(65536):
            clock.feed(piece, time.monotonic())
    return parse_response(bytes(clock.data)), clock.delivery


class KeepAliveConnection:
    """One connection for requests one after another: a test's control channel.

    A connection per request would leave the worker one more connection to
    close after each: requests that observe the worker should not change
    what they observe. If the worker closed the connection while it was idle
    (its keep-alive timeout), the request is sent again on a new one; a
    request interrupted half-way (cancelled, failed) closes the connection,
    so that its response is never taken for the next one's.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self._stream: trio.SocketStream | None = None
        self._received = bytearray()
        self._lock = trio.Lock()

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
    ) -> HttpResponse:
        request = request_bytes(method, path, params, body=body, keep_alive=True)
        async with self._lock:
            for attempt in range(2):
                if self._stream is None:
                    self._stream = await connect(self.target)
                    self._received.clear()
                try:
                    await self._stream.send_all(request)
                    return await self._response()
                except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
                    await self.aclose()
                    if attempt:
                        raise
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await self.aclose()
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> HttpResponse:
        assert self._stream is not None
        while True:
            response = parse_response(bytes(self._received))
            if response.complete:
                del self._received[: response.size]
                response.raw = response.raw[: response.size]
                return response
            piece = await self._stream.receive_some(65536)
            if not piece:
                raise EOFError("the server closed the connection")
            self._received += piece

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()


async def fetch_json(target: Target, path: str, params: dict[str, Any] | None = None) -> Any:
    response = await fetch(target, "GET", path, params)
    assert response.status == 200, response.raw[:500]
    return response.json()


_TEXT_MARKER = re.compile(rb"t(\d{5})@")

_ENDINGS: dict[str, tuple[bytes, bytes]] = {
    "data-stream": (b'd:{"finishReason":"stop"', b"}\n"),
    "assistant-transport": (
        b'"type":"message-finish","finishReason":"stop"',
        b"data: [DONE]\n\n",
    ),
    "ui-message-stream": (b'"type":"finish","finishReason":"stop"', b"data: [DONE]\n\n"),
    "openai": (b'"finish_reason":"tool_calls"', b"data: [DONE]\n\n"),
}
"""Each format's finish (once per body) and the bytes the body must end with."""


def problems(
    fmt: str, response: HttpResponse, *, chunks: int, tools: int, steps: int
) -> list[str]:
    """What is wrong with ``response`` as a whole stream of ``server_app``'s run; ``[]``
    if nothing.

    Complete means: status 200, a chunked body that ended properly, every
    text delta exactly once and in order, every tool's sub-stream deltas and
    result exactly once (the OpenAI format carries neither: only the
    message's own text and calls), and the format's finish once, at the end.
    """
    found: list[str] = []
    if response.status != 200:
        found.append(f"status {response.status}")
    if not response.complete:
        found.append("the chunked body did not end")
    payload = response.payload
    seen = [int(number) for number in _TEXT_MARKER.findall(payload)]
    if seen != list(range(chunks)):
        found.append(f"text deltas {seen[:5]}... ({len(seen)}), not 0..{chunks - 1}")
    expected = [b"s-done"] if fmt != "openai" else []
    if fmt != "openai":
        for k in range(tools):
            expected += [f"r{k}-done".encode(), f"f{k}-done".encode()]
            expected += [f"k{k}s{step};".encode() for step in range(steps)]
    else:
        expected += [f'"id":"call_{k}"'.encode() for k in range(tools)]
    for marker in expected:
        if payload.count(marker) != 1:
            found.append(f"{marker.decode()} {payload.count(marker)} times")
    finish, last = _ENDINGS[fmt]
    if payload.count(finish) != 1:
        found.append(f"the finish {finish.decode()} {payload.count(finish)} times")
    if not payload.endswith(last):
        found.append(f"the body ends with {payload[-40:]!r}")
    return found
