"""The SQL store, the same assertions on SQLite and on a real PostgreSQL server.

Every test taking ``database_url`` runs twice (``[sqlite]``, ``[postgresql]``);
see tests/postgres.py for the throwaway server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from slaengine.database import ANALYZE_AFTER_EVENTS, FirstStatistics, connect
from slaengine.errors import EventError
from slaengine.hookspecs import hookimpl
from slaengine.plugins import PluginHost
from slaengine.service import SlaService
from slaengine.store import (
    CANCELLED,
    DEAD,
    PENDING,
    SENT,
    OutboxItem,
    Outcome,
    SqlStore,
    TicketRecord,
    _statements,
)
from slaengine.ticket import TicketEvent
from tests.postgres import PostgresCluster

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BEIJING = datetime.fromisoformat("2026-11-23T17:00:00+08:00")  # == T0


def event(event_id: str, ticket: str = "INC-1", minutes: int = 0, **fields) -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket,
        event_id=event_id,
        type="created" if minutes == 0 else "updated",
        at=T0 + timedelta(minutes=minutes),
        fields=fields,
    )


def record(ticket: str = "INC-1", due: datetime | None = None) -> TicketRecord:
    return TicketRecord(
        ticket_id=ticket,
        created_at=BEIJING,
        ruleset="standard-support@2.0.0+abc",
        decision='{"priority": "P2"}',
        statuses="{}",
        next_due_at=due,
    )


def item(key: str, minutes: int, ticket: str = "INC-1") -> OutboxItem:
    return OutboxItem(
        key=key,
        kind="escalate",
        ticket_id=ticket,
        fire_at=T0 + timedelta(minutes=minutes),
        payload={"n": key},
    )


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    store = SqlStore.open(database_url)
    yield store
    store.engine.dispose()


def states(store: SqlStore) -> dict[str, str]:
    return {row["key"]: row["state"] for row in store.outbox_rows()}


def test_the_schema_is_migrated_and_opening_again_changes_nothing(database_url):
    first = SqlStore.open(database_url)
    first.add_events([event("e1")])
    again = SqlStore.open(database_url)
    with again.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [v[0] for v in versions] == ["0003"]
    assert [e.event_id for e in again.events("INC-1")] == ["e1"]
    first.engine.dispose()
    again.engine.dispose()


def test_a_database_of_the_first_schema_is_upgraded_and_keeps_its_data(database_url):
    from alembic import command
    from alembic.config import Config

    import slaengine.database

    engine = connect(database_url)
    config = Config()
    migrations = Path(slaengine.database.__file__).parent / "migrations"
    config.set_main_option("script_location", str(migrations))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    old = SqlStore(connect(database_url))
    old.add_events([event("e1")])  # the write path is the same on the first schema
    old.engine.dispose()

    store = SqlStore.open(database_url)
    assert [e.event_id for e in store.events("INC-1")] == ["e1"]
    indexes = sa.inspect(store.engine).get_indexes("outbox")
    names = {i["name"] for i in indexes}
    assert {"ix_outbox_pending", "ix_outbox_ticket"} <= names and "ix_outbox_due" not in names
    store.engine.dispose()


def test_an_event_is_stored_once_and_a_retry_is_reported_as_old(store):
    assert store.add_events([event("e1"), event("e2", minutes=5)]) == [True, True]
    assert store.add_events([event("e2", minutes=5), event("e3", minutes=9)]) == [False, True]
    assert sorted(e.event_id for e in store.events("INC-1")) == ["e1", "e2", "e3"]


def test_a_reused_event_id_with_other_content_stores_nothing_of_its_batch(store):
    store.add_events([event("e1")])
    with pytest.raises(EventError, match="different content"):
        store.add_events([event("e9", minutes=3), event("e1", minutes=1)])
    assert [e.event_id for e in store.events("INC-1")] == ["e1"]


def test_instants_come_back_aware_and_equal_to_what_was_stored(store):
    store.add_events([event("e1")])
    store.save_ticket(record(due=BEIJING + timedelta(hours=1)), [item("k", 60)])
    stored = store.ticket("INC-1")
    assert stored.created_at == BEIJING and stored.created_at.tzinfo is not None
    assert stored.next_due_at == T0 + timedelta(hours=1)
    assert store.events("INC-1")[0].at == T0
    (claimed,) = store.claim(T0 + timedelta(hours=1), "w1")
    assert claimed.fire_at == T0 + timedelta(hours=1) and claimed.fire_at.tzinfo is not None


def test_a_ticket_record_is_created_then_replaced(store):
    assert store.ticket("INC-1") is None
    store.save_ticket(record(due=T0), [])
    store.save_ticket(replace(record(), decision='{"priority": "P1"}', next_due_at=None), [])
    stored = store.ticket("INC-1")
    assert stored.decision == '{"priority": "P1"}' and stored.next_due_at is None


def test_scheduling_creates_moves_and_cancels_pending_rows_but_never_touches_sent_ones(store):
    store.save_ticket(record(), [item("a", 10), item("b", 20), item("c", 30)])
    (a,) = store.claim(T0 + timedelta(minutes=10), "w1")
    store.finish(a, "w1")
    # Reschedule: a (sent) asked again at another time, b moved, c no longer wanted.
    store.save_ticket(record(), [item("a", 50), item("b", 25)])
    rows = {row["key"]: row for row in store.outbox_rows("INC-1")}
    assert {k: r["state"] for k, r in rows.items()} == {"a": SENT, "b": PENDING, "c": CANCELLED}
    assert rows["a"]["fire_at"].replace(tzinfo=UTC) == T0 + timedelta(minutes=10)
    assert rows["b"]["fire_at"].replace(tzinfo=UTC) == T0 + timedelta(minutes=25)
    # A cancelled row comes back when it is scheduled again.
    store.save_ticket(record(), [item("b", 25), item("c", 40)])
    assert states(store) == {"a": SENT, "b": PENDING, "c": PENDING}


def test_the_work_queue_lists_due_tickets_soonest_first_within_the_tenant(store):
    store.save_ticket(record("late", due=T0 + timedelta(hours=3)), [])
    store.save_ticket(record("soon", due=T0 + timedelta(hours=1)), [])
    store.save_ticket(record("done", due=None), [])
    store.for_tenant("other").save_ticket(record("theirs", due=T0), [])
    queue = store.breaching_before(T0 + timedelta(hours=4))
    assert [r.ticket_id for r in queue] == ["soon", "late"]
    assert [r.ticket_id for r in store.breaching_before(T0 + timedelta(hours=2))] == ["soon"]


def test_claim_takes_only_due_pending_rows_and_leases_them(store):
    store.save_ticket(record(), [item("due", 0), item("later", 60)])
    assert [i.key for i in store.claim(T0, "w1")] == ["due"]
    assert store.claim(T0, "w2") == []  # leased to w1
    row = store.outbox_rows()[0]
    assert row["claimed_by"] == "w1"


def test_a_lapsed_lease_passes_the_row_on_and_the_first_worker_cannot_record_it(store, caplog):
    store.save_ticket(record(), [item("k", 0)])
    (first,) = store.claim(T0, "w1", lease=timedelta(milliseconds=300))
    assert store.claim(T0, "w2") == []  # leased (on the wall clock, whatever `now` says)
    time.sleep(0.4)
    (second,) = store.claim(T0, "w2")
    with caplog.at_level(logging.WARNING, logger="slaengine.store"):
        store.finish(first, "w1")  # w1 was presumed dead: its word no longer counts
    assert "taken from worker w1 before its outcome was recorded" in caplog.text
    assert states(store) == {"k": PENDING}
    store.finish(second, "w2")
    row = store.outbox_rows()[0]
    assert (row["state"], row["attempts"], row["claimed_by"]) == (SENT, 1, None)


def test_a_worker_restarted_under_its_name_takes_back_what_it_held(store):
    store.save_ticket(record(), [item("k", 0), item("j", 0)])
    held = store.claim(T0, "w1")
    assert len(held) == 2
    store.finish(held[0], "w1")  # one recorded before the crash, one not
    store.stop_worker("w1")  # its run ends
    assert store.start_worker("w1") == 1
    (again,) = store.claim(T0, "w1")
    assert again.key == held[1].key
    assert store.start_worker("w1") == 0  # already live: nothing taken back


def test_the_rows_of_a_worker_that_stopped_are_claimed_by_another_at_once(store):
    store.save_ticket(record(), [item("k", 0), item("j", 0)])
    held = store.claim(T0, "w1")  # a one-minute lease
    assert store.claim(T0, "w2") == []  # w1 is alive
    store.stop_worker("w1")
    assert sorted(i.key for i in store.claim(T0, "w2")) == sorted(i.key for i in held)
    store.finish(held[0], "w1")  # w1's word no longer counts
    assert {row["claimed_by"] for row in store.outbox_rows()} == {"w2"}


def test_a_failed_row_is_retried_later_then_dead_lettered(store):
    store.save_ticket(record(), [item("k", 0)])
    (claimed,) = store.claim(T0, "w1")
    store.finish(claimed, "w1", error="HTTP 503", retry_at=T0 + timedelta(minutes=5))
    assert store.claim(T0 + timedelta(minutes=4), "w1") == []
    (again,) = store.claim(T0 + timedelta(minutes=5), "w1")
    assert again.attempts == 1
    store.finish(again, "w1", error="HTTP 400")
    row = store.outbox_rows()[0]
    assert (row["state"], row["last_error"], row["attempts"]) == (DEAD, "HTTP 400", 2)
    assert store.claim(T0 + timedelta(days=1), "w1") == []


def test_a_tenant_sees_and_claims_only_its_own_rows(store):
    other = store.for_tenant("other")
    store.add_events([event("e1")])
    other.add_events([event("e1", minutes=0, severity="urgent")])  # same ids, other tenant
    store.save_ticket(record(), [item("k", 0)])
    other.save_ticket(record(), [item("k", 0)])
    assert store.events("INC-1")[0].fields == {}
    assert other.events("INC-1")[0].fields == {"severity": "urgent"}
    mine = store.claim(T0, "w1")
    theirs = other.claim(T0, "w1")
    assert len(mine) == len(theirs) == 1 and mine[0].id != theirs[0].id
    assert [r["tenant_id"] for r in store.outbox_rows()] == ["default"]


def test_concurrent_workers_claim_each_row_exactly_once(database_url):
    """Workers with their own connections race for the same due rows."""
    setup = SqlStore.open(database_url)
    keys = [f"k{n}" for n in range(300)]
    for start in range(0, len(keys), 20):
        ticket = f"INC-{start}"
        setup.save_ticket(record(ticket), [item(k, 0, ticket) for k in keys[start : start + 20]])
    delivered: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4, timeout=30)

    def work(name: str, store: SqlStore) -> None:
        barrier.wait()
        while True:
            claimed = store.claim(T0, name, limit=7)
            if not claimed:
                # Losing a race for the rows it picked leaves a claim empty-handed.
                if PENDING not in states(store).values():
                    break
                continue
            for claimed_item in claimed:
                time.sleep(0.001)  # the send
                with lock:
                    delivered.append((claimed_item.key, name))
                store.finish(claimed_item, name)
        store.engine.dispose()

    stores = [SqlStore.open(database_url) for _ in range(4)]
    threads = [threading.Thread(target=work, args=(f"w{n}", s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(key for key, _ in delivered)
    assert sorted(counts) == sorted(keys) and set(counts.values()) == {1}
    assert len({name for _, name in delivered}) > 1, "the workers did not actually overlap"
    assert set(states(setup).values()) == {SENT}
    setup.engine.dispose()


def test_a_postgres_claim_skips_rows_another_worker_has_locked(postgres: PostgresCluster):
    """SKIP LOCKED: a claim does not wait for, nor take, rows locked by a claim in progress."""
    name = "skip_locked"
    url = postgres.create_database(name)
    # Were the claim to wait for the lock, it fails after 2 s instead of hanging the test.
    postgres.admin(f"ALTER DATABASE {name} SET lock_timeout = '2s'")
    store = SqlStore.open(url)
    store.save_ticket(record(), [item("a", 0), item("b", 1), item("c", 2)])
    with store.engine.connect() as other:
        transaction = other.begin()
        other.execute(sa.text("SELECT id FROM outbox WHERE key = 'a' FOR UPDATE"))
        started = time.perf_counter()
        claimed = store.claim(T0 + timedelta(minutes=5), "w2")
        waited = time.perf_counter() - started
        transaction.rollback()
    assert [i.key for i in claimed] == ["b", "c"]
    assert waited < 2
    assert [i.key for i in store.claim(T0 + timedelta(minutes=5), "w3")] == ["a"]
    store.engine.dispose()
    postgres.drop_database(name)


class Receiver:
    """An escalation plugin that records every idempotency key it is handed."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lock = threading.Lock()

    @hookimpl
    def slaengine_escalate(self, context, action):
        time.sleep(0.002)
        with self.lock:
            self.keys.append(context.idempotency_key)
        return True


