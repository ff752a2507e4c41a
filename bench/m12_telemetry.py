"""m12 · The cost of telemetry: HTTP throughput and capacity with OpenTelemetry's SDK on and off.

The same trio-stream apps, served the same way, once as they are (the API
installed, no SDK: OpenTelemetry's no-op) and once with the SDK configured
in the server process (``bench.apps_telemetry``: a batch span processor and
a periodic metric reader). Measured as m2 measures HTTP throughput (curl
downloading one data stream of 50,000 text deltas) and as m5 measures
capacity (N slow streams open at once on one worker: streams complete,
streams open at the peak, server CPU). Target: telemetry on within 10% of
off.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from ._results import Figure
from ._servers import Contender, serving
from .m2_http import _download_checked
from .m5_concurrency import _one

__all__ = ["measure"]

OFF = "trio-stream · telemetry off"
ON = "trio-stream · telemetry on (SDK)"


def _http(smoke: bool) -> Figure:
    n = 2_000 if smoke else 50_000
    runs = 1 if smoke else 7
    contenders = [
        Contender(OFF, "bench.apps_stream:trio_app", "trio-stream serve"),
        Contender(ON, "bench.apps_telemetry:stream_app", "trio-stream serve"),
    ]
    figure = Figure(
        key="telemetry-http-throughput",
        title=f"HTTP: one data stream of {n:,} text deltas, telemetry on and off",
        unit="s",
        better="lower",
        target="telemetry on within 10% of off",
        note="Seconds for curl to download the whole body; every body checked byte for byte.",
    )
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(serving(c)) for c in contenders]
        into = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "body"
        for contender, server in zip(contenders, servers, strict=True):
            _download_checked(server, contender, "/text?n=1000", 1000, into)
        for _ in range(runs):
            for contender, server in zip(contenders, servers, strict=True):
                seconds = _download_checked(server, contender, f"/text?n={n}", n, into)
                figure.add(contender.name, seconds)
    figure.met = figure.median(ON) <= 1.1 * figure.median(OFF)
    return figure


def _capacity(smoke: bool) -> list[Figure]:
    n, repeats, tokens, interval = (50, 1, 3, 0.2) if smoke else (1000, 7, 5, 1.0)
    contenders = [
        Contender(OFF, "bench.apps_load:trio_app", "trio-stream serve"),
        Contender(ON, "bench.apps_telemetry:load_app", "trio-stream serve"),
    ]
    complete = Figure(
        key="telemetry-capacity-complete",
        title=f"{n:,} slow streams at once: served to the end, telemetry on and off",
        unit="streams",
        better="higher",
        target=f"all {n:,}, telemetry on and off",
    )
    cpu = Figure(
        key="telemetry-capacity-cpu",
        title=f"{n:,} slow streams at once: server CPU seconds, telemetry on and off",
        unit="s",
        better="lower",
        target="telemetry on within 10% of off",
        note=f"{n:,} streams of {tokens} tokens, one every {interval:g} s, on one worker; "
        f"{repeats} runs each, in alternating order: runs of one setting differ by up to 10 %.",
    )
    for repeat in range(repeats):
        # Alternating which goes first: a machine whose load drifts tilts neither.
        for contender in contenders if repeat % 2 == 0 else contenders[::-1]:
            result = _one(contender, n, tokens, interval)
            complete.add(contender.name, result["complete"])
            cpu.add(contender.name, round(result["cpu_seconds"], 2))
    complete.met = all(v == n for runs in complete.runs.values() for v in runs)
    cpu.met = cpu.median(ON) <= 1.1 * cpu.median(OFF)
    return [complete, cpu]


def measure(smoke: bool) -> list[Figure]:
    return [_http(smoke), *_capacity(smoke)]
