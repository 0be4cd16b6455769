"""Service credits: what missed promises cost the vendor, per contract and period.

Two kinds of models live here: the *terms* a contract manager writes in
``rulesets/penalties.yaml`` (:class:`PenaltyFile` and its parts), and the
*statement* computed from them for one contract and month
(:class:`Statement`, made of :class:`CreditLine` s). Loading and computing
are in :mod:`slaengine.credits`.

Money is :class:`~decimal.Decimal` throughout: a percentage of a monthly
fee is exact until it is rounded, once per line, as the scheme says.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from slaengine.ticket import require_aware

#: Rounding modes a scheme may name, as the decimal module spells them.
ROUNDING = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
}

_Terms = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------- terms


class Credit(BaseModel):
    """A credit given either as a percent of the monthly fee or as a fixed amount."""

    model_config = _Terms

    percent: Decimal | None = Field(default=None, ge=0, le=100)
    amount: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Credit:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give exactly one of 'percent' (of the monthly fee) or 'amount'")
        return self

    def money(self, monthly_fee: Decimal) -> Decimal:
        """What this credit is worth for ``monthly_fee`` (before rounding)."""
        if self.percent is not None:
            return monthly_fee * self.percent / 100
        assert self.amount is not None  # one of the two, by validation
        return self.amount

    def describe(self, currency: str) -> str:
        """``5% of the monthly fee`` or ``500 EUR``."""
        if self.percent is not None:
            return f"{self.percent}% of the monthly fee"
        return f"{self.amount} {currency}"


class BreachCredit(Credit):
    """A credit per breached metric cycle; empty selectors match anything."""

    priority: str | None = None
    penalty_class: str | None = None
    metric: str | None = None

    def matches(self, priority: str | None, penalty_class: str | None, metric: str) -> bool:
        """Whether a breach of ``metric`` on a ticket so decided falls under this term."""
        return (
            (self.priority is None or self.priority == priority)
            and (self.penalty_class is None or self.penalty_class == penalty_class)
            and (self.metric is None or self.metric == metric)
        )

    def describe_breach(self) -> str:
        """``P1 resolution breach`` (the selectors in words)."""
        parts = [self.priority, self.penalty_class, self.metric]
        return " ".join(p for p in parts if p) + (" breach" if any(parts) else "any breach")


class Tier(Credit):
    """A credit when a monthly rate (compliance or availability) is below ``below`` percent."""

    below: Decimal = Field(gt=0, le=100)


def _tiers_distinct(tiers: list[Tier]) -> list[Tier]:
    thresholds = [t.below for t in tiers]
    if len(set(thresholds)) != len(thresholds):
        raise ValueError("two tiers have the same 'below'; each threshold once")
    return tiers


class ComplianceTerms(BaseModel):
    """Credit tiers by the month's compliance rate (cycles met on time / cycles measured)."""

    model_config = _Terms

    tiers: list[Tier] = Field(min_length=1)

    _distinct = field_validator("tiers")(_tiers_distinct)


class AvailabilityTerms(BaseModel):
    """Credit tiers by the month's availability of the customer's service.

    Availability is measured over ``calendar`` (a calendar of the contract's
    ruleset: ``always`` for 7x24 service) less maintenance windows and force
    majeure; outage records give the downtime.
    """

    model_config = _Terms

    calendar: str = "always"
    tiers: list[Tier] = Field(min_length=1)

    _distinct = field_validator("tiers")(_tiers_distinct)


class Cap(Credit):
    """The most a period's credits may add up to."""


class Scheme(BaseModel):
    """A penalty scheme: how a contract's misses turn into service credits.

    ``metrics`` limits what is measured (breaches counted, compliance) to
    the named metrics; empty means every metric of the ruleset.
    ``timezone`` decides where a month begins and ends.
    """

    model_config = _Terms

    description: str = ""
    timezone: str
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    decimals: int = Field(default=2, ge=0, le=6)
    rounding: Literal["half_up", "half_even", "down", "up"] = "half_up"
    metrics: list[str] = Field(default_factory=list)
    breach_credits: list[BreachCredit] = Field(default_factory=list)
    compliance: ComplianceTerms | None = None
    availability: AvailabilityTerms | None = None
    cap: Cap | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone such as Asia/Shanghai") from None
        return value

    def round(self, amount: Decimal) -> Decimal:
        """``amount`` rounded to the scheme's decimals with its rounding mode."""
        return amount.quantize(Decimal(1).scaleb(-self.decimals), rounding=ROUNDING[self.rounding])


class Window(BaseModel):
    """A declared span of time ``[start, end)``: a maintenance window or force majeure."""

    model_config = _Terms

    start: datetime
    end: datetime
    reason: str = Field(min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return require_aware(value, "instant")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start")
        return self


class ForceMajeure(Window):
    """Declared force majeure: SLA clocks stop and availability is not measured.

    ``contracts`` names the contracts it covers; empty means every contract.
    """

    contracts: list[str] = Field(default_factory=list)


class ContractTerms(BaseModel):
    """One contract's penalty terms: its scheme and what contracts.yaml does not hold."""

    model_config = _Terms

    scheme: str
    monthly_fee: Decimal | None = Field(default=None, gt=0)
    service: str | None = None
    maintenance_windows: list[Window] = Field(default_factory=list)


class PenaltyFile(BaseModel):
    """The shape of ``rulesets/penalties.yaml``."""

    model_config = _Terms

    schemes: dict[str, Scheme]
    contracts: dict[str, ContractTerms]
    force_majeure: list[ForceMajeure] = Field(default_factory=list)


class Outage(BaseModel):
    """An outage record: a customer's service down from ``start`` to ``end``.

    Taken from incident tickets; ``end`` is None while the service is still
    down. ``service`` None means the contract's only service.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str = Field(min_length=1)
    contract: str = Field(min_length=1)
    service: str | None = None
    start: datetime
    end: datetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else require_aware(value, "instant")

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end.isoformat()} is before start")
        return self


# ----------------------------------------------------------------- statements


class StatementPeriod(BaseModel):
    """A statement period, e.g. the month ``2026-11``: instants [start, end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    start: datetime
    end: datetime


class CreditLine(BaseModel):
    """One line of a credit statement, with the rule behind it.

    ``percent`` is the share of the monthly fee the line stands for (None for
    fixed amounts); ``at`` the instant of the breach it credits.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: str
    period: str
    kind: str  # breach, compliance, availability, cap, or a plugin's own
    amount: Decimal
    currency: str
    rule: str  # which term of the scheme produced it, in words
    ticket_id: str | None = None
    metric: str | None = None
    plugin: str | None = None
    percent: Decimal | None = None
    at: datetime | None = None


class Statement(BaseModel):
    """What a contract is owed for one period, and why.

    ``measured`` counts the metric cycles decided in the period (met on
    time, or breached); ``compliance_percent`` is the share met, None when
    nothing was measured. Rates are truncated, never rounded up, so a rate
    shown as 99.900 is not below 99.9. ``as_at`` before the period's end
    makes the statement provisional. ``total`` is the sum of the lines,
    the cap line included.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: str
    customer: str
    scheme: str
    period: StatementPeriod
    as_at: datetime
    provisional: bool
    monthly_fee: Decimal
    currency: str
    measured: int
    breaches: int
    compliance_percent: Decimal | None
    availability_percent: Decimal | None = None
    service_seconds: int | None = None
    downtime_seconds: int | None = None
    lines: list[CreditLine]
    total: Decimal
    notes: list[str] = Field(default_factory=list)
