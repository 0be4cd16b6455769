"""slaengine diff: the impact of a new version on sample tickets, and the rule-level diff.

Expected figures for the shipped rulesets are computed here from the YAML
files themselves (targets per severity, the gold modifier, calendar
arithmetic), not copied from the report.
"""

from __future__ import annotations

import functools
import json
import re
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from slaengine.cli import main
from slaengine.duration import parse_duration
from slaengine.impact import (
    ImpactInputError,
    Side,
    compare,
    diff_rulesets,
    open_versions,
    render_html,
    render_text,
)
from slaengine.library import load_ruleset_file
from slaengine.ruleset import CompiledRuleset
from tests.conftest import MINIMAL, RULESETS

TICKETS = RULESETS / "samples" / "tickets.jsonl"


def sample_tickets() -> list[tuple[str, dict]]:
    lines = TICKETS.read_text(encoding="utf-8").splitlines()
    return [(f"{TICKETS}:{n}", json.loads(line)) for n, line in enumerate(lines, 1) if line.strip()]


def contracts() -> dict[str, dict]:
    data = yaml.safe_load((RULESETS / "contracts.yaml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in data["contracts"]}


def compare_shipped(engine, name: str, old: str, new: str):
    library = engine.library
    sides = [Side(engine, library.get(name, version)) for version in (old, new)]
    return compare(*sides, sample_tickets(), library)


# -- expectations from the YAML ---------------------------------------------------


@functools.cache
def shipped_version(name: str, version: str) -> tuple[dict, CompiledRuleset]:
    """The YAML document of a shipped version, and its calendars (through the compiled form)."""
    path = RULESETS / name / f"{version}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")), load_ruleset_file(path)


def expected_targets(name: str, version: str, ticket: dict, tier: str) -> dict[str, datetime]:
    """metric -> due time, read from the YAML: the severity's rule, then the modifiers."""
    doc, compiled = shipped_version(name, version)
    severities = [v["value"] for v in doc["vocabularies"]["severity"]]
    (rule,) = [
        r for r in doc["tables"][0]["rules"] if ticket["severity"] in _listed(r["when"]["severity"])
    ]
    targets = dict(rule["then"]["targets"])
    calendar_name = rule["then"]["calendar"]
    for modifier in doc["tables"][2]["rules"]:
        when, rank = modifier["when"], severities.index(ticket["severity"])
        if "targets" not in modifier["then"]:
            continue
        ok = all(
            (key == "tier" and value == tier)
            or (key == "channel" and ticket.get("channel") in value)
            or (key == "severity" and rank <= severities.index(value["at_least"]))
            for key, value in when.items()
        )
        if ok:
            targets.update(modifier["then"]["targets"])
    calendar = compiled.calendars[calendar_name]
    created = datetime.fromisoformat(ticket["created_at"])
    due = {}
    for metric, text in targets.items():
        d = parse_duration(text)
        due[metric] = (
            calendar.add_days(created, d.days)
            if d.days
            else calendar.add(created, timedelta(seconds=d.seconds))
        )
    return due


def _listed(value):
    return value if isinstance(value, list) else [value]


def expected_shifts(name: str, old: str, new: str) -> dict[str, list[float]]:
    """metric -> due-time shifts in hours of the tickets of ``name`` whose due time moves."""
    by_contract = contracts()
    shifts: dict[str, list[float]] = {}
    for _, ticket in sample_tickets():
        contract = by_contract[ticket["contract"]]
        if contract["ruleset"] != name:
            continue
        before = expected_targets(name, old, ticket, contract["tier"])
        after = expected_targets(name, new, ticket, contract["tier"])
        assert before.keys() == after.keys()  # neither shipped change adds or drops a metric
        for metric in before:
            hours = (after[metric] - before[metric]).total_seconds() / 3600
            if hours:
                shifts.setdefault(metric, []).append(hours)
    return shifts


def judged_count(name: str) -> int:
    by_contract = contracts()
    return sum(by_contract[t["contract"]]["ruleset"] == name for _, t in sample_tickets())


