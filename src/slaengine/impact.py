"""The impact of a new ruleset version (``slaengine diff``), before it takes effect.

A contract manager names two versions, ``NAME@OLD NAME@NEW`` (looked up in
the ruleset directory) or two ruleset files, and a file of sample tickets.
Every ticket is decided by both versions with ``Engine.evaluate`` (explicit
ruleset and version, so the tickets' dates do not pick the version); each
ticket whose decision changes is listed with what changed: priority,
calendar, route, escalation plan, penalty class, tags, matched rules, and per
metric the target and the due time counted from the ticket's ``created_at``.

The summary counts each kind of change; for targets, per metric, how many
tickets got an earlier due time (tightened) or a later one (loosened), and
the median and largest shift of the due time in wall-clock hours, which is
what the customer sees whatever calendar the target counts in.

A ticket's contract (``contracts.yaml`` of the ruleset directory) supplies
its tier as it does in the engine; tickets whose contract is judged by
another ruleset are skipped and counted.

The report also carries a rule-level diff of the two versions: tables and
rules added, removed or changed (which keys of ``when`` and ``then``),
rules reordered within a table, and changed calendars, metrics, escalation
plans and vocabularies. It renders as a text table, JSON, or a
self-contained HTML page whose chart of due-time shifts is inline SVG.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, computed_field

from slaengine.cli import read_records
from slaengine.decision import Decision, MetricTarget, Route
from slaengine.engine import Engine
from slaengine.errors import NoRuleMatched, SlaEngineError, TicketError
from slaengine.library import RulesetLibrary, load_directory, load_ruleset_file
from slaengine.ruleset import CompiledRuleset, Outcome
from slaengine.ticket import Ticket, parse_ticket

#: Changed tickets shown in full in the table and HTML report (all are in JSON).
EXAMPLES = 3

_FROZEN = ConfigDict(frozen=True)


class ImpactInputError(SlaEngineError, ValueError):
    """The versions or tickets given to ``diff`` cannot be used; every problem is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# -- the report -------------------------------------------------------------


class FieldChange(BaseModel):
    """One decision field that differs: its old and new value as text (None: unset)."""

    model_config = _FROZEN
    field: str
    old: str | None
    new: str | None


TargetKind = Literal["tightened", "loosened", "same due", "added", "removed"]


class TargetChange(BaseModel):
    """One metric whose target, calendar or due time differs for a ticket."""

    model_config = _FROZEN
    metric: str
    old: str | None  # the target as written, e.g. "3d"; None when the version sets none
    new: str | None
    old_calendar: str | None
    new_calendar: str | None
    old_due: datetime | None
    new_due: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shift_seconds(self) -> float | None:
        """New due time minus old (negative: due earlier), when both versions set one."""
        if self.old_due is None or self.new_due is None:
            return None
        return (self.new_due - self.old_due).total_seconds()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind(self) -> TargetKind:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        shift = self.shift_seconds or 0
        return "tightened" if shift < 0 else "loosened" if shift > 0 else "same due"


class TicketImpact(BaseModel):
    """A ticket whose decision changes; ``source`` is ``file:line`` of the ticket."""

    model_config = _FROZEN
    ticket_id: str
    source: str
    fields: list[FieldChange]
    targets: list[TargetChange]


class ChangeCount(BaseModel):
    """How many tickets see one field go from ``old`` to ``new``."""

    model_config = _FROZEN
    field: str
    old: str | None
    new: str | None
    tickets: int


class Shift(BaseModel):
    """Due-time shifts of one metric in one direction, in wall-clock hours."""

    model_config = _FROZEN
    tickets: int
    median_hours: float
    max_hours: float  # the shift of largest size, with its sign


class MetricSummary(BaseModel):
    """What happened to one metric's targets across the changed tickets."""

    model_config = _FROZEN
    metric: str
    tightened: Shift | None
    loosened: Shift | None
    same_due: int
    added: int
    removed: int
    transitions: list[ChangeCount]  # target (and calendar) old -> new, with ticket counts


