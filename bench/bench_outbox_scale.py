"""Reading a few tickets' outbox rows as the pending rows of the database grow.

    python bench/bench_outbox_scale.py [--pending 10000,100000,500000] [--reads 50]

The service reads a ticket's outbox rows back whenever it does not know
them: a ticket's first event after a start, or one whose last event another
process took (``serve --workers N``). Each run fills a fresh SQLite file
with N pending rows (five per ticket), then times the store bringing two
tickets' unknown schedules in line (``StoreTransaction.schedule_many``: the
read of their rows, and the cancels of rows no longer owed, in a transaction
rolled back afterwards) and prints the median over --reads, with SQLite's
query plan for the read. A read that walks every pending row grows
with N; one through the ticket index does not.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from slaengine.database import sqlite_url
from slaengine.store import SqlStore

INSERT = (
    "INSERT INTO outbox (tenant_id, key, kind, ticket_id, fire_at, payload, state, attempts) "
    "VALUES ('default', ?, 'escalate', ?, '2026-12-01 00:00:00.000000', '{}', 'pending', 0)"
)


def fill(path: Path, pending: int) -> None:
    with sqlite3.connect(path) as db:
        db.executemany(INSERT, ((f"k{i}", f"T{i // 5}") for i in range(pending)))


def read_times(store: SqlStore, reads: int) -> tuple[list[float], str]:
    """Seconds per read of two tickets' rows, and the plan of the read."""
    times, plan = [], ""
    for n in range(reads):
        tickets = [f"T{n * 7}", f"T{n * 11 + 1}"]
        statements: list[str] = []
        tx = store.transaction(tickets).__enter__()
        try:
            connection = tx._conn.driver_connection
            connection.set_trace_callback(statements.append)
            started = time.perf_counter()
            tx.schedule_many([(t, [], None) for t in tickets])
            times.append(time.perf_counter() - started)
            connection.set_trace_callback(None)
            if not plan:
                select = next(s for s in statements if s.lstrip().upper().startswith("SELECT"))
                plan = "; ".join(
                    row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {select}")
                )
        finally:
            tx.__exit__(RuntimeError, None, None)  # roll back: the rows stay pending
    return times, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", default="10000,100000,500000", help="pending rows per run")
    parser.add_argument("--reads", type=int, default=50, help="reads timed per run")
    args = parser.parse_args()
    for pending in (int(n) for n in args.pending.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as data:
            store = SqlStore.open(sqlite_url(data))
            fill(Path(data) / "slaengine.db", pending)
            times, plan = read_times(store, args.reads)
            store.engine.dispose()
        print(
            f"{pending:>9,} pending rows: median {statistics.median(times) * 1000:.3f} ms "
            f"to read and cancel two tickets' rows (max {max(times) * 1000:.3f}); plan: {plan}",
            flush=True,
        )


if __name__ == "__main__":
    main()