# -- shipped versions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [("standard-support", "1.0.0", "2.0.0"), ("premium-7x24", "1.0.0", "1.1.0")],
)
def test_due_time_shifts_per_metric_match_the_yaml(shipped, name, old, new):
    report = compare_shipped(shipped, name, old, new)
    expected = expected_shifts(name, old, new)
    assert report.tickets_judged == judged_count(name)
    assert report.tickets_read == len(sample_tickets())
    assert report.tickets_skipped == report.tickets_read - report.tickets_judged
    summary = {m.metric: m for m in report.metrics}
    assert summary.keys() == expected.keys()
    for metric, hours in expected.items():
        tightened = summary[metric].tightened
        assert all(h < 0 for h in hours)  # both shipped changes only tighten
        assert summary[metric].loosened is None
        assert tightened is not None
        assert tightened.tickets == len(hours)
        assert tightened.median_hours == pytest.approx(statistics.median(hours))
        assert tightened.max_hours == pytest.approx(min(hours))


def test_standard_support_2_tightens_five_tickets(shipped):
    report = compare_shipped(shipped, "standard-support", "1.0.0", "2.0.0")
    # 8 standard-support tickets; urgent and serious targets tightened in 2.0.0.
    assert (report.tickets_judged, report.tickets_changed) == (8, 5)
    resolution = next(m for m in report.metrics if m.metric == "resolution")
    assert (resolution.tightened.tickets, resolution.tightened.median_hours) == (5, -24.0)
    assert {(c.old, c.new, c.tickets) for c in resolution.transitions} == {
        ("3d in business", "2d in business", 4),
        ("8h in around-the-clock", "6h in around-the-clock", 1),
    }
    # Only targets move: priority, calendar, route and plan are the same in both.
    assert report.changes == []


def test_gold_first_response_is_unchanged_because_the_modifier_sets_it_in_both(shipped):
    report = compare_shipped(shipped, "standard-support", "1.0.0", "2.0.0")
    gold_serious = next(t for t in report.tickets if t.ticket_id == "INC-1007")
    assert [c.metric for c in gold_serious.targets] == ["resolution"]


def test_premium_1_1_changes_only_the_urgent_ticket(shipped):
    report = compare_shipped(shipped, "premium-7x24", "1.0.0", "1.1.0")
    (impact,) = report.tickets
    assert impact.ticket_id == "INC-1001"
    assert impact.source == f"{TICKETS}:1"
    shifts = {c.metric: c.shift_seconds / 3600 for c in impact.targets}
    # Urgent on the 7x24 calendar: the shift is the difference of the targets.
    doc_old, doc_new = (
        yaml.safe_load((RULESETS / "premium-7x24" / f"{v}.yaml").read_text(encoding="utf-8"))
        for v in ("1.0.0", "1.1.0")
    )
    urgent_old = doc_old["tables"][0]["rules"][0]["then"]["targets"]
    urgent_new = doc_new["tables"][0]["rules"][0]["then"]["targets"]
    for metric, hours in shifts.items():
        delta = (
            parse_duration(urgent_new[metric]).seconds - parse_duration(urgent_old[metric]).seconds
        )
        assert hours == delta / 3600
    # first_response changed in the YAML (15m -> 10m) but the phone modifier gives 10m in both.
    assert urgent_old["first_response"] != urgent_new["first_response"]
    assert sorted(shifts) == ["resolution", "workaround"]


def test_two_files_give_the_same_report_as_two_named_versions(shipped):
    by_name = compare_shipped(shipped, "premium-7x24", "1.0.0", "1.1.0")
    with open_versions(
        str(RULESETS / "premium-7x24" / "1.0.0.yaml"),
        str(RULESETS / "premium-7x24" / "1.1.0.yaml"),
        RULESETS,
    ) as (old, new, library):
        by_file = compare(old, new, sample_tickets(), library)
    assert by_file == by_name


# -- rule-level diff ----------------------------------------------------------------


