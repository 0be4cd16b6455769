"""Ruleset regression suites: the YAML format, the pytest plugin and ``slaengine test``.

The plugin is tested from the outside with pytester: a pytest run in a
scratch directory holding a small ruleset library and suite files, as QA
would run ``pytest rulesets/``.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from slaengine.cli import main
from slaengine.errors import RulesetErrors
from slaengine.suite import Workspace, load_suite, run_case

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

TINY_1 = """\
name: tiny
version: 1.0.0
effective_from: 2026-01-01
timezone: Asia/Shanghai
vocabularies:
  severity: [urgent, general]
  tier: {values: [gold, silver], required: false}
calendars:
  office: {timezone: Asia/Shanghai, hours: {mon-fri: ["09:00-18:00"]}}
metrics:
  first_response: {stop: [{type: agent_replied, fields: {public: true}}]}
  resolution: {stop: [resolved], pause_statuses: [pending_customer]}
tables:
  - name: targets
    rules:
      - name: urgent
        when: {severity: urgent}
        then: {priority: P1, calendar: always, targets: {first_response: 30m, resolution: 4h}}
      - name: general
        when: {severity: general}
        then: {priority: P3, calendar: office, targets: {first_response: 4h, resolution: 2d}}
  - name: routing
    rules:
      - name: gold-desk
        when: {tier: gold}
        then: {route: {queue: gold}}
    default: {route: {queue: general}}
"""
# 1.1.0 tightens urgent resolution to 2h from 1 July.
TINY_2 = (
    TINY_1.replace("version: 1.0.0", "version: 1.1.0")
    .replace("effective_from: 2026-01-01", "effective_from: 2026-07-01")
    .replace("first_response: 30m, resolution: 4h", "first_response: 30m, resolution: 2h")
)

SUITE = """\
suite: tiny regression
ruleset: tiny
version: 1.0.0
ticket: {created_at: 2026-03-02T10:00:00+08:00}
cases:
  - name: urgent-p1
    tags: [urgent]
    ticket: {severity: urgent}
    expect:
      priority: P1
      targets: {resolution: {target: 4h, due_at: 2026-03-02T14:00:00+08:00}}
  - name: general-wrongly-expected
    ticket: {severity: general, tier: gold}
    expect:
      priority: P2
      route: {queue: gold}
  - name: by-severity
    parameters:
      - {severity: urgent, priority: P1}
      - {severity: general, priority: P3}
    ticket: {severity: "${severity}"}
    expect: {priority: "${priority}"}
  - name: waiting-on-contract-terms
    skip: the credit terms of gold are not signed yet
    ticket: {severity: general}
    expect: {priority: P3}
