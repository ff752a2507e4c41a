"""The benchmark harness at smoke size: every measurement runs, for every contender.

Figures at this size mean nothing (the full run is ``python -m bench``); what
this checks is that the harness works end to end, so it cannot rot between
full runs: each server starts, each client reads complete and correct bodies,
and the report and plots are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._gc import SERVE_GC_THRESHOLDS
from trio_stream._cli import GC_THRESHOLDS
from trio_stream.formats import FORMATS

from ..serving import ROOT

OURS = "trio-stream · hypercorn-trio"
THEIRS = ["assistant-stream · uvicorn", "assistant-stream · hypercorn-asyncio"]
CAPACITY = [
    "assistant-stream · uvicorn · trio-stream serve's GC thresholds",
    "ceiling · hypercorn-trio",
    "ceiling · trio-stream serve",
    "ceiling · uvicorn",
]
"""The rows that the latency and concurrency figures have besides those of every figure."""
RANDOM_PHASE = {OURS, THEIRS[0], "ceiling · trio-stream serve", "ceiling · uvicorn"}
"""The rows of the concurrency run whose streams start from a random phase."""
OWN_CONTENDERS = ("inprocess", "decode", "remote")
"""Figures whose rows are not the servers: in process, per format, per relay depth."""


def run_module(*argv: str, timeout: float) -> str:
    """``python -m`` with ``argv``, from the project's root: its output, once it exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def smoke_run(out: Path, *options: str) -> dict[str, Any]:
    """``python -m bench --smoke`` with ``options`` into ``out``: its ``latest.json``."""
    run_module("bench", "--smoke", *options, "--out", str(out), timeout=600)
    report: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return report


def test_every_measurement_runs_for_every_contender(tmp_path: Path) -> None:
    report = smoke_run(tmp_path)
    assert report["environment"]["smoke"] is True
    figures = report["figures"]
    modules = {
        *("inprocess", "http", "latency", "tools", "concurrency", "cancel", "slow"),
        *("decode", "remote", "readers", "workers", "telemetry"),
    }
    assert all(any(m in f["key"] for f in figures) for m in modules), [f["key"] for f in figures]
    assert {f"decode-{name}" for name in FORMATS} <= {f["key"] for f in figures}
    for figure in figures:
        runs = figure["runs"]
        assert runs, figure["key"]
        assert all(value >= 0 for values in runs.values() for value in values), figure
        if figure["key"].startswith("telemetry"):
            assert set(runs) == {"trio-stream · telemetry off", "trio-stream · telemetry on (SDK)"}
        elif figure["ours"] is not None:
            # A figure with contenders of its own names them.
            assert figure["ours"] in runs, figure["key"]
            assert figure["reference"] is None or figure["reference"] in runs, figure["key"]
        elif "random-phase" in figure["key"]:
            assert set(runs) == RANDOM_PHASE, figure["key"]
        elif not figure["key"].startswith(OWN_CONTENDERS):
            assert OURS in runs, figure["key"]
            assert all(name in runs for name in THEIRS), figure["key"]
        if figure["key"].startswith(("latency", "concurrency")) and "random" not in figure["key"]:
            assert all(name in runs for name in CAPACITY), figure["key"]
        assert (tmp_path / f"{figure['key']}.png").stat().st_size > 1000
    keys = {f["key"] for f in figures}
    assert {"concurrency-50-cpu", "concurrency-50-cpu-per-delta", "concurrency-50-start"} <= keys
    assert {"concurrency-50-random-phase-cpu", "concurrency-50-random-phase-open"} <= keys
    markdown = (tmp_path / "latest.md").read_text()
    assert markdown.startswith("# Benchmark results")
    assert markdown.count("| contender |") == len(figures)
    targets = markdown.split("## Targets", 1)[1].split("\n## ", 1)[0]
    for figure in figures:
        for target in figure["targets"]:
            assert f"| {target['text']} | {target['measured']} |" in targets, target
    _measuring_one_module_again_keeps_the_others(tmp_path, report)


def _measuring_one_module_again_keeps_the_others(out: Path, before: dict[str, Any]) -> None:
    after = smoke_run(out, "--only", "m12_telemetry", "--update")
    assert [f["key"] for f in after["figures"]] == [f["key"] for f in before["figures"]]
    for old, new in zip(before["figures"], after["figures"], strict=True):
        if not old["key"].startswith("telemetry"):
            assert new == old, old["key"]
    [update] = after["environment"]["updates"]
    assert update["modules"] == ["m12_telemetry"]
    assert after["environment"]["seconds"] == before["environment"]["seconds"]
    markdown = (out / "latest.md").read_text()
    assert f"Measured again on {update['date']}" in markdown
    assert markdown.count("| contender |") == len(after["figures"])


def test_the_peer_row_with_our_collector_thresholds_has_those_trio_stream_serve_sets() -> None:
    # The harness repeats them: the package does not export them.
    assert SERVE_GC_THRESHOLDS == GC_THRESHOLDS


def profile_paced(*options: str) -> dict[str, Any]:
    """``python -m bench.profile_paced`` at a small size: its figures."""
    size = ["--streams", "50", "--rate", "2", "--seconds", "6"]  # the peak is probed 5 s in
    figures: dict[str, Any] = json.loads(
        run_module("bench.profile_paced", *size, *options, timeout=120)
    )
    return figures


def test_the_paced_profile_measures_the_library_and_the_server_alone() -> None:
    ours, ceiling = profile_paced(), profile_paced("--app", "ceiling")
    for figures in (ours, ceiling):
        assert figures["complete"] == 50
        assert figures["cpu_seconds"] > 0
        assert figures["gc_seconds"] >= 0
        assert figures["unreachable_after_run_per_stream"] >= 0
    # A run, its response and their tasks: more per stream than the bare app's.
    assert ours["tasks_per_stream"] > ceiling["tasks_per_stream"]
    assert ours["gc_objects_per_stream"] > ceiling["gc_objects_per_stream"]
