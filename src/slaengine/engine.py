"""The engine: ticket in, SLA decision out.

``Engine`` holds a RulesetLibrary, compiles every version's tables into
durable_rules (through slaengine.matcher), and evaluates tickets: pick the
contract and the version in force at ``created_at`` (or the pinned one),
read the fields the rules need, match each table under its hit policy, merge
the outcomes in table order, and count due times in the decided calendar.

Matching results are cached per version, keyed on exactly the message the
rules read (so two tickets with the same relevant fields share one match);
due times are always computed per ticket.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from slaengine.calendar import Calendar, epoch_us
from slaengine.compiler import Encoding, compile_condition, encoding_for
from slaengine.condition import first_failure
from slaengine.decision import Decision, MetricTarget, Route
from slaengine.errors import NoRuleMatched, SlaEngineError, TicketError
from slaengine.escalation import EscalationPlan
from slaengine.facts import FieldReader
from slaengine.library import RulesetLibrary, load_directory
from slaengine.matcher import CompiledRule, TableMatcher
from slaengine.metric import MetricDefinition
from slaengine.ruleset import CompiledRuleset, Outcome
from slaengine.ticket import Ticket, parse_ticket
from slaengine.unchecked import filled, trusted

#: Where a contract leads: version start instants, the versions, the overrides.
_Route = tuple[list[datetime], list["_Version"], dict[str, Any] | None]
_EARLIEST = datetime.min.replace(tzinfo=UTC)

#: Validates a whole batch of ticket mappings in one call into pydantic-core.
_TICKETS = TypeAdapter(list[Ticket])

#: Distinct matching results kept per version before the cache starts over.
CACHE_SIZE = 100_000


class RuleTrace(BaseModel):
    """One rule of a deciding table as explain saw it."""

    model_config = ConfigDict(frozen=True)

    table: str
    rule: str
    line: int | None
    matched: bool
    applied: bool
    failed: str | None = None  # the test that failed, with the ticket's value


class Explanation(BaseModel):
    """Why a ticket got its decision: every rule of every table, matched or not."""

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    ruleset: str
    source: str
    values: dict[str, Any]
    rules: list[RuleTrace]
    decision: Decision | None  # None when no rule applies: ``error`` says why
    error: str | None = None


class RulesetInfo(BaseModel):
    """One loaded version, as ``slaengine rulesets`` lists it."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    effective_from: datetime
    revision: str
    source: str
    rules: int


class _Merged:
    """Outcomes of matched rules merged in order; later values override."""

    __slots__ = ("priority", "calendar", "targets", "route", "plan", "penalty", "tags")

    def __init__(self) -> None:
        self.priority: str | None = None
        self.calendar: str | None = None
        self.targets: dict[str, Any] = {}
        self.route: dict[str, str] = {}
        self.plan: str | None = None
        self.penalty: str | None = None
        self.tags: list[str] = []

    def apply(self, outcome: Outcome) -> None:
        self.priority = outcome.priority or self.priority
        self.calendar = outcome.calendar or self.calendar
        self.targets.update(outcome.targets)
        if outcome.route is not None:
            self.route.update(outcome.route.model_dump(exclude_none=True))
        self.plan = outcome.escalation_plan or self.plan
        self.penalty = outcome.penalty_class or self.penalty
        self.tags.extend(t for t in outcome.tags if t not in self.tags)


class _Match:
    """The cached, ticket-independent part of a decision.

    ``decision`` and ``targets`` are templates: a ticket's decision is a copy
    with its id and due times filled in.
    """

    __slots__ = ("rules", "merged", "explanation", "error", "decision", "due")

    def __init__(self) -> None:
        self.rules: list[str] = []
        self.merged = _Merged()
        self.explanation: list[str] = []
        self.error: SlaEngineError | None = None
        self.decision: Decision | None = None
        # Per metric: its target template, and how to count its due time
        # from created_at in epoch µs: the calendar's add_from_epoch with the
        # business time in µs, or its add_days_from_epoch with working days.
        self.due: list[tuple[str, MetricTarget, Callable[[int, int], datetime], int]] = []

    def finish(self, rs: CompiledRuleset) -> None:
        """Build the templates once the rules are merged."""
        merged = self.merged
        if merged.targets and merged.calendar is None and self.error is None:
            self.error = NoRuleMatched(f"{rs.ref} set targets but no rule decided a calendar")
        if self.error is not None:
            return
        calendar = merged.calendar
        for metric, duration in merged.targets.items():
            template = MetricTarget(
                target=duration.text,
                seconds=duration.seconds,
                days=duration.days,
                calendar=calendar,
                due_at=None,  # given, so that filling it in keeps the fields set
            )
            counted = rs.calendars[calendar]
            if duration.days is None:
                assert duration.seconds is not None
                due = (counted.add_from_epoch, duration.seconds * 1_000_000)
            else:
                due = (counted.add_days_from_epoch, duration.days)
            self.due.append((metric, template, *due))
        self.decision = Decision(
            ticket_id="-",
            targets={},
            ruleset=rs.name,
            version=rs.version,
            revision=rs.revision,
            matched_rules=tuple(self.rules),
            priority=merged.priority,
            calendar=merged.calendar,
            route=Route(**merged.route) if merged.route else None,
            escalation_plan=merged.plan,
            penalty_class=merged.penalty,
            tags=tuple(merged.tags),
            explanation=tuple(self.explanation),
        )


