"""Escalation plans: actions at thresholds of a metric's target.

A plan is named in the ruleset under ``escalation_plans:`` and referenced from
a rule's outcome. A threshold is written ``50%``, ``100%`` or ``100%+2h``
(two business hours after the due time).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slaengine.duration import parse_duration

_AT = re.compile(r"^(\d+(?:\.\d+)?)%(?:([+-])(.+))?$")


class Action(BaseModel):
    """One thing to do at a threshold: ``notify``, ``reassign``, ``raise_level`` or custom.

    ``params`` is handed to the escalation plugins as it is written.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class Threshold(BaseModel):
    """A point on a metric's clock: ``percent`` of its target plus ``offset_seconds``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: str
    metric: str | None = None
    actions: list[Action] = Field(default_factory=list)
    percent: float = 0.0
    offset_seconds: int = 0

    @model_validator(mode="before")
    @classmethod
    def _parse_at(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "at" not in data:
            return data
        text = str(data["at"]).replace(" ", "")
        match = _AT.match(text)
        if not match:
            raise ValueError(
                f"threshold {data['at']!r} is not valid; use e.g. 50%, 100% or 100%+2h"
            )
        percent, sign, offset = match.groups()
        seconds = 0
        if offset:
            duration = parse_duration(offset)
            if duration.seconds is None:
                raise ValueError(f"threshold {data['at']!r}: offsets are hours/minutes, not days")
            seconds = duration.seconds if sign == "+" else -duration.seconds
        return {**data, "at": text, "percent": float(percent), "offset_seconds": seconds}


class EscalationPlan(BaseModel):
    """Named thresholds; ``metric`` is the default metric of thresholds that name none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    metric: str | None = None
    thresholds: list[Threshold]

    def metric_of(self, threshold: Threshold) -> str | None:
        """The metric a threshold watches (its own, else the plan's)."""
        return threshold.metric or self.metric


class EscalationContext(BaseModel):
    """One threshold of one metric cycle of one ticket that has come due.

    ``idempotency_key`` is stable for (ticket, metric, cycle, threshold,
    action index): a receiver that honours it never acts twice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str
    metric: str
    cycle: int
    threshold: str
    instant: datetime
    action_index: int
    plan: str
    ruleset: str
    priority: str | None = None
    due_at: datetime | None = None

    @property
    def idempotency_key(self) -> str:
        """``ticket/metric/cycle/threshold/action``."""
        return f"{self.ticket_id}/{self.metric}/{self.cycle}/{self.threshold}/{self.action_index}"