class RuleChange(BaseModel):
    """A rule added, removed, changed or reordered between the versions (rules match by name)."""

    model_config = _FROZEN
    rule: str
    change: Literal["added", "removed", "changed"]
    table: str  # the new version's table (the old one's for a removed rule)
    old_line: int | None
    new_line: int | None
    when: list[str] = []  # top-level keys of ``when`` whose test changed
    then: list[str] = []  # outcome keys that changed: priority, targets.resolution, route.queue
    moved: str | None = None  # e.g. "from table targets", "now before 'serious'"


class DefinitionChange(BaseModel):
    """A table, calendar, metric, escalation plan, vocabulary or setting that changed."""

    model_config = _FROZEN
    section: str
    name: str
    change: Literal["added", "removed", "changed"]


class RulesetDiff(BaseModel):
    """The rule-level difference of two ruleset versions."""

    model_config = _FROZEN
    rules: list[RuleChange]
    definitions: list[DefinitionChange]


class ImpactReport(BaseModel):
    """Everything ``slaengine diff`` reports."""

    model_config = _FROZEN
    old: str  # name@version+revision
    new: str
    old_source: str
    new_source: str
    tickets_read: int
    tickets_judged: int
    tickets_skipped: int  # their contract is judged by another ruleset
    tickets_changed: int
    changes: list[ChangeCount]
    metrics: list[MetricSummary]
    tickets: list[TicketImpact]
    diff: RulesetDiff


# -- opening the two versions -------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One of the compared versions and the engine that evaluates it."""

    engine: Engine
    ruleset: CompiledRuleset

    def decide(self, ticket: Ticket) -> Decision | SlaEngineError:
        """The decision, or why this version decides nothing for the ticket."""
        try:
            return self.engine.evaluate(
                ticket, ruleset=self.ruleset.name, version=self.ruleset.version
            )
        except (TicketError, NoRuleMatched) as exc:
            return exc


@contextmanager
def open_versions(
    old: str, new: str, rulesets: str | Path
) -> Iterator[tuple[Side, Side, RulesetLibrary | None]]:
    """The two sides, plus the directory's library for contracts (None if not a directory).

    ``old`` and ``new`` are each ``NAME@VERSION`` in ``rulesets`` or a path to
    a ruleset file. Engines are closed on exit.
    """
    with ExitStack() as stack:
        directory: Engine | None = None

        def side(spec: str) -> Side:
            nonlocal directory
            if Path(spec).is_file():
                rs = load_ruleset_file(spec)
                return Side(stack.enter_context(Engine(RulesetLibrary([rs]))), rs)
            name, at, version = spec.partition("@")
            if not (name and at and version):
                raise ImpactInputError(
                    [f"{spec!r} is neither a ruleset file nor NAME@VERSION (e.g. standard@2.0.0)"]
                )
            if directory is None:
                directory = stack.enter_context(Engine.from_directory(rulesets))
            try:
                return Side(directory, directory.library.get(name, version))
            except TicketError as exc:
                raise ImpactInputError([f"{spec}: {exc.message}"]) from None

        old_side, new_side = side(old), side(new)
        if directory is not None:
            library: RulesetLibrary | None = directory.library
        elif Path(rulesets).is_dir():
            library = load_directory(rulesets)
        else:
            library = None
        yield old_side, new_side, library


# -- comparing decisions ---------------------------------------------------------