def test_several_workers_never_fire_the_same_threshold_twice(database_url, shipped):
    created = datetime.fromisoformat("2026-11-21T23:40:00+08:00")
    receiver = Receiver()
    hosts = []

    def service(name: str) -> SlaService:
        host = PluginHost(entry_points=False)
        host.register(receiver, "receiver")
        hosts.append(host)
        return SlaService(shipped, host, SqlStore.open(database_url), worker=name)

    intake = service("intake")
    intake.apply(
        TicketEvent(
            ticket_id=f"INC-{n}",
            event_id=f"INC-{n}:created",
            type="created",
            at=created,
            fields={"contract": "CN-NORTHWIND-LOGISTICS-2026", "severity": "urgent"},
        )
        for n in range(40)
    )
    workers = [service(f"w{n}") for n in range(3)]
    barrier = threading.Barrier(len(workers), timeout=30)
    sent: dict[str, list[str]] = {w.worker: [] for w in workers}

    def run(worker: SlaService) -> None:
        barrier.wait()
        # Like the scheduler's ticks: rounds until nothing due is left.
        while PENDING in states(worker.store).values():
            report = worker.deliver_due(created + timedelta(hours=9), limit=5)
            sent[worker.worker] += report.sent

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # urgent on standard 2.0.0: thresholds 50%, 75%, 100%, 100%+2h of the resolution clock
    assert len(receiver.keys) == 40 * 4
    assert len(set(receiver.keys)) == len(receiver.keys)
    all_sent = [key for keys in sent.values() for key in keys]
    assert len(all_sent) == len(set(all_sent)) == len(intake.store.outbox_rows())
    assert sum(1 for keys in sent.values() if keys) > 1, "the workers did not actually overlap"
    for svc in [intake, *workers]:
        svc.store.engine.dispose()
    for host in hosts:
        host.close()


