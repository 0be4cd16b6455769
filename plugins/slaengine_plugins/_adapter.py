"""The ticket-system adapter: what the intake plugins for Zendesk, Jira, ServiceNow share.

An adapter is registered once per ticket system. It answers
``slaengine_intake`` for its own ``source`` (None for any other), reads the
payload through :class:`Node` so that every problem raises a
:class:`~slaengine.errors.TicketError` naming the payload's field path
(``ticket.priority``, ``issue.fields.created``), and translates the system's
values into ours through the maps of its configuration:

- ``severity_map`` and ``status_map``: a value they don't list is an error
  (the rules need both); an empty priority takes ``default_severity`` when
  one is configured.
- ``contract_map`` and ``channel_map``: a value they don't list leaves the
  ticket's contract or channel unset (the engine then reports a ticket with
  no known contract; channel is optional in the rulesets).
- ``custom_fields``: the system's field id -> our ``fields.NAME``.

Map keys are compared as text, so ``509974: CN-LOTUS-RETAIL-2026`` in YAML
matches the number 509974 in a payload. A configured map replaces the
default one as a whole.

Signature checks need the raw body, which the hook never sees: the HTTP
service calls :meth:`Adapter.verify` with the request's headers and body
before it parses the JSON. A request that fails the check raises
:class:`SignatureError`: not a malformed payload but an unauthenticated one.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from slaengine.errors import SignatureError, TicketError
from slaengine.hookspecs import hookimpl
from slaengine.intake import Intake
from slaengine.ticket import Ticket, TicketEvent, parse_ticket

#: Our statuses that end the work on a ticket; a snapshot in one of them
#: also yields the event of that name, which is what stops resolution clocks.
CLOSING_STATUSES = ("resolved", "closed")


class AdapterConfig(BaseModel):
    """The settings every adapter accepts; each adapter gives its own defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    severity_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    contract_map: dict[str, str] = {}
    channel_map: dict[str, str] = {}
    custom_fields: dict[str, str] = {}
    default_severity: str | None = None


class SignedAdapterConfig(AdapterConfig):
    """Settings of an adapter whose source signs its webhooks: the signing secret."""

    secret: str | None = None
    secret_env: str | None = None

    def signing_key(self) -> bytes | None:
        """The secret as bytes (read from ``secret_env`` when named); None when unset."""
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("give either secret or secret_env, not both")
        secret = self.secret
        if self.secret_env is not None:
            secret = os.environ.get(self.secret_env)
            if not secret:
                raise ValueError(f"environment variable {self.secret_env} is not set")
        return secret.encode("utf-8") if secret else None


