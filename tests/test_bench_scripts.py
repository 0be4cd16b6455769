"""The in-process benchmarks work as their figures claim (small sizes, no figures)."""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from slaengine.database import events, sqlite_url
from slaengine.store import SqlStore
from tests.conftest import load_bench


def stored_events(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    finally:
        engine.dispose()


def test_outbox_scale_times_a_read_through_the_ticket_index(tmp_path):
    bench = load_bench("bench_outbox_scale")
    store = SqlStore.open(sqlite_url(tmp_path))
    bench.fill(tmp_path / "slaengine.db", 500)
    times, plan = bench.read_times(store, reads=3)
    assert len(times) == 3 and min(times) > 0
    assert "ix_outbox_ticket" in plan
    # Rolled back: every row is still pending.
    assert {r["state"] for r in store.outbox_rows()} == {"pending"}


def test_ingest_with_hopping_rounds_stores_every_event(tmp_path):
    bench = load_bench("bench_ingest_cpu")
    bodies = bench.requests(60)
    url = sqlite_url(tmp_path)
    cpu, rounds = bench.run(bodies, 4, url, hop=True)
    assert cpu > 0 and len(rounds) == 15
    assert stored_events(url) == len({body for _, body in bodies})  # retries stored once


def test_writer_processes_together_store_every_event(tmp_path):
    bench = load_bench("bench_ingest_cpu")
    args = argparse.Namespace(requests=40, processes=2, locked=False, rate=0)
    url = sqlite_url(tmp_path)
    rate, cpu, rounds = bench.together(args, 4, url)
    assert rate > 0 and cpu > 0 and len(rounds) == 20
    per_writer = [len(set(bench.requests(40, client=i))) for i in range(2)]
    assert stored_events(url) == sum(per_writer)