def compare(
    old: Side,
    new: Side,
    tickets: Iterable[tuple[str, Any]],
    library: RulesetLibrary | None = None,
) -> ImpactReport:
    """Decide every ticket with both versions and summarise what changes.

    ``tickets`` yields (``file:line``, JSON value); a value may be an
    exception for a line that was not JSON. Tickets that are not valid, or
    that both versions reject as bad input, raise ImpactInputError listing
    every such line. A version that decides nothing for a ticket (no rule
    matched, or it rejects the ticket and the other accepts it) is a change
    of the ``decision`` field.
    """
    names = {old.ruleset.name, new.ruleset.name}
    problems: list[str] = []
    impacts: list[TicketImpact] = []
    read = judged = 0
    for source, record in tickets:
        read += 1
        try:
            if isinstance(record, Exception):
                raise record
            ticket = _as_judged(record, library, names)
            if ticket is None:
                continue
            before, after = old.decide(ticket), new.decide(ticket)
            if isinstance(before, TicketError) and isinstance(after, TicketError):
                raise before
        except (SlaEngineError, ValueError) as exc:
            problems.append(f"{source}: {exc}")
            continue
        judged += 1
        impact = _impact(ticket.id, source, before, after)
        if impact is not None:
            impacts.append(impact)
    if problems:
        raise ImpactInputError(problems)
    return ImpactReport(
        old=old.ruleset.ref,
        new=new.ruleset.ref,
        old_source=old.ruleset.source,
        new_source=new.ruleset.source,
        tickets_read=read,
        tickets_judged=judged,
        tickets_skipped=read - judged,
        tickets_changed=len(impacts),
        changes=_count_fields(impacts),
        metrics=_summarise_targets(impacts),
        tickets=impacts,
        diff=diff_rulesets(old.ruleset, new.ruleset),
    )


def _as_judged(record: Any, library: RulesetLibrary | None, names: set[str]) -> Ticket | None:
    """The ticket as the compared rulesets see it, or None when its contract uses another.

    The contract supplies the tier, as the engine does when it picks the
    version by contract.
    """
    ticket = parse_ticket(record)  # bad structure raises TicketError naming the field
    contract = library.contract_for(ticket.contract, ticket.customer) if library else None
    if contract is None:
        return ticket
    if contract.ruleset not in names:
        return None
    if contract.tier is None or ticket.tier == contract.tier:
        return ticket
    if ticket.tier is not None:
        raise TicketError(
            f"{ticket.tier!r} contradicts contract {contract.id}, which is tier {contract.tier!r}",
            "tier",
        )
    return ticket.model_copy(update={"tier": contract.tier})


def _impact(
    ticket_id: str,
    source: str,
    before: Decision | SlaEngineError,
    after: Decision | SlaEngineError,
) -> TicketImpact | None:
    if not (isinstance(before, Decision) and isinstance(after, Decision)):
        old_text, new_text = (
            "decided"
            if isinstance(d, Decision)
            # without the engine's "ticket ID: " prefix, so equal reasons count together
            else "none: " + str(d).removeprefix(f"ticket {ticket_id}: ")
            for d in (before, after)
        )
        if old_text == new_text:
            return None
        fields = [FieldChange(field="decision", old=old_text, new=new_text)]
        return TicketImpact(ticket_id=ticket_id, source=source, fields=fields, targets=[])
    old_fields, new_fields = _decision_fields(before), _decision_fields(after)
    fields = [
        FieldChange(field=name, old=old_fields[name], new=new_fields[name])
        for name in old_fields
        if old_fields[name] != new_fields[name]
    ]
    targets = []
    for metric in [*before.targets, *(m for m in after.targets if m not in before.targets)]:
        a, b = before.targets.get(metric), after.targets.get(metric)
        if _target_key(a) != _target_key(b):
            targets.append(
                TargetChange(
                    metric=metric,
                    old=a and a.target,
                    new=b and b.target,
                    old_calendar=a and a.calendar,
                    new_calendar=b and b.calendar,
                    old_due=a and a.due_at,
                    new_due=b and b.due_at,
                )
            )
    if not fields and not targets:
        return None
    return TicketImpact(ticket_id=ticket_id, source=source, fields=fields, targets=targets)


def _decision_fields(d: Decision) -> dict[str, str | None]:
    return {
        "priority": d.priority,
        "calendar": d.calendar,
        "route": _route_text(d.route),
        "escalation_plan": d.escalation_plan,
        "penalty_class": d.penalty_class,
        "tags": ", ".join(d.tags) or None,
        "matched_rules": ", ".join(d.matched_rules) or None,
    }


