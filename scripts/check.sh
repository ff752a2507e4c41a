#!/usr/bin/env bash
# Every check CI makes: formatting, lint, strict types, the docs site, and the
# test suite (each async test on Trio and on asyncio). Run it through uv, as the
# README shows, so that the locked tools are the ones on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test tools"
# The interop tests decode with the official npm packages (pinned in
# tests/js/package-lock.json) and fetch raw bodies with curl; the browser test
# drives Debian's Chromium with Playwright (no browser download).
missing=()
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# The resumable stream tests start their own Redis topologies on loopback
# ports: single servers, a cluster (formed with redis-cli, from redis-tools)
# and Sentinels (redis-server --sentinel); bench m10 starts a redis-server too.
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

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

# The package claims Python 3.11 to 3.13: the suite above ran on 3.11 (the
# locked default); the core and format tests run on the others too, each in
# an environment of its own made from the same lock.
python_for() {
    local version=$1 candidate
    for candidate in "$(command -v "python$version" || true)" \
        "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$version".*/bin/"python$version" \
        /usr/bin/"python$version" /usr/local/bin/"python$version"; do
        if [[ -n $candidate && -x $candidate ]] && "$candidate" -c "" 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "Python $version is not installed; the checks run on 3.11, 3.12 and 3.13" >&2
    return 1
}
for version in 3.12 3.13; do
    echo "== pytest on Python $version: the core and the formats"
    interpreter=$(python_for "$version")
    UV_PROJECT_ENVIRONMENT=".venv-$version" "${UV:-uv}" run --quiet --locked --group dev \
        --python "$interpreter" pytest -q -p no:cacheprovider tests/test_*.py tests/formats
done
