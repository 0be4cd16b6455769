"""Ruleset analysis (``slaengine lint``): what a decision table leaves open or contradicts.

Each table's rules are evaluated, with the engine's condition semantics
(``condition.holds``), over every combination of representative values of
the fields they test:

- a field with a declared vocabulary: each declared value, plus "absent"
  when the vocabulary is not ``required``;
- ``in_hours.CAL`` / ``holiday.CAL``: true and false; ``local_weekday``: the
  seven days; ``local_hour``: 0 to 23;
- any other field: absent, every literal the rules compare it with, values
  either side of each numeric bound, a string for each ``matches`` pattern
  (derived from the pattern; an opaque stand-in when none is found) and one
  value unlike all of them; fields tested with ``contains`` (tags) take every
  subset of the tested elements.

In a table's own analysis derived facts are treated as independent of each
other (``in_hours.X`` true on a Sunday is enumerated even if calendar X is
closed on Sundays), so a gap may name a combination no real ticket has.

Findings (code, severity):

- SLA000 error: the file does not load (the loader's own errors).
- SLA001 error: gap: a combination no rule of a ``first`` table matches and
  no default covers; the engine fails such tickets with "no rule matched".
- SLA002 error: a rule of a ``first`` table that never applies: every
  combination it matches is taken by earlier rules.
- SLA003 warning: two rules of a ``collect`` table can match the same ticket
  and set the same outcome (priority, calendar, a metric's target, a route
  part, escalation plan, penalty class) to different values: the later wins.
- SLA004 / SLA005 / SLA006 warning: a calendar / escalation plan / metric is
  declared but nothing uses it.
- SLA007: a less severe ticket falls due before a more severe one for the
  same metric, all other tested fields equal. Judged on whole decisions
  (every table merged as the engine merges them, the target counted in the
  decided calendar) by due times: from each hour of a reference week (the
  first Monday on or after ``effective_from``) that has the combination's
  derived facts, both targets are counted with the real calendars, so hours
  compare with working days and one calendar with another. An error when
  the less severe ticket is due first whenever it is created; a warning
  when only for some creation times (e.g. ``1d`` from a Saturday is Monday
  at opening, before ``4h`` of business time).
- SLA008 error: a rule whose conditions no combination satisfies.
- SLA009 warning: a table (or, for SLA007, the whole ruleset) tests too many
  combinations to analyse.
- SLA010 error: an invalid silence in the config (no reason, unknown key).
- SLA011 warning: a silence that silenced nothing.

A config file silences findings, each with a reason::

    ignore:
      - {code: SLA007, ruleset: standard-support, rule: consultation, reason: "why it is fine"}

An entry silences the findings with its ``code`` that also match every other
key it gives: ``ruleset`` (name or name@version), ``table``, ``rule`` and
``name`` (of the unused calendar, plan or metric).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from slaengine.condition import (
    MISSING,
    NUMERIC_OPS,
    All,
    Condition,
    Not,
    Test,
    holds,
    iter_tests,
)
from slaengine.duration import Duration
from slaengine.errors import RulesetError, RulesetErrors
from slaengine.library import CONTRACTS_FILE, OTHER_FILES, TEST_SUFFIX
from slaengine.ruleset import WEEKDAYS, CompiledRuleset, Outcome, parse_ruleset
from slaengine.yamlsource import Located, format_path, read_yaml_file

Severity = Literal["error", "warning"]

CODES: dict[str, tuple[Severity, str]] = {
    "SLA000": ("error", "does not load"),
    "SLA001": ("error", "gap"),
    "SLA002": ("error", "shadowed rule"),
    "SLA003": ("warning", "conflicting overlap"),
    "SLA004": ("warning", "unused calendar"),
    "SLA005": ("warning", "unused escalation plan"),
    "SLA006": ("warning", "unused metric"),
    "SLA007": ("error", "target against severity order"),
    "SLA008": ("error", "rule never matches"),
    "SLA009": ("warning", "table not analysed"),
    "SLA010": ("error", "invalid silence"),
    "SLA011": ("warning", "unused silence"),
}
#: Tables whose fields give more combinations than this are not analysed (SLA009).
MAX_COMBINATIONS = 200_000
#: Gaps listed per table; the rest are summed up in one more finding.
MAX_GAPS = 10


class Finding(BaseModel):
    """One problem found in a ruleset file, located by file and line."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    file: str
    line: int | None
    message: str
    ruleset: str | None = None  # name@version
    table: str | None = None
    rule: str | None = None
    name: str | None = None  # the calendar, plan or metric a finding is about

    def format(self) -> str:
        """``file:line: CODE severity: message``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.code} {self.severity}: {self.message}"


class Silence(BaseModel):
    """One ``ignore`` entry of the lint config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    reason: str = ""
    ruleset: str | None = None
    table: str | None = None
    rule: str | None = None
    name: str | None = None

    def silences(self, finding: Finding) -> bool:
        """Whether this entry applies to ``finding``."""
        if finding.code != self.code:
            return False
        if self.ruleset is not None and finding.ruleset is not None:
            name = finding.ruleset.split("@", 1)[0]
            if self.ruleset not in (name, finding.ruleset):
                return False
        elif self.ruleset is not None:
            return False
        return all(
            wanted is None or wanted == actual
            for wanted, actual in (
                (self.table, finding.table),
                (self.rule, finding.rule),
                (self.name, finding.name),
            )
        )