class Node:
    """A JSON object inside a payload and its path there (for error messages)."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    def where(self, key: str | int) -> str:
        """The path of ``key`` in this object."""
        return f"{self.path}.{key}" if self.path else str(key)

    def get(self, key: str) -> Any:
        """The value of ``key``; None when absent."""
        return self.data.get(key)

    def require(self, key: str) -> Any:
        """The value of ``key``; TicketError when absent or null."""
        value = self.data.get(key)
        if value is None:
            raise TicketError("required field is missing", self.where(key))
        return value

    def text(self, key: str) -> str | None:
        """``key`` as text (a number becomes its digits); None when absent or empty."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TicketError(f"must be text, not {_json_type(value)}", self.where(key))
        return str(value)

    def required_text(self, key: str) -> str:
        """``key`` as text; TicketError when absent or empty."""
        value = self.text(key)
        if value is None:
            raise TicketError("required field is missing", self.where(key))
        return value

    def optional_node(self, key: str) -> Node | None:
        """``key`` as a nested object; None when absent."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, Mapping):
            raise TicketError(f"must be an object, not {_json_type(value)}", self.where(key))
        return Node(value, self.where(key))

    def node(self, key: str) -> Node:
        """``key`` as a nested object; TicketError when absent."""
        node = self.optional_node(key)
        if node is None:
            raise TicketError("required field is missing", self.where(key))
        return node

    def nodes(self, key: str) -> list[Node]:
        """``key`` as a list of objects (empty when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise TicketError(f"must be a list, not {_json_type(value)}", self.where(key))
        nodes = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                path = self.where(key) + f".{index}"
                raise TicketError(f"must be an object, not {_json_type(item)}", path)
            nodes.append(Node(item, f"{self.where(key)}.{index}"))
        return nodes

    def texts(self, key: str) -> tuple[str, ...]:
        """``key`` as a list of text (empty when absent)."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TicketError("must be a list of text", self.where(key))
        return tuple(value)


def parse_instant(value: Any, path: str, *, naive: tzinfo | None = None) -> datetime:
    """An aware datetime from ISO 8601 text.

    A value without an offset is refused unless ``naive`` says which zone
    the source defines for it (Zendesk: UTC).
    """
    if not isinstance(value, str):
        raise TicketError(f"must be an ISO 8601 date and time, not {_json_type(value)}", path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or not ("T" in value.upper() or " " in value.strip()):
        raise TicketError(f"{value!r} is not an ISO 8601 date and time", path)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if naive is None:
            raise TicketError(f"{value!r} has no timezone offset", path)
        parsed = parsed.replace(tzinfo=naive)
    return parsed


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of HTTP header ``name`` (names compared without case)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def require_header(headers: Mapping[str, str], name: str) -> str:
    """The value of signature header ``name``; SignatureError ``headers.NAME`` when absent."""
    value = header(headers, name)
    if not value:
        raise SignatureError("required header is missing", f"headers.{name}")
    return value


def ticket_fields(ticket: Ticket) -> dict[str, Any]:
    """What a ``created`` or ``updated`` event carries of ``ticket`` (all but id and created_at)."""
    return ticket.model_dump(mode="json", exclude={"id", "created_at"}, exclude_none=True)


def snapshot_events(
    ticket: Ticket, event_id: str, at: datetime, *, new: bool, closed_at: datetime | None = None
) -> list[TicketEvent]:
    """The events of a full-ticket snapshot, which says how the ticket is, not what changed.

    A new ticket gives ``created`` at its creation; a later snapshot gives
    ``updated`` at ``at`` carrying every mapped field (unchanged ones change
    nothing). A snapshot in a closing status adds that status's event at
    ``closed_at`` (default ``at``), because only the event stops the clocks.
    A reopening can't be seen in a snapshot.
    """
    if new:
        events = [
            TicketEvent(
                ticket_id=ticket.id,
                event_id=event_id,
                at=ticket.created_at,
                type="created",
                fields=ticket_fields(ticket),
            )
        ]
    else:
        events = [
            TicketEvent(
                ticket_id=ticket.id,
                event_id=event_id,
                at=at,
                type="updated",
                fields=ticket_fields(ticket),
            )
        ]
    if ticket.status in CLOSING_STATUSES:
        when = closed_at or (ticket.created_at if new else at)
        events.append(
            TicketEvent(
                ticket_id=ticket.id,
                event_id=f"{event_id}:{ticket.status}",
                at=when,
                type=ticket.status,
            )
        )
    return events


class Adapter(ABC):
    """One ticket system's intake: configured by a mapping, answering its own source.

    Subclasses set :attr:`name` and :attr:`Config` and implement :meth:`read`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig

    def __init__(self) -> None:
        self.config = self.Config()

    @property
    def source(self) -> str | None:
        """The ``source`` this adapter answers to."""
        return self.name

    @hookimpl
    def slaengine_configure(self, config: Mapping[str, Any]) -> None:
        """Read the settings (see the module docstring); unknown keys are refused."""
        self.config = self.Config.model_validate(config)

    @hookimpl
    def slaengine_intake(
        self, source: str, payload: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Intake | None:
        """The payload's ticket and events when ``source`` is this adapter's, else None."""
        if source != self.source:
            return None
        if not isinstance(payload, Mapping):
            raise TicketError(f"a payload must be a JSON object, not {_json_type(payload)}")
        return self.read(Node(payload), headers)

    @abstractmethod
    def read(self, payload: Node, headers: Mapping[str, str]) -> Intake:
        """Turn one payload of this adapter's source into an Intake."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check the raw body's signature; raise SignatureError naming the header if it fails.

        Call it before parsing the body. Sources that don't sign, and
        adapters with no secret configured, accept every body.
        """
        return None

    # -- translation through the configured maps ---------------------------

    def severity(self, value: str | None, path: str) -> str:
        """Our severity for the source's priority ``value`` found at ``path``."""
        if value is None:
            if self.config.default_severity is not None:
                return self.config.default_severity
            raise TicketError("required field is missing (or configure default_severity)", path)
        return translate(self.config.severity_map, value, path, "severity_map")

    def status(self, value: str, path: str) -> str:
        """Our status for the source's status ``value`` found at ``path``."""
        return translate(self.config.status_map, value, path, "status_map")

    def contract(self, value: str | None) -> str | None:
        """Our contract id for the source's customer key, or None when unmapped."""
        return None if value is None else self.config.contract_map.get(value)

    def channel(self, value: str | None) -> str | None:
        """Our channel for the source's channel, or None when unmapped."""
        return None if value is None else self.config.channel_map.get(value)

    def ticket(self, data: dict[str, Any]) -> Ticket:
        """A Ticket from mapped values (None values left out, in ``fields`` too)."""
        data = {key: value for key, value in data.items() if value is not None}
        fields = data.get("fields") or {}
        data["fields"] = {key: value for key, value in fields.items() if value is not None}
        return parse_ticket(data)


class SignedAdapter(Adapter):
    """An adapter whose source signs its webhooks with a secret shared with us."""

    Config: ClassVar[type[AdapterConfig]] = SignedAdapterConfig

    def __init__(self) -> None:
        super().__init__()
        self.signing_key: bytes | None = None

    @hookimpl
    def slaengine_configure(self, config: Mapping[str, Any]) -> None:
        """Read the settings; a ``secret_env`` must name a variable that is set."""
        settings = self.Config.model_validate(config)
        assert isinstance(settings, SignedAdapterConfig)
        self.signing_key = settings.signing_key()
        self.config = settings


def translate(table: Mapping[str, str], value: str, path: str, what: str) -> str:
    """``table[value]``; a TicketError at ``path`` listing the table's keys when absent."""
    try:
        return table[value]
    except KeyError:
        known = ", ".join(repr(k) for k in table) or "nothing"
        raise TicketError(f"{value!r} is not in {what} (it lists {known})", path) from None


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
