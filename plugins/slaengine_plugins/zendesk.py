"""Zendesk Support intake: ticket objects and ticket event webhooks.

Two payload shapes are read:

- The ticket object ``{"ticket": {...}}`` as the Tickets API returns it
  (``GET /api/v2/tickets/{id}.json``), which is also what a poller or a
  trigger's webhook built to that shape sends. It is a snapshot: one whose
  ``updated_at`` equals its ``created_at`` is a new ticket (a ``created``
  event); any later one gives an ``updated`` event at ``updated_at`` with
  every mapped field, since a snapshot doesn't say what changed.
- A ticket event webhook (``{"type": "zen:event-type:ticket.created",
  "detail": {...}, "event": {...}, "id", "time", ...}``): ``detail`` holds
  the ticket as it is after the event, with ids as text and ``priority``,
  ``status`` and ``type`` in capitals (``HIGH``, ``OPEN``). ``ticket.created``
  gives the ``created`` event; any other ticket event gives an ``updated``
  event at ``detail.updated_at``, and a ``status_changed`` whose
  ``event.previous`` was solved or closed gives a ``reopened`` event first.
  Events of other domains (users, organizations) are refused.

Either way the Intake carries the Ticket as the payload describes it, so the
service can start a ticket it first sees after its creation (a poller's
first look, a webhook set up later) from the snapshot.

Event ids are ``zendesk:{id}:created`` and ``zendesk:{id}:{updated_at}``
for both shapes, so a ticket seen by a poller and by a webhook is counted
once. A solved or closed ticket adds a ``resolved`` or ``closed`` event.

What is read: ``id`` (our ticket id, which write-back uses as the record
key), ``created_at``/``updated_at`` (ISO 8601 UTC), ``priority`` ->
severity, ``status``, ``organization_id`` -> contract, ``via.channel``
(type name or id) -> channel, ``type`` -> category, ``tags``, ``subject``
-> ``fields.subject``, ``custom_fields`` (``[{"id", "value"}]``, ticket
objects only) -> ``fields.NAME``. Priority, status and type are compared in
lower case.

Configuration (``plugins.zendesk``), every key optional::

    severity_map: {urgent: urgent, high: serious, normal: general, low: consultation}
    status_map: {new: open, open: open, pending: pending_customer, hold: on_hold,
                 solved: resolved, closed: closed}
    contract_map: {509974: CN-LOTUS-RETAIL-2026}   # organization_id -> contract
    channel_map: {email: email, web: web, chat: chat, voice: phone, ...}
    custom_fields: {27642: region}                 # field id -> fields.region
    default_severity: general                      # for tickets without a priority
    secret_env: ZENDESK_WEBHOOK_SECRET             # or secret: <text>
    max_age: 300                                   # seconds a signature stays valid

Signatures: Zendesk signs each webhook request with the webhook's signing
secret: ``X-Zendesk-Webhook-Signature`` is the base64 HMAC-SHA256 of the
``X-Zendesk-Webhook-Signature-Timestamp`` header's text followed by the raw
body. The HTTP service calls :meth:`ZendeskAdapter.verify` with the headers
and the raw body before parsing it; it also refuses a timestamp more than
``max_age`` seconds from now (Zendesk has no replay protection of its own).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from slaengine.errors import TicketError
from slaengine.intake import Intake
from slaengine.ticket import Ticket, TicketEvent
from slaengine_plugins._adapter import (
    CLOSING_STATUSES,
    Node,
    SignatureError,
    SignedAdapter,
    SignedAdapterConfig,
    parse_instant,
    require_header,
    snapshot_events,
)

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
#: The ``type`` of the ticket event webhooks.
TICKET_EVENT = "zen:event-type:ticket."

SEVERITY_MAP = {"urgent": "urgent", "high": "serious", "normal": "general", "low": "consultation"}
STATUS_MAP = {
    "new": "open",
    "open": "open",
    "pending": "pending_customer",
    "hold": "on_hold",
    "solved": "resolved",
    "closed": "closed",
}
#: ``via.channel`` comes as a via type or a via id; email shows as ``email`` or ``mail``.
CHANNEL_MAP = {
    "email": "email",
    "mail": "email",
    "4": "email",
    "web": "web",
    "web_form": "web",
    "0": "web",
    "chat": "chat",
    "29": "chat",
    "voice": "phone",
    "phone_call_inbound": "phone",
    "phone_call_outbound": "phone",
    "voicemail": "phone",
    "33": "phone",
    "34": "phone",
    "35": "phone",
}


class ZendeskConfig(SignedAdapterConfig):
    """The ``plugins.zendesk`` settings."""

    severity_map: dict[str, str] = Field(default_factory=lambda: dict(SEVERITY_MAP))
    status_map: dict[str, str] = Field(default_factory=lambda: dict(STATUS_MAP))
    channel_map: dict[str, str] = Field(default_factory=lambda: dict(CHANNEL_MAP))
    max_age: float = Field(300.0, gt=0)


class ZendeskAdapter(SignedAdapter):
    """Zendesk ticket objects and ticket event webhooks in, tickets and events out."""

    name = "zendesk"
    Config = ZendeskConfig
    config: ZendeskConfig

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Refuse a body whose signature doesn't match or whose timestamp is stale.

        Does nothing when no secret is configured.
        """
        key = self.signing_key
        if key is None:
            return
        signature = require_header(headers, SIGNATURE_HEADER)
        stamp = require_header(headers, TIMESTAMP_HEADER)
        stamp_path = f"headers.{TIMESTAMP_HEADER}"
        try:
            signed_at = parse_instant(stamp, stamp_path)
        except TicketError as exc:
            raise SignatureError(exc.message, stamp_path) from None
        digest = hmac.new(key, stamp.encode("utf-8") + body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest), signature.encode("utf-8")):
            raise SignatureError("signature does not match", f"headers.{SIGNATURE_HEADER}")
        age = (datetime.now(UTC) - signed_at).total_seconds()
        if abs(age) > self.config.max_age:
            raise SignatureError(
                f"{stamp} is {abs(age):.0f} s from now, more than max_age "
                f"({self.config.max_age:g} s); a replayed or delayed request",
                stamp_path,
            )

    def read(self, payload: Node, headers: Mapping[str, str]) -> Intake:
        """The ticket and events of a ticket object or of a ticket event webhook."""
        kind = payload.text("type")
        if kind is None:
            return self._snapshot(payload.node("ticket"))
        if not kind.startswith(TICKET_EVENT):
            raise TicketError(f"{kind!r} is not a ticket event ({TICKET_EVENT}*)", "type")
        return self._event(payload, kind.removeprefix(TICKET_EVENT))

    def _snapshot(self, node: Node) -> Intake:
        ticket, updated_at, updated_text = self._ticket(node)
        new = updated_at == ticket.created_at
        event_id = f"zendesk:{ticket.id}:{'created' if new else updated_text}"
        return Intake(
            source=self.name,
            external_id=ticket.id,
            ticket=ticket,
            events=snapshot_events(ticket, event_id, updated_at, new=new),
        )

    def _event(self, payload: Node, kind: str) -> Intake:
        ticket, updated_at, updated_text = self._ticket(payload.node("detail"))
        new = kind == "created"
        event_id = f"zendesk:{ticket.id}:{'created' if new else updated_text}"
        events = snapshot_events(ticket, event_id, updated_at, new=new)
        if kind == "status_changed" and ticket.status not in CLOSING_STATUSES:
            change = payload.node("event")
            before = (change.text("previous") or "").lower()
            if self.config.status_map.get(before) in CLOSING_STATUSES:
                reopened = TicketEvent(
                    ticket_id=ticket.id,
                    event_id=f"{event_id}:reopened",
                    at=updated_at,
                    type="reopened",
                )
                events.insert(0, reopened)
        return Intake(
            source=self.name,
            external_id=ticket.id,
            ticket=ticket,
            events=events,
        )

    def _ticket(self, node: Node) -> tuple[Ticket, datetime, str | None]:
        """The ticket of a ticket object or event detail, its update instant and that as text."""
        created_at = parse_instant(node.require("created_at"), node.where("created_at"), naive=UTC)
        updated_text = node.text("updated_at")
        updated_at = (
            created_at
            if updated_text is None
            else parse_instant(updated_text, node.where("updated_at"), naive=UTC)
        )
        via = node.optional_node("via")
        priority = node.text("priority")
        category = node.text("type")
        ticket = self.ticket(
            {
                "id": node.required_text("id"),
                "created_at": created_at,
                "severity": self.severity(
                    priority.lower() if priority else None, node.where("priority")
                ),
                "status": self.status(node.required_text("status").lower(), node.where("status")),
                "contract": self.contract(node.text("organization_id")),
                "channel": self.channel(via.text("channel") if via else None),
                "category": category.lower() if category else None,
                "tags": node.texts("tags"),
                "fields": {"subject": node.text("subject"), **self._custom_fields(node)},
            }
        )
        return ticket, updated_at, updated_text

    def _custom_fields(self, node: Node) -> dict[str, Any]:
        wanted = self.config.custom_fields
        values = {}
        for entry in node.nodes("custom_fields"):
            field_id = entry.required_text("id")
            if field_id in wanted:
                values[wanted[field_id]] = entry.get("value")
        return values
