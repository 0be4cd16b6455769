"""``slaengine test``: the regression suites run without pytest, and rule coverage.

For people who do not use pytest: the same suites, the same failure
reports, a summary line, ``--json`` for tools and an exit code for CI (0 all
passed, 1 a case failed or coverage is under ``--fail-under``, 2 a suite
could not be loaded).

Rule coverage counts outcome branches of every ruleset version the suites
target: each rule of each table, plus each table's fall-through (its
``default``, or for a ``collect`` table without one, nothing applying). A
``first`` table's "no rule matched" error is not a branch: it is a gap
(``slaengine lint`` finds those), not an outcome. A branch is covered when a
decision of a case took it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict

from slaengine.errors import RulesetError, RulesetErrors
from slaengine.ruleset import CompiledRuleset
from slaengine.suite import (
    CaseResult,
    Suite,
    Workspace,
    find_suites,
    format_failure,
    load_suite,
    run_case,
    show,
)

__all__ = [
    "BranchCoverage",
    "CoverageReport",
    "VersionCoverage",
    "add_test_parser",
    "coverage_report",
    "format_coverage",
    "suite_command",
]

#: (ruleset, version, table, rule name or "(default)"/"(none)")
Branch = tuple[str, str, str, str]


class BranchCoverage(BaseModel):
    """One outcome branch of a table: how often cases took it, and which suites."""

    model_config = ConfigDict(frozen=True)

    table: str
    branch: str
    line: int | None
    hits: int
    suites: list[str]


class VersionCoverage(BaseModel):
    """Coverage of one ruleset version."""

    model_config = ConfigDict(frozen=True)

    ruleset: str
    version: str
    revision: str
    source: str
    covered: int
    total: int
    percent: float
    rules_covered: int
    rules_total: int
    branches: list[BranchCoverage]


class CoverageReport(BaseModel):
    """Coverage of every targeted version, and the total that ``--fail-under`` checks."""

    model_config = ConfigDict(frozen=True)

    covered: int
    total: int
    percent: float
    versions: list[VersionCoverage]


def branches_of(rs: CompiledRuleset) -> list[tuple[str, str, int | None]]:
    """(table, branch, line) of every outcome branch of a version, in file order."""
    out: list[tuple[str, str, int | None]] = []
    for ti, table in enumerate(rs.model.tables):
        out += [
            (table.name, rule.name, rs.lines.get((ti, ri))) for ri, rule in enumerate(table.rules)
        ]
        if table.default is not None:
            out.append((table.name, "(default)", None))
        elif table.hit == "collect":
            out.append((table.name, "(none)", None))
    return out


def coverage_report(
    versions: Iterable[CompiledRuleset], hits: Iterable[tuple[str, Branch]]
) -> CoverageReport:
    """Coverage of ``versions`` from (suite name, branch taken) pairs."""
    counts: dict[Branch, int] = {}
    by_suite: dict[Branch, set[str]] = {}
    for suite, branch in hits:
        counts[branch] = counts.get(branch, 0) + 1
        by_suite.setdefault(branch, set()).add(suite)
    reports = []
    seen: set[tuple[str, str]] = set()
    for rs in sorted(versions, key=lambda r: (r.name, r.model.effective_from)):
        if (rs.name, rs.version) in seen:
            continue
        seen.add((rs.name, rs.version))
        rows = []
        for table, branch, line in branches_of(rs):
            key = (rs.name, rs.version, table, branch)
            rows.append(
                BranchCoverage(
                    table=table,
                    branch=branch,
                    line=line,
                    hits=counts.get(key, 0),
                    suites=sorted(by_suite.get(key, ())),
                )
            )
        covered = sum(1 for r in rows if r.hits)
        rules = [r for r in rows if not r.branch.startswith("(")]
        reports.append(
            VersionCoverage(
                ruleset=rs.name,
                version=rs.version,
                revision=rs.revision,
                source=rs.source,
                covered=covered,
                total=len(rows),
                percent=_percent(covered, len(rows)),
                rules_covered=sum(1 for r in rules if r.hits),
                rules_total=len(rules),
                branches=rows,
            )
        )
    covered = sum(v.covered for v in reports)
    total = sum(v.total for v in reports)
    return CoverageReport(
        covered=covered, total=total, percent=_percent(covered, total), versions=reports
    )


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def format_coverage(report: CoverageReport) -> str:
    """The coverage report as a table per version, never-taken branches marked NEVER."""
    lines = []
    for v in report.versions:
        lines.append(
            f"{v.ruleset}@{v.version}+{v.revision} ({v.source}): "
            f"{v.covered}/{v.total} branches ({v.percent}%), "
            f"{v.rules_covered}/{v.rules_total} rules"
        )
        rows = [("TABLE", "BRANCH", "LINE", "HITS", "SUITES")]
        rows += [
            (
                b.table,
                b.branch,
                str(b.line or "-"),
                str(b.hits),
                ", ".join(b.suites) if b.hits else "NEVER",
            )
            for b in v.branches
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:4], widths, strict=True)]
            lines.append("  " + "  ".join([*cells, r[4]]).rstrip())
    lines.append(f"TOTAL {report.covered}/{report.total} branches ({report.percent}%)")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command


def add_test_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``test`` to the ``slaengine`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="run ruleset regression suites (*.sla-test.yaml); exit 1 on failures",
        description=(
            "Run the regression suites (*.sla-test.yaml) found in PATHS and report each "
            "failure with expected beside actual values and the rule trace. Exit 0 when "
            "all pass, 1 when a case fails or coverage is under --fail-under, 2 when a "
            "suite cannot be loaded."
        ),
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["rulesets"],
        help="suite files or directories to search (default: rulesets)",
    )
    p.add_argument(
        "-k",
        dest="keyword",
        help="run only cases whose id contains TEXT or that are tagged TEXT",
        metavar="TEXT",
    )
    p.add_argument("--json", action="store_true", help="one JSON document instead of text")
    p.add_argument("--coverage", action="store_true", help="print the rule coverage table")
    p.add_argument(
        "--fail-under",
        type=float,
        metavar="PCT",
        help="exit 1 when branch coverage is under PCT percent",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="a line per case")
    p.set_defaults(func=suite_command)
    return p


def suite_command(args: argparse.Namespace) -> int:
    """``slaengine test``: load, run, report; the exit code says how it went."""
    started = time.perf_counter()
    out = sys.stdout
    workspace = Workspace()
    suites: list[Suite] = []
    errors: list[RulesetError] = []
    try:
        for path in find_suites([Path(p) for p in args.paths]):
            try:
                suites.append(load_suite(path, workspace))
            except RulesetErrors as exc:
                errors += exc.errors
            except RulesetError as exc:
                errors.append(exc)
        results = []
        for suite in suites:
            engine = workspace.engine(suite.library)
            for run in suite.runs:
                if args.keyword and not _selected(run.id, run.tags, args.keyword):
                    continue
                results.append(run_case(run, engine))
    finally:
        workspace.close()
    elapsed = time.perf_counter() - started
    report = coverage_report(
        [rs for s in suites for rs in s.versions],
        [(r.run.suite, b) for r in results for b in r.branches],
    )
    counts = {k: sum(1 for r in results if r.outcome == k) for k in ("passed", "failed", "skipped")}
    under = args.fail_under is not None and report.percent < args.fail_under
    status = 2 if errors else (1 if counts["failed"] or under else 0)
    if args.json:
        json.dump(
            _json(results, errors, report, counts, elapsed, status),
            out,
            ensure_ascii=False,
            indent=2,
            default=str,
        )
        out.write("\n")
        return status
    _text(out, args, results, errors, report, counts, elapsed, under)
    return status


def _selected(case_id: str, tags: tuple[str, ...], keyword: str) -> bool:
    return keyword in case_id or keyword in tags


def _text(
    out: TextIO,
    args: argparse.Namespace,
    results: list[CaseResult],
    errors: list[RulesetError],
    report: CoverageReport,
    counts: dict[str, int],
    elapsed: float,
    under: bool,
) -> None:
    for error in errors:
        print(f"ERROR {error}", file=out)
    for r in results:
        if args.verbose:
            why = f" ({r.run.skip})" if r.outcome == "skipped" else ""
            print(f"{r.run.file}::{r.run.id} {r.outcome.upper()}{why}", file=out)
        if r.outcome == "failed":
            print(f"\n___ FAILED {r.run.file}::{r.run.id} ___\n{format_failure(r)}\n", file=out)
    if args.coverage or under:
        print(format_coverage(report), file=out)
    if under:
        print(
            f"FAIL branch coverage {report.percent}% is under --fail-under {args.fail_under}%",
            file=out,
        )
    parts = [f"{n} {k}" for k, n in counts.items() if n]
    if errors:
        parts.append(f"{len(errors)} error(s) loading suites")
    summary = ", ".join(parts) or "no cases"
    print(f"{summary}; branch coverage {report.percent}% in {elapsed:.2f}s", file=out)


def _json(
    results: list[CaseResult],
    errors: list[RulesetError],
    report: CoverageReport,
    counts: dict[str, int],
    elapsed: float,
    status: int,
) -> dict[str, Any]:
    return {
        "summary": {
            **counts,
            "errors": len(errors),
            "seconds": round(elapsed, 3),
            "exit_code": status,
        },
        "errors": [
            {
                "file": e.file,
                "line": e.line,
                "column": e.column,
                "path": e.path,
                "message": e.message,
            }
            for e in errors
        ],
        "results": [
            {
                "id": r.run.id,
                "suite": r.run.suite,
                "file": r.run.file,
                "line": r.run.line,
                "ruleset": r.run.ruleset.ref,
                "tags": list(r.run.tags),
                "outcome": r.outcome,
                "skip_reason": r.run.skip,
                "error": r.error,
                "checks": [
                    {
                        "field": c.path,
                        "expected": show(c.expected),
                        "actual": show(c.actual, like=c.expected),
                        "ok": c.ok,
                    }
                    for c in r.checks
                ],
            }
            for r in results
        ],
        "coverage": report.model_dump(mode="json"),
    }
