#!/bin/sh
# The main job: set up a virtual environment in .venv (if needed), check the
# shipped rulesets, decide the shipped sample tickets, then serve the SLA API
# on http://127.0.0.1:8080 with its embedded SQLite database in ./data and the
# escalation scheduler running (Ctrl-C stops it). Extra arguments go to
# `slaengine serve`, e.g. scripts/demo.sh --port 9000
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/slaengine validate rulesets
.venv/bin/slaengine evaluate rulesets/samples/tickets.jsonl
exec .venv/bin/slaengine serve --rulesets rulesets --data data "$@"
