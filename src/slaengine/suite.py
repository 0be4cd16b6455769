"""Ruleset regression suites: YAML case files QA writes without Python, and running them.

A suite is a file ``*.sla-test.yaml`` beside the rulesets::

    suite: standard-support 1.0.0        # a name (default: the file name)
    ruleset: standard-support
    version: 1.0.0                       # or versions: ">=1.0,<2" | all
                                         # or in_force: {from: 2026-06-15, to: 2026-07-15}
    ticket: {tier: silver}               # defaults under every case's ticket (also facts:)
    cases:
      - name: serious-counts-working-hours
        description: ...
        tags: [targets]                  # pytest markers and keywords
        skip: why not now                # optional
        ticket: {severity: serious, created_at: 2026-03-02T10:00:00+08:00}
        events:                          # optional timeline after creation
          - {at: +1h, type: status_changed, fields: {status: pending_customer}}
        at: +5h                          # the instant to judge the metrics at
        expect:
          priority: P2
          matched_rules: [serious]       # exact; or {contains: [...], excludes: [...]}
          route: {queue: general}
          targets: {first_response: {target: 2h, due_at: 2026-03-02T12:00:00+08:00},
                    next_update: null}   # null: no target for that metric
          metrics: {resolution: {state: paused, breached: false}}
      - name: by-severity
        parameters:                      # a table: the case runs once per row
          - {severity: urgent, priority: P1}
          - {severity: general, priority: P3}
        ticket: {severity: "${severity}", created_at: 2026-03-02T10:00:00+08:00}
        expect: {priority: "${priority}"}

``in_force`` takes every version in force at some instant from ``from`` to
``to`` (a date includes its whole day, in the ruleset's timezone). Each case
runs once per selected version (and parameter row). Only the keys given in
``expect`` are checked: instants compare as instants whatever their offset,
numbers to the precision they are written with (``20.8`` matches
20.833...), and ``error: TEXT`` expects the evaluation to fail with a
message containing TEXT. Times in ``events`` and ``at`` are instants with
an offset or wall-clock time after creation (``+1h30m``, ``+2d``).

Loading checks everything it can before anything runs (unknown keys,
unknown ruleset, version, metric, rule, calendar or plan names, invalid
tickets and events, unused or unknown parameters) and reports every problem
at once, each as ``file:line:column``.

The cases run against an :class:`~slaengine.engine.Engine` over the ruleset
directory (``rulesets:`` in the suite, relative to it; else the nearest
directory above holding ``contracts.yaml``; else the parent of the suite's
directory). The suite's ruleset and version decide: a ticket's ``contract``
is only data here, its tier is not applied (give ``tier``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from slaengine.calendar import Calendar
from slaengine.clock import MetricStatus, TicketClock
from slaengine.decision import Decision
from slaengine.engine import Engine, RuleTrace
from slaengine.errors import RulesetError, RulesetErrors, SlaEngineError, TicketError
from slaengine.escalation import EscalationPlan
from slaengine.library import CONTRACTS_FILE, TEST_SUFFIX
from slaengine.metric import MetricDefinition
from slaengine.ruleset import CompiledRuleset
from slaengine.ticket import Ticket, TicketEvent, parse_event, parse_ticket
from slaengine.yamlsource import Located, Path_, read_yaml_file

__all__ = [
    "TEST_SUFFIX",
    "CaseResult",
    "CaseRun",
    "Check",
    "Expectation",
    "Suite",
    "Trace",
    "Workspace",
    "find_suites",
    "format_failure",
    "load_suite",
    "run_case",
]

_STRICT = ConfigDict(frozen=True, extra="forbid")

# ------------------------------------------------------------------ the file format


class ListExpect(BaseModel):
    """A partial expectation on a list (matched rules, tags): members it must and must not hold."""

    model_config = _STRICT
    contains: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)


class RouteExpect(BaseModel):
    """Expected parts of the decision's route."""

    model_config = _STRICT
    queue: str | None = None
    group: str | None = None
    assignee: str | None = None


class TargetExpect(BaseModel):
    """Expected parts of one metric's target; a plain text ``4h`` is short for ``{target: 4h}``."""

    model_config = _STRICT
    target: str | None = None
    calendar: str | None = None
    due_at: AwareDatetime | None = None
    seconds: int | None = None
    days: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"target": data} if isinstance(data, str) else data


