"""m2 · HTTP throughput: one response of 50,000 text deltas, downloaded over loopback.

What is measured: the seconds curl takes (``%{time_total}``: from connecting
to the last byte) to download ``GET /text?n=50000`` of ``bench.apps_stream``,
the data stream of a run appending 50,000 ``"tok "`` deltas. curl is a C
client reading as fast as the kernel delivers, in a process of its own, so
the server is what is measured.

Contenders: trio-stream on hypercorn's Trio worker; assistant-stream on
uvicorn (uvloop, httptools) and on hypercorn's asyncio worker; and the
ceiling, a bare ASGI app (``bench.apps_bare``) on hypercorn-trio sending the
same bytes already encoded, with one ``send`` per chunk (what any app that writes chunk by chunk
can reach at best on this server) and with a single ``send`` (what the
server can reach at all).

Two run shapes, the same code for both libraries: the run appends its deltas
without awaiting (``http-throughput``), or awaits ``sleep(0)`` after each one,
as a producer that awaits its model does (``http-throughput-checkpointed``);
the ceiling has no run, so its rows are the same in both.

Every body is checked against the exact bytes expected (every delta, in
order; trio-stream's and the ceiling's end with the data stream's ``d:``
finish line, which assistant-stream does not send), so a contender that
breaks off early cannot look fast. Fair: every server in its own process,
configured alike (``bench._servers``), all of them started before the first
run and measured in turn, run after run, after one warm-up request each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import tempfile
from pathlib import Path

from . import apps_stream
from ._loops import switch_seconds
from ._results import Figure
from ._servers import Contender, Server, assistant_stream, ceilings, serving, trio_stream

__all__ = ["measure"]

OURS = "trio-stream · hypercorn-trio"
REFERENCE = "assistant-stream · uvicorn"
CEILING_CHUNK = "ceiling · one send per chunk · hypercorn-trio"
CEILING_ALL = "ceiling · one send · hypercorn-trio"


def _contenders() -> list[tuple[Contender, str]]:
    """Every contender and its query string (beyond ``n`` and ``checkpoint``)."""
    ceiling = ceilings()[0]
    return [
        (trio_stream("bench.apps_stream:trio_app"), ""),
        *((c, "") for c in assistant_stream("bench.apps_stream:assistant_app")),
        (dataclasses.replace(ceiling, name=CEILING_CHUNK), "&mode=chunk"),
        (dataclasses.replace(ceiling, name=CEILING_ALL), "&mode=all"),
    ]


def expected_body(contender: Contender, n: int) -> bytes:
    body = apps_stream.TOKEN_LINE * n
    if contender.name.startswith("assistant-stream"):
        return body
    return body + apps_stream.FINISH_LINE


def download(url: str, into: Path) -> tuple[float, bytes]:
    """Fetch ``url`` with curl into ``into``: (curl's total seconds, the body)."""
    result = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--fail"),
            *("--output", str(into), "--write-out", "%{time_total}", url),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout), into.read_bytes()


def _download_checked(
    server: Server, contender: Contender, path: str, n: int, into: Path
) -> float:
    seconds, body = download(server.url + path, into)
    expected = expected_body(contender, n)
    if body != expected:
        raise AssertionError(
            f"{contender.name}: {len(body)} bytes, {len(expected)} expected; ends {body[-80:]!r}"
        )
    return seconds


def measure(smoke: bool) -> list[Figure]:
    n = 2_000 if smoke else 50_000
    runs = 1 if smoke else 5
    contenders = _contenders()
    figures = {
        checkpoint: Figure(
            key="http-throughput-checkpointed" if checkpoint else "http-throughput",
            title=f"HTTP: one data stream of {n:,} text deltas"
            + (", sleep(0) after each" if checkpoint else ""),
            unit="s",
            better="lower",
            target=f">= 5x {REFERENCE}, and faster than the {CEILING_CHUNK}",
            note=(
                "The run awaits sleep(0) after each delta. "
                if checkpoint
                else "The run appends every delta without awaiting. "
            )
            + "Seconds for curl to download the whole body; every body checked byte for byte.",
        )
        for checkpoint in (False, True)
    }
    with contextlib.ExitStack() as stack:
        # One server per app and server kind: both ceilings share one process.
        servers: dict[tuple[str, str], Server] = {}
        for contender, _ in contenders:
            key = (contender.app, contender.server)
            if key not in servers:
                servers[key] = stack.enter_context(serving(contender))
        into = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "body"
        for contender, query in contenders:
            server = servers[contender.app, contender.server]
            _download_checked(server, contender, f"/text?n=1000{query}", 1000, into)
        for _ in range(runs):
            for checkpoint, figure in figures.items():
                for contender, query in contenders:
                    server = servers[contender.app, contender.server]
                    path = f"/text?n={n}&checkpoint={int(checkpoint)}{query}"
                    seconds = _download_checked(server, contender, path, n, into)
                    figure.add(contender.name, seconds)
    for figure in figures.values():
        figure.met = figure.ratio(OURS, REFERENCE) >= 5 and figure.median(OURS) < figure.median(
            CEILING_CHUNK
        )
    checkpointed = figures[True]
    floor = n * switch_seconds(n)["trio"]
    checkpointed.note += (
        f" Trio alone, one task awaiting sleep(0) {n:,} times, takes {floor:.3f} s: with this "
        f"run, even a library and a server costing nothing on Trio would be at most "
        f"{checkpointed.median(REFERENCE) / floor:.1f}x faster than {REFERENCE}."
    )
    return list(figures.values())