def test_rule_diff_of_shipped_versions_names_the_changed_target_keys(shipped):
    old = shipped.library.get("standard-support", "1.0.0")
    new = shipped.library.get("standard-support", "2.0.0")
    diff = diff_rulesets(old, new)
    docs = [yaml.safe_load(Path(rs.source).read_text(encoding="utf-8")) for rs in (old, new)]
    expected = {}
    for a, b in zip(docs[0]["tables"][0]["rules"], docs[1]["tables"][0]["rules"], strict=True):
        keys = [
            f"targets.{m}"
            for m in a["then"]["targets"]
            if a["then"]["targets"][m] != b["then"]["targets"].get(m)
        ]
        if keys:
            expected[a["name"]] = keys
    assert {r.rule: r.then for r in diff.rules} == expected
    assert all(r.change == "changed" and r.when == [] and r.moved is None for r in diff.rules)
    assert diff.definitions == []


VIP = "        when: {fields.vip: true}\n        then: {route: {queue: vip}}\n"
RULES_OLD = (
    MINIMAL
    + """\
  - name: routing
    hit: collect
    rules:
      - name: vip
"""
    + VIP
    + """\
      - name: night
        when: {local_hour: {lt: 8}}
        then: {tags: [night]}
"""
)


def test_rule_diff_reports_added_removed_changed_and_reordered_rules(write):
    new_text = (
        RULES_OLD.replace("version: 1.0.0", "version: 2.0.0")
        .replace("when: {severity: urgent}", "when: {severity: [urgent]}")
        .replace(
            "      - name: vip\n" + VIP,
            "",
        )
        + "      - name: vip-2\n"
        + VIP
    )
    # swap the two targets rules
    new_text = re.sub(
        r"(      - name: urgent\n.*?\n.*?\n)(      - name: general\n.*?\n.*?\n)",
        r"\2\1",
        new_text,
        flags=re.S,
    )
    new_text = new_text.replace("severity: [urgent, general]", "severity: [urgent, general, low]")
    old = load_ruleset_file(write("old.yaml", RULES_OLD))
    new = load_ruleset_file(write("new.yaml", new_text))
    diff = diff_rulesets(old, new)
    rows = {(r.rule, r.change): r for r in diff.rules}
    assert set(rows) == {
        ("general", "changed"),
        ("urgent", "changed"),
        ("vip-2", "added"),
        ("vip", "removed"),
    }
    assert rows[("urgent", "changed")].when == ["severity"]
    assert rows[("urgent", "changed")].moved == "now after 'general'"
    assert rows[("general", "changed")].moved == "now before 'urgent'"
    assert (
        rows[("vip-2", "added")].new_line == new_text.splitlines().index("      - name: vip-2") + 1
    )
    assert [(d.section, d.name, d.change) for d in diff.definitions] == [
        ("vocabularies", "severity", "changed")
    ]


# -- decisions that change in other ways -----------------------------------------------

NEW_MINIMAL = (
    MINIMAL.replace("version: 1.0.0", "version: 1.1.0")
    .replace(
        "priority: P3, calendar: always, targets: {resolution: 2d}",
        "priority: P2, calendar: always, targets: {resolution: 3d, first_response: 1h}",
    )
    .replace("metrics:", "metrics:\n  first_response: {stop: [resolved]}")
    .replace(
        "      - name: urgent\n        when: {severity: urgent}",
        "      - name: urgent\n        when: {severity: urgent, channel: phone}",
    )
)


def tiny_report(write, tickets):
    old, new = write("old.yaml", MINIMAL), write("new.yaml", NEW_MINIMAL)
    with open_versions(str(old), str(new), old.parent / "no-such-dir") as sides:
        return compare(sides[0], sides[1], tickets, sides[2])


def ticket(n: int, severity: str, **more) -> tuple[str, dict]:
    record = {"id": f"T-{n}", "severity": severity, "created_at": "2026-03-02T10:00:00+08:00"}
    return f"t.jsonl:{n}", {**record, **more}


def test_priority_added_metric_loosened_target_and_lost_decision_are_counted(write):
    report = tiny_report(
        write,
        [
            ticket(1, "general"),
            ticket(2, "general"),
            ticket(3, "urgent"),
            ticket(4, "urgent", channel="phone"),
            ticket(5, "urgent"),
        ],
    )
    assert report.tickets_changed == 4
    changes = {(c.field, c.old, c.new): c.tickets for c in report.changes}
    assert changes[("priority", "P3", "P2")] == 2
    (lost,) = [c for c in report.changes if c.field == "decision"]
    assert (lost.old, lost.tickets) == ("decided", 2)  # the same reason for T-3 and T-5
    assert "no rule of table 'targets' matched" in lost.new
    (resolution,) = [m for m in report.metrics if m.metric == "resolution"]
    # 2d -> 3d of the 7x24 calendar: one day later
    assert (resolution.loosened.tickets, resolution.loosened.median_hours) == (2, 24.0)
    (first_response,) = [m for m in report.metrics if m.metric == "first_response"]
    assert (first_response.added, first_response.tightened) == (2, None)


