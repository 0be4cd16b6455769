"""Contracts: which customer's tickets are judged by which ruleset, tier and version."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """One customer contract.

    ``version`` pins a ruleset version; without it a ticket is judged by the
    version in force at its ``created_at``. ``monthly_fee`` and ``currency``
    are what service credits are computed from.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    ruleset: str
    tier: str | None = None
    version: str | None = None
    monthly_fee: Decimal | None = None
    currency: str = "CNY"
    penalty_scheme: str | None = None
    description: str = ""


class ContractFile(BaseModel):
    """The shape of a ``contracts.yaml`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contracts: list[Contract]
