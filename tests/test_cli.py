"""The command line, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import MINIMAL, ROOT, RULESETS


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slaengine", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


TICKET = {
    "id": "INC-9",
    "contract": "CN-LOTUS-RETAIL-2026",
    "severity": "serious",
    "created_at": "2026-10-09T17:30:00+08:00",
}


def test_validate_passes_on_the_shipped_rulesets():
    result = run("validate", str(RULESETS))
    assert result.returncode == 0
    assert "4 ruleset version(s), 5 contract(s) OK" in result.stdout


def test_validate_fails_with_located_errors(tmp_path):
    bad = tmp_path / "tiny.yaml"
    bad.write_text(
        MINIMAL.replace("severity: urgent}", "severity: high}").replace("general}", "low}")
    )
    result = run("validate", str(bad))
    assert result.returncode == 1
    assert (
        f"{bad}:13:16: tables[0].rules[0].when.severity: 'high' is not a declared" in result.stdout
    )
    assert (
        f"{bad}:16:16: tables[0].rules[1].when.severity: 'low' is not a declared" in result.stdout
    )
    assert "2 error(s)" in result.stdout


def test_rulesets_lists_versions_with_revisions():
    result = run("rulesets", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["name"], r["version"]) for r in rows} >= {("standard-support", "2.0.0")}
    assert all(len(r["revision"]) == 12 for r in rows)


def test_evaluate_reads_jsonl_from_stdin_and_writes_decisions():
    lines = "\n".join(json.dumps({**TICKET, "id": f"INC-{i}"}) for i in range(3))
    result = run("evaluate", "-", stdin=lines + "\n")
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["ticket_id"] for d in decisions] == ["INC-0", "INC-1", "INC-2"]
    assert decisions[0]["targets"]["first_response"]["due_at"] == "2026-10-10T09:30:00+08:00"


def test_evaluate_accepts_a_json_array_file(tmp_path):
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps([TICKET, {**TICKET, "id": "INC-10"}], indent=2))
    result = run("evaluate", str(path))
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2


def test_evaluate_reports_bad_lines_and_goes_on(tmp_path):
    path = tmp_path / "tickets.jsonl"
    path.write_text(
        json.dumps(TICKET)
        + "\n{not json\n"
        + json.dumps({**TICKET, "id": "INC-X", "severity": "blocker"})
        + "\n"
        + json.dumps({**TICKET, "id": "INC-Y"})
        + "\n"
    )
    result = run("evaluate", str(path))
    assert result.returncode == 1
    assert [json.loads(x)["ticket_id"] for x in result.stdout.splitlines()] == ["INC-9", "INC-Y"]
    errors = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    assert errors[0]["input"] == f"{path}:2" and "not valid JSON" in errors[0]["error"]
    assert errors[1]["input"] == f"{path}:3" and errors[1]["error"].startswith("severity:")


def test_explain_prints_the_rule_trace(tmp_path):
    result = run("explain", "-", stdin=json.dumps(TICKET))
    assert result.returncode == 0, result.stderr
    assert "serious: APPLIED" in result.stdout
    assert "urgent: no  (severity eq 'urgent' — ticket has 'serious')" in result.stdout


def test_missing_input_file_is_a_clear_error():
    result = run("evaluate", "no-such-file.jsonl")
    assert result.returncode == 2
    assert "no-such-file.jsonl: No such file or directory" in result.stderr


def test_broken_ruleset_directory_stops_evaluate_with_its_errors(tmp_path):
    (tmp_path / "tiny.yaml").write_text(MINIMAL.replace("name: tiny", "name: [tiny"))
    result = run("evaluate", "--rulesets", str(tmp_path), "-", stdin=json.dumps(TICKET))
    assert result.returncode == 2
    assert "malformed YAML" in result.stderr


def test_evaluate_decides_a_file_as_the_engine_decides_each_ticket(shipped):
    """The CLI decides chunks together (evaluate_many): the same decisions as one by one."""
    sample = RULESETS / "samples" / "tickets.jsonl"
    result = run("evaluate", str(sample))
    assert result.returncode == 0, result.stderr
    tickets = [json.loads(line) for line in sample.read_text().splitlines() if line.strip()]
    expected = [shipped.evaluate(ticket).model_dump_json() for ticket in tickets]
    assert result.stdout.splitlines() == expected
