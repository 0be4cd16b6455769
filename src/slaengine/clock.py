"""SLA clocks: where a ticket stands against its targets as its events happen.

A :class:`~slaengine.decision.Decision` says what the targets are; a
:class:`TicketClock` replays one ticket's events against the ruleset's
:class:`~slaengine.metric.MetricDefinition` s and tells, at any instant, for
each metric: running, paused, met, breached or cancelled, how much business
time is used and left, when it is due, and where the escalation thresholds
fall.

How the events drive the clocks:

- The ``created`` event carries the ticket (its ``fields`` hold severity,
  tier, contract, ...; ``created_at`` is the event's instant). ``updated``,
  ``status_changed``, ``severity_changed`` and ``priority_changed`` events
  apply their ``fields`` to it; ``resolved``, ``reopened`` and ``closed``
  set the status to ``resolved``, ``open`` and ``closed`` unless their
  fields name another.
- When a field other than ``status`` changes, the policy decides again
  (same ``created_at``, so the same ruleset version). A running cycle whose
  target changed is re-targeted as the policy's ``retarget`` says:
  ``from_start`` recounts the whole cycle with the new target and calendar
  (as Zendesk does; a breach can appear or vanish), ``from_change`` gives
  the new target as a fresh budget from the instant of change (a cycle
  already past due stays breached). Met and cancelled cycles keep their
  outcome. The status alone never triggers a new decision: it drives
  pauses.
- Per metric, an event is checked in this order: ``pause``/``resume``
  events, ``stop`` (met), ``cancel``, ``reset`` (a new cycle), ``start``
  (the first cycle; in a periodic metric every start event begins a fresh
  cycle and meets the running one) and, for a ``reopened`` event that
  started nothing, the definition's ``on_reopen``. Then the clock
  pauses or runs as the ticket's status (``pause_statuses``) and the pause
  events say. No cycle starts while the status is one of the definition's
  ``inactive_statuses`` (by default resolved and closed).

Business time is counted on the metric target's calendar; the due time is
the instant the target's budget is used up counting only running time, so
pauses move it. A cycle is breached when met after its due time, or when
it is still open and the status instant is past due; ``breached_at`` is the
due time.

Events are ordered by :func:`event_order_key` (instant, then a fixed type
order, then event id), so the same set of events gives the same result in
any arrival order; an event id seen twice is counted once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from slaengine.decision import Decision, MetricTarget
from slaengine.errors import EventError
from slaengine.escalation import EscalationPlan, Threshold
from slaengine.metric import EventCondition, MetricDefinition
from slaengine.ticket import Ticket, TicketEvent, require_aware

if TYPE_CHECKING:
    from slaengine.calendar import Calendar

__all__ = [
    "EVENT_ORDER",
    "ClockPolicy",
    "CycleRecord",
    "MetricStatus",
    "ThresholdInstant",
    "TicketClock",
    "event_order_key",
    "status_at",
]


class ClockPolicy(Protocol):
    """What the clocks need from a ruleset (the rules engine implements it)."""

    def decide(self, ticket: Ticket) -> Decision:
        """Decide for ``ticket`` with the ruleset version in force at its ``created_at``.

        Called at creation and again after each change of a field other
        than ``status``.
        """
        ...

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        """The metric definitions of the ruleset version ``decision`` came from."""
        ...

    def calendar(self, decision: Decision, name: str) -> Calendar:
        """The calendar called ``name`` in the ruleset version of ``decision``."""
        ...

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        """The escalation plan ``decision`` names, or None."""
        ...

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        """How a changed target applies to a running cycle (``policy.retarget``)."""
        ...


#: Tie-break order of event types at the same instant: field changes first
#: (so a reply sees the new severity), replies before the resolve that may
#: carry them, a resolve before a reopen, custom types last (by name).
EVENT_ORDER = (
    "created",
    "updated",
    "severity_changed",
    "priority_changed",
    "status_changed",
    "customer_replied",
    "agent_replied",
    "resolved",
    "reopened",
    "closed",
)
_RANK = {name: rank for rank, name in enumerate(EVENT_ORDER)}
_CUSTOM_RANK = len(EVENT_ORDER)

_FIELD_EVENTS = frozenset(
    {"created", "updated", "status_changed", "severity_changed", "priority_changed"}
)
_IMPLIED_STATUS = {"resolved": "resolved", "reopened": "open", "closed": "closed"}
_TICKET_ATTRS = frozenset(Ticket.model_fields) - {"id", "created_at", "fields"}


def event_order_key(event: TicketEvent) -> tuple[datetime, int, str, str]:
    """The key events are replayed in: instant (in UTC), type order (:data:`EVENT_ORDER`), id."""
    kind = event.type
    return (event.at.astimezone(UTC), _RANK.get(kind, _CUSTOM_RANK), kind, event.event_id)


# ---------------------------------------------------------------- output models

State = Literal["not_started", "running", "paused", "met", "breached", "cancelled"]
Outcome = Literal["met", "breached", "cancelled"]


class ThresholdInstant(BaseModel):
    """Where one escalation threshold falls on a metric's (pause-adjusted) clock.

    ``instant`` is None when the cycle stopped before reaching it. While the
    clock is paused, future instants are counted as if it resumed at the
    status instant (the earliest they can fall).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: str
    percent: float
    offset_seconds: int
    instant: datetime | None
    reached: bool