"""


@pytest.fixture
def library(pytester: pytest.Pytester) -> Path:
    """A ruleset directory with tiny 1.0.0 and 1.1.0 in the pytester directory."""
    # In-process runs load the plugin's package a second time: pytest warns that
    # the (already imported) slaengine package cannot be assertion-rewritten.
    pytester.makeini("[pytest]\nfilterwarnings = ignore::pytest.PytestAssertRewriteWarning\n")
    folder = pytester.path / "rulesets" / "tiny"
    folder.mkdir(parents=True)
    (folder / "1.0.0.yaml").write_text(TINY_1, encoding="utf-8")
    (folder / "1.1.0.yaml").write_text(TINY_2, encoding="utf-8")
    return folder


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in process, without hypothesis's plugin.

    pytester drops the modules an inner run imported; hypothesis's plugin
    imports hypothesis at the end of each run, seconds each time.
    """
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def run_apart(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a subprocess (for xdist), without hypothesis's plugin."""
    return pytester.runpytest_subprocess("-p", "no:hypothesispytest", *args)


def suite_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------------------ pytest plugin


def test_cases_are_collected_per_version_and_parameter_row(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    result = run(pytester, "--collect-only", "-q", "rulesets")
    result.stdout.fnmatch_lines(
        [
            "rulesets/tiny/a.sla-test.yaml::urgent-p1[[]1.0.0[]]",
            "rulesets/tiny/a.sla-test.yaml::general-wrongly-expected[[]1.0.0[]]",
            "rulesets/tiny/a.sla-test.yaml::by-severity[[]1.0.0-urgent-P1[]]",
            "rulesets/tiny/a.sla-test.yaml::by-severity[[]1.0.0-general-P3[]]",
            "rulesets/tiny/a.sla-test.yaml::waiting-on-contract-terms[[]1.0.0[]]",
            "5 tests collected*",
        ]
    )


def test_a_failure_shows_location_ticket_expected_beside_actual_and_the_trace(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    result = run(pytester, "-rs", "rulesets")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*rulesets/tiny/a.sla-test.yaml:12: case 'general-wrongly-expected' of suite "
            "'tiny regression' against tiny@1.0.0+*",
            'ticket: {"id": "general-wrongly-expected", *"severity": "general", "tier": "gold"}',
            "*FIELD*EXPECTED*ACTUAL",
            "✗ priority*P2*P3",
            "  route.queue*gold*gold",
            "rule trace (tiny@1.0.0+*",
            "  table targets:",
            "    line 16: urgent: no  (severity eq 'urgent' — ticket has 'general')",
            "    line 19: general: APPLIED",
            "    line 24: gold-desk: APPLIED",
            "SKIPPED*the credit terms of gold are not signed yet",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_k_selects_by_case_name_and_by_tag_and_m_by_tag(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    run(pytester, "rulesets", "-k", "by-severity").assert_outcomes(passed=2)
    run(pytester, "rulesets", "-k", "urgent").assert_outcomes(passed=2)  # tag + row id
    run(pytester, "rulesets", "-m", "urgent", "--strict-markers").assert_outcomes(passed=1)


def test_junit_xml_names_each_case_and_carries_the_failure_and_ruleset(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    run(pytester, "rulesets", "--junitxml=out.xml")
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "out.xml").iter("testcase")}
    assert set(cases) == {
        "urgent-p1[1.0.0]",
        "general-wrongly-expected[1.0.0]",
        "by-severity[1.0.0-urgent-P1]",
        "by-severity[1.0.0-general-P3]",
        "waiting-on-contract-terms[1.0.0]",
    }
    failure = cases["general-wrongly-expected[1.0.0]"].find("failure")
    assert failure is not None and "✗ priority" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in cases["urgent-p1[1.0.0]"].iter("property")}
    assert props["ruleset"].startswith("tiny@1.0.0+")
    assert props["case"].endswith("a.sla-test.yaml:6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ruleset: nosuch\nversion: 1.0.0\ncases: [{name: a, expect: {priority: P1}}]\n",
            "*bad.sla-test.yaml:1:1: ruleset: unknown ruleset 'nosuch'; known: tiny",
        ),
        (
            "ruleset: tiny\nversion: 1.0.0\ncases:\n  - name: a\n"
            "    ticket: {severity: urgent, created_at: 2026-03-02T10:00:00+08:00}\n"
            "    expect: {priority: P1, prio: P1}\n",
            "*bad.sla-test.yaml:6:28: cases[[]0[]].expect.prio: unknown key 'prio'; "
            "allowed here: priority, *",
        ),
        (
            "ruleset: tiny\nversion: 1.0.0\ncases:\n  - name: a\n"
            "    ticket: {severity: urgent, created_at: 2026-03-02T10:00:00+08:00}\n"
            "    expect: {targets: {workaround: 2h}}\n",
            "*bad.sla-test.yaml:6:24: cases[[]0[]].expect.targets.workaround: tiny@1.0.0 has no "
            "metric 'workaround'; its metrics: first_response, resolution",
        ),
        (
            "ruleset: tiny\nversion: 1.0.0\ncases:\n  - name: [a\n",
            "*bad.sla-test.yaml:5:1: malformed YAML: *",
        ),
        (
            "ruleset: tiny\nversion: 9.9.9\ncases: [{name: a, expect: {priority: P1}}]\n",
            "*bad.sla-test.yaml:2:1: version: tiny has no version '9.9.9'; it has 1.0.0, 1.1.0",
        ),
    ],
    ids=["unknown-ruleset", "unknown-field", "unknown-metric", "malformed-yaml", "no-version"],
)
def test_bad_input_is_a_collection_error_with_file_and_line(pytester, library, text, expected):
    (library / "bad.sla-test.yaml").write_text(text, encoding="utf-8")
    result = run(pytester, "rulesets")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting*bad.sla-test.yaml*", expected])
    assert "Traceback" not in result.stdout.str()


