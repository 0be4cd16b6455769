"""Engine benchmark: evaluate_many throughput, single-evaluate latency, 2,000-rule load.

    python bench/bench_engine.py [--tickets N] [--repeats R]

Prints medians over R repeats (machines here are shared and noisy), as rates
per wall second and per CPU second of this process (what one core did while
others ran), with the load average and a plain-Python calibration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slaengine.engine import Engine  # noqa: E402
from slaengine.library import RulesetLibrary  # noqa: E402
from slaengine.ruleset import parse_ruleset  # noqa: E402
from slaengine.yamlsource import read_yaml  # noqa: E402

CONTRACTS = [
    "CN-HUAXIA-BANK-2026",
    "CN-NORTHWIND-LOGISTICS-2026",
    "CN-LOTUS-RETAIL-2026",
    "CN-EASTWIND-MFG-2025",
    "INTL-CONTOSO-2026",
]
SEVERITIES = ["urgent", "serious", "general", "consultation"]
CHANNELS = ["phone", "email", "web", "chat"]
CATEGORIES = ["application", "database", "security", "network"]


def tickets(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=8)))
    return [
        {
            "id": f"T-{i}",
            "contract": rng.choice(CONTRACTS),
            "severity": rng.choice(SEVERITIES),
            "channel": rng.choice(CHANNELS),
            "category": rng.choice(CATEGORIES),
            "created_at": (start + timedelta(seconds=rng.randrange(330 * 86400))).isoformat(),
        }
        for i in range(n)
    ]


def median_rate(fn, count: int, repeats: int) -> tuple[float, list[float], float]:
    """Median rate per wall second (and the runs), and median rate per CPU second."""
    rates, cpu_rates = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        rates.append(count / (time.perf_counter() - t0))
        cpu_rates.append(count / (time.process_time() - c0))
    return statistics.median(rates), rates, statistics.median(cpu_rates)


def calibration() -> str:
    """How fast this machine runs plain Python now (median of 200 timings)."""
    times = []
    for _ in range(200):
        t0 = time.perf_counter_ns()
        sum(range(1000))
        times.append(time.perf_counter_ns() - t0)
    return f"calibration sum(range(1000)): {statistics.median(times) / 1000:.1f} us"


def stages(engine: Engine, batch: list[dict], repeats: int) -> None:
    """CPU µs per ticket of each stage of ``evaluate_many`` (collector off), medians."""
    import gc

    from slaengine.calendar import epoch_us
    from slaengine.engine import _TICKETS
    from slaengine.unchecked import filled

    parsed = _TICKETS.validate_python(batch)
    routes = [engine._version_for(t) for t in parsed]
    starts = [epoch_us(t.created_at) for t in parsed]

    def key(t, route, start):
        version, overrides = route
        return (tuple(overrides.items()) if overrides else None, version.reader.key(t, None, start))

    matches = [r[0].known[key(t, r, s)] for t, r, s in zip(parsed, routes, starts, strict=True)]

    def due_times(match, start):
        return [count(start, amount) for _, _, count, amount in match.due]

    dues = [due_times(m, s) for m, s in zip(matches, starts, strict=True)]

    def build():
        for m, t, ds in zip(matches, parsed, dues, strict=True):
            targets = {d[0]: filled(d[1], due_at=x) for d, x in zip(m.due, ds, strict=True)}
            filled(m.decision, ticket_id=t.id, targets=targets)

    steps = {
        "validate the mappings": lambda: _TICKETS.validate_python(batch),
        "contract route + version": lambda: [engine._version_for(t) for t in parsed],
        "created_at to epoch us": lambda: [epoch_us(t.created_at) for t in parsed],
        "key + cached match": lambda: [
            r[0].known.get(key(t, r, s)) for t, r, s in zip(parsed, routes, starts, strict=True)
        ],
        "due times": lambda: [due_times(m, s) for m, s in zip(matches, starts, strict=True)],
        "Decision + MetricTargets": build,
        "evaluate_many (all)": lambda: engine.evaluate_many(batch),
    }
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    gc.disable()
    try:
        for _ in range(repeats):
            for name, step in steps.items():
                c0 = time.process_time()
                step()
                cpu[name].append((time.process_time() - c0) / len(batch) * 1e6)
    finally:
        gc.enable()
    for name, values in cpu.items():
        print(f"  {name:26s} {statistics.median(values):5.1f} us CPU per ticket")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--stages", action="store_true", help="also time each stage of evaluate_many"
    )
    args = parser.parse_args()

    engine = Engine.from_directory(ROOT / "rulesets")
    batch = tickets(args.tickets)
    engine.evaluate_many(batch[:2000])  # warm calendar tables and the match cache

    print(f"load average {os.getloadavg()[0]:.1f}; {calibration()}")
    print(
        "(the batch repeats the field combinations of real tickets, so matches come from the "
        "cache after warm-up; the cold path, durable_rules every time, is timed below)"
    )
    rate, rates, cpu = median_rate(lambda: engine.evaluate_many(batch), len(batch), args.repeats)
    print(
        f"evaluate_many, {len(batch)} dict tickets, due times included: "
        f"median {rate:,.0f} tickets/s  (runs: {', '.join(f'{r:,.0f}' for r in rates)}); "
        f"per CPU second: median {cpu:,.0f} tickets/s"
    )

    if args.stages:
        print("stages of evaluate_many (cyclic collector off):")
        stages(engine, batch, args.repeats)

    from slaengine.ticket import parse_ticket

    parsed = [parse_ticket(t) for t in batch]
    rate, _, cpu = median_rate(lambda: engine.evaluate_many(parsed), len(parsed), args.repeats)
    print(
        f"evaluate_many, {len(parsed)} Ticket objects: median {rate:,.0f} tickets/s; "
        f"per CPU second: median {cpu:,.0f} tickets/s"
    )

    lat = []
    for t in batch[:20_000]:
        t0 = time.perf_counter_ns()
        engine.evaluate(t)
        lat.append(time.perf_counter_ns() - t0)
    lat.sort()
    print(
        f"evaluate one (warm cache): p50 {lat[len(lat) // 2] / 1000:.1f} us, "
        f"p99 {lat[int(len(lat) * 0.99)] / 1000:.1f} us"
    )

    # Cold path: every ticket a new match (cache cleared before each).
    cold = []
    for t in batch[:3000]:
        for version in engine._versions.values():
            version.cache.clear()
            version.known.clear()
        t0 = time.perf_counter_ns()
        engine.evaluate(t)
        cold.append(time.perf_counter_ns() - t0)
    cold.sort()
    print(
        f"evaluate one (cold cache, durable_rules match every time): "
        f"p50 {cold[len(cold) // 2] / 1000:.1f} us, p99 {cold[int(len(cold) * 0.99)] / 1000:.1f} us"
    )
    engine.close()

    from tests.test_engine_scale import generated_ruleset

    text = generated_ruleset(2000)
    loads = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        big = Engine(RulesetLibrary([parse_ruleset(read_yaml(text, "big.yaml"))]))
        loads.append(time.perf_counter() - t0)
        big.close()
    print(
        f"2,000-rule ruleset load+validate+compile: median {statistics.median(loads):.2f} s "
        f"(runs: {', '.join(f'{x:.2f}' for x in loads)})"
    )
    print(json.dumps({"tickets": args.tickets}))


if __name__ == "__main__":
    main()