def _route_text(route: Route | None) -> str | None:
    parts = route.model_dump(exclude_none=True) if route else {}
    return ", ".join(f"{k}={v}" for k, v in parts.items()) or None


def _target_key(t: MetricTarget | None) -> tuple[Any, ...] | None:
    return None if t is None else (t.target, t.calendar, t.due_at)


def _count_fields(impacts: list[TicketImpact]) -> list[ChangeCount]:
    counts = Counter((c.field, c.old, c.new) for i in impacts for c in i.fields)
    return [
        ChangeCount(field=field, old=old, new=new, tickets=n)
        for (field, old, new), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))
    ]


def _summarise_targets(impacts: list[TicketImpact]) -> list[MetricSummary]:
    by_metric: dict[str, list[TargetChange]] = {}
    for impact in impacts:
        for change in impact.targets:
            by_metric.setdefault(change.metric, []).append(change)
    summaries = []
    for metric, changes in by_metric.items():
        kinds = Counter(c.kind for c in changes)
        transitions = Counter(
            (_target_text(c.old, c.old_calendar), _target_text(c.new, c.new_calendar))
            for c in changes
        )
        summaries.append(
            MetricSummary(
                metric=metric,
                tightened=_shift([c for c in changes if c.kind == "tightened"]),
                loosened=_shift([c for c in changes if c.kind == "loosened"]),
                same_due=kinds["same due"],
                added=kinds["added"],
                removed=kinds["removed"],
                transitions=[
                    ChangeCount(field=metric, old=old, new=new, tickets=n)
                    for (old, new), n in transitions.most_common()
                ],
            )
        )
    return summaries


def _target_text(target: str | None, calendar: str | None) -> str | None:
    return None if target is None else f"{target} in {calendar}"


def _shift(changes: list[TargetChange]) -> Shift | None:
    hours = [c.shift_seconds / 3600 for c in changes if c.shift_seconds is not None]
    if not hours:
        return None
    return Shift(
        tickets=len(hours),
        median_hours=round(statistics.median(hours), 2),
        max_hours=round(max(hours, key=abs), 2),
    )


# -- the rule-level diff ------------------------------------------------------


def diff_rulesets(old: CompiledRuleset, new: CompiledRuleset) -> RulesetDiff:
    """Rules added, removed, changed or reordered (matched by name), and changed definitions."""
    old_rules = _rules_by_name(old)
    new_rules = _rules_by_name(new)
    changes: list[RuleChange] = []
    for name, (ti, ri) in new_rules.items():
        table, rule = new.model.tables[ti], new.model.tables[ti].rules[ri]
        if name not in old_rules:
            changes.append(
                RuleChange(
                    rule=name,
                    change="added",
                    table=table.name,
                    old_line=None,
                    new_line=new.lines.get((ti, ri)),
                )
            )
            continue
        oti, ori = old_rules[name]
        before = old.model.tables[oti].rules[ori]
        when_keys = _changed_keys(before.when or {}, rule.when or {})
        then_keys = _changed_keys(_outcome_items(before.then), _outcome_items(rule.then))
        moved = _moved(old, new, name, oti, ti)
        if when_keys or then_keys or moved:
            changes.append(
                RuleChange(
                    rule=name,
                    change="changed",
                    table=table.name,
                    old_line=old.lines.get((oti, ori)),
                    new_line=new.lines.get((ti, ri)),
                    when=when_keys,
                    then=then_keys,
                    moved=moved,
                )
            )
    for name, (ti, ri) in old_rules.items():
        if name not in new_rules:
            changes.append(
                RuleChange(
                    rule=name,
                    change="removed",
                    table=old.model.tables[ti].name,
                    old_line=old.lines.get((ti, ri)),
                    new_line=None,
                )
            )
    return RulesetDiff(rules=changes, definitions=_definition_changes(old, new))


def _rules_by_name(rs: CompiledRuleset) -> dict[str, tuple[int, int]]:
    return {
        rule.name: (ti, ri)
        for ti, table in enumerate(rs.model.tables)
        for ri, rule in enumerate(table.rules)
    }