class StatusExpect(BaseModel):
    """Expected parts of one metric's status at the case's ``at`` (see clock.MetricStatus).

    ``breached`` is true when the current cycle is breached (met late, or
    open and past due).
    """

    model_config = _STRICT
    state: Literal["not_started", "running", "paused", "met", "breached", "cancelled"] | None = None
    breached: bool | None = None
    active: bool | None = None
    paused: bool | None = None
    cycle: int | None = None
    target: str | None = None
    target_seconds: float | None = None
    calendar: str | None = None
    started_at: AwareDatetime | None = None
    target_since: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    met_at: AwareDatetime | None = None
    breached_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    elapsed_seconds: float | None = None
    paused_seconds: float | None = None
    remaining_seconds: float | None = None
    percent_used: float | None = None
    cycles_met: int | None = None
    cycles_breached: int | None = None
    cycles_cancelled: int | None = None


class Expectation(BaseModel):
    """What a case expects: only the keys given are checked.

    ``targets.METRIC: null`` expects no target for that metric; ``metrics``
    holds statuses at the case's ``at``; ``error`` expects the evaluation
    to fail with a message containing that text (and nothing else).
    """

    model_config = _STRICT
    priority: str | None = None
    calendar: str | None = None
    escalation_plan: str | None = None
    penalty_class: str | None = None
    matched_rules: list[str] | ListExpect | None = None
    tags: list[str] | ListExpect | None = None
    route: RouteExpect | None = None
    targets: dict[str, TargetExpect | None] = Field(default_factory=dict)
    metrics: dict[str, StatusExpect] = Field(default_factory=dict)
    error: str | None = None

    @model_validator(mode="after")
    def _error_alone(self) -> Expectation:
        if self.error is not None and len(self.model_fields_set) > 1:
            raise ValueError("'error' expects the evaluation to fail; give no other expectation")
        if not self.model_fields_set:
            raise ValueError("expect nothing? give at least one expectation")
        return self


class EventSpec(BaseModel):
    """One event of a case's timeline; ``at`` is an instant or ``+1h30m`` after creation."""

    model_config = _STRICT
    at: AwareDatetime | str
    type: str = Field(min_length=1)
    fields: dict[str, Any] = Field(default_factory=dict)


class CaseSpec(BaseModel):
    """One case as written (after a parameter row is substituted)."""

    model_config = _STRICT
    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    skip: str | None = None
    ticket: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)
    events: list[EventSpec] = Field(default_factory=list)
    at: AwareDatetime | str | None = None
    expect: Expectation


class InForce(BaseModel):
    """Every version in force at some instant from ``from`` to ``to`` (a date includes its day)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    start: date | AwareDatetime = Field(alias="from")
    end: date | AwareDatetime = Field(alias="to")


class SuiteSpec(BaseModel):
    """The suite-level keys; ``ticket`` and ``facts`` are defaults merged under each case's."""

    model_config = _STRICT
    suite: str | None = None
    description: str = ""
    ruleset: str = Field(min_length=1)
    version: str | None = None
    versions: str | None = None
    in_force: InForce | None = None
    rulesets: str | None = None
    tags: list[str] = Field(default_factory=list)
    ticket: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)
    cases: list[Any] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_selection(self) -> SuiteSpec:
        given = [k for k in ("version", "versions", "in_force") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "say which versions to test with exactly one of: version (1.0.0), "
                "versions ('>=1.0,<2' or 'all'), in_force ({from: DATE, to: DATE})"
                + (f"; got {', '.join(given)}" if given else "")
            )
        return self


# ------------------------------------------------------------------ loaded suites


@dataclass(frozen=True)
class CaseRun:
    """One runnable case: a case of the file, for one version and one parameter row."""

    id: str  # name[version] or name[version-row]
    name: str
    description: str
    file: str
    line: int
    suite: str
    library: Path  # the ruleset directory the engine is loaded from
    ruleset: CompiledRuleset
    ticket: Ticket
    facts: dict[str, Any]
    events: tuple[TicketEvent, ...]
    at: datetime | None
    expect: Expectation
    tags: tuple[str, ...]
    skip: str | None
    parameters: dict[str, Any] | None


@dataclass
class Suite:
    """A loaded, checked suite file: its runs, and the versions it targets."""

    name: str
    file: str
    description: str
    library: Path
    versions: list[CompiledRuleset]
    runs: list[CaseRun]


