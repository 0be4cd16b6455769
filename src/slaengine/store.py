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

import hashlib
import json
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.pool import StaticPool

from slaengine.database import (
    PENDING_ROW,
    FirstStatistics,
    connect,
    events,
    outbox,
    tickets,
    upgrade,
    writer_lock,
    writer_lock_path,
)
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
class Outcome:
    """How the delivery of a claimed row went: sent (no error), or failed at ``at``.

    A failed row with ``retry_at`` is tried again then; without, it is dead.
    """

    item: OutboxItem
    at: datetime
    error: str | None = None
    retry_at: datetime | None = None


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
        if self.postgres and engine.dialect.driver != "psycopg":
            raise ValueError(
                f"PostgreSQL is used through the psycopg (3) driver, not "
                f"{engine.dialect.driver!r}: write the URL as postgresql://… or "
                "postgresql+psycopg://…"
            )
        sqlite = engine.dialect.name == "sqlite"
        # Writers of one SQLite file queue on a file lock beside it (writer_lock).
        self.write_lock = writer_lock_path(engine)
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

    def snapshot(self) -> StoreTransaction:
        """A read-only transaction that takes no write lock: ``with store.snapshot() as rx``.

        Its reads see one state of the database, as committed when the
        first of them ran; other writers go on meanwhile. Only the read
        methods of :class:`StoreTransaction` may be used on it.
        """
        return StoreTransaction(self, [], write=False)

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
        return self.events_of([ticket_id]).get(ticket_id, [])

    def events_of(self, ticket_ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        """Every stored event of each ticket, in one read (tickets without events left out)."""
        with self.engine.connect() as conn:
            return _events_of(conn, self.tenant, ticket_ids)

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
            with self._writing() as conn:
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
        free = _unheld(clock)
        query = (
            sa.select(outbox.c.id)
            .where(*self._due(now), free)
            .order_by(outbox.c.fire_at)
            .limit(limit)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        with self._writing() as conn:
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

    def next_due(self) -> datetime | None:
        """When the earliest pending row of this tenant that no worker holds comes due."""
        query = sa.select(sa.func.min(outbox.c.fire_at)).where(
            outbox.c.tenant_id == self.tenant,
            PENDING_ROW,
            _unheld(datetime.now(UTC)),
        )
        with self.engine.connect() as conn:
            first = conn.execute(query).scalar()
        return None if first is None else _utc(first)

    def _due(self, now: datetime) -> tuple[Any, ...]:
        """Conditions of this tenant's pending outbox rows due by ``now``."""
        return (outbox.c.tenant_id == self.tenant, PENDING_ROW, outbox.c.fire_at <= now)

    def _free_claims_of_dead(self, now: datetime, clock: datetime, worker: str) -> None:
        """Free the due rows other workers hold under a lease, where the holder is dead."""
        holders = (
            sa.select(outbox.c.claimed_by)
            .where(*self._due(now), outbox.c.claimed_until >= clock, outbox.c.claimed_by != worker)
            .distinct()
        )
        with self.engine.connect() as conn:
            names = list(conn.execute(holders).scalars())
        for name in names:
            with self.liveness.probe(name, self._writing) as conn:
                if conn is not None:
                    freed = _free_claims(conn, name, due_by=now)
                    log.warning("worker %s is dead: freed the %d deliveries it held", name, freed)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction of the scheduler: a claim, a delivery's outcome, a takeover.

        Workers record every delivery. On an SQLite file the transaction
        queues on the writer lock: a waiting writer wakes the moment the
        other commits, not after one of SQLite's busy sleeps. On PostgreSQL
        it commits without waiting for the WAL flush: a server crash may
        forget the last few hundred milliseconds of claims and outcomes, and
        those rows are then delivered again with their idempotency keys, as
        after a worker's crash; a worker's crash loses nothing.
        """
        with writer_lock(self.engine), self.engine.begin() as conn:
            if self.postgres:
                conn.execute(_ASYNC_COMMIT)
            yield conn

    def finish(
        self,
        item: OutboxItem,
        worker: str,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record a claimed row's outcome: sent, retried later, or dead."""
        self.finish_many([Outcome(item, datetime.now(UTC), error, retry_at)], worker)

    def finish_many(self, outcomes: Sequence[Outcome], worker: str) -> None:
        """Record the outcomes of claimed rows, in one transaction.

        A row that another worker has taken meanwhile (this one was judged
        dead: its liveness lock was lost) is left to that worker, with a
        warning: it may be sent again, with the same idempotency key.
        """
        if not outcomes:
            return
        ids = [outcome.item.id for outcome in outcomes]
        holders = sa.select(outbox.c.id, outbox.c.claimed_by).where(outbox.c.id.in_(ids))
        if self.postgres:
            holders = holders.with_for_update()
        by_statement: dict[Any, list[dict[str, Any]]] = {}
        with self._writing() as conn:
            held = {row.id for row in conn.execute(holders) if row.claimed_by == worker}
            for outcome in outcomes:
                item = outcome.item
                if item.id not in held:
                    log.warning(
                        "outbox row %s was taken from worker %s before its outcome was "
                        "recorded; it may be sent again (with the same idempotency key)",
                        item.id,
                        worker,
                    )
                    continue
                values: dict[str, Any] = {
                    "row": item.id,
                    "worker": worker,
                    "attempts": item.attempts + 1,
                }
                if outcome.error is None:
                    statement = _FINISH_SENT
                    values["sent_at"] = outcome.at.astimezone(UTC)
                elif outcome.retry_at is not None:
                    statement = _FINISH_RETRY
                    values.update(error=outcome.error, retry_at=outcome.retry_at.astimezone(UTC))
                else:
                    statement = _FINISH_DEAD
                    values["error"] = outcome.error
                by_statement.setdefault(statement, []).append(values)
            for statement, rows in by_statement.items():
                conn.execute(statement, rows)  # an executemany: one round trip per batch

    def outbox_rows(self, ticket_id: str | None = None) -> list[dict[str, Any]]:
        """Outbox rows of this tenant (for reports and tests)."""
        query = sa.select(outbox).where(outbox.c.tenant_id == self.tenant)
        if ticket_id is not None:
            query = query.where(outbox.c.ticket_id == ticket_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(outbox.c.id))]


def _unheld(clock: datetime) -> Any:
    """The condition of an outbox row that no worker's lease holds at ``clock``."""
    return sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < clock)


