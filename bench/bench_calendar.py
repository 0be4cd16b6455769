"""Benchmark Calendar.add and Calendar.elapsed at short and long distances.

Run: ``python bench/bench_calendar.py [--ops N] [--repeats R]``.

Prints, per calendar and distance, the median ops/s over R repeats (warm:
tables built), the 1-year/1-hour cost ratio, and what a cold first call costs.
Repeats are interleaved (every case once per round) so that background load
hits all cases alike. Goals: at least 100,000 ops/s at every distance; 1-year
cost within 2x of 1-hour cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slaengine.calendar import Calendar

SPECS: dict[str, dict[str, Any]] = {
    "5x8 Asia/Shanghai + CN": {
        "timezone": "Asia/Shanghai",
        "hours": {"mon-fri": ["09:00-17:00"]},
        "holidays": [{"country": "CN"}],
    },
    "lunch + night, New_York + US": {
        "timezone": "America/New_York",
        "hours": {"mon-fri": ["09:00-12:00", "13:30-18:00", "22:00-06:00"]},
        "holidays": [{"country": "US"}],
    },
}
DISTANCES = ("1 hour", "100 hours", "1 year")
GOAL_OPS = 100_000
GOAL_RATIO = 2.0


def starts_for(cal: Calendar, count: int = 256) -> list[datetime]:
    """Start instants spread over two months of 2026, every 5h 7min (open and closed)."""
    first = datetime(2026, 3, 1, tzinfo=ZoneInfo(cal.timezone))
    return [first + i * timedelta(hours=5, minutes=7) for i in range(count)]


def amount_for(cal: Calendar, start: datetime, distance: str) -> timedelta:
    """The business time to add; "1 year" is what one calendar year out holds."""
    if distance == "1 year":
        return cal.elapsed(start, start + timedelta(days=365))
    return timedelta(hours=1 if distance == "1 hour" else 100)


def cases(ops: int) -> dict[tuple[str, str, str], tuple[Callable[[], None], int, timedelta]]:
    """(calendar, operation, distance) -> (a run of about ``ops`` calls, its count, amount)."""
    out = {}
    for name, spec in SPECS.items():
        cal = Calendar.from_spec(spec)
        starts = starts_for(cal)
        rounds = max(1, ops // len(starts))
        for distance in DISTANCES:
            amount = amount_for(cal, starts[0], distance)
            ends = [cal.add(t, amount) for t in starts]  # also builds the tables: warm
            pairs = list(zip(starts, ends, strict=True))

            def run_add(cal=cal, starts=starts, amount=amount, rounds=rounds) -> None:
                add = cal.add
                for _ in range(rounds):
                    for t in starts:
                        add(t, amount)

            def run_elapsed(cal=cal, pairs=pairs, rounds=rounds) -> None:
                elapsed = cal.elapsed
                for _ in range(rounds):
                    for a, b in pairs:
                        elapsed(a, b)

            count = rounds * len(starts)
            out[name, "add", distance] = (run_add, count, amount)
            out[name, "elapsed", distance] = (run_elapsed, count, amount)
    return out


def cold_costs(repeats: int) -> list[tuple[str, float]]:
    """Seconds for from_spec + one add on a fresh calendar (median of repeats)."""
    out = []
    for name, spec in SPECS.items():
        for label, amount in (("1 hour", timedelta(hours=1)), ("1 year", timedelta(hours=2000))):
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                cal = Calendar.from_spec(spec)
                cal.add(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo(cal.timezone)), amount)
                times.append(time.perf_counter() - began)
            out.append((f"{name}, add {label}", statistics.median(times)))
        # A derived calendar (a ticket's pauses cut out) reuses the parent's periods.
        cal = Calendar.from_spec(spec)
        start = datetime(2026, 3, 2, 10, tzinfo=ZoneInfo(cal.timezone))
        cal.add(start, timedelta(hours=1))
        times = []
        for i in range(repeats):
            began = time.perf_counter()
            paused = cal.excluding([(start + timedelta(minutes=i), start + timedelta(hours=3))])
            paused.add(start, timedelta(hours=5))
            times.append(time.perf_counter() - began)
        out.append((f"{name}, excluding + add 5 hours", statistics.median(times)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="calls per case and repeat")
    parser.add_argument("--repeats", type=int, default=15, help="repeats (median reported)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    # Cold, first in this process: includes the holidays package computing CN's year.
    began = time.perf_counter()
    first = Calendar.from_spec(SPECS["5x8 Asia/Shanghai + CN"])
    first.add(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Asia/Shanghai")), timedelta(hours=1))
    first_call = time.perf_counter() - began

    todo = cases(args.ops)
    rates: dict[tuple[str, str, str], list[float]] = {key: [] for key in todo}
    for _ in range(args.repeats):
        for key, (run, count, _) in todo.items():
            began = time.perf_counter()
            run()
            rates[key].append(count / (time.perf_counter() - began))
    median = {key: statistics.median(values) for key, values in rates.items()}

    print(f"warm: median of {args.repeats} interleaved repeats x ~{args.ops:,} calls, one core")
    print(f"load average before the run: {load} on {os.cpu_count()} CPUs (noise if high)\n")
    print(
        f"{'calendar':<30} {'distance':<10} {'amount':>20} {'add ops/s':>11} {'elapsed ops/s':>14}"
    )
    for name in SPECS:
        for distance in DISTANCES:
            amount = todo[name, "add", distance][2]
            add, elapsed = median[name, "add", distance], median[name, "elapsed", distance]
            print(f"{name:<30} {distance:<10} {str(amount):>20} {add:>11,.0f} {elapsed:>14,.0f}")

    print(f"\n1-year / 1-hour cost ratio (cost = 1 / ops/s; goal <= {GOAL_RATIO})")
    worst_ratio = 0.0
    for name in SPECS:
        ratios = {
            op: median[name, op, "1 hour"] / median[name, op, "1 year"] for op in ("add", "elapsed")
        }
        worst_ratio = max(worst_ratio, *ratios.values())
        print(f"{name:<30} add {ratios['add']:.2f}   elapsed {ratios['elapsed']:.2f}")
    slowest = min(median.values())
    print(f"\nslowest case: {slowest:,.0f} ops/s (goal >= {GOAL_OPS:,})")

    print("\ncold: from_spec + first add on a fresh calendar (median of 5)")
    label = "first in process (holidays package computes CN), add 1 hour"
    print(f"{label:<78} {first_call * 1e3:8.1f} ms")
    for label, seconds in cold_costs(5):
        print(f"{label + ' (holiday data cached)':<78} {seconds * 1e3:8.1f} ms")
    met = slowest >= GOAL_OPS and worst_ratio <= GOAL_RATIO
    print("\ngoals met" if met else "\ngoals NOT met")


if __name__ == "__main__":
    main()
