"""Service-credit statements: worked examples a contract manager can check by hand.

The shipped rulesets and contracts are used throughout: CN-LOTUS-RETAIL-2026
(standard-support, 12,000 CNY a month), CN-NORTHWIND-LOGISTICS-2026
(standard-support, 45,000 CNY), CN-HUAXIA-BANK-2026 (premium-7x24,
180,000 CNY) and INTL-CONTOSO-2026 (premium-7x24, 25,000 EUR). Under
standard-support an urgent fault is P1 with 6h to resolve around the clock;
a serious one is P2 with 2 working days.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from slaengine.cli import main
from slaengine.credits import PenaltyTerms, compute_statements, load_penalties
from slaengine.engine import Engine
from slaengine.errors import RulesetErrors
from slaengine.hookspecs import hookimpl
from slaengine.library import RulesetLibrary
from slaengine.penalty import CreditLine, Outage, Scheme, Statement
from slaengine.plugins import PluginHost
from slaengine.ticket import TicketEvent

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "rulesets" / "samples"
END_OF_NOVEMBER = datetime.fromisoformat("2026-12-01T00:00:00+08:00")

LOTUS = "CN-LOTUS-RETAIL-2026"
NORTHWIND = "CN-NORTHWIND-LOGISTICS-2026"
HUAXIA = "CN-HUAXIA-BANK-2026"

STANDARD = """\
schemes:
  standard:
    timezone: Asia/Shanghai
    metrics: [first_response, resolution]
    breach_credits:
      - {priority: P1, metric: resolution, percent: 5}
      - {priority: P2, metric: resolution, percent: 1}
    cap: {percent: 10}
"""

AVAILABILITY = """\
schemes:
  critical:
    timezone: Asia/Shanghai
    availability:
      calendar: always
      tiers:
        - {below: 99.9, percent: 10}
        - {below: 99, percent: 25}
        - {below: 95, percent: 100}
contracts:
  CN-HUAXIA-BANK-2026:
    scheme: critical
    service: core-banking
"""


def penalties(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "penalties.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def terms(shipped: Engine, tmp_path: Path, text: str) -> PenaltyTerms:
    return load_penalties(penalties(tmp_path, text), shipped.library)


def ticket(ticket_id: str, contract: str, severity: str, *steps: tuple[str, str]) -> list[Any]:
    """A ticket's events from (instant, what) steps: created, reply, resolved or a status."""
    events = []
    for n, (at, what) in enumerate(steps, start=1):
        kind, fields = {
            "created": ("created", {"contract": contract, "severity": severity}),
            "reply": ("agent_replied", {"public": True}),
            "resolved": ("resolved", {}),
        }.get(what, ("status_changed", {"status": what}))
        events.append(
            TicketEvent(
                ticket_id=ticket_id, event_id=f"{ticket_id}-{n}", at=at, type=kind, fields=fields
            )
        )
    return events


def urgent_resolved(ticket_id: str, contract: str, day: int, hours: int) -> list[Any]:
    """An urgent fault reported at 09:00 on ``day`` of November, resolved ``hours`` later."""
    created = f"2026-11-{day:02d}T09:00:00+08:00"
    resolved = f"2026-11-{day:02d}T{9 + hours:02d}:00:00+08:00"
    return ticket(
        ticket_id,
        contract,
        "urgent",
        (created, "created"),
        (f"2026-11-{day:02d}T09:05:00+08:00", "reply"),
        (resolved, "resolved"),
    )


def statement_of(statements: list[Statement], contract: str) -> Statement:
    [found] = [s for s in statements if s.contract == contract]
    return found


def kinds(statement: Statement) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for line in statement.lines]


# ----------------------------------------------------------- worked examples