def _finish(**values: Any) -> Any:
    """An UPDATE of one claimed row that its claimant still holds, built once.

    A scheduler records every delivery; building the statement and its cache
    key each time cost more than running it.
    """
    return (
        outbox.update()
        .where(outbox.c.id == sa.bindparam("row"), outbox.c.claimed_by == sa.bindparam("worker"))
        .values(claimed_by=None, claimed_until=None, attempts=sa.bindparam("attempts"), **values)
    )


_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit = off")
_FINISH_SENT = _finish(state=SENT, sent_at=sa.bindparam("sent_at"), last_error=None)
_FINISH_RETRY = _finish(last_error=sa.bindparam("error"), fire_at=sa.bindparam("retry_at"))
_FINISH_DEAD = _finish(state=DEAD, last_error=sa.bindparam("error"))


def _free_claims(conn: Any, worker: str, due_by: datetime | None = None) -> int:
    """Free the pending rows ``worker`` holds (due by ``due_by``), in every tenant; how many.

    Only for a worker known dead: a row it sent but did not record is sent
    again, with the same idempotency key. ``due_by`` keeps the search to the
    due rows (an index range) when many rows are pending; the dead worker's
    later rows are freed when they come due.
    """
    where = [outbox.c.claimed_by == worker, PENDING_ROW]
    if due_by is not None:
        where.append(outbox.c.fire_at <= due_by)
    result = conn.execute(outbox.update().where(*where).values(claimed_by=None, claimed_until=None))
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