class LintResult(BaseModel):
    """Findings left after silencing, and the silenced ones with their reasons."""

    findings: list[Finding]
    silenced: list[tuple[Finding, str]]

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)


# -- entry points -----------------------------------------------------------


def lint_paths(paths: list[str | Path], config: str | Path | None = None) -> LintResult:
    """Lint ruleset files and directories, then apply the config's silences."""
    findings = [f for file in ruleset_files(paths) for f in lint_file(file)]
    return apply_silences(findings, load_config(config) if config else None)


def ruleset_files(paths: list[str | Path]) -> list[Path]:
    """The ruleset version files named, or found below the directories named.

    Skips what the library skips: contracts, regression suites, penalty and
    plugin settings, hidden files.
    """
    files: list[Path] = []
    for target in map(Path, paths):
        if not target.is_dir():
            files.append(target)
            continue
        for file in sorted(target.rglob("*.yaml")) + sorted(target.rglob("*.yml")):
            name = file.name
            skipped = name.endswith(TEST_SUFFIX) or name.startswith(".")
            if not skipped and name not in OTHER_FILES and name != CONTRACTS_FILE:
                files.append(file)
    return files


def lint_file(path: str | Path) -> list[Finding]:
    """Every finding in one ruleset version file (SLA000 when it does not load)."""
    try:
        located = read_yaml_file(Path(path))
        rs = parse_ruleset(located)
    except RulesetErrors as exc:
        return [_load_error(e) for e in exc.errors]
    except RulesetError as exc:
        return [_load_error(exc)]
    return lint_ruleset(rs, located)


def lint_ruleset(rs: CompiledRuleset, located: Located) -> list[Finding]:
    """Every finding in a compiled ruleset; ``located`` is its YAML, for lines."""
    linter = _Linter(rs, located)
    for ti in range(len(rs.model.tables)):
        linter.table(ti)
    linter.severity_order()
    linter.unused()
    return sorted(linter.findings, key=lambda f: (f.file, f.line or 0, f.code))


def _load_error(error: RulesetError) -> Finding:
    where = f"{error.path}: " if error.path else ""
    return Finding(
        code="SLA000",
        severity="error",
        file=error.file,
        line=error.line,
        message=where + error.message,
    )


# -- config -----------------------------------------------------------------


class LintConfig(BaseModel):
    """A lint config: its valid silences (with their lines) and SLA010 findings for the rest."""

    file: str
    silences: list[tuple[Silence, int | None]]
    findings: list[Finding]


def load_config(path: str | Path) -> LintConfig:
    """Read a lint config; invalid entries become SLA010 findings, not exceptions."""
    located = read_yaml_file(Path(path))
    config = LintConfig(file=located.file, silences=[], findings=[])

    def invalid(where: tuple[str | int, ...], message: str) -> None:
        config.findings.append(
            Finding(
                code="SLA010",
                severity="error",
                file=located.file,
                line=located.where(where)[0],
                message=message,
            )
        )

    data = located.data
    if not isinstance(data, dict) or set(data) - {"ignore"}:
        invalid((), "a lint config is a mapping with one key, 'ignore'")
        return config
    entries = data.get("ignore") or []
    if not isinstance(entries, list):
        invalid(("ignore",), "'ignore' takes a list of entries")
        return config
    for i, entry in enumerate(entries):
        where: tuple[str | int, ...] = ("ignore", i)
        try:
            silence = Silence.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            invalid((*where, *err["loc"]), f"{format_path(tuple(err['loc']))}: {problem}")
            continue
        if silence.code not in CODES:
            invalid((*where, "code"), f"unknown code {silence.code!r}")
        elif not silence.reason.strip():
            invalid(
                where,
                f'a silence of {silence.code} needs a reason (reason: "..."); '
                "until it has one it silences nothing",
            )
        else:
            config.silences.append((silence, located.where(where)[0]))
    return config


