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

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

from pydantic import TypeAdapter

from slaengine.clock import MetricStatus, TicketClock
from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import EventError, TicketError, UnknownSourceError
from slaengine.escalation import Action, EscalationContext
from slaengine.intake import Intake
from slaengine.plugins import Escalators, PluginHost
from slaengine.store import OutboxItem, Outcome, SqlStore, StoreTransaction, TicketRecord
from slaengine.ticket import Ticket, TicketEvent, require_aware

log = logging.getLogger(__name__)

#: Delivery attempts before a row is dead-lettered.
MAX_ATTEMPTS = 5
#: A metric breaches only after its due time (it can still be met at it), so a
#: breach notice fires this long after.
BREACH_DELAY = timedelta(seconds=1)
#: First retry delay; doubles with each attempt.
RETRY_DELAY = timedelta(seconds=30)
#: Tickets whose due deliveries are made at once (threads, shared by the process).
SENDERS = 8
#: Outcomes that come back within this many seconds are recorded together.
RECORD_EVERY = 0.02


@cache
def _senders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(SENDERS, thread_name_prefix="slaengine-deliver")


@dataclass
class DeliveryReport:
    """What one delivery round did (keys of outbox rows)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


class MetricStatuses(dict[str, MetricStatus]):
    """One ticket's statuses by metric; serialized to JSON once, however often it is asked."""

    __slots__ = ("_json",)

    def __init__(self, statuses: Mapping[str, MetricStatus]) -> None:
        super().__init__(statuses)
        self._json: str | None = None

    def json(self) -> str:
        """The statuses as one JSON object, as ``model_dump(mode="json")`` would give them."""
        if self._json is None:
            self._json = _to_json(self)
        return self._json


@dataclass
class _Entry:
    """What the service keeps of one ticket between requests."""

    clock: TicketClock
    stored: int  # events of the ticket in the store when the clock was last in step
    decision: str | None  # the decision (JSON) as stored; None before the first
    schedule: dict[str, datetime] | None  # outbox keys as last scheduled; None: ask the store
    decided: Decision | None = None  # the decision object ``decision`` was made from
    planned: tuple[Any, ...] | None = None  # what ``schedule`` was planned from (_plan_key)


@dataclass
class _Round:
    """What one round of requests came to, before it is written."""

    results: list[dict[str, dict[str, MetricStatus]] | Exception] = field(default_factory=list)
    accepted: dict[str, list[TicketEvent]] = field(default_factory=dict)  # new, by ticket
    latest: dict[str, dict[str, MetricStatus]] = field(default_factory=dict)  # last statuses
    changed: dict[str, None] = field(default_factory=dict)  # views to rewrite
    announce: list[tuple[Ticket, Decision]] = field(default_factory=list)  # new decisions


