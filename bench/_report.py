"""``latest.md`` and the plots: every figure for every contender, and the ratios."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from ._results import Figure, Target

REFERENCE = "assistant-stream · uvicorn"
OURS = "trio-stream · hypercorn-trio"


def environment() -> dict[str, Any]:
    """The machine and the versions a run was made with."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in (
        "trio-stream",
        "assistant-stream",
        "trio",
        "anyio",
        "hypercorn",
        "uvicorn",
        "uvloop",
        "httptools",
        "starlette",
        "msgspec",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


def _value(value: float, unit: str) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def write_report(figures: list[Figure], env: dict[str, Any], out: Path) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"{'Smoke run (tiny sizes, not for reading)' if env['smoke'] else 'Full run'}: "
        f"{env['cpu']}, {env['cores']} cores, {env['system']}, Python {env['python']}, "
        f"{env['seconds']} s in all.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "",
        *(
            f"Measured again on {u['date']} ({u['seconds']} s), the rest kept: "
            + ", ".join(u["modules"])
            + "."
            for u in env.get("updates", [])
        ),
        *([""] if env.get("updates") else []),
        "Each cell is the median of the runs, with min-max. The ratio is how many "
        f"times better ours ({OURS}, unless a figure names another) is than the "
        "contender of that row; on our own row, than the figure's reference "
        f"({REFERENCE}, unless a figure names another). Above 1 is better.",
        "",
        *_targets(figures),
    ]
    for figure in figures:
        lines += [f"## {figure.title}", ""]
        better = "higher is better" if figure.better == "higher" else "lower is better"
        ours, reference = figure.ours or OURS, figure.reference or REFERENCE
        lines += [f"Unit: {figure.unit} ({better}).", ""]
        if figure.ours is not None or figure.reference is not None:
            lines += [f"Ratios: {ours}, against {reference} on its own row.", ""]
        lines += _table(figure, ours, reference)
        if figure.targets:
            lines += [
                *(
                    f"- Target: {t.text}: {t.measured}. {'met' if t.met else '**missed**'}"
                    for t in figure.targets
                ),
                "",
            ]
        elif figure.target:
            verdict = {True: "met", False: "**missed**", None: ""}[figure.met]
            lines += [f"Target: {figure.target}. {verdict}".rstrip(), ""]
        if figure.note:
            lines += [figure.note, ""]
        lines += [f"![{figure.title}]({figure.key}.png)", ""]
        _plot(figure, out / f"{figure.key}.png")
    (out / "latest.md").write_text("\n".join(lines))


def _table(figure: Figure, ours: str, reference: str) -> list[str]:
    """The figure's rows; with ceilings, a column for each row's distance to its own."""
    ceilings = {n: c for n, c in figure.ceilings.items() if n in figure.runs and c in figure.runs}
    extra = (" its ceiling's lead |", " --- |") if ceilings else ("", "")
    lines = [
        "| contender | median | min - max | runs | ratio |" + extra[0],
        "| --- | --- | --- | --- | --- |" + extra[1],
    ]
    for name, runs in figure.runs.items():
        ratio = ""
        if name == ours and reference in figure.runs:
            ratio = f"{figure.ratio(ours, reference):.2f}x"
        elif name != ours and ours in figure.runs:
            ratio = f"{figure.ratio(ours, name):.2f}x"
        row = (
            f"| {name} | {_value(figure.median(name), figure.unit)} | "
            f"{_value(min(runs), figure.unit)} - {_value(max(runs), figure.unit)} | "
            f"{len(runs)} | {ratio} |"
        )
        if ceilings:
            lead = f" {figure.ratio(ceilings[name], name):.2f}x" if name in ceilings else ""
            row += lead + " |"
        lines.append(row)
    lines.append("")
    if ceilings:
        lines += [
            "Its ceiling's lead: how many times better the bare app did on the same server "
            "(1.00x: what the row adds to the server costs nothing).",
            "",
        ]
    return lines


def _targets_of(figure: Figure) -> list[Target]:
    """The figure's targets; one stated in words only is measured as our median and ratio."""
    if figure.targets:
        return figure.targets
    if not figure.target or figure.met is None:
        return []
    ours, reference = figure.ours or OURS, figure.reference or REFERENCE
    if ours not in figure.runs:
        # A figure of rows of its own (hops, formats, settings): each row's median.
        medians = "; ".join(
            f"{name} {_value(figure.median(name), figure.unit)}" for name in figure.runs
        )
        return [Target(figure.target, f"{medians} ({figure.unit})", figure.met)]
    measured = f"{_value(figure.median(ours), figure.unit)} {figure.unit}"
    if reference in figure.runs:
        measured += f", {figure.ratio(ours, reference):.2f}x {reference}"
    return [Target(figure.target, measured, figure.met)]


def _targets(figures: list[Figure]) -> list[str]:
    """The summary table: every target of the run, what was measured, met or missed."""
    rows = [
        f"| {figure.title} | {target.text} | {target.measured} | "
        f"{'met' if target.met else '**missed**'} |"
        for figure in figures
        for target in _targets_of(figure)
    ]
    if not rows:
        return []
    return [
        "## Targets",
        "",
        "Every target of this run, what was measured against it and the verdict; ratios "
        "are medians against medians of the same run.",
        "",
        "| figure | target | measured | verdict |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]


def _plot(figure: Figure, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figure.runs)
    medians = [figure.median(n) for n in names]
    low = [m - min(figure.runs[n]) for n, m in zip(names, medians, strict=True)]
    high = [max(figure.runs[n]) - m for n, m in zip(names, medians, strict=True)]
    ours = figure.ours or OURS
    colors = ["#4f6bed" if n == ours else "#9aa3b5" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(names)))
    ax.barh(names, medians, xerr=[low, high], color=colors, capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"{figure.unit} ({'higher' if figure.better == 'higher' else 'lower'} is better)"
    )
    ax.set_title(figure.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