def test_processes_opening_a_new_sqlite_file_at_once_take_turns_at_the_schema(tmp_path):
    # serve --workers N, or a worker started beside serve, on a database not created yet.
    url = f"sqlite:///{tmp_path / 'sla.db'}"
    start, errors = threading.Barrier(4), []

    def open_store() -> None:
        start.wait()
        try:
            SqlStore.open(url).engine.dispose()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SqlStore.open(url).events("T1") == []


def test_a_tickets_outbox_rows_are_read_through_its_ticket_index_not_every_pending_row(tmp_path):
    # With state = 'pending' in the query, SQLite walked the (state, fire_at)
    # index for two tickets or more: every pending row of the database, to find
    # a few tickets' (500,000 pending rows: 180 ms a read instead of 0.05 ms).
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    for ticket in ("T1", "T2"):
        store.save_ticket(
            record(ticket), [item(f"{ticket}a", 5, ticket), item(f"{ticket}b", 9, ticket)]
        )
    statements: list[str] = []
    with store.transaction(["T1", "T2"]) as tx:
        connection = tx._conn.driver_connection
        connection.set_trace_callback(statements.append)
        try:
            kept = [item("T2b", 9, "T2")]
            assert tx.schedule_many([("T1", [], None), ("T2", kept, None)]) == [
                {},
                {"T2b": kept[0].fire_at.astimezone(UTC)},
            ]
        finally:
            connection.set_trace_callback(None)
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert reads, statements
        for read in reads:
            plan = " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {read}"))
            assert "ix_outbox_ticket" in plan and "ix_outbox_pending" not in plan, plan
    states = {r["key"]: r["state"] for r in store.outbox_rows()}
    assert states == {"T1a": CANCELLED, "T1b": CANCELLED, "T2a": CANCELLED, "T2b": PENDING}


