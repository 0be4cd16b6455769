"""Decisions: what the rules decided for a ticket, recorded with the ruleset revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field


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
    seconds: int | None = None
    days: int | None = None
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


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set_dict = object.__setattr__
# BaseModel's own slots, set through their descriptors: faster than
# object.__setattr__, which looks each name up on the class first.
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted(cls: type[_M], given: set[str], values: dict[str, Any]) -> _M:
    """A model holding ``values`` (every field), built without validation.

    Only for values the caller computed with each field's type: validating
    again would cost about three of every four microseconds spent building
    one. ``given`` is the set of fields counted as set; it may be shared
    (pydantic copies it before changing it).
    """
    model = _new(cls)
    _set_dict(model, "__dict__", values)
    _set_fields_set(model, given)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def filled(template: _M, **changes: object) -> _M:
    """A copy of a validated model with some fields replaced, without validation.

    The engine builds one validated template per distinct rule match and
    fills in each ticket's id and due times; pydantic's ``model_copy`` does
    the same work several times slower. Only for values whose types are right
    by construction, and for fields the template was built with (given
    explicitly), since the template's set of given fields is kept as it is.
    """
    values = template.__dict__.copy()
    values.update(changes)
    return trusted(template.__class__, template.__pydantic_fields_set__, values)


class RoutingResult(BaseModel):
    """What a routing plugin applied in the ticket system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plugin: str
    ticket_id: str
    applied: dict[str, str | int | None]
