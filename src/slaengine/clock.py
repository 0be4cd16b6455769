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
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from slaengine.decision import Decision, MetricTarget
from slaengine.errors import EventError
from slaengine.escalation import EscalationPlan, Threshold
from slaengine.metric import EventCondition, MetricDefinition
from slaengine.ticket import Ticket, TicketEvent, require_aware
from slaengine.unchecked import trusted

if TYPE_CHECKING:
    from slaengine.calendar import Calendar, EpochArithmetic

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

#: A rule's alternatives, each a tuple of (field, value) pairs that must all
#: be equal; True when any event of the type matches, False when none does.
_Rule = tuple[tuple[tuple[str, Any], ...], ...] | bool
_MISSING = object()


class _Roles:
    """What an event of one type does to a metric, in the order the clock checks.

    ``hits(fields)`` answers pause, resume, stop, cancel, reset, start at
    once (one call per event instead of a lookup per role); only the rules
    that look at fields are evaluated.
    """

    __slots__ = ("fixed", "checks")

    def __init__(self, rules: tuple[_Rule, ...]) -> None:
        self.fixed = tuple(rule is True for rule in rules)
        self.checks = tuple((i, rule) for i, rule in enumerate(rules) if not isinstance(rule, bool))

    def hits(self, fields: Mapping[str, Any]) -> Sequence[bool]:
        if not self.checks:
            return self.fixed
        hits = list(self.fixed)
        for i, alternatives in self.checks:
            hits[i] = _any(alternatives, fields)
        return hits


def _any(alternatives: tuple[tuple[tuple[str, Any], ...], ...], fields: Mapping[str, Any]) -> bool:
    for pairs in alternatives:
        for key, value in pairs:
            if fields.get(key, _MISSING) != value:
                break
        else:
            return True
    return False


def _rule(conditions: list[EventCondition], kind: str) -> _Rule:
    alternatives = tuple(tuple(c.fields.items()) for c in conditions if c.type == kind)
    if not alternatives:
        return False
    return True if () in alternatives else alternatives


class _Spec:
    """A MetricDefinition compiled for matching: ``roles`` by event type."""

    __slots__ = (
        "name",
        "kind",
        "roles",
        "pause_statuses",
        "inactive_statuses",
        "on_reopen",
    )

    def __init__(self, name: str, definition: MetricDefinition) -> None:
        self.name = name
        self.kind = definition.kind
        self.pause_statuses = frozenset(definition.pause_statuses)
        self.inactive_statuses = frozenset(definition.inactive_statuses)
        self.on_reopen = definition.on_reopen
        d = definition
        checked = (d.pause, d.resume, d.stop, d.cancel, d.reset, d.start)
        types = {c.type for conditions in checked for c in conditions}
        if self.on_reopen != "none":
            types.add("reopened")
        self.roles = {
            kind: _Roles(tuple(_rule(conditions, kind) for conditions in checked)) for kind in types
        }


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

# Inside the clocks, instants are integer microseconds since the epoch (UTC)
# and durations integer microseconds: the calendar counts in them too, and
# integer arithmetic is several times cheaper than datetime arithmetic.
# Datetimes are made only for the statuses handed out.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000


try:  # the same conversions through the datetime C API, where compiled (see setup.py)
    from slaengine._instants import epoch_us as _us
    from slaengine._instants import utc as _utc
except ImportError:

    def _us(t: datetime) -> int:
        """Epoch microseconds of an aware datetime (exact)."""
        return (t - _EPOCH) // _ONE_US

    def _utc(us: int) -> datetime:
        return _EPOCH + _ONE_US * us


def _utc_or_none(us: int | None) -> datetime | None:
    return None if us is None else _utc(us)


