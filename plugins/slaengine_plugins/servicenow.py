"""ServiceNow intake: incident records as the Table API returns them.

A payload is ``{"result": {...}}`` (``GET /api/now/table/incident/{sys_id}``)
or the bare record (a Business Rule's outbound REST message). ServiceNow has
no outbound webhook of its own, so there is no signature to check.

A record is a snapshot, and the Intake carries its Ticket. One never
modified (``sys_mod_count`` "0", or when that is absent, ``sys_updated_on``
equal to ``sys_created_on``) is a new ticket: a ``created`` event. Any other
gives an ``updated`` event at ``sys_updated_on`` (id
``servicenow:{sys_id}:{sys_updated_on}``) with every mapped field; a
resolved or closed incident adds a ``resolved`` or ``closed`` event at
``resolved_at`` or ``closed_at``.

What is read: ``sys_id`` (our ticket id, because the Table API updates a
record by its sys_id and write-back uses the ticket id as the record key),
``number`` -> ``fields.number`` (the name people use),
``sys_created_on``/``sys_updated_on``/``resolved_at``/``closed_at``
(``2026-11-23 01:00:00``, stored UTC: read with the default
``sysparm_display_value=false``), ``priority`` -> severity, ``state`` and
``hold_reason`` -> status, ``company`` -> contract, ``contact_type`` ->
channel, ``category``, ``short_description`` -> ``fields.subject``,
custom fields -> ``fields.NAME``. Reference fields may be ``{"link",
"value"}`` objects or plain sys_ids; ``""`` is empty.

Configuration (``plugins.servicenow``), every key optional::

    severity_map: {1: urgent, 2: serious, 3: general, 4: consultation, 5: consultation}
    status_map: {1: open, 2: open, 3: on_hold, 6: resolved, 7: closed, 8: closed}   # by state
    hold_reason_map: {1: pending_customer}   # on hold awaiting the caller
    contract_map: {31bea3d53790200044e0bfc8bcbe5dec: CN-LOTUS-RETAIL-2026}   # company sys_id
    channel_map: {phone: phone, email: email, self-service: web, chat: chat,
                  virtual_agent: chat}       # contact_type -> channel
    custom_fields: {u_region: region}
    default_severity: general
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import Field

from slaengine.errors import TicketError
from slaengine.intake import Intake
from slaengine_plugins._adapter import (
    CLOSING_STATUSES,
    Adapter,
    AdapterConfig,
    Node,
    snapshot_events,
)

#: The Table API's date and time (UTC with the default ``sysparm_display_value``).
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

SEVERITY_MAP = {
    "1": "urgent",  # 1 - Critical
    "2": "serious",  # 2 - High
    "3": "general",  # 3 - Moderate
    "4": "consultation",  # 4 - Low
    "5": "consultation",  # 5 - Planning
}
#: ``state``: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled.
STATUS_MAP = {
    "1": "open",
    "2": "open",
    "3": "on_hold",
    "6": "resolved",
    "7": "closed",
    "8": "closed",
}
HOLD_REASON_MAP = {"1": "pending_customer"}
CHANNEL_MAP = {
    "phone": "phone",
    "email": "email",
    "self-service": "web",
    "chat": "chat",
    "virtual_agent": "chat",
}


class ServiceNowConfig(AdapterConfig):
    """The ``plugins.servicenow`` settings."""

    severity_map: dict[str, str] = Field(default_factory=lambda: dict(SEVERITY_MAP))
    status_map: dict[str, str] = Field(default_factory=lambda: dict(STATUS_MAP))
    hold_reason_map: dict[str, str] = Field(default_factory=lambda: dict(HOLD_REASON_MAP))
    channel_map: dict[str, str] = Field(default_factory=lambda: dict(CHANNEL_MAP))


class ServiceNowAdapter(Adapter):
    """ServiceNow incident records in, tickets and events out."""

    name = "servicenow"
    Config = ServiceNowConfig
    config: ServiceNowConfig

    def read(self, payload: Node, headers: Mapping[str, str]) -> Intake:
        """The incident of a Table API payload and its created or updated events."""
        if isinstance(payload.get("result"), list):
            raise TicketError("one record per payload, not a list", payload.where("result"))
        record = payload.node("result") if "result" in payload.data else payload
        sys_id = _required(record, "sys_id")
        created_at = _instant(record, _required(record, "sys_created_on"), "sys_created_on")
        updated_text = _value(record, "sys_updated_on")
        updated_at = created_at
        if updated_text is not None:
            updated_at = _instant(record, updated_text, "sys_updated_on")
        ticket = self.ticket(
            {
                "id": sys_id,
                "created_at": created_at,
                "severity": self.severity(_value(record, "priority"), record.where("priority")),
                "status": self._status(record),
                "contract": self.contract(_value(record, "company")),
                "channel": self.channel(_value(record, "contact_type")),
                "category": _value(record, "category"),
                "fields": {
                    "number": _value(record, "number"),
                    "subject": _value(record, "short_description"),
                    **{
                        name: _value(record, field)
                        for field, name in self.config.custom_fields.items()
                    },
                },
            }
        )
        mod_count = _value(record, "sys_mod_count")
        new = mod_count == "0" if mod_count is not None else updated_at == created_at
        closed_at = None
        if ticket.status in CLOSING_STATUSES:
            field = f"{ticket.status}_at"
            closed_text = _value(record, field)
            closed_at = _instant(record, closed_text, field) if closed_text else None
        event_id = f"servicenow:{sys_id}:{'created' if new else updated_text}"
        return Intake(
            source=self.name,
            external_id=sys_id,
            ticket=ticket,
            events=snapshot_events(ticket, event_id, updated_at, new=new, closed_at=closed_at),
        )

    def _status(self, record: Node) -> str:
        state = _required(record, "state")
        status = self.status(state, record.where("state"))
        if status == "on_hold":
            reason = _value(record, "hold_reason")
            status = self.config.hold_reason_map.get(reason or "", status)
        return status


def _value(record: Node, field: str) -> str | None:
    """A field's stored value: text, or the ``value`` of a reference or choice object."""
    if isinstance(record.get(field), Mapping):
        return record.node(field).text("value")
    return record.text(field)


def _required(record: Node, field: str) -> str:
    value = _value(record, field)
    if value is None:
        raise TicketError("required field is missing", record.where(field))
    return value


def _instant(record: Node, text: str, field: str) -> datetime:
    """A Table API date and time, which is UTC without saying so."""
    try:
        return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise TicketError(
            f"{text!r} is not a date and time like '2026-11-23 01:00:00' (UTC); read the "
            "Table API with sysparm_display_value=false",
            record.where(field),
        ) from None
