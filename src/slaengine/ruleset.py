"""The ruleset language: pydantic models of one ruleset version, and its checks.

A ruleset version is one YAML file. ``parse_ruleset`` turns a located YAML
document into a validated :class:`Ruleset`, reporting every problem it finds
with file, line, column and key path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slaengine.calendar import Calendar
from slaengine.condition import (
    NUMERIC_OPS,
    ORDER_OPS,
    Condition,
    ConditionError,
    iter_tests,
    parse_when,
)
from slaengine.decision import Route
from slaengine.duration import Duration
from slaengine.errors import CalendarError, RulesetError, RulesetErrors
from slaengine.escalation import EscalationPlan
from slaengine.metric import MetricDefinition
from slaengine.yamlsource import Located

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Ticket attributes a rule may test, besides ``fields.*`` and ``facts.*``.
TICKET_FIELDS = (
    "severity",
    "tier",
    "contract",
    "customer",
    "product",
    "channel",
    "category",
    "status",
    "tags",
)
#: Facts derived from the ticket before matching (``in_hours.CAL`` and
#: ``holiday.CAL`` name one of the ruleset's calendars).
DERIVED_FIELDS = ("local_weekday", "local_hour", "in_hours.", "holiday.")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_STRICT = ConfigDict(frozen=True, extra="forbid")


class VocabularyValue(BaseModel):
    """One allowed value with an optional display label (any language)."""

    model_config = _STRICT
    value: str
    label: str | None = None


class Vocabulary(BaseModel):
    """The allowed values of one ticket field, in order (most severe first).

    ``required``: a ticket without this field is rejected. In YAML, a plain
    list is accepted: ``tier: [gold, silver]``.
    """

    model_config = _STRICT
    values: list[VocabularyValue] = Field(min_length=1)
    required: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            data = {"values": data}
        if isinstance(data, dict) and isinstance(data.get("values"), list):
            values = [
                {"value": str(v)} if isinstance(v, (str, int)) and not isinstance(v, bool) else v
                for v in data["values"]
            ]
            data = {**data, "values": values}
        return data

    @model_validator(mode="after")
    def _unique(self) -> Vocabulary:
        seen: set[str] = set()
        for v in self.values:
            if v.value in seen:
                raise ValueError(f"value {v.value!r} is listed twice")
            seen.add(v.value)
        return self

    @property
    def rank(self) -> dict[str, int]:
        """value -> position (0 = first declared, the most severe)."""
        return {v.value: i for i, v in enumerate(self.values)}

    def label(self, value: str) -> str:
        """The display label of ``value`` (the value itself when none is declared)."""
        for v in self.values:
            if v.value == value:
                return v.label or value
        return value


class Outcome(BaseModel):
    """What a matching rule decides. Every part is optional; later tables override."""

    model_config = _STRICT
    priority: str | None = None
    calendar: str | None = None
    targets: dict[str, Duration] = Field(default_factory=dict)
    route: Route | None = None
    escalation_plan: str | None = None
    penalty_class: str | None = None
    tags: list[str] = Field(default_factory=list)


class Rule(BaseModel):
    """A named rule: ``when`` conditions (see slaengine.condition) and a ``then`` outcome."""

    model_config = _STRICT
    name: str
    description: str = ""
    when: dict[str, Any] | None = None
    then: Outcome


class Table(BaseModel):
    """Rules under one hit policy.

    ``first``: the first matching rule in order wins; ``collect``: every
    matching rule applies, in order. ``default`` applies when no rule of the
    table matches; a ``first`` table without a default and no match makes the
    evaluation fail with "no rule matched".
    """

    model_config = _STRICT
    name: str
    description: str = ""
    hit: Literal["first", "collect"] = "first"
    rules: list[Rule]
    default: Outcome | None = None


class Settings(BaseModel):
    """Ruleset-wide behaviour. ``retarget``: after a severity/priority change, due
    times count from the metric's original start or from the change."""

    model_config = _STRICT
    retarget: Literal["from_start", "from_change"] = "from_start"


