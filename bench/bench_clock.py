"""Clock benchmark: replay of generated ticket events through the SLA clocks.

    python bench/bench_clock.py [--tickets N] [--repeats R] [--small N,N,...]

Each ticket has about five events (created, a public reply, a pause for the
customer and its end, the resolve; some have a severity change or a second
reply), generated on the fly and streamed through ``replay`` one ticket at a
time, so memory stays flat. The policy decides once per distinct
(severity, tier) and is otherwise free: the figures measure the clocks and
the calendar arithmetic under them. Every ticket's statuses are built
(MetricStatus models with escalation threshold instants) and read.

Prints medians of R repeats for the small sizes, then one run of N tickets:
wall and CPU time (machines here are shared: CPU time is the steadier),
events/s, the share spent generating the events, and peak RSS; and a
calibration figure to compare machines by.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
import timeit
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from slaengine.calendar import Calendar  # noqa: E402
from slaengine.decision import Decision, MetricTarget  # noqa: E402
from slaengine.escalation import EscalationPlan  # noqa: E402
from slaengine.metric import MetricDefinition  # noqa: E402
from slaengine.replay import replay  # noqa: E402
from slaengine.ticket import Ticket, TicketEvent  # noqa: E402

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


def events(n: int, seed: int = 1) -> Iterator[TicketEvent]:
    """About five events per ticket, each ticket's in time order, tickets one after another."""
    rng = random.Random(seed)
    make = TicketEvent
    for i in range(n):
        tid = f"T-{i}"
        at = START + timedelta(seconds=rng.randrange(330 * 86400))
        fields = {"severity": rng.choice(SEVERITIES), "tier": rng.choice(TIERS)}
        yield make(ticket_id=tid, event_id=f"{tid}-1", at=at, type="created", fields=fields)
        at += MINUTE * rng.randrange(1, 240)
        yield make(
            ticket_id=tid, event_id=f"{tid}-2", at=at, type="agent_replied", fields={"public": True}
        )
        roll = rng.random()
        if roll < 0.6:
            at += MINUTE * rng.randrange(1, 600)
            yield make(
                ticket_id=tid,
                event_id=f"{tid}-3",
                at=at,
                type="status_changed",
                fields={"status": "pending_customer"},
            )
            at += MINUTE * rng.randrange(1, 3000)
            yield make(
                ticket_id=tid,
                event_id=f"{tid}-4",
                at=at,
                type="status_changed",
                fields={"status": "open"},
            )
        elif roll < 0.8:
            at += MINUTE * rng.randrange(1, 600)
            yield make(
                ticket_id=tid,
                event_id=f"{tid}-3",
                at=at,
                type="severity_changed",
                fields={"severity": rng.choice(SEVERITIES)},
            )
        else:
            at += MINUTE * rng.randrange(1, 600)
            yield make(
                ticket_id=tid,
                event_id=f"{tid}-3",
                at=at,
                type="agent_replied",
                fields={"public": True},
            )
        at += MINUTE * rng.randrange(1, 3000)
        yield make(ticket_id=tid, event_id=f"{tid}-9", at=at, type="resolved")


AT = START + timedelta(days=400)


def run(n: int) -> tuple[float, float, int, float]:
    """Replay n tickets: (wall s, CPU s, events, CPU s spent only generating the events)."""
    count = 0

    def counted() -> Iterator[TicketEvent]:
        nonlocal count
        for event in events(n):
            count += 1
            yield event

    policy = BenchPolicy()
    states: dict[str, int] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for _ticket_id, statuses in replay(counted(), AT, policy):
        for status in statuses.values():  # read the output, as a consumer would
            states[status.state] = states.get(status.state, 0) + 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    generating = time.process_time()
    for _ in events(n):
        pass
    return wall, cpu, count, time.process_time() - generating


def report(label: str, n: int, wall: float, cpu: float, count: int, generating: float) -> None:
    print(
        f"{label:>13}: {n:>9,} tickets {count:>9,} events  wall {wall:7.2f} s  CPU {cpu:7.2f} s  "
        f"{count / cpu:>7,.0f} events/s  {n / cpu:>6,.0f} tickets/s (CPU)  "
        f"generating events: {generating / cpu:.0%} of it"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="the one full run")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each small size")
    parser.add_argument(
        "--small", default="1000,10000,50000", help="comma-separated sizes run --repeats times"
    )
    args = parser.parse_args()
    run(200)  # warm the calendar tables
    calibration = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    print(f"machine speed: sum(range(1000)) takes {calibration:.1f} us")
    for n in (int(s) for s in args.small.split(",") if s):
        runs = [run(n) for _ in range(args.repeats)]
        wall, cpu, count, generating = (statistics.median(r[i] for r in runs) for i in range(4))
        report(f"median of {args.repeats}", n, wall, cpu, int(count), generating)
    print(f"peak RSS after the small runs: {peak_rss_mb():,.0f} MB")
    if args.tickets:
        report("one run", args.tickets, *run(args.tickets))
        print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
