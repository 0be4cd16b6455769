"""The SLA service: intake, decisions, routing, escalations and breaches, durably.

:class:`SlaService` ties the engine, the clocks, the plugins and a store
together::

    payload --intake plugins--> events --store (idempotent, atomic)-->
        TicketClock --> decision (decision + routing hooks when it changes)
                    --> statuses --> outbox rows: one per escalation action
                        and plugin, one per breach notice, each at its instant
    deliver_due(now) --> claims due rows --> escalation / breach hooks
                     --> sent, retried later, or dead after MAX_ATTEMPTS

Outbox rows are keyed by idempotency key ``ticket/metric/cycle/threshold/
action`` (+ plugin), so each threshold fires once per metric cycle. A pause
or a resolution moves or cancels rows that have not fired. A worker that
dies after sending and before recording leaves a claimed row whose lease
runs out; it is delivered again with the same idempotency key, so a
receiver that honours the key acts once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slaengine.clock import MetricStatus, TicketClock
from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import TicketError
from slaengine.escalation import Action, EscalationContext
from slaengine.intake import Intake
from slaengine.plugins import PluginHost
from slaengine.store import OutboxItem, SqlStore, TicketRecord
from slaengine.ticket import TicketEvent, require_aware

log = logging.getLogger(__name__)

#: Delivery attempts before a row is dead-lettered.
MAX_ATTEMPTS = 5
#: First retry delay; doubles with each attempt.
RETRY_DELAY = timedelta(seconds=30)


@dataclass
class DeliveryReport:
    """What one delivery round did (keys of outbox rows)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


