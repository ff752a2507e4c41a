"""Graceful shutdown: SIGTERM with 100 streams in flight.

A real ``trio-stream serve`` process streams to 100 clients at once, in
every format: 70 runs that would go on for a minute, 20 resumable streams
that would too, and 10 runs that end by themselves shortly after the signal.
Then it gets SIGTERM. Within hypercorn's graceful timeout, every client must
have a complete body: the short runs their normal end, the others an error
chunk saying the server is shutting down, then the format's closing bytes.
Every run and every tool must have run its clean-up (each logs it), and the
process must exit by itself.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import httpx
import trio

from trio_stream._shutdown import SHUTDOWN_MESSAGE

from ..clients import decode
from ..serving import server_process
from .figures import Figures

FORMATS = ["data-stream", "assistant-transport", "ui-message-stream", "openai"]
GRACEFUL_TIMEOUT = 3.0
RESUMABLE_SHUTDOWN = "the stream was interrupted: the server producing it shut down"


class Client:
    """One stream, read to its end, with when and how it ended."""

    def __init__(self, path: str, fmt: str, seconds: float) -> None:
        self.path, self.format, self.seconds = path, fmt, seconds
        self.body = b""
        self.first_byte = trio.Event()
        self.ended_at = math.inf
        self.error: BaseException | None = None

    async def read(self, client: httpx.AsyncClient) -> None:
        try:
            async with client.stream(
                "POST", f"{self.path}/{self.format}", params={"seconds": self.seconds}
            ) as response:
                assert response.status_code == 200
                async for piece in response.aiter_raw():
                    self.body += piece
                    self.first_byte.set()
        except httpx.HTTPError as exc:  # a cut connection, a truncated body
            self.error = exc
        self.ended_at = time.monotonic()
        self.first_byte.set()


def closing_ok(fmt: str, body: bytes, message: str | None) -> bool:
    """Whether ``body`` ends as its format ends, with ``message`` as its last error."""
    if fmt == "data-stream":
        last = body.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if message is None:
            return body.endswith(b"\n") and not last.startswith(b"3:")
        return last == b"3:" + json.dumps(message).encode()
    if not body.endswith(b"data: [DONE]\n\n"):
        return False
    errors = [
        event
        for line in body.split(b"\n")
        if line.startswith(b"data: {")
        for event in [json.loads(line[len(b"data: ") :])]
        if event.get("type") == "error" or "error" in event
    ]
    if message is None:
        return not errors
    text = json.dumps(errors[-1]) if errors else ""
    return json.dumps(message)[1:-1] in text


def test_sigterm_with_100_streams_in_flight_ends_each_one_cleanly_in_time(
    tmp_path: Path, figures: Figures
) -> None:
    log_path = tmp_path / "server.log"
    clients = [
        *(Client("/stream", FORMATS[i % 4], 60) for i in range(70)),
        *(Client("/resumable", FORMATS[i % 4], 60) for i in range(20)),
        *(Client("/stream", FORMATS[i % 4], 1.5) for i in range(10)),
    ]
    with server_process(
        log_path,
        "serve",
        "tests.reliability.shutdown_app:app",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
    ) as (url, server):

        async def main() -> float:
            limits = httpx.Limits(max_connections=len(clients))
            async with (
                httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http,
                trio.open_nursery() as nursery,
            ):
                for client in clients:
                    nursery.start_soon(client.read, http)
                with trio.fail_after(20):
                    for client in clients:
                        await client.first_byte.wait()
                assert all(client.error is None for client in clients)
                signalled_at = time.monotonic()
                server.send_signal(signal.SIGTERM)
            return signalled_at

        signalled_at = trio.run(main)
        exit_code = server.wait(timeout=GRACEFUL_TIMEOUT + 10)
        exited_after = time.monotonic() - signalled_at
    log = log_path.read_text()

    assert exit_code == 0, log[-3000:]
    assert [client.error for client in clients if client.error] == []
    slowest = max(client.ended_at for client in clients) - signalled_at
    assert slowest < GRACEFUL_TIMEOUT
    for client in clients:
        if client.seconds < 60:
            expected = None
        elif client.path == "/resumable":
            expected = RESUMABLE_SHUTDOWN
        else:
            expected = SHUTDOWN_MESSAGE
        assert closing_ok(client.format, client.body, expected), (client.path, client.body[-300:])

    # The official decoders read a cut-short body as a message that ended in an error.
    for fmt in ("data-stream", "assistant-transport", "ui-message-stream"):
        sample = next(c for c in clients if c.format == fmt and c.seconds == 60)
        decoded = decode(fmt, body=sample.body)
        assert SHUTDOWN_MESSAGE in json.dumps(decoded["message"]), decoded["message"]

    # Cancelled, not abandoned: every run and every tool ran its clean-up.
    assert log.count("shutdown-app: run cleaned up") == len(clients), log[-3000:]
    assert log.count("shutdown-app: tool ") == 3 * len(clients)
    assert log.count("server shutting down: the run of /stream/") == 70
    assert log.count("ended: cancelled") == 20

    figures.record("shutdown", "streams in flight at SIGTERM", len(clients))
    figures.record("shutdown", "graceful timeout (s)", GRACEFUL_TIMEOUT)
    figures.record("shutdown", "last body complete after SIGTERM (s)", round(slowest, 2))
    figures.record("shutdown", "server exited after SIGTERM (s)", round(exited_after, 2))
    figures.record(
        "shutdown",
        "bodies complete / cut",
        f"{sum(c.error is None for c in clients)} / {sum(c.error is not None for c in clients)}",
    )
    figures.record("shutdown", "runs and tools cleaned up", f"{len(clients)} + {3 * len(clients)}")