def apply_silences(findings: list[Finding], config: LintConfig | None) -> LintResult:
    """Drop the findings a silence applies to; SLA011 for silences that applied to none."""
    if config is None:
        return LintResult(findings=findings, silenced=[])
    kept: list[Finding] = []
    silenced: list[tuple[Finding, str]] = []
    used: set[int] = set()
    for finding in findings:
        for i, (silence, _) in enumerate(config.silences):
            if silence.silences(finding):
                silenced.append((finding, silence.reason))
                used.add(i)
                break
        else:
            kept.append(finding)
    stale = [
        Finding(
            code="SLA011",
            severity="warning",
            file=config.file,
            line=line,
            message=f"this {silence.code} silence applies to no finding; remove it",
        )
        for i, (silence, line) in enumerate(config.silences)
        if i not in used
    ]
    return LintResult(findings=[*kept, *config.findings, *stale], silenced=silenced)


# -- the decision space of a table ------------------------------------------


class _Opaque:
    """Text that matches ``pattern`` (no example could be derived from the pattern)."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern


#: Fields every ticket has (never absent).
_ALWAYS_PRESENT = frozenset({"severity", "status", "tags", "local_weekday", "local_hour"})
#: Text equal to no literal a rule could name.
_UNLIKE_ANY = "\x00"


class _Space:
    """Representative values of the fields one table tests, and their product."""

    def __init__(self, fields: list[str], values: list[list[Any]], labels: list[list[str]]) -> None:
        self.fields = fields
        self.values = values
        self.labels = labels
        self.size = 1
        for v in values:
            self.size *= len(v)

    def combinations(self) -> Iterator[tuple[int, ...]]:
        """Index tuples into ``values``, every combination once."""
        return itertools.product(*(range(len(v)) for v in self.values))

    def assignment(self, combo: tuple[int, ...]) -> dict[str, Any]:
        return {f: v[c] for f, v, c in zip(self.fields, self.values, combo, strict=True)}

    def describe(self, combo: tuple[int | frozenset[int] | None, ...]) -> str:
        """``severity=general, tier in {gold, silver}, channel not phone``.

        Each entry of ``combo`` is a value's index, a set of indices, or None
        for any value; fields that may take any value are left out.
        """
        parts = []
        for field, labels, chosen in zip(self.fields, self.labels, combo, strict=True):
            chosen = {chosen} if isinstance(chosen, int) else chosen
            if chosen is None or len(chosen) == len(labels):
                continue
            others = [label for i, label in enumerate(labels) if i not in chosen]
            if len(chosen) == 1:
                parts.append(f"{field}={labels[min(chosen)]}")
            elif len(others) == 1:
                parts.append(f"{field} not {others[0]}")
            else:
                listed = ", ".join(labels[i] for i in sorted(chosen))
                parts.append(f"{field} in {{{listed}}}")
        return ", ".join(parts) or "every ticket"


def _space(rs: CompiledRuleset, conditions: list[Condition]) -> _Space:
    tests: dict[str, list[Test]] = defaultdict(list)
    for cond in conditions:
        for test in iter_tests(cond):
            tests[test.field].append(test)
    fields = sorted(tests)
    values, labels = [], []
    for field in fields:
        pairs = _representatives(rs, field, tests[field])
        values.append([v for v, _ in pairs])
        labels.append([label for _, label in pairs])
    return _Space(fields, values, labels)


def _representatives(rs: CompiledRuleset, field: str, tests: list[Test]) -> list[tuple[Any, str]]:
    """(value, label) pairs of ``field`` that between them take every path through ``tests``."""
    absent = [] if field in _ALWAYS_PRESENT else [MISSING]
    vocab = rs.model.vocabularies.get(field)
    if vocab is not None:
        declared: list[Any] = [v.value for v in vocab.values]  # in rank order
        return _labelled(declared + (absent if not vocab.required else []))
    if field.startswith(("in_hours.", "holiday.")):
        return _labelled([True, False])
    if field == "local_weekday":
        return _labelled(list(WEEKDAYS))
    if field == "local_hour":
        return _labelled(list(range(24)))
    literals: list[Any] = []
    for t in tests:
        if t.op in ("eq", "ne", "contains"):
            literals.append(t.value)
        elif t.op in ("in", "not_in"):
            literals.extend(t.value)
    if field == "tags" or (
        all(t.op in ("contains", "exists") for t in tests)
        and any(t.op == "contains" for t in tests)
    ):
        # Read as a list (the engine refuses a plain value here): subsets of what is tested.
        elements = _unique(literals)
        if len(elements) <= 6:
            subsets = [
                list(c)
                for n in range(len(elements) + 1)
                for c in itertools.combinations(elements, n)
            ]
        else:
            subsets = [[], *([e] for e in elements), elements]
        return _labelled(absent + subsets)
    numbers = [v for v in literals if _is_number(v)]
    if any(t.op in NUMERIC_OPS for t in tests) or (literals and len(numbers) == len(literals)):
        # A numeric field (the engine refuses text here): each side of every bound.
        for t in tests:
            bounds = t.value if t.op == "between" else (t.value,) if t.op in NUMERIC_OPS else ()
            for b in bounds:
                step = 1 if isinstance(b, int) else 0.5
                numbers.extend((b - step, b, b + step))
        numbers.append(max(numbers, default=0) + 1)  # unlike every literal
        return _labelled(absent + _unique(numbers))
    values = _unique(literals)
    if any(isinstance(v, bool) for v in values):
        values = _unique([*values, True, False])
    pairs = _labelled(absent + values)
    for pattern in _unique([t.value for t in tests if t.op == "matches"]):
        example = _example(pattern)
        label = f"(text matching {pattern!r})"
        pairs.append((example if example is not None else _Opaque(pattern), label))
    return [*pairs, (_UNLIKE_ANY, "(another value)")]


def _labelled(values: list[Any]) -> list[tuple[Any, str]]:
    return [(v, _label(v)) for v in values]


def _label(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _unique(values: list[Any]) -> list[Any]:
    """Without repeats, keeping types apart (``1``, ``1.0`` and ``True`` stay distinct)."""
    seen: set[Any] = set()
    out = []
    for v in values:
        key = (type(v).__name__, tuple(v) if isinstance(v, list) else v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _example(pattern: str) -> str | None:
    """A string ``pattern`` matches, from its literal alternatives, or None."""
    body = re.sub(r"^\(\?[aiLmsux]+\)", "", pattern)
    for part in [body, *body.split("|")]:
        text = re.sub(r"\\([^A-Za-z0-9])", r"\1", part.strip("^$")).replace("\\b", "")
        for candidate in (text, text.lower(), text.upper()):
            if re.search(pattern, candidate):
                return candidate
    return None


def _holds(cond: Condition, values: dict[str, Any], ranks: dict[str, dict[str, int]]) -> bool:
    """``cond`` over field ``values`` with the engine's semantics (condition.holds)."""
    if isinstance(cond, Test):
        value = values.get(cond.field, MISSING)
        if isinstance(value, _Opaque):
            if cond.op == "matches":
                return bool(cond.value == value.pattern)
            value = _UNLIKE_ANY
        return holds(cond, value, ranks.get(cond.field))
    if isinstance(cond, Not):
        return not _holds(cond.part, values, ranks)
    if isinstance(cond, All):
        return all(_holds(p, values, ranks) for p in cond.parts)
    return any(_holds(p, values, ranks) for p in cond.parts)


