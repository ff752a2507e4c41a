"""Benchmarks: trio-stream against assistant-stream, and against what the server allows.

``python -m bench`` runs every measurement with every contender in one run and
writes ``bench/results/latest.md``, ``latest.json`` and the plots;
``python -m bench --smoke`` is the same harness at a size that takes seconds,
run by the test suite so that it never rots. See ``bench/README.md``.
"""