class Workspace:
    """Engines by ruleset directory, shared by every suite of a run.

    Loading and compiling a directory costs about half a second, so each is
    loaded once; a directory that fails to load fails every suite using it
    with the same errors.
    """

    def __init__(self) -> None:
        self._engines: dict[Path, Engine | RulesetErrors] = {}

    def engine(self, directory: Path) -> Engine:
        """The engine over ``directory``; raise its RulesetErrors if it does not load."""
        key = directory.resolve()
        found = self._engines.get(key)
        if found is None:
            try:
                found = Engine.from_directory(_shown(key))
            except RulesetErrors as exc:
                found = exc
            self._engines[key] = found
        if isinstance(found, RulesetErrors):
            raise found
        return found

    def close(self) -> None:
        """Free every engine."""
        for found in self._engines.values():
            if isinstance(found, Engine):
                found.close()
        self._engines.clear()


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it (for messages)."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def find_suites(paths: list[Path]) -> list[Path]:
    """Every ``*.sla-test.yaml`` file given or below the given directories, sorted, once."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*" + TEST_SUFFIX)):
                found.setdefault(file, None)
        elif path.exists():
            found.setdefault(path, None)
        else:
            raise FileNotFoundError(2, "No such file or directory", str(path))
    return list(found)


def library_directory(path: Path, named: str | None) -> Path:
    """Where a suite's rulesets are: ``named`` (relative to the suite), else see module doc."""
    if named is not None:
        return (path.parent / named).resolve()
    for folder in path.resolve().parents:
        if (folder / CONTRACTS_FILE).exists():
            return folder
    return path.resolve().parent.parent


def load_suite(path: Path, workspace: Workspace) -> Suite:
    """Read and check one suite file; raise RulesetErrors listing every problem."""
    located = read_yaml_file(path)  # malformed YAML raises RulesetError
    return _Loader(located, path, workspace).load()