class _Driver:
    """A statement compiled once for one dialect and run on the DB-API cursor itself.

    SQLAlchemy's execution of even a cached statement (parameter processing,
    result wrapping, events) costs several times what SQLite takes to run
    it, and the write path runs several per round; so a transaction hands
    the compiled text and plain parameters straight to the driver.
    SQLAlchemy still writes the SQL (quoting, casts, paramstyle) and its
    types still turn values into what the driver stores (SQLite datetimes
    as text). One expanding parameter (``IN :ids``) is compiled once per
    list length.
    """

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str] | None = None):
        self.dialect = dialect
        self.compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.expanding = next((n for n, b in self.compiled.binds.items() if b.expanding), None)
        self._shapes: dict[int, _Shape] = {}

    def run(self, cursor: Any, params: Mapping[str, Any]) -> Any:
        """Execute once; the cursor, for its rows."""
        shape = self._shape(params)
        cursor.execute(shape.sql, shape.arguments(params))
        return cursor

    def run_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row of parameters (one executemany)."""
        shape = self._shape(rows[0])
        cursor.executemany(shape.sql, [shape.arguments(row) for row in rows])

    def _shape(self, params: Mapping[str, Any]) -> _Shape:
        size = len(params[self.expanding]) if self.expanding else 0
        shape = self._shapes.get(size)
        if shape is None:
            shape = self._shapes[size] = _Shape(self, params)
        return shape


class _Shape:
    """The SQL and argument layout of a :class:`_Driver` for one set of parameter names."""

    def __init__(self, driver: _Driver, params: Mapping[str, Any]) -> None:
        compiled, dialect, expanding = driver.compiled, driver.dialect, driver.expanding
        given = dict(params)
        if expanding:  # markers show which expanded name takes which list item
            given[expanding] = markers = [object() for _ in params[expanding]]
        state = compiled.construct_expanded_state(given)
        self.sql: str = state.statement
        self.expanding = expanding
        self.expanded = [
            next(name for name, value in state.parameters.items() if value is marker)
            for marker in (markers if expanding else [])
        ]
        # Values the statement carries itself, such as ``state = 'pending'``.
        self.fixed = {k: v for k, v in compiled.params.items() if k not in params}
        types = {name: bind.type for name, bind in compiled.binds.items()}
        for name in self.expanded:
            types[name] = compiled.binds[expanding].type
        self.processors: list[tuple[str, Any]] = []
        for name, kind in types.items():
            impl = kind.dialect_impl(dialect)
            process = impl.bind_processor(dialect)
            if process is not None:
                self.processors.append((name, _fast_sqlite_datetime(impl, process)))
        self.order: Sequence[str] | None = state.positiontup if compiled.positional else None

    def arguments(self, params: Mapping[str, Any]) -> Any:
        """The driver's arguments (a tuple or a mapping, as its paramstyle wants)."""
        values = {**self.fixed, **params}
        if self.expanding:
            values.update(zip(self.expanded, values.pop(self.expanding), strict=True))
        for name, process in self.processors:
            if name in values:
                values[name] = process(values[name])
        return values if self.order is None else tuple(values[name] for name in self.order)


#: SQLite's DATETIME text as SQLAlchemy writes it by default (``2026-01-05 09:30:00.000000``).
_SQLITE_DATETIME_FORMAT = SQLITE_DATETIME._storage_format


def _fast_sqlite_datetime(impl: Any, process: Any) -> Any:
    """``process``, with datetimes of SQLite's default DATETIME format written by ``isoformat``.

    SQLAlchemy's processor fills a %-format from a dict of seven fields:
    the write path binds several datetimes per event and that was a tenth
    of its time. ``isoformat(" ", "microseconds")`` writes the same text
    (the first 26 characters leave out an aware value's offset, which
    SQLAlchemy's format ignores too); anything else (a date, None, a custom
    storage format) keeps SQLAlchemy's processor.
    """
    if not isinstance(impl, SQLITE_DATETIME) or impl._storage_format != _SQLITE_DATETIME_FORMAT:
        return process

    def write(value: Any) -> Any:
        if type(value) is datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return process(value)

    return write


