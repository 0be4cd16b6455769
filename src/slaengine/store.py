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

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.pool import StaticPool

from slaengine.database import connect, events, outbox, tickets, upgrade
from slaengine.errors import EventError
from slaengine.ticket import TicketEvent

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

    # -- events ------------------------------------------------------------

    def add_events(self, batch: Sequence[TicketEvent]) -> list[bool]:
        """Store events atomically; for each, whether it was new.

        An event id already stored with the same content is a retry (False);
        with different content it is an error and nothing is stored.
        """
        now = datetime.now(UTC)
        fresh: list[bool] = []
        with self.engine.begin() as conn:
            ids = [e.event_id for e in batch]
            stored = {
                row.event_id: row.body
                for row in conn.execute(
                    sa.select(events.c.event_id, events.c.body).where(
                        events.c.tenant_id == self.tenant, events.c.event_id.in_(ids)
                    )
                )
            }
            rows = []
            seen: dict[str, str] = {}
            for event in batch:
                body = event.model_dump_json()
                earlier = stored.get(event.event_id, seen.get(event.event_id))
                if earlier is not None:
                    if TicketEvent.model_validate_json(earlier) != event:
                        raise EventError(
                            "this event id is already stored with different content",
                            event.event_id,
                        )
                    fresh.append(False)
                    continue
                seen[event.event_id] = body
                fresh.append(True)
                rows.append(
                    {
                        "tenant_id": self.tenant,
                        "event_id": event.event_id,
                        "ticket_id": event.ticket_id,
                        "at": event.at.astimezone(UTC),
                        "type": event.type,
                        "body": body,
                        "received_at": now,
                    }
                )
            if rows:
                conn.execute(events.insert(), rows)
        return fresh

    def events(self, ticket_id: str) -> list[TicketEvent]:
        """Every stored event of a ticket."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.body).where(
                    events.c.tenant_id == self.tenant, events.c.ticket_id == ticket_id
                )
            )
            return [TicketEvent.model_validate_json(row.body) for row in rows]

    # -- tickets -----------------------------------------------------------

    def save_ticket(self, record: TicketRecord, schedule: Iterable[OutboxItem]) -> None:
        """Store a ticket's view and bring its pending outbox rows in line, atomically.

        Rows in ``schedule`` are created, or moved (new fire time) while
        still pending or cancelled; pending rows of the ticket that are no
        longer scheduled are cancelled; sent and dead rows never change.
        """
        now = datetime.now(UTC)
        values = {
            "created_at": record.created_at.astimezone(UTC),
            "ruleset": record.ruleset,
            "decision": record.decision,
            "statuses": record.statuses,
            "next_due_at": _utc(record.next_due_at),
            "updated_at": now,
        }
        wanted = {item.key: item for item in schedule}
        with self.engine.begin() as conn:
            key = (tickets.c.tenant_id == self.tenant) & (tickets.c.ticket_id == record.ticket_id)
            updated = conn.execute(tickets.update().where(key).values(**values)).rowcount
            if not updated:
                conn.execute(
                    tickets.insert().values(
                        tenant_id=self.tenant, ticket_id=record.ticket_id, **values
                    )
                )
            existing = {
                row.key: row
                for row in conn.execute(
                    sa.select(outbox.c.id, outbox.c.key, outbox.c.state, outbox.c.fire_at).where(
                        outbox.c.tenant_id == self.tenant,
                        outbox.c.ticket_id == record.ticket_id,
                    )
                )
            }
            for row_key, row in existing.items():
                if row.state == PENDING and row_key not in wanted:
                    conn.execute(
                        outbox.update().where(outbox.c.id == row.id).values(state=CANCELLED)
                    )
            for item in wanted.values():
                row = existing.get(item.key)
                fire_at = item.fire_at.astimezone(UTC)
                if row is None:
                    conn.execute(
                        outbox.insert().values(
                            tenant_id=self.tenant,
                            key=item.key,
                            kind=item.kind,
                            ticket_id=item.ticket_id,
                            fire_at=fire_at,
                            payload=json.dumps(item.payload, default=str),
                            state=PENDING,
                            attempts=0,
                        )
                    )
                elif row.state in (PENDING, CANCELLED) and (
                    row.state == CANCELLED or _utc(row.fire_at) != fire_at
                ):
                    conn.execute(
                        outbox.update()
                        .where(outbox.c.id == row.id)
                        .values(
                            state=PENDING,
                            fire_at=fire_at,
                            payload=json.dumps(item.payload, default=str),
                        )
                    )

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

    def claim(
        self, now: datetime, worker: str, limit: int = 100, lease: timedelta = timedelta(minutes=1)
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due pending rows of this tenant for ``worker``.

        A claim is a lease: a worker that dies leaves rows that another
        claims once the lease has run out.
        """
        now = now.astimezone(UTC)
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
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
                .values(claimed_by=worker, claimed_until=now + lease)
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


def _record(row: Any) -> TicketRecord:
    return TicketRecord(
        ticket_id=row.ticket_id,
        created_at=_utc(row.created_at),
        ruleset=row.ruleset,
        decision=row.decision,
        statuses=row.statuses,
        next_due_at=_utc(row.next_due_at),
    )
