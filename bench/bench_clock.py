"""Clock benchmark: ``slaengine replay``'s path, from a JSONL file of events to statuses.

    python bench/bench_clock.py [--tickets N] [--repeats R] [--small N,N,...]

Issue 4's speed goal: 1,000,000 generated tickets of about five events each
(created, a public reply, a pause for the customer and its end, the resolve;
some have a severity change or a second reply) replayed through the clocks
in under 60 s on one core, in bounded memory.

The events are generated once per size into a JSONL file (not timed); each
timed run then does the whole job end to end: read the file line by line,
parse and check each event (``read_events``), stream the tickets through
``replay`` one at a time, and read every metric status of every ticket
(``MetricStatus`` models with escalation threshold instants and cycle
history). The policy decides once per distinct (severity, tier) and is
otherwise free: the figures measure parsing, the clocks and the calendar
arithmetic under them, not the rules engine.

Prints, per size, the median of R runs: wall and CPU time (machines here
are shared: CPU time is the steadier), events/s and tickets/s (CPU), and
how much of the time parsing alone takes (a separate median of R parse-only
passes); the load average before and after, a calibration figure to
compare machines by, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from slaengine.calendar import Calendar  # noqa: E402
from slaengine.decision import Decision, MetricTarget  # noqa: E402
from slaengine.escalation import EscalationPlan  # noqa: E402
from slaengine.metric import MetricDefinition  # noqa: E402
from slaengine.replay import read_events, replay  # noqa: E402
from slaengine.ticket import Ticket  # noqa: E402

PUBLIC = {"type": "agent_replied", "fields": {"public": True}}
METRICS = {
    "first_response": MetricDefinition.model_validate({"stop": [PUBLIC]}),
    "next_update": MetricDefinition.model_validate(
        {"kind": "periodic", "start": ["created", PUBLIC], "stop": ["resolved", "closed"]}
    ),
    "resolution": MetricDefinition.model_validate(
        {
            "stop": "resolved",
            "pause_statuses": ["pending_customer", "on_hold"],
            "on_reopen": "resume",
        }
    ),
}
CALENDARS = {
    "always": Calendar.always(),
    "business": Calendar.from_spec(
        {
            "timezone": "Asia/Shanghai",
            "hours": {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
            "holidays": [{"country": "CN"}],
        }
    ),
}
PLAN = EscalationPlan.model_validate(
    {"metric": "resolution", "thresholds": [{"at": "50%"}, {"at": "100%"}, {"at": "100%+2h"}]}
)
TARGETS = {  # severity -> calendar, first response, next update, resolution (seconds)
    "urgent": ("always", 900, 3600, 6 * 3600),
    "serious": ("business", 3600, 4 * 3600, 16 * 3600),
    "general": ("business", 4 * 3600, 8 * 3600, 40 * 3600),
}
SEVERITIES = list(TARGETS)
TIERS = ["gold", "silver", "bronze"]


class BenchPolicy:
    """A ClockPolicy with one decision per (severity, tier), computed once."""

    def __init__(self) -> None:
        self._decisions: dict[tuple[str, str | None], Decision] = {}

    def decide(self, ticket: Ticket) -> Decision:
        key = (ticket.severity, ticket.tier)
        decision = self._decisions.get(key)
        if decision is None:
            calendar, *seconds = TARGETS[ticket.severity]
            decision = self._decisions[key] = Decision(
                ticket_id="-",
                ruleset="bench",
                version="1",
                revision="0",
                priority=ticket.severity,
                targets={
                    name: MetricTarget(target=f"{s}s", seconds=s, calendar=calendar)
                    for name, s in zip(METRICS, seconds, strict=True)
                },
                escalation_plan="plan",
            )
        return decision

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        return METRICS

    def calendar(self, decision: Decision, name: str) -> Calendar:
        return CALENDARS[name]

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        return PLAN

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        return "from_start"


START = datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=8)))
MINUTE = timedelta(minutes=1)
AT = START + timedelta(days=400)


def _event(tid: str, number: int, at: datetime, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "ticket_id": tid,
        "event_id": f"{tid}-{number}",
        "at": at.isoformat(),
        "type": kind,
        "fields": fields,
    }


def events(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """About five JSON-shaped events per ticket, in time order, tickets one after another."""
    rng = random.Random(seed)
    for i in range(n):
        tid = f"T-{i}"
        at = START + timedelta(seconds=rng.randrange(330 * 86400))
        severity, tier = rng.choice(SEVERITIES), rng.choice(TIERS)
        yield _event(tid, 1, at, "created", severity=severity, tier=tier)
        at += MINUTE * rng.randrange(1, 240)
        yield _event(tid, 2, at, "agent_replied", public=True)
        roll = rng.random()
        at += MINUTE * rng.randrange(1, 600)
        if roll < 0.6:
            yield _event(tid, 3, at, "status_changed", status="pending_customer")
            at += MINUTE * rng.randrange(1, 3000)
            yield _event(tid, 4, at, "status_changed", status="open")
        elif roll < 0.8:
            yield _event(tid, 3, at, "severity_changed", severity=rng.choice(SEVERITIES))
        else:
            yield _event(tid, 3, at, "agent_replied", public=True)
        at += MINUTE * rng.randrange(1, 3000)
        yield _event(tid, 9, at, "resolved")


def write_events(n: int, path: Path) -> int:
    """Write n tickets' events to ``path`` as JSONL; return how many events."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for event in events(n):
            out.write(json.dumps(event) + "\n")
            count += 1
    return count