class CycleRecord(BaseModel):
    """A finished past cycle of a metric (periodic cycles, reopened or reset clocks)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cycle: int
    outcome: Outcome
    started_at: datetime
    stopped_at: datetime
    target: str | None
    due_at: datetime | None
    breached_at: datetime | None
    elapsed_seconds: float


class MetricStatus(BaseModel):
    """Where one metric of a ticket stands at an instant (its current cycle).

    - ``state``: ``not_started``, ``running``, ``paused``, ``met``,
      ``breached`` (met late, or open and past due) or ``cancelled``;
      ``active`` says the cycle is still open (it may be breached and still
      running), ``paused`` that its clock is not counting now;
    - ``target`` as written (``4h``, ``2d``) and ``target_seconds``, the
      business seconds it stands for (working days converted on the
      calendar from ``target_since``);
    - ``target_since``: where the budget counts from, the cycle start or
      the instant of a ``from_change`` re-target;
    - ``elapsed_seconds``: business time counted; ``paused_seconds``:
      wall-clock time since ``target_since`` during which the clock did not
      count (paused, or stopped before a reopen resumed it);
      ``remaining_seconds`` is negative when overdue;
    - ``due_at``: the instant the budget is used up; for a paused clock
      not yet due, as if it resumed at the status instant;
    - ``history``: the metric's earlier cycles, with counts by outcome.

    Instants are in UTC (one timezone keeps comparisons cheap and output
    unambiguous; show them in a local zone at the edge).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    kind: Literal["single", "periodic"]
    state: State
    active: bool
    paused: bool
    cycle: int
    target: str | None
    target_seconds: float | None
    calendar: str | None
    started_at: datetime | None
    target_since: datetime | None
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
    cancelled_at: datetime | None
    elapsed_seconds: float
    paused_seconds: float
    remaining_seconds: float | None
    percent_used: float | None
    thresholds: tuple[ThresholdInstant, ...] = ()
    cycles_met: int = 0
    cycles_breached: int = 0
    cycles_cancelled: int = 0
    history: tuple[CycleRecord, ...] = ()


# ----------------------------------------------------------- compiled metrics

#: Per event type: None when any event of that type matches, else the
#: alternatives, each a tuple of (field, value) pairs that must all be equal.
_Conditions = dict[str, tuple[tuple[tuple[str, Any], ...], ...] | None]


def _compile(conditions: list[EventCondition]) -> _Conditions:
    by_type: dict[str, list[tuple[tuple[str, Any], ...]]] = {}
    for condition in conditions:
        by_type.setdefault(condition.type, []).append(tuple(condition.fields.items()))
    return {t: None if () in alts else tuple(alts) for t, alts in by_type.items()}


