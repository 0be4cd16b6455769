"""The SLA service in process: intake, decisions, routing, escalations, breaches.

:class:`SlaService` ties the engine, the clocks and the plugins together::

    payload --intake plugins--> events --store (idempotent)--> TicketClock
        --> decision (decision + routing hooks when it changes)
    tick(now) --> thresholds come due --> escalation hooks, once per
        (ticket, metric, cycle, threshold, action, plugin)
              --> breaches --> breach hooks, once per (ticket, metric, cycle)

State lives in a :class:`Store`; :class:`MemoryStore` keeps it in memory.
A failed delivery stays pending and is retried at the next tick; what was
delivered is never delivered again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from slaengine.clock import MetricStatus, TicketClock
from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import EventError, TicketError
from slaengine.escalation import EscalationContext
from slaengine.intake import Intake
from slaengine.plugins import PluginHost
from slaengine.ticket import TicketEvent, require_aware

log = logging.getLogger(__name__)


class Store(Protocol):
    """Where the service keeps events and what it has delivered."""

    def add_event(self, event: TicketEvent) -> bool:
        """Store an event; False when its id is already stored (with equal content)."""

    def events(self, ticket_id: str) -> list[TicketEvent]:
        """Every stored event of a ticket."""

    def ticket_ids(self) -> list[str]:
        """Every ticket with stored events."""

    def delivered(self, key: str) -> bool:
        """Whether ``key`` (an escalation or breach delivery) was recorded as done."""

    def record_delivery(self, key: str) -> None:
        """Record ``key`` as done."""

    def last_decision(self, ticket_id: str) -> str | None:
        """The JSON of the last decision announced for a ticket."""

    def record_decision(self, ticket_id: str, decision_json: str) -> None:
        """Remember the decision announced for a ticket."""


class MemoryStore:
    """A Store in memory (for tests, the CLI and embedding)."""

    def __init__(self) -> None:
        self._events: dict[str, dict[str, TicketEvent]] = {}
        self._owner: dict[str, str] = {}
        self._delivered: set[str] = set()
        self._decisions: dict[str, str] = {}

    def add_event(self, event: TicketEvent) -> bool:
        owner = self._owner.get(event.event_id)
        if owner is not None:
            seen = self._events[owner][event.event_id]
            if seen != event:
                raise EventError(
                    "this event id is already stored with different content", event.event_id
                )
            return False
        self._owner[event.event_id] = event.ticket_id
        self._events.setdefault(event.ticket_id, {})[event.event_id] = event
        return True

    def events(self, ticket_id: str) -> list[TicketEvent]:
        return list(self._events.get(ticket_id, {}).values())

    def ticket_ids(self) -> list[str]:
        return list(self._events)

    def delivered(self, key: str) -> bool:
        return key in self._delivered

    def record_delivery(self, key: str) -> None:
        self._delivered.add(key)

    def last_decision(self, ticket_id: str) -> str | None:
        return self._decisions.get(ticket_id)

    def record_decision(self, ticket_id: str, decision_json: str) -> None:
        self._decisions[ticket_id] = decision_json


@dataclass
class TickReport:
    """What one tick did."""

    escalations_sent: list[str] = field(default_factory=list)  # delivery keys
    escalations_failed: list[str] = field(default_factory=list)
    escalations_unhandled: list[str] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)


class SlaService:
    """Engine + clocks + plugins + a store."""

    def __init__(
        self, engine: Engine, host: PluginHost | None = None, store: Store | None = None
    ) -> None:
        self.engine = engine
        self.host = host or PluginHost(entry_points=False)
        self.store: Store = store or MemoryStore()

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
        """Store events (idempotently) and announce changed decisions.

        Each touched ticket is replayed before anything is stored, so an
        event its timeline refuses is reported and nothing of the batch is
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
        for event in batch:
            self.store.add_event(event)
        statuses = {}
        for ticket_id, clock in clocks.items():
            self._announce(clock)
            latest = max(e.at for e in clock.events)
            statuses[ticket_id] = clock.status(latest)
        return statuses

    def _announce(self, clock: TicketClock) -> None:
        decision = clock.decision
        text = decision.model_dump_json()
        ticket_id = decision.ticket_id
        if self.store.last_decision(ticket_id) == text:
            return
        ticket = clock.ticket
        self.host.call("slaengine_decision", ticket=ticket, decision=decision)
        if decision.route is not None:
            self.host.call("slaengine_route", ticket=ticket, decision=decision)
        self.store.record_decision(ticket_id, text)

    def clock(self, ticket_id: str) -> TicketClock:
        """The clock of a stored ticket."""
        events = self.store.events(ticket_id)
        if not events:
            raise TicketError(f"unknown ticket {ticket_id!r}", "ticket_id")
        return TicketClock(self.engine, ticket_id).apply_all(events)

    def status(self, ticket_id: str, at: datetime) -> dict[str, MetricStatus]:
        """A stored ticket's metric statuses at ``at``."""
        return self.clock(ticket_id).status(require_aware(at, "at"))

    # -- escalations and breaches -----------------------------------------

    def tick(self, now: datetime) -> TickReport:
        """Fire every escalation threshold and breach notice that has come due by ``now``."""
        require_aware(now, "now")
        report = TickReport()
        for ticket_id in self.store.ticket_ids():
            clock = self.clock(ticket_id)
            decision = clock.decision
            for status in clock.status(now).values():
                self._escalate(decision, status, now, report)
                self._breach(ticket_id, status, now, report)
        return report

    def _escalate(
        self, decision: Decision, status: MetricStatus, now: datetime, report: TickReport
    ) -> None:
        plan = self.engine.escalation_plan(decision)
        if plan is None:
            return
        for threshold in status.thresholds:
            if threshold.instant is None or threshold.instant > now:
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
                self._deliver(context, action, report)

    def _deliver(self, context: EscalationContext, action: Any, report: TickReport) -> None:
        key = context.idempotency_key
        plugins = self.host.implementations("slaengine_escalate")
        handled = False
        for plugin in plugins:
            plugin_key = f"escalate:{key}:{plugin}"
            if self.store.delivered(plugin_key):
                handled = True
                continue
            try:
                result = self.host.call_plugin(
                    plugin, "slaengine_escalate", context=context, action=action
                )
            except Exception as exc:  # retried at the next tick
                log.warning("escalation %s via %s failed: %s", key, plugin, exc)
                report.escalations_failed.append(plugin_key)
                handled = True
                continue
            if result:
                self.store.record_delivery(plugin_key)
                report.escalations_sent.append(plugin_key)
                handled = True
        if not handled and not self.store.delivered(f"escalate:{key}:unhandled"):
            log.warning("no plugin handles %s action of %s", action.type, key)
            self.store.record_delivery(f"escalate:{key}:unhandled")
            report.escalations_unhandled.append(key)

    def _breach(self, ticket_id: str, status: MetricStatus, now: datetime, report: TickReport):
        if status.breached_at is None or status.breached_at > now:
            return
        key = f"breach:{ticket_id}/{status.metric}/{status.cycle}"
        if self.store.delivered(key):
            return
        self.host.call("slaengine_breach", ticket_id=ticket_id, status=status)
        self.store.record_delivery(key)
        report.breaches.append(key)