def run(path: Path) -> tuple[float, float, int, dict[str, int]]:
    """Replay a JSONL file end to end: (wall s, CPU s, tickets, count of states read)."""
    policy = BenchPolicy()
    states: dict[str, int] = {}
    tickets = 0
    wall, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        for _ticket_id, statuses in replay(read_events(stream, str(path)), AT, policy):
            tickets += 1
            for status in statuses.values():  # read the output, as a consumer would
                states[status.state] = states.get(status.state, 0) + 1
    return time.perf_counter() - wall, time.process_time() - cpu, tickets, states


def parse_only(path: Path) -> float:
    """CPU seconds to read and check the file's events, nothing more."""
    cpu = time.process_time()
    with path.open("rb") as stream:
        for _ in read_events(stream, str(path)):
            pass
    return time.process_time() - cpu


def measure(n: int, repeats: int, directory: Path) -> None:
    """Generate n tickets, replay them ``repeats`` times, print the medians."""
    path = directory / f"events-{n}.jsonl"
    started = time.perf_counter()
    count = write_events(n, path)
    generated = time.perf_counter() - started
    size = path.stat().st_size
    runs = [run(path) for _ in range(repeats)]
    tickets = runs[0][2]
    assert tickets == n and all(r[2] == n and r[3] == runs[0][3] for r in runs), "runs differ"
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    parsing = statistics.median(parse_only(path) for _ in range(repeats))
    path.unlink()
    print(
        f"{n:>9,} tickets {count:>9,} events ({size / 1e6:,.0f} MB JSONL, generated in "
        f"{generated:.0f} s), median of {repeats}: wall {wall:7.2f} s  CPU {cpu:7.2f} s  "
        f"{count / cpu:>7,.0f} events/s  {n / cpu:>6,.0f} tickets/s (CPU)  "
        f"parsing alone: {parsing / cpu:.0%} of it  (runs' CPU s: "
        f"{', '.join(f'{r[1]:.2f}' for r in runs)}; states {dict(sorted(runs[0][3].items()))})"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="the full size (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each size (median)")
    parser.add_argument("--small", default="10000", help="comma-separated sizes run first")
    args = parser.parse_args()
    calibration = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    print(f"machine speed: sum(range(1000)) takes {calibration:.1f} us; {load()}")
    sizes = [int(s) for s in args.small.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="bench_clock-") as tmp:
        directory = Path(tmp)
        warm = directory / "warm.jsonl"
        write_events(200, warm)
        run(warm)  # the calendar tables and caches, built once per process
        for n in sizes:
            measure(n, args.repeats, directory)
        print(f"peak RSS after the small sizes: {peak_rss_mb():,.0f} MB")
        if args.tickets:
            measure(args.tickets, args.repeats, directory)
            print(f"peak RSS: {peak_rss_mb():,.0f} MB")
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