def _plan(store: SqlStore, sql: str, parameters: object) -> str:
    """The database's plan for a statement, as one line of text."""
    conn = store.engine.raw_connection()
    try:
        cursor = conn.cursor()
        if store.postgres:
            cursor.execute(f"EXPLAIN {sql}", parameters)
            return " ".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
        return " ".join(row[3] for row in cursor.fetchall())
    finally:
        conn.close()


def test_the_scheduler_reads_the_pending_index_and_a_cancel_only_its_tickets_rows(store):
    # A fresh, unanalyzed outbox: planners choose by their defaults. On
    # PostgreSQL the cancel of one row by its key used to walk the (state,
    # fire_at) index through every pending row (188 us a cancel, growing).
    for n in range(60):
        store.save_ticket(record(f"T{n}"), [item(f"T{n}-{m}", m, f"T{n}") for m in range(6)])
    run: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many):
        run.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.claim(T0 + timedelta(minutes=3), "w1", limit=5)
        store.next_due()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    reads = [(sql, p) for sql, p in run if sql.lstrip().upper().startswith("SELECT")]
    due = [(sql, p) for sql, p in reads if "fire_at" in sql.split("FROM")[1]]
    assert len(due) >= 2, run  # the claim's search and next_due
    for sql, parameters in due:
        assert "ix_outbox_pending" in _plan(store, sql, parameters), sql

    cancel = _statements(store.engine).cancel
    params = {"tenant": store.tenant, "cancel_ticket": "T7", "cancel_key": "T7-2"}
    plan = _plan(store, cancel._shape(params).sql, cancel._shape(params).arguments(params))
    assert "ix_outbox_pending" not in plan, plan
    by_key_or_ticket = ("uq_outbox_key", "sqlite_autoindex_outbox", "ix_outbox_ticket")
    assert any(index in plan for index in by_key_or_ticket), plan


