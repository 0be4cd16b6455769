"""Metric definitions: which ticket events start, pause, stop and reset a clock.

A ruleset declares its metrics under ``metrics:``; the clock module replays a
ticket's events against these definitions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EventCondition(BaseModel):
    """An event matches when its type is ``type`` and each of ``fields`` is equal.

    In YAML either a bare event type (``agent_replied``) or a mapping
    (``{type: agent_replied, fields: {public: true}}``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    fields: dict[str, Any] = Field(default_factory=dict)


def _conditions(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [{"type": v} if isinstance(v, str) else v for v in value]
    return value


class MetricDefinition(BaseModel):
    """One SLA metric of a ruleset.

    - ``kind``: ``single`` (one cycle, e.g. first_response, resolution) or
      ``periodic`` (each start event begins a fresh cycle, e.g. next_update);
    - ``start`` / ``stop``: events that start and stop (meet) the clock; in a
      periodic metric each start event meets the running cycle and starts
      the next one;
    - ``cancel``: events that end a running cycle without meeting it (e.g.
      ``resolved`` for next_update); a cycle already past due stays breached;
    - ``pause_statuses``: while the ticket status is one of these, the clock
      does not run;
    - ``pause`` / ``resume``: events that pause the clock until a resume
      event (on top of ``pause_statuses``);
    - ``inactive_statuses``: while the ticket status is one of these, no
      cycle starts (an agent's note on a resolved ticket opens no
      next_update cycle); a ``reopened`` event sets the status to ``open``
      first, so ``on_reopen`` works;
    - ``reset``: events that restart the clock from zero (a new cycle);
    - ``on_reopen``: what a ``reopened`` event does to a stopped clock —
      ``resume`` the old cycle, start a ``new_cycle``, or ``none``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    kind: Literal["single", "periodic"] = "single"
    start: list[EventCondition] = Field(default_factory=lambda: [EventCondition(type="created")])
    stop: list[EventCondition]
    cancel: list[EventCondition] = Field(default_factory=list)
    pause_statuses: list[str] = Field(default_factory=list)
    pause: list[EventCondition] = Field(default_factory=list)
    resume: list[EventCondition] = Field(default_factory=list)
    inactive_statuses: list[str] = Field(default_factory=lambda: ["resolved", "closed"])
    reset: list[EventCondition] = Field(default_factory=list)
    on_reopen: Literal["resume", "new_cycle", "none"] = "none"

    _norm = field_validator("start", "stop", "cancel", "pause", "resume", "reset", mode="before")(
        classmethod(lambda cls, v: _conditions(v))
    )
