"""Service credits: what missed promises cost the vendor, per contract and period."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class StatementPeriod(BaseModel):
    """A statement period, e.g. the month ``2026-11``: instants [start, end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    start: datetime
    end: datetime


class CreditLine(BaseModel):
    """One line of a credit statement, with the rule behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: str
    period: str
    kind: str  # e.g. breach, compliance, availability
    amount: Decimal
    currency: str
    rule: str  # which term of the scheme produced it, in words
    ticket_id: str | None = None
    metric: str | None = None
    plugin: str | None = None
