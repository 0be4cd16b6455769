"""Large rule tables: split into chained durable_rules rulesets, never a hang."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from slaengine.matcher import CHUNK_RULES


def generated_ruleset(rules: int) -> str:
    """A ruleset with one ``first`` table of ``rules`` customer-specific rules."""
    lines = [
        "name: big",
        "version: 1.0.0",
        "effective_from: 2026-01-01",
        "timezone: UTC",
        "vocabularies:",
        "  severity: [urgent, general]",
        "metrics:",
        "  resolution: {stop: [resolved]}",
        "tables:",
        "  - name: by-customer",
        "    hit: first",
        "    rules:",
    ]
    for i in range(rules):
        lines += [
            f"      - name: customer-{i}",
            f"        when: {{customer: c{i}, severity: [urgent, general]}}",
            f"        then: {{priority: P{i}, calendar: always,",
            f"                targets: {{resolution: {i % 48 + 1}h}}}}",
        ]
    lines += ["    default: {priority: none}"]
    return "\n".join(lines) + "\n"


SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.test_engine_scale import generated_ruleset
    from slaengine.engine import Engine
    from slaengine.library import RulesetLibrary
    from slaengine.ruleset import parse_ruleset
    from slaengine.yamlsource import read_yaml
    text = generated_ruleset(2000)
    start = time.perf_counter()
    engine = Engine(RulesetLibrary([parse_ruleset(read_yaml(text, "big.yaml"))]))
    print("compiled", time.perf_counter() - start)
    for i in (0, 249, 250, 251, 1000, 1999):
        d = engine.evaluate({{"id": "t", "customer": f"c{{i}}", "severity": "general",
                              "created_at": "2026-05-01T00:00:00Z"}}, ruleset="big")
        assert d.matched_rules == (f"customer-{{i}}",), d.matched_rules
        assert d.priority == f"P{{i}}"
    d = engine.evaluate({{"id": "t", "customer": "c2000", "severity": "general",
                          "created_at": "2026-05-01T00:00:00Z"}}, ruleset="big")
    assert d.matched_rules == () and d.priority == "none"
    engine.close()
    print("ok")
""")


def test_a_2000_rule_table_compiles_in_chunks_and_matches_every_chunk(tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    # A hang would be the failure mode: run in a child process with a deadline.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_chunks_stay_well_below_the_durable_rules_hang():
    assert CHUNK_RULES <= 400
