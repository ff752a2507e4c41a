"""Run a module as ``python -m`` would, with the collector thresholds of ``trio-stream serve``.

    python -m bench._gc <module> [arguments ...]

``trio-stream serve`` raises the cyclic collector's thresholds in the
processes it serves from; the peer's servers run with Python's defaults. A
peer row with the same thresholds (``python -m bench._gc uvicorn ...``)
shows how much of a difference between the two is the collector's setting
and not the library, and the bare ceiling on hypercorn runs with them too,
so that its distance to trio-stream's row is the library's alone.
"""

from __future__ import annotations

import gc
import runpy
import sys

__all__ = ["SERVE_GC_THRESHOLDS"]

SERVE_GC_THRESHOLDS = (50_000, 20, 10)
"""The thresholds ``trio-stream serve`` sets (``GC_THRESHOLDS`` in ``trio_stream/_cli.py``).

The package does not export them, so they are repeated here;
``tests/bench/test_smoke.py`` fails when the two differ.
"""


def main() -> None:
    module, *arguments = sys.argv[1:]
    gc.set_threshold(*SERVE_GC_THRESHOLDS)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