_MISSING = object()


def _matches(conditions: _Conditions, event: TicketEvent) -> bool:
    kind = event.type
    if kind not in conditions:
        return False
    alternatives = conditions[kind]
    if alternatives is None:
        return True
    got = event.fields
    for pairs in alternatives:
        for key, value in pairs:
            if got.get(key, _MISSING) != value:
                break
        else:
            return True
    return False


class _Spec:
    """A MetricDefinition compiled for matching (conditions indexed by event type)."""

    __slots__ = (
        "name",
        "kind",
        "start",
        "stop",
        "cancel",
        "pause",
        "resume",
        "reset",
        "pause_statuses",
        "inactive_statuses",
        "on_reopen",
        "types",
    )

    def __init__(self, name: str, definition: MetricDefinition) -> None:
        self.name = name
        self.kind = definition.kind
        self.start = _compile(definition.start)
        self.stop = _compile(definition.stop)
        self.cancel = _compile(definition.cancel)
        self.pause = _compile(definition.pause)
        self.resume = _compile(definition.resume)
        self.reset = _compile(definition.reset)
        self.pause_statuses = frozenset(definition.pause_statuses)
        self.inactive_statuses = frozenset(definition.inactive_statuses)
        self.on_reopen = definition.on_reopen
        types = set()
        for conditions in (self.start, self.stop, self.cancel, self.pause, self.resume, self.reset):
            types.update(conditions)
        if self.on_reopen != "none":
            types.add("reopened")
        self.types = frozenset(types)


# Compiled specs by id() of the mapping a policy returned; the mapping is
# kept alive in the value so its id is not reused while cached.
_SPECS: dict[int, tuple[Mapping[str, MetricDefinition], tuple[_Spec, ...]]] = {}


def _specs(definitions: Mapping[str, MetricDefinition]) -> tuple[_Spec, ...]:
    cached = _SPECS.get(id(definitions))
    if cached is not None and cached[0] is definitions:
        return cached[1]
    specs = tuple(_Spec(name, d) for name, d in definitions.items())
    if len(_SPECS) >= 256:
        _SPECS.clear()
    _SPECS[id(definitions)] = (definitions, specs)
    return specs


# ------------------------------------------------------------------- cycles

_ZERO = timedelta(0)


