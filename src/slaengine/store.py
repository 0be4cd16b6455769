"""Durable state of the SLA service: events, ticket records and the outbox.

:class:`SqlStore` keeps everything in one SQL database through SQLAlchemy:
SQLite (a file, or memory for tests and embedding) or PostgreSQL. A store
is bound to one tenant; every query filters on it.

The outbox holds one row per delivery the service owes: an escalation
action for one plugin, or a breach notice. Rows are keyed by their
idempotency key, so scheduling is an upsert and a delivery is recorded
once. Workers claim due rows with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite has one writer at a time), deliver, and mark them sent.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.pool import StaticPool

from slaengine.database import connect, events, outbox, tickets, upgrade
from slaengine.errors import EventError
from slaengine.liveness import liveness_for
from slaengine.ticket import TicketEvent

log = logging.getLogger(__name__)

PENDING, SENT, CANCELLED, DEAD = "pending", "sent", "cancelled", "dead"


@dataclass(frozen=True)
class OutboxItem:
    """One owed delivery."""

    key: str
    kind: str  # escalate | breach
    ticket_id: str
    fire_at: datetime
    payload: dict[str, Any]
    id: int | None = None
    attempts: int = 0
    state: str = PENDING


@dataclass(frozen=True)
class TicketRecord:
    """The stored view of one ticket: its decision and metric statuses."""

    ticket_id: str
    created_at: datetime
    ruleset: str
    decision: str  # JSON
    statuses: str  # JSON
    next_due_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlStore:
    """Events, tickets and outbox of one tenant in an SQL database."""

    def __init__(self, engine: SqlEngine, tenant: str = "default") -> None:
        self.engine = engine
        self.tenant = tenant
        self.postgres = engine.dialect.name == "postgresql"
        sqlite = engine.dialect.name == "sqlite"
        database = engine.url.database if sqlite else None
        # Writers of one SQLite file queue on a file lock beside it: a waiter
        # wakes the moment the lock is free, where SQLite's own busy handler
        # polls with sleeps of up to 100 ms.
        self.write_lock = (
            f"{database}-writer.lock" if database not in (None, "", ":memory:") else None
        )
        # An in-memory database is one connection shared by all threads.
        self.memory_lock = (
            _MEMORY_LOCKS.setdefault(engine, threading.Lock())
            if sqlite and self.write_lock is None
            else None
        )
        self.liveness = liveness_for(engine)

    @classmethod
    def open(cls, url: str, tenant: str = "default") -> SqlStore:
        """Connect to ``url`` and bring its schema up to date."""
        engine = connect(url)
        upgrade(engine)
        return cls(engine, tenant)

    @classmethod
    def in_memory(cls, tenant: str = "default") -> SqlStore:
        """A store in a private in-memory SQLite database."""
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        upgrade(engine)
        return cls(engine, tenant)

    def for_tenant(self, tenant: str) -> SqlStore:
        """The same database, seen as another tenant."""
        return SqlStore(self.engine, tenant)

    def transaction(self, ticket_ids: Iterable[str] = ()) -> StoreTransaction:
        """A write transaction: ``with store.transaction(ids) as tx: ...`` commits at the end.

        On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is taken
        before the first read, so what the transaction reads stays true
        until it commits. On PostgreSQL the tickets in ``ticket_ids`` are
        locked for the transaction (advisory locks), so two processes never
        interleave their reads and writes of one ticket.
        """
        return StoreTransaction(self, sorted(set(ticket_ids)))

    # -- events ------------------------------------------------------------

    def add_events(self, batch: Sequence[TicketEvent]) -> list[bool]:
        """Store events atomically; for each, whether it was new.

        An event id already stored with the same content is a retry (False);
        with different content it is an error and nothing is stored.
        """
        fresh: list[bool] = []
        with self.transaction(e.ticket_id for e in batch) as tx:
            stored = tx.stored_events([e.event_id for e in batch])
            rows = []
            for event in batch:
                earlier = stored.get(event.event_id)
                if earlier is not None:
                    if earlier != event:
                        raise EventError(
                            "this event id is already stored with different content",
                            event.event_id,
                        )
                    fresh.append(False)
                    continue
                stored[event.event_id] = event
                fresh.append(True)
                rows.append(event)
            tx.add_events(rows)
        return fresh

    def events(self, ticket_id: str) -> list[TicketEvent]:
        """Every stored event of a ticket."""
        with self.engine.connect() as conn:
            return _events_of(conn, self.tenant, [ticket_id]).get(ticket_id, [])

    # -- tickets -----------------------------------------------------------

    def save_ticket(self, record: TicketRecord, schedule: Iterable[OutboxItem]) -> None:
        """Store a ticket's view and bring its pending outbox rows in line, atomically.

        Rows in ``schedule`` are created, or moved (new fire time) while
        still pending or cancelled; pending rows of the ticket that are no
        longer scheduled are cancelled; sent and dead rows never change.
        """
        with self.transaction([record.ticket_id]) as tx:
            tx.save_tickets([record])
            tx.schedule(record.ticket_id, schedule)

    def ticket(self, ticket_id: str) -> TicketRecord | None:
        """The stored view of a ticket, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tickets).where(
                    tickets.c.tenant_id == self.tenant, tickets.c.ticket_id == ticket_id
                )
            ).first()
        return None if row is None else _record(row)

    def breaching_before(self, instant: datetime, limit: int = 1000) -> list[TicketRecord]:
        """Tickets with an open metric due before ``instant``, soonest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tickets)
                .where(
                    tickets.c.tenant_id == self.tenant,
                    tickets.c.next_due_at.is_not(None),
                    tickets.c.next_due_at < instant.astimezone(UTC),
                )
                .order_by(tickets.c.next_due_at)
                .limit(limit)
            )
            return [_record(row) for row in rows]

    # -- outbox ------------------------------------------------------------

    def start_worker(self, worker: str) -> int:
        """Mark ``worker`` alive while this process runs: take its liveness lock.

        Every claim does this first; a worker process calls it at start to
        fail at once when a live worker has the name (:class:`WorkerNameInUse`).
        The first time, the pending rows an earlier run of ``worker`` still
        holds (in any tenant: a worker serves them all under one name) are
        freed; returns how many. See :mod:`slaengine.liveness`.
        """
        freed: list[int] = []

        def take_back() -> None:
            with self.engine.begin() as conn:
                freed.append(_free_claims(conn, worker))

        self.liveness.hold(worker, take_back)
        return sum(freed)

    def stop_worker(self, worker: str) -> None:
        """Let go of ``worker``'s liveness lock: other workers now see it dead."""
        self.liveness.release(worker)

    def claim(
        self, now: datetime, worker: str, limit: int = 100, lease: timedelta = timedelta(minutes=1)
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due pending rows of this tenant for ``worker``.

        A claim is a lease, and ``worker`` holds a liveness lock
        (:meth:`start_worker`). Due rows whose holder has died (its lock can
        be taken) are freed and claimed at once; a holder that is alive but
        stuck keeps its rows until the lease runs out. ``now`` says which
        rows are due; leases run on the wall clock (or ``now`` if later, as
        tests drive time), so a long round that passes a stale ``now`` never
        hands out a lease that has already run out.
        """
        self.start_worker(worker)
        now = now.astimezone(UTC)
        clock = max(now, datetime.now(UTC))
        self._free_claims_of_dead(now, clock, worker)
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < clock)
        query = (
            sa.select(outbox.c.id)
            .where(
                outbox.c.tenant_id == self.tenant,
                outbox.c.state == PENDING,
                outbox.c.fire_at <= now,
                free,
            )
            .order_by(outbox.c.fire_at)
            .limit(limit)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            ids = [row.id for row in conn.execute(query)]
            if not ids:
                return []
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(ids), outbox.c.state == PENDING, free)
                .values(claimed_by=worker, claimed_until=clock + lease)
            )
            rows = conn.execute(
                sa.select(outbox).where(outbox.c.id.in_(ids), outbox.c.claimed_by == worker)
            )
            return [
                OutboxItem(
                    id=row.id,
                    key=row.key,
                    kind=row.kind,
                    ticket_id=row.ticket_id,
                    fire_at=_utc(row.fire_at),
                    payload=json.loads(row.payload),
                    attempts=row.attempts,
                    state=row.state,
                )
                for row in rows
            ]

    def _free_claims_of_dead(self, now: datetime, clock: datetime, worker: str) -> None:
        """Free the due rows other workers hold under a lease, where the holder is dead."""
        holders = (
            sa.select(outbox.c.claimed_by)
            .where(
                outbox.c.tenant_id == self.tenant,
                outbox.c.state == PENDING,
                outbox.c.fire_at <= now,
                outbox.c.claimed_until >= clock,
                outbox.c.claimed_by != worker,
            )
            .distinct()
        )
        with self.engine.connect() as conn:
            names = list(conn.execute(holders).scalars())
        for name in names:
            with self.liveness.probe(name, self.engine) as conn:
                if conn is not None:
                    freed = _free_claims(conn, name)
                    log.warning("worker %s is dead: freed the %d deliveries it held", name, freed)

    def finish(
        self,
        item: OutboxItem,
        worker: str,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record a claimed row's outcome: sent, retried later, or dead."""
        values: dict[str, Any] = {
            "claimed_by": None,
            "claimed_until": None,
            "attempts": item.attempts + 1,
        }
        if error is None:
            values.update(state=SENT, sent_at=datetime.now(UTC), last_error=None)
        elif retry_at is not None:
            values.update(last_error=error, fire_at=retry_at.astimezone(UTC))
        else:
            values.update(state=DEAD, last_error=error)
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == item.id, outbox.c.claimed_by == worker)
                .values(**values)
            )

    def outbox_rows(self, ticket_id: str | None = None) -> list[dict[str, Any]]:
        """Outbox rows of this tenant (for reports and tests)."""
        query = sa.select(outbox).where(outbox.c.tenant_id == self.tenant)
        if ticket_id is not None:
            query = query.where(outbox.c.ticket_id == ticket_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(outbox.c.id))]


