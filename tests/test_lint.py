"""slaengine lint: each kind of finding in a small ruleset, with its line; silences; exit codes."""

from __future__ import annotations

import argparse
import json

from slaengine.lint import add_lint_parser, lint_command, lint_file, lint_paths
from tests.conftest import RULESETS

HEAD = """\
name: tiny
version: 1.0.0
effective_from: 2026-01-01
timezone: Asia/Shanghai
vocabularies:
  severity: [urgent, serious, general]
  tier: [gold, silver]
calendars:
  business:
    timezone: Asia/Shanghai
    hours: {mon-fri: ["09:00-18:00"]}
metrics:
  resolution: {stop: [resolved]}
tables:
"""
# Line 15 is the first table; every ruleset below is complete apart from its one defect.
TARGETS = """\
  - name: targets
    rules:
      - name: urgent
        when: {severity: urgent}
        then: {calendar: business, targets: {resolution: 4h}}
      - name: serious
        when: {severity: serious}
        then: {calendar: business, targets: {resolution: 8h}}
      - name: general
        when: {severity: general}
        then: {calendar: business, targets: {resolution: 2d}}
"""


def codes(findings):
    return [(f.code, f.line) for f in findings]


def test_a_clean_ruleset_has_no_findings(write):
    assert lint_file(write("ok.yaml", HEAD + TARGETS)) == []


WITHOUT_SERIOUS = TARGETS.replace(
    """      - name: serious
        when: {severity: serious}
        then: {calendar: business, targets: {resolution: 8h}}
""",
    "",
)


def test_a_severity_no_rule_covers_is_a_gap_at_the_table(write):
    text = HEAD + WITHOUT_SERIOUS
    findings = lint_file(write("gap.yaml", text))
    assert codes(findings) == [("SLA001", 15)]
    assert findings[0].severity == "error"
    assert "no rule matches severity=serious" in findings[0].message


def test_gaps_of_two_fields_are_folded_into_value_sets(write):
    text = HEAD + TARGETS.replace("{severity: general}", "{severity: general, tier: gold}")
    (finding,) = lint_file(write("gap.yaml", text))
    assert "severity=general, tier=silver" in finding.message


def test_a_table_with_a_default_has_no_gap(write):
    text = HEAD + WITHOUT_SERIOUS
    text += "    default: {calendar: business, targets: {resolution: 4h}}\n"
    assert lint_file(write("default.yaml", text)) == []


def test_a_rule_caught_entirely_by_earlier_rules_is_shadowed(write):
    text = HEAD + TARGETS.replace(
        "      - name: general\n",
        "      - name: urgent-gold\n"
        "        when: {severity: urgent, tier: gold}\n"
        "        then: {calendar: business, targets: {resolution: 2h}}\n"
        "      - name: general\n",
    )
    findings = lint_file(write("shadow.yaml", text))
    assert codes(findings) == [("SLA002", 23)]
    assert findings[0].rule == "urgent-gold"
    assert "'urgent' (line 17)" in findings[0].message


def test_a_rule_whose_conditions_contradict_never_matches(write):
    text = HEAD + TARGETS.replace(
        "      - name: general\n",
        "      - name: impossible\n"
        "        when: {severity: urgent, not: {severity: [urgent]}}\n"
        "        then: {calendar: business}\n"
        "      - name: general\n",
    )
    findings = lint_file(write("never.yaml", text))
    assert codes(findings) == [("SLA008", 23)]


def test_collect_rules_setting_one_target_differently_overlap_ambiguously(write):
    text = (
        HEAD
        + TARGETS
        + """\
  - name: modifiers
    hit: collect
    rules:
      - name: gold-faster
        when: {tier: gold}
        then: {targets: {resolution: 2h}}
      - name: urgent-faster
        when: {severity: urgent}
        then: {targets: {resolution: 1h}}
"""
    )
    findings = lint_file(write("overlap.yaml", text))
    assert codes(findings) == [("SLA003", 32)]
    assert findings[0].severity == "warning"
    assert "resolution: 2h then 1h" in findings[0].message
    assert "'urgent-faster', wins" in findings[0].message