class SlaService:
    """Engine + clocks + plugins + a store of one tenant.

    The clocks of the ``cache_size`` most recently touched tickets are kept
    between calls, so an event is applied to its ticket's clock as it stands
    instead of replaying the ticket's history. A kept clock is used only
    while the store holds exactly the events it was built from; anything
    else (another process's writes, a ruleset reload, a failed transaction)
    rebuilds it from the store.
    """

    def __init__(
        self,
        engine: Engine,
        host: PluginHost | None = None,
        store: SqlStore | None = None,
        worker: str | None = None,
        cache_size: int = 10_000,
        optimistic: bool = False,
        announcer: Announcer | None = None,
    ) -> None:
        self.engine = engine
        self.host = host or PluginHost(entry_points=False)
        self.store = store or SqlStore.in_memory()
        self.worker = worker or f"worker-{os.getpid()}"  # a name per process: see liveness
        self.cache_size = cache_size
        self.optimistic = optimistic  # see _apply_together
        # None: the decision and routing hooks are called before apply returns.
        self.announcer = announcer
        self._clocks: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # one writer of the clocks at a time

    # -- intake -----------------------------------------------------------

    def intake(
        self, source: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Intake:
        """Turn a ticket system's payload into events through the intake plugins.

        An adapter's TicketError (a malformed payload, a bad signature) is its
        answer and reaches the caller. A ticket seen for the first time without
        its ``created`` event (a poller's first look, a webhook set up after the
        ticket was opened) is started from the snapshot the intake carries: a
        ``created`` event at its ``created_at`` is put first.
        """
        result = self.host.first(
            "slaengine_intake",
            reraise=(TicketError,),
            source=source,
            payload=payload,
            headers=dict(headers or {}),
        )
        if result is None:
            raise UnknownSourceError(source)
        ticket = result.ticket
        if (
            ticket is None
            or any(e.type == "created" and e.ticket_id == ticket.id for e in result.events)
            or self.store.ticket(ticket.id) is not None
        ):
            return result
        created = TicketEvent(
            ticket_id=ticket.id,
            event_id=f"{source}:{ticket.id}:created",
            at=ticket.created_at,
            type="created",
            fields=ticket.model_dump(mode="json", exclude={"id", "created_at"}, exclude_none=True),
        )
        return result.model_copy(update={"events": [created, *result.events]})

    def receive(
        self, source: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> dict[str, dict[str, MetricStatus]]:
        """Intake a payload and apply its events; the touched tickets' statuses."""
        return self.apply(self.intake(source, payload, headers).events)

    def apply(self, events: Iterable[TicketEvent]) -> dict[str, dict[str, MetricStatus]]:
        """Store events (idempotently), announce changed decisions, reschedule deliveries.

        Every touched ticket's timeline takes the events before anything is
        stored: an event it refuses raises EventError and nothing of the
        batch is stored. Returns each touched ticket's statuses at its
        latest event.
        """
        result = self.apply_many([events])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def apply_many(
        self, requests: Sequence[Iterable[TicketEvent]]
    ) -> list[dict[str, dict[str, MetricStatus]] | Exception]:
        """Apply several independent requests' events in one transaction (group commit).

        Each request is atomic on its own, as :meth:`apply`: a request that
        fails leaves no trace and does not affect the others. Returns, per
        request, its tickets' statuses or the exception it failed with.
        """
        batches = [list(events) for events in requests]
        with self._lock:
            try:
                return self._apply_together(batches, look_up_ids=False)
            except Exception:
                self._clocks.clear()  # the store said no: rebuild from what it holds
            # Something only the store could refuse, such as an event id another
            # ticket has: one request at a time, every event id looked up.
            results: list[dict[str, dict[str, MetricStatus]] | Exception] = []
            for batch in batches:
                try:
                    results.extend(self._apply_together([batch], look_up_ids=True))
                except Exception as exc:
                    self._clocks.clear()
                    results.append(exc)
            return results

    def _apply_together(
        self, batches: list[list[TicketEvent]], look_up_ids: bool
    ) -> list[dict[str, dict[str, MetricStatus]] | Exception]:
        """Apply requests in one transaction; each request's statuses or its exception.

        A ticket's clock holds every stored event of the ticket, so a retry is
        recognized without asking the store. Only an event id stored for
        another ticket escapes that; the primary key refuses it, and the
        caller comes back with ``look_up_ids`` to name it.

        ``optimistic`` (several processes write one SQLite file: ``serve
        --workers N``): the round is worked out from a read snapshot before
        the write lock is taken, and under the lock only the tickets' event
        counts are checked and the rows written. Another process that wrote
        one of the tickets meanwhile shows in the counts; the round is then
        worked out again under the lock.
        """
        engine = self.engine
        ticket_ids = list(dict.fromkeys(e.ticket_id for batch in batches for e in batch))
        if self.optimistic and not look_up_ids and self.store.write_lock is not None:
            with self.store.snapshot() as rx:
                entries = self._entries(rx, engine, ticket_ids)
                based_on = {t: entries[t].stored for t in ticket_ids}
                work = self._work_out(rx, batches, {}, entries)
            with self.store.transaction(ticket_ids) as tx:
                counts = tx.event_counts(ticket_ids)
                if any(counts.get(t, 0) != n for t, n in based_on.items()):
                    for ticket_id in ticket_ids:  # another process wrote: start over
                        self._clocks.pop(ticket_id, None)
                    entries = self._entries(tx, engine, ticket_ids)
                    work = self._work_out(tx, batches, {}, entries)
                self._write(tx, work, entries)
        else:
            with self.store.transaction(ticket_ids) as tx:
                ids = [e.event_id for batch in batches for e in batch]
                stored = tx.stored_events(ids) if look_up_ids else {}
                entries = self._entries(tx, engine, ticket_ids)
                work = self._work_out(tx, batches, stored, entries)
                self._write(tx, work, entries)
        if work.announce:
            if self.announcer is not None:
                self.announcer.announce(self.host, work.announce)
            else:
                announce(self.host, work.announce)
        return work.results

    def _work_out(
        self,
        tx: StoreTransaction,
        batches: list[list[TicketEvent]],
        stored: dict[str, TicketEvent],
        entries: dict[str, _Entry],
    ) -> _Round:
        """Each request's events on its tickets' clocks: statuses, new events, decisions."""
        engine = self.engine
        work = _Round()
        for batch in batches:
            try:
                fresh = self._admit(batch, stored, entries)
                touched = list(dict.fromkeys(e.ticket_id for e in batch))
                try:
                    for event in fresh:
                        entries[event.ticket_id].clock.apply(event)
                    statuses = {t: self._status(entries[t].clock) for t in touched}
                except Exception:
                    for ticket_id in touched:  # undo this request's events
                        clock = TicketClock(engine, ticket_id)
                        clock.apply_all(tx.events([ticket_id]).get(ticket_id, []))
                        entries[ticket_id].clock = clock.apply_all(work.accepted.get(ticket_id, []))
                    raise
            except Exception as exc:
                work.results.append(exc)
                continue
            for event in fresh:
                stored[event.event_id] = event
                work.accepted.setdefault(event.ticket_id, []).append(event)
                work.changed[event.ticket_id] = None
            for ticket_id in touched:
                entry = entries[ticket_id]
                decision = entry.clock.decision
                if decision is entry.decided:
                    continue  # a clock decides anew only when a field changes
                entry.decided = decision
                text = decision.model_dump_json()
                if text != entry.decision:
                    entry.decision = text
                    work.changed[ticket_id] = None
                    work.announce.append((entry.clock.ticket, decision))
            work.latest.update(statuses)
            work.results.append(statuses)
        return work

    def _write(self, tx: StoreTransaction, work: _Round, entries: dict[str, _Entry]) -> None:
        """Store a round's new events, its tickets' views and their outbox rows."""
        tx.add_events([e for events in work.accepted.values() for e in events])
        records, plans, keys = [], [], []
        escalators = self.host.escalators()
        for ticket_id in work.changed:
            entry = entries[ticket_id]
            statuses = work.latest[ticket_id]
            records.append(_record(entry.clock, entry.decision or "", statuses))
            key = _plan_key(entry.clock.decision, statuses, escalators)
            if entry.schedule is not None and key == entry.planned:
                continue  # the same deliveries as last time: nothing to write
            schedule = self._schedule(entry.clock.decision, statuses, escalators)
            plans.append((ticket_id, schedule, entry.schedule))
            keys.append(key)
        for (ticket_id, _, _), key, schedule in zip(
            plans, keys, tx.schedule_many(plans), strict=True
        ):
            entries[ticket_id].schedule, entries[ticket_id].planned = schedule, key
        tx.save_tickets(records)
        for ticket_id, events in work.accepted.items():
            entries[ticket_id].stored += len(events)

    def _entries(
        self, tx: StoreTransaction, engine: Engine, ticket_ids: list[str]
    ) -> dict[str, _Entry]:
        """The cached state of each ticket, brought in step with the store where it is stale.

        A cached clock is good while the store holds as many events of its
        ticket as the clock was built from (events are append-only) and the
        engine is the same (a ruleset reload replaces it). A clock behind the
        store (another process took the ticket's latest events: ``serve
        --workers``) takes just the events it lacks; what that process
        decided and scheduled is read back. Anything else is rebuilt.
        """
        counts = tx.event_counts(ticket_ids)
        entries: dict[str, _Entry] = {}
        stale = []
        for ticket_id in ticket_ids:
            entry = self._clocks.get(ticket_id)
            if entry is None or entry.stored != counts.get(ticket_id, 0):
                stale.append(ticket_id)
                continue
            if entry.clock.policy is not engine:
                stale.append(ticket_id)
                continue
            self._clocks.move_to_end(ticket_id)
            entries[ticket_id] = entry
        history = tx.events([t for t in stale if counts.get(t)])
        decisions = tx.decisions([t for t in stale if counts.get(t)])
        for ticket_id in stale:
            events = history.get(ticket_id, [])
            entry = self._clocks.get(ticket_id)
            clock = entry.clock if entry is not None else None
            if clock is not None and clock.policy is engine and entry.stored < len(events):
                clock.apply_all(e for e in events if clock.event(e.event_id) is None)
            if clock is None or clock.policy is not engine or len(clock.events) != len(events):
                clock = TicketClock(engine, ticket_id).apply_all(events)
            # A ticket with no events has no outbox rows: nothing to read back.
            schedule: dict[str, datetime] | None = None if events else {}
            entry = _Entry(clock, len(events), decisions.get(ticket_id), schedule)
            entries[ticket_id] = self._clocks[ticket_id] = entry
            self._clocks.move_to_end(ticket_id)
        while len(self._clocks) > self.cache_size:
            self._clocks.popitem(last=False)
        return entries

    @staticmethod
    def _admit(
        batch: list[TicketEvent], stored: Mapping[str, TicketEvent], entries: Mapping[str, _Entry]
    ) -> list[TicketEvent]:
        """The events of a request not stored yet; a reused id with other content is an error."""
        fresh: list[TicketEvent] = []
        seen: dict[str, TicketEvent] = {}
        for event in batch:
            earlier = (
                stored.get(event.event_id)
                or entries[event.ticket_id].clock.event(event.event_id)
                or seen.get(event.event_id)
            )
            if earlier is not None:
                if earlier != event:
                    raise EventError(
                        "this event id is already stored with different content",
                        event.event_id,
                    )
                continue
            seen[event.event_id] = event
            fresh.append(event)
        return fresh

    @staticmethod
    def _status(clock: TicketClock) -> MetricStatuses:
        return MetricStatuses(clock.status(clock.latest))

    def _schedule(
        self, decision: Decision, statuses: Mapping[str, MetricStatus], escalators: Escalators
    ) -> list[OutboxItem]:
        """The deliveries owed for a ticket as its clocks stand now.

        ``escalators``: the escalation plugins and the action types each takes
        (:meth:`PluginHost.escalators`); an action is owed to those that take it.
        """
        items = []
        plan = self.engine.escalation_plan(decision)
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
                        fire_at=status.due_at + BREACH_DELAY,
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
                    takers = [p for p, takes in escalators if takes is None or action.type in takes]
                    if not takers:
                        continue
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
                    # One dump of each, shared by every plugin's (read-only) payload.
                    dumped = context.model_dump(mode="json")
                    dumped_action = action.model_dump(mode="json")
                    for plugin in takers:
                        items.append(
                            OutboxItem(
                                key=f"escalate:{context.idempotency_key}:{plugin}",
                                kind="escalate",
                                ticket_id=decision.ticket_id,
                                fire_at=threshold.instant,
                                payload={
                                    "plugin": plugin,
                                    "context": dumped,
                                    "action": dumped_action,
                                },
                            )
                        )
        return items

    # -- queries ----------------------------------------------------------

    def clock(self, ticket_id: str) -> TicketClock:
        """The clock of a stored ticket (read from the store, never the cache)."""
        return self._clock_of(ticket_id, self.store.events(ticket_id))

    def _clock_of(self, ticket_id: str, events: list[TicketEvent] | None) -> TicketClock:
        """A ticket's clock from its stored events; TicketError when it has none."""
        if not events:
            raise TicketError(f"unknown ticket {ticket_id!r}", "ticket_id")
        return TicketClock(self.engine, ticket_id).apply_all(events)

    def status(self, ticket_id: str, at: datetime) -> dict[str, MetricStatus]:
        """A stored ticket's metric statuses at ``at``."""
        return self.clock(ticket_id).status(require_aware(at, "at"))

    # -- delivery ---------------------------------------------------------

    def deliver_due(self, now: datetime, limit: int = 100) -> DeliveryReport:
        """Deliver every owed escalation and breach notice that has come due by ``now``.

        Rows are claimed ``limit`` at a time. The tickets of a claim are
        delivered side by side on :data:`SENDERS` threads (a ticket's own rows
        one after another, in order), so one slow receiver holds up only its
        own share. Outcomes are recorded as they come back, those of each
        :data:`RECORD_EVERY` seconds in one transaction: a crash repeats (with
        their idempotency keys) only the sends in flight and those back within
        that time.
        """
        require_aware(now, "now")
        report = DeliveryReport()
        while True:
            items = self.store.claim(now, self.worker, limit)
            if not items:
                return report
            by_ticket: dict[str, list[OutboxItem]] = {}
            for item in items:
                by_ticket.setdefault(item.ticket_id, []).append(item)
            groups = list(by_ticket.values())
            # A breach notice carries the ticket's status: its events, read at once.
            history = self.store.events_of(
                list({item.ticket_id for item in items if item.kind == "breach"})
            )
            results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
            send = partial(self._deliver_in_order, now=now, history=history, results=results)
            futures = []
            if len(groups) > 1:
                futures = [_senders().submit(send, group) for group in groups]
            else:  # one ticket's rows need no thread
                send(groups[0])
            done = self._record_as_they_come(results, len(items), futures)
            for future in futures:
                future.result()  # a sender's unexpected error surfaces here
            order = {item.id: n for n, item in enumerate(items)}
            for outcome in sorted(done, key=lambda o: order[o.item.id]):
                key = outcome.item.key
                if outcome.error is None:
                    report.sent.append(key)
                elif outcome.retry_at is None:
                    report.dead.append(key)
                else:
                    report.failed.append(key)
            if len(items) < limit:
                return report

    def _record_as_they_come(
        self, results: queue.SimpleQueue[Outcome], count: int, futures: list[Future[None]]
    ) -> list[Outcome]:
        """Record ``count`` outcomes as the senders put them in ``results``, in batches."""
        done: list[Outcome] = []
        while len(done) < count:
            try:
                batch = [results.get(timeout=RECORD_EVERY)]
            except queue.Empty:
                if all(future.done() for future in futures) and results.empty():
                    break  # a sender failed: its error is raised by the caller
                continue
            deadline = time.monotonic() + RECORD_EVERY
            while len(done) + len(batch) < count and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(results.get(timeout=left))
                except queue.Empty:
                    break
            self.store.finish_many(batch, self.worker)
            done += batch
        return done

    def _deliver_in_order(
        self,
        items: list[OutboxItem],
        now: datetime,
        history: Mapping[str, list[TicketEvent]],
        results: queue.SimpleQueue[Outcome],
    ) -> None:
        for item in items:
            results.put(self._deliver(item, now, history))

    def _deliver(
        self, item: OutboxItem, now: datetime, history: Mapping[str, list[TicketEvent]]
    ) -> Outcome:
        try:
            if item.kind == "escalate":
                context = EscalationContext.model_validate(item.payload["context"])
                action = Action.model_validate(item.payload["action"])
                self.host.call_plugin(
                    item.payload["plugin"], "slaengine_escalate", context=context, action=action
                )
            else:
                clock = self._clock_of(item.ticket_id, history.get(item.ticket_id))
                status = clock.status(max(now, item.fire_at))[item.payload["metric"]]
                self.host.call("slaengine_breach", ticket_id=item.ticket_id, status=status)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            at = datetime.now(UTC)
            if item.attempts + 1 >= MAX_ATTEMPTS:
                log.error("giving up on %s after %d attempts: %s", item.key, MAX_ATTEMPTS, error)
                return Outcome(item, at, error)
            retry_at = now + RETRY_DELAY * (2**item.attempts)
            log.warning("delivery of %s failed (%s); retry at %s", item.key, error, retry_at)
            return Outcome(item, at, error, retry_at)
        return Outcome(item, datetime.now(UTC))


def announce(host: PluginHost, decisions: Sequence[tuple[Ticket, Decision]]) -> None:
    """Call the decision hooks, and the routing hooks of decisions with a route, in order."""
    for ticket, decision in decisions:
        host.call("slaengine_decision", ticket=ticket, decision=decision)
        if decision.route is not None:
            host.call("slaengine_route", ticket=ticket, decision=decision)


class Announcer:
    """Calls the decision and routing hooks of stored rounds on a thread of its own.

    A write-back plugin's routing hook is an HTTP call to the ticket system;
    made in the writer's round, every request of the round would wait for
    it. Here the round's requests are answered once it is committed, and
    the hooks follow in the order the decisions were made (one thread), so
    a later routing of a ticket is never overtaken by an earlier one. As
    before, an announcement is not stored: a process that dies between the
    commit and the hook call does not make it.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[
            tuple[PluginHost, Sequence[tuple[Ticket, Decision]]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="slaengine-announce", daemon=True)
        self._thread.start()

    def announce(self, host: PluginHost, decisions: Sequence[tuple[Ticket, Decision]]) -> None:
        """Queue a committed round's new decisions."""
        self._queue.put((host, decisions))

    def close(self) -> None:
        """Announce what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                announce(*job)
            except Exception:  # the host records a plugin's failure; keep announcing
                log.exception("announcing decisions failed")


def _record(
    clock: TicketClock, decision: str, statuses: Mapping[str, MetricStatus]
) -> TicketRecord:
    """The stored view of a ticket whose clock stands at ``statuses``."""
    open_dues = [s.due_at for s in statuses.values() if s.active and s.due_at is not None]
    return TicketRecord(
        ticket_id=clock.decision.ticket_id,
        created_at=clock.ticket.created_at,
        ruleset=clock.decision.ruleset_ref,
        decision=decision,
        statuses=statuses_json(statuses),
        next_due_at=min(open_dues, key=lambda d: d.astimezone(UTC)) if open_dues else None,
    )


def _plan_key(
    decision: Decision, statuses: Mapping[str, MetricStatus], escalators: Escalators
) -> tuple[Any, ...]:
    """All that :meth:`SlaService._schedule` reads: equal keys, equal deliveries.

    Most events (a reply, a note) move no due time; comparing this is much
    cheaper than building the deliveries and comparing those.
    """
    return (
        decision,  # a clock keeps its decision object until a field changes it
        escalators,
        tuple(
            (
                s.metric,
                s.cycle,
                s.active,
                s.paused,
                s.due_at,
                s.breached_at,
                tuple((t.at, t.instant, t.reached) for t in s.thresholds),
            )
            for s in statuses.values()
        ),
    )


def statuses_json(statuses: Mapping[str, MetricStatus]) -> str:
    """Statuses by metric as one JSON object, as ``model_dump(mode="json")`` would give them."""
    if isinstance(statuses, MetricStatuses):
        return statuses.json()
    return _to_json(statuses)


#: Serializes statuses by metric in one call into pydantic's core (twice as fast as a
#: model_dump_json per metric), no dict round trip.
_STATUSES_JSON = TypeAdapter(dict[str, MetricStatus])


def _to_json(statuses: Mapping[str, MetricStatus]) -> str:
    return _STATUSES_JSON.dump_json(statuses).decode()