def _free_claims(conn: Any, worker: str) -> int:
    """Free the pending rows ``worker`` holds, in every tenant; how many.

    Only for a worker known dead: a row it sent but did not record is sent
    again, with the same idempotency key.
    """
    result = conn.execute(
        outbox.update()
        .where(outbox.c.claimed_by == worker, outbox.c.state == PENDING)
        .values(claimed_by=None, claimed_until=None)
    )
    return int(result.rowcount)


def _record(row: Any) -> TicketRecord:
    return TicketRecord(
        ticket_id=row.ticket_id,
        created_at=_utc(row.created_at),
        ruleset=row.ruleset,
        decision=row.decision,
        statuses=row.statuses,
        next_due_at=_utc(row.next_due_at),
    )


def _events_of(conn: Any, tenant: str, ticket_ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
    found: dict[str, list[TicketEvent]] = {}
    if ticket_ids:
        query = _statements(conn.engine).events_of
        for ticket_id, body in conn.execute(query, {"tenant": tenant, "ids": list(ticket_ids)}):
            found.setdefault(ticket_id, []).append(TicketEvent.model_validate_json(body))
    return found


def _upsert(dialect: str, table: sa.Table, key: list[str], columns: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE, on SQLite or PostgreSQL.

    ``columns`` maps each column to update to None (take the inserted value)
    or a fixed value.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    return statement, {
        name: statement.excluded[name] if value is None else value
        for name, value in columns.items()
    }


class _Statements:
    """The write path's statements, built once per dialect.

    Building an SQLAlchemy statement and its cache key costs more than
    running it on SQLite; a statement object reused keeps its cache key.
    """

    def __init__(self, dialect: str) -> None:
        tenant = sa.bindparam("tenant")
        ids = sa.bindparam("ids", expanding=True)
        self.event_counts = (
            sa.select(events.c.ticket_id, sa.func.count())
            .where(events.c.tenant_id == tenant, events.c.ticket_id.in_(ids))
            .group_by(events.c.ticket_id)
        )
        self.stored_events = sa.select(events.c.event_id, events.c.body).where(
            events.c.tenant_id == tenant, events.c.event_id.in_(ids)
        )
        self.events_of = sa.select(events.c.ticket_id, events.c.body).where(
            events.c.tenant_id == tenant, events.c.ticket_id.in_(ids)
        )
        self.decisions = sa.select(tickets.c.ticket_id, tickets.c.decision).where(
            tickets.c.tenant_id == tenant, tickets.c.ticket_id.in_(ids)
        )
        self.add_events = events.insert()
        insert, values = _upsert(
            dialect,
            tickets,
            ["tenant_id", "ticket_id"],
            dict.fromkeys(
                ("created_at", "ruleset", "decision", "statuses", "next_due_at", "updated_at")
            ),
        )
        self.save_tickets = insert.on_conflict_do_update(
            index_elements=[tickets.c.tenant_id, tickets.c.ticket_id], set_=values
        )
        self.pending = sa.select(outbox.c.ticket_id, outbox.c.key, outbox.c.fire_at).where(
            outbox.c.tenant_id == tenant, outbox.c.ticket_id.in_(ids), outbox.c.state == PENDING
        )
        self.cancel = (
            outbox.update()
            .where(outbox.c.tenant_id == tenant, outbox.c.key.in_(ids), outbox.c.state == PENDING)
            .values(state=CANCELLED)
        )
        insert, values = _upsert(
            dialect,
            outbox,
            ["tenant_id", "key"],
            {"state": PENDING, "fire_at": None, "payload": None},
        )
        self.schedule = insert.on_conflict_do_update(
            index_elements=[outbox.c.tenant_id, outbox.c.key],
            set_=values,
            # (an IN list would not bind in an executemany)
            where=sa.or_(outbox.c.state == PENDING, outbox.c.state == CANCELLED),
        )


_STATEMENTS: dict[str, _Statements] = {}


def _statements(engine: SqlEngine) -> _Statements:
    found = _STATEMENTS.get(engine.dialect.name)
    if found is None:
        found = _STATEMENTS[engine.dialect.name] = _Statements(engine.dialect.name)
    return found


def _payload_json(payload: Mapping[str, Any], memo: dict[int, str]) -> str:
    """A payload as JSON; a nested value shared by several payloads is serialized once.

    (An escalation's context and action are shared by its rows for each
    plugin.) ``memo`` maps id() of values alive for the whole call to text.
    """
    parts = []
    for key, value in payload.items():
        if isinstance(value, dict | list):
            text = memo.get(id(value))
            if text is None:
                text = memo[id(value)] = json.dumps(value, default=str)
        else:
            text = json.dumps(value, default=str)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


_MEMORY_LOCKS: weakref.WeakKeyDictionary[SqlEngine, threading.Lock] = weakref.WeakKeyDictionary()


def _lock_key(tenant: str, ticket_id: str) -> int:
    """A signed 64-bit advisory lock key for one ticket of one tenant."""
    digest = hashlib.blake2b(f"{tenant}\0{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class StoreTransaction:
    """One write transaction of a store: several tickets' events, views and outbox rows.

    Each method is one statement (or one executemany) whatever the number
    of tickets, so a batch of events costs a handful of round trips and a
    single commit.
    """

    def __init__(self, store: SqlStore, ticket_ids: list[str]) -> None:
        self.store = store
        self.tenant = store.tenant
        self.ticket_ids = ticket_ids
        self._sql = _statements(store.engine)
        self._conn: Any = None
        self._transaction: Any = None
        self._lock: int | None = None

    def __enter__(self) -> StoreTransaction:
        if self.store.write_lock is not None:
            self._lock = os.open(self.store.write_lock, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX)  # released when the descriptor is closed
        elif self.store.memory_lock is not None:
            self.store.memory_lock.acquire()
        self._conn = self.store.engine.connect()
        try:
            self._transaction = self._conn.begin()
            if self.store.postgres:
                if self.ticket_ids:
                    # Sorted keys: two transactions lock shared tickets in one order.
                    keys = sorted(_lock_key(self.tenant, t) for t in self.ticket_ids)
                    self._conn.execute(_PG_LOCK, {"keys": keys})
            else:
                self._conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._conn.close()
            self._unlock()
            raise
        return self

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        elif self.store.memory_lock is not None:
            self.store.memory_lock.release()

    def __exit__(self, kind: Any, _value: Any, _tb: Any) -> None:
        try:
            if kind is None:
                self._transaction.commit()
            else:
                self._transaction.rollback()
        finally:
            self._conn.close()
            self._unlock()

    # -- reads -------------------------------------------------------------

    def event_counts(self, ticket_ids: Sequence[str]) -> dict[str, int]:
        """How many events each ticket has stored (tickets with none are left out).

        Events are append-only, so the count is a version of the ticket.
        """
        if not ticket_ids:
            return {}
        rows = self._conn.execute(
            self._sql.event_counts, {"tenant": self.tenant, "ids": list(ticket_ids)}
        )
        return {ticket_id: count for ticket_id, count in rows}

    def stored_events(self, event_ids: Sequence[str]) -> dict[str, TicketEvent]:
        """The stored events among ``event_ids``, by id."""
        if not event_ids:
            return {}
        rows = self._conn.execute(
            self._sql.stored_events, {"tenant": self.tenant, "ids": list(set(event_ids))}
        )
        return {event_id: TicketEvent.model_validate_json(body) for event_id, body in rows}

    def events(self, ticket_ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        """Every stored event of each ticket."""
        return _events_of(self._conn, self.tenant, ticket_ids)

    def decisions(self, ticket_ids: Sequence[str]) -> dict[str, str]:
        """The stored decision (JSON) of each ticket that has a view."""
        if not ticket_ids:
            return {}
        rows = self._conn.execute(
            self._sql.decisions, {"tenant": self.tenant, "ids": list(ticket_ids)}
        )
        return {ticket_id: decision for ticket_id, decision in rows}

    # -- writes ------------------------------------------------------------

    def add_events(self, batch: Sequence[TicketEvent]) -> None:
        """Insert new events (the caller has checked they are not stored yet)."""
        if not batch:
            return
        now = datetime.now(UTC)
        self._conn.execute(
            self._sql.add_events,
            [
                {
                    "tenant_id": self.tenant,
                    "event_id": event.event_id,
                    "ticket_id": event.ticket_id,
                    "at": event.at.astimezone(UTC),
                    "type": event.type,
                    "body": event.model_dump_json(),
                    "received_at": now,
                }
                for event in batch
            ],
        )

    def save_tickets(self, records: Sequence[TicketRecord]) -> None:
        """Create or replace the stored views of tickets."""
        if not records:
            return
        now = datetime.now(UTC)
        self._conn.execute(
            self._sql.save_tickets,
            [
                {
                    "tenant_id": self.tenant,
                    "ticket_id": r.ticket_id,
                    "created_at": r.created_at.astimezone(UTC),
                    "ruleset": r.ruleset,
                    "decision": r.decision,
                    "statuses": r.statuses,
                    "next_due_at": _utc(r.next_due_at),
                    "updated_at": now,
                }
                for r in records
            ],
        )

    def schedule(
        self,
        ticket_id: str,
        items: Iterable[OutboxItem],
        known: Mapping[str, datetime] | None = None,
    ) -> dict[str, datetime]:
        """Bring a ticket's outbox rows in line with ``items``; the new ``known`` schedule.

        Rows of ``items`` are created, or moved (new fire time) while still
        pending or cancelled; pending rows no longer scheduled are cancelled;
        sent and dead rows never change. ``known`` is what an earlier call
        returned for this ticket, when nothing else has scheduled it since:
        then only the differences are written and nothing is read.
        """
        return self.schedule_many([(ticket_id, items, known)])[0]

    def schedule_many(
        self,
        plans: Sequence[tuple[str, Iterable[OutboxItem], Mapping[str, datetime] | None]],
    ) -> list[dict[str, datetime]]:
        """:meth:`schedule` for several tickets at once: at most three statements in all."""
        unknown = [ticket_id for ticket_id, _items, known in plans if known is None]
        pending: dict[str, dict[str, datetime]] = {ticket_id: {} for ticket_id in unknown}
        if unknown:
            rows = self._conn.execute(self._sql.pending, {"tenant": self.tenant, "ids": unknown})
            for ticket_id, key, fire_at in rows:
                pending[ticket_id][key] = _utc(fire_at)
        gone: list[str] = []
        changed: list[OutboxItem] = []
        schedules = []
        for ticket_id, items, known in plans:
            wanted = {item.key: item for item in items}
            was = pending[ticket_id] if known is None else known
            gone += [key for key in was if key not in wanted]
            now = {key: item.fire_at.astimezone(UTC) for key, item in wanted.items()}
            changed += [item for key, item in wanted.items() if was.get(key) != now[key]]
            schedules.append(now)
        if gone:
            self._conn.execute(self._sql.cancel, {"tenant": self.tenant, "ids": gone})
        if changed:
            memo: dict[int, str] = {}
            self._conn.execute(
                self._sql.schedule,
                [
                    {
                        "tenant_id": self.tenant,
                        "key": item.key,
                        "kind": item.kind,
                        "ticket_id": item.ticket_id,
                        "fire_at": item.fire_at.astimezone(UTC),
                        "payload": _payload_json(item.payload, memo),
                        "state": PENDING,
                        "attempts": 0,
                    }
                    for item in changed
                ],
            )
        return schedules


# One statement for all of a transaction's tickets; unnest yields the keys in
# array order, so locks are taken in sorted order.
_PG_LOCK = sa.text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
)
