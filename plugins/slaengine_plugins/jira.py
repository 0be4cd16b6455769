"""Jira Cloud and Jira Service Management intake: issue and comment webhooks.

Which webhook events give what (``webhookEvent``):

- ``jira:issue_created``: the Ticket and a ``created`` event at
  ``issue.fields.created``.
- ``jira:issue_updated``: the Ticket as the issue now is, and one event per
  kind of change in ``changelog.items``, at the delivery's ``timestamp``: a
  status change gives ``resolved`` or ``closed`` when the new status maps to
  one, ``reopened`` when the old one did (the old status is known by name
  only, so through ``status_map``), else ``status_changed``; a priority
  change gives ``severity_changed``; labels, project, issue type, summary,
  the channel field and configured custom fields give ``updated``. The new
  values are read from the issue.
- ``comment_created`` (and an ``issue_updated`` that carries a ``comment``):
  ``agent_replied``, or ``customer_replied`` when the author is a JSM
  customer (``accountType: customer``) or the issue's reporter; its
  ``fields.public`` is the comment's ``jsdPublic``, or, outside JSM, whether
  the comment has no ``visibility`` restriction.
- Any other event of an issue: an Intake without events.

Our ticket id is the issue key. Event ids are ``jira:<delivery>:<type>``,
where the delivery is the ``X-Atlassian-Webhook-Identifier`` header (the
same on retries) or else ``<issue id>:<timestamp>``; a reply's id is
``jira:comment:<comment id>`` because the same comment may arrive through
both comment and issue webhooks.

What is read from ``issue.fields``: ``created`` (``2026-11-23T09:00:00.000+0800``),
``priority.name`` -> severity, ``status`` (``name`` through ``status_map``,
else ``statusCategory.key`` through ``status_category_map``),
``project.key`` -> contract, ``issuetype.name`` -> category, ``labels`` ->
tags, ``summary`` -> ``fields.subject``, custom fields -> ``fields.NAME``
(an option ``{"value": ...}`` gives its value).

Configuration (``plugins.jira``), every key optional::

    severity_map: {Highest: urgent, High: serious, Medium: general, Low: consultation,
                   Lowest: consultation}
    status_map: {Waiting for customer: pending_customer, Pending: on_hold, Resolved: resolved,
                 Done: resolved, Closed: closed, Canceled: closed}        # by status name
    status_category_map: {new: open, indeterminate: open, done: resolved}
    contract_map: {SUP: CN-LOTUS-RETAIL-2026}     # project key -> contract
    channel_field: customfield_10050             # the field holding the channel, if any
    channel_map: {Email: email, Portal: web}
    custom_fields: {customfield_10042: region}
    default_severity: general                    # for issues without a priority
    secret_env: JIRA_WEBHOOK_SECRET              # or secret: <text>

Signatures: a webhook given a secret (System > WebHooks) is signed with
``X-Hub-Signature: sha256=<hex>``, the lowercase hex HMAC-SHA256 of the raw
body keyed with the secret. The HTTP service calls :meth:`JiraAdapter.verify`
with the headers and the raw body before parsing it. The timestamp isn't
signed, so there is no replay window to check; drop repeated deliveries by
``X-Atlassian-Webhook-Identifier`` (the event ids carry it).
"""

from __future__ import annotations

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
    header,
    parse_instant,
    require_header,
    snapshot_events,
)

SIGNATURE_HEADER = "X-Hub-Signature"
DELIVERY_HEADER = "X-Atlassian-Webhook-Identifier"

SEVERITY_MAP = {
    "Highest": "urgent",
    "High": "serious",
    "Medium": "general",
    "Low": "consultation",
    "Lowest": "consultation",
}
STATUS_MAP = {
    "Waiting for customer": "pending_customer",
    "Pending": "on_hold",
    "Resolved": "resolved",
    "Done": "resolved",
    "Closed": "closed",
    "Canceled": "closed",
}
STATUS_CATEGORY_MAP = {"new": "open", "indeterminate": "open", "done": "resolved"}

