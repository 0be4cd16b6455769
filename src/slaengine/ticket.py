"""Tickets and ticket events: what helpdesk systems hand to the engine."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from slaengine.errors import NaiveDatetimeError, TicketError

#: Event types the engine knows; any other string is a custom event type.
EVENT_TYPES = (
    "created",
    "updated",
    "status_changed",
    "agent_replied",
    "customer_replied",
    "severity_changed",
    "priority_changed",
    "resolved",
    "reopened",
    "closed",
)


def require_aware(value: datetime, what: str = "datetime") -> datetime:
    """Return ``value`` if it carries a timezone, else raise NaiveDatetimeError."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(
            f"{what} {value.isoformat()} has no timezone; give an offset such as "
            "'2026-11-23T09:00:00+08:00' or 'Z'"
        )
    return value


def _aware(what: str) -> AfterValidator:
    """A field's check that its instant carries a timezone (require_aware, naming ``what``).

    The common case is checked inline, require_aware called only to raise:
    this runs for every event parsed.
    """

    def check(value: datetime) -> datetime:
        tz = value.tzinfo
        if tz is None or tz.utcoffset(value) is None:
            require_aware(value, what)
        return value

    return AfterValidator(check)


class Ticket(BaseModel):
    """One ticket as the rules see it.

    ``fields`` holds any further ticket-system fields; rules address them as
    ``fields.NAME``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    created_at: Annotated[datetime, _aware("created_at")]
    severity: str
    contract: str | None = None
    customer: str | None = None
    tier: str | None = None
    product: str | None = None
    channel: str | None = None
    category: str | None = None
    status: str = "new"
    tags: tuple[str, ...] = ()
    fields: dict[str, Any] = Field(default_factory=dict)


class TicketEvent(BaseModel):
    """Something that happened to a ticket, at an instant.

    ``event_id`` makes replays idempotent: the same id counted once.
    ``fields`` holds the fields the event changed (e.g. ``{"status":
    "pending_customer"}``, ``{"severity": "urgent"}``) and, for ``created``,
    the ticket itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    at: Annotated[datetime, _aware("at")]
    type: str = Field(min_length=1)
    fields: dict[str, Any] = Field(default_factory=dict)


def _payload_error(exc: ValidationError, prefix: str = "") -> TicketError:
    err = exc.errors()[0]
    path = prefix + ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field; put extra ticket-system fields under 'fields'"
    elif err["type"] == "missing":
        message = "required field is missing"
    more = len(exc.errors()) - 1
    return TicketError(message + (f" (and {more} more problem(s))" if more else ""), path)


def parse_ticket(data: Any) -> Ticket:
    """A Ticket from a JSON-shaped mapping; problems raise TicketError naming the field."""
    if isinstance(data, Ticket):
        return data
    if not isinstance(data, dict):
        raise TicketError(f"a ticket must be a JSON object, not {type(data).__name__}")
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        raise _payload_error(exc) from None


def parse_event(data: Any) -> TicketEvent:
    """A TicketEvent from a JSON-shaped mapping; problems raise TicketError naming the field."""
    if isinstance(data, TicketEvent):
        return data
    if not isinstance(data, dict):
        raise TicketError(f"an event must be a JSON object, not {type(data).__name__}")
    try:
        return TicketEvent.model_validate(data)
    except ValidationError as exc:
        raise _payload_error(exc) from None