class _Loader:
    """Checks one suite file, collecting every problem before giving up."""

    library: Path  # the ruleset directory, known once the suite-level keys are valid

    def __init__(self, located: Located, path: Path, workspace: Workspace) -> None:
        self.located = located
        self.path = path
        self.workspace = workspace
        self.errors: list[RulesetError] = []

    def error(self, where: Path_, message: str) -> None:
        self.errors.append(self.located.error(where, message))

    def pydantic(self, exc: ValidationError, prefix: Path_, model: type[BaseModel]) -> None:
        found = []
        for err in exc.errors():
            # A union reports each alternative under a tag such as 'ListExpect'; drop the tags.
            loc = tuple(
                p for p in err["loc"] if not str(p).startswith("function-") and p not in _UNION_TAGS
            )
            found.append((loc, err))
        for loc, err in found:
            # "should be a list" beside a problem inside the mapping given: the mapping was meant.
            if err["type"] in _SHAPE_ERRORS and any(
                other[: len(loc)] == loc and o is not err for other, o in found
            ):
                continue
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}{_known_keys(model, loc)}"
            elif err["type"] == "missing":
                message = f"missing required key {loc[-1]!r}"
            elif "input" in err and not isinstance(err["input"], (dict, list)):
                value = err["input"]
                shown = value.isoformat() if isinstance(value, (date, datetime)) else repr(value)
                message = f"{shown}: {message}"
            self.error((*prefix, *loc), message)

    def load(self) -> Suite:
        data = self.located.data
        if not isinstance(data, dict):
            raise RulesetErrors([self.located.error((), "a suite must be a mapping of keys")])
        try:
            spec = SuiteSpec.model_validate(data)
        except ValidationError as exc:
            self.pydantic(exc, (), SuiteSpec)
            raise RulesetErrors(_dedupe(self.errors)) from None
        library = self.library = library_directory(self.path, spec.rulesets)
        try:
            engine = self.workspace.engine(library)
        except RulesetErrors as exc:
            where = "rulesets" if spec.rulesets is not None else "ruleset"
            raise RulesetErrors(
                [self.located.error((where,), f"the rulesets in {_shown(library)} do not load:")]
                + exc.errors
            ) from None
        versions = self.select(spec, engine)
        runs: list[CaseRun] = []
        name = spec.suite or self.path.name.removesuffix(TEST_SUFFIX)
        seen: dict[str, int] = {}
        for index, raw in enumerate(spec.cases):
            runs.extend(self.case(spec, name, index, raw, versions, seen))
        if self.errors:
            raise RulesetErrors(_dedupe(self.errors))
        return Suite(name, str(self.path), spec.description, library, versions, runs)

    def select(self, spec: SuiteSpec, engine: Engine) -> list[CompiledRuleset]:
        available = engine.library.versions.get(spec.ruleset)
        if not available:
            known = ", ".join(sorted(engine.library.versions)) or "(none)"
            raise RulesetErrors(
                [
                    self.located.error(
                        ("ruleset",), f"unknown ruleset {spec.ruleset!r}; known: {known}"
                    )
                ]
            )
        listing = ", ".join(rs.version for rs in available)
        if spec.version is not None:
            chosen = [rs for rs in available if rs.version == str(spec.version)]
            if not chosen:
                message = f"{spec.ruleset} has no version {spec.version!r}; it has {listing}"
                raise RulesetErrors([self.located.error(("version",), message)])
            return chosen
        if spec.versions is not None:
            return self._range(spec.versions, available, listing)
        assert spec.in_force is not None
        zone = ZoneInfo(available[0].model.timezone)
        start = _instant(spec.in_force.start, zone, end=False)
        end = _instant(spec.in_force.end, zone, end=True)
        if end <= start:
            raise RulesetErrors([self.located.error(("in_force",), "'to' is before 'from'")])
        chosen = []
        for i, rs in enumerate(available):
            until = available[i + 1].model.effective_from if i + 1 < len(available) else None
            if rs.model.effective_from < end and (until is None or until > start):
                chosen.append(rs)
        if not chosen:
            raise RulesetErrors(
                [
                    self.located.error(
                        ("in_force",),
                        f"no version of {spec.ruleset} is in force then; versions: {listing}",
                    )
                ]
            )
        return chosen

    def _range(
        self, text: str, available: list[CompiledRuleset], listing: str
    ) -> list[CompiledRuleset]:
        if str(text).strip() == "all":
            return list(available)
        try:
            specifier = SpecifierSet(str(text))
        except InvalidSpecifier:
            message = f"{text!r} is not a version range; write e.g. '>=1.0,<2' or 'all'"
            raise RulesetErrors([self.located.error(("versions",), message)]) from None
        chosen = []
        for rs in available:
            try:
                if specifier.contains(Version(rs.version), prereleases=True):
                    chosen.append(rs)
            except InvalidVersion:
                continue  # a semantic version packaging can't read is never in a range
        if not chosen:
            message = f"no version of {available[0].name} is in {text!r}; it has {listing}"
            raise RulesetErrors([self.located.error(("versions",), message)])
        return chosen

    def case(
        self,
        spec: SuiteSpec,
        suite: str,
        index: int,
        raw: Any,
        versions: list[CompiledRuleset],
        seen: dict[str, int],
    ) -> Iterator[CaseRun]:
        where: Path_ = ("cases", index)
        if not isinstance(raw, dict):
            self.error(where, "a case must be a mapping with at least 'name' and 'expect'")
            return
        line = self.located.where(where)[0] or 1
        rows = self.rows(raw.get("parameters"), (*where, "parameters"))
        if rows is None:
            return
        body = {k: v for k, v in raw.items() if k != "parameters"}
        row_ids: set[str] = set()
        for n, row in enumerate(rows):
            case_data = body if row is None else self.substitute(body, row, where)
            if case_data is None:
                continue
            try:
                case = CaseSpec.model_validate(case_data)
            except ValidationError as exc:
                self.pydantic(exc, where, CaseSpec)
                return
            if n == 0:
                if case.name in seen:
                    self.error(
                        (*where, "name"),
                        f"case {case.name!r} is also at line "
                        f"{seen[case.name]}; give each case its own name",
                    )
                seen[case.name] = line
            row_id = None if row is None else "-".join(_id_part(v) for v in row.values())
            if row_id is not None:
                if row_id in row_ids:
                    self.error((*where, "parameters", n), "this row repeats an earlier one")
                    continue
                row_ids.add(row_id)
            prepared = self.prepare(spec, case, where, row_id)
            if prepared is None:
                continue
            ticket, events, at = prepared
            for rs in versions:
                if not self.check_names(case.expect, rs, (*where, "expect")):
                    continue
                label = rs.version if row_id is None else f"{rs.version}-{row_id}"
                yield CaseRun(
                    id=f"{case.name}[{label}]",
                    name=case.name,
                    description=case.description,
                    file=str(self.path),
                    line=line,
                    suite=suite,
                    library=self.library,
                    ruleset=rs,
                    ticket=ticket,
                    facts={**spec.facts, **case.facts},
                    events=events,
                    at=at,
                    expect=case.expect,
                    tags=tuple(dict.fromkeys([*spec.tags, *case.tags])),
                    skip=case.skip,
                    parameters=row,
                )

    def rows(self, raw: Any, where: Path_) -> list[dict[str, Any] | None] | None:
        if raw is None:
            return [None]
        if not isinstance(raw, list) or not raw:
            self.error(where, "parameters: give a list of rows, each a mapping of name: value")
            return None
        columns: list[str] | None = None
        for i, row in enumerate(raw):
            if not isinstance(row, dict) or not row:
                self.error((*where, i), "a parameter row must be a mapping of name: value")
                return None
            bad = [k for k in row if not isinstance(k, str) or not _NAME.match(k)]
            if bad:
                self.error((*where, i), f"parameter name {bad[0]!r}: use letters, digits and _")
                return None
            if columns is None:
                columns = list(row)
            elif set(row) != set(columns):
                self.error(
                    (*where, i),
                    f"this row has {sorted(row)}; the first row has "
                    f"{sorted(columns)}; give every row the same names",
                )
                return None
        return list(raw)

    def substitute(
        self, body: dict[str, Any], row: dict[str, Any], where: Path_
    ) -> dict[str, Any] | None:
        used: set[str] = set()
        before = len(self.errors)
        result = self._substitute(body, row, where, used)
        unused = [name for name in row if name not in used]
        if unused:
            self.error(
                (*where, "parameters"),
                f"parameter {unused[0]!r} is not used; "
                "write ${" + unused[0] + "} where its value goes",
            )
        return None if len(self.errors) > before else result

    def _substitute(self, value: Any, row: dict[str, Any], path: Path_, used: set[str]) -> Any:
        if isinstance(value, dict):
            return {k: self._substitute(v, row, (*path, k), used) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, row, (*path, i), used) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        for name in _PLACEHOLDER.findall(value):
            if name not in row:
                self.error(
                    path, f"unknown parameter ${{{name}}}; the parameters are " + ", ".join(row)
                )
                return value
            used.add(name)
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:  # the value itself, keeping its type (a number, a date...)
            return row[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: _text(row[m.group(1)]), value)

    def prepare(
        self, spec: SuiteSpec, case: CaseSpec, where: Path_, row_id: str | None
    ) -> tuple[Ticket, tuple[TicketEvent, ...], datetime | None] | None:
        data = {"id": case.name if row_id is None else f"{case.name}[{row_id}]"}
        data |= spec.ticket | case.ticket
        try:
            ticket = parse_ticket(data)
        except TicketError as exc:
            parts: tuple[str | int, ...] = tuple(exc.path.split(".")) if exc.path else ()
            base = (*where, "ticket") if parts[:1] and parts[0] in case.ticket else ("ticket",)
            self.error(base + parts if parts else (*where, "ticket"), f"ticket: {exc.message}")
            return None
        created = ticket.created_at
        at = None
        if case.at is not None:
            at = self.instant(case.at, created, (*where, "at"))
            if at is None:
                return None
            if at < created:
                self.error((*where, "at"), f"{at.isoformat()} is before the ticket's creation")
                return None
        if case.events and at is None:
            self.error((*where, "events"), "a timeline needs 'at', the instant to judge it at")
            return None
        if case.expect.metrics and at is None:
            self.error(
                (*where, "expect", "metrics"),
                "metric statuses need 'at', the instant "
                "to judge them at (an instant, or e.g. +4h after creation)",
            )
            return None
        fields = ticket.model_dump(exclude={"id", "created_at"}, exclude_defaults=True)
        events = [
            TicketEvent(
                ticket_id=ticket.id,
                event_id=f"{ticket.id}#0",
                at=created,
                type="created",
                fields=fields,
            )
        ]
        for n, spec_event in enumerate(case.events, start=1):
            path = (*where, "events", n - 1)
            if spec_event.type == "created":
                self.error(
                    (*path, "type"),
                    "the case's ticket is the created event; list only what happens after",
                )
                return None
            instant = self.instant(spec_event.at, created, (*path, "at"))
            if instant is None:
                return None
            if instant < created:
                self.error(
                    (*path, "at"),
                    f"{instant.isoformat()} is before the ticket's "
                    f"creation at {created.isoformat()}",
                )
                return None
            if at is not None and instant > at:
                self.error(
                    (*path, "at"),
                    f"{instant.isoformat()} is after the case's 'at' "
                    f"({at.isoformat()}); it would never count",
                )
                return None
            try:
                events.append(
                    parse_event(
                        {
                            "ticket_id": ticket.id,
                            "event_id": f"{ticket.id}#{n}",
                            "at": instant,
                            "type": spec_event.type,
                            "fields": spec_event.fields,
                        }
                    )
                )
            except TicketError as exc:
                self.error(path, f"event: {exc}")
                return None
        return ticket, tuple(events), at

    def instant(self, value: datetime | str, created: datetime, where: Path_) -> datetime | None:
        if isinstance(value, datetime):
            return value
        match = _RELATIVE.fullmatch(value.strip().replace(" ", ""))
        if match is None:
            self.error(
                where,
                f"{value!r} is neither an instant with an offset "
                "(2026-03-02T10:00:00+08:00) nor a time after creation (+1h30m, +2d)",
            )
            return None
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(match.group(1)))
        return created + timedelta(seconds=seconds)

    def check_names(self, expect: Expectation, rs: CompiledRuleset, where: Path_) -> bool:
        """Names in the expectation that the version does not have: errors, before running."""
        model = rs.model
        before = len(self.errors)
        for key, names in (("targets", expect.targets), ("metrics", expect.metrics)):
            for metric in names:
                if metric not in model.metrics:
                    self.error(
                        (*where, key, metric),
                        f"{model.label} has no metric {metric!r}; "
                        f"its metrics: {', '.join(model.metrics)}",
                    )
        rules = {r.name for t in model.tables for r in t.rules}
        listed = expect.matched_rules
        names = (
            listed
            if isinstance(listed, list)
            else ([*listed.contains, *listed.excludes] if listed is not None else [])
        )
        for rule in names:
            if rule not in rules:
                self.error(
                    (*where, "matched_rules"),
                    f"{model.label} has no rule {rule!r}; its rules: {', '.join(sorted(rules))}",
                )
        calendars = [expect.calendar] + [t.calendar for t in expect.targets.values() if t]
        for name in calendars:
            if name is not None and name not in rs.calendars:
                self.error(
                    (*where, "calendar"),
                    f"{model.label} has no calendar {name!r}; "
                    f"its calendars: {', '.join(rs.calendars)}",
                )
        plan = expect.escalation_plan
        if plan is not None and plan not in model.escalation_plans:
            self.error(
                (*where, "escalation_plan"),
                f"{model.label} has no escalation plan "
                f"{plan!r}; its plans: {', '.join(model.escalation_plans) or '(none)'}",
            )
        return len(self.errors) == before


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RELATIVE = re.compile(r"\+((?:\d+[dhms])+)")
_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_UNION_TAGS = {"list[str]", "ListExpect", "TargetExpect", "str", "datetime", "date"}
_SHAPE_ERRORS = {"list_type", "model_type", "model_attributes_type", "dict_type", "string_type"}


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """'; allowed here: a, b' — the keys allowed where an unknown one was written."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                continue
            current = _model_in(info.annotation)
        else:
            current = None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return f"; allowed here: {', '.join(current.model_fields)}"
    return ""


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside an annotation like ``X | None`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _dedupe(errors: list[RulesetError]) -> list[RulesetError]:
    return list({str(e): e for e in errors}.values())


def _instant(value: date | datetime, zone: ZoneInfo, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), zone)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def _id_part(value: Any) -> str:
    return _text(value) if value is not None else "null"


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class Check:
    """One expected value beside the actual one."""

    path: str
    expected: Any
    actual: Any
    ok: bool


@dataclass
class Trace:
    """Every rule of a version for one ticket: matched or not, applied or not, and why.

    Engine.explain for the suite's version, plus ``defaults``: the tables
    whose default (or, for a ``collect`` table, nothing) applied.
    """

    ruleset: str
    source: str
    values: dict[str, Any]
    rules: list[RuleTrace]
    defaults: list[str]


@dataclass
class CaseResult:
    """What running one case gave."""

    run: CaseRun
    outcome: Literal["passed", "failed", "skipped"]
    checks: list[Check] = field(default_factory=list)
    decision: Decision | None = None
    statuses: dict[str, MetricStatus] = field(default_factory=dict)
    error: str | None = None
    traces: list[Trace] = field(default_factory=list)  # one per decision made

    @property
    def branches(self) -> set[tuple[str, str, str, str]]:
        """(ruleset, version, table, rule or ``(default)``/``(none)``) each decision took."""
        rs = self.run.ruleset
        hit = set()
        for trace in self.traces:
            hit |= {(rs.name, rs.version, r.table, r.rule) for r in trace.rules if r.applied}
            hit |= {
                (rs.name, rs.version, table, branch_of_default(rs, table))
                for table in trace.defaults
            }
        return hit


def branch_of_default(rs: CompiledRuleset, table: str) -> str:
    """The branch name of 'no rule of this table applied': ``(default)`` or ``(none)``."""
    declared = next(t for t in rs.model.tables if t.name == table).default
    return "(default)" if declared is not None else "(none)"


def trace(engine: Engine, rs: CompiledRuleset, ticket: Ticket, facts: dict[str, Any]) -> Trace:
    """The rule trace of ``ticket`` under version ``rs`` (see :class:`Trace`)."""
    x = engine.explain(ticket, facts=facts, ruleset=rs.name, version=rs.version)
    applied = {r.table for r in x.rules if r.applied}
    defaults: list[str] = []
    for table in rs.model.tables:
        if table.name in applied:
            continue
        if table.default is None and table.hit == "first":
            break  # no match and no default: the evaluation stopped here
        defaults.append(table.name)
    return Trace(x.ruleset, x.source, x.values, x.rules, defaults)


class _VersionPolicy:
    """ClockPolicy for one version: decides with the suite's version, remembers each ticket."""

    def __init__(self, engine: Engine, rs: CompiledRuleset, facts: dict[str, Any]) -> None:
        self.engine = engine
        self.rs = rs
        self.facts = facts
        self.decided: list[Ticket] = []

    def decide(self, ticket: Ticket) -> Decision:
        self.decided.append(ticket)
        return self.engine.evaluate(
            ticket, facts=self.facts or None, ruleset=self.rs.name, version=self.rs.version
        )

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        return self.engine.metrics(decision)

    def calendar(self, decision: Decision, name: str) -> Calendar:
        return self.engine.calendar(decision, name)

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        return self.engine.escalation_plan(decision)

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        return self.engine.retarget(decision)