class _Version:
    """One ruleset version compiled into durable_rules."""

    def __init__(self, rs: CompiledRuleset) -> None:
        self.rs = rs
        self.reader = FieldReader(rs)
        self.encoding: Encoding = encoding_for(list(rs.conditions.values()), rs.ranks)
        self.matchers: list[TableMatcher] = []
        try:
            for ti, table in enumerate(rs.model.tables):
                rules = [
                    CompiledRule(ri, compile_condition(rs.conditions[(ti, ri)], self.encoding))
                    for ri in range(len(table.rules))
                ]
                self.matchers.append(TableMatcher(f"{rs.ref}/{table.name}", rules))
        except BaseException:
            self.close()
            raise
        self.cache: dict[tuple[Any, ...], _Match] = {}  # encoded message -> match
        self.known: dict[tuple[Any, ...], _Match] = {}  # raw field values -> match

    def decide(
        self, ticket: Ticket, facts: dict[str, Any] | None, overrides: dict[str, Any] | None
    ) -> Decision:
        """The ticket's decision, due times counted from its ``created_at``.

        A ticket whose raw field values were seen before (validation
        included) reuses that match without reading, checking or encoding
        its fields again; that is what makes batches fast.
        """
        start = epoch_us(ticket.created_at)
        key: tuple[Any, ...] | None = (
            tuple(overrides.items()) if overrides else None,
            self.reader.key(ticket, facts, start),
        )
        try:
            found = self.known.get(key)
        except TypeError:  # a list or mapping among the values: not keyed
            found = key = None
        if found is None:
            found = self.match(self.reader.read(ticket, facts, overrides))
            if key is not None:
                if len(self.known) >= CACHE_SIZE:
                    self.known.clear()
                self.known[key] = found
        decision = found.decision
        if decision is None:
            raise NoRuleMatched(f"ticket {ticket.id}: {found.error}")
        targets = {}
        for metric, template, count, amount in found.due:
            # filled(template, due_at=...) without its keyword dict: it runs per target.
            values = template.__dict__.copy()
            values["due_at"] = count(start, amount)
            targets[metric] = trusted(MetricTarget, template.__pydantic_fields_set__, values)
        return filled(decision, ticket_id=ticket.id, targets=targets)

    def match(self, values: dict[str, Any]) -> _Match:
        # The encoded message is exactly what the rules can see, so it is an
        # exact cache key (its key order is fixed by the encoding).
        message = self.encoding.message(values)
        key = tuple(message.items())
        found = self.cache.get(key)
        if found is None:
            found = self._match(message)
            found.finish(self.rs)
            if len(self.cache) >= CACHE_SIZE:
                self.cache.clear()
            self.cache[key] = found
        return found

    def _match(self, message: dict[str, Any]) -> _Match:
        result = _Match()
        for table, matcher in zip(self.rs.model.tables, self.matchers, strict=True):
            if table.hit == "first":
                hit = matcher.first_match(message)
                hits = [] if hit is None else [hit]
            else:
                hits = matcher.all_matches(message)
            for index in hits:
                rule = table.rules[index]
                result.rules.append(rule.name)
                result.merged.apply(rule.then)
                result.explanation.append(f"{table.name}: rule {rule.name} matched ({table.hit})")
            if not hits:
                if table.default is not None:
                    result.merged.apply(table.default)
                    result.explanation.append(f"{table.name}: no rule matched; default applied")
                elif table.hit == "first":
                    result.error = NoRuleMatched(
                        f"{self.rs.ref}: no rule of table {table.name!r} matched and the "
                        "table declares no default"
                    )
                    return result
        return result

    def close(self) -> None:
        for matcher in self.matchers:
            matcher.close()


