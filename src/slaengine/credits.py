"""Service-credit statements, and ``slaengine credits``.

A month's statement for a contract comes from three inputs:

- the penalty terms in ``rulesets/penalties.yaml`` (schemes, and per
  contract its scheme, service and maintenance windows; declared force
  majeure), loaded with file:line errors like the rulesets;
- ticket events (JSONL, each ticket's whole history): replayed through the
  SLA clocks as at the period's end, giving the metric cycles met and
  breached in the period. Time paused for the customer is not counted by
  the clocks (the ruleset's ``pause_statuses``); declared force majeure
  stops every clock of the contracts it covers;
- outage records (JSONL, an incident ticket's start and end): downtime of
  the customer's service, measured over the contract's service calendar
  less maintenance windows and force majeure.

Each credit line names the term that produced it as ``file:line``; after the
scheme's own lines, plugins implementing ``slaengine_penalty`` may add lines,
then the cap applies.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from slaengine.calendar import Calendar
from slaengine.cli import read_records
from slaengine.clock import ClockPolicy, MetricStatus, TicketClock
from slaengine.contract import Contract
from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import EventError, RulesetError, RulesetErrors, TicketError
from slaengine.escalation import EscalationPlan
from slaengine.library import RulesetLibrary
from slaengine.metric import MetricDefinition
from slaengine.penalty import (
    ContractTerms,
    Credit,
    CreditLine,
    Outage,
    PenaltyFile,
    Scheme,
    Statement,
    StatementPeriod,
    Tier,
)
from slaengine.plugins import PluginFailure, PluginHost, load_plugin_config
from slaengine.replay import _instant, read_events
from slaengine.ruleset import _pydantic_errors
from slaengine.ticket import Ticket, TicketEvent
from slaengine.yamlsource import Located, Path_, read_yaml_file

__all__ = [
    "PENALTIES_FILE",
    "PenaltyTerms",
    "add_credits_parser",
    "compute_statements",
    "credits_command",
    "load_penalties",
    "month",
    "read_outages",
    "write_csv",
    "write_table",
]

PENALTIES_FILE = "penalties.yaml"
_HOOK = "slaengine_penalty"


# ------------------------------------------------------------------- loading


class PenaltyTerms:
    """A validated penalties file, with the line of every term for the statements.

    ``contracts`` holds the terms of every contract with a scheme: those
    listed in the file, and those whose ``penalty_scheme`` is set in
    contracts.yaml.
    """

    def __init__(
        self, model: PenaltyFile, located: Located, contracts: dict[str, ContractTerms]
    ) -> None:
        self.model = model
        self.located = located
        self.contracts = contracts

    def where(self, *path: str | int) -> str:
        """``rulesets/penalties.yaml:14``: where a term is written."""
        line, _ = self.located.where(path)
        return f"{self.located.file}:{line}" if line else self.located.file

    def scheme_of(self, contract_id: str) -> tuple[str, Scheme, ContractTerms]:
        """The name and scheme of a contract that has terms, and the terms themselves."""
        terms = self.contracts[contract_id]
        return terms.scheme, self.model.schemes[terms.scheme], terms


def load_penalties(path: str | Path, library: RulesetLibrary) -> PenaltyTerms:
    """Load penalty terms and check them against the library's contracts and rulesets.

    Every problem is reported at once as RulesetErrors, each at
    ``file:line:column`` with its key path.
    """
    try:
        located = read_yaml_file(Path(path))
    except RulesetError as exc:
        raise RulesetErrors([exc]) from None
    if not isinstance(located.data, dict):
        raise RulesetErrors([located.error((), "a penalties file must be a mapping")])
    try:
        model = PenaltyFile.model_validate(located.data)
    except ValidationError as exc:
        raise RulesetErrors(_pydantic_errors(located, exc)) from None
    contracts = dict(model.contracts)
    for contract in library.contracts.values():
        if contract.penalty_scheme is not None and contract.id not in contracts:
            contracts[contract.id] = ContractTerms(scheme=contract.penalty_scheme)
    errors = _cross_check(model, contracts, located, library)
    if errors:
        raise RulesetErrors(errors)
    return PenaltyTerms(model, located, contracts)


def _cross_check(
    model: PenaltyFile,
    contracts: dict[str, ContractTerms],
    located: Located,
    library: RulesetLibrary,
) -> list[RulesetError]:
    """What pydantic cannot see: names that must exist elsewhere, fees, currencies."""
    errors: list[RulesetError] = []

    def check(ok: bool, path: Path_, message: str) -> None:
        if not ok:
            errors.append(located.error(path, message))

    known = ", ".join(sorted(library.contracts)) or "(none)"
    for contract_id, terms in contracts.items():
        at: Path_ = ("contracts", contract_id)
        contract = library.contracts.get(contract_id)
        if contract is None:
            errors.append(located.error(at, f"unknown contract {contract_id!r}; known: {known}"))
            continue
        scheme = model.schemes.get(terms.scheme)
        if scheme is None:
            schemes = ", ".join(sorted(model.schemes))
            named = "" if contract_id in model.contracts else " (penalty_scheme in contracts.yaml)"
            errors.append(
                located.error(
                    (*at, "scheme"), f"unknown scheme {terms.scheme!r}{named}; known: {schemes}"
                )
            )
            continue
        check(
            contract.penalty_scheme in (None, terms.scheme),
            (*at, "scheme"),
            f"contracts.yaml gives {contract_id} scheme {contract.penalty_scheme!r}; "
            "name the scheme in one place",
        )
        fees = [fee for fee in (contract.monthly_fee, terms.monthly_fee) if fee is not None]
        check(bool(fees), at, "no monthly_fee here or in contracts.yaml; credits need one")
        check(
            len(set(fees)) <= 1,
            (*at, "monthly_fee"),
            f"contracts.yaml gives monthly_fee {contract.monthly_fee}; give it in one place",
        )
        check(
            scheme.currency in (None, contract.currency),
            (*at, "scheme"),
            f"scheme {terms.scheme!r} is in {scheme.currency} but {contract_id} is billed "
            f"in {contract.currency}",
        )
        versions = library.versions.get(contract.ruleset, [])
        metrics = {m for rs in versions for m in rs.model.metrics}
        calendars = {c for rs in versions for c in rs.calendars}
        where = ("schemes", terms.scheme)
        for i, metric in enumerate(scheme.metrics):
            check(
                metric in metrics,
                (*where, "metrics", i),
                f"unknown metric {metric!r} for {contract_id} ({contract.ruleset} has "
                f"{', '.join(sorted(metrics))})",
            )
        for i, credit in enumerate(scheme.breach_credits):
            check(
                credit.metric is None or credit.metric in metrics,
                (*where, "breach_credits", i, "metric"),
                f"unknown metric {credit.metric!r} for {contract_id} ({contract.ruleset} has "
                f"{', '.join(sorted(metrics))})",
            )
        if scheme.availability is not None:
            check(
                scheme.availability.calendar in calendars,
                (*where, "availability", "calendar"),
                f"{contract.ruleset} has no calendar {scheme.availability.calendar!r} "
                f"(it has {', '.join(sorted(calendars))})",
            )
    for i, declared in enumerate(model.force_majeure):
        for j, contract_id in enumerate(declared.contracts):
            check(
                contract_id in contracts,
                ("force_majeure", i, "contracts", j),
                f"{contract_id!r} is not a contract with a penalty scheme",
            )
    return _unique(errors)


def _unique(errors: list[RulesetError]) -> list[RulesetError]:
    """One report per problem (a scheme shared by contracts is checked once per contract)."""
    seen: dict[str, RulesetError] = {}
    for error in errors:
        seen.setdefault(str(error), error)
    return list(seen.values())


# -------------------------------------------------------------------- inputs


def month(label: str, timezone: str) -> StatementPeriod:
    """The month ``YYYY-MM`` in ``timezone``: [its first midnight, the next month's)."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", label):
            raise ValueError(label)
        first = datetime.strptime(label, "%Y-%m")
    except ValueError:
        raise TicketError(f"{label!r} is not a month such as 2026-11", "period") from None
    zone = ZoneInfo(timezone)
    following = (first + timedelta(days=32)).replace(day=1)
    return StatementPeriod(
        label=label, start=first.replace(tzinfo=zone), end=following.replace(tzinfo=zone)
    )


def read_outages(source: str) -> list[Outage]:
    """Outage records from a JSON/JSONL file; a bad record raises EventError at file:line."""
    outages = []
    for line, record in read_records(source):
        where = f"{source}:{line}"
        if isinstance(record, ValueError):
            raise EventError(str(record), path=where)
        try:
            outages.append(Outage.model_validate(record))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise EventError(problems, path=where) from None
    return outages


# ------------------------------------------------------------------- clocks


class _ClosedDuring:
    """The engine's clock policy with extra closed time on every calendar.

    Declared force majeure stops the SLA clocks: no target's budget is used
    during it, so a fault reported in a typhoon is not breached by it.
    """

    def __init__(self, engine: Engine, closed: list[tuple[datetime, datetime]]) -> None:
        self.engine = engine
        self.closed = closed
        self._calendars: dict[tuple[str, str, str], Calendar] = {}

    def decide(self, ticket: Ticket) -> Decision:
        return self.engine.decide(ticket)

    def metrics(self, decision: Decision) -> Mapping[str, MetricDefinition]:
        return self.engine.metrics(decision)

    def calendar(self, decision: Decision, name: str) -> Calendar:
        key = (decision.ruleset, decision.version, name)
        calendar = self._calendars.get(key)
        if calendar is None:
            calendar = self.engine.calendar(decision, name).excluding(self.closed)
            self._calendars[key] = calendar
        return calendar

    def escalation_plan(self, decision: Decision) -> EscalationPlan | None:
        return self.engine.escalation_plan(decision)

    def retarget(self, decision: Decision) -> Literal["from_start", "from_change"]:
        return self.engine.retarget(decision)


def _outcomes(status: MetricStatus) -> Iterable[tuple[datetime, bool]]:
    """(instant decided, breached?) for each decided cycle of a metric.

    A breach is decided at the due time (met late or still open); a cycle met
    in time, when it was met. Running and cancelled cycles are not measured.
    """
    for record in status.history:
        if record.outcome == "breached" and record.breached_at is not None:
            yield record.breached_at, True
        elif record.outcome == "met":
            yield record.stopped_at, False
    if status.state == "breached" and status.breached_at is not None:
        yield status.breached_at, True
    elif status.state == "met" and status.met_at is not None:
        yield status.met_at, False


class _Breach:
    """One breached metric cycle, with what the scheme's breach credits select on."""

    __slots__ = ("ticket_id", "metric", "at", "priority", "penalty_class")

    def __init__(self, ticket_id: str, metric: str, at: datetime, decision: Decision) -> None:
        self.ticket_id = ticket_id
        self.metric = metric
        self.at = at
        self.priority = decision.priority
        self.penalty_class = decision.penalty_class


# ---------------------------------------------------------------- statements


class _ContractPeriod:
    """One contract's inputs for one period, gathered ticket by ticket."""

    def __init__(
        self,
        terms: PenaltyTerms,
        contract: Contract,
        engine: Engine,
        label: str,
        as_at: datetime,
    ) -> None:
        self.terms = terms
        self.contract = contract
        self.engine = engine
        self.scheme_name, self.scheme, self.contract_terms = terms.scheme_of(contract.id)
        self.period = month(label, self.scheme.timezone)
        if as_at <= self.period.start:
            raise TicketError(
                f"{label} has not begun at {as_at.isoformat()} ({self.scheme.timezone})", "at"
            )
        self.as_at = min(as_at, self.period.end)
        self.force_majeure = [
            (w.start, w.end)
            for w in terms.model.force_majeure
            if not w.contracts or contract.id in w.contracts
        ]
        self.policy: ClockPolicy = (
            _ClosedDuring(engine, self.force_majeure) if self.force_majeure else engine
        )
        fee = self.contract_terms.monthly_fee or contract.monthly_fee
        assert fee is not None  # checked when the terms were loaded
        self.fee: Decimal = fee
        self.currency = contract.currency
        self.measured = 0
        self.breaches: list[_Breach] = []
        self.outages: list[Outage] | None = None  # None: no outage records were given

    def add_ticket(self, ticket_id: str, events: list[TicketEvent]) -> None:
        """Replay one ticket as at the period's end; note the cycles decided in the period."""
        upto = [e for e in events if e.at <= self.as_at]
        if not any(e.type == "created" for e in upto):
            return  # created after the statement instant
        clock = TicketClock(self.policy, ticket_id).apply_all(upto)
        statuses = clock.status(self.as_at)
        decision = clock.decision
        wanted = self.scheme.metrics
        start, end = self.period.start, self.as_at
        for metric, status in statuses.items():
            if wanted and metric not in wanted:
                continue
            for at, breached in _outcomes(status):
                if not start <= at < end:
                    continue
                self.measured += 1
                if breached:
                    self.breaches.append(_Breach(ticket_id, metric, at, decision))

    def statement(self, host: PluginHost | None) -> Statement:
        """The statement: credit lines per breach, compliance and availability, plugins, cap."""
        scheme = self.scheme
        lines: list[CreditLine] = []
        for breach in sorted(self.breaches, key=_breach_order):
            lines += self._breach_line(breach)

        compliance = None
        if self.measured:
            exact = Decimal(100 * (self.measured - len(self.breaches))) / self.measured
            compliance = _truncate(exact, 2)
            if scheme.compliance is not None:
                lines += self._tier_line("compliance", scheme.compliance.tiers, exact, compliance)

        notes: list[str] = []
        availability = service = down = None
        if scheme.availability is not None and self.outages is None:
            notes.append("no outage records given: availability not measured")
        elif scheme.availability is not None:
            service, down = self._availability_seconds(scheme.availability.calendar)
            if service:
                exact = Decimal(100 * (service - down)) / service
                availability = _truncate(exact, 3)
                lines += self._tier_line(
                    "availability", scheme.availability.tiers, exact, availability
                )

        if host is not None:
            lines += self._plugin_lines(host, lines, notes)

        subtotal = sum((ln.amount for ln in lines), Decimal(0))
        if scheme.cap is not None:
            cap = self._line("cap", scheme.cap, "")
            if subtotal > cap.amount:
                rule = (
                    f"{self._where('cap')}: credits are capped at "
                    f"{scheme.cap.describe(self.currency)} ({_money(cap.amount)} {self.currency}) "
                    "per month"
                )
                lines.append(cap.model_copy(update={"amount": cap.amount - subtotal, "rule": rule}))
        return Statement(
            contract=self.contract.id,
            customer=self.contract.customer,
            scheme=self.scheme_name,
            period=self.period,
            as_at=self.as_at,
            provisional=self.as_at < self.period.end,
            monthly_fee=self.fee,
            currency=self.currency,
            measured=self.measured,
            breaches=len(self.breaches),
            compliance_percent=compliance,
            availability_percent=availability,
            service_seconds=service,
            downtime_seconds=down,
            lines=lines,
            total=scheme.round(sum((ln.amount for ln in lines), Decimal(0))),
            notes=notes,
        )

    def _where(self, *path: str | int) -> str:
        return self.terms.where("schemes", self.scheme_name, *path)

    def _line(self, kind: str, credit: Credit, rule: str, **extra: Any) -> CreditLine:
        return CreditLine(
            contract=self.contract.id,
            period=self.period.label,
            kind=kind,
            amount=self.scheme.round(credit.money(self.fee)),
            currency=self.currency,
            rule=rule,
            percent=credit.percent,
            **extra,
        )

    def _breach_line(self, breach: _Breach) -> list[CreditLine]:
        """The line of the first breach credit that selects this breach (none: no credit)."""
        for i, credit in enumerate(self.scheme.breach_credits):
            if credit.matches(breach.priority, breach.penalty_class, breach.metric):
                rule = (
                    f"{self._where('breach_credits', i)}: "
                    f"{credit.describe_breach()}: {credit.describe(self.currency)}"
                )
                found = {"ticket_id": breach.ticket_id, "metric": breach.metric, "at": breach.at}
                return [self._line("breach", credit, rule, **found)]
        return []

    def _tier_line(
        self, kind: str, tiers: list[Tier], exact: Decimal, shown: Decimal
    ) -> list[CreditLine]:
        """The line of the most severe tier ``exact`` falls under (none when above them all)."""
        under = [t for t in tiers if exact < t.below]
        if not under:
            return []
        tier = min(under, key=lambda t: t.below)
        rule = (
            f"{self._where(kind, 'tiers', tiers.index(tier))}: {kind} {shown}% is below "
            f"{tier.below}%: {tier.describe(self.currency)}"
        )
        return [self._line(kind, tier, rule)]

    def _availability_seconds(self, calendar_name: str) -> tuple[int, int]:
        """Service time and downtime in the period, in seconds, over the service calendar.

        Maintenance windows and force majeure are closed time: neither
        service time nor downtime. Overlapping outages count once.
        """
        library = self.engine.library
        contract = self.contract
        if contract.version is not None:
            ruleset = library.get(contract.ruleset, contract.version)
        else:
            ruleset = library.in_force(contract.ruleset, self.period.start)
        windows = self.contract_terms.maintenance_windows
        closed = [(w.start, w.end) for w in windows] + self.force_majeure
        calendar = ruleset.calendars[calendar_name].excluding(closed)
        start, end = self.period.start, self.as_at
        service_name = self.contract_terms.service
        service = calendar.elapsed(start, end)
        spans = sorted(
            (max(o.start, start), min(o.end or end, end))
            for o in self.outages or ()
            if (service_name is None or o.service in (None, service_name))
            and o.start < end
            and (o.end is None or o.end > start)
        )
        down = timedelta(0)
        reached = start
        for a, b in spans:
            a = max(a, reached)
            if b > a:
                down += calendar.elapsed(a, b)
                reached = b
        return int(service.total_seconds()), int(down.total_seconds())

    def _plugin_lines(
        self, host: PluginHost, lines: list[CreditLine], notes: list[str]
    ) -> list[CreditLine]:
        """Lines added by ``slaengine_penalty`` plugins, each seeing the lines before it.

        Plugins run in registration order, as the hook's specification
        promises (the host's own call order is the reverse, pluggy's); their
        amounts are rounded as the scheme says. A
        plugin that raises, times out or returns a line for another
        contract, period or currency is left out and noted; the others run.
        """
        # Plugins see the fee and scheme in force, wherever the terms gave them.
        contract = self.contract.model_copy(
            update={"monthly_fee": self.fee, "penalty_scheme": self.scheme_name}
        )
        added: list[CreditLine] = []
        for name in reversed(host.implementations(_HOOK)):
            try:
                result = host.call_plugin(
                    name, _HOOK, contract=contract, period=self.period, lines=lines + added
                )
                for item in result or ():
                    credit = CreditLine.model_validate(item)
                    expected = (self.contract.id, self.period.label, self.currency)
                    if (credit.contract, credit.period, credit.currency) != expected:
                        raise ValueError(
                            f"returned a line for {credit.contract} {credit.period} in "
                            f"{credit.currency}, not {' '.join(expected)}"
                        )
                    amount = self.scheme.round(credit.amount)
                    added.append(credit.model_copy(update={"plugin": name, "amount": amount}))
            except Exception as exc:  # isolated: reported with the plugin's name
                kind = "timeout" if isinstance(exc, TimeoutError) else "error"
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                host.failures.append(PluginFailure(plugin=name, hook=_HOOK, kind=kind, error=error))
                notes.append(f"plugin {name} left out ({kind}): {error}")
        return added


def _breach_order(breach: _Breach) -> tuple[datetime, str, str]:
    return breach.at, breach.ticket_id, breach.metric


def _truncate(value: Decimal, places: int) -> Decimal:
    """Cut, never round up: 99.8999 shows as 99.899, not as 99.900."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def compute_statements(
    terms: PenaltyTerms,
    engine: Engine,
    period: str,
    events: Iterable[TicketEvent],
    outages: Iterable[Outage] | None = None,
    *,
    as_at: datetime | None = None,
    host: PluginHost | None = None,
) -> list[Statement]:
    """One statement per contract with penalty terms, for the month ``period`` (``YYYY-MM``).

    ``events`` must hold each ticket's whole history (its ``created`` event
    included); tickets of contracts without terms are skipped. ``as_at``
    (default: now) before the month's end gives provisional statements.
    """
    as_at = (as_at or datetime.now(UTC)).astimezone(UTC)
    library = engine.library
    contexts = {
        contract_id: _ContractPeriod(terms, library.contracts[contract_id], engine, period, as_at)
        for contract_id in terms.contracts
    }
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    for event in events:
        by_ticket[event.ticket_id].append(event)
    for ticket_id, ticket_events in by_ticket.items():
        created = next((e for e in ticket_events if e.type == "created"), None)
        if created is None:
            raise EventError(
                "no created event; give each ticket's whole history", path=f"ticket {ticket_id}"
            )
        try:
            contract = library.contract_for(
                created.fields.get("contract"), created.fields.get("customer")
            )
        except TicketError as exc:
            raise TicketError(exc.message, f"ticket {ticket_id}.{exc.path}") from None
        context = contexts.get(contract.id) if contract is not None else None
        if context is not None:
            context.add_ticket(ticket_id, ticket_events)
    if outages is not None:
        by_contract: dict[str, list[Outage]] = defaultdict(list)
        for outage in outages:
            if outage.contract not in library.contracts:
                raise TicketError(
                    f"unknown contract {outage.contract!r}", f"outage {outage.ticket_id}.contract"
                )
            by_contract[outage.contract].append(outage)
        for contract_id, context in contexts.items():
            context.outages = by_contract[contract_id]
    return [context.statement(host) for context in contexts.values()]


# ----------------------------------------------------------------------- CLI


def add_credits_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``credits`` to the ``slaengine`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "credits",
        help="service-credit statements per contract for a month, from ticket events",
        description=(
            "Print a service-credit statement per contract for one month: breaches counted, "
            "compliance and availability, each credit line with the rule behind it, and the "
            "total after the cap. EVENTS holds each ticket's whole event history (JSONL)."
        ),
    )
    p.add_argument("events", help="ticket events (JSONL); '-' reads stdin")
    p.add_argument("--period", required=True, help="the month, YYYY-MM (e.g. 2026-11)")
    p.add_argument("--outages", help="outage records (JSONL: ticket_id, contract, start, end)")
    p.add_argument("--rulesets", default="rulesets", help="ruleset directory (default: rulesets)")
    p.add_argument("--penalties", help="penalty terms (default: RULESETS/penalties.yaml)")
    p.add_argument("--plugin-config", help="plugin settings YAML (default: RULESETS/plugins.yaml)")
    p.add_argument(
        "--at",
        type=_instant,
        help="compute as at this instant, ISO 8601 with an offset (default: now; "
        "before the month's end the statement is provisional)",
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON statement per line")
    form.add_argument("--csv", action="store_true", help="CSV, one row per credit line")
    p.set_defaults(func=credits_command)
    return p


def credits_command(args: argparse.Namespace) -> int:
    """``slaengine credits``: read the inputs, compute, print in the chosen form."""
    rulesets = Path(args.rulesets)
    config = args.plugin_config
    if config is None and (rulesets / "plugins.yaml").exists():
        config = str(rulesets / "plugins.yaml")
    with Engine.from_directory(rulesets) as engine:
        terms = load_penalties(args.penalties or rulesets / PENALTIES_FILE, engine.library)
        outages = read_outages(args.outages) if args.outages else None
        if args.events == "-":
            events = list(read_events(sys.stdin.buffer, "<stdin>"))
        else:
            with open(args.events, "rb") as stream:
                events = list(read_events(stream, args.events))
        host = PluginHost(load_plugin_config(config))
        try:
            statements = compute_statements(
                terms, engine, args.period, events, outages, as_at=args.at, host=host
            )
        finally:
            host.close()
    out = sys.stdout
    if args.json:
        for statement in statements:
            out.write(statement.model_dump_json() + "\n")
    elif args.csv:
        write_csv(statements, out)
    else:
        write_table(statements, out)
    for failure in host.failures:
        print(f"warning: plugin {failure.plugin} {failure.kind}: {failure.error}", file=sys.stderr)
    return 0


def _money(amount: Decimal) -> str:
    return f"{amount:,}"


def _duration(seconds: int) -> str:
    minutes = seconds // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


def write_table(statements: list[Statement], out: TextIO) -> None:
    """Statements as a contract manager reads them: a heading, the figures, the lines."""
    for n, s in enumerate(statements):
        if n:
            out.write("\n")
        as_at = s.as_at.astimezone(s.period.start.tzinfo).isoformat(timespec="minutes")
        state = f"provisional as at {as_at}" if s.provisional else "final"
        out.write(
            f"{s.contract} ({s.customer})  {s.period.label}  scheme {s.scheme}  "
            f"monthly fee {_money(s.monthly_fee)} {s.currency}  [{state}]\n"
        )
        compliance = f"{s.compliance_percent}%" if s.compliance_percent is not None else "-"
        out.write(
            f"  breaches {s.breaches} of {s.measured} cycles measured; compliance {compliance}"
        )
        if s.availability_percent is not None:
            assert s.service_seconds is not None and s.downtime_seconds is not None
            out.write(
                f"; availability {s.availability_percent}% (down {_duration(s.downtime_seconds)}"
                f" of {_duration(s.service_seconds)} service time)"
            )
        out.write("\n")
        rows = [("KIND", "TICKET", "METRIC", "CREDIT", "RULE")]
        rows += [
            (ln.kind, ln.ticket_id or "", ln.metric or "", _money(ln.amount), _rule(ln))
            for ln in s.lines
        ]
        rows.append(("total", "", "", _money(s.total), s.currency))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        for row in rows:
            cells = [row[c].rjust(w) if c == 3 else row[c].ljust(w) for c, w in enumerate(widths)]
            out.write(("  " + "  ".join(cells) + "  " + row[4]).rstrip() + "\n")
        for note in s.notes:
            out.write(f"  note: {note}\n")


def _rule(line: CreditLine) -> str:
    return f"{line.rule} (plugin {line.plugin})" if line.plugin else line.rule


CSV_COLUMNS = (
    "contract",
    "customer",
    "period",
    "kind",
    "ticket_id",
    "metric",
    "at",
    "percent",
    "amount",
    "currency",
    "rule",
    "breaches",
    "compliance_percent",
    "availability_percent",
)


def write_csv(statements: list[Statement], out: TextIO) -> None:
    """One row per credit line, then a ``total`` row per contract carrying its figures."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in statements:
        head = (s.contract, s.customer, s.period.label)
        for ln in s.lines:
            at = ln.at.isoformat() if ln.at else ""
            percent = "" if ln.percent is None else str(ln.percent)
            row = (ln.kind, ln.ticket_id or "", ln.metric or "", at, percent)
            writer.writerow((*head, *row, ln.amount, ln.currency, _rule(ln), "", "", ""))
        figures = (s.breaches, _text(s.compliance_percent), _text(s.availability_percent))
        writer.writerow((*head, "total", "", "", "", "", s.total, s.currency, "", *figures))


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)
