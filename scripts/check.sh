#!/usr/bin/env bash
# Every check CI makes: formatting, lint, strict types, the docs site, and the
# test suite (each async test on Trio and on asyncio). Run it through uv, as the
# README shows, so that the locked tools are the ones on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ruff"
ruff format --check .
ruff check .
echo "== mypy --strict"
mypy
echo "== mkdocs build --strict"
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$site"
echo "== pytest"
pytest "$@"
