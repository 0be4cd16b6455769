"""SLA clocks, as worked timelines a service manager can read.

The policy below is the simplest implementation of ``ClockPolicy``: targets
by severity, two calendars (7x24 and Paris office hours with Christmas off)
and one escalation plan. Instants are written in Paris winter time (+01:00).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from slaengine.calendar import Calendar
from slaengine.clock import (
    EVENT_ORDER,
    MetricStatus,
    TicketClock,
    event_order_key,
    status_at,
)
from slaengine.decision import Decision, MetricTarget
from slaengine.errors import EventError
from slaengine.escalation import EscalationPlan
from slaengine.metric import MetricDefinition
from slaengine.ticket import Ticket, TicketEvent

PUBLIC_REPLY = {"type": "agent_replied", "fields": {"public": True}}

METRICS = {
    "first_response": MetricDefinition.model_validate(
        {"start": "created", "stop": [PUBLIC_REPLY], "cancel": ["resolved", "closed"]}
    ),
    "next_update": MetricDefinition.model_validate(
        {
            "kind": "periodic",
            "start": ["created", PUBLIC_REPLY],
            "stop": [PUBLIC_REPLY],
            "cancel": ["resolved", "closed"],
            "on_reopen": "new_cycle",
        }
    ),
    "resolution": MetricDefinition.model_validate(
        {
            "start": "created",
            "stop": "resolved",
            "pause_statuses": ["pending_customer", "on_hold"],
            "on_reopen": "resume",
        }
    ),
}

CALENDARS = {
    "always": Calendar.always(),
    "office": Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    ),
}

#: metric -> (target, calendar) per severity.
TARGETS = {
    "urgent": {
        "first_response": ("1h", "always"),
        "next_update": ("2h", "always"),
        "resolution": ("4h", "always"),
    },
    "high": {
        "first_response": ("2h", "office"),
        "next_update": ("4h", "office"),
        "resolution": ("16h", "office"),
    },
    "normal": {
        "first_response": ("4h", "office"),
        "next_update": ("8h", "office"),
        "resolution": ("2d", "office"),
    },
}

PLAN = EscalationPlan.model_validate(
    {
        "metric": "resolution",
        "thresholds": [{"at": "50%"}, {"at": "100%"}, {"at": "100%+2h"}],
    }
)


def _target(text: str, calendar: str) -> MetricTarget:
    amount, unit = int(text[:-1]), text[-1]
    if unit == "d":
        return MetricTarget(target=text, days=amount, calendar=calendar)
    return MetricTarget(target=text, seconds=amount * 3600, calendar=calendar)


class ExamplePolicy:
    """A ClockPolicy: targets by severity, a fixed ruleset version."""

    def __init__(
        self,
        retarget: Literal["from_start", "from_change"] = "from_start",
        metrics: Mapping[str, MetricDefinition] = METRICS,
        plan: EscalationPlan | None = PLAN,
    ) -> None:
        self._retarget = retarget
        self._metrics = metrics
        self._plan = plan

    def decide(self, ticket: Ticket) -> Decision:
        targets = {
            name: _target(text, calendar)
            for name, (text, calendar) in TARGETS[ticket.severity].items()
            if name in self._metrics
        }
        return Decision(
            ticket_id=ticket.id,
            ruleset="example",
            version="1",
            revision="abc",
            priority=ticket.severity,
            targets=targets,
            escalation_plan="standard" if self._plan else None,
        )

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        return self._metrics

    def calendar(self, decision: Decision, name: str) -> Calendar:
        return CALENDARS[name]

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        return self._plan

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        return self._retarget


POLICY = ExamplePolicy()


def t(text: str) -> datetime:
    """``"Mon 23 Nov 09:00"``-style instants of winter 2026 in Paris (+01:00)."""
    return datetime.strptime(f"{text} 2026 +0100", "%a %d %b %H:%M %Y %z")


def timeline(*steps: tuple[str, str, dict[str, Any]] | tuple[str, str]) -> list[TicketEvent]:
    """Events of ticket T1 from ``(instant, type[, fields])`` steps, ids e1, e2, ..."""
    events = []
    for number, step in enumerate(steps, start=1):
        at, kind = step[0], step[1]
        fields = step[2] if len(step) > 2 else {}  # type: ignore[misc]
        events.append(
            TicketEvent(ticket_id="T1", event_id=f"e{number}", at=t(at), type=kind, fields=fields)
        )
    return events


def created(at: str, severity: str = "normal", **fields: Any) -> tuple[str, str, dict[str, Any]]:
    return (at, "created", {"severity": severity, **fields})


def reply(at: str, public: bool = True) -> tuple[str, str, dict[str, Any]]:
    return (at, "agent_replied", {"public": public})


def status(at: str, policy: ExamplePolicy = POLICY, *steps: Any) -> dict[str, MetricStatus]:
    return status_at(timeline(*steps), t(at), policy)


HOUR = 3600.0

# ------------------------------------------------------------- first response


def test_a_reply_a_minute_before_due_meets_first_response() -> None:
    # Normal: 4 business hours in the office calendar, 10:00 + 4h = 14:00.
    s = status("Mon 23 Nov 15:00", POLICY, created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 13:59"))
    fr = s["first_response"]
    assert (fr.state, fr.met_at, fr.due_at) == ("met", t("Mon 23 Nov 13:59"), t("Mon 23 Nov 14:00"))
    assert fr.breached_at is None
    assert fr.remaining_seconds == 60


def test_a_reply_exactly_at_due_is_in_time() -> None:
    s = status("Mon 23 Nov 15:00", POLICY, created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 14:00"))
    assert s["first_response"].state == "met"


def test_a_reply_a_minute_after_due_breaches_first_response_at_the_due_time() -> None:
    s = status("Mon 23 Nov 15:00", POLICY, created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 14:01"))
    fr = s["first_response"]
    assert (fr.state, fr.met_at, fr.breached_at) == (
        "breached",
        t("Mon 23 Nov 14:01"),
        t("Mon 23 Nov 14:00"),
    )
    assert fr.remaining_seconds == -60
    assert not fr.active


def test_an_unanswered_ticket_is_breached_once_past_due_and_keeps_running() -> None:
    before = status("Mon 23 Nov 14:00", POLICY, created("Mon 23 Nov 10:00"))["first_response"]
    after = status("Mon 23 Nov 14:01", POLICY, created("Mon 23 Nov 10:00"))["first_response"]
    assert (before.state, before.remaining_seconds) == ("running", 0)
    assert (after.state, after.breached_at, after.active) == (
        "breached",
        t("Mon 23 Nov 14:00"),
        True,
    )


def test_a_private_note_is_not_a_response() -> None:
    s = status(
        "Mon 23 Nov 11:00",
        POLICY,
        created("Mon 23 Nov 10:00"),
        reply("Mon 23 Nov 10:30", public=False),
    )
    assert s["first_response"].state == "running"


def test_office_hours_carry_the_budget_over_the_night() -> None:
    # 15:00-17:00 counts 2h, the other 2h run Tuesday 09:00-11:00.
    s = status("Mon 23 Nov 18:00", POLICY, created("Mon 23 Nov 15:00"))
    fr = s["first_response"]
    assert fr.due_at == t("Tue 24 Nov 11:00")
    assert (fr.elapsed_seconds, fr.remaining_seconds, fr.percent_used) == (2 * HOUR, 2 * HOUR, 50)


def test_resolving_an_unanswered_ticket_cancels_first_response() -> None:
    s = status(
        "Mon 23 Nov 12:00",
        POLICY,
        created("Mon 23 Nov 10:00"),
        ("Mon 23 Nov 11:00", "resolved"),
    )
    fr = s["first_response"]
    assert (fr.state, fr.cancelled_at) == ("cancelled", t("Mon 23 Nov 11:00"))


# ------------------------------------------------------ 7x24 against office


def test_urgent_7x24_ticket_and_5x8_ticket_created_on_saturday_night() -> None:
    saturday_night = created("Sat 28 Nov 23:00", "urgent")
    urgent = status("Sun 29 Nov 01:00", POLICY, saturday_night)
    normal = status("Sun 29 Nov 01:00", POLICY, created("Sat 28 Nov 23:00", "normal"))
    # 7x24: one hour after 23:00 is midnight; two hours later it is breached.
    assert urgent["first_response"].due_at == t("Sun 29 Nov 00:00")
    assert urgent["first_response"].state == "breached"
    # 5x8: the clock waits for Monday 09:00; four hours later is 13:00.
    assert normal["first_response"].due_at == t("Mon 30 Nov 13:00")
    assert (normal["first_response"].state, normal["first_response"].elapsed_seconds) == (
        "running",
        0,
    )


# ------------------------------------------------------------------- pauses


def test_resolution_paused_twice_over_a_weekend_and_a_holiday() -> None:
    # High: 16 business hours. Christmas (Fri 25 Dec) and the weekend are off.
    steps = (
        created("Wed 23 Dec 10:00", "high"),
        ("Wed 23 Dec 12:00", "status_changed", {"status": "pending_customer"}),  # 2h used
        ("Thu 24 Dec 10:00", "status_changed", {"status": "open"}),
        ("Mon 28 Dec 10:00", "status_changed", {"status": "on_hold"}),  # +7h +1h = 10h
        ("Wed 30 Dec 09:00", "status_changed", {"status": "open"}),
    )
    paused = status("Wed 23 Dec 15:00", POLICY, *steps[:2])["resolution"]
    assert (paused.state, paused.paused, paused.elapsed_seconds) == ("paused", True, 2 * HOUR)

    s = status("Wed 30 Dec 12:00", POLICY, *steps)["resolution"]
    # Without pauses it was due Mon 28 Dec 10:00; the pauses moved it by 6h.
    assert s.due_at == t("Wed 30 Dec 15:00")
    assert (s.state, s.elapsed_seconds, s.remaining_seconds) == ("running", 13 * HOUR, 3 * HOUR)
    # Wall-clock pauses: 22h before Christmas, 47h around the second.
    assert s.paused_seconds == (22 + 47) * HOUR

    done = status("Wed 30 Dec 16:00", POLICY, *steps, ("Wed 30 Dec 14:30", "resolved"))
    assert (done["resolution"].state, done["resolution"].met_at) == ("met", t("Wed 30 Dec 14:30"))


def test_a_pause_after_the_due_time_does_not_undo_the_breach() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "urgent"),  # resolution due 13:00
        ("Mon 23 Nov 14:00", "status_changed", {"status": "pending_customer"}),
    )
    s = status("Mon 23 Nov 20:00", POLICY, *steps)["resolution"]
    assert (s.state, s.breached_at, s.paused) == ("breached", t("Mon 23 Nov 13:00"), True)


def test_a_ticket_created_waiting_on_the_customer_starts_paused() -> None:
    s = status("Mon 23 Nov 12:00", POLICY, created("Mon 23 Nov 09:00", status="pending_customer"))
    assert (s["resolution"].state, s["resolution"].elapsed_seconds) == ("paused", 0)
    assert s["first_response"].state == "running"  # not in its pause statuses


def test_pause_and_resume_events_pause_a_clock() -> None:
    metrics = {
        "resolution": MetricDefinition.model_validate(
            {
                "stop": "resolved",
                "pause": ["customer_asked_to_wait"],
                "resume": ["customer_replied"],
            }
        )
    }
    steps = (
        created("Mon 23 Nov 09:00", "urgent"),
        ("Mon 23 Nov 10:00", "customer_asked_to_wait"),
        ("Mon 23 Nov 15:00", "customer_replied"),
    )
    s = status("Mon 23 Nov 16:00", ExamplePolicy(metrics=metrics), *steps)["resolution"]
    assert (s.elapsed_seconds, s.due_at) == (2 * HOUR, t("Mon 23 Nov 18:00"))


# --------------------------------------------------------------- escalation


def test_escalation_thresholds_fall_on_the_pause_adjusted_clock() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "urgent"),  # resolution: 4h on 7x24
        ("Mon 23 Nov 10:00", "status_changed", {"status": "pending_customer"}),
        ("Mon 23 Nov 12:00", "status_changed", {"status": "open"}),
    )
    s = status("Mon 23 Nov 13:00", POLICY, *steps)["resolution"]
    found = {x.at: (x.instant, x.reached) for x in s.thresholds}
    assert found == {
        "50%": (t("Mon 23 Nov 13:00"), True),  # 1h before the pause, 1h after
        "100%": (t("Mon 23 Nov 15:00"), False),
        "100%+2h": (t("Mon 23 Nov 17:00"), False),
    }
    assert s.due_at == t("Mon 23 Nov 15:00")


def test_while_paused_future_thresholds_count_as_if_the_clock_resumed_now() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "urgent"),
        ("Mon 23 Nov 10:00", "status_changed", {"status": "pending_customer"}),
    )
    s = status("Mon 23 Nov 11:00", POLICY, *steps)["resolution"]
    assert s.due_at == t("Mon 23 Nov 14:00")
    assert [x.instant for x in s.thresholds] == [
        t("Mon 23 Nov 12:00"),
        t("Mon 23 Nov 14:00"),
        t("Mon 23 Nov 16:00"),
    ]


def test_thresholds_of_other_metrics_are_not_reported() -> None:
    s = status("Mon 23 Nov 10:00", POLICY, created("Mon 23 Nov 09:00"))
    assert s["first_response"].thresholds == ()


def test_thresholds_a_met_metric_never_reached_have_no_instant() -> None:
    s = status(
        "Mon 23 Nov 12:00",
        POLICY,
        created("Mon 23 Nov 09:00", "urgent"),
        ("Mon 23 Nov 10:00", "resolved"),
    )["resolution"]
    assert [x.instant for x in s.thresholds] == [None, None, None]


# ---------------------------------------------------------- working days


def test_a_working_days_target_counts_the_business_time_of_those_days() -> None:
    # Normal resolution: 2 working days from Thu 24 Dec 10:00 is Tue 29 Dec
    # 10:00 (Christmas and the weekend skipped): 16 business hours.
    s = status("Thu 24 Dec 11:00", POLICY, created("Thu 24 Dec 10:00"))["resolution"]
    assert (s.target, s.target_seconds, s.due_at) == ("2d", 16 * HOUR, t("Tue 29 Dec 10:00"))


# ----------------------------------------------------------- re-targeting


RAISED_AT_HOUR_3 = (
    created("Mon 23 Nov 09:00", "high"),  # resolution 16h office: due Tue 17:00
    ("Mon 23 Nov 12:00", "severity_changed", {"severity": "urgent"}),  # 4h on 7x24
)


def test_severity_raised_at_hour_3_retargets_from_the_start() -> None:
    s = status("Mon 23 Nov 12:30", ExamplePolicy("from_start"), *RAISED_AT_HOUR_3)
    res = s["resolution"]
    assert (res.target, res.calendar, res.target_since) == ("4h", "always", t("Mon 23 Nov 09:00"))
    assert (res.due_at, res.elapsed_seconds) == (t("Mon 23 Nov 13:00"), 3.5 * HOUR)
    # First response: urgent is 1h from 09:00 -- already breached at 10:00.
    fr = s["first_response"]
    assert (fr.state, fr.breached_at) == ("breached", t("Mon 23 Nov 10:00"))


def test_severity_raised_at_hour_3_retargets_from_the_change() -> None:
    s = status("Mon 23 Nov 12:30", ExamplePolicy("from_change"), *RAISED_AT_HOUR_3)
    res = s["resolution"]
    assert (res.target, res.target_since) == ("4h", t("Mon 23 Nov 12:00"))
    assert (res.due_at, res.elapsed_seconds) == (t("Mon 23 Nov 16:00"), 0.5 * HOUR)
    # First response: high was due 11:00, breached before the change; it stays so.
    fr = s["first_response"]
    assert (fr.state, fr.target, fr.breached_at) == ("breached", "2h", t("Mon 23 Nov 11:00"))


def test_from_change_gives_a_metric_not_yet_due_a_fresh_budget() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "normal"),  # first response 4h office: due 13:00
        ("Mon 23 Nov 12:00", "severity_changed", {"severity": "urgent"}),
    )
    fr = status("Mon 23 Nov 12:30", ExamplePolicy("from_change"), *steps)["first_response"]
    assert (fr.state, fr.target, fr.due_at) == ("running", "1h", t("Mon 23 Nov 13:00"))


def test_a_met_metric_keeps_its_outcome_when_the_severity_changes() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "normal"),
        reply("Mon 23 Nov 11:30"),
        ("Mon 23 Nov 12:00", "severity_changed", {"severity": "urgent"}),
    )
    fr = status("Mon 23 Nov 12:30", ExamplePolicy("from_start"), *steps)["first_response"]
    assert (fr.state, fr.target) == ("met", "4h")


def test_a_status_change_does_not_ask_for_a_new_decision() -> None:
    class Counting(ExamplePolicy):
        calls = 0

        def decide(self, ticket: Ticket) -> Decision:
            Counting.calls += 1
            return super().decide(ticket)

    steps = (
        created("Mon 23 Nov 09:00"),
        ("Mon 23 Nov 10:00", "status_changed", {"status": "pending_customer"}),
        ("Mon 23 Nov 11:00", "updated", {"product": "db"}),
    )
    clock = TicketClock(Counting()).apply_all(timeline(*steps))
    assert Counting.calls == 2  # at creation and after the product changed
    assert (clock.ticket.status, clock.ticket.product) == ("pending_customer", "db")


# -------------------------------------------------------------- reopening


REOPENED = (
    created("Mon 23 Nov 09:00", "urgent"),  # resolution 4h on 7x24
    ("Mon 23 Nov 12:00", "resolved"),  # 3h used
    ("Tue 24 Nov 09:00", "reopened"),
)


def test_reopening_resumes_resolution_where_it_stopped() -> None:
    s = status("Tue 24 Nov 09:30", POLICY, *REOPENED)["resolution"]
    assert (s.state, s.cycle, s.elapsed_seconds) == ("running", 1, 3.5 * HOUR)
    assert s.due_at == t("Tue 24 Nov 10:00")
    assert s.paused_seconds == 21 * HOUR
    assert s.met_at is None


def test_reopening_with_new_cycle_starts_resolution_afresh() -> None:
    metrics = {
        **METRICS,
        "resolution": METRICS["resolution"].model_copy(update={"on_reopen": "new_cycle"}),
    }
    s = status("Tue 24 Nov 09:30", ExamplePolicy(metrics=metrics), *REOPENED)["resolution"]
    assert (s.state, s.cycle, s.started_at) == ("running", 2, t("Tue 24 Nov 09:00"))
    assert s.due_at == t("Tue 24 Nov 13:00")
    assert s.cycles_met == 1
    assert [(h.cycle, h.outcome, h.stopped_at) for h in s.history] == [
        (1, "met", t("Mon 23 Nov 12:00"))
    ]


def test_a_resumed_cycle_counts_against_the_target_in_force_at_the_reopen() -> None:
    steps = (
        created("Mon 23 Nov 09:00", "high"),  # resolution 16h office
        ("Mon 23 Nov 12:00", "resolved"),  # 3h used, met
        ("Mon 23 Nov 13:00", "severity_changed", {"severity": "urgent"}),  # 4h on 7x24
        ("Tue 24 Nov 09:00", "reopened"),
    )
    s = status("Tue 24 Nov 09:30", POLICY, *steps)["resolution"]
    assert (s.target, s.due_at) == ("4h", t("Tue 24 Nov 10:00"))


def test_a_resumed_cycle_that_runs_out_is_breached() -> None:
    s = status("Tue 24 Nov 11:00", POLICY, *REOPENED)["resolution"]
    assert (s.state, s.breached_at) == ("breached", t("Tue 24 Nov 10:00"))


# ------------------------------------------------------------------ periodic


def test_periodic_updates_with_one_late_cycle() -> None:
    # Urgent: an update every 2 hours, around the clock.
    steps = (
        created("Mon 23 Nov 08:00", "urgent"),  # cycle 1, due 10:00
        reply("Mon 23 Nov 09:30"),  # met; cycle 2, due 11:30
        reply("Mon 23 Nov 11:00", public=False),  # a private note is no update
        reply("Mon 23 Nov 12:00"),  # late: breached at 11:30; cycle 3, due 14:00
        reply("Mon 23 Nov 13:30"),  # met; cycle 4, due 15:30
    )
    s = status("Mon 23 Nov 14:00", POLICY, *steps)["next_update"]
    assert (s.kind, s.state, s.cycle, s.due_at) == ("periodic", "running", 4, t("Mon 23 Nov 15:30"))
    assert (s.cycles_met, s.cycles_breached) == (2, 1)
    assert [(h.cycle, h.outcome, h.breached_at) for h in s.history] == [
        (1, "met", None),
        (2, "breached", t("Mon 23 Nov 11:30")),
        (3, "met", None),
    ]


def test_each_start_event_of_a_periodic_metric_meets_the_cycle_and_begins_the_next() -> None:
    # The shipped rulesets write next_update this way: any reply restarts it.
    metrics = {
        "next_update": MetricDefinition.model_validate(
            {"kind": "periodic", "start": ["created", "agent_replied"], "stop": ["resolved"]}
        )
    }
    steps = (
        created("Mon 23 Nov 08:00", "urgent"),
        reply("Mon 23 Nov 09:00", public=False),
        reply("Mon 23 Nov 11:30"),
        ("Mon 23 Nov 12:00", "resolved"),
    )
    s = status("Mon 23 Nov 18:00", ExamplePolicy(metrics=metrics), *steps)["next_update"]
    assert (s.state, s.cycle, s.met_at) == ("met", 3, t("Mon 23 Nov 12:00"))
    assert [h.outcome for h in s.history] == ["met", "breached"]


def test_resolving_ends_the_update_cycle_and_a_later_note_starts_none() -> None:
    steps = (
        created("Mon 23 Nov 08:00", "urgent"),
        ("Mon 23 Nov 09:00", "resolved"),
        reply("Mon 23 Nov 09:30"),
    )
    s = status("Mon 23 Nov 18:00", POLICY, *steps)["next_update"]
    assert (s.state, s.cycle, s.cancelled_at) == ("cancelled", 1, t("Mon 23 Nov 09:00"))


def test_reopening_starts_a_new_update_cycle() -> None:
    s = status("Tue 24 Nov 09:30", POLICY, *REOPENED)["next_update"]
    assert (s.state, s.cycle, s.due_at) == ("running", 2, t("Tue 24 Nov 11:00"))
    assert s.cycles_breached == 1  # cycle 1 was due 11:00 Monday, cancelled at 12:00


# -------------------------------------------------------- further metrics


def test_a_further_metric_is_defined_the_same_way() -> None:
    metrics = {
        "workaround_provided": MetricDefinition.model_validate(
            {"stop": [{"type": "updated", "fields": {"workaround": True}}]}
        )
    }
    policy = ExamplePolicy(metrics=metrics, plan=None)
    TARGETS["urgent"]["workaround_provided"] = ("2h", "always")
    try:
        s = status(
            "Mon 23 Nov 12:00",
            policy,
            created("Mon 23 Nov 09:00", "urgent"),
            ("Mon 23 Nov 10:30", "updated", {"workaround": True}),
        )
    finally:
        del TARGETS["urgent"]["workaround_provided"]
    assert (s["workaround_provided"].state, s["workaround_provided"].elapsed_seconds) == (
        "met",
        1.5 * HOUR,
    )


def test_a_metric_not_started_yet_says_so() -> None:
    metrics = {"handover": MetricDefinition.model_validate({"start": "escalated", "stop": "done"})}
    s = status("Mon 23 Nov 10:00", ExamplePolicy(metrics=metrics), created("Mon 23 Nov 09:00"))
    assert (s["handover"].state, s["handover"].cycle) == ("not_started", 0)


# ---------------------------------------------------------- events, order


def test_events_at_the_same_instant_replay_in_a_fixed_type_order() -> None:
    events = timeline(
        ("Mon 23 Nov 09:00", "reopened"),
        ("Mon 23 Nov 09:00", "agent_replied"),
        ("Mon 23 Nov 09:00", "created"),
        ("Mon 23 Nov 09:00", "severity_changed"),
    )
    assert [e.type for e in sorted(events, key=event_order_key)] == [
        "created",
        "severity_changed",
        "agent_replied",
        "reopened",
    ]
    assert EVENT_ORDER[0] == "created"


def test_the_same_event_twice_counts_once() -> None:
    events = timeline(created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 11:00"))
    once = status_at(events, t("Mon 23 Nov 12:00"), POLICY)
    twice = status_at(events + events, t("Mon 23 Nov 12:00"), POLICY)
    assert once == twice


def test_an_event_id_reused_for_other_content_is_an_error() -> None:
    first, second = timeline(created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 11:00"))
    clash = second.model_copy(update={"at": t("Mon 23 Nov 11:05")})
    with pytest.raises(EventError, match="event e2: .*twice with different content"):
        status_at([first, second, clash], t("Mon 23 Nov 12:00"), POLICY)


def test_an_event_before_the_creation_is_an_error_whatever_the_order() -> None:
    events = timeline(created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 09:00"))
    for order in (events, events[::-1]):
        with pytest.raises(EventError, match="event e2: happens before the ticket's creation"):
            status_at(order, t("Mon 23 Nov 12:00"), POLICY)


def test_an_event_of_another_ticket_is_an_error() -> None:
    first, second = timeline(created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 11:00"))
    stray = second.model_copy(update={"ticket_id": "T2"})
    with pytest.raises(EventError, match="event e2: is for ticket T2, not T1"):
        status_at([first, stray], t("Mon 23 Nov 12:00"), POLICY)


def test_a_ticket_without_a_created_event_is_an_error() -> None:
    with pytest.raises(EventError, match="ticket T1 has no created event"):
        status_at(timeline(reply("Mon 23 Nov 11:00")), t("Mon 23 Nov 12:00"), POLICY)


def test_two_created_events_are_an_error() -> None:
    events = timeline(created("Mon 23 Nov 10:00"), created("Mon 23 Nov 11:00"))
    with pytest.raises(EventError, match="event e2: ticket T1 already has created event e1"):
        status_at(events, t("Mon 23 Nov 12:00"), POLICY)


def test_a_naive_instant_is_an_error_naming_the_event() -> None:
    naive = TicketEvent.model_construct(
        ticket_id="T1", event_id="e1", at=datetime(2026, 11, 23, 9), type="created", fields={}
    )
    with pytest.raises(EventError, match="event e1: instant 2026-11-23T09:00:00 has no timezone"):
        TicketClock(POLICY).apply(naive)


def test_a_created_event_without_a_valid_ticket_is_an_error() -> None:
    events = timeline(("Mon 23 Nov 10:00", "created", {"tier": "gold"}))
    with pytest.raises(EventError, match="event e1: the created event does not carry a valid"):
        status_at(events, t("Mon 23 Nov 12:00"), POLICY)


def test_the_created_event_carries_the_ticket() -> None:
    events = timeline(created("Mon 23 Nov 10:00", tier="gold", region="emea"))
    ticket = TicketClock(POLICY).apply_all(events).ticket
    assert (ticket.id, ticket.created_at, ticket.tier) == ("T1", t("Mon 23 Nov 10:00"), "gold")
    assert ticket.fields == {"region": "emea"}


def test_a_status_before_the_creation_is_empty() -> None:
    assert status("Mon 23 Nov 09:00", POLICY, created("Mon 23 Nov 10:00")) == {}


def test_a_status_counts_only_the_events_up_to_its_instant() -> None:
    clock = TicketClock(POLICY).apply_all(
        timeline(created("Mon 23 Nov 10:00"), reply("Mon 23 Nov 11:00"))
    )
    assert clock.status(t("Mon 23 Nov 10:30"))["first_response"].state == "running"
    assert clock.status(t("Mon 23 Nov 11:30"))["first_response"].state == "met"


def test_a_naive_status_instant_is_an_error() -> None:
    clock = TicketClock(POLICY).apply_all(timeline(created("Mon 23 Nov 10:00")))
    with pytest.raises(ValueError, match="has no timezone"):
        clock.status(datetime(2026, 11, 23, 12))


# ------------------------------------------------------------------ models


def test_a_metric_status_survives_a_json_round_trip() -> None:
    s = status("Tue 24 Nov 09:30", POLICY, *REOPENED)
    for value in s.values():
        assert MetricStatus.model_validate_json(value.model_dump_json()) == value


def test_a_metric_status_gives_its_instants_in_utc() -> None:
    s = status("Mon 23 Nov 10:30", POLICY, created("Mon 23 Nov 10:00"))["first_response"]
    assert s.due_at is not None and s.due_at.tzinfo is UTC
    assert s.due_at == t("Mon 23 Nov 14:00")


def test_a_metric_status_is_a_frozen_value() -> None:
    s = status("Mon 23 Nov 10:30", POLICY, created("Mon 23 Nov 10:00"))["first_response"]
    with pytest.raises(ValueError):
        s.state = "met"  # type: ignore[misc]


def test_a_target_longer_than_a_century_is_refused_when_built() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 3153600000"):
        MetricTarget(target="huge", seconds=10**13, calendar="always")
    with pytest.raises(ValidationError, match="less than or equal to 36500"):
        MetricTarget(target="huge", days=10**6, calendar="always")
