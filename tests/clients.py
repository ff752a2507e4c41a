"""The official npm decoders, run with Node.js (``tests/js/decode.mjs``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["DecodeError", "decode", "sse_events", "summarize"]

JS = Path(__file__).parent / "js"
"""The Node.js side of the tests, with its pinned npm packages."""

DECODER = JS / "decode.mjs"


class DecodeError(Exception):
    """The npm decoder rejected the body."""


def _without_timing(value: Any) -> Any:
    """Drop the wall-clock fields the accumulator adds, which differ per run."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k != "timing"}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def decode(
    decoder: str,
    *,
    url: str | None = None,
    post: Any = None,
    body: bytes | None = None,
    split: int | None = None,
) -> dict[str, Any]:
    """Decode with ``decoder``: fetch ``url`` from Node itself, or decode ``body``.

    With ``post``, the fetch is a POST of that value as JSON. ``split``
    feeds the body to the decoder in pieces of that many bytes.
    Returns the decoder's output: the final ``message``, the decoded
    ``chunks`` and any ``warnings`` the libraries logged.
    """
    command = ["node", str(DECODER), decoder]
    if url is not None:
        command += ["--url", url]
    if post is not None:
        command += ["--post", json.dumps(post)]
    if split is not None:
        command += ["--split", str(split)]
    result = subprocess.run(command, input=body, capture_output=True, timeout=120, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"the decoder could not run:\n{result.stderr.decode()}")
    output: dict[str, Any] = json.loads(result.stdout)
    if result.returncode == 1:
        raise DecodeError(output["error"])
    output["message"] = _without_timing(output["message"])
    return output


def summarize(parts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """assistant-stream's accumulated parts, as short tuples a test can compare.

    ``("text", text, parent)``, ``("reasoning", text, parent)``,
    ``("tool-call", name, args, result, is_error, parent)``,
    ``("source", url, title, parent)``, ``("file", mime_type, data, parent)``,
    ``("data", name, data, parent)``.
    """
    summary: list[tuple[Any, ...]] = []
    for part in parts:
        parent = part.get("parentId")
        match part["type"]:
            case "text" | "reasoning":
                summary.append((part["type"], part["text"], parent))
            case "tool-call":
                summary.append(
                    (
                        "tool-call",
                        part["toolName"],
                        part["args"],
                        part.get("result"),
                        part.get("isError"),
                        parent,
                    )
                )
            case "source":
                summary.append(("source", part["url"], part.get("title"), parent))
            case "file":
                summary.append(("file", part["mimeType"], part["data"], parent))
            case "data":
                summary.append(("data", part["name"], part["data"], parent))
            case other:
                summary.append((other,))
    return summary


def sse_events(body: bytes) -> list[Any]:
    """The JSON values of an SSE body's ``data:`` events (``[DONE]`` as is)."""
    frames = body.decode().split("\n\n")
    assert frames[-1] == "", "an SSE body ends with a blank line"
    return [
        frame if frame == "data: [DONE]" else json.loads(frame.removeprefix("data: "))
        for frame in frames[:-1]
    ]