def test_next_due_is_the_earliest_pending_row_no_worker_holds(store):
    assert store.next_due() is None
    store.save_ticket(record(), [item("a", 5), item("b", 10), item("c", 20)])
    assert store.next_due() == T0 + timedelta(minutes=5)
    (a,) = store.claim(T0 + timedelta(minutes=5), "w1")  # held: not due for anyone else
    assert store.next_due() == T0 + timedelta(minutes=10)
    store.finish(a, "w1")
    assert store.next_due() == T0 + timedelta(minutes=10)
    other = store.for_tenant("other")
    assert other.next_due() is None  # another tenant's rows are not its own


def test_finish_many_records_each_outcome_and_skips_rows_taken_from_the_worker(store, caplog):
    store.save_ticket(record(), [item("t", -1), item("ok", 0), item("retry", 0), item("dead", 0)])
    claimed = {i.key: i for i in store.claim(T0, "w1", limit=1, lease=timedelta(milliseconds=300))}
    claimed |= {i.key: i for i in store.claim(T0, "w1")}
    time.sleep(0.35)
    assert [i.key for i in store.claim(T0, "w2")] == ["t"]  # its lease ran out
    sent_at = T0 + timedelta(seconds=7)
    store.finish_many(
        [
            Outcome(claimed["ok"], sent_at),
            Outcome(claimed["retry"], sent_at, "HTTP 503", T0 + timedelta(minutes=5)),
            Outcome(claimed["dead"], sent_at, "HTTP 400"),
            Outcome(claimed["t"], sent_at),  # w2 holds it now: w1's word no longer counts
        ],
        "w1",
    )
    rows = {row["key"]: row for row in store.outbox_rows()}
    assert {k: r["state"] for k, r in rows.items()} == {
        "ok": SENT,
        "retry": PENDING,
        "dead": DEAD,
        "t": PENDING,
    }
    assert rows["ok"]["sent_at"].replace(tzinfo=UTC) == sent_at
    assert rows["retry"]["last_error"] == "HTTP 503" and rows["retry"]["claimed_by"] is None
    assert rows["t"]["claimed_by"] == "w2"
    assert "taken from worker w1" in caplog.text


