"""Loading rulesets: every problem is reported with file, line, column and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from slaengine.errors import RulesetErrors
from slaengine.library import load_directory, load_ruleset_file
from slaengine.yamlsource import MAX_FILE_BYTES
from tests.conftest import MINIMAL


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RulesetErrors) as info:
        load_ruleset_file(path)
    return [str(e) for e in info.value.errors]


def test_minimal_ruleset_loads_with_a_revision(write):
    rs = load_ruleset_file(write("tiny.yaml", MINIMAL))
    assert rs.ref.startswith("tiny@1.0.0+") and len(rs.revision) == 12


def test_revision_ignores_comments_and_formatting_but_not_content(write):
    a = load_ruleset_file(write("a.yaml", MINIMAL))
    b = load_ruleset_file(
        write(
            "b.yaml",
            "# a comment\n" + MINIMAL.replace("[urgent, general]", "\n    - urgent\n    - general"),
        )
    )
    c = load_ruleset_file(write("c.yaml", MINIMAL.replace("4h", "5h")))
    assert a.revision == b.revision
    assert a.revision != c.revision


def test_bad_duration_names_file_line_column_and_key_path(write):
    path = write("tiny.yaml", MINIMAL.replace("resolution: 4h", 'resolution: "4 hours"'))
    [message] = errors_of(path)
    assert message.startswith(f"{path}:14:58:")
    assert "tables[0].rules[0].then.targets.resolution" in message
    assert "'4 hours' is not a duration; use e.g. 30m, 4h" in message


@pytest.mark.parametrize("target", ["876001h", "99999999999999h", "36501d"])
def test_a_target_longer_than_a_century_is_an_error_at_its_key(write, target):
    path = write("tiny.yaml", MINIMAL.replace("resolution: 4h", f"resolution: {target}"))
    [message] = errors_of(path)
    assert message.startswith(f"{path}:14:")
    assert "tables[0].rules[0].then.targets.resolution" in message
    assert f"'{target}' is longer than a century; the most is 876000h" in message


def test_a_target_of_a_century_loads(write):
    load_ruleset_file(write("tiny.yaml", MINIMAL.replace("resolution: 4h", "resolution: 876000h")))


def test_unknown_key_is_an_error_at_that_key(write):
    path = write(
        "tiny.yaml",
        MINIMAL.replace("        when: {severity: urgent}", "        wehn: {severity: urgent}"),
    )
    [message] = errors_of(path)
    assert f"{path}:13:9: tables[0].rules[0].wehn: unknown key 'wehn'" == message


def test_undeclared_severity_calendar_metric_and_plan_are_all_reported(write):
    text = MINIMAL.replace("when: {severity: urgent}", "when: {severity: critical}")
    text = text.replace(
        "calendar: always, targets: {resolution: 4h}",
        "calendar: office, targets: {respond: 4h}, escalation_plan: loud",
    )
    messages = errors_of(write("tiny.yaml", text))
    joined = "\n".join(messages)
    assert len(messages) == 4
    assert "'critical' is not a declared severity; declared: urgent, general" in joined
    assert "unknown calendar 'office'" in joined
    assert "unknown metric 'respond'" in joined
    assert "unknown escalation plan 'loud'" in joined


def test_duplicate_rule_names_are_an_error(write):
    messages = errors_of(write("tiny.yaml", MINIMAL.replace("name: general", "name: urgent")))
    assert any("tables[0].rules[1].name: duplicate rule name 'urgent'" in m for m in messages)


def test_malformed_yaml_is_reported_with_its_position(write):
    [message] = errors_of(write("tiny.yaml", "name: tiny\nversion: [1.0\n"))
    assert "malformed YAML" in message and ":3:" in message


def test_yaml_object_tags_are_refused_not_executed(write, tmp_path):
    marker = tmp_path / "pwned"
    text = MINIMAL + f"evil: !!python/object/apply:os.system ['touch {marker}']\n"
    [message] = errors_of(write("tiny.yaml", text))
    assert "not allowed" in message
    assert not marker.exists()


def test_duplicate_yaml_keys_are_an_error(write):
    [message] = errors_of(
        write("tiny.yaml", MINIMAL.replace("version: 1.0.0", "version: 1.0.0\nversion: 1.0.1"))
    )
    assert "duplicate key 'version'" in message


def test_naive_effective_datetime_is_an_error(write):
    [message] = errors_of(
        write(
            "tiny.yaml",
            MINIMAL.replace("effective_from: 2026-01-01", "effective_from: 2026-01-01 09:00:00"),
        )
    )
    assert "effective_from has no timezone" in message


def test_bad_version_and_timezone_are_errors(write):
    text = MINIMAL.replace("version: 1.0.0", "version: one").replace(
        "Asia/Shanghai", "Mars/Olympus"
    )
    joined = "\n".join(errors_of(write("tiny.yaml", text)))
    assert "'one' is not a semantic version" in joined
    assert "unknown timezone 'Mars/Olympus'" in joined


def test_rules_may_not_test_reserved_id(write):
    [message] = errors_of(
        write("tiny.yaml", MINIMAL.replace("when: {severity: urgent}", "when: {id: T1}"))
    )
    assert "rules cannot test 'id'" in message


def test_unknown_operator_and_bad_regex_are_errors(write):
    text = MINIMAL.replace("when: {severity: urgent}", "when: {severity: {like: urg}}")
    text = text.replace("when: {severity: general}", "when: {category: {matches: '(unclosed'}}")
    joined = "\n".join(errors_of(write("tiny.yaml", text)))
    assert "unknown operator 'like'" in joined
    assert "bad regular expression" in joined


def test_bad_calendar_spec_is_reported_under_calendars(write):
    text = MINIMAL.replace(
        "metrics:",
        "calendars:\n  office: {timezone: Asia/Shanghai, hours: {mon: ['25:00-26:00']}}\nmetrics:",
    )
    [message] = errors_of(write("tiny.yaml", text))
    assert "calendars.office" in message and "25:00" in message


def test_oversized_file_is_refused_before_parsing(write):
    path = write("big.yaml", MINIMAL + "# " + "x" * MAX_FILE_BYTES + "\n")
    [message] = errors_of(path)
    assert "the limit for one ruleset file is" in message


def test_directory_reports_errors_from_every_file_at_once(write, tmp_path):
    write("a/1.0.0.yaml", MINIMAL.replace("4h", "4 hours"))
    write(
        "b/1.0.0.yaml",
        MINIMAL.replace("name: tiny", "name: other").replace(
            "severity: urgent}", "severity: nope}"
        ),
    )
    with pytest.raises(RulesetErrors) as info:
        load_directory(tmp_path)
    files = {Path(e.file).parent.name for e in info.value.errors}
    assert files == {"a", "b"}


def test_two_versions_with_the_same_effective_date_are_an_error(write, tmp_path):
    write("tiny/1.0.0.yaml", MINIMAL)
    write("tiny/1.1.0.yaml", MINIMAL.replace("version: 1.0.0", "version: 1.1.0"))
    with pytest.raises(RulesetErrors) as info:
        load_directory(tmp_path)
    assert "takes effect at the same instant" in str(info.value)


def test_contract_naming_an_unknown_ruleset_or_version_is_an_error(write, tmp_path):
    write("tiny/1.0.0.yaml", MINIMAL)
    write(
        "contracts.yaml",
        """\
        contracts:
          - {id: C1, customer: acme, ruleset: nope}
          - {id: C2, customer: beta, ruleset: tiny, version: 9.9.9}
        """,
    )
    with pytest.raises(RulesetErrors) as info:
        load_directory(tmp_path)
    text = str(info.value)
    assert "unknown ruleset 'nope'" in text and "pins version 9.9.9" in text


def test_shipped_rulesets_validate(shipped):
    names = {(r.name, r.version) for r in shipped.rulesets()}
    assert names == {
        ("standard-support", "1.0.0"),
        ("standard-support", "2.0.0"),
        ("premium-7x24", "1.0.0"),
        ("premium-7x24", "1.1.0"),
    }
