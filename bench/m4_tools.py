"""m4 · Parallel tool calls: 200 at once, each streaming its arguments, over HTTP.

What is measured: the seconds curl takes to download ``GET /tools`` of
``bench.apps_stream``: a run starting 200 tool calls at once in a task group
(a Trio nursery, an ``asyncio.TaskGroup``), each one opening its call with
``await controller.add_tool_call(...)``, streaming its JSON arguments in 50
``append_args_text`` deltas with ``sleep(0)`` after each (so that the 200
interleave, as parallel tools do), then ``set_response(...)``: 200 begins,
10,000 argument deltas and 200 results in one data stream.

Every body is parsed and checked, so that a contender cannot look fast by
losing or reordering chunks: per tool call id, exactly one ``b:`` (begin)
before any of its ``c:`` lines, the concatenated ``c:`` ``argsTextDelta``
equal to the arguments the tool streamed, and its ``a:`` result after its
last delta, equal to what it set; all 200 calls present, and nothing else but
trio-stream's closing ``d:`` line.

Contenders: trio-stream on hypercorn-trio, assistant-stream on uvicorn and on
hypercorn-asyncio. Fair: the same run code (``bench.apps_stream``), servers
configured alike, all started before the first run and measured in turn, run
after run, after one warm-up request each; curl is the client for all.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from . import apps_stream
from ._results import Figure
from ._servers import Contender, Server, assistant_stream, serving, trio_stream
from .m2_http import download

__all__ = ["check_tools_body", "measure"]

OURS = "trio-stream · hypercorn-trio"
REFERENCE = "assistant-stream · uvicorn"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_tools_body(body: bytes, tools: int, deltas: int) -> None:
    """Raise ``AssertionError`` unless ``body`` holds every tool call, complete and in order."""
    args: dict[str, list[str]] = {}
    results: dict[str, Any] = {}
    lines = body.decode().splitlines()
    for number, line in enumerate(lines):
        code, _, text = line.partition(":")
        value = json.loads(text)
        if code == "b":
            call = value["toolCallId"]
            _require(call not in args, f"tool call {call} begun twice")
            args[call] = []
        elif code == "c":
            call = value["toolCallId"]
            _require(call in args and call not in results, f"delta of {call} out of place")
            args[call].append(value["argsTextDelta"])
        elif code == "a":
            call = value["toolCallId"]
            _require(call in args and call not in results, f"result of {call} out of place")
            results[call] = value["result"]
        else:
            _require(code == "d" and number == len(lines) - 1, f"unexpected line {line[:80]!r}")
    _require(
        len(args) == tools and len(results) == tools, f"{len(args)} calls, {len(results)} done"
    )
    for index in range(tools):
        call = apps_stream.tool_call_id(index)
        pieces = apps_stream.tool_args(index, deltas)
        _require(args[call] == pieces, f"arguments of {call}: {''.join(args[call])!r}")
        _require(results[call] == apps_stream.tool_result(index), f"result of {call}")


def _timed(server: Server, tools: int, deltas: int, into: Path) -> float:
    seconds, body = download(f"{server.url}/tools?tools={tools}&deltas={deltas}", into)
    check_tools_body(body, tools, deltas)
    return seconds


def measure(smoke: bool) -> list[Figure]:
    tools, deltas = (20, 10) if smoke else (200, 50)
    runs = 1 if smoke else 5
    contenders: list[Contender] = [
        trio_stream("bench.apps_stream:trio_app"),
        *assistant_stream("bench.apps_stream:assistant_app"),
    ]
    figure = Figure(
        key="tools-parallel",
        title=f"{tools} parallel tool calls, {deltas} argument deltas each, over HTTP",
        unit="s",
        better="lower",
        note=f"Seconds for curl to download the body ({tools * (deltas + 2):,} chunks); "
        "every tool call's chunks checked complete and in order.",
    )
    with contextlib.ExitStack() as stack:
        servers = [(c, stack.enter_context(serving(c))) for c in contenders]
        into = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "body"
        for _, server in servers:
            _timed(server, 10, 10, into)  # warm-up
        for _ in range(runs):
            for contender, server in servers:
                figure.add(contender.name, _timed(server, tools, deltas, into))
    return [figure]