class _Cycle:
    """One cycle of a metric's clock: running intervals and the target they count against."""

    __slots__ = (
        "number",
        "started_at",
        "since",
        "segments",
        "open_at",
        "stopped_at",
        "outcome",
        "target",
        "calendar",
        "_budget",
        "_record",
    )

    def __init__(
        self,
        number: int,
        at: datetime,
        target: MetricTarget | None,
        calendar: Calendar | None,
        paused: bool,
    ) -> None:
        self.number = number
        self.started_at = at
        self.since = at
        self.segments: list[tuple[datetime, datetime]] = []
        self.open_at: datetime | None = None if paused else at
        self.stopped_at: datetime | None = None
        self.outcome: Literal["met", "cancelled"] | None = None
        self.target = target
        self.calendar = calendar
        self._budget: timedelta | None = None
        self._record: CycleRecord | None = None

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    def pause(self, at: datetime) -> None:
        if self.open_at is not None:
            self.segments.append((self.open_at, at))
            self.open_at = None

    def run(self, at: datetime) -> None:
        if self.open_at is None:
            self.open_at = at

    def stop(self, at: datetime, outcome: Literal["met", "cancelled"]) -> None:
        self.pause(at)
        self.stopped_at = at
        self.outcome = outcome

    def reopen(self, at: datetime, paused: bool) -> None:
        self.stopped_at = None
        self.outcome = None
        if not paused:
            self.open_at = at

    def retarget(
        self,
        at: datetime,
        target: MetricTarget | None,
        calendar: Calendar | None,
        mode: Literal["from_start", "from_change"],
    ) -> None:
        if mode == "from_change":
            due = self.measure(at).due
            if due is not None and at > due:
                return  # already breached under the old target: the breach stands
            running = self.open_at is not None
            self.segments = []
            self.since = at
            self.open_at = at if running else None
        self.target = target
        self.calendar = calendar
        self._budget = None

    def paused_time(self, at: datetime) -> timedelta:
        """Wall-clock time since ``since`` during which the clock did not count."""
        end = self.stopped_at or at
        running = sum((b - a for a, b in self.segments), _ZERO)
        if self.open_at is not None:
            running += end - self.open_at
        return end - self.since - running

    def budget(self) -> timedelta | None:
        """The target as business time, working days converted from ``since``."""
        if self._budget is None and self.target is not None and self.calendar is not None:
            if self.target.seconds is not None:
                self._budget = timedelta(seconds=self.target.seconds)
            elif self.target.days is not None:
                cal = self.calendar
                end = cal.add_days(self.since, self.target.days).astimezone(UTC)
                self._budget = cal.elapsed(self.since, end)
        return self._budget

    def measure(self, at: datetime) -> _Measure:
        """Business time used, due time and state at ``at`` (not before the last event)."""
        cal = self.calendar
        segments = self.segments
        used: list[timedelta] = [cal.elapsed(a, b) for a, b in segments] if cal else []
        closed = sum(used, _ZERO)
        consumed = closed
        if self.open_at is not None and cal is not None:
            consumed += cal.elapsed(self.open_at, at)
        budget = self.budget()
        due = None
        if budget is not None:
            # Resume point for a due not reached in the closed intervals: the
            # open interval's start, else the stop (or status) instant.
            resume = self.open_at or self.stopped_at or at
            due = _locate(cal, segments, used, budget, resume)
        end = self.stopped_at or at
        if self.outcome == "met":
            state: State = "breached" if due is not None and end > due else "met"
        elif self.outcome == "cancelled":
            state = "breached" if due is not None and end > due else "cancelled"
        elif due is not None and at > due:
            state = "breached"
        else:
            state = "paused" if self.open_at is None else "running"
        return _Measure(used, consumed, budget, due, state)

    def record(self) -> CycleRecord:
        """This (finished) cycle as a history entry; computed once."""
        if self._record is None:
            assert self.stopped_at is not None
            m = self.measure(self.stopped_at)
            outcome: Outcome = "breached" if m.state == "breached" else self.outcome or "cancelled"
            self._record = CycleRecord(
                cycle=self.number,
                outcome=outcome,
                started_at=self.started_at,
                stopped_at=self.stopped_at,
                target=self.target.target if self.target else None,
                due_at=m.due,
                breached_at=m.due if outcome == "breached" else None,
                elapsed_seconds=m.consumed.total_seconds(),
            )
        return self._record


class _Measure:
    __slots__ = ("used", "consumed", "budget", "due", "state")

    def __init__(
        self,
        used: list[timedelta],
        consumed: timedelta,
        budget: timedelta | None,
        due: datetime | None,
        state: State,
    ) -> None:
        self.used = used
        self.consumed = consumed
        self.budget = budget
        self.due = due
        self.state = state


def _locate(
    cal: Calendar | None,
    segments: list[tuple[datetime, datetime]],
    used: list[timedelta],
    amount: timedelta,
    resume: datetime | None,
) -> datetime | None:
    """The instant the clock has counted ``amount`` of business time.

    Walks the closed running intervals; past them, counts on from
    ``resume`` (None: the clock never counts further, so never).
    """
    if cal is None:
        return None
    counted = _ZERO
    for (start, _end), length in zip(segments, used, strict=True):
        if counted + length >= amount:
            return cal.add(start, amount - counted).astimezone(UTC)
        counted += length
    if resume is None:
        return None
    return cal.add(resume, amount - counted).astimezone(UTC)


_PlanThresholds = tuple[tuple[Threshold, float, timedelta], ...]
# Thresholds by id() of a plan and a metric name, the plan kept alive as in _SPECS.
_THRESHOLDS: dict[tuple[int, str], tuple[EscalationPlan, _PlanThresholds]] = {}


