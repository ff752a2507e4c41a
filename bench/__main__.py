"""Run the benchmarks and write the report.

    python -m bench [--smoke] [--only KEY ...] [--update] [--out DIR]

Each measurement module has ``measure(smoke) -> list[Figure]``; they run one
after the other (never two at once: they would share the two cores), and the
figures go to ``<out>/latest.json``, ``<out>/latest.md`` and one PNG per figure.

``--update`` with ``--only`` measures those modules again and replaces their
figures in the results already in ``<out>``, keeping the others; the report
says which modules were measured again, and when.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from ._report import environment, write_report
from ._results import Figure

MEASUREMENTS = [
    "bench.m1_inprocess",
    "bench.m2_http",
    "bench.m3_latency",
    "bench.m4_tools",
    "bench.m5_concurrency",
    "bench.m6_cancellation",
    "bench.m7_slow_consumer",
    "bench.m8_decode",
    "bench.m9_remote",
    "bench.m10_readers",
    "bench.m11_workers",
    "bench.m12_telemetry",
]

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not minutes")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. m2_http")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--update", action="store_true", help="replace only the --only modules' figures in --out"
    )
    args = parser.parse_args(argv)
    if args.update and not args.only:
        parser.error("--update needs --only: the modules to measure again")
    figures: list[Figure] = []
    started = time.monotonic()
    for name in MEASUREMENTS:
        if args.only and name.rpartition(".")[2] not in args.only:
            continue
        print(f"== {name}", flush=True)
        module = importlib.import_module(name)
        begun = time.monotonic()
        measured: list[Figure] = module.measure(args.smoke)
        for figure in measured:
            for contender, runs in figure.runs.items():
                print(f"   {figure.key:28} {contender:40} {runs}", flush=True)
        print(f"   ({time.monotonic() - begun:.1f} s)", flush=True)
        figures.extend(measured)
    args.out.mkdir(parents=True, exist_ok=True)
    env: dict[str, Any] = environment()
    env["smoke"] = args.smoke
    env["seconds"] = round(time.monotonic() - started, 1)
    env["python"] = platform.python_version()
    if args.update:
        figures, env = _updated(args.out / "latest.json", figures, env, args.only)
    (args.out / "latest.json").write_text(
        json.dumps({"environment": env, "figures": [f.to_json() for f in figures]}, indent=2)
    )
    write_report(figures, env, args.out)
    print(f"wrote {args.out / 'latest.md'}")
    missed = [f.key for f in figures if f.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    return 0


def _updated(
    path: Path, measured: list[Figure], env: dict[str, Any], modules: list[str]
) -> tuple[list[Figure], dict[str, Any]]:
    """The results in ``path`` with ``measured`` in place of the figures of the same keys."""
    previous = json.loads(path.read_text())
    if previous["environment"]["smoke"] != env["smoke"]:
        raise SystemExit(f"--update: {path} is {'not ' * env['smoke']}a smoke run; this one is")
    new = {figure.key: figure for figure in measured}
    figures = [
        new.pop(f["key"]) if f["key"] in new else Figure.from_json(f) for f in previous["figures"]
    ]
    figures += new.values()
    kept = previous["environment"]
    update = {
        "modules": modules,
        "date": datetime.date.today().isoformat(),
        "seconds": env["seconds"],
        "versions": env["versions"],
    }
    kept["updates"] = [*kept.get("updates", []), update]
    return figures, kept


if __name__ == "__main__":
    raise SystemExit(main())
