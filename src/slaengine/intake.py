"""What an intake plugin makes of a ticket system's payload."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from slaengine.ticket import Ticket, TicketEvent


class Intake(BaseModel):
    """A ticket (when the payload describes one) and the events it implies.

    ``source`` names the ticket system; ``external_id`` is its id of the
    ticket (e.g. a Jira key), kept for write-back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    external_id: str
    ticket: Ticket | None = None
    events: list[TicketEvent] = Field(default_factory=list)