class _Statements:
    """The write path's statements, compiled once per dialect.

    ``events_of`` is also run through SQLAlchemy outside transactions (a
    statement object reused keeps its cache key); a transaction runs the
    :class:`_Driver` forms.
    """

    def __init__(self, dialect: Dialect) -> None:
        name = dialect.name
        tenant = sa.bindparam("tenant")
        ids = sa.bindparam("ids", expanding=True)
        self.events_of = sa.select(events.c.ticket_id, events.c.body).where(
            events.c.tenant_id == tenant, events.c.ticket_id.in_(ids)
        )
        self.tx_events_of = _Driver(self.events_of, dialect)
        self.event_counts = _Driver(
            sa.select(events.c.ticket_id, sa.func.count())
            .where(events.c.tenant_id == tenant, events.c.ticket_id.in_(ids))
            .group_by(events.c.ticket_id),
            dialect,
        )
        self.stored_events = _Driver(
            sa.select(events.c.event_id, events.c.body).where(
                events.c.tenant_id == tenant, events.c.event_id.in_(ids)
            ),
            dialect,
        )
        self.decisions = _Driver(
            sa.select(tickets.c.ticket_id, tickets.c.decision).where(
                tickets.c.tenant_id == tenant, tickets.c.ticket_id.in_(ids)
            ),
            dialect,
        )
        event_columns = ["tenant_id", "event_id", "ticket_id", "at", "type", "body", "received_at"]
        self.add_events = _Driver(events.insert(), dialect, event_columns)
        ticket_columns = ["created_at", "ruleset", "decision", "statuses", "next_due_at"]
        ticket_columns += ["updated_at"]
        insert, values = _upsert(
            name, tickets, ["tenant_id", "ticket_id"], dict.fromkeys(ticket_columns)
        )
        self.save_tickets = _Driver(
            insert.on_conflict_do_update(
                index_elements=[tickets.c.tenant_id, tickets.c.ticket_id], set_=values
            ),
            dialect,
            ["tenant_id", "ticket_id", *ticket_columns],
        )
        # Every row of the tickets, pending ones picked out by the caller: with
        # ``state = 'pending'`` in the query, SQLite's planner takes the
        # (state, fire_at) index and walks every pending row of the database
        # (100,000 open tickets: about half a million) to find a few tickets'.
        self.outbox_of = _Driver(
            sa.select(outbox.c.ticket_id, outbox.c.key, outbox.c.fire_at, outbox.c.state).where(
                outbox.c.tenant_id == tenant, outbox.c.ticket_id.in_(ids)
            ),
            dialect,
        )
        # One row per execution, run as an executemany, found by its key and
        # its ticket: whichever index a planner takes (on a table it has no
        # statistics of, PostgreSQL's generic plan picks among equals), the
        # unique key's or the ticket's, the search stays within one ticket.
        # The state test is ``IS NOT DISTINCT FROM`` (the same, for a column
        # that is never NULL): neither planner can infer from it the
        # condition of the index of every pending row, so that index is no
        # candidate (with ``state = 'pending'`` it was, and was taken).
        self.cancel = _Driver(
            outbox.update()
            .where(
                outbox.c.tenant_id == tenant,
                outbox.c.ticket_id == sa.bindparam("cancel_ticket"),
                outbox.c.key == sa.bindparam("cancel_key"),
                outbox.c.state.is_not_distinct_from(PENDING),
            )
            .values(state=CANCELLED),
            dialect,
        )
        insert, values = _upsert(
            name,
            outbox,
            ["tenant_id", "key"],
            {"state": PENDING, "fire_at": None, "payload": None},
        )
        self.schedule = _Driver(
            insert.on_conflict_do_update(
                index_elements=[outbox.c.tenant_id, outbox.c.key],
                set_=values,
                where=sa.or_(outbox.c.state == PENDING, outbox.c.state == CANCELLED),
            ),
            dialect,
            ["tenant_id", "key", "kind", "ticket_id", "fire_at", "payload", "state", "attempts"],
        )
        # One statement for all of a transaction's tickets; unnest yields the
        # keys in array order, so locks are taken in sorted order.
        self.lock_tickets = _Driver(
            sa.text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
            ),
            dialect,
        )


_STATEMENTS: dict[str, _Statements] = {}


