#!/bin/sh
# Set up a virtual environment in .venv (if needed), make sure PostgreSQL's server
# binaries are installed (the suite starts its own throwaway server; see
# scripts/ensure-postgres.sh) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k calendar
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# Without PostgreSQL the suite still runs; its PostgreSQL tests then fail and say why.
sh scripts/ensure-postgres.sh || echo "continuing without PostgreSQL: its tests will fail" >&2
exec .venv/bin/python -m pytest "$@"