def _changed_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [k for k in [*a, *(k for k in b if k not in a)] if a.get(k) != b.get(k)]


def _outcome_items(outcome: Outcome) -> dict[str, Any]:
    """An outcome as flat keys: priority, calendar, targets.METRIC, route.PART, tags..."""
    items: dict[str, Any] = {}
    for key, value in outcome.model_dump(mode="json", exclude_defaults=True).items():
        if isinstance(value, dict):
            items.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            items[key] = value
    return items


def _moved(old: CompiledRuleset, new: CompiledRuleset, name: str, oti: int, ti: int) -> str | None:
    """How a rule moved: to another table, or past another rule kept in both versions."""
    old_table, new_table = old.model.tables[oti], new.model.tables[ti]
    if old_table.name != new_table.name:
        return f"from table {old_table.name}"
    kept = {r.name for r in old_table.rules} & {r.name for r in new_table.rules}
    old_order = [r.name for r in old_table.rules if r.name in kept]
    new_order = [r.name for r in new_table.rules if r.name in kept]
    i = new_order.index(name)
    if old_order.index(name) == i:
        return None
    return f"now after {new_order[i - 1]!r}" if i else f"now before {new_order[1]!r}"


def _definition_changes(old: CompiledRuleset, new: CompiledRuleset) -> list[DefinitionChange]:
    a, b = old.model, new.model
    sections: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "tables": (
            {t.name: t.model_dump(exclude={"rules"}) for t in a.tables},
            {t.name: t.model_dump(exclude={"rules"}) for t in b.tables},
        ),
        "vocabularies": (a.vocabularies, b.vocabularies),
        "calendars": (a.calendars, b.calendars),
        "metrics": (a.metrics, b.metrics),
        "escalation_plans": (a.escalation_plans, b.escalation_plans),
        "settings": (
            {"timezone": a.timezone, **a.settings.model_dump()},
            {"timezone": b.timezone, **b.settings.model_dump()},
        ),
    }
    found = []
    for section, (before, after) in sections.items():
        for name in [*before, *(n for n in after if n not in before)]:
            if name not in after:
                change: Literal["added", "removed", "changed"] | None = "removed"
            elif name not in before:
                change = "added"
            else:
                change = "changed" if before[name] != after[name] else None
            if change:
                found.append(DefinitionChange(section=section, name=name, change=change))
    return found


# -- rendering ------------------------------------------------------------------


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:+g}h"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _due(change: TargetChange, side: Literal["old", "new"]) -> str:
    target, calendar, due = (
        (change.old, change.old_calendar, change.old_due)
        if side == "old"
        else (change.new, change.new_calendar, change.new_due)
    )
    if target is None or due is None:
        return "none"
    return f"{target} in {calendar}, due {due.isoformat()}"


