"""The engine on the shipped rulesets: ticket in, decision out."""

from __future__ import annotations

import concurrent.futures
from datetime import datetime

import pytest

from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import NoRuleMatched, TicketError
from slaengine.library import RulesetLibrary
from slaengine.ruleset import parse_ruleset
from slaengine.yamlsource import read_yaml
from tests.conftest import MINIMAL

SHANGHAI = "+08:00"


def ticket(**overrides):
    base = {
        "id": "T-1",
        "contract": "CN-LOTUS-RETAIL-2026",
        "severity": "serious",
        "channel": "web",
        "created_at": "2026-11-23T10:00:00+08:00",
    }
    return {**base, **overrides}


def due(decision: Decision, metric: str) -> str:
    return decision.targets[metric].due_at.isoformat()


def test_ticket_is_judged_by_the_version_in_force_at_creation(shipped):
    before = shipped.evaluate(ticket(created_at="2026-03-02T10:00:00+08:00"))
    after = shipped.evaluate(ticket(created_at="2026-11-23T10:00:00+08:00"))
    assert (before.version, before.targets["first_response"].target) == ("1.0.0", "2h")
    assert (after.version, after.targets["first_response"].target) == ("2.0.0", "1h")


def test_version_boundary_is_the_effective_instant_in_the_ruleset_zone(shipped):
    last_old = shipped.evaluate(ticket(created_at="2026-06-30T23:59:59+08:00"))
    first_new = shipped.evaluate(ticket(created_at="2026-06-30T16:00:00Z"))  # 00:00 Shanghai
    assert (last_old.version, first_new.version) == ("1.0.0", "2.0.0")


def test_pinned_contract_keeps_its_version_after_a_newer_one_takes_effect(shipped):
    d = shipped.evaluate(ticket(contract="CN-EASTWIND-MFG-2025"))
    assert d.version == "1.0.0"


def test_decision_records_name_version_and_revision(shipped):
    d = shipped.evaluate(ticket())
    rs = shipped.library.get("standard-support", "2.0.0")
    assert d.ruleset_ref == f"standard-support@2.0.0+{rs.revision}"


def test_serious_fault_on_friday_evening_is_due_on_the_cn_make_up_saturday(shipped):
    # 2026-10-10 is a Saturday worked in place of a National Day holiday.
    d = shipped.evaluate(ticket(created_at="2026-10-09T17:30:00+08:00"))
    assert due(d, "first_response") == "2026-10-10T09:30:00+08:00"


def test_consultation_before_national_day_is_answered_after_the_holiday(shipped):
    d = shipped.evaluate(ticket(severity="consultation", created_at="2026-09-30T16:00:00+08:00"))
    assert d.targets["first_response"].target == "1d"
    assert due(d, "first_response") == "2026-10-08T16:00:00+08:00"


def test_lunch_break_does_not_count(shipped):
    d = shipped.evaluate(ticket(created_at="2026-11-23T11:30:00+08:00"))  # 1h target
    assert due(d, "first_response") == "2026-11-23T13:30:00+08:00"


def test_urgent_fault_runs_on_the_7x24_clock_on_saturday_night(shipped):
    d = shipped.evaluate(ticket(severity="urgent", created_at="2026-11-21T23:40:00+08:00"))
    assert d.calendar == "around-the-clock"
    assert due(d, "first_response") == "2026-11-21T23:55:00+08:00"
    assert due(d, "resolution") == "2026-11-22T05:40:00+08:00"
    assert d.route is not None and d.route.queue == "duty-desk"


def test_collect_table_tightens_gold_response_and_tags_it(shipped):
    d = shipped.evaluate(ticket(contract="CN-NORTHWIND-LOGISTICS-2026"))
    assert d.targets["first_response"].target == "15m"
    assert d.matched_rules == ("serious", "gold-to-named-engineers", "gold-faster-answer")
    assert d.tags == ("gold",)


def test_outside_hours_fact_is_derived_from_the_business_calendar(shipped):
    night = shipped.evaluate(ticket(created_at="2026-11-23T20:00:00+08:00"))
    day = shipped.evaluate(ticket(created_at="2026-11-23T10:00:00+08:00"))
    assert "reported-outside-hours" in night.tags
    assert "reported-outside-hours" not in day.tags


def test_regex_condition_routes_security_reports(shipped):
    d = shipped.evaluate(ticket(contract="INTL-CONTOSO-2026", category="Security advisory"))
    assert "security" in d.tags and d.route.assignee == "security-officer"


def test_tier_comes_from_the_contract(shipped):
    assert shipped.evaluate(ticket(contract="CN-HUAXIA-BANK-2026")).route.group == (
        "technical-account-managers"
    )


def test_customer_with_one_contract_needs_no_contract_id(shipped):
    d = shipped.evaluate(ticket(contract=None, customer="huaxia-bank"))
    assert d.ruleset == "premium-7x24"


def test_ticket_tier_contradicting_its_contract_is_rejected(shipped):
    with pytest.raises(TicketError) as info:
        shipped.evaluate(ticket(tier="gold"))
    assert info.value.path == "tier" and "contract CN-LOTUS-RETAIL-2026" in str(info.value)


def test_unknown_severity_is_rejected_naming_the_field_and_choices(shipped):
    with pytest.raises(TicketError) as info:
        shipped.evaluate(ticket(severity="blocker"))
    assert info.value.path == "severity"
    assert "use one of urgent, serious, general, consultation" in str(info.value)