_LOOKUPS = {  # statement: (its table, the column its ids are looked up by)
    "event_counts": ("events", "ticket_id"),
    "tx_events_of": ("events", "ticket_id"),
    "stored_events": ("events", "event_id"),
    "decisions": ("tickets", "ticket_id"),
    "outbox_of": ("outbox", "ticket_id"),
}


@pytest.mark.parametrize("name", sorted(_LOOKUPS))
def test_a_lookup_by_ids_searches_its_index_by_tenant_and_id_once_a_new_database_has_filled(
    store, name
):
    # Until a table is first analyzed, PostgreSQL guessed the tenant selective,
    # searched an index by tenant alone and filtered every row of the tenant by
    # id: 3-5 ms a read at 60,000 events in bench_http, growing with the table,
    # until autovacuum came by. The store now analyzes a new database itself.
    table, column = _LOOKUPS[name]
    if store.postgres:
        with store.engine.begin() as conn:  # leave it to the store, not autovacuum
            for t in ("events", "tickets", "outbox"):
                conn.execute(sa.text(f"ALTER TABLE {t} SET (autovacuum_enabled = false)"))
    tickets = [f"T{n}" for n in range(1000)]
    for chunk in range(0, 1000, 100):
        part = tickets[chunk : chunk + 100]
        store.add_events([event(f"{t}-{m}", t, m) for t in part for m in range(2)])
        with store.transaction(part) as tx:
            tx.save_tickets([record(t) for t in part])
            tx.schedule_many([(t, [item(f"{t}-{m}", m, t) for m in range(2)], {}) for t in part])
    ids = ["T3", "T99", "T500", "T777", "T998"] if column == "ticket_id" else ["T3-1", "T9-0"]
    driver = getattr(_statements(store.engine), name)
    params = {"tenant": store.tenant, "ids": ids}
    if store.postgres:
        statistics = FirstStatistics.for_engine(store.engine)
        assert statistics is not None and statistics.done.wait(10)
    plan = _plan(store, driver._shape(params).sql, driver._shape(params).arguments(params))
    if store.postgres:
        assert f"Seq Scan on {table}" not in plan, plan
        conditions = plan.split("Index Cond: ")[1:]
        assert conditions and all(column in c.split("  ")[0] for c in conditions), plan
    else:
        assert f"{column}=?" in plan, plan


def test_a_new_database_is_analyzed_once_it_has_taken_enough_events(postgres):
    store = SqlStore.open(postgres.create_database("young"))
    try:
        statistics = FirstStatistics.for_engine(store.engine)
        assert statistics is not None and not statistics.done.is_set()
        store.add_events([event(f"e{n}", f"T{n % 7}", n) for n in range(ANALYZE_AFTER_EVENTS - 1)])
        assert not statistics.done.wait(0.5)
        store.add_events([event("last", "T1", 5000)])
        assert statistics.done.wait(10)
        with store.engine.connect() as conn:
            analyzed = conn.execute(
                sa.text(
                    "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                    "ORDER BY relname"
                )
            ).scalars()
            assert list(analyzed) == ["events", "outbox", "tickets"]
        store.engine.dispose()
        # Opened again, an analyzed database is left to autovacuum.
        again = SqlStore.open(postgres.url("young"))
        assert FirstStatistics.for_engine(again.engine).done.is_set()
        again.engine.dispose()
    finally:
        store.engine.dispose()


def test_the_first_transaction_of_a_new_database_is_counted_once(postgres):
    store = SqlStore.open(postgres.create_database("young_counted"))
    try:
        half = ANALYZE_AFTER_EVENTS // 2
        store.add_events([event(f"a{n}", "T1", n) for n in range(half)])
        store.add_events([event(f"b{n}", "T2", n) for n in range(half - 1)])
        statistics = FirstStatistics.for_engine(store.engine)
        assert statistics is not None and not statistics.done.wait(0.5)  # 999 events
        store.add_events([event("c", "T3", 1)])
        assert statistics.done.wait(10)
    finally:
        store.engine.dispose()