#: Changelog field ids whose change gives an ``updated`` event -> the ticket attribute.
UPDATED_ATTRIBUTES = {"labels": "tags", "project": "contract", "issuetype": "category"}


class JiraConfig(SignedAdapterConfig):
    """The ``plugins.jira`` settings."""

    severity_map: dict[str, str] = Field(default_factory=lambda: dict(SEVERITY_MAP))
    status_map: dict[str, str] = Field(default_factory=lambda: dict(STATUS_MAP))
    status_category_map: dict[str, str] = Field(default_factory=lambda: dict(STATUS_CATEGORY_MAP))
    channel_field: str | None = None


class JiraAdapter(SignedAdapter):
    """Jira issue and comment webhooks in, tickets and events out."""

    name = "jira"
    Config = JiraConfig
    config: JiraConfig

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Refuse a body whose ``X-Hub-Signature`` doesn't match (no secret: accept all)."""
        key = self.signing_key
        if key is None:
            return
        path = f"headers.{SIGNATURE_HEADER}"
        algorithm, _, digest = require_header(headers, SIGNATURE_HEADER).partition("=")
        if algorithm.strip().lower() != "sha256":
            raise SignatureError(
                f"{algorithm!r} signatures are not supported; expected sha256=", path
            )
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), digest.strip().lower().encode()):
            raise SignatureError("signature does not match", path)

    def read(self, payload: Node, headers: Mapping[str, str]) -> Intake:
        """The events of one webhook delivery (see the module docstring)."""
        kind = payload.required_text("webhookEvent")
        issue = payload.node("issue")
        key = issue.required_text("key")
        ticket = None
        events: list[TicketEvent] = []
        if kind == "jira:issue_created":
            ticket = self._ticket(issue)
            delivery = self._delivery(payload, issue, headers)
            event_id = f"jira:{delivery}:created"
            events = snapshot_events(ticket, event_id, ticket.created_at, new=True)
        elif kind == "jira:issue_updated":
            ticket = self._ticket(issue)
            changelog = payload.optional_node("changelog")
            if changelog is not None and changelog.nodes("items"):
                events = self._changes(payload, issue, ticket, changelog, headers)
            comment = payload.optional_node("comment")
            if comment is not None:
                events.append(self._reply(issue, comment))
        elif kind == "comment_created":
            events = [self._reply(issue, payload.node("comment"))]
        return Intake(source=self.name, external_id=key, ticket=ticket, events=events)

    def _ticket(self, issue: Node) -> Ticket:
        fields = issue.node("fields")
        priority = fields.optional_node("priority")
        project = fields.optional_node("project")
        issuetype = fields.optional_node("issuetype")
        channel_field = self.config.channel_field
        custom = {
            name: _plain(fields.get(field_id))
            for field_id, name in self.config.custom_fields.items()
        }
        return self.ticket(
            {
                "id": issue.required_text("key"),
                "created_at": parse_instant(fields.require("created"), fields.where("created")),
                "severity": self.severity(
                    priority.text("name") if priority else None,
                    priority.where("name") if priority else fields.where("priority"),
                ),
                "status": self._status(fields.node("status")),
                "contract": self.contract(project.text("key") if project else None),
                "channel": self.channel(
                    _plain_text(fields.get(channel_field), fields.where(channel_field))
                    if channel_field
                    else None
                ),
                "category": issuetype.text("name") if issuetype else None,
                "tags": fields.texts("labels"),
                "fields": {"subject": fields.text("summary"), **custom},
            }
        )

    def _status(self, status: Node) -> str:
        name = status.required_text("name")
        mapped = self.config.status_map.get(name)
        if mapped is not None:
            return mapped
        category = status.optional_node("statusCategory")
        category_key = category.text("key") if category else None
        mapped = self.config.status_category_map.get(category_key or "")
        if mapped is None:
            raise TicketError(
                f"status {name!r} (category {category_key!r}) is in neither status_map nor "
                "status_category_map",
                status.path,
            )
        return mapped

    def _changes(
        self,
        payload: Node,
        issue: Node,
        ticket: Ticket,
        changelog: Node,
        headers: Mapping[str, str],
    ) -> list[TicketEvent]:
        delivery = self._delivery(payload, issue, headers)
        at = self._instant(payload, issue)
        custom = dict(self.config.custom_fields)
        custom.update({"summary": "subject"})
        events: list[tuple[str, dict[str, Any]]] = []
        updated: dict[str, Any] = {}
        updated_fields: dict[str, Any] = {}
        for item in changelog.nodes("items"):
            field_id = item.text("fieldId") or item.required_text("field").lower()
            if field_id == "status":
                events.append(self._status_change(ticket.status, item))
            elif field_id == "priority":
                events.append(("severity_changed", {"severity": ticket.severity}))
            elif field_id in UPDATED_ATTRIBUTES:
                attribute = UPDATED_ATTRIBUTES[field_id]
                value = getattr(ticket, attribute)
                updated[attribute] = list(value) if attribute == "tags" else value
            elif field_id == self.config.channel_field:
                updated["channel"] = ticket.channel
            elif field_id in custom:
                name = custom[field_id]
                updated_fields[name] = ticket.fields.get(name)
        if updated_fields:
            updated["fields"] = updated_fields
        if updated:
            events.append(("updated", updated))
        return [
            TicketEvent(
                ticket_id=ticket.id,
                event_id=f"jira:{delivery}:{kind}",
                at=at,
                type=kind,
                fields=fields,
            )
            for kind, fields in events
        ]

    def _status_change(self, status: str, item: Node) -> tuple[str, dict[str, Any]]:
        before = self.config.status_map.get(item.text("fromString") or "")
        if status in CLOSING_STATUSES:
            kind = status
        elif before in CLOSING_STATUSES:
            kind = "reopened"
        else:
            kind = "status_changed"
        return kind, {"status": status}

    def _reply(self, issue: Node, comment: Node) -> TicketEvent:
        author = comment.optional_node("author")
        fields = issue.optional_node("fields")
        reporter = fields.optional_node("reporter") if fields else None
        author_id = author.text("accountId") if author else None
        reporter_id = reporter.text("accountId") if reporter else None
        by_customer = (author is not None and author.text("accountType") == "customer") or (
            author_id is not None and author_id == reporter_id
        )
        public = comment.get("jsdPublic")
        if public is None:
            public = comment.get("visibility") is None
        elif not isinstance(public, bool):
            raise TicketError("must be true or false", comment.where("jsdPublic"))
        return TicketEvent(
            ticket_id=issue.required_text("key"),
            event_id=f"jira:comment:{comment.required_text('id')}",
            at=parse_instant(comment.require("created"), comment.where("created")),
            type="customer_replied" if by_customer else "agent_replied",
            fields={"public": public},
        )

    def _delivery(self, payload: Node, issue: Node, headers: Mapping[str, str]) -> str:
        identifier = header(headers, DELIVERY_HEADER)
        if identifier:
            return identifier
        return f"{issue.required_text('id')}:{payload.required_text('timestamp')}"

    def _instant(self, payload: Node, issue: Node) -> datetime:
        """When the change happened: the delivery's timestamp, else the issue's ``updated``."""
        stamp = payload.get("timestamp")
        if stamp is None:
            fields = issue.node("fields")
            return parse_instant(fields.require("updated"), fields.where("updated"))
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            path = payload.where("timestamp")
            raise TicketError("must be epoch milliseconds (a whole number)", path)
        return datetime.fromtimestamp(stamp / 1000, UTC)


def _plain(value: Any) -> Any:
    """A custom field's value: an option's ``value``, a list of options' values."""
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _plain_text(value: Any, path: str) -> str | None:
    value = _plain(value)
    if value is None or isinstance(value, str):
        return value
    raise TicketError("must be text or an option with a text value", path)
