"""Decisions: what the rules decided for a ticket, recorded with the ruleset revision."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from slaengine.duration import MOST_DAYS, MOST_SECONDS


class Route(BaseModel):
    """Where a ticket goes: a queue, a group, an assignee (any may be unset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str | None = None
    group: str | None = None
    assignee: str | None = None


class MetricTarget(BaseModel):
    """One metric's target: business time (``seconds``) or working ``days``.

    ``due_at`` is counted from the ticket's ``created_at`` in ``calendar``
    with no pauses; the clock module moves it as pauses happen.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    # at most a century, as a ruleset's durations (the clocks count in 64 bits)
    seconds: int | None = Field(default=None, ge=0, le=MOST_SECONDS)
    days: int | None = Field(default=None, ge=0, le=MOST_DAYS)
    calendar: str
    due_at: datetime | None = None


class Decision(BaseModel):
    """The outcome of evaluating one ticket against the ruleset version in force."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str
    ruleset: str
    version: str
    revision: str
    matched_rules: tuple[str, ...] = ()
    priority: str | None = None
    calendar: str | None = None
    targets: dict[str, MetricTarget] = Field(default_factory=dict)
    route: Route | None = None
    escalation_plan: str | None = None
    penalty_class: str | None = None
    tags: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()

    @property
    def ruleset_ref(self) -> str:
        """``name@version+revision``: the exact policy this decision came from."""
        return f"{self.ruleset}@{self.version}+{self.revision}"


class RoutingResult(BaseModel):
    """What a routing plugin applied in the ticket system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plugin: str
    ticket_id: str
    applied: dict[str, str | int | None]