def test_three_p1_resolution_breaches_at_5_percent_each_are_capped_at_10_percent(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    events = [
        *urgent_resolved("INC-1", LOTUS, 2, 7),  # 6h allowed: each one an hour late
        *urgent_resolved("INC-2", LOTUS, 11, 7),
        *urgent_resolved("INC-3", LOTUS, 21, 8),
    ]
    [s] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER)
    # 5% of 12,000 is 600 a breach; 1,800 in all, capped at 10% = 1,200.
    assert kinds(s) == [
        ("breach", Decimal("600.00")),
        ("breach", Decimal("600.00")),
        ("breach", Decimal("600.00")),
        ("cap", Decimal("-600.00")),
    ]
    assert s.total == Decimal("1200.00") == s.monthly_fee * Decimal("0.10")
    assert (s.breaches, s.measured, s.compliance_percent) == (3, 6, Decimal("50.00"))
    assert (
        s.lines[0].rule
        == f"{tmp_path}/penalties.yaml:6: P1 resolution breach: 5% of the monthly fee"
    )
    assert s.lines[-1].rule.startswith(f"{tmp_path}/penalties.yaml:8: credits are capped at 10%")


def test_a_breach_credit_names_the_ticket_metric_and_instant(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    events = urgent_resolved("INC-1", LOTUS, 2, 7)
    [s] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER)
    [line] = s.lines
    assert (line.ticket_id, line.metric, line.percent) == ("INC-1", "resolution", Decimal(5))
    assert line.at == datetime.fromisoformat("2026-11-02T15:00:00+08:00")  # the due time


def test_availability_of_99_5_percent_earns_the_10_percent_tier(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, AVAILABILITY)
    # November has 720 hours; 0.5% of them is 3h36m.
    outage = Outage(
        ticket_id="INC-9",
        contract=HUAXIA,
        service="core-banking",
        start="2026-11-03T10:00:00+08:00",
        end="2026-11-03T13:36:00+08:00",
    )
    [s] = compute_statements(book, shipped, "2026-11", [], [outage], as_at=END_OF_NOVEMBER)
    assert s.availability_percent == Decimal("99.500")
    assert (s.service_seconds, s.downtime_seconds) == (720 * 3600, 3 * 3600 + 36 * 60)
    assert kinds(s) == [("availability", Decimal("18000.00"))]  # 10% of 180,000
    assert "availability 99.500% is below 99.9%" in s.lines[0].rule


def test_availability_takes_the_most_severe_tier_it_falls_under(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, AVAILABILITY)
    # 2 days down of 30: 93.333% is below 99.9, 99 and 95: the 100% tier applies.
    outage = Outage(
        ticket_id="INC-9",
        contract=HUAXIA,
        start="2026-11-10T00:00:00+08:00",
        end="2026-11-12T00:00:00+08:00",
    )
    [s] = compute_statements(book, shipped, "2026-11", [], [outage], as_at=END_OF_NOVEMBER)
    assert s.availability_percent == Decimal("93.333")
    assert kinds(s) == [("availability", Decimal("180000.00"))]


def test_a_maintenance_window_is_not_downtime_nor_service_time(
    shipped: Engine, tmp_path: Path
) -> None:
    window = """\
        maintenance_windows:
          - {start: 2026-11-14T22:00:00+08:00, end: 2026-11-15T02:00:00+08:00, reason: upgrade}
    """
    book = terms(shipped, tmp_path, AVAILABILITY + textwrap.indent(textwrap.dedent(window), "    "))
    # Down 21:00-01:00: the hour before the window counts, the three inside it do not.
    outage = Outage(
        ticket_id="INC-9",
        contract=HUAXIA,
        start="2026-11-14T21:00:00+08:00",
        end="2026-11-15T01:00:00+08:00",
    )
    [s] = compute_statements(book, shipped, "2026-11", [], [outage], as_at=END_OF_NOVEMBER)
    assert (s.service_seconds, s.downtime_seconds) == (716 * 3600, 3600)
    assert s.availability_percent == Decimal("99.860")  # 715/716
    assert kinds(s) == [("availability", Decimal("18000.00"))]