def test_every_problem_of_a_suite_is_reported_at_once(tmp_path):
    folder = tmp_path / "rulesets" / "tiny"
    folder.mkdir(parents=True)
    (folder / "1.0.0.yaml").write_text(TINY_1, encoding="utf-8")
    path = suite_file(
        folder,
        "bad.sla-test.yaml",
        """\
        ruleset: tiny
        version: 1.0.0
        ticket: {created_at: 2026-03-02T10:00:00+08:00}
        cases:
          - name: a
            ticket: {severity: urgent, colour: red}
            expect: {priority: P1}
          - name: b
            ticket: {severity: urgent}
            expect: {matched_rules: [urgnet]}
          - name: c
            parameters: [{sev: urgent}]
            ticket: {severity: "${sevr}"}
            expect: {priority: P1}
          - name: d
            ticket: {severity: urgent}
            events: [{at: +1h, type: resolved}]
            expect: {priority: P1}
        """,
    )
    workspace = Workspace()
    try:
        with pytest.raises(RulesetErrors) as caught:
            load_suite(path, workspace)
    finally:
        workspace.close()
    messages = [str(e).split("bad.sla-test.yaml:")[1] for e in caught.value.errors]
    assert messages == [
        "6:32: cases[0].ticket.colour: ticket: unknown field; put extra ticket-system fields "
        "under 'fields'",
        "10:14: cases[1].expect.matched_rules: tiny@1.0.0 has no rule 'urgnet'; its rules: "
        "general, gold-desk, urgent",
        "13:14: cases[2].ticket.severity: unknown parameter ${sevr}; the parameters are sev",
        "12:5: cases[2].parameters: parameter 'sev' is not used; write ${sev} where its value goes",
        "17:5: cases[3].events: a timeline needs 'at', the instant to judge it at",
    ]


def test_a_version_range_and_dates_in_force_select_versions(pytester, library):
    suite_file(
        library,
        "range.sla-test.yaml",
        """\
        ruleset: tiny
        versions: ">=1.1"
        cases:
          - name: urgent-two-hours
            ticket: {severity: urgent, created_at: 2026-08-03T10:00:00+08:00}
            expect: {targets: {resolution: 2h}}
        """,
    )
    suite_file(
        library,
        "dates.sla-test.yaml",
        """\
        ruleset: tiny
        in_force: {from: 2026-06-30, to: 2026-07-01}
        cases:
          - name: urgent-is-p1
            ticket: {severity: urgent, created_at: 2026-06-30T10:00:00+08:00}
            expect: {priority: P1}
        """,
    )
    suite_file(
        library,
        "h1.sla-test.yaml",
        """\
        ruleset: tiny
        in_force: {from: 2026-01-01, to: 2026-06-30}
        cases:
          - name: h1-only
            ticket: {severity: urgent, created_at: 2026-06-30T10:00:00+08:00}
            expect: {priority: P1}
        """,
    )
    result = run(pytester, "--collect-only", "-q", "rulesets")
    result.stdout.fnmatch_lines(
        [
            "*dates.sla-test.yaml::urgent-is-p1[[]1.0.0[]]",
            "*dates.sla-test.yaml::urgent-is-p1[[]1.1.0[]]",
            "*h1.sla-test.yaml::h1-only[[]1.0.0[]]",
            "*range.sla-test.yaml::urgent-two-hours[[]1.1.0[]]",
            "4 tests collected*",
        ]
    )