def _thresholds(plan: EscalationPlan, metric: str) -> _PlanThresholds:
    """The plan's thresholds that watch ``metric``: (threshold, share of target, offset).

    A threshold that names no metric, in a plan that names none, watches every metric.
    """
    cached = _THRESHOLDS.get((id(plan), metric))
    if cached is not None and cached[0] is plan:
        return cached[1]
    found = tuple(
        (th, th.percent / 100, timedelta(seconds=th.offset_seconds))
        for th in plan.thresholds
        if plan.metric_of(th) in (None, metric)
    )
    if len(_THRESHOLDS) >= 1024:
        _THRESHOLDS.clear()
    _THRESHOLDS[(id(plan), metric)] = (plan, found)
    return found


# -------------------------------------------------------------------- metrics


class _Metric:
    """One metric's clock over a ticket's life: the current cycle and past ones."""

    __slots__ = ("spec", "cycle", "history", "event_paused")

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.cycle: _Cycle | None = None
        self.history: list[_Cycle] = []
        self.event_paused = False

    def on_event(self, event: TicketEvent, at: datetime, status: str, timeline: _Timeline) -> None:
        spec = self.spec
        if event.type in spec.types:
            if _matches(spec.pause, event):
                self.event_paused = True
            if _matches(spec.resume, event):
                self.event_paused = False
            paused = self.event_paused or status in spec.pause_statuses
            cycle = self.cycle
            if cycle is not None and cycle.active:
                if _matches(spec.stop, event):
                    cycle.stop(at, "met")
                elif _matches(spec.cancel, event):
                    cycle.stop(at, "cancelled")
            may_start = status not in spec.inactive_statuses
            if may_start and _matches(spec.reset, event):
                if cycle is not None and cycle.active:
                    cycle.stop(at, "cancelled")
                self._new_cycle(at, paused, timeline)
            elif may_start and _matches(spec.start, event):
                if cycle is None:
                    self._new_cycle(at, paused, timeline)
                elif spec.kind == "periodic":
                    if cycle.active:
                        cycle.stop(at, "met")  # the start of the next update meets this one
                    self._new_cycle(at, paused, timeline)
            elif event.type == "reopened" and cycle is not None and not cycle.active:
                if spec.on_reopen == "resume":
                    cycle.reopen(at, paused)
                    timeline.retarget(cycle, spec.name, at)  # the target may have changed
                elif spec.on_reopen == "new_cycle":
                    self._new_cycle(at, paused, timeline)
        else:
            paused = self.event_paused or status in spec.pause_statuses
        cycle = self.cycle
        if cycle is not None and cycle.active:
            if paused:
                cycle.pause(at)
            else:
                cycle.run(at)

    def _new_cycle(self, at: datetime, paused: bool, timeline: _Timeline) -> None:
        number = 1
        if self.cycle is not None:
            self.history.append(self.cycle)
            number = self.cycle.number + 1
        target = timeline.decision.targets.get(self.spec.name)
        calendar = timeline.calendar(target.calendar) if target else None
        self.cycle = _Cycle(number, at, target, calendar, paused)

    def status(self, at: datetime, plan: EscalationPlan | None, paused_now: bool) -> MetricStatus:
        spec = self.spec
        history = tuple(c.record() for c in self.history)
        counts = {"met": 0, "breached": 0, "cancelled": 0}
        for record in history:
            counts[record.outcome] += 1
        cycle = self.cycle
        if cycle is None:
            return MetricStatus(
                metric=spec.name,
                kind=spec.kind,
                state="not_started",
                active=False,
                paused=paused_now,
                cycle=0,
                target=None,
                target_seconds=None,
                calendar=None,
                started_at=None,
                target_since=None,
                due_at=None,
                met_at=None,
                breached_at=None,
                cancelled_at=None,
                elapsed_seconds=0.0,
                paused_seconds=0.0,
                remaining_seconds=None,
                percent_used=None,
            )
        m = cycle.measure(at)
        paused_time = cycle.paused_time(at)
        budget = m.budget
        thresholds: tuple[ThresholdInstant, ...] = ()
        if plan is not None and budget is not None:
            resume = cycle.open_at or (at if cycle.active else None)
            found = []
            for threshold, share, offset in _thresholds(plan, spec.name):
                amount = budget * share + offset
                if amount == budget and cycle.active:
                    instant = m.due  # the 100 % threshold is the due time
                else:
                    instant = _locate(cycle.calendar, cycle.segments, m.used, amount, resume)
                found.append(
                    ThresholdInstant(
                        at=threshold.at,
                        percent=threshold.percent,
                        offset_seconds=threshold.offset_seconds,
                        instant=instant,
                        reached=instant is not None and instant <= at,
                    )
                )
            thresholds = tuple(found)
        target = cycle.target
        return MetricStatus(
            metric=spec.name,
            kind=spec.kind,
            state=m.state,
            active=cycle.active,
            paused=cycle.active and cycle.open_at is None,
            cycle=cycle.number,
            target=target.target if target else None,
            target_seconds=budget.total_seconds() if budget is not None else None,
            calendar=target.calendar if target else None,
            started_at=cycle.started_at,
            target_since=cycle.since,
            due_at=m.due,
            met_at=cycle.stopped_at if cycle.outcome == "met" else None,
            breached_at=m.due if m.state == "breached" else None,
            cancelled_at=cycle.stopped_at if cycle.outcome == "cancelled" else None,
            elapsed_seconds=m.consumed.total_seconds(),
            paused_seconds=paused_time.total_seconds(),
            remaining_seconds=(budget - m.consumed).total_seconds() if budget is not None else None,
            percent_used=(100 * (m.consumed / budget)) if budget else None,
            thresholds=thresholds,
            cycles_met=counts["met"],
            cycles_breached=counts["breached"],
            cycles_cancelled=counts["cancelled"],
            history=history,
        )