def render_text(report: ImpactReport, examples: int = EXAMPLES) -> str:
    """The report as plain-text tables, with the first ``examples`` changed tickets in full."""
    out = [
        f"{report.old} ({report.old_source}) -> {report.new} ({report.new_source})",
        f"tickets: {report.tickets_read} read, {report.tickets_judged} judged, "
        f"{report.tickets_skipped} skipped (judged by another ruleset), "
        f"{report.tickets_changed} changed",
    ]
    if report.metrics:
        rows = [
            (
                "METRIC",
                "TIGHTENED",
                "MEDIAN",
                "MAX",
                "LOOSENED",
                "MEDIAN",
                "MAX",
                "SAME DUE",
                "ADDED",
                "REMOVED",
            )
        ]
        for m in report.metrics:
            t, lo = m.tightened, m.loosened
            rows.append(
                (
                    m.metric,
                    str(t.tickets if t else 0),
                    _hours(t and t.median_hours),
                    _hours(t and t.max_hours),
                    str(lo.tickets if lo else 0),
                    _hours(lo and lo.median_hours),
                    _hours(lo and lo.max_hours),
                    str(m.same_due),
                    str(m.added),
                    str(m.removed),
                )
            )
        out += ["", "Due-time shifts per metric (wall-clock hours)", *_columns(rows)]
        rows = [("METRIC", "OLD TARGET", "NEW TARGET", "TICKETS")]
        rows += [
            (c.field, c.old or "none", c.new or "none", str(c.tickets))
            for m in report.metrics
            for c in m.transitions
        ]
        out += ["", "Target changes", *_columns(rows)]
    if report.changes:
        rows = [("FIELD", "OLD", "NEW", "TICKETS")]
        rows += [
            (c.field, c.old or "none", c.new or "none", str(c.tickets)) for c in report.changes
        ]
        out += ["", "Other decision changes", *_columns(rows)]
    if report.tickets:
        out += ["", f"Examples ({min(examples, len(report.tickets))} of {len(report.tickets)})"]
        for impact in report.tickets[:examples]:
            out.append(f"{impact.ticket_id} ({impact.source})")
            out += [f"  {c.field}: {c.old or 'none'} -> {c.new or 'none'}" for c in impact.fields]
            out += [
                f"  {c.metric} {c.kind}: {_due(c, 'old')} -> {_due(c, 'new')}"
                + (f" ({_hours(round(c.shift_seconds / 3600, 2))})" if c.shift_seconds else "")
                for c in impact.targets
            ]
    out += ["", "Rule changes"]
    if report.diff.rules:
        rows = [("CHANGE", "RULE", "TABLE", "LINE", "WHEN", "THEN", "MOVED")]
        rows += [
            (
                r.change,
                r.rule,
                r.table,
                f"{r.old_line or '-'} -> {r.new_line or '-'}",
                ", ".join(r.when) or "-",
                ", ".join(r.then) or "-",
                r.moved or "-",
            )
            for r in report.diff.rules
        ]
        out += _columns(rows)
    else:
        out.append("no rule changed")
    if report.diff.definitions:
        rows = [("CHANGE", "SECTION", "NAME")]
        rows += [(d.change, d.section, d.name) for d in report.diff.definitions]
        out += ["", "Definition changes", *_columns(rows)]
    return "\n".join(out)


# -- the HTML report -------------------------------------------------------------

_CHART_WIDTH = 760
_LABEL_WIDTH = 150
_ROW_HEIGHT = 46
_COLOURS = {"tightened": "#1b7f5f", "loosened": "#c0392b", "same due": "#7f8c8d"}