def test_overlapping_outages_count_once_and_other_services_not_at_all(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, AVAILABILITY)
    outages = [
        Outage(
            ticket_id="INC-1",
            contract=HUAXIA,
            service="core-banking",
            start="2026-11-03T10:00:00+08:00",
            end="2026-11-03T11:00:00+08:00",
        ),
        Outage(
            ticket_id="INC-2",
            contract=HUAXIA,
            service="core-banking",
            start="2026-11-03T10:30:00+08:00",
            end="2026-11-03T11:30:00+08:00",
        ),
        Outage(
            ticket_id="INC-3",
            contract=HUAXIA,
            service="mobile-banking",
            start="2026-11-05T10:00:00+08:00",
            end="2026-11-05T20:00:00+08:00",
        ),
    ]
    [s] = compute_statements(book, shipped, "2026-11", [], outages, as_at=END_OF_NOVEMBER)
    assert s.downtime_seconds == 90 * 60
    assert s.availability_percent == Decimal("99.791")  # truncated, never rounded up
    assert kinds(s) == [("availability", Decimal("18000.00"))]


def test_declared_force_majeure_stops_the_clock_so_the_fault_is_not_breached(
    shipped: Engine, tmp_path: Path
) -> None:
    plain = STANDARD + f"contracts:\n  {NORTHWIND}: {{scheme: standard}}\n"
    declared = plain + textwrap.dedent(f"""\
        force_majeure:
          - start: 2026-11-18T14:00:00+08:00
            end: 2026-11-18T20:00:00+08:00
            reason: regional power grid failure
            contracts: [{NORTHWIND}]
    """)
    # Reported 13:00, resolved 22:00: 9 hours against 6; 6 of them in the blackout.
    events = ticket(
        "INC-7",
        NORTHWIND,
        "urgent",
        ("2026-11-18T13:00:00+08:00", "created"),
        ("2026-11-18T13:10:00+08:00", "reply"),
        ("2026-11-18T22:00:00+08:00", "resolved"),
    )
    [without] = compute_statements(
        terms(shipped, tmp_path, plain), shipped, "2026-11", events, as_at=END_OF_NOVEMBER
    )
    [excused] = compute_statements(
        terms(shipped, tmp_path, declared), shipped, "2026-11", events, as_at=END_OF_NOVEMBER
    )
    assert kinds(without) == [("breach", Decimal("2250.00"))]  # 5% of 45,000
    assert (excused.breaches, excused.measured, excused.lines) == (0, 2, [])


def test_force_majeure_is_not_downtime(shipped: Engine, tmp_path: Path) -> None:
    text = AVAILABILITY + textwrap.dedent("""\
        force_majeure:
          - {start: 2026-11-03T00:00:00+08:00, end: 2026-11-04T00:00:00+08:00, reason: typhoon}
    """)
    outage = Outage(
        ticket_id="INC-9",
        contract=HUAXIA,
        start="2026-11-03T06:00:00+08:00",
        end="2026-11-03T18:00:00+08:00",
    )
    [s] = compute_statements(
        terms(shipped, tmp_path, text), shipped, "2026-11", [], [outage], as_at=END_OF_NOVEMBER
    )
    assert (s.service_seconds, s.downtime_seconds, s.lines) == (696 * 3600, 0, [])


def test_a_ticket_paused_for_the_customer_does_not_breach(shipped: Engine, tmp_path: Path) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {NORTHWIND}: {{scheme: standard}}\n")
    # Serious (P2): 2 working days from Tue 10 Nov 10:00, due Thu 12 Nov 10:00.
    created = ("2026-11-10T10:00:00+08:00", "created")
    reply = ("2026-11-10T10:10:00+08:00", "reply")
    resolved = ("2026-11-13T10:00:00+08:00", "resolved")
    waited = ticket(
        "INC-5",
        NORTHWIND,
        "serious",
        created,
        reply,
        ("2026-11-10T11:00:00+08:00", "pending_customer"),  # waiting for the customer's logs
        ("2026-11-12T11:00:00+08:00", "open"),
        resolved,
    )
    not_waited = ticket("INC-6", NORTHWIND, "serious", created, reply, resolved)
    [s] = compute_statements(book, shipped, "2026-11", waited, as_at=END_OF_NOVEMBER)
    assert (s.breaches, s.lines) == (0, [])
    [s] = compute_statements(book, shipped, "2026-11", not_waited, as_at=END_OF_NOVEMBER)
    assert kinds(s) == [("breach", Decimal("450.00"))]  # 1% of 45,000