# ------------------------------------------------------------------- timeline


def _event_error(event: TicketEvent, message: str) -> EventError:
    return EventError(message, path=f"event {event.event_id}")


class _Timeline:
    """The state after replaying a ticket's events in order: ticket, decision, clocks."""

    __slots__ = ("policy", "ticket", "status", "decision", "metrics", "_calendars")

    def __init__(self, policy: ClockPolicy, created: TicketEvent, at: datetime) -> None:
        self.policy = policy
        self.ticket = _ticket_from(created)
        self.status = self.ticket.status
        self._calendars: dict[str, Calendar] = {}
        self.decision = policy.decide(self.ticket)
        self.metrics = [_Metric(spec) for spec in _specs(policy.metrics(self.decision))]
        for metric in self.metrics:
            metric.on_event(created, at, self.status, self)

    def calendar(self, name: str) -> Calendar:
        calendar = self._calendars.get(name)
        if calendar is None:
            calendar = self._calendars[name] = self.policy.calendar(self.decision, name)
        return calendar

    def current_ticket(self) -> Ticket:
        if self.ticket.status == self.status:
            return self.ticket
        return self.ticket.model_copy(update={"status": self.status})

    def advance(self, event: TicketEvent, at: datetime) -> None:
        kind = event.type
        fields = event.fields
        before = self.status
        if kind in _FIELD_EVENTS:
            status = fields.get("status")
            if status is not None:
                self.status = str(status)
            if len(fields) > (status is not None):
                changes = {k: v for k, v in fields.items() if k != "status"}
                ticket = _updated_ticket(self.ticket, changes, event)
                if ticket != self.ticket:
                    self.ticket = ticket
                    self._redecide(at)
        elif kind in _IMPLIED_STATUS:
            self.status = str(fields.get("status", _IMPLIED_STATUS[kind]))
        # A metric hears an event of a type it names, or any change of status
        # (which may pause or run it); otherwise nothing about it can change.
        moved = self.status != before
        for metric in self.metrics:
            if moved or kind in metric.spec.types:
                metric.on_event(event, at, self.status, self)

    def _redecide(self, at: datetime) -> None:
        decision = self.policy.decide(self.current_ticket())
        if decision == self.decision:
            return
        self.decision = decision
        self._calendars = {}
        specs = _specs(self.policy.metrics(decision))
        known = {m.spec.name: m for m in self.metrics}
        self.metrics = [known.get(spec.name) or _Metric(spec) for spec in specs]
        for metric in self.metrics:
            cycle = metric.cycle
            if cycle is not None and cycle.active:
                self.retarget(cycle, metric.spec.name, at)

    def retarget(self, cycle: _Cycle, name: str, at: datetime) -> None:
        """Give an open cycle the current decision's target, if that changed."""
        target = self.decision.targets.get(name)
        if target != cycle.target:
            calendar = self.calendar(target.calendar) if target else None
            cycle.retarget(at, target, calendar, self.policy.retarget(self.decision))

    def status_of(self, at: datetime) -> dict[str, MetricStatus]:
        plan = self.policy.escalation_plan(self.decision)
        return {
            metric.spec.name: metric.status(at, plan, self._paused(metric))
            for metric in self.metrics
        }

    def _paused(self, metric: _Metric) -> bool:
        return metric.event_paused or self.status in metric.spec.pause_statuses