class Ruleset(BaseModel):
    """One version of one SLA policy."""

    model_config = _STRICT
    name: str
    version: str
    effective_from: datetime
    timezone: str
    description: str = ""
    owner: str = ""
    settings: Settings = Field(default_factory=Settings)
    vocabularies: dict[str, Vocabulary] = Field(default_factory=dict)
    calendars: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, MetricDefinition] = Field(min_length=1)
    escalation_plans: dict[str, EscalationPlan] = Field(default_factory=dict)
    tables: list[Table] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '-', '_' and '.'")
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: Any) -> str:
        if not _SEMVER.match(str(value)):
            raise ValueError(f"{value!r} is not a semantic version; use e.g. 1.0.0")
        return str(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _effective(cls, data: Any) -> Any:
        # A bare date means midnight in the ruleset's own zone.
        if isinstance(data, dict):
            value = data.get("effective_from")
            zone = data.get("timezone")
            if (
                isinstance(value, date)
                and not isinstance(value, datetime)
                and isinstance(zone, str)
            ):
                # An unknown zone is reported by the timezone check.
                with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                    midnight = datetime.combine(value, time(), ZoneInfo(zone))
                    data = {**data, "effective_from": midnight}
            elif isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError(
                    "effective_from has no timezone; write a date, or a datetime with an offset"
                )
        return data

    @property
    def label(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


class CompiledRuleset:
    """A validated ruleset with its parsed conditions, calendars and derived lookups."""

    def __init__(
        self,
        model: Ruleset,
        conditions: dict[tuple[int, int], Condition],
        calendars: dict[str, Calendar],
        source: str,
        lines: dict[tuple[int, int], int | None] | None = None,
        revision: str = "",
    ) -> None:
        self.model = model
        self.lines = lines or {}  # (table index, rule index) -> line of the rule in source
        self.conditions = conditions  # (table index, rule index) -> Condition
        self.calendars = calendars
        self.source = source
        self.revision = revision or revision_of(model.model_dump(mode="json"))
        self.ranks = {name: vocab.rank for name, vocab in model.vocabularies.items()}

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def ref(self) -> str:
        """``name@version+revision``: unique for this exact content."""
        return f"{self.model.name}@{self.model.version}+{self.revision}"

    def fields_read(self) -> list[str]:
        """Every field any rule tests, sorted (the inputs of a decision)."""
        return sorted({t.field for c in self.conditions.values() for t in iter_tests(c)})


def revision_of(data: Any) -> str:
    """12 hex digits of the SHA-256 of ``data`` as canonical JSON.

    Computed from the document's content (not its formatting or comments),
    so reformatting a file keeps its revision and any change of content does not.
    """
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _pydantic_errors(located: Located, exc: ValidationError) -> list[RulesetError]:
    errors = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            message = f"missing required key {loc[-1]!r}"
        elif (
            "input" in err
            and err["type"] not in ("value_error",)
            and not isinstance(err["input"], (dict, list))
        ):
            message = f"{err['input']!r}: {message}"
        errors.append(located.error(loc, message))
    return errors


def parse_ruleset(located: Located) -> CompiledRuleset:
    """Validate a located YAML document as a ruleset; raise RulesetErrors with all problems."""
    if not isinstance(located.data, dict):
        raise RulesetErrors([located.error((), "a ruleset file must be a mapping")])
    try:
        model = Ruleset.model_validate(located.data)
    except ValidationError as exc:
        raise RulesetErrors(_pydantic_errors(located, exc)) from None

    errors: list[RulesetError] = []
    calendars: dict[str, Calendar] = {}
    for name, spec in model.calendars.items():
        try:
            if spec == "always":  # 7x24, reported in the ruleset's own zone
                spec = {"always": True, "timezone": model.timezone}
            calendars[name] = Calendar.from_spec(spec)
        except CalendarError as exc:
            errors.append(located.error(("calendars", name), str(exc)))
    calendars.setdefault("always", Calendar.from_spec({"always": True, "timezone": model.timezone}))

    metrics = set(model.metrics)
    for name, plan in model.escalation_plans.items():
        for i, threshold in enumerate(plan.thresholds):
            metric = plan.metric_of(threshold)
            if metric is None:
                errors.append(
                    located.error(
                        ("escalation_plans", name, "thresholds", i),
                        "threshold names no metric and the plan has no default 'metric'",
                    )
                )
            elif metric not in metrics:
                errors.append(
                    located.error(
                        ("escalation_plans", name, "thresholds", i),
                        f"unknown metric {metric!r}; declared: {', '.join(sorted(metrics))}",
                    )
                )

    conditions: dict[tuple[int, int], Condition] = {}
    rule_names: dict[str, tuple[int, int]] = {}
    table_names: set[str] = set()
    for ti, table in enumerate(model.tables):
        if table.name in table_names:
            errors.append(
                located.error(("tables", ti, "name"), f"duplicate table name {table.name!r}")
            )
        table_names.add(table.name)
        outcomes = [
            (("tables", ti, "rules", ri, "then"), r.then) for ri, r in enumerate(table.rules)
        ]
        if table.default is not None:
            outcomes.append((("tables", ti, "default"), table.default))
        for path, outcome in outcomes:
            errors.extend(_check_outcome(located, model, calendars, path, outcome))
        for ri, rule in enumerate(table.rules):
            path = ("tables", ti, "rules", ri)
            if rule.name in rule_names:
                errors.append(located.error((*path, "name"), f"duplicate rule name {rule.name!r}"))
            rule_names[rule.name] = (ti, ri)
            try:
                cond = parse_when(rule.when, (*path, "when"))
            except ConditionError as exc:
                errors.append(located.error(exc.path, str(exc)))
                continue
            for test in iter_tests(cond):
                problem = _check_test(model, calendars, test.field, test.op, test.value)
                if problem:
                    errors.append(located.error(test.path, problem))
            conditions[(ti, ri)] = cond
    if errors:
        raise RulesetErrors(errors)
    lines = {key: located.where(("tables", key[0], "rules", key[1]))[0] for key in conditions}
    return CompiledRuleset(
        model, conditions, calendars, located.file, lines, revision_of(located.data)
    )


def _check_outcome(
    located: Located,
    model: Ruleset,
    calendars: dict[str, Calendar],
    path: tuple[str | int, ...],
    outcome: Outcome,
) -> list[RulesetError]:
    errors = []
    if outcome.calendar is not None and outcome.calendar not in calendars:
        errors.append(
            located.error(
                (*path, "calendar"),
                f"unknown calendar {outcome.calendar!r}; declared: {', '.join(sorted(calendars))}",
            )
        )
    for metric in outcome.targets:
        if metric not in model.metrics:
            errors.append(
                located.error(
                    (*path, "targets", metric),
                    f"unknown metric {metric!r}; declared: {', '.join(sorted(model.metrics))}",
                )
            )
    if (
        outcome.escalation_plan is not None
        and outcome.escalation_plan not in model.escalation_plans
    ):
        errors.append(
            located.error(
                (*path, "escalation_plan"),
                f"unknown escalation plan {outcome.escalation_plan!r}; declared: "
                f"{', '.join(sorted(model.escalation_plans)) or '(none)'}",
            )
        )
    priorities = model.vocabularies.get("priority")
    if priorities and outcome.priority is not None and outcome.priority not in priorities.rank:
        errors.append(
            located.error((*path, "priority"), f"{outcome.priority!r} is not a declared priority")
        )
    return errors


def _check_test(
    model: Ruleset, calendars: dict[str, Calendar], field: str, op: str, value: Any
) -> str | None:
    """Why a test cannot be used, or None when it is fine."""
    if field in ("id", "sid"):
        return f"rules cannot test {field!r}; test a ticket field such as severity or fields.X"
    if field.startswith(("in_hours.", "holiday.")):
        cal = field.split(".", 1)[1]
        if cal not in calendars:
            return (
                f"unknown calendar {cal!r} in {field!r}; declared: {', '.join(sorted(calendars))}"
            )
        if op not in ("eq", "ne", "exists"):
            return f"{field} is true or false; test it with a plain true/false"
        return None if op == "exists" or isinstance(value, bool) else f"{field} is true or false"
    known = (
        field in TICKET_FIELDS
        or field in ("local_weekday", "local_hour")
        or (field.startswith(("fields.", "facts.")) and len(field.split(".", 1)[1]) > 0)
    )
    if not known:
        return (
            f"unknown field {field!r}; use one of {', '.join(TICKET_FIELDS)}, local_weekday, "
            "local_hour, in_hours.CAL, holiday.CAL, fields.NAME or facts.NAME"
        )
    vocab = model.vocabularies.get(field)
    if op in ORDER_OPS and vocab is None:
        return f"{op!r} needs an ordered vocabulary; declare vocabularies.{field}"
    if field == "local_weekday":
        vals = value if isinstance(value, tuple) else (value,)
        bad = [v for v in vals if op != "exists" and v not in WEEKDAYS]
        if bad:
            return f"{bad[0]!r} is not a weekday; use {', '.join(WEEKDAYS)}"
    if field == "local_hour" and op not in NUMERIC_OPS + ("eq", "ne", "in", "not_in", "exists"):
        return f"local_hour is a number 0-23; {op!r} does not apply"
    if field == "tags" and op not in ("contains", "exists"):
        return "tags is a list; test it with contains: TAG"
    if vocab is not None and op in ("eq", "ne", "in", "not_in", "at_least", "at_most"):
        vals = value if isinstance(value, tuple) else (value,)
        for v in vals:
            if v not in vocab.rank:
                return f"{v!r} is not a declared {field}; declared: {', '.join(vocab.rank)}"
    return None