def test_a_breach_counts_in_the_month_it_falls_due(shipped: Engine, tmp_path: Path) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    # Reported 30 Oct 20:00, due 31 Oct 02:00, resolved 2 Nov: an October breach.
    events = ticket(
        "INC-8",
        LOTUS,
        "urgent",
        ("2026-10-30T20:00:00+08:00", "created"),
        ("2026-10-30T20:05:00+08:00", "reply"),
        ("2026-11-02T09:00:00+08:00", "resolved"),
    )
    [november] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER)
    [october] = compute_statements(book, shipped, "2026-10", events, as_at=END_OF_NOVEMBER)
    assert (november.breaches, november.measured) == (0, 0)
    assert (october.breaches, kinds(october)) == (1, [("breach", Decimal("600.00"))])


def test_compliance_tiers_by_the_share_of_cycles_met(shipped: Engine, tmp_path: Path) -> None:
    tiers = "    compliance:\n      tiers: [{below: 90, percent: 3}, {below: 70, percent: 6}]\n"
    text = STANDARD.replace("    cap:", tiers + "    cap:")
    book = terms(shipped, tmp_path, text + f"contracts:\n  {NORTHWIND}: {{scheme: standard}}\n")
    # Two urgent faults, one resolved late: 3 of 4 cycles (2 answers, 2 fixes) on time.
    events = urgent_resolved("INC-1", NORTHWIND, 2, 5) + urgent_resolved("INC-2", NORTHWIND, 3, 7)
    [s] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER)
    assert s.compliance_percent == Decimal("75.00")
    assert kinds(s) == [("breach", Decimal("2250.00")), ("compliance", Decimal("1350.00"))]


def test_fixed_amounts_are_in_the_contract_currency(shipped: Engine, tmp_path: Path) -> None:
    text = """\
        schemes:
          eu:
            timezone: Europe/Berlin
            currency: EUR
            breach_credits: [{metric: resolution, amount: 500}]
        contracts:
          INTL-CONTOSO-2026: {scheme: eu}
    """
    # Serious on premium-7x24: 72 hours; resolved after 75.
    events = ticket(
        "INC-3",
        "INTL-CONTOSO-2026",
        "serious",
        ("2026-11-04T09:00:00+01:00", "created"),
        ("2026-11-04T09:10:00+01:00", "reply"),
        ("2026-11-07T12:00:00+01:00", "resolved"),
    )
    end = datetime.fromisoformat("2026-12-01T00:00:00+01:00")
    [s] = compute_statements(terms(shipped, tmp_path, text), shipped, "2026-11", events, as_at=end)
    assert (s.currency, s.lines[0].amount, s.lines[0].percent) == ("EUR", Decimal("500.00"), None)
    assert s.period.start == datetime.fromisoformat("2026-11-01T00:00:00+01:00")


def test_breach_credits_may_select_on_the_rules_penalty_class(
    shipped: Engine, tmp_path: Path
) -> None:
    text = STANDARD.replace(
        "      - {priority: P1, metric: resolution, percent: 5}",
        "      - {penalty_class: critical, percent: 4}",
    )
    book = terms(shipped, tmp_path, text + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    [s] = compute_statements(
        book, shipped, "2026-11", urgent_resolved("INC-1", LOTUS, 2, 7), as_at=END_OF_NOVEMBER
    )
    # standard-support gives urgent faults penalty_class critical; 4% of 12,000.
    assert kinds(s) == [("breach", Decimal("480.00"))]
    assert s.lines[0].rule.endswith(":6: critical breach: 4% of the monthly fee")


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [("half_up", "185.17"), ("half_even", "185.16"), ("down", "185.16"), ("up", "185.17")],
)
def test_money_is_rounded_as_the_scheme_says(rounding: str, expected: str) -> None:
    scheme = Scheme(timezone="Asia/Shanghai", rounding=rounding)
    five_percent = Decimal("3703.30") * 5 / 100  # 185.165 exactly: half a cent to round
    assert str(scheme.round(five_percent)) == expected


def test_a_statement_before_the_month_ends_is_provisional(shipped: Engine, tmp_path: Path) -> None:
    book = terms(shipped, tmp_path, AVAILABILITY)
    at = datetime.fromisoformat("2026-11-11T00:00:00+08:00")
    [s] = compute_statements(book, shipped, "2026-11", [], [], as_at=at)
    assert (s.provisional, s.service_seconds, s.availability_percent) == (
        True,
        240 * 3600,
        Decimal("100.000"),
    )


