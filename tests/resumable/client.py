"""What a client of ``tests/resumable/app.py`` does: start, leave early, resume."""

from __future__ import annotations

from typing import Any

import httpx

from trio_stream.resumable import STREAM_ID_HEADER

__all__ = ["leave_after", "resume", "start"]


def start(url: str, fmt: str = "data-stream", **params: Any) -> httpx.Response:
    """Start a run and read all of it."""
    response = httpx.post(f"{url}/start/{fmt}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response


def leave_after(url: str, fmt: str, at_least: int, **params: Any) -> tuple[str, bytes]:
    """Start a run, read at least ``at_least`` bytes of it, and hang up.

    Returns the stream id and the bytes received.
    """
    received = b""
    with httpx.stream("POST", f"{url}/start/{fmt}", params=params, timeout=30) as response:
        assert response.status_code == 200
        stream_id = response.headers[STREAM_ID_HEADER]
        for piece in response.iter_raw():
            received += piece
            if len(received) >= at_least:
                break
    return stream_id, received


def resume(url: str, stream_id: str, offset: int | str = 0) -> httpx.Response:
    """The stream from byte ``offset`` (sent as it is, if a string)."""
    return httpx.get(f"{url}/streams/{stream_id}", params={"offset": offset}, timeout=30)