def _merge_gaps(combos: list[tuple[int, ...]]) -> list[tuple[frozenset[int], ...]]:
    """Fold combinations that differ in one field into sets of that field's values.

    Repeated over every field until nothing folds, so a gap reads
    ``severity=general, tier in {silver, bronze}`` rather than as its product.
    """
    current = {tuple(frozenset((v,)) for v in c) for c in combos}
    changed = True
    while changed:
        changed = False
        for i in range(len(combos[0]) if combos else 0):
            groups: dict[tuple[frozenset[int], ...], frozenset[int]] = {}
            for c in current:
                rest = c[:i] + c[i + 1 :]
                groups[rest] = groups.get(rest, frozenset()) | c[i]
            if len(groups) < len(current):
                changed = True
                current = {rest[:i] + (vals,) + rest[i:] for rest, vals in groups.items()}
    return sorted(current, key=lambda c: [sorted(s) for s in c])


# -- outcomes ---------------------------------------------------------------


def outcome_items(outcome: Outcome) -> dict[str, Any]:
    """An outcome flattened to the keys a later rule overrides one by one.

    ``priority``, ``calendar``, ``escalation_plan``, ``penalty_class``,
    ``targets.METRIC`` (a Duration) and ``route.PART``; tags are added to,
    never overridden, so they are left out.
    """
    items: dict[str, Any] = {
        key: getattr(outcome, key)
        for key in ("priority", "calendar", "escalation_plan", "penalty_class")
        if getattr(outcome, key) is not None
    }
    items.update({f"targets.{m}": d for m, d in outcome.targets.items()})
    if outcome.route is not None:
        items.update(
            {f"route.{k}": v for k, v in outcome.route.model_dump(exclude_none=True).items()}
        )
    return items


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Duration) and isinstance(b, Duration):
        return (a.seconds, a.days) == (b.seconds, b.days)
    return bool(a == b)