def test_without_outage_records_availability_is_not_measured(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, AVAILABILITY)
    [s] = compute_statements(book, shipped, "2026-11", [], as_at=END_OF_NOVEMBER)
    assert (s.availability_percent, s.lines) == (None, [])
    assert s.notes == ["no outage records given: availability not measured"]


# ------------------------------------------------------------------- plugins


class Goodwill:
    """A plugin adding a goodwill credit for customers with any breach line."""

    @hookimpl
    def slaengine_penalty(self, contract, period, lines):  # type: ignore[no-untyped-def]
        if not any(line.kind == "breach" for line in lines):
            return None
        return [
            CreditLine(
                contract=contract.id,
                period=period.label,
                kind="goodwill",
                amount=contract.monthly_fee / 100,  # 1% of the fee in force
                currency=contract.currency,
                rule="account manager's goodwill gesture",
            )
        ]


class Broken:
    @hookimpl
    def slaengine_penalty(self, contract, period, lines):  # type: ignore[no-untyped-def]
        raise RuntimeError("CRM unreachable")


def test_a_plugin_adds_lines_before_the_cap_and_a_failing_one_is_isolated(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    host = PluginHost(entry_points=False)
    host.register(Goodwill(), "goodwill")
    host.register(Broken(), "broken")
    try:
        events = urgent_resolved("INC-1", LOTUS, 2, 7)
        [s] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER, host=host)
    finally:
        host.close()
    assert kinds(s) == [("breach", Decimal("600.00")), ("goodwill", Decimal("120.00"))]
    assert s.lines[1].plugin == "goodwill"
    assert s.notes == ["plugin broken left out (error): RuntimeError: CRM unreachable"]
    assert [(f.plugin, f.hook) for f in host.failures] == [("broken", "slaengine_penalty")]


class HalveGoodwill:
    """An adjusting plugin: takes back half of any goodwill line it is shown."""

    @hookimpl
    def slaengine_penalty(self, contract, period, lines):  # type: ignore[no-untyped-def]
        return [
            line.model_copy(update={"kind": "adjustment", "amount": -line.amount / 2})
            for line in lines
            if line.kind == "goodwill"
        ]


def test_a_plugin_registered_later_sees_the_lines_of_earlier_ones(
    shipped: Engine, tmp_path: Path
) -> None:
    book = terms(shipped, tmp_path, STANDARD + f"contracts:\n  {LOTUS}: {{scheme: standard}}\n")
    host = PluginHost(entry_points=False)
    host.register(Goodwill(), "goodwill")
    host.register(HalveGoodwill(), "halve")
    try:
        events = urgent_resolved("INC-1", LOTUS, 2, 7)
        [s] = compute_statements(book, shipped, "2026-11", events, as_at=END_OF_NOVEMBER, host=host)
    finally:
        host.close()
    assert [(ln.kind, ln.amount, ln.plugin) for ln in s.lines[1:]] == [
        ("goodwill", Decimal("120.00"), "goodwill"),
        ("adjustment", Decimal("-60.00"), "halve"),
    ]
    assert s.total == Decimal("660.00")


# ------------------------------------------------------------- bad schemes


def errors_of(shipped: Engine, tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RulesetErrors) as caught:
        terms(shipped, tmp_path, text)
    return [str(e).replace(f"{tmp_path}/", "") for e in caught.value.errors]


def test_bad_scheme_yaml_names_file_line_and_key(shipped: Engine, tmp_path: Path) -> None:
    text = """\
        schemes:
          s:
            timezone: Mars/Olympus
            breach_credits:
              - {priority: P1, percent: 5, amount: 100}
              - {priority: P2, percnt: 1}
            cap: {percent: 150}
        contracts:
          CN-LOTUS-RETAIL-2026: {scheme: s}
    """
    assert errors_of(shipped, tmp_path, text) == [
        "penalties.yaml:3:5: schemes.s.timezone: 'Mars/Olympus' is not an IANA timezone "
        "such as Asia/Shanghai",
        "penalties.yaml:5:9: schemes.s.breach_credits[0]: "
        "give exactly one of 'percent' (of the monthly fee) or 'amount'",
        "penalties.yaml:6:24: schemes.s.breach_credits[1].percnt: unknown key 'percnt'",
        "penalties.yaml:7:11: schemes.s.cap.percent: 150: "
        "Input should be less than or equal to 100",
    ]