def run_case(run: CaseRun, engine: Engine) -> CaseResult:
    """Evaluate one case and compare; never raises for an engine error (that is a failure)."""
    result = CaseResult(run, "passed")
    if run.skip is not None:
        result.outcome = "skipped"
        return result
    policy = _VersionPolicy(engine, run.ruleset, run.facts)
    try:
        if run.at is None:
            result.decision = policy.decide(run.ticket)
        else:
            clock = TicketClock(policy, run.ticket.id).apply_all(run.events)
            result.statuses = clock.status(run.at)
            result.decision = clock.decision
    except SlaEngineError as exc:
        result.error = str(exc)
    for ticket in policy.decided or [run.ticket]:
        try:
            result.traces.append(trace(engine, run.ruleset, ticket, run.facts))
        except SlaEngineError:
            continue  # an invalid ticket has no trace; its error is reported
    result.checks = compare(run.expect, result.decision, result.statuses, result.error)
    if not all(c.ok for c in result.checks):
        result.outcome = "failed"
    return result


_SCALARS = ("priority", "calendar", "escalation_plan", "penalty_class")


def compare(
    expect: Expectation,
    decision: Decision | None,
    statuses: dict[str, MetricStatus],
    error: str | None,
) -> list[Check]:
    """Each expected value beside the actual one (an unexpected error is a failed check)."""
    if expect.error is not None:
        got = error if error is not None else "(no error: the evaluation succeeded)"
        return [Check("error", expect.error, got, error is not None and expect.error in error)]
    if decision is None:
        return [Check("error", "(none)", error, False)]
    checks: list[Check] = []
    given = expect.model_fields_set
    for key in _SCALARS:
        if key in given:
            checks.append(_check(key, getattr(expect, key), getattr(decision, key)))
    for key in ("matched_rules", "tags"):
        wanted = getattr(expect, key)
        if key not in given:
            continue
        actual = list(getattr(decision, key))
        if isinstance(wanted, ListExpect):
            checks += [Check(f"{key} contains", x, actual, x in actual) for x in wanted.contains]
            checks += [
                Check(f"{key} excludes", x, actual, x not in actual) for x in wanted.excludes
            ]
        else:
            checks.append(Check(key, wanted, actual, wanted == actual))
    if expect.route is not None:
        route = decision.route
        for key in sorted(expect.route.model_fields_set):
            got = getattr(route, key) if route is not None else None
            checks.append(_check(f"route.{key}", getattr(expect.route, key), got))
    for metric, target_expect in expect.targets.items():
        target = decision.targets.get(metric)
        if target_expect is None:
            got = target.target if target is not None else None
            checks.append(Check(f"targets.{metric}", None, got, target is None))
            continue
        for key in _ordered(target_expect):
            got = getattr(target, key) if target is not None else "(no target)"
            checks.append(_check(f"targets.{metric}.{key}", getattr(target_expect, key), got))
    for metric, status_expect in expect.metrics.items():
        status = statuses.get(metric)
        for key in _ordered(status_expect):
            if status is None:
                got: Any = "(no such metric at this instant)"
            elif key == "breached":
                got = status.breached_at is not None
            else:
                got = getattr(status, key)
            checks.append(_check(f"metrics.{metric}.{key}", getattr(status_expect, key), got))
    return checks