# -- creation instants, for comparing due times -----------------------------

#: Fields whose value follows from the ticket's creation instant.
_DERIVED = ("local_weekday", "local_hour", "in_hours.", "holiday.")


class _ReferenceWeek:
    """Hourly creation instants over one week, and due times counted from each.

    The week starts on the first Monday on or after the version's effective
    date, in its timezone. Each instant has the derived facts the rules test
    (``derived``), so a combination is judged only at instants that have its
    facts.
    """

    def __init__(self, rs: CompiledRuleset, derived: list[str]) -> None:
        zone = ZoneInfo(rs.model.timezone)
        first = rs.model.effective_from.astimezone(zone).date()
        monday = datetime.combine(first + timedelta(days=-first.weekday() % 7), time(), zone)
        self.starts = [
            datetime.fromtimestamp(monday.timestamp() + 3600 * h, zone) for h in range(7 * 24)
        ]
        self.calendars = rs.calendars
        self.derived = derived
        self.by_facts: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, start in enumerate(self.starts):
            self.by_facts[tuple(self._fact(f, start) for f in derived)].append(i)
        self.dues: dict[tuple[str, Duration], list[datetime]] = {}

    def _fact(self, field: str, start: datetime) -> Any:
        if field == "local_weekday":
            return WEEKDAYS[start.weekday()]
        if field == "local_hour":
            return start.hour
        kind, calendar = field.split(".", 1)
        if kind == "in_hours":
            return self.calendars[calendar].is_open(start)
        return self.calendars[calendar].is_holiday(start)

    def consistent(self, values: dict[str, Any]) -> list[int]:
        """The instants (indices) whose derived facts are those in ``values``."""
        return self.by_facts.get(tuple(values[f] for f in self.derived), [])

    def due(self, calendar: str, target: Duration) -> list[datetime]:
        """The due time of ``target`` counted in ``calendar`` from each instant."""
        key = (calendar, target)
        if key not in self.dues:
            cal = self.calendars[calendar]
            self.dues[key] = [
                cal.add_days(s, target.days)
                if target.days is not None
                else cal.add(s, timedelta(seconds=target.seconds or 0))
                for s in self.starts
            ]
        return self.dues[key]

    def earlier(
        self, calendar: str, target: Duration, other_calendar: str, other: Duration, at: list[int]
    ) -> list[int]:
        """The instants of ``at`` from which ``target`` falls due before ``other``."""
        mine, theirs = self.due(calendar, target), self.due(other_calendar, other)
        return [i for i in at if mine[i] < theirs[i]]

    def label(self, i: int) -> str:
        """``Fri 2026-01-09 17:00``."""
        return self.starts[i].strftime("%a %Y-%m-%d %H:%M")


# -- the analysis -----------------------------------------------------------