def _statements(engine: SqlEngine) -> _Statements:
    found = _STATEMENTS.get(engine.dialect.name)
    if found is None:
        found = _STATEMENTS[engine.dialect.name] = _Statements(engine.dialect)
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
    single commit. Statements go straight to the DB-API connection
    (:class:`_Driver`); the pool still hands it out and takes it back.
    """

    def __init__(self, store: SqlStore, ticket_ids: list[str], write: bool = True) -> None:
        self.store = store
        self.tenant = store.tenant
        self.ticket_ids = ticket_ids
        self.write = write
        self._sql = _statements(store.engine)
        self._conn: Any = None
        self._cursor: Any = None
        self._pipeline: Any = None  # PostgreSQL only
        self._locks = ExitStack()  # the writer lock (SQLite file) or the memory lock
        self._events_added = 0

    def __enter__(self) -> StoreTransaction:
        if self.write and self.store.write_lock is not None:
            self._locks.enter_context(writer_lock(self.store.engine))
        elif self.store.memory_lock is not None:  # one connection shared by all threads
            self._locks.enter_context(self.store.memory_lock)
        try:
            self._conn = self.store.engine.raw_connection()
        except BaseException:
            self._locks.close()
            raise
        try:
            self._cursor = self._conn.cursor()
            self._begin()
        except BaseException:
            self._close()
            raise
        return self

    def _begin(self) -> None:
        if not self.write:  # a snapshot
            if self.store.postgres:
                self._cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            else:
                self._cursor.execute("BEGIN")  # deferred: a read snapshot, no lock
        elif self.store.postgres:
            # Pipeline mode: statements are sent without waiting for each
            # answer; a read waits for what is queued before it, and the
            # writes go with the commit. A round costs about three round
            # trips to the server instead of one per statement. Statements
            # still run in order: the count read after the lock sees every
            # transaction that held the lock before.
            self._pipeline = self._conn.driver_connection.pipeline()
            self._pipeline.__enter__()
            if self.ticket_ids:  # the driver has begun the transaction
                # Sorted keys: two transactions lock shared tickets in one order.
                keys = sorted(_lock_key(self.tenant, t) for t in self.ticket_ids)
                self._sql.lock_tickets.run(self._cursor, {"keys": keys})
        else:
            self._cursor.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, _value: Any, _tb: Any) -> None:
        try:
            if kind is None and self.write:
                self._conn.commit()  # (in a pipeline: raises what a queued write ran into)
            else:
                self._conn.rollback()
        except BaseException:
            self._close(failed=True)
            raise
        self._close()
        if kind is None and self._events_added:
            FirstStatistics.committed(self.store.engine, self._events_added)

    def _close(self, failed: bool = False) -> None:
        """Leave pipeline mode, give the connection back to the pool and the write lock up."""
        try:
            if self._pipeline is not None:
                try:
                    self._pipeline.__exit__(None, None, None)
                except Exception:
                    if not failed:  # else the error is already on its way up
                        raise
                finally:
                    if failed:
                        self._conn.rollback()
        finally:
            self._conn.close()  # back to the pool (rolled back there if still open)
            self._locks.close()

    def _rows(self, driver: _Driver, ids: Sequence[str]) -> list[Any]:
        return driver.run(self._cursor, {"tenant": self.tenant, "ids": list(ids)}).fetchall()

    # -- reads -------------------------------------------------------------

    def event_counts(self, ticket_ids: Sequence[str]) -> dict[str, int]:
        """How many events each ticket has stored (tickets with none are left out).

        Events are append-only, so the count is a version of the ticket.
        """
        if not ticket_ids:
            return {}
        return dict(self._rows(self._sql.event_counts, ticket_ids))

    def stored_events(self, event_ids: Sequence[str]) -> dict[str, TicketEvent]:
        """The stored events among ``event_ids``, by id."""
        if not event_ids:
            return {}
        rows = self._rows(self._sql.stored_events, list(set(event_ids)))
        return {event_id: TicketEvent.model_validate_json(body) for event_id, body in rows}

    def events(self, ticket_ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        """Every stored event of each ticket."""
        found: dict[str, list[TicketEvent]] = {}
        if ticket_ids:
            for ticket_id, body in self._rows(self._sql.tx_events_of, ticket_ids):
                found.setdefault(ticket_id, []).append(TicketEvent.model_validate_json(body))
        return found

    def decisions(self, ticket_ids: Sequence[str]) -> dict[str, str]:
        """The stored decision (JSON) of each ticket that has a view."""
        if not ticket_ids:
            return {}
        return dict(self._rows(self._sql.decisions, ticket_ids))

    # -- writes ------------------------------------------------------------

    def add_events(self, batch: Sequence[TicketEvent]) -> None:
        """Insert new events (the caller has checked they are not stored yet)."""
        if not batch:
            return
        self._events_added += len(batch)
        now = datetime.now(UTC)
        self._sql.add_events.run_many(
            self._cursor,
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
        self._sql.save_tickets.run_many(
            self._cursor,
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
            for ticket_id, key, fire_at, state in self._rows(self._sql.outbox_of, unknown):
                if state == PENDING:
                    pending[ticket_id][key] = _stored_instant(fire_at)
        gone: list[dict[str, str]] = []
        changed: list[OutboxItem] = []
        schedules = []
        for ticket_id, items, known in plans:
            wanted = {item.key: item for item in items}
            was = pending[ticket_id] if known is None else known
            gone += [
                {"tenant": self.tenant, "cancel_ticket": ticket_id, "cancel_key": key}
                for key in was
                if key not in wanted
            ]
            now = {key: item.fire_at.astimezone(UTC) for key, item in wanted.items()}
            changed += [item for key, item in wanted.items() if was.get(key) != now[key]]
            schedules.append(now)
        if gone:
            self._sql.cancel.run_many(self._cursor, gone)
        if changed:
            memo: dict[int, str] = {}
            self._sql.schedule.run_many(
                self._cursor,
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


def _stored_instant(value: Any) -> datetime:
    """A datetime column as the driver hands it back (SQLite: text), in UTC."""
    return _utc(datetime.fromisoformat(value) if isinstance(value, str) else value)  # type: ignore[return-value]
