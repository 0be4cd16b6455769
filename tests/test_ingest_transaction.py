"""A write transaction's statements, run on the DB-API cursor, agree with SQLAlchemy.

The transaction compiles its statements once per dialect and hands them to
the driver; what it writes must read back through SQLAlchemy (and the rest
of the store) as if SQLAlchemy had written it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from slaengine.store import OutboxItem, SqlStore, TicketRecord
from slaengine.ticket import TicketEvent

BEIJING = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=BEIJING)


def event(ticket: str, n: int) -> TicketEvent:
    return TicketEvent(ticket_id=ticket, event_id=f"{ticket}-{n}", type="updated", at=AT)


@pytest.fixture
def store(database_url):
    store = SqlStore.open(database_url, tenant="acme")
    yield store
    store.engine.dispose()


def test_lists_of_every_length_are_bound_item_by_item(store):
    tickets = [f"T{n}" for n in range(7)]
    with store.transaction(tickets) as tx:
        tx.add_events([event(t, i) for n, t in enumerate(tickets) for i in range(n)])
    for size in (1, 3, 7, 2):  # each length is compiled once and then reused
        with store.transaction(tickets[:size]) as tx:
            assert tx.event_counts(tickets[:size]) == {
                t: n for n, t in enumerate(tickets[:size]) if n
            }
    with store.transaction() as tx:
        assert [e.event_id for e in tx.events(["T2"])["T2"]] == ["T2-0", "T2-1"]
        assert set(tx.stored_events(["T3-2", "T3-9", "T6-5"])) == {"T3-2", "T6-5"}


def test_instants_and_texts_read_back_through_sqlalchemy(store):
    record = TicketRecord(
        ticket_id="T1",
        created_at=AT,
        ruleset="standard-support@2.0.0+abc",
        decision='{"priority": "P2"}',
        statuses="{}",
        next_due_at=AT + timedelta(hours=4),
    )
    with store.transaction(["T1"]) as tx:
        tx.add_events([event("T1", 0)])
        tx.save_tickets([record])
    assert store.ticket("T1") == TicketRecord(
        **{
            **record.__dict__,
            "created_at": AT.astimezone(UTC),
            "next_due_at": record.next_due_at.astimezone(UTC),
        }
    )
    assert store.events("T1") == [event("T1", 0)]
    assert store.breaching_before(AT + timedelta(hours=5)) == [store.ticket("T1")]
    assert store.breaching_before(AT + timedelta(hours=3)) == []


def test_a_schedule_is_written_moved_and_cancelled_and_read_back(store):
    def item(key: str, hours: int) -> OutboxItem:
        return OutboxItem(
            key=key,
            kind="breach",
            ticket_id="T1",
            fire_at=AT + timedelta(hours=hours),
            payload={"metric": "resolution"},
        )

    with store.transaction(["T1"]) as tx:
        known = tx.schedule("T1", [item("a", 1), item("b", 2), item("c", 3)])
    with store.transaction(["T1"]) as tx:  # nothing known: the pending rows are read back
        assert tx.schedule("T1", [item("a", 1), item("b", 5)]) == {
            "a": (AT + timedelta(hours=1)).astimezone(UTC),
            "b": (AT + timedelta(hours=5)).astimezone(UTC),
        }
    assert known["c"] == (AT + timedelta(hours=3)).astimezone(UTC)
    rows = {r["key"]: r for r in store.outbox_rows("T1")}
    assert {k: r["state"] for k, r in rows.items()} == {
        "a": "pending",
        "b": "pending",
        "c": "cancelled",
    }
    due = store.claim(AT + timedelta(hours=4), "w1")  # the claim query compares stored instants
    assert [i.key for i in due] == ["a"] and due[0].payload == {"metric": "resolution"}


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError, match="refused"), store.transaction(["T1"]) as tx:
        tx.add_events([event("T1", 0)])
        raise RuntimeError("refused")
    assert store.events("T1") == []
    with store.transaction(["T1"]) as tx:  # the connection went back to the pool usable
        tx.add_events([event("T1", 0)])
    assert store.events("T1") == [event("T1", 0)]


def test_a_write_the_database_refuses_fails_the_transaction_and_leaves_nothing(store):
    with store.transaction(["T1"]) as tx:
        tx.add_events([event("T1", 0)])
    # On PostgreSQL the writes are pipelined: the refusal surfaces at the commit.
    with pytest.raises(Exception, match="(?i)unique|duplicate"), store.transaction(["T1"]) as tx:
        tx.add_events([event("T1", 1)])
        tx.add_events([event("T1", 0)])  # the key is taken
    assert store.events("T1") == [event("T1", 0)]
    for _ in range(3):  # every pooled connection is usable again
        with store.transaction(["T1"]) as tx:
            assert tx.event_counts(["T1"]) == {"T1": 1}
