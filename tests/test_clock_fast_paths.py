"""The clock's fast paths give what the plain ones would.

The clock builds its statuses without validating them again, counts in
integer microseconds and matches event rules compiled per event type;
``read_events`` parses each line in one pass. These tests hold those paths
to the same results as the validating, plain ones.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from test_clock import METRICS, PLAN, ExamplePolicy, t, timeline
from test_clock_properties import PAUSES, STEPS, instants, timelines

from slaengine.clock import MetricStatus, status_at
from slaengine.errors import EventError
from slaengine.metric import MetricDefinition
from slaengine.replay import read_events
from slaengine.ticket import TicketEvent

#: The example metrics plus one that starts only on a custom event (so it is
#: often not started) and pauses, resumes and resets on events.
MORE_METRICS = {
    **METRICS,
    "workaround": MetricDefinition.model_validate(
        {
            "start": "escalated",
            "stop": [{"type": "workaround", "fields": {"ok": True}}],
            "pause": ["customer_replied"],
            "resume": [{"type": "agent_replied", "fields": {"public": False}}],
            "reset": ["severity_changed"],
            "cancel": "closed",
        }
    ),
}
POLICIES = [
    ExamplePolicy("from_start", MORE_METRICS),
    ExamplePolicy("from_change", MORE_METRICS),
    ExamplePolicy("from_start", METRICS, plan=None),
]
MORE_STEPS = [
    ("escalated", {}),
    ("workaround", {"ok": True}),
    ("workaround", {"ok": False}),
    ("closed", {}),
]


def _exact(value: Any) -> Any:
    """A value with the type of every part spelled out (so 0 and 0.0 differ)."""
    if isinstance(value, BaseModel):
        return (type(value).__name__, {k: _exact(v) for k, v in value.__dict__.items()})
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_exact(v) for v in value])
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.utcoffset())
    return (type(value).__name__, value)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), policy=st.sampled_from(POLICIES))
def test_statuses_are_the_models_validation_would_build(
    data: st.DataObject, policy: ExamplePolicy
) -> None:
    events = data.draw(timelines(STEPS + PAUSES + MORE_STEPS))
    at = data.draw(instants(events))
    for status in status_at(events, at, policy).values():
        # validated from the fields the status counts as given (the rest default)
        validated = MetricStatus.model_validate(status.model_dump(exclude_unset=True))
        assert _exact(status) == _exact(validated)
        assert status.model_dump_json() == validated.model_dump_json()
        assert status.model_fields_set == validated.model_fields_set


def test_a_status_built_without_validation_still_copies_and_compares_as_a_model() -> None:
    events = timeline(("Mon 23 Nov 09:00", "created", {"severity": "high"}))
    status = status_at(events, t("Mon 23 Nov 10:00"), ExamplePolicy())["resolution"]
    copy = status.model_copy(update={"state": "met"})
    assert copy.state == "met" and status.state == "running"
    assert status.model_copy() == status
    assert "state" in copy.model_fields_set
    # the set of given fields is shared by statuses: a copy must not change it for the others
    policy = ExamplePolicy("from_start", MORE_METRICS)
    not_started = status_at(events, t("Mon 23 Nov 10:00"), policy)["workaround"]
    assert not_started.state == "not_started" and "history" not in not_started.model_fields_set
    assert "history" in not_started.model_copy(update={"history": ()}).model_fields_set
    again = status_at(events, t("Mon 23 Nov 11:00"), policy)["workaround"]
    assert "history" not in again.model_fields_set
    assert "history" not in not_started.model_fields_set
    with pytest.raises(ValueError, match="frozen"):
        status.state = "met"  # type: ignore[misc]


def test_a_met_cycle_that_used_its_whole_budget_reports_the_due_time_at_100_percent() -> None:
    events = timeline(
        ("Mon 23 Nov 09:00", "created", {"severity": "urgent"}),
        ("Mon 23 Nov 13:30", "resolved"),
    )
    status = status_at(events, t("Mon 23 Nov 18:00"), ExamplePolicy())["resolution"]
    assert status.state == "breached"
    assert [th.instant for th in status.thresholds] == [
        t("Mon 23 Nov 11:00").astimezone(UTC),
        t("Mon 23 Nov 13:00").astimezone(UTC),
        None,  # 100% + 2h: the clock stopped at 13:30, before 15:00
    ]
    assert status.thresholds[1].instant == status.due_at == status.breached_at


def test_every_field_of_a_field_rule_must_match() -> None:
    metrics = {
        "email_reply": MetricDefinition.model_validate(
            {"stop": [{"type": "agent_replied", "fields": {"public": True, "channel": "email"}}]}
        )
    }
    policy = ExamplePolicy(metrics=metrics, plan=PLAN)
    created = ("Mon 23 Nov 09:00", "created", {"severity": "urgent"})
    public_chat = ("Mon 23 Nov 09:10", "agent_replied", {"public": True, "channel": "chat"})
    public_email = ("Mon 23 Nov 09:20", "agent_replied", {"public": True, "channel": "email"})
    at = t("Mon 23 Nov 09:30")
    assert status_at(timeline(created, public_chat), at, policy)["email_reply"].state == "running"
    met = status_at(timeline(created, public_chat, public_email), at, policy)["email_reply"]
    assert met.state == "met" and met.met_at == t("Mon 23 Nov 09:20")


def test_a_plain_rule_beside_a_field_rule_matches_any_event_of_its_type() -> None:
    metrics = {
        "any_reply": MetricDefinition.model_validate(
            {"stop": [{"type": "agent_replied", "fields": {"public": True}}, "agent_replied"]}
        )
    }
    events = timeline(
        ("Mon 23 Nov 09:00", "created", {"severity": "urgent"}),
        ("Mon 23 Nov 09:10", "agent_replied", {"public": False}),
    )
    status = status_at(events, t("Mon 23 Nov 09:30"), ExamplePolicy(metrics=metrics))
    assert status["any_reply"].met_at == t("Mon 23 Nov 09:10")


def test_instants_before_1970_are_counted_exactly() -> None:
    # Epoch microseconds are negative there; nothing may take 0 or less as "no instant".
    created = datetime(1969, 12, 31, 23, 0, tzinfo=UTC)
    events = [
        TicketEvent(
            ticket_id="T1", event_id="e1", at=created, type="created", fields={"severity": "urgent"}
        ),
        TicketEvent(
            ticket_id="T1", event_id="e2", at=created + timedelta(hours=1), type="resolved"
        ),
    ]
    status = status_at(events, created + timedelta(hours=9), ExamplePolicy())["resolution"]
    assert status.started_at == created
    assert status.met_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert status.due_at == created + timedelta(hours=4)
    assert status.elapsed_seconds == 3600.0 and status.state == "met"


def test_a_clock_started_at_the_epoch_itself_counts_from_it() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)  # 0 microseconds: an instant, not "none"
    events = [
        TicketEvent(
            ticket_id="T1", event_id="e1", at=epoch, type="created", fields={"severity": "urgent"}
        )
    ]
    status = status_at(events, epoch + timedelta(hours=1), ExamplePolicy())["resolution"]
    assert status.started_at == epoch and status.due_at == epoch + timedelta(hours=4)
    assert status.elapsed_seconds == 3600.0 and status.paused_seconds == 0.0
    assert [th.instant for th in status.thresholds][:2] == [
        epoch + timedelta(hours=2),
        epoch + timedelta(hours=4),
    ]


def _read(text: str) -> list[TicketEvent]:
    return list(read_events(io.BytesIO(text.encode()), "events.jsonl"))


LINE = '{"ticket_id": "T1", "event_id": "e1", "at": "2026-11-23T09:00:00+08:00", "type": "created"}'


def test_read_events_skips_blank_lines_and_takes_crlf_endings() -> None:
    events = _read(f"\n{LINE}\r\n   \n\t\r\n{LINE.replace('e1', 'e2')}")
    assert [e.event_id for e in events] == ["e1", "e2"]
    assert events[0].at == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_read_events_gives_the_same_event_as_validating_the_parsed_json() -> None:
    line = (
        '{"ticket_id": "T1", "event_id": "e1", "at": "2026-11-23T09:00:00.123456-05:00", '
        '"type": "status_changed", "fields": {"status": "on_hold", "n": 1, "x": 1.5, '
        '"tags": ["a"], "nested": {"k": null}}}'
    )
    [event] = _read(line)
    assert event == TicketEvent.model_validate(json.loads(line))


def test_read_events_names_the_line_that_is_not_json() -> None:
    with pytest.raises(EventError, match=r"events.jsonl:2: not a JSON event: Invalid JSON"):
        _read(f"{LINE}\n{{oops\n")


def test_read_events_names_the_line_that_is_not_an_object() -> None:
    with pytest.raises(EventError, match=r"events.jsonl:3: event: Input should be an object"):
        _read(f"{LINE}\n\n[1, 2]\n")