def _nice_bound(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k hours at or above ``value``."""
    bound, steps = 1.0, itertools.cycle((2, 2.5, 2))
    while bound < value:
        bound *= next(steps)
    return bound


def shift_chart(report: ImpactReport) -> Markup:
    """An inline SVG strip chart: one row per metric, one dot per ticket at its due-time shift.

    Left of zero the new version makes the ticket due earlier (tightened);
    each dot's tooltip names the ticket and its old and new target. A short
    bar marks the median shift of each direction.
    """
    rows: list[tuple[str, list[tuple[TargetChange, str, float]]]] = []
    for m in report.metrics:
        dots = [
            (c, i.ticket_id, c.shift_seconds / 3600)
            for i in report.tickets
            for c in i.targets
            if c.metric == m.metric and c.shift_seconds is not None
        ]
        if dots:
            rows.append((m.metric, dots))
    if not rows:
        return Markup("<p>No ticket's due time moved.</p>")
    bound = _nice_bound(max(abs(h) for _, dots in rows for _, _, h in dots))
    plot = _CHART_WIDTH - _LABEL_WIDTH - 20
    height = 30 + _ROW_HEIGHT * len(rows) + 30

    def x(hours: float) -> float:
        return round(_LABEL_WIDTH + (hours + bound) / (2 * bound) * plot, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_CHART_WIDTH} {height}" role="img" '
        'aria-label="Shift of due times per metric, in hours" font-family="sans-serif" '
        'font-size="12">'
    ]
    axis_y = 30 + _ROW_HEIGHT * len(rows)
    for k in range(-2, 3):
        hours = bound * k / 2
        parts.append(
            f'<line x1="{x(hours)}" y1="20" x2="{x(hours)}" y2="{axis_y}" '
            f'stroke="{"#333" if k == 0 else "#ddd"}"/>'
            f'<text x="{x(hours)}" y="{axis_y + 16}" text-anchor="middle">{hours:+g}h</text>'
        )
    parts.append(
        f'<text x="{x(-bound)}" y="14">&#8592; due earlier (tightened)</text>'
        f'<text x="{x(bound)}" y="14" text-anchor="end">due later (loosened) &#8594;</text>'
    )
    for n, (metric, dots) in enumerate(rows):
        middle = 30 + _ROW_HEIGHT * n + _ROW_HEIGHT / 2
        parts.append(
            f'<text x="{_LABEL_WIDTH - 8}" y="{middle + 4}" text-anchor="end">'
            f"{Markup.escape(metric)}</text>"
        )
        for j, (change, ticket_id, hours) in enumerate(dots):
            jitter = (j % 7 - 3) * 3
            tip = f"{ticket_id}: {_due(change, 'old')} -> {_due(change, 'new')} ({hours:+g}h)"
            parts.append(
                f'<circle cx="{x(hours)}" cy="{middle + jitter}" r="5" '
                f'fill="{_COLOURS[change.kind]}" fill-opacity="0.6">'
                f"<title>{Markup.escape(tip)}</title></circle>"
            )
        for direction in ("tightened", "loosened"):
            values = [h for c, _, h in dots if c.kind == direction]
            if values:
                median = x(statistics.median(values))
                parts.append(
                    f'<line x1="{median}" y1="{middle - 14}" x2="{median}" y2="{middle + 14}" '
                    f'stroke="{_COLOURS[direction]}" stroke-width="3">'
                    f"<title>median {statistics.median(values):+g}h</title></line>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))


_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Impact of {{ r.new }} over {{ r.old }}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.n { text-align: right; }
.tightened { color: #1b7f5f; } .loosened { color: #c0392b; }
code { background: #f6f6f6; padding: 0 0.2em; }
</style>
</head>
<body>
<h1>Impact of <code>{{ r.new }}</code> over <code>{{ r.old }}</code></h1>
<p>{{ r.old_source }} &#8594; {{ r.new_source }}</p>
<p><strong>{{ r.tickets_changed }}</strong> of {{ r.tickets_judged }} judged tickets change
({{ r.tickets_read }} read, {{ r.tickets_skipped }} skipped: judged by another ruleset).</p>

<h2>Due-time shifts</h2>
{{ chart }}
{% if r.metrics %}
<table>
<tr><th>metric</th><th>tightened</th><th>median</th><th>max</th>
<th>loosened</th><th>median</th><th>max</th><th>same due</th><th>added</th><th>removed</th></tr>
{% for m in r.metrics %}
<tr><td>{{ m.metric }}</td>
<td class="n tightened">{{ m.tightened.tickets if m.tightened else 0 }}</td>
<td class="n">{{ hours(m.tightened and m.tightened.median_hours) }}</td>
<td class="n">{{ hours(m.tightened and m.tightened.max_hours) }}</td>
<td class="n loosened">{{ m.loosened.tickets if m.loosened else 0 }}</td>
<td class="n">{{ hours(m.loosened and m.loosened.median_hours) }}</td>
<td class="n">{{ hours(m.loosened and m.loosened.max_hours) }}</td>
<td class="n">{{ m.same_due }}</td><td class="n">{{ m.added }}</td>
<td class="n">{{ m.removed }}</td></tr>
{% endfor %}
</table>
<h3>Target changes</h3>
<table>
<tr><th>metric</th><th>old target</th><th>new target</th><th>tickets</th></tr>
{% for m in r.metrics %}{% for c in m.transitions %}
<tr><td>{{ c.field }}</td><td>{{ c.old or "none" }}</td><td>{{ c.new or "none" }}</td>
<td class="n">{{ c.tickets }}</td></tr>
{% endfor %}{% endfor %}
</table>
{% endif %}

{% if r.changes %}
<h2>Other decision changes</h2>
<table>
<tr><th>field</th><th>old</th><th>new</th><th>tickets</th></tr>
{% for c in r.changes %}
<tr><td>{{ c.field }}</td><td>{{ c.old or "none" }}</td><td>{{ c.new or "none" }}</td>
<td class="n">{{ c.tickets }}</td></tr>
{% endfor %}
</table>
{% endif %}

{% if r.tickets %}
<h2>Examples ({{ examples | length }} of {{ r.tickets | length }} changed tickets)</h2>
{% for t in examples %}
<h3>{{ t.ticket_id }} <small>({{ t.source }})</small></h3>
<table>
<tr><th>what</th><th>old</th><th>new</th><th>shift</th></tr>
{% for c in t.fields %}
<tr><td>{{ c.field }}</td><td>{{ c.old or "none" }}</td><td>{{ c.new or "none" }}</td><td></td></tr>
{% endfor %}
{% for c in t.targets %}
<tr><td>{{ c.metric }}</td><td>{{ due(c, "old") }}</td><td>{{ due(c, "new") }}</td>
<td class="n {{ c.kind }}">{{ c.kind }}
{% if c.shift_seconds %} {{ hours(c.shift_seconds / 3600) }}{% endif %}</td></tr>
{% endfor %}
</table>
{% endfor %}
{% endif %}

<h2>Rule changes</h2>
{% if r.diff.rules %}
<table>
<tr><th>change</th><th>rule</th><th>table</th><th>line (old &#8594; new)</th>
<th>when</th><th>then</th><th>moved</th></tr>
{% for c in r.diff.rules %}
<tr><td>{{ c.change }}</td><td>{{ c.rule }}</td><td>{{ c.table }}</td>
<td>{{ c.old_line or "-" }} &#8594; {{ c.new_line or "-" }}</td>
<td>{{ c.when | join(", ") or "-" }}</td><td>{{ c.then | join(", ") or "-" }}</td>
<td>{{ c.moved or "-" }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No rule changed.</p>
{% endif %}
{% if r.diff.definitions %}
<h3>Definition changes</h3>
<table>
<tr><th>change</th><th>section</th><th>name</th></tr>
{% for d in r.diff.definitions %}
<tr><td>{{ d.change }}</td><td>{{ d.section }}</td><td>{{ d.name }}</td></tr>
{% endfor %}
</table>
{% endif %}
</body>
</html>
"""


def render_html(report: ImpactReport, examples: int = EXAMPLES) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts or external files)."""
    template = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(_HTML)
    return template.render(
        r=report,
        chart=shift_chart(report),
        examples=report.tickets[:examples],
        hours=lambda h: _hours(None if h is None else round(h, 2)),
        due=_due,
    )


# -- command line ------------------------------------------------------------------


def add_diff_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``diff`` to the ``slaengine`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="impact of a new ruleset version on sample tickets, and its rule-level diff",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("old", help="NAME@VERSION or a ruleset file")
    p.add_argument("new", help="NAME@VERSION or a ruleset file")
    p.add_argument("--tickets", required=True, help="tickets: JSONL, a JSON array or '-'")
    p.add_argument("--rulesets", default="rulesets", help="ruleset directory (and contracts)")
    p.add_argument("--json", action="store_true", help="the whole report as JSON")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--examples", type=int, default=EXAMPLES, help="changed tickets shown in full")
    p.set_defaults(func=diff_command)
    return p


def diff_command(args: argparse.Namespace) -> int:
    """Run ``slaengine diff``: print the report (table or JSON); exit 0 even when tickets change."""
    with open_versions(args.old, args.new, args.rulesets) as (old, new, library):
        records = ((f"{args.tickets}:{n}", value) for n, value in read_records(args.tickets))
        report = compare(old, new, records, library)
    if args.html:
        Path(args.html).write_text(render_html(report, args.examples), encoding="utf-8")
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(render_text(report, args.examples))
    return 0
