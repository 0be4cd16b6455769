"""Plain durable_rules ``post_batch`` throughput: the yardstick for bench_engine.

    python bench/bench_durable_baseline.py [--events N] [--repeats R]

Four rules on severity (one also reads the channel), one for every event,
through durable_rules' own Python host (``durable.lang``), events posted in
batches of 1,000, every action a no-op. Rates per wall second and per CPU
second of the process (the machines are shared: CPU time is what one core did).
Run in its own process: the host starts background threads.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from durable.lang import m, post_batch, ruleset, when_all


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with ruleset("baseline"):

        @when_all(m.severity == "urgent")
        def urgent(c):  # noqa: ARG001
            pass

        @when_all((m.severity == "serious") & (m.channel != "fax"))
        def serious(c):  # noqa: ARG001
            pass

        @when_all(m.severity == "general")
        def general(c):  # noqa: ARG001
            pass

        @when_all(m.severity == "consultation")
        def consultation(c):  # noqa: ARG001
            pass

    rng = random.Random(1)
    severities = ["urgent", "serious", "general", "consultation"]
    channels = ["phone", "email", "web", "chat"]
    rates: list[float] = []
    cpu_rates: list[float] = []
    for run in range(args.repeats):
        # Unique ids: durable_rules drops an event whose id it has seen.
        events = [
            {
                "id": f"{run}-{i}",
                "severity": rng.choice(severities),
                "channel": rng.choice(channels),
            }
            for i in range(args.events)
        ]
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(events), 1000):
            post_batch("baseline", events[start : start + 1000])
        rates.append(args.events / (time.perf_counter() - t0))
        cpu_rates.append(args.events / (time.process_time() - c0))
    print(
        f"durable_rules post_batch: median {statistics.median(rates):,.0f} events/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); per CPU second: median "
        f"{statistics.median(cpu_rates):,.0f} events/s; load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