def test_text_report_has_counts_examples_and_rule_changes(write):
    report = tiny_report(write, [ticket(1, "general"), ticket(2, "general")])
    text = render_text(report, examples=1)
    assert "2 changed" in text
    assert re.search(r"resolution\s+0\s+-\s+-\s+2\s+\+24h\s+\+24h", text)
    assert "Examples (1 of 2)" in text and "T-1 (t.jsonl:1)" in text and "T-2 (" not in text
    lines = [t.splitlines().index("      - name: general") + 1 for t in (MINIMAL, NEW_MINIMAL)]
    row = next(line for line in text.splitlines() if line.startswith("changed  general"))
    assert f"{lines[0]} -> {lines[1]}" in row
    assert "priority, targets.resolution, targets.first_response" in row


def test_html_report_is_self_contained_with_an_svg_chart_and_the_counts(shipped, tmp_path):
    report = compare_shipped(shipped, "standard-support", "1.0.0", "2.0.0")
    page = render_html(report)
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    shifted = sum(1 for t in report.tickets for c in t.targets if c.shift_seconds)
    assert svg.count("<circle") == shifted
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert f"<strong>{report.tickets_changed}</strong> of {report.tickets_judged}" in page
    resolution = next(m for m in report.metrics if m.metric == "resolution")
    assert f'<td class="n tightened">{resolution.tightened.tickets}</td>' in page
    assert "<td>serious</td>" in page  # the rule-level diff


def test_html_escapes_ticket_text(write):
    report = tiny_report(write, [ticket(1, "general", id="<b>x</b>")])
    page = render_html(report)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


# -- bad input -------------------------------------------------------------------------


def test_unknown_ruleset_and_version_are_named():
    for old, message in [
        ("nope@1.0.0", "nope@1.0.0: unknown ruleset 'nope'"),
        ("standard-support@9.9.9", "has no version '9.9.9'; loaded: 1.0.0, 2.0.0"),
        ("missing.yaml", "'missing.yaml' is neither a ruleset file nor NAME@VERSION"),
    ]:
        versions = open_versions(old, "standard-support@2.0.0", RULESETS)
        with pytest.raises(ImpactInputError, match=re.escape(message)), versions:
            pass


def test_every_bad_ticket_line_is_named(write):
    with pytest.raises(ImpactInputError) as caught:
        tiny_report(
            write,
            [
                ticket(1, "general"),
                ("t.jsonl:2", ValueError("not valid JSON: Expecting value (column 1)")),
                ("t.jsonl:3", {"id": "T-3", "created_at": "2026-03-02T10:00:00+08:00"}),
                ticket(4, "unheard-of"),
            ],
        )
    problems = caught.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == ["t.jsonl:2", "t.jsonl:3", "t.jsonl:4"]
    assert "severity: required field is missing" in problems[1]
    assert "'unheard-of' is not a declared severity" in problems[2]


def test_cli_prints_table_json_and_writes_html(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(RULESETS.parent)
    html = tmp_path / "impact.html"
    argv = ["diff", "premium-7x24@1.0.0", "premium-7x24@1.1.0", "--tickets", str(TICKETS)]
    assert main([*argv, "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "tickets: 12 read, 4 judged, 8 skipped" in out
    assert "<svg " in html.read_text(encoding="utf-8")
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tickets_changed"] == 1
    assert document["diff"]["rules"][0]["rule"] == "urgent"


def test_cli_reports_a_bad_ticket_line_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(RULESETS.parent)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(TICKETS.read_text(encoding="utf-8").splitlines()[0] + "\n{oops\n")
    argv = ["diff", "premium-7x24@1.0.0", "premium-7x24@1.1.0", "--tickets", str(bad)]
    assert main(argv) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