class _Cycle:
    """One cycle of a metric's clock: running intervals and the target they count against.

    Instants are epoch microseconds. ``used`` holds the business time of each
    closed running interval (``segments``) on the cycle's calendar,
    ``counted`` its sum, ``ran`` their wall-clock total.
    """

    __slots__ = (
        "number",
        "started_at",
        "since",
        "segments",
        "used",
        "counted",
        "ran",
        "open_at",
        "stopped_at",
        "outcome",
        "target",
        "calendar",
        "arithmetic",
        "_budget",
        "_record",
    )

    def __init__(
        self,
        number: int,
        at: int,
        target: MetricTarget | None,
        calendar: Calendar | None,
        paused: bool,
    ) -> None:
        self.number = number
        self.started_at = at
        self.since = at
        self.segments: list[tuple[int, int]] = []
        self.used: list[int] = []
        self.counted = 0
        self.ran = 0
        self.open_at: int | None = None if paused else at
        self.stopped_at: int | None = None
        self.outcome: Literal["met", "cancelled"] | None = None
        self.target = target
        self.calendar = calendar
        self.arithmetic = calendar.arithmetic if calendar is not None else None
        self._budget: int | None = None
        self._record: CycleRecord | None = None

    def pause(self, at: int) -> None:
        start = self.open_at
        if start is not None:
            self.segments.append((start, at))
            if self.arithmetic is not None:
                length = self.arithmetic.elapsed(start, at)
                self.used.append(length)
                self.counted += length
            self.ran += at - start
            self.open_at = None

    def stop(self, at: int, outcome: Literal["met", "cancelled"]) -> None:
        self.pause(at)
        self.stopped_at = at
        self.outcome = outcome

    def reopen(self, at: int, paused: bool) -> None:
        self.stopped_at = None
        self.outcome = None
        if not paused:
            self.open_at = at

    def retarget(
        self,
        at: int,
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
            self.ran = 0
            self.since = at
            self.open_at = at if running else None
        self.target = target
        self.calendar = calendar
        self.arithmetic = arithmetic = calendar.arithmetic if calendar is not None else None
        self.used = [arithmetic.elapsed(a, b) for a, b in self.segments] if arithmetic else []
        self.counted = sum(self.used)
        self._budget = None

    def paused_time(self, at: int) -> int:
        """Wall-clock time since ``since`` during which the clock did not count."""
        end = at if self.stopped_at is None else self.stopped_at
        running = self.ran
        if self.open_at is not None:
            running += end - self.open_at
        return end - self.since - running

    def budget(self) -> int | None:
        """The target as business time, working days converted from ``since``."""
        if self._budget is None and self.target is not None and self.calendar is not None:
            if self.target.seconds is not None:
                self._budget = self.target.seconds * _US_PER_S
            elif self.target.days is not None:
                cal, since = self.calendar, _utc(self.since)
                end = cal.add_days(since, self.target.days)
                self._budget = cal.elapsed(since, end) // _ONE_US
        return self._budget

    def measure(self, at: int) -> _Measure:
        """Business time used, due time and state at ``at`` (not before the last event)."""
        arithmetic = self.arithmetic
        open_at = self.open_at
        consumed = self.counted
        if open_at is not None and arithmetic is not None:
            consumed += arithmetic.elapsed(open_at, at)
        budget = self.budget()
        end = at if self.stopped_at is None else self.stopped_at
        due = None
        if budget is not None:
            # Resume point for a due not reached in the closed intervals: the
            # open interval's start, else the stop (or status) instant.
            resume = open_at if open_at is not None else end
            due = _locate(arithmetic, self.segments, self.used, budget, resume)
        outcome = self.outcome
        if outcome is not None:  # met or cancelled
            state: State = "breached" if due is not None and end > due else outcome
        elif due is not None and at > due:
            state = "breached"
        else:
            state = "paused" if open_at is None else "running"
        return _Measure(consumed, budget, due, state)

    def record(self) -> CycleRecord:
        """This (finished) cycle as a history entry; computed once."""
        if self._record is None:
            assert self.stopped_at is not None
            m = self.measure(self.stopped_at)
            outcome: Outcome = "breached" if m.state == "breached" else self.outcome or "cancelled"
            due_at = _utc_or_none(m.due)
            values = {
                "cycle": self.number,
                "outcome": outcome,
                "started_at": _utc(self.started_at),
                "stopped_at": _utc(self.stopped_at),
                "target": self.target.target if self.target else None,
                "due_at": due_at,
                "breached_at": due_at if outcome == "breached" else None,
                "elapsed_seconds": m.consumed / _US_PER_S,
            }
            self._record = trusted(CycleRecord, _ALL_RECORD_FIELDS, values)
        return self._record


class _Measure:
    __slots__ = ("consumed", "budget", "due", "state")

    def __init__(self, consumed: int, budget: int | None, due: int | None, state: State) -> None:
        self.consumed = consumed
        self.budget = budget
        self.due = due
        self.state = state


def _locate(
    arithmetic: EpochArithmetic | None,
    segments: list[tuple[int, int]],
    used: list[int],
    amount: int,
    resume: int | None,
) -> int | None:
    """The instant the clock has counted ``amount`` of business time.

    Walks the closed running intervals; past them, counts on from
    ``resume`` (None: the clock never counts further, so never).
    """
    if arithmetic is None:
        return None
    counted = 0
    for i, length in enumerate(used):  # used[i] is the business time of segments[i]
        if counted + length >= amount:
            return arithmetic.add(segments[i][0], amount - counted)
        counted += length
    if resume is None:
        return None
    return arithmetic.add(resume, amount - counted)


#: A plan's thresholds on one metric: (threshold, the business microseconds
#: it falls at for a budget).
_Amounts = tuple[tuple[Threshold, int], ...]
# By id() of a plan, metric name and budget, the plan kept alive as in _SPECS.
_THRESHOLDS: dict[tuple[int, str, int], tuple[EscalationPlan, _Amounts]] = {}


def _thresholds(plan: EscalationPlan, metric: str, budget: int) -> _Amounts:
    """Where the plan's thresholds that watch ``metric`` fall on a ``budget`` (microseconds).

    A threshold that names no metric, in a plan that names none, watches every metric.
    """
    cached = _THRESHOLDS.get((id(plan), metric, budget))
    if cached is not None and cached[0] is plan:
        return cached[1]
    target = _ONE_US * budget
    found = tuple(
        # timedelta * float rounds to the microsecond (half to even)
        (th, (target * (th.percent / 100) + timedelta(seconds=th.offset_seconds)) // _ONE_US)
        for th in plan.thresholds
        if plan.metric_of(th) in (None, metric)
    )
    if len(_THRESHOLDS) >= 1024:
        _THRESHOLDS.clear()
    _THRESHOLDS[(id(plan), metric, budget)] = (plan, found)
    return found


# -------------------------------------------------------------------- metrics

_ALL_STATUS_FIELDS = set(MetricStatus.model_fields)
#: A status that never started is built as the fields it names (no cycle counts).
_NOT_STARTED_FIELDS = _ALL_STATUS_FIELDS - {
    "thresholds",
    "cycles_met",
    "cycles_breached",
    "cycles_cancelled",
    "history",
}
_ALL_THRESHOLD_FIELDS = set(ThresholdInstant.model_fields)
_ALL_RECORD_FIELDS = set(CycleRecord.model_fields)


class _Metric:
    """One metric's clock over a ticket's life: the current cycle and past ones."""

    __slots__ = ("spec", "cycle", "history", "event_paused")

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.cycle: _Cycle | None = None
        self.history: list[_Cycle] = []
        self.event_paused = False

    def on_event(
        self, kind: str, fields: Mapping[str, Any], at: int, status: str, timeline: _Timeline
    ) -> None:
        spec = self.spec
        roles = spec.roles.get(kind)
        if roles is not None:
            pause, resume, stop, cancel, reset, start = roles.hits(fields)
            if pause:
                self.event_paused = True
            if resume:
                self.event_paused = False
            paused = self.event_paused or status in spec.pause_statuses
            cycle = self.cycle
            if cycle is not None and cycle.stopped_at is None:
                if stop:
                    cycle.stop(at, "met")
                elif cancel:
                    cycle.stop(at, "cancelled")
            may_start = status not in spec.inactive_statuses
            if may_start and reset:
                if cycle is not None and cycle.stopped_at is None:
                    cycle.stop(at, "cancelled")
                self._new_cycle(at, paused, timeline)
            elif may_start and start:
                if cycle is None:
                    self._new_cycle(at, paused, timeline)
                elif spec.kind == "periodic":
                    if cycle.stopped_at is None:
                        cycle.stop(at, "met")  # the start of the next update meets this one
                    self._new_cycle(at, paused, timeline)
            elif kind == "reopened" and cycle is not None and cycle.stopped_at is not None:
                if spec.on_reopen == "resume":
                    cycle.reopen(at, paused)
                    timeline.retarget(cycle, spec.name, at)  # the target may have changed
                elif spec.on_reopen == "new_cycle":
                    self._new_cycle(at, paused, timeline)
        else:
            paused = self.event_paused or status in spec.pause_statuses
        cycle = self.cycle
        if cycle is not None and cycle.stopped_at is None:
            if paused:
                cycle.pause(at)
            elif cycle.open_at is None:
                cycle.open_at = at

    def _new_cycle(self, at: int, paused: bool, timeline: _Timeline) -> None:
        number = 1
        if self.cycle is not None:
            self.history.append(self.cycle)
            number = self.cycle.number + 1
        target = timeline.decision.targets.get(self.spec.name)
        calendar = timeline.calendar(target.calendar) if target else None
        self.cycle = _Cycle(number, at, target, calendar, paused)

    def status(self, at: int, plan: EscalationPlan | None, paused_now: bool) -> MetricStatus:
        spec = self.spec
        cycle = self.cycle
        if cycle is None:
            values = {
                "metric": spec.name,
                "kind": spec.kind,
                "state": "not_started",
                "active": False,
                "paused": paused_now,
                "cycle": 0,
                "target": None,
                "target_seconds": None,
                "calendar": None,
                "started_at": None,
                "target_since": None,
                "due_at": None,
                "met_at": None,
                "breached_at": None,
                "cancelled_at": None,
                "elapsed_seconds": 0.0,
                "paused_seconds": 0.0,
                "remaining_seconds": None,
                "percent_used": None,
                "thresholds": (),
                "cycles_met": 0,
                "cycles_breached": 0,
                "cycles_cancelled": 0,
                "history": (),
            }
            return trusted(MetricStatus, _NOT_STARTED_FIELDS, values)
        history: tuple[CycleRecord, ...] = ()
        met = breached = cancelled = 0
        if self.history:
            history = tuple([c.record() for c in self.history])
            for record in history:
                if record.outcome == "met":
                    met += 1
                elif record.outcome == "breached":
                    breached += 1
                else:
                    cancelled += 1
        m = cycle.measure(at)
        budget, consumed, due, state = m.budget, m.consumed, m.due, m.state
        active = cycle.stopped_at is None
        thresholds: tuple[ThresholdInstant, ...] = ()
        if plan is not None and budget is not None:
            open_at = cycle.open_at
            resume = open_at if open_at is not None else (at if active else None)
            found = []
            for threshold, amount in _thresholds(plan, spec.name, budget):
                if amount == budget and (active or consumed >= budget):
                    instant = due  # the 100 % threshold is the due time
                elif not active and amount > consumed:
                    instant = None  # the cycle stopped before counting that far
                else:
                    instant = _locate(cycle.arithmetic, cycle.segments, cycle.used, amount, resume)
                values = {
                    "at": threshold.at,
                    "percent": threshold.percent,
                    "offset_seconds": threshold.offset_seconds,
                    "instant": _utc_or_none(instant),
                    "reached": instant is not None and instant <= at,
                }
                found.append(trusted(ThresholdInstant, _ALL_THRESHOLD_FIELDS, values))
            thresholds = tuple(found)
        target = cycle.target
        due_at = _utc_or_none(due)
        stopped_at = _utc_or_none(cycle.stopped_at)
        started_at = _utc(cycle.started_at)
        values = {
            "metric": spec.name,
            "kind": spec.kind,
            "state": state,
            "active": active,
            "paused": active and cycle.open_at is None,
            "cycle": cycle.number,
            "target": target.target if target is not None else None,
            "target_seconds": budget / _US_PER_S if budget is not None else None,
            "calendar": target.calendar if target is not None else None,
            "started_at": started_at,
            "target_since": started_at if cycle.since == cycle.started_at else _utc(cycle.since),
            "due_at": due_at,
            "met_at": stopped_at if cycle.outcome == "met" else None,
            "breached_at": due_at if state == "breached" else None,
            "cancelled_at": stopped_at if cycle.outcome == "cancelled" else None,
            "elapsed_seconds": consumed / _US_PER_S,
            "paused_seconds": cycle.paused_time(at) / _US_PER_S,
            "remaining_seconds": (budget - consumed) / _US_PER_S if budget is not None else None,
            "percent_used": (100 * (consumed / budget)) if budget else None,
            "thresholds": thresholds,
            "cycles_met": met,
            "cycles_breached": breached,
            "cycles_cancelled": cancelled,
            "history": history,
        }
        return trusted(MetricStatus, _ALL_STATUS_FIELDS, values)


# ------------------------------------------------------------------- timeline


def _event_error(event: TicketEvent, message: str) -> EventError:
    return EventError(message, path=f"event {event.event_id}")


class _Timeline:
    """The state after replaying a ticket's events in order: ticket, decision, clocks."""

    __slots__ = ("policy", "ticket", "status", "decision", "metrics", "_calendars")

    def __init__(self, policy: ClockPolicy, created: TicketEvent, at: int) -> None:
        self.policy = policy
        self.ticket = _ticket_from(created)
        self.status = self.ticket.status
        self._calendars: dict[str, Calendar] = {}
        self.decision = policy.decide(self.ticket)
        self.metrics = [_Metric(spec) for spec in _specs(policy.metrics(self.decision))]
        for metric in self.metrics:
            metric.on_event(created.type, created.fields, at, self.status, self)

    def calendar(self, name: str) -> Calendar:
        calendar = self._calendars.get(name)
        if calendar is None:
            calendar = self._calendars[name] = self.policy.calendar(self.decision, name)
        return calendar

    def current_ticket(self) -> Ticket:
        if self.ticket.status == self.status:
            return self.ticket
        return self.ticket.model_copy(update={"status": self.status})

    def advance(self, event: TicketEvent, at: int) -> None:
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
            if moved or kind in metric.spec.roles:
                metric.on_event(kind, fields, at, self.status, self)

    def _redecide(self, at: int) -> None:
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
            if cycle is not None and cycle.stopped_at is None:
                self.retarget(cycle, metric.spec.name, at)

    def retarget(self, cycle: _Cycle, name: str, at: int) -> None:
        """Give an open cycle the current decision's target, if that changed."""
        target = self.decision.targets.get(name)
        if target != cycle.target:
            calendar = self.calendar(target.calendar) if target else None
            cycle.retarget(at, target, calendar, self.policy.retarget(self.decision))

    def status_of(self, at: int) -> dict[str, MetricStatus]:
        plan = self.policy.escalation_plan(self.decision)
        return {
            metric.spec.name: metric.status(at, plan, self._paused(metric))
            for metric in self.metrics
        }

    def _paused(self, metric: _Metric) -> bool:
        return metric.event_paused or self.status in metric.spec.pause_statuses


# Ticket.model_validate without its Python frame (called per ticket and per change).
_validate_ticket = Ticket.__pydantic_validator__.validate_python


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
        return _validate_ticket(data)
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
        return _validate_ticket(data)
    except ValidationError as exc:
        raise _event_error(event, f"the event makes the ticket invalid: {exc}") from None


# ---------------------------------------------------------------- ticket clock

#: Replay order: (epoch microseconds, type rank, type, event id), as event_order_key.
_Key = tuple[int, int, str, str]


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
        return _utc(self._keys[-1][0])

    @property
    def decision(self) -> Decision:
        """The policy's current decision for the ticket."""
        return self._replayed().decision

    def apply(self, event: TicketEvent) -> None:
        """Add one event; raise EventError for an event this ticket can't have."""
        if self._ticket_id is None:
            self._ticket_id = event.ticket_id
        elif event.ticket_id != self._ticket_id:
            raise _event_error(event, f"is for ticket {event.ticket_id}, not {self._ticket_id}")
        tz = event.at.tzinfo
        if tz is None or tz.utcoffset(event.at) is None:
            raise _event_error(event, f"instant {event.at.isoformat()} has no timezone")
        events = self._events
        seen = events.get(event.event_id)
        if seen is not None:
            if seen != event:
                raise _event_error(event, "this event id was given twice with different content")
            return
        kind = event.type
        key = (_us(event.at), _RANK.get(kind, _CUSTOM_RANK), kind, event.event_id)
        at = key[0]
        keys = self._keys
        created = self._created
        if kind == "created":
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
        elif kind == "created" and len(keys) == 1:
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
        at_us = _us(require_aware(at, "at"))
        self._require_created()
        keys = self._keys
        if at_us < keys[-1][0]:
            upto = bisect.bisect_right(keys, at_us, key=lambda key: key[0])
            if upto == 0:
                return {}
            earlier = TicketClock(self.policy, self._ticket_id)
            for key in keys[:upto]:
                earlier.apply(self._events[key[3]])
            return earlier.status(at)
        return self._replayed().status_of(at_us)

    def _require_created(self) -> TicketEvent:
        if self._created is None:
            raise EventError(
                f"ticket {self._ticket_id} has no created event", path=f"ticket {self._ticket_id}"
            )
        return self._created

    def _advance(self, event: TicketEvent, at: int) -> None:
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