#: Who set an outcome: (table index, the rule's index or "default").
_Source = tuple[int, int | Literal["default"]]
#: A merged decision's targets (with who set each) and calendar.
_Decided = tuple[dict[str, tuple[Duration, _Source]], str]


class _Linter:
    """Collects the findings of one ruleset version."""

    def __init__(self, rs: CompiledRuleset, located: Located) -> None:
        self.rs = rs
        self.located = located
        self.findings: list[Finding] = []

    def add(
        self,
        code: str,
        path: tuple[str | int, ...],
        message: str,
        *,
        severity: Severity | None = None,
        table: str | None = None,
        rule: str | None = None,
        name: str | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                code=code,
                severity=severity or CODES[code][0],
                file=self.located.file,
                line=self.line(path),
                message=message,
                ruleset=self.rs.model.label,
                table=table,
                rule=rule,
                name=name,
            )
        )

    def line(self, path: tuple[str | int, ...]) -> int | None:
        return self.located.where(path)[0]

    def table(self, ti: int) -> None:
        table = self.rs.model.tables[ti]
        conditions = [self.rs.conditions[(ti, ri)] for ri in range(len(table.rules))]
        space = _space(self.rs, conditions)
        if space.size > MAX_COMBINATIONS:
            self.add(
                "SLA009",
                ("tables", ti),
                f"table {table.name!r} tests {space.size} combinations of "
                f"{', '.join(space.fields)} (the limit is {MAX_COMBINATIONS}); not analysed",
                table=table.name,
            )
            return
        combos = list(space.combinations())
        matched = []
        for combo in combos:
            values = space.assignment(combo)
            matched.append(
                [ri for ri, c in enumerate(conditions) if _holds(c, values, self.rs.ranks)]
            )
        ever = {ri for m in matched for ri in m}
        for ri, rule in enumerate(table.rules):
            if ri not in ever:
                self.add(
                    "SLA008",
                    ("tables", ti, "rules", ri),
                    f"rule {rule.name!r} can never match: no ticket satisfies all its conditions",
                    table=table.name,
                    rule=rule.name,
                )
        if table.hit == "first":
            self.shadowed(ti, matched, ever)
            if table.default is None:
                self.gaps(ti, space, [c for c, m in zip(combos, matched, strict=True) if not m])
        else:
            self.conflicts(ti, space, combos, matched)

    def shadowed(self, ti: int, matched: list[list[int]], ever: set[int]) -> None:
        table = self.rs.model.tables[ti]
        applied = {m[0] for m in matched if m}
        for ri in sorted(ever - applied):
            takers = sorted({m[0] for m in matched if ri in m})
            by = ", ".join(
                f"{table.rules[t].name!r} (line {self.line(('tables', ti, 'rules', t))})"
                for t in takers
            )
            self.add(
                "SLA002",
                ("tables", ti, "rules", ri),
                f"rule {table.rules[ri].name!r} never applies: every ticket it matches is "
                f"taken first by {by} (hit policy first)",
                table=table.name,
                rule=table.rules[ri].name,
            )

    def gaps(self, ti: int, space: _Space, uncovered: list[tuple[int, ...]]) -> None:
        if not uncovered:
            return
        table = self.rs.model.tables[ti]
        merged = _merge_gaps(uncovered)
        for combo in merged[:MAX_GAPS]:
            self.add(
                "SLA001",
                ("tables", ti),
                f"gap in table {table.name!r}: no rule matches {space.describe(combo)} and "
                "the table has no default (such tickets fail with 'no rule matched')",
                table=table.name,
            )
        if len(merged) > MAX_GAPS:
            self.add(
                "SLA001",
                ("tables", ti),
                f"gap in table {table.name!r}: {len(merged) - MAX_GAPS} more uncovered "
                "combinations like those above",
                table=table.name,
            )

    def conflicts(
        self,
        ti: int,
        space: _Space,
        combos: list[tuple[int, ...]],
        matched: list[list[int]],
    ) -> None:
        table = self.rs.model.tables[ti]
        items = [outcome_items(r.then) for r in table.rules]
        seen: set[tuple[int, int]] = set()
        for combo, m in zip(combos, matched, strict=True):
            for a, b in itertools.combinations(m, 2):
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                keys = sorted(
                    k
                    for k in items[a].keys() & items[b].keys()
                    if not _same(items[a][k], items[b][k])
                )
                if not keys:
                    continue
                what = "; ".join(f"{k}: {items[a][k]} then {items[b][k]}" for k in keys)
                first, later = table.rules[a].name, table.rules[b].name
                self.add(
                    "SLA003",
                    ("tables", ti, "rules", b),
                    f"rules {first!r} (line {self.line(('tables', ti, 'rules', a))}) and "
                    f"{later!r} both match e.g. {space.describe(combo)} and set {what}; "
                    f"the later rule, {later!r}, wins (hit policy collect)",
                    table=table.name,
                    rule=later,
                )

    def severity_order(self) -> None:
        """SLA007 over whole decisions (every table merged, as the engine merges them)."""
        vocab = self.rs.model.vocabularies.get("severity")
        tables = self.rs.model.tables
        conditions = [
            [self.rs.conditions[(ti, ri)] for ri in range(len(t.rules))]
            for ti, t in enumerate(tables)
        ]
        space = _space(self.rs, [c for cs in conditions for c in cs])
        if vocab is None or "severity" not in space.fields:
            return
        if space.size > MAX_COMBINATIONS:
            self.add(
                "SLA009",
                ("vocabularies", "severity"),
                f"the tables test {space.size} combinations of {', '.join(space.fields)} "
                f"(the limit is {MAX_COMBINATIONS}); targets not checked against the "
                "severity order",
            )
            return
        k = space.fields.index("severity")
        rest_space = _Space(
            space.fields[:k] + space.fields[k + 1 :],
            space.values[:k] + space.values[k + 1 :],
            space.labels[:k] + space.labels[k + 1 :],
        )
        week = _ReferenceWeek(self.rs, [f for f in space.fields if f.startswith(_DERIVED)])
        # the other fields' values -> severity rank -> (decided targets, calendar)
        contexts: dict[tuple[int, ...], dict[int, _Decided]] = defaultdict(dict)
        for combo in space.combinations():
            decided = self.decide(conditions, space.assignment(combo))
            if decided is not None:
                contexts[combo[:k] + combo[k + 1 :]][combo[k]] = decided
        # (who set the weaker target, metric) -> reading -> contexts it holds in; readings
        # are ranked to show first one that holds whenever, then the nearest severities.
        offences: dict[tuple[_Source, str], dict[str, list[tuple[int, ...]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        rank: dict[str, tuple[bool, int]] = {}
        always: dict[tuple[_Source, str], bool] = defaultdict(bool)
        for rest, by_rank in contexts.items():
            starts = week.consistent(space.assignment(rest[:k] + (0,) + rest[k:]))
            if not starts:
                continue  # derived facts no creation instant has (e.g. open on a closed day)
            for strong_rank, weak_rank in itertools.combinations(sorted(by_rank), 2):
                (strong_targets, strong_cal) = by_rank[strong_rank]
                (weak_targets, weak_cal) = by_rank[weak_rank]
                for metric in sorted(strong_targets.keys() & weak_targets.keys()):
                    (strong, strong_by), (weak, weak_by) = (
                        strong_targets[metric],
                        weak_targets[metric],
                    )
                    earlier = week.earlier(weak_cal, weak, strong_cal, strong, starts)
                    if not earlier:
                        continue
                    every = len(earlier) == len(starts)
                    when = (
                        "whenever it is created"
                        if every
                        else f"for some creation times, e.g. {week.label(earlier[0])}"
                    )
                    reading = (
                        f"severity {vocab.values[weak_rank].value} gets {metric} {weak} "
                        f"({weak_cal}), due before the {strong} ({strong_cal}) of the more severe "
                        f"{vocab.values[strong_rank].value} ({self.source_name(strong_by)}, line "
                        f"{self.line(self.target_path(strong_by, metric))}) {when}"
                    )
                    offences[(weak_by, metric)][reading].append(rest)
                    rank[reading] = min(rank.get(reading, (True, 0)), (not every, -strong_rank))
                    always[(weak_by, metric)] |= every
        for (source, metric), readings in offences.items():
            reading = min(readings, key=rank.__getitem__)
            rests = readings[reading]
            context = rest_space.describe(_merge_gaps(rests)[0])
            more = len(readings) - 1
            ti = source[0]
            self.add(
                "SLA007",
                self.target_path(source, metric),
                f"{self.source_name(source)}: {reading}"
                + ("" if context == "every ticket" else f", when {context}")
                + (f" (and {more} more such comparison(s))" if more else ""),
                severity="error" if always[(source, metric)] else "warning",
                table=tables[ti].name,
                rule=None if source[1] == "default" else tables[ti].rules[source[1]].name,
            )

    def decide(self, conditions: list[list[Condition]], values: dict[str, Any]) -> _Decided | None:
        """The targets (and who set each) and calendar of a merged decision; None: no decision."""
        targets: dict[str, tuple[Duration, _Source]] = {}
        calendar = None
        for ti, table in enumerate(self.rs.model.tables):
            matched = [
                ri for ri, c in enumerate(conditions[ti]) if _holds(c, values, self.rs.ranks)
            ]
            deciders: list[tuple[Outcome, _Source]]
            if not matched:
                if table.default is None and table.hit == "first":
                    return None  # "no rule matched"
                deciders = [] if table.default is None else [(table.default, (ti, "default"))]
            elif table.hit == "first":
                deciders = [(table.rules[matched[0]].then, (ti, matched[0]))]
            else:
                deciders = [(table.rules[ri].then, (ti, ri)) for ri in matched]
            for outcome, source in deciders:
                targets.update({m: (d, source) for m, d in outcome.targets.items()})
                calendar = outcome.calendar or calendar
        return None if calendar is None else (targets, calendar)

    def source_name(self, source: _Source) -> str:
        table = self.rs.model.tables[source[0]]
        if source[1] == "default":
            return f"table {table.name!r} default"
        return f"rule {table.rules[source[1]].name!r}"

    @staticmethod
    def target_path(source: _Source, metric: str) -> tuple[str | int, ...]:
        ti, ri = source
        if ri == "default":
            return ("tables", ti, "default", "targets", metric)
        return ("tables", ti, "rules", ri, "then", "targets", metric)

    def unused(self) -> None:
        model = self.rs.model
        outcomes = [r.then for t in model.tables for r in t.rules]
        outcomes += [t.default for t in model.tables if t.default is not None]
        tested = {
            t.field.split(".", 1)[1]
            for c in self.rs.conditions.values()
            for t in iter_tests(c)
            if t.field.startswith(("in_hours.", "holiday."))
        }
        used = {
            "calendars": {o.calendar for o in outcomes} | tested,
            "escalation_plans": {o.escalation_plan for o in outcomes},
            "metrics": {m for o in outcomes for m in o.targets},
        }
        checks = (
            ("SLA004", "calendars", "calendar", "no outcome decides it and no rule tests it"),
            ("SLA005", "escalation_plans", "escalation plan", "no outcome names it"),
            ("SLA006", "metrics", "metric", "no outcome sets a target for it"),
        )
        for code, section, what, why in checks:
            for name in getattr(model, section):
                if name not in used[section]:
                    self.add(
                        code,
                        (section, name),
                        f"{what} {name!r} is declared but unused: {why}",
                        name=name,
                    )


# -- command line -----------------------------------------------------------


def add_lint_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``lint`` to the ``slaengine`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "lint",
        help="analyse rulesets: gaps, shadowed rules, conflicts, unused definitions",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("paths", nargs="*", help="ruleset files or directories (default: rulesets)")
    p.add_argument(
        "--config",
        help="YAML with 'ignore:' entries (code, reason, rule, ...); "
        "default: lint.yaml in the (first) directory linted, if there is one",
    )
    p.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    p.set_defaults(func=lint_command)
    return p


def lint_command(args: argparse.Namespace) -> int:
    """Run ``slaengine lint``: print the findings; exit 1 when an error remains."""
    paths = args.paths or ["rulesets"]
    config = args.config
    if config is None:
        beside = [Path(p) / "lint.yaml" for p in paths if Path(p).is_dir()]
        config = next((str(c) for c in beside if c.is_file()), None)
    result = lint_paths(paths, config)
    if args.json:
        document = {
            "findings": [f.model_dump() for f in result.findings],
            "silenced": [{**f.model_dump(), "reason": r} for f, r in result.silenced],
            "errors": result.errors,
            "warnings": result.warnings,
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        for finding in result.findings:
            print(finding.format())
        print(
            f"{result.errors} error(s), {result.warnings} warning(s), "
            f"{len(result.silenced)} silenced"
        )
    return 1 if result.errors else 0