def _ordered(model: BaseModel) -> list[str]:
    return [k for k in type(model).model_fields if k in model.model_fields_set]


def _check(path: str, expected: Any, actual: Any) -> Check:
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        # A number is compared to the precision it is written with: 20.8 matches 20.8333.
        places = len(repr(expected).partition(".")[2]) if "e" not in repr(expected) else 15
        return Check(path, expected, actual, round(actual, places) == expected)
    return Check(path, expected, actual, expected == actual)


# ------------------------------------------------------------------ reporting


def show(value: Any, like: Any = None) -> str:
    """A value as the case file would write it; instants at the offset of ``like``."""
    if isinstance(value, datetime):
        if isinstance(like, datetime) and like.tzinfo is not None:
            value = value.astimezone(like.tzinfo)
        return value.isoformat()
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def format_failure(result: CaseResult) -> str:
    """The failure report: where the case is, the ticket, expected beside actual, the trace."""
    run = result.run
    lines = [
        f"{run.file}:{run.line}: case {run.name!r} of suite {run.suite!r} against {run.ruleset.ref}"
    ]
    if run.description:
        lines.append(f"  {run.description}")
    if run.parameters is not None:
        lines.append(f"parameters: {show(run.parameters)}")
    ticket = run.ticket.model_dump(mode="json", exclude_defaults=True)
    lines.append(f"ticket: {json.dumps(ticket, ensure_ascii=False)}")
    if len(run.events) > 1:
        lines.append("events:")
        lines += [
            f"  {e.at.isoformat()} {e.type} {json.dumps(e.fields, ensure_ascii=False)}"
            for e in run.events[1:]
        ]
    if run.at is not None:
        lines.append(f"judged at: {run.at.isoformat()}")
    if result.error is not None and run.expect.error is None:
        lines.append(f"error: {result.error}")
    rows = [("", "FIELD", "EXPECTED", "ACTUAL")]
    rows += [
        (" " if c.ok else "✗", c.path, show(c.expected), show(c.actual, like=c.expected))
        for c in result.checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines.append("")
    lines += [
        f"{r[0]:<{widths[0]}} {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        for r in rows
    ]
    for trace_ in result.traces[-1:]:
        lines += ["", f"rule trace ({trace_.ruleset}, {trace_.source}):"]
        lines.append(f"  fields read: {json.dumps(trace_.values, ensure_ascii=False, default=str)}")
        current = None
        for rule in trace_.rules:
            if rule.table != current:
                current = rule.table
                lines.append(f"  table {current}:")
            mark = "APPLIED" if rule.applied else ("matched" if rule.matched else "no")
            why = f"  ({rule.failed})" if rule.failed else ""
            lines.append(f"    line {rule.line}: {rule.rule}: {mark}{why}")
            if current in trace_.defaults and rule is _last_of(trace_.rules, current):
                lines.append(f"    {branch_of_default(run.ruleset, current)}: APPLIED")
    return "\n".join(lines)


def _last_of(rules: list[RuleTrace], table: str) -> RuleTrace:
    return [r for r in rules if r.table == table][-1]
