#!/bin/sh
# Set up a virtual environment in .venv (if needed) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k calendar
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
exec .venv/bin/python -m pytest "$@"
