#!/bin/sh
# Set up a virtual environment in .venv (if needed), check the shipped rulesets
# and evaluate the shipped sample tickets, printing one decision per line.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/slaengine validate rulesets
.venv/bin/slaengine evaluate rulesets/samples/tickets.jsonl