def test_names_that_must_exist_elsewhere_are_checked(shipped: Engine, tmp_path: Path) -> None:
    text = """\
        schemes:
          s:
            timezone: Asia/Shanghai
            breach_credits: [{metric: resolutoin, percent: 5}]
            availability: {calendar: weekdays, tiers: [{below: 99.9, percent: 10}]}
        contracts:
          CN-LOTUS-RETAIL-2026: {scheme: s}
          CN-NOBODY: {scheme: s}
          CN-EASTWIND-MFG-2025: {scheme: gold}
        force_majeure:
          - {start: 2026-11-01T00:00:00+08:00, end: 2026-11-02T00:00:00+08:00,
             reason: flood, contracts: [CN-NORTHWIND-LOGISTICS-2026]}
    """
    errors = errors_of(shipped, tmp_path, text)
    assert errors[0].startswith(
        "penalties.yaml:4:23: schemes.s.breach_credits[0].metric: unknown metric 'resolutoin' "
        "for CN-LOTUS-RETAIL-2026"
    )
    assert errors[1].startswith(
        "penalties.yaml:5:20: schemes.s.availability.calendar: standard-support has no "
        "calendar 'weekdays'"
    )
    assert errors[2].startswith("penalties.yaml:8:3: contracts.CN-NOBODY: unknown contract")
    assert errors[3].startswith(
        "penalties.yaml:9:26: contracts.CN-EASTWIND-MFG-2025.scheme: unknown scheme 'gold'"
    )
    assert errors[4] == (
        "penalties.yaml:12:33: force_majeure[0].contracts[0]: "
        "'CN-NORTHWIND-LOGISTICS-2026' is not a contract with a penalty scheme"
    )
    assert len(errors) == 5


def test_a_window_needs_an_offset_and_an_end_after_its_start(
    shipped: Engine, tmp_path: Path
) -> None:
    text = """\
        schemes:
          s: {timezone: Asia/Shanghai}
        contracts:
          CN-LOTUS-RETAIL-2026:
            scheme: s
            maintenance_windows:
              - {start: 2026-11-14T22:00:00, end: 2026-11-15T02:00:00+08:00, reason: upgrade}
              - {start: 2026-11-15T02:00:00+08:00, end: 2026-11-14T22:00:00+08:00, reason: x}
    """
    errors = errors_of(shipped, tmp_path, text)
    assert errors[0].startswith(
        "penalties.yaml:7:10: contracts.CN-LOTUS-RETAIL-2026.maintenance_windows[0].start: "
    )
    assert "has no timezone" in errors[0]
    assert errors[1] == (
        "penalties.yaml:8:9: contracts.CN-LOTUS-RETAIL-2026.maintenance_windows[1]: "
        "end 2026-11-14T22:00:00+08:00 is not after start"
    )


def test_a_scheme_may_be_named_in_contracts_yaml_instead(shipped: Engine, tmp_path: Path) -> None:
    contracts = [
        c.model_copy(update={"penalty_scheme": "standard" if c.id == LOTUS else None})
        for c in shipped.library.contracts.values()
    ]
    library = RulesetLibrary(shipped.library.all(), contracts)
    book = load_penalties(penalties(tmp_path, STANDARD + "contracts: {}\n"), library)
    assert list(book.contracts) == [LOTUS]
    assert book.scheme_of(LOTUS)[0] == "standard"
    unknown = STANDARD.replace("  standard:", "  basic:") + "contracts: {}\n"
    with pytest.raises(RulesetErrors, match=r"unknown scheme 'standard' \(penalty_scheme in"):
        load_penalties(penalties(tmp_path, unknown), library)


def test_malformed_yaml_is_reported_at_its_line(shipped: Engine, tmp_path: Path) -> None:
    text = "schemes:\n  s: {timezone: Asia/Shanghai\ncontracts: {}\n"
    [error] = errors_of(shipped, tmp_path, text)
    assert error.startswith("penalties.yaml:3:")
    assert "malformed YAML" in error