def _ticket_from(created: TicketEvent) -> Ticket:
    data: dict[str, Any] = {"id": created.ticket_id, "created_at": created.at}
    extra: dict[str, Any] = {}
    for key, value in created.fields.items():
        if key in _TICKET_ATTRS:
            data[key] = value
        elif key == "fields" and isinstance(value, dict):
            extra.update(value)
        elif key in ("id", "created_at"):
            continue  # the event's own ticket_id and instant are the ticket's
        else:
            extra[key] = value
    data["fields"] = extra
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        raise _event_error(
            created, f"the created event does not carry a valid ticket: {exc}"
        ) from None


def _updated_ticket(ticket: Ticket, changes: dict[str, Any], event: TicketEvent) -> Ticket:
    for key in ("id", "created_at"):
        if key in changes:
            raise _event_error(event, f"{key} of a ticket cannot change")
    data = dict(ticket.__dict__)
    fields = dict(ticket.fields)
    for key, value in changes.items():
        if key in _TICKET_ATTRS:
            data[key] = value
        elif key == "fields" and isinstance(value, dict):
            fields.update(value)
        else:
            fields[key] = value
    data["fields"] = fields
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        raise _event_error(event, f"the event makes the ticket invalid: {exc}") from None


# ---------------------------------------------------------------- ticket clock

_Key = tuple[datetime, int, str, str]