def test_naive_created_at_is_rejected(shipped):
    with pytest.raises(TicketError) as info:
        shipped.evaluate(ticket(created_at="2026-11-23T10:00:00"))
    assert info.value.path == "created_at" and "has no timezone" in str(info.value)


def test_unknown_contract_and_missing_contract_are_rejected(shipped):
    with pytest.raises(TicketError, match="unknown contract 'NOPE'"):
        shipped.evaluate(ticket(contract="NOPE"))
    with pytest.raises(TicketError, match="names no known contract"):
        shipped.evaluate(ticket(contract=None))


def test_unknown_top_level_field_is_rejected_with_a_hint(shipped):
    with pytest.raises(TicketError) as info:
        shipped.evaluate(ticket(subject="x"))
    assert info.value.path == "subject" and "under 'fields'" in str(info.value)


def test_ticket_created_before_the_first_version_is_rejected(shipped):
    with pytest.raises(TicketError, match="before standard-support@1.0.0"):
        shipped.evaluate(ticket(created_at="2025-06-01T10:00:00+08:00"))


def test_chinese_labels_are_kept(shipped):
    vocab = shipped.library.get("standard-support").model.vocabularies["severity"]
    assert [vocab.label(v) for v in ("urgent", "serious", "general", "consultation")] == [
        "紧急",
        "严重",
        "一般",
        "咨询",
    ]


def test_decision_round_trips_through_json(shipped):
    d = shipped.evaluate(ticket())
    assert Decision.model_validate_json(d.model_dump_json()) == d


def test_evaluate_many_equals_evaluate_one_by_one(shipped):
    tickets = [
        ticket(id=f"T-{i}", severity=s)
        for i, s in enumerate(["urgent", "serious", "general", "consultation"] * 3)
    ]
    assert shipped.evaluate_many(tickets) == [shipped.evaluate(t) for t in tickets]


def test_evaluate_many_names_the_position_of_a_bad_ticket(shipped):
    with pytest.raises(TicketError) as info:
        shipped.evaluate_many([ticket(), ticket(severity="blocker")])
    assert info.value.path == "[1].severity"


def test_explain_lists_every_rule_and_the_failing_test(shipped):
    x = shipped.explain(ticket(severity="general"))
    by_rule = {t.rule: t for t in x.rules}
    assert by_rule["general"].applied and by_rule["general"].line is not None
    assert by_rule["urgent"].failed == "severity eq 'urgent' — ticket has 'general'"
    assert not by_rule["gold-faster-answer"].matched
    assert len(x.rules) == 8


def test_evaluation_from_several_threads_is_consistent(shipped):
    tickets = [
        ticket(id=f"T-{i}", created_at=f"2026-11-{10 + i % 10}T{8 + i % 12:02d}:00:00+08:00")
        for i in range(200)
    ]
    expected = [shipped.evaluate(t) for t in tickets]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(shipped.evaluate, tickets))
    assert got == expected


def small_engine(text: str) -> Engine:
    return Engine(RulesetLibrary([parse_ruleset(read_yaml(text, "small.yaml"))]))


def test_first_table_without_default_and_no_match_says_so():
    text = MINIMAL.replace("[urgent, general]", "[urgent, general, low]")
    with (
        small_engine(text) as engine,
        pytest.raises(NoRuleMatched, match="no rule of table 'targets'"),
    ):
        engine.evaluate(ticket(severity="low", contract=None), ruleset="tiny")


def test_the_same_ruleset_can_be_compiled_again_after_close():
    for _ in range(3):
        with small_engine(MINIMAL) as engine:
            d = engine.evaluate(ticket(severity="urgent", contract=None), ruleset="tiny")
            assert d.priority == "P1"


def test_working_days_target_counts_working_days():
    with small_engine(MINIMAL) as engine:
        d = engine.evaluate(ticket(severity="general", contract=None), ruleset="tiny")
    assert d.targets["resolution"].days == 2
    assert d.targets["resolution"].due_at == datetime.fromisoformat("2026-11-25T10:00:00+08:00")


def test_explain_a_ticket_no_rule_applies_to_and_a_chosen_version(shipped) -> None:
    from slaengine.ruleset import parse_ruleset
    from slaengine.yamlsource import read_yaml

    text = """
name: narrow
version: 1.0.0
effective_from: 2026-01-01
timezone: UTC
vocabularies:
  severity: [urgent, general]
  priority: [P1]
calendars: {clock: always}
metrics: {resolution: {stop: [resolved]}}
tables:
  - name: only
    hit: first
    rules:
      - name: urgent-only
        when: {severity: urgent}
        then: {priority: P1, targets: {resolution: 4h}}
"""
    from slaengine.engine import Engine
    from slaengine.library import RulesetLibrary

    with Engine(RulesetLibrary([parse_ruleset(read_yaml(text, "narrow.yaml"))])) as engine:
        x = engine.explain(
            {"id": "T-9", "created_at": "2026-03-04T10:00:00Z", "severity": "general"},
            ruleset="narrow",
            version="1.0.0",
        )
    assert x.decision is None
    assert "no rule of table 'only' matched" in x.error
    [trace] = x.rules
    assert (trace.rule, trace.matched, trace.applied, trace.line) == (
        "urgent-only",
        False,
        False,
        15,
    )
    assert "severity" in trace.failed and "'general'" in trace.failed
