#!/bin/sh
# Run every benchmark script and the slow (scale/soak) tests.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
for bench in bench/bench_*.py; do
    echo "== $bench"
    .venv/bin/python "$bench"
done
.venv/bin/python -m pytest -m slow