class Engine:
    """Evaluates tickets against a library of versioned rulesets.

    Also implements the clock module's ``ClockPolicy`` (``decide``,
    ``metrics``, ``calendar``, ``escalation_plan``, ``retarget``).
    """

    def __init__(self, library: RulesetLibrary) -> None:
        self.library = library
        self._versions: dict[tuple[str, str], _Version] = {}
        self._routes: dict[tuple[str | None, ...], _Route] = {}
        try:
            for rs in library.all():
                self._versions[(rs.name, rs.version)] = _Version(rs)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_directory(cls, path: str | Path) -> Engine:
        """Load, validate and compile every ruleset and contract below ``path``."""
        return cls(load_directory(path))

    def close(self) -> None:
        """Free the compiled durable_rules rulesets (the engine is unusable after)."""
        for version in self._versions.values():
            version.close()
        self._versions.clear()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- evaluation -------------------------------------------------------

    def _prepare(
        self, ticket: Ticket | Mapping[str, Any], ruleset: str | None, version: str | None
    ) -> tuple[Ticket, _Version, dict[str, Any] | None]:
        """Parse the ticket and find its version and its contract's overrides (the tier)."""
        ticket = parse_ticket(ticket)
        return (ticket, *self._version_for(ticket, ruleset, version))

    def _version_for(
        self, ticket: Ticket, ruleset: str | None = None, version: str | None = None
    ) -> tuple[_Version, dict[str, Any] | None]:
        """The ticket's compiled version and its contract's overrides (the tier).

        Without an explicit ruleset, where the ticket's contract leads is
        kept per (contract, customer, tier): then only the version in force
        at ``created_at`` is looked up per ticket.
        """
        if ruleset is None and version is None:
            key = (ticket.contract, ticket.customer, ticket.tier)
            route = self._routes.get(key)
            if route is None:
                route = self._route(ticket)
                if len(self._routes) >= CACHE_SIZE:
                    self._routes.clear()
                self._routes[key] = route
            starts, versions, overrides = route
            i = bisect_right(starts, ticket.created_at)
            if i:
                return versions[i - 1], overrides
        return self._resolve(ticket, ruleset, version)

    def _route(self, ticket: Ticket) -> _Route:
        """The versions the ticket's contract can lead to, by effective date."""
        compiled, overrides = self._resolve(ticket, None, None)
        contract = self.library.contract_for(ticket.contract, ticket.customer)
        assert contract is not None  # _resolve raised otherwise
        if contract.version is not None:
            return [_EARLIEST], [compiled], overrides
        versions = self.library.versions[contract.ruleset]
        return (
            [rs.model.effective_from for rs in versions],
            [self._versions[(rs.name, rs.version)] for rs in versions],
            overrides,
        )

    def _resolve(
        self, ticket: Ticket, ruleset: str | None, version: str | None
    ) -> tuple[_Version, dict[str, Any] | None]:
        overrides = None
        contract = None
        if ruleset is None:
            contract = self.library.contract_for(ticket.contract, ticket.customer)
            if contract is None:
                raise TicketError(
                    "the ticket names no known contract or customer; give 'contract'", "contract"
                )
            ruleset, version = contract.ruleset, version or contract.version
            if contract.tier is not None:
                # The contract is authoritative for the tier.
                if ticket.tier is not None and ticket.tier != contract.tier:
                    raise TicketError(
                        f"{ticket.tier!r} contradicts contract {contract.id}, which is tier "
                        f"{contract.tier!r}",
                        "tier",
                    )
                overrides = {"tier": contract.tier}
        if version is not None:
            rs = self.library.get(ruleset, version)
        else:
            rs = self.library.in_force(ruleset, ticket.created_at)
        return self._versions[(rs.name, rs.version)], overrides

    def evaluate(
        self,
        ticket: Ticket | Mapping[str, Any],
        *,
        facts: Mapping[str, Any] | None = None,
        ruleset: str | None = None,
        version: str | None = None,
    ) -> Decision:
        """Decide one ticket.

        An explicit ``ruleset`` (and ``version``) wins; else the ticket's
        contract decides: its pinned version, or the version in force at
        ``created_at``. Raises TicketError for bad input and NoRuleMatched
        when no rule applies.
        """
        ticket, compiled, overrides = self._prepare(ticket, ruleset, version)
        return compiled.decide(ticket, dict(facts) if facts else None, overrides)

    def evaluate_many(
        self,
        tickets: Iterable[Ticket | Mapping[str, Any]],
        *,
        facts: Mapping[str, Any] | None = None,
    ) -> list[Decision]:
        """Decide a batch; the first bad ticket raises (with its position in the batch).

        Ticket mappings are validated together in one pass; each ticket then
        costs a lookup of its raw field values and its due times (see
        ``_Version.decide``).
        """
        items = tickets if isinstance(tickets, list) else list(tickets)
        extra = dict(facts) if facts else None
        decisions: list[Decision] = []
        add = decisions.append
        with _cyclic_gc_paused():
            parsed = _parse_batch(items)
            for i, item in enumerate(items):
                try:
                    # A batch with a bad item is parsed ticket by ticket, so
                    # that the first problem in order is the one reported.
                    ticket = parse_ticket(item) if parsed is None else parsed[i]
                    compiled, overrides = self._version_for(ticket)
                    add(compiled.decide(ticket, extra, overrides))
                except TicketError as exc:
                    raise _at(i, exc) from None
        return decisions

    def explain(
        self,
        ticket: Ticket | Mapping[str, Any],
        *,
        facts: Mapping[str, Any] | None = None,
        ruleset: str | None = None,
        version: str | None = None,
    ) -> Explanation:
        """Every rule of every table for this ticket: matched or not, and the test that failed.

        The version is chosen as :meth:`evaluate` chooses it. A ticket no rule
        applies to is explained too (``decision`` None, ``error`` saying why):
        that is when an explanation is wanted most.
        """
        ticket, compiled, overrides = self._prepare(ticket, ruleset, version)
        rs = compiled.rs
        values = compiled.reader.read(ticket, dict(facts) if facts else None, overrides)
        match = compiled.match(values)
        # The rules applied before a `first` table without a match stopped the evaluation.
        applied = set(match.rules)
        decision: Decision | None = None
        error = None
        if match.decision is None:
            error = f"ticket {ticket.id}: {match.error}"
        else:
            decision = self.evaluate(ticket, facts=facts, ruleset=ruleset, version=version)
        traces = []
        for ti, table in enumerate(rs.model.tables):
            for ri, rule in enumerate(table.rules):
                ok, failed = first_failure(rs.conditions[(ti, ri)], values, rs.ranks)
                failed_text = None
                if failed is not None:
                    actual = values.get(failed.field, "(missing)")
                    failed_text = f"{failed.describe()} — ticket has {actual!r}"
                traces.append(
                    RuleTrace(
                        table=table.name,
                        rule=rule.name,
                        line=rs.lines.get((ti, ri)),
                        matched=ok,
                        applied=rule.name in applied,
                        failed=failed_text,
                    )
                )
        return Explanation(
            ticket_id=ticket.id,
            ruleset=rs.ref,
            source=rs.source,
            values=values,
            rules=traces,
            decision=decision,
            error=error,
        )

    def rulesets(self) -> list[RulesetInfo]:
        """Every loaded version: name, version, effective date, revision, source file."""
        return [
            RulesetInfo(
                name=rs.name,
                version=rs.version,
                effective_from=rs.model.effective_from,
                revision=rs.revision,
                source=rs.source,
                rules=sum(len(t.rules) for t in rs.model.tables),
            )
            for rs in self.library.all()
        ]

    # -- ClockPolicy ------------------------------------------------------

    def decide(self, ticket: Ticket) -> Decision:
        """ClockPolicy: the decision for the ticket's current fields."""
        return self.evaluate(ticket)

    def _ruleset_of(self, decision: Decision) -> CompiledRuleset:
        return self.library.get(decision.ruleset, decision.version)

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        """ClockPolicy: the metric definitions of the decision's ruleset version."""
        return self._ruleset_of(decision).model.metrics

    def calendar(self, decision: Decision, name: str) -> Calendar:
        """ClockPolicy: a calendar of the decision's ruleset version by name."""
        return self._ruleset_of(decision).calendars[name]

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        """ClockPolicy: the escalation plan the decision named, if any."""
        if decision.escalation_plan is None:
            return None
        return self._ruleset_of(decision).model.escalation_plans[decision.escalation_plan]

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        """ClockPolicy: the ruleset's re-targeting setting."""
        return self._ruleset_of(decision).model.settings.retarget


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch, then restore it.

    A batch allocates many small objects (tickets, decisions, their dicts)
    and keeps them all, so the collector's passes re-scan the growing result
    again and again for nothing: they cost a quarter of a batch's CPU time
    (bench/bench_engine.py). A batch makes no reference cycles on its normal
    path, so reference counting still frees its garbage at once; any cycle
    made meanwhile (here or in another thread) is collected after the batch.
    The pause is process-wide: other threads' cycles wait for the batch too.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse_batch(items: list[Ticket | Mapping[str, Any]]) -> list[Ticket] | None:
    """Every item as a Ticket, the mappings validated together in one call.

    None when some item is not a valid ticket: the caller then parses them
    one by one, which names the problem as a single ticket's would be named.
    """
    raw = [t for t in items if not isinstance(t, Ticket)]
    try:
        parsed = iter(_TICKETS.validate_python(raw) if raw else ())
    except ValidationError:
        return None
    return [t if isinstance(t, Ticket) else next(parsed) for t in items]


def _at(position: int, exc: TicketError) -> TicketError:
    """``exc`` with the ticket's position in its batch put before its path."""
    return TicketError(exc.message, f"[{position}].{exc.path}" if exc.path else f"[{position}]")