# ----------------------------------------------------------------------- CLI


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(
        [
            "credits",
            "--period",
            "2026-11",
            str(SAMPLES / "events-2026-11.jsonl"),
            "--outages",
            str(SAMPLES / "outages-2026-11.jsonl"),
            "--rulesets",
            str(ROOT / "rulesets"),
            "--at",
            "2026-12-01T00:00:00+01:00",  # after every contract's November
            *args,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_credits_command_prints_a_statement_per_contract(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    blocks = out.split("\n\n")
    assert [b.split()[0] for b in blocks] == [
        HUAXIA,
        NORTHWIND,
        LOTUS,
        "CN-EASTWIND-MFG-2025",
        "INTL-CONTOSO-2026",
    ]
    huaxia = blocks[0].splitlines()
    assert huaxia[0].endswith("monthly fee 180,000 CNY  [final]")
    # The outage in the maintenance window and the mobile-banking one are not downtime.
    assert huaxia[1] == (
        "  breaches 2 of 8 cycles measured; compliance 75.00%; "
        "availability 99.511% (down 3h30m of 716h00m service time)"
    )
    assert huaxia[3].split()[:4] == ["breach", "INC-2001", "resolution", "9,000.00"]
    assert huaxia[3].endswith("penalties.yaml:19: P1 resolution breach: 5% of the monthly fee")
    assert huaxia[-1].split() == ["total", "48,600.00", "CNY"]
    lotus = blocks[2].splitlines()
    assert lotus[-2].split()[:2] == ["cap", "-960.00"]
    assert lotus[-1].split() == ["total", "1,200.00", "CNY"]


def test_credits_command_json_holds_whole_statements(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json")
    statements = [Statement.model_validate_json(line) for line in out.splitlines()]
    assert code == 0
    totals = {s.contract: (s.total, s.currency) for s in statements}
    assert totals == {
        HUAXIA: (Decimal("48600.00"), "CNY"),
        NORTHWIND: (Decimal("1800.00"), "CNY"),  # INC-2101 excused by force majeure
        LOTUS: (Decimal("1200.00"), "CNY"),
        "CN-EASTWIND-MFG-2025": (Decimal("0.00"), "CNY"),
        "INTL-CONTOSO-2026": (Decimal("500.00"), "EUR"),
    }
    assert json.loads(out.splitlines()[0])["total"] == "48600.00"  # money as exact text


def test_credits_command_csv_has_a_row_per_line_and_a_total_per_contract(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    lotus = [r for r in rows if r["contract"] == LOTUS]
    assert [(r["kind"], r["amount"]) for r in lotus] == [
        ("breach", "600.00"),
        ("breach", "600.00"),
        ("breach", "600.00"),
        ("compliance", "360.00"),
        ("cap", "-960.00"),
        ("total", "1200.00"),
    ]
    assert (lotus[-1]["breaches"], lotus[-1]["compliance_percent"]) == ("3", "50.00")
    assert lotus[0]["at"] == "2026-11-02T07:00:00+00:00"


def test_credits_command_reports_bad_input_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for month in ("2026-13", "2026-1", "November"):
        code, _, err = run(capsys, "--period", month)
        assert (code, err) == (2, f"error: period: {month!r} is not a month such as 2026-11\n")
    bad = penalties(tmp_path, "schemes: {}\ncontracts:\n  CN-NOBODY: {scheme: s}\n")
    code, _, err = run(capsys, "--penalties", str(bad))
    assert code == 2
    assert f"{bad}:3:3: contracts.CN-NOBODY: unknown contract 'CN-NOBODY'" in err
    outages = tmp_path / "outages.jsonl"
    outages.write_text(
        '{"ticket_id": "INC-1", "contract": "CN-HUAXIA-BANK-2026", '
        '"start": "2026-11-03T10:00:00+08:00", "end": "2026-11-03T09:00:00+08:00"}\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "--outages", str(outages))
    assert (code, err) == (
        2,
        f"error: {outages}:1: record: end 2026-11-03T09:00:00+08:00 is before start\n",
    )
