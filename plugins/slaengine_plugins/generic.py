"""Generic JSON intake: a ticket system we have no adapter for, described by paths.

The configuration names the ``source`` it answers to and, in ``fields``,
where each of our fields is in the payload, as a dotted path (a number
picks a list item)::

    plugins:
      generic:
        source: acme-desk
        fields:
          id: data.ticket.number            # required
          created_at: data.ticket.opened    # required (ISO 8601)
          severity: data.ticket.level       # required
          status: data.ticket.state
          contract: data.customer.account
          channel: data.ticket.via
          at: data.occurred_at              # the event's instant; required with event_type
          public: data.comment.public       # a reply's visibility (true/false)
        event_type: data.event              # optional; without it every payload is a new ticket
        event_map: {ticket.opened: created, comment.added: agent_replied}
        severity_map: {P1: urgent, P2: serious, P3: general, P4: consultation}
        status_map: {...}
        contract_map: {...}
        channel_map: {...}
        custom_fields: {data.ticket.region: region}   # payload path -> fields.region
        timezone: Asia/Shanghai             # for dates without an offset (else refused)
        default_severity: general

Other keys of ``fields``: ``event_id`` (else ``{source}:{id}:{type}:{at}``),
``customer``, ``tier``, ``product``, ``category``, ``tags`` (a list, or text
split at spaces). Without a map, values are taken as they are; with one, a
severity or status it doesn't list is an error, and a contract or channel
it doesn't list is left unset.

A ``created`` event (or a payload when there is no ``event_type``) gives
the Ticket and its ``created`` event at ``created_at``; any other event type
gives that event at ``at``, carrying the mapped fields present in the
payload (and ``public`` for replies). A required path that the payload
lacks is a TicketError naming the path. Without a ``source`` the adapter
answers to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import model_validator

from slaengine.errors import TicketError
from slaengine.intake import Intake
from slaengine.ticket import TicketEvent
from slaengine_plugins._adapter import (
    Adapter,
    AdapterConfig,
    Node,
    parse_instant,
    snapshot_events,
    translate,
)

#: Our fields a ``fields`` path can fill.
FIELDS = (
    "id",
    "created_at",
    "severity",
    "at",
    "event_id",
    "status",
    "contract",
    "customer",
    "tier",
    "product",
    "channel",
    "category",
    "tags",
    "public",
)
REQUIRED = ("id", "created_at", "severity")
#: Ticket attributes taken as text, through a map when there is one.
TEXT_ATTRIBUTES = (
    "severity",
    "status",
    "contract",
    "customer",
    "tier",
    "product",
    "channel",
    "category",
)


class GenericConfig(AdapterConfig):
    """The ``plugins.generic`` settings."""

    source: str | None = None
    fields: dict[str, str] = {}
    event_type: str | None = None
    event_map: dict[str, str] = {}
    timezone: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> GenericConfig:
        unknown = sorted(set(self.fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"fields: unknown {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        if self.source is None:
            if self.fields or self.event_type:
                raise ValueError("give the source these fields are read for")
            return self
        missing = [name for name in REQUIRED if name not in self.fields]
        if missing:
            raise ValueError(f"fields: give the path of {', '.join(missing)}")
        if self.event_type is not None and "at" not in self.fields:
            raise ValueError("fields: event_type needs the path of 'at', the event's instant")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: {self.timezone!r} is not an IANA zone") from None
        return self


class GenericAdapter(Adapter):
    """Payloads of any JSON shape in, read through configured paths."""

    name = "generic"
    Config = GenericConfig
    config: GenericConfig

    @property
    def source(self) -> str | None:
        """The configured ``source``."""
        return self.config.source

    def read(self, payload: Node, headers: Mapping[str, str]) -> Intake:
        """The ticket or event the payload describes (see the module docstring)."""
        config = self.config
        source = self.source or ""
        ticket_id = _required_text(payload.data, config.fields["id"])
        kind = "created"
        if config.event_type is not None:
            kind = _required_text(payload.data, config.event_type)
            if config.event_map:
                kind = translate(config.event_map, kind, config.event_type, "event_map")
        values = self._values(payload.data)
        event_id = self._text(payload.data, "event_id")
        if kind == "created":
            values.pop("public", None)
            values["created_at"] = self._instant(payload.data, "created_at")
            if "severity" not in values:  # not setdefault: the default raises when unset
                values["severity"] = self._default_severity()
            ticket = self.ticket({"id": ticket_id, **values})
            event_id = event_id or f"{source}:{ticket_id}:created"
            return Intake(
                source=source,
                external_id=ticket_id,
                ticket=ticket,
                events=snapshot_events(ticket, event_id, ticket.created_at, new=True),
            )
        at = self._instant(payload.data, "at")
        event = TicketEvent(
            ticket_id=ticket_id,
            event_id=event_id or f"{source}:{ticket_id}:{kind}:{at.isoformat()}",
            at=at,
            type=kind,
            fields={key: value for key, value in values.items() if value not in (None, {})},
        )
        return Intake(source=source, external_id=ticket_id, events=[event])

    def _values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Our fields found in the payload, translated (absent ones left out)."""
        config = self.config
        paths = config.fields
        # Severity and status must be known words; an unknown contract or channel is left unset.
        strict = {"severity": config.severity_map, "status": config.status_map}
        lenient = {"contract": config.contract_map, "channel": config.channel_map}
        values: dict[str, Any] = {}
        for name in TEXT_ATTRIBUTES:
            value = self._text(data, name)
            if value is None:
                continue
            if strict.get(name):
                value = translate(strict[name], value, paths[name], f"{name}_map")
            elif lenient.get(name):
                value = lenient[name].get(value)
            values[name] = value
        if "tags" in paths:
            tags = _lookup(data, paths["tags"])
            if isinstance(tags, str):
                tags = tags.split()
            if tags is not None:
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    raise TicketError("must be a list of text", paths["tags"])
                values["tags"] = tags
        if "public" in paths:
            public = _lookup(data, paths["public"])
            if public is not None:
                if not isinstance(public, bool):
                    raise TicketError("must be true or false", paths["public"])
                values["public"] = public
        values["fields"] = {
            name: value
            for path, name in config.custom_fields.items()
            if (value := _lookup(data, path)) is not None
        }
        return values

    def _default_severity(self) -> str:
        if self.config.default_severity is None:
            path = self.config.fields["severity"]
            raise TicketError("required field is missing (or configure default_severity)", path)
        return self.config.default_severity

    def _instant(self, data: Mapping[str, Any], name: str) -> datetime:
        path = self.config.fields[name]
        zone = ZoneInfo(self.config.timezone) if self.config.timezone else None
        return parse_instant(_required_text(data, path), path, naive=zone)

    def _text(self, data: Mapping[str, Any], name: str) -> str | None:
        path = self.config.fields.get(name)
        return None if path is None else _text(_lookup(data, path), path)


def _lookup(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``data``; None when any step is absent."""
    for step in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def _text(value: Any, path: str) -> str | None:
    """``value`` as text (a number becomes its digits); None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TicketError("must be text", path)
    return str(value)


def _required_text(data: Mapping[str, Any], path: str) -> str:
    """The text at ``path``; TicketError naming the path when absent."""
    value = _text(_lookup(data, path), path)
    if value is None:
        raise TicketError("required field is missing", path)
    return value