class SlaService:
    """Engine + clocks + plugins + a store of one tenant."""

    def __init__(
        self,
        engine: Engine,
        host: PluginHost | None = None,
        store: SqlStore | None = None,
        worker: str = "worker",
    ) -> None:
        self.engine = engine
        self.host = host or PluginHost(entry_points=False)
        self.store = store or SqlStore.in_memory()
        self.worker = worker

    # -- intake -----------------------------------------------------------

    def intake(
        self, source: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Intake:
        """Turn a ticket system's payload into events through the intake plugins."""
        result = self.host.first(
            "slaengine_intake", source=source, payload=payload, headers=dict(headers or {})
        )
        if result is None:
            raise TicketError(f"no intake plugin accepts source {source!r}", "source")
        return result

    def receive(
        self, source: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, MetricStatus]]:
        """Intake a payload and apply its events; the touched tickets' statuses."""
        return self.apply(self.intake(source, payload, headers).events)

    def apply(self, events: Iterable[TicketEvent]) -> dict[str, dict[str, MetricStatus]]:
        """Store events (idempotently), announce changed decisions, reschedule deliveries.

        Every touched ticket is replayed before anything is stored: an event
        its timeline refuses raises EventError and nothing of the batch is
        stored. Returns each touched ticket's statuses at its latest event.
        """
        batch = list(events)
        by_ticket: dict[str, list[TicketEvent]] = {}
        for event in batch:
            by_ticket.setdefault(event.ticket_id, []).append(event)
        clocks = {}
        for ticket_id, new in by_ticket.items():
            clock = TicketClock(self.engine, ticket_id)
            clock.apply_all(self.store.events(ticket_id))
            clock.apply_all(new)  # raises EventError before anything is stored
            clocks[ticket_id] = clock
        self.store.add_events(batch)
        statuses = {}
        for ticket_id, clock in clocks.items():
            at = max(e.at for e in clock.events)
            statuses[ticket_id] = self._refresh(clock, at)
        return statuses

    def _refresh(self, clock: TicketClock, at: datetime) -> dict[str, MetricStatus]:
        decision = clock.decision
        statuses = clock.status(at)
        previous = self.store.ticket(decision.ticket_id)
        text = decision.model_dump_json()
        open_dues = [s.due_at for s in statuses.values() if s.active and s.due_at is not None]
        record = TicketRecord(
            ticket_id=decision.ticket_id,
            created_at=clock.ticket.created_at,
            ruleset=decision.ruleset_ref,
            decision=text,
            statuses=json.dumps({m: s.model_dump(mode="json") for m, s in statuses.items()}),
            next_due_at=min(open_dues, key=lambda d: d.astimezone(UTC)) if open_dues else None,
        )
        self.store.save_ticket(record, self._schedule(decision, statuses))
        if previous is None or previous.decision != text:
            ticket = clock.ticket
            self.host.call("slaengine_decision", ticket=ticket, decision=decision)
            if decision.route is not None:
                self.host.call("slaengine_route", ticket=ticket, decision=decision)
        return statuses

    def _schedule(
        self, decision: Decision, statuses: Mapping[str, MetricStatus]
    ) -> list[OutboxItem]:
        """The deliveries owed for a ticket as its clocks stand now."""
        items = []
        plan = self.engine.escalation_plan(decision)
        escalators = self.host.implementations("slaengine_escalate")
        for status in statuses.values():
            # A paused clock's future instants are unknown until it resumes.
            if not status.active or status.paused:
                continue
            if status.due_at is not None and status.breached_at is None:
                key = f"breach:{decision.ticket_id}/{status.metric}/{status.cycle}"
                items.append(
                    OutboxItem(
                        key=key,
                        kind="breach",
                        ticket_id=decision.ticket_id,
                        fire_at=status.due_at,
                        payload={"metric": status.metric},
                    )
                )
            if plan is None:
                continue
            for threshold in status.thresholds:
                if threshold.instant is None or threshold.reached:
                    continue
                spec = next(t for t in plan.thresholds if t.at == threshold.at)
                for index, action in enumerate(spec.actions):
                    context = EscalationContext(
                        ticket_id=decision.ticket_id,
                        metric=status.metric,
                        cycle=status.cycle,
                        threshold=threshold.at,
                        instant=threshold.instant,
                        action_index=index,
                        plan=decision.escalation_plan or "",
                        ruleset=decision.ruleset_ref,
                        priority=decision.priority,
                        due_at=status.due_at,
                    )
                    for plugin in escalators:
                        items.append(
                            OutboxItem(
                                key=f"escalate:{context.idempotency_key}:{plugin}",
                                kind="escalate",
                                ticket_id=decision.ticket_id,
                                fire_at=threshold.instant,
                                payload={
                                    "plugin": plugin,
                                    "context": context.model_dump(mode="json"),
                                    "action": action.model_dump(mode="json"),
                                },
                            )
                        )
        return items

    # -- queries ----------------------------------------------------------

    def clock(self, ticket_id: str) -> TicketClock:
        """The clock of a stored ticket."""
        events = self.store.events(ticket_id)
        if not events:
            raise TicketError(f"unknown ticket {ticket_id!r}", "ticket_id")
        return TicketClock(self.engine, ticket_id).apply_all(events)

    def status(self, ticket_id: str, at: datetime) -> dict[str, MetricStatus]:
        """A stored ticket's metric statuses at ``at``."""
        return self.clock(ticket_id).status(require_aware(at, "at"))

    # -- delivery ---------------------------------------------------------

    def deliver_due(self, now: datetime, limit: int = 500) -> DeliveryReport:
        """Deliver every owed escalation and breach notice that has come due by ``now``."""
        require_aware(now, "now")
        report = DeliveryReport()
        while True:
            items = self.store.claim(now, self.worker, limit)
            if not items:
                return report
            for item in items:
                self._deliver(item, now, report)
            if len(items) < limit:
                return report

    def _deliver(self, item: OutboxItem, now: datetime, report: DeliveryReport) -> None:
        try:
            if item.kind == "escalate":
                context = EscalationContext.model_validate(item.payload["context"])
                action = Action.model_validate(item.payload["action"])
                self.host.call_plugin(
                    item.payload["plugin"], "slaengine_escalate", context=context, action=action
                )
            else:
                clock = self.clock(item.ticket_id)
                status = clock.status(max(now, item.fire_at))[item.payload["metric"]]
                self.host.call("slaengine_breach", ticket_id=item.ticket_id, status=status)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if item.attempts + 1 >= MAX_ATTEMPTS:
                log.error("giving up on %s after %d attempts: %s", item.key, MAX_ATTEMPTS, error)
                self.store.finish(item, self.worker, error=error)
                report.dead.append(item.key)
            else:
                retry_at = now + RETRY_DELAY * (2**item.attempts)
                log.warning("delivery of %s failed (%s); retry at %s", item.key, error, retry_at)
                self.store.finish(item, self.worker, error=error, retry_at=retry_at)
                report.failed.append(item.key)
            return
        self.store.finish(item, self.worker)
        report.sent.append(item.key)