def test_collect_rules_adding_tags_do_not_conflict(write):
    text = (
        HEAD
        + TARGETS
        + """\
  - name: modifiers
    hit: collect
    rules:
      - {name: tag-gold, when: {tier: gold}, then: {tags: [gold]}}
      - {name: tag-urgent, when: {severity: urgent}, then: {tags: [urgent]}}
"""
    )
    assert lint_file(write("tags.yaml", text)) == []


def test_a_calendar_nothing_uses_is_reported_where_declared(write):
    text = HEAD.replace(
        "metrics:",
        "  night:\n    timezone: Asia/Shanghai\n    hours: {mon-sun: ['20:00-23:00']}\nmetrics:",
    )
    findings = lint_file(write("unused.yaml", text + TARGETS))
    assert codes(findings) == [("SLA004", 12)]
    assert findings[0].name == "night"


def test_a_calendar_only_tested_by_in_hours_counts_as_used(write):
    text = HEAD.replace(
        "metrics:",
        "  night:\n    timezone: Asia/Shanghai\n    hours: {mon-sun: ['20:00-23:00']}\nmetrics:",
    ) + TARGETS.replace(
        "{severity: general}", "{severity: general, in_hours.night: {exists: true}}"
    )
    assert lint_file(write("in_hours.yaml", text)) == []


def test_unused_metric_and_escalation_plan_are_reported(write):
    text = HEAD.replace(
        "tables:",
        "  workaround: {stop: [resolved]}\n"
        "escalation_plans:\n"
        "  loud: {metric: resolution, thresholds: [{at: 100%}]}\n"
        "tables:",
    )
    findings = lint_file(write("unused.yaml", text + TARGETS))
    assert codes(findings) == [("SLA006", 14), ("SLA005", 16)]


def test_a_less_severe_ticket_with_a_tighter_target_contradicts_the_order(write):
    text = HEAD + TARGETS.replace("resolution: 8h", "resolution: 2h")
    findings = lint_file(write("order.yaml", text))
    assert codes(findings) == [("SLA007", 22)]
    assert findings[0].severity == "error"
    assert (
        "severity serious gets resolution 2h (business), due before the 4h (business) of the "
        "more severe urgent (rule 'urgent', line 19) whenever it is created"
    ) in findings[0].message


def test_a_target_due_earlier_only_for_some_creation_times_is_a_warning(write):
    # 1d: the next working day at the same clock time; from a Saturday that is Monday 09:00,
    # before 9h of business time from Saturday (Monday 18:00). Within hours 1d is later.
    text = HEAD + TARGETS.replace("resolution: 8h", "resolution: 1d").replace(
        "resolution: 4h", "resolution: 9h"
    )
    (finding,) = lint_file(write("days.yaml", text))
    assert (finding.code, finding.line, finding.severity) == ("SLA007", 22, "warning")
    assert "for some creation times, e.g. Sat 2026-01-10 00:00" in finding.message


def test_targets_in_different_calendars_compare_by_due_time(write):
    always = TARGETS.replace(
        "then: {calendar: business, targets: {resolution: 8h}}",
        "then: {calendar: always, targets: {resolution: 24h}}",
    )
    # 24h of 7x24 vs 4h of business time: due earlier for tickets created late on a Friday.
    (finding,) = lint_file(write("calendars.yaml", HEAD + always))
    assert (finding.code, finding.line, finding.severity) == ("SLA007", 22, "warning")
    assert "resolution 24h (always), due before the 4h (business)" in finding.message
    # 72h of 7x24 is never due before 4h of business time (nor 10 working days before it).
    later = always.replace("24h", "72h").replace("resolution: 2d", "resolution: 10d")
    assert lint_file(write("later.yaml", HEAD + later)) == []


def test_a_modifier_table_can_break_the_order_of_the_merged_decision(write):
    text = (
        HEAD
        + TARGETS
        + """\
  - name: modifiers
    hit: collect
    rules:
      - name: gold-serious
        when: {tier: gold, severity: serious}
        then: {targets: {resolution: 2h}}
"""
    )
    (finding,) = lint_file(write("merged.yaml", text))
    assert (finding.code, finding.line, finding.rule) == ("SLA007", 31, "gold-serious")
    assert finding.severity == "error"
    assert "when tier=gold" in finding.message


