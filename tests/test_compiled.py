"""The compiled clocks and calendar against their Python source: the same results.

``setup.py`` compiles ``clock.py``, ``calendar.py`` and ``unchecked.py`` with
Cython (plus the ``_instants`` datetime helpers); ``SLAENGINE_PURE_PYTHON=1``
runs the Python source instead. Both run ``slaengine replay`` over the same
generated events through the shipped rulesets, and must print the same bytes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import slaengine.calendar
import slaengine.clock
import slaengine.unchecked

ROOT = Path(__file__).resolve().parent.parent
COMPILED = [slaengine.clock, slaengine.calendar, slaengine.unchecked]
CST = timezone(timedelta(hours=8))
CONTRACTS = [
    "CN-HUAXIA-BANK-2026",  # premium 7x24, platinum
    "INTL-CONTOSO-2026",  # premium 7x24, gold
    "CN-NORTHWIND-LOGISTICS-2026",  # standard, gold
    "CN-LOTUS-RETAIL-2026",  # standard, silver
    "CN-EASTWIND-MFG-2025",  # standard 1.0.0, pinned
]
SEVERITIES = ["urgent", "serious", "general", "consultation"]
#: Steps after creation: replies, pauses and their ends, re-targeting, a
#: workaround, resolution and reopening, a custom event.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("agent_replied", {"public": True}),
    ("agent_replied", {"public": False}),
    ("customer_replied", {}),
    ("status_changed", {"status": "pending_customer"}),
    ("status_changed", {"status": "on_hold"}),
    ("status_changed", {"status": "open"}),
    ("severity_changed", {"severity": "urgent"}),
    ("severity_changed", {"severity": "general"}),
    ("updated", {"workaround": True}),
    ("resolved", {}),
    ("reopened", {}),
    ("closed", {}),
    ("field_visit_booked", {}),
]


def _events(tickets: int, seed: int) -> list[dict[str, Any]]:
    """Tickets from late September to mid October 2026 (over China's National
    Day holidays and weekends), each with up to nine later events, some
    given out of order and one in ten twice."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 25, tzinfo=CST)
    lines = []
    for n in range(tickets):
        tid = f"T-{n}"
        at = start + timedelta(minutes=rng.randrange(20 * 24 * 60), seconds=rng.randrange(60))
        fields = {"contract": rng.choice(CONTRACTS), "severity": rng.choice(SEVERITIES)}
        own = [{"type": "created", "at": at, "fields": fields}]
        for _ in range(rng.randrange(10)):
            at += timedelta(minutes=rng.choice([1, 14, 15, 16, 59, 61, 240, 900, 3000]))
            kind, changed = rng.choice(STEPS)
            own.append({"type": kind, "at": at, "fields": changed})
        for number, event in enumerate(own, start=1):
            offset = rng.choice([CST, UTC, timezone(timedelta(hours=-5, minutes=-30))])
            event.update(ticket_id=tid, event_id=f"{tid}-{number}")
            event["at"] = event["at"].astimezone(offset).isoformat()
        rng.shuffle(own)  # the clocks sort each ticket's events
        own += [own[0]] if rng.random() < 0.1 else []  # a duplicate counts once
        lines += own
    return lines


def _replay(path: Path, at: str, *, pure: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SLAENGINE_PURE_PYTHON"}
    if pure:
        env["SLAENGINE_PURE_PYTHON"] = "1"
    argv = [sys.executable, "-m", "slaengine", "replay", str(path), "--json", "--at", at]
    argv += ["--rulesets", str(ROOT / "rulesets")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_pure_python_switch_loads_each_module_from_its_source() -> None:
    code = (
        "import slaengine.clock as c, slaengine.calendar as k, slaengine.unchecked as u;"
        "print(c.__file__, k.__file__, u.__file__, c._us.__module__)"
    )
    env = dict(os.environ, SLAENGINE_PURE_PYTHON="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    *files, instants = done.stdout.split()
    assert [Path(f).name for f in files] == ["clock.py", "calendar.py", "unchecked.py"]
    assert instants == "slaengine.clock"  # the Python fallback, not slaengine._instants


@pytest.mark.skipif(
    any(module.__file__.endswith(".py") for module in COMPILED),
    reason="the compiled modules are not built here (no C compiler at install time)",
)
@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_the_switch_is_off_unless_set_to_a_yes(value: str) -> None:
    code = "import slaengine.clock as c; print(c.__file__)"
    env = dict(os.environ, SLAENGINE_PURE_PYTHON=value)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not done.stdout.strip().endswith(".py")


@pytest.mark.skipif(
    any(module.__file__.endswith(".py") for module in COMPILED),
    reason="the compiled modules are not built here (no C compiler at install time)",
)
@pytest.mark.parametrize("at", ["2026-10-03T12:00:00+08:00", "2026-11-30T00:00:00Z"])
def test_compiled_and_pure_python_replays_print_the_same(tmp_path: Path, at: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in _events(400, seed=7)))

    compiled = _replay(path, at, pure=False)
    pure = _replay(path, at, pure=True)

    assert compiled == pure
    tickets = [json.loads(line) for line in compiled.splitlines()]
    states = {m["state"] for t in tickets for m in t["metrics"].values()}
    assert len(tickets) == 400 and any(t["metrics"] for t in tickets)
    assert {"met", "breached"} <= states  # the comparison covers real outcomes
    if at.startswith("2026-10"):  # mid-life: clocks still counting or paused
        assert {"running", "paused"} <= states


#: What each compiled module is built from: its own source and declarations,
#: and the declarations it compiles against (the clock calls the calendar's
#: typed methods through calendar.pxd).
SOURCES = {
    "clock": ["clock.py", "clock.pxd", "calendar.pxd"],
    "calendar": ["calendar.py", "calendar.pxd"],
    "unchecked": ["unchecked.py"],
    "_instants": ["_instants.pyx"],
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_compiled_module_is_not_older_than_what_it_is_built_from(name: str) -> None:
    """A stale build would run yesterday's code; rebuild with pip install -e ."""
    package = Path(slaengine.clock.__file__).parent
    built = [p for p in package.glob(f"{name}.*") if p.suffix in (".so", ".pyd")]
    if not built or os.environ.get("SLAENGINE_PURE_PYTHON"):
        pytest.skip("running the Python source")
    for source in SOURCES[name]:
        assert built[0].stat().st_mtime >= (package / source).stat().st_mtime, (
            f"{built[0].name} is older than {source}: rebuild with "
            "`.venv/bin/python -m pip install -e .`"
        )