def test_plugin_leaves_ordinary_python_tests_alone(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    run(pytester, "test_plain.py").assert_outcomes(passed=1)
    result = run(pytester, "-k", "plain or by-severity")
    result.assert_outcomes(passed=3)


@pytest.mark.slow
def test_xdist_runs_suites_in_parallel_and_gathers_coverage(pytester, library):
    suite_file(library, "a.sla-test.yaml", SUITE)
    result = run_apart(pytester, "-n", "2", "rulesets", "--sla-coverage")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*2 workers*", "TOTAL 4/4 branches (100.0%)"])


def test_pytest_coverage_and_fail_under(pytester, library):
    passing = SUITE.replace("priority: P2", "priority: P3").replace("route: {queue: gold}", "")
    suite_file(library, "a.sla-test.yaml", passing.replace("tier: gold", "tier: silver"))
    result = run(pytester, "rulesets", "--sla-coverage", "--sla-fail-under", "90")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*slaengine rule coverage*",
            "tiny@1.0.0+* 3/4 branches (75.0%), 2/3 rules",
            "  routing  gold-desk  24    0     NEVER",
            "TOTAL 3/4 branches (75.0%)",
            "FAIL branch coverage 75.0% is under --sla-fail-under 90.0%",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# ------------------------------------------------------------------ the format


def run_one(tmp_path: Path, case: str) -> tuple[str, list[tuple[str, object, object, bool]]]:
    folder = tmp_path / "rulesets" / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1.0.0.yaml").write_text(TINY_1, encoding="utf-8")
    head = "ruleset: tiny\nversion: 1.0.0\ncases:\n"
    path = suite_file(
        folder, "one.sla-test.yaml", head + textwrap.indent(textwrap.dedent(case), "  ")
    )
    workspace = Workspace()
    try:
        suite = load_suite(path, workspace)
        (run,) = suite.runs
        result = run_case(run, workspace.engine(suite.library))
    finally:
        workspace.close()
    return result.outcome, [(c.path, c.expected, c.actual, c.ok) for c in result.checks]


def test_a_timeline_is_judged_at_its_instant(tmp_path):
    outcome, checks = run_one(
        tmp_path,
        """\
        - name: paused-while-waiting
          ticket: {severity: general, created_at: 2026-03-02T10:00:00+08:00}
          events:
            - {at: +1h, type: agent_replied, fields: {public: true}}
            - {at: +2h, type: status_changed, fields: {status: pending_customer}}
          at: 2026-03-02T17:00:00+08:00
          expect:
            metrics:
              first_response: {state: met, breached: false}
              resolution: {state: paused, elapsed_seconds: 7200, breached: false}
        """,
    )
    assert outcome == "passed", checks


def test_a_breach_is_reported_as_breached(tmp_path):
    outcome, checks = run_one(
        tmp_path,
        """\
        - name: nobody-answered
          ticket: {severity: urgent, created_at: 2026-03-02T10:00:00+08:00}
          at: +1h
          expect:
            metrics:
              first_response: {breached: false}
        """,
    )
    assert outcome == "failed"
    assert checks == [("metrics.first_response.breached", False, True, False)]


def test_due_times_compare_as_instants_in_any_offset(tmp_path):
    outcome, _ = run_one(
        tmp_path,
        """\
        - name: utc
          ticket: {severity: urgent, created_at: 2026-03-02T10:00:00+08:00}
          expect: {targets: {resolution: {due_at: 2026-03-02T06:00:00Z}}}
        """,
    )
    assert outcome == "passed"


def test_an_expected_error_passes_only_when_the_evaluation_fails_so(tmp_path):
    outcome, checks = run_one(
        tmp_path,
        """\
        - name: refused
          ticket: {severity: low, created_at: 2026-03-02T10:00:00+08:00}
          expect: {error: "'low' is not a declared severity"}
        """,
    )
    assert outcome == "passed", checks
    outcome, checks = run_one(
        tmp_path,
        """\
        - name: not-refused
          ticket: {severity: urgent, created_at: 2026-03-02T10:00:00+08:00}
          expect: {error: "not a declared severity"}
        """,
    )
    assert outcome == "failed"
    assert checks[0][2] == "(no error: the evaluation succeeded)"


def test_list_expectations_are_exact_or_partial(tmp_path):
    outcome, checks = run_one(
        tmp_path,
        """\
        - name: rules
          ticket: {severity: urgent, tier: gold, created_at: 2026-03-02T10:00:00+08:00}
          expect:
            matched_rules: {contains: [gold-desk], excludes: [urgent]}
        """,
    )
    assert outcome == "failed"
    assert checks == [
        ("matched_rules contains", "gold-desk", ["urgent", "gold-desk"], True),
        ("matched_rules excludes", "urgent", ["urgent", "gold-desk"], False),
    ]


# ------------------------------------------------------------------ slaengine test


def test_command_summary_and_exit_code(pytester, library, capsys, monkeypatch):
    monkeypatch.chdir(pytester.path)
    suite_file(library, "a.sla-test.yaml", SUITE)
    assert main(["test", "rulesets"]) == 1
    out = capsys.readouterr().out
    assert "___ FAILED rulesets/tiny/a.sla-test.yaml::general-wrongly-expected[1.0.0] ___" in out
    assert "✗ priority" in out
    assert out.splitlines()[-1].startswith(
        "3 passed, 1 failed, 1 skipped; branch coverage 100.0% in "
    )
    assert main(["test", "rulesets", "-k", "urgent"]) == 0
    capsys.readouterr()


def test_command_json_and_coverage_fail_under(pytester, library, capsys, monkeypatch):
    monkeypatch.chdir(pytester.path)
    suite_file(library, "a.sla-test.yaml", SUITE.replace("tier: gold", "tier: silver"))
    assert main(["test", "rulesets", "--json", "--fail-under", "90"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {
        "passed": 3,
        "failed": 1,
        "skipped": 1,
        "errors": 0,
        "seconds": report["summary"]["seconds"],
        "exit_code": 1,
    }
    failed = [r for r in report["results"] if r["outcome"] == "failed"]
    assert failed[0]["checks"][0] == {
        "field": "priority",
        "expected": "P2",
        "actual": "P3",
        "ok": False,
    }
    coverage = report["coverage"]
    assert (coverage["covered"], coverage["total"], coverage["percent"]) == (3, 4, 75.0)
    never = [
        (b["table"], b["branch"])
        for v in coverage["versions"]
        for b in v["branches"]
        if not b["hits"]
    ]
    assert never == [("routing", "gold-desk")]


def test_command_loading_error_exits_2(pytester, library, capsys, monkeypatch):
    monkeypatch.chdir(pytester.path)
    (library / "bad.sla-test.yaml").write_text("ruleset: [\n", encoding="utf-8")
    assert main(["test", "rulesets"]) == 2
    out = capsys.readouterr().out
    assert "ERROR rulesets/tiny/bad.sla-test.yaml:2:1: malformed YAML" in out


def test_shipped_suites_cover_every_rule_of_every_version(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["test", "rulesets", "--json", "--fail-under", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    tested = {(v["ruleset"], v["version"]) for v in report["coverage"]["versions"]}
    shipped = {
        (p.parent.name, p.stem)
        for p in (ROOT / "rulesets").glob("*/[0-9]*.yaml")
        if not p.name.endswith(".sla-test.yaml")
    }
    assert tested == shipped
    assert report["summary"]["failed"] == 0