def test_derived_facts_are_judged_only_at_instants_that_have_them(write):
    # 4h of 7x24 from outside business hours is always due before 4h of business time,
    # which only starts at the next opening; from within hours the two are often equal.
    text = HEAD + TARGETS.replace(
        "      - name: serious\n",
        "      - name: serious-outside-hours\n"
        "        when: {severity: serious, in_hours.business: false}\n"
        "        then: {calendar: always, targets: {resolution: 4h}}\n"
        "      - name: serious\n",
    )
    (finding,) = lint_file(write("derived.yaml", text))
    assert (finding.rule, finding.severity) == ("serious-outside-hours", "error")
    assert finding.message.endswith("whenever it is created, when in_hours.business=false")


def test_a_file_that_does_not_load_is_reported_with_its_location(write):
    text = HEAD + TARGETS.replace("severity: general}", "severity: low}")
    (finding,) = lint_file(write("bad.yaml", text))
    assert (finding.code, finding.line) == ("SLA000", 24)


CONFIG_ORDER = HEAD + TARGETS.replace("resolution: 8h", "resolution: 2h")


def test_a_silence_with_a_reason_removes_the_finding(write):
    ruleset = write("order.yaml", CONFIG_ORDER)
    config = write(
        "lint.yaml",
        'ignore:\n  - {code: SLA007, rule: serious, reason: "agreed with the customer"}\n',
    )
    result = lint_paths([ruleset], config)
    assert result.findings == []
    assert [(f.code, reason) for f, reason in result.silenced] == [
        ("SLA007", "agreed with the customer")
    ]


def test_a_silence_without_a_reason_is_an_error_and_silences_nothing(write):
    ruleset = write("order.yaml", CONFIG_ORDER)
    config = write("lint.yaml", "ignore:\n  - {code: SLA007, rule: serious}\n")
    result = lint_paths([ruleset], config)
    assert codes(result.findings) == [("SLA007", 22), ("SLA010", 2)]
    assert result.findings[1].file == str(config)
    assert result.silenced == []


def test_a_silence_that_matches_nothing_is_a_warning(write):
    ruleset = write("ok.yaml", HEAD + TARGETS)
    config = write("lint.yaml", "ignore:\n  - {code: SLA002, rule: urgent, reason: old}\n")
    result = lint_paths([ruleset], config)
    assert codes(result.findings) == [("SLA011", 2)]


def test_shipped_standard_support_answers_weekend_consultations_before_general_faults():
    # A "1d" first response from a non-working day is due at the next working day's same
    # clock time (or its opening): earlier than 4h, and even 15m, of business time.
    result = lint_paths([RULESETS])
    assert result.errors == 0
    assert sorted((f.file.split("rulesets/")[1], f.code, f.line) for f in result.findings) == [
        ("standard-support/1.0.0.yaml", "SLA007", 105),
        ("standard-support/2.0.0.yaml", "SLA007", 105),
    ]
    assert all(
        "severity consultation gets first_response 1d (business)" in f.message
        for f in result.findings
    )


def run_lint(argv, capsys):
    parser = argparse.ArgumentParser(prog="slaengine")
    add_lint_parser(parser.add_subparsers(dest="command"))
    status = lint_command(parser.parse_args(["lint", *argv]))
    return status, capsys.readouterr().out


def test_lint_command_exits_1_on_errors_and_prints_file_line(write, capsys):
    path = write("order.yaml", CONFIG_ORDER)
    status, out = run_lint([str(path)], capsys)
    assert status == 1
    assert f"{path}:22: SLA007 error:" in out
    assert out.splitlines()[-1] == "1 error(s), 0 warning(s), 0 silenced"


def test_lint_command_exits_0_on_warnings_only_and_writes_json(capsys, tmp_path):
    empty = tmp_path / "no-silences.yaml"
    empty.write_text("ignore: []\n")
    status, out = run_lint([str(RULESETS), "--json", "--config", str(empty)], capsys)
    document = json.loads(out)
    assert status == 0
    assert (document["errors"], document["warnings"]) == (0, 2)
    assert set(document["findings"][0]) >= {"code", "severity", "file", "line", "message"}


def test_lint_reads_the_silences_beside_the_rulesets(capsys):
    status, out = run_lint([str(RULESETS), "--json"], capsys)
    document = json.loads(out)
    assert status == 0
    assert (document["errors"], document["warnings"]) == (0, 0)
    assert {(s["code"], s["rule"]) for s in document["silenced"]} == {("SLA007", "consultation")}
    assert all("working day" in s["reason"] for s in document["silenced"])
