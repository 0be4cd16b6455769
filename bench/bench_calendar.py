"""Benchmark Calendar.add and Calendar.elapsed at short and long distances.

Run: ``python bench/bench_calendar.py [--ops N] [--repeats R]``.

Prints, per calendar and distance, the median ops/s over R repeats (warm:
tables built), the 1-year/1-hour cost ratio, and what a cold first call costs.
Goals: at least 100,000 ops/s at every distance; 1-year cost within 2x of 1-hour.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slaengine.calendar import Calendar

SPECS = {
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
GOAL_OPS = 100_000
GOAL_RATIO = 2.0


def starts_for(cal: Calendar, count: int = 256) -> list[datetime]:
    """Start instants spread over two months of 2026, every 5h 7min (open and closed)."""
    zone = ZoneInfo(cal.timezone)
    first = datetime(2026, 3, 1, tzinfo=zone)
    return [first + i * timedelta(hours=5, minutes=7) for i in range(count)]


def ops_per_second(run: Callable[[], None], ops: int, repeats: int) -> float:
    """Median ops/s of ``run`` (which performs ``ops`` operations) over ``repeats``."""
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        rates.append(ops / (time.perf_counter() - began))
    return statistics.median(rates)


def bench_calendar(name: str, spec: dict, ops: int, repeats: int) -> list[tuple]:
    cal = Calendar.from_spec(spec)
    starts = starts_for(cal)
    rounds = max(1, ops // len(starts))
    total = rounds * len(starts)
    year_amount = cal.elapsed(starts[0], starts[0] + timedelta(days=365))
    distances = {"1 hour": timedelta(hours=1), "100 hours": timedelta(hours=100)}
    distances["1 year"] = year_amount
    # Warm: build the tables every measured call needs.
    for t in starts:
        cal.add(t, year_amount)
        cal.add(t, -year_amount)
    rows = []
    for label, amount in distances.items():
        ends = [cal.add(t, amount) for t in starts]
        pairs = list(zip(starts, ends, strict=True))

        def run_add(amount: timedelta = amount) -> None:
            add = cal.add
            for _ in range(rounds):
                for t in starts:
                    add(t, amount)

        def run_elapsed(pairs: list[tuple[datetime, datetime]] = pairs) -> None:
            elapsed = cal.elapsed
            for _ in range(rounds):
                for a, b in pairs:
                    elapsed(a, b)

        rows.append(
            (
                name,
                label,
                amount,
                ops_per_second(run_add, total, repeats),
                ops_per_second(run_elapsed, total, repeats),
            )
        )
    return rows


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
            out.append((f"{name}, add {label} (holiday data loaded)", statistics.median(times)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000, help="operations per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (median reported)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    # Cold, first in this process: includes loading the holidays package's data.
    began = time.perf_counter()
    first = Calendar.from_spec(SPECS["5x8 Asia/Shanghai + CN"])
    first.add(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Asia/Shanghai")), timedelta(hours=1))
    first_call = time.perf_counter() - began

    rows = [
        row
        for name, spec in SPECS.items()
        for row in bench_calendar(name, spec, args.ops, args.repeats)
    ]
    print(f"warm: median of {args.repeats} repeats x {args.ops:,} ops, one core")
    print(f"load average before the run: {load} on {os.cpu_count()} CPUs (noise if high)\n")
    print(
        f"{'calendar':<30} {'distance':<10} {'amount':>20} {'add ops/s':>12} {'elapsed ops/s':>14}"
    )
    for name, label, amount, add_rate, elapsed_rate in rows:
        print(f"{name:<30} {label:<10} {str(amount):>20} {add_rate:>12,.0f} {elapsed_rate:>14,.0f}")

    print("\n1-year / 1-hour cost ratio (cost = 1 / ops/s; goal <= 2.0)")
    ok = True
    for name in SPECS:
        mine = {label: (a, e) for n, label, _, a, e in rows if n == name}
        add_ratio = mine["1 hour"][0] / mine["1 year"][0]
        elapsed_ratio = mine["1 hour"][1] / mine["1 year"][1]
        print(f"{name:<30} add {add_ratio:.2f}   elapsed {elapsed_ratio:.2f}")
        ok &= max(add_ratio, elapsed_ratio) <= GOAL_RATIO
    slowest = min(min(a, e) for *_, a, e in rows)
    ok &= slowest >= GOAL_OPS
    print(f"\nslowest case: {slowest:,.0f} ops/s (goal >= {GOAL_OPS:,})")

    print("\ncold: from_spec + first add on a fresh calendar")
    label = "first in process (loads holiday data): 5x8 CN, add 1 hour"
    print(f"{label:<62} {first_call * 1e3:8.1f} ms")
    for label, seconds in cold_costs(min(args.repeats, 5)):
        print(f"{label:<62} {seconds * 1e3:8.1f} ms")
    print("\ngoals met" if ok else "\ngoals NOT met")


if __name__ == "__main__":
    main()
