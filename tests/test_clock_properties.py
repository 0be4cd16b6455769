"""Properties of the SLA clocks over generated ticket timelines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_clock import ExamplePolicy, t

from slaengine.clock import MetricStatus, TicketClock, status_at
from slaengine.ticket import TicketEvent

BASE = t("Mon 23 Nov 00:00")
POLICIES = {mode: ExamplePolicy(mode) for mode in ("from_start", "from_change")}

#: Events a ticket goes through besides its creation (no pause statuses: the
#: pause property adds those itself).
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("agent_replied", {"public": True}),
    ("agent_replied", {"public": False}),
    ("customer_replied", {}),
    ("severity_changed", {"severity": "urgent"}),
    ("severity_changed", {"severity": "high"}),
    ("severity_changed", {"severity": "normal"}),
    ("resolved", {}),
    ("reopened", {}),
]
PAUSES: list[tuple[str, dict[str, Any]]] = [
    ("status_changed", {"status": "pending_customer"}),
    ("status_changed", {"status": "on_hold"}),
    ("status_changed", {"status": "open"}),
]

minutes = st.integers(min_value=0, max_value=10 * 24 * 60)


def _event(number: int, at: datetime, kind: str, fields: dict[str, Any]) -> TicketEvent:
    return TicketEvent(ticket_id="T1", event_id=f"e{number}", at=at, type=kind, fields=fields)


@st.composite
def timelines(draw: st.DrawFn, steps: list[tuple[str, dict[str, Any]]]) -> list[TicketEvent]:
    """A created event and up to 10 later ones, in time order."""
    created_at = BASE + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    severity = draw(st.sampled_from(["urgent", "high", "normal"]))
    events = [_event(0, created_at, "created", {"severity": severity})]
    offsets = sorted(draw(st.lists(minutes, max_size=10)))
    for number, offset in enumerate(offsets, start=1):
        kind, fields = draw(st.sampled_from(steps))
        events.append(_event(number, created_at + timedelta(minutes=offset), kind, fields))
    return events


def instants(events: list[TicketEvent]) -> st.SearchStrategy[datetime]:
    start = events[0].at
    return st.integers(0, 12 * 24 * 60).map(lambda m: start + timedelta(minutes=m))


common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(data=st.data(), mode=st.sampled_from(sorted(POLICIES)))
def test_the_order_of_arrival_does_not_change_the_result(data: st.DataObject, mode: str) -> None:
    events = data.draw(timelines(STEPS + PAUSES))
    at = data.draw(instants(events))
    arrival = data.draw(st.permutations(events))
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=3))
    policy = POLICIES[mode]
    assert status_at(arrival + duplicates, at, policy) == status_at(events, at, policy)


@common
@given(data=st.data(), mode=st.sampled_from(sorted(POLICIES)))
def test_replaying_a_prefix_then_the_rest_equals_replaying_all(
    data: st.DataObject, mode: str
) -> None:
    events = data.draw(timelines(STEPS + PAUSES))
    at = data.draw(instants(events))
    arrival = data.draw(st.permutations(events))
    split = data.draw(st.integers(0, len(arrival)))
    policy = POLICIES[mode]
    clock = TicketClock(policy).apply_all(arrival[:split])
    if split and any(e.type == "created" for e in arrival[:split]):
        clock.status(at)  # read the state half-way: it must not leak into the end result
    clock.apply_all(arrival[split:])
    assert clock.status(at) == status_at(events, at, policy)


def _status_before(events: list[TicketEvent], at: datetime) -> str:
    status = "new"
    for event in events:
        if event.at < at and event.type in ("resolved", "reopened"):
            status = "resolved" if event.type == "resolved" else "open"
    return status


def _no_earlier_breach(paused: MetricStatus, plain: MetricStatus) -> None:
    assert paused.cycles_breached <= plain.cycles_breached
    if paused.state == "breached" and paused.cycle == plain.cycle:
        assert plain.state == "breached"
        assert plain.breached_at is not None and paused.breached_at is not None
        assert plain.breached_at <= paused.breached_at
    comparable = paused.active and plain.active and paused.cycle == plain.cycle
    if comparable and plain.state != "breached" and paused.due_at and plain.due_at:
        assert plain.due_at <= paused.due_at


@common
@given(data=st.data(), mode=st.sampled_from(sorted(POLICIES)))
def test_pausing_never_makes_a_metric_breach_earlier(data: st.DataObject, mode: str) -> None:
    events = data.draw(timelines(STEPS))
    created_at = events[0].at
    start, length = data.draw(minutes), data.draw(st.integers(1, 3 * 24 * 60))
    pause_from = created_at + timedelta(minutes=start)
    pause_to = pause_from + timedelta(minutes=length)
    # A pure pause: the ticket is open before it and goes back to open after.
    assume(_status_before(events, pause_from) in ("new", "open"))
    assume(
        not any(
            pause_from <= e.at <= pause_to and e.type in ("resolved", "reopened") for e in events
        )
    )
    kind, fields = data.draw(st.sampled_from(PAUSES[:2]))
    paused_events = events + [
        _event(100, pause_from, kind, fields),
        _event(101, pause_to, "status_changed", {"status": "open"}),
    ]
    at = data.draw(instants(events))
    policy = POLICIES[mode]
    plain = status_at(events, at, policy)
    paused = status_at(paused_events, at, policy)
    for name, status in paused.items():
        _no_earlier_breach(status, plain[name])