class TicketClock:
    """The clocks of one ticket, fed event by event.

    ``apply`` events in any order (an out-of-order event makes the next
    ``status`` replay the ticket from its creation); ``status(at)`` counts
    only the events up to ``at``. Applying a prefix of the events and then
    the rest gives the same statuses as applying them all at once.
    """

    __slots__ = ("policy", "_ticket_id", "_events", "_keys", "_timeline", "_applied", "_created")

    def __init__(self, policy: ClockPolicy, ticket_id: str | None = None) -> None:
        self.policy = policy
        self._ticket_id = ticket_id
        self._events: dict[str, TicketEvent] = {}
        self._keys: list[_Key] = []  # sorted replay order of all events
        self._timeline: _Timeline | None = None
        self._applied = 0  # how many of _keys the timeline has replayed
        self._created: TicketEvent | None = None

    @property
    def ticket_id(self) -> str | None:
        """The ticket's id (from the first event when not given)."""
        return self._ticket_id

    @property
    def events(self) -> list[TicketEvent]:
        """The distinct events applied so far, in replay order."""
        return [self._events[key[3]] for key in self._keys]

    def event(self, event_id: str) -> TicketEvent | None:
        """The applied event with this id, or None."""
        return self._events.get(event_id)

    @property
    def ticket(self) -> Ticket:
        """The ticket as its events so far left it."""
        return self._replayed().current_ticket()

    @property
    def latest(self) -> datetime:
        """The instant (in UTC) of the ticket's latest event."""
        self._require_created()
        return self._keys[-1][0]

    @property
    def decision(self) -> Decision:
        """The policy's current decision for the ticket."""
        return self._replayed().decision

    def apply(self, event: TicketEvent) -> None:
        """Add one event; raise EventError for an event this ticket can't have."""
        self._check(event)
        events = self._events
        seen = events.get(event.event_id)
        if seen is not None:
            if seen != event:
                raise _event_error(event, "this event id was given twice with different content")
            return
        key = event_order_key(event)
        at = key[0]
        keys = self._keys
        created = self._created
        if event.type == "created":
            if created is not None:
                raise _event_error(
                    event, f"ticket {event.ticket_id} already has created event {created.event_id}"
                )
            if keys and keys[0][0] < at:
                first = events[keys[0][3]]
                raise _event_error(first, f"happens before the ticket's creation at {event.at}")
            self._created = event
        elif created is not None and at < keys[0][0]:
            raise _event_error(event, f"happens before the ticket's creation at {created.at}")
        events[event.event_id] = event
        if keys and key < keys[-1]:
            bisect.insort(keys, key)
            self._timeline = None  # replay from creation at the next read
            return
        keys.append(key)
        if self._timeline is not None and self._applied == len(keys) - 1:
            self._advance(event, at)
        elif event.type == "created" and len(keys) == 1:
            self._replayed()  # the created event, first of all

    def apply_all(self, events: Iterable[TicketEvent]) -> TicketClock:
        """Apply each event in turn; return self."""
        for event in events:
            self.apply(event)
        return self

    def status(self, at: datetime) -> dict[str, MetricStatus]:
        """Each metric's status at ``at``, counting the events up to ``at``.

        Before the ticket's creation there is nothing to report: ``{}``.
        Instants in the statuses are in UTC.
        """
        at = require_aware(at, "at").astimezone(UTC)
        self._require_created()
        keys = self._keys
        if at < keys[-1][0]:
            upto = bisect.bisect_right(keys, at, key=lambda key: key[0])
            if upto == 0:
                return {}
            earlier = TicketClock(self.policy, self._ticket_id)
            for key in keys[:upto]:
                earlier.apply(self._events[key[3]])
            return earlier.status(at)
        return self._replayed().status_of(at)

    def _check(self, event: TicketEvent) -> None:
        if self._ticket_id is None:
            self._ticket_id = event.ticket_id
        elif event.ticket_id != self._ticket_id:
            raise _event_error(event, f"is for ticket {event.ticket_id}, not {self._ticket_id}")
        tz = event.at.tzinfo
        if tz is None or tz.utcoffset(event.at) is None:
            raise _event_error(event, f"instant {event.at.isoformat()} has no timezone")

    def _require_created(self) -> TicketEvent:
        if self._created is None:
            raise EventError(
                f"ticket {self._ticket_id} has no created event", path=f"ticket {self._ticket_id}"
            )
        return self._created

    def _advance(self, event: TicketEvent, at: datetime) -> None:
        assert self._timeline is not None
        try:
            self._timeline.advance(event, at)
        except BaseException:
            self._timeline = None  # half-applied: replay from creation next time
            raise
        self._applied += 1

    def _replayed(self) -> _Timeline:
        if self._timeline is None:
            created = self._require_created()
            keys, events = self._keys, self._events
            self._timeline = _Timeline(self.policy, created, keys[0][0])
            self._applied = 1
            for key in keys[1:]:
                self._advance(events[key[3]], key[0])
        return self._timeline


def status_at(
    events: Iterable[TicketEvent], at: datetime, policy: ClockPolicy
) -> dict[str, MetricStatus]:
    """Each metric's status at ``at`` for one ticket's events (any order, duplicates once)."""
    return TicketClock(policy).apply_all(events).status(at)
