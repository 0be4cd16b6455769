"""Write-back: routing and escalations applied to the ticket in its own system.

Configuration (``plugins.writeback``); without ``base_url`` the plugin does nothing::

    system: zendesk                  # zendesk | jira | servicenow
    base_url: https://acme.zendesk.com
    username: agent@acme.com/token   # with token_env: basic auth; without: bearer token
    token_env: ZENDESK_API_TOKEN
    group_map: {senior-engineers: 98738}      # our group/queue -> their id
    assignee_map: {li.wei: 20978392}          # our assignee -> their id
    priority_map: {P1: urgent, P2: high}      # our priority -> theirs
    level_priority: {L3: P1}                  # raise_level: our priority to set
    level_tag: support-level-{level}          # raise_level: tag/label to add
    level_field: u_support_level              # raise_level on ServiceNow: field to set
    group_field: customfield_10001            # Jira: the field that holds the team/group
    due_metric: resolution                    # whose due time Jira/ServiceNow get
    timeout: 5                                # and retries, backoff, dead_letter

A field is written only when its map is configured; a name missing from a
configured map is an error (nothing is sent). The ticket id is the record
key in the system: Zendesk ticket id, Jira issue key, ServiceNow sys_id.

Per system:

- Zendesk: ``PUT /api/v2/tickets/{id}.json`` ``{"ticket": {group_id,
  assignee_id, priority}}``; raise_level adds ``additional_tags``. Zendesk's
  ``due_at`` is only for tasks and is left alone.
- Jira: ``PUT /rest/api/3/issue/{key}`` ``{"fields": {group_field,
  assignee: {accountId}, priority: {name}, duedate}}``; raise_level adds a
  label through ``update``.
- ServiceNow: ``PATCH /api/now/table/incident/{sys_id}`` with
  ``assignment_group``, ``assigned_to``, ``due_date`` (UTC) and the priority:
  map it to ``{impact: "1", urgency: "1"}``, since ServiceNow computes
  ``priority`` from those. raise_level sets ``level_field`` if configured and
  leaves a work note.

A priority mapped to an object is sent as it is (Jira ``{id: "2"}``,
ServiceNow ``{impact, urgency}``). An answer other than 2xx raises
:class:`~slaengine_plugins.delivery.DeliveryError` with the status and an
excerpt of the body (5xx, 429 and connection errors after retries).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from slaengine.decision import Decision, Route, RoutingResult
from slaengine.errors import SlaEngineError
from slaengine.escalation import Action, EscalationContext
from slaengine.hookspecs import hookimpl
from slaengine.ticket import Ticket
from slaengine_plugins.delivery import DeliveryConfig, from_env, http_client, send_http

PLUGIN = "writeback"

Id = str | int
Fields = dict[str, Any]


class WriteBackError(SlaEngineError, ValueError):
    """An update that cannot be written as configured (a name missing from a map...)."""


class WriteBackConfig(DeliveryConfig):
    """The ``plugins.writeback`` settings."""

    system: Literal["zendesk", "jira", "servicenow"] | None = None
    base_url: str | None = None
    username: str | None = None
    token_env: str | None = None
    group_map: dict[str, Id] | None = None
    assignee_map: dict[str, Id] | None = None
    priority_map: dict[str, Id | dict[str, str]] | None = None
    level_priority: dict[str, str] = {}
    level_tag: str = "support-level-{level}"
    level_field: str | None = None
    group_field: str | None = None
    due_metric: str = "resolution"


class WriteBack:
    """Sets group, assignee, priority and due date of tickets in Zendesk, Jira or ServiceNow."""

    def __init__(self) -> None:
        self.config = WriteBackConfig()
        self._auth: httpx.Auth | None = None

    @hookimpl
    def slaengine_configure(self, config: Mapping[str, Any]) -> None:
        """Read the settings and the token; a base_url needs a system."""
        settings = WriteBackConfig.model_validate(config)
        if settings.base_url is not None and settings.system is None:
            raise ValueError("a base_url needs a system: zendesk, jira or servicenow")
        if settings.username is not None and settings.token_env is None:
            raise ValueError("a username needs token_env")
        auth: httpx.Auth | None = None
        if settings.token_env is not None:
            token = from_env(settings.token_env)
            auth = (
                httpx.BasicAuth(settings.username, token)
                if settings.username is not None
                else _Bearer(token)
            )
        self.config, self._auth = settings, auth

    @hookimpl
    def slaengine_route(self, ticket: Ticket, decision: Decision) -> RoutingResult | None:
        """Write the decision's route, priority and due date; None when unconfigured."""
        if self.config.base_url is None:
            return None
        applied: dict[str, str | int | None] = {}
        fields = self._route_fields(decision.route or Route(), applied)
        if decision.priority is not None and self.config.priority_map is not None:
            fields.update(self._priority_fields(decision.priority))
            applied["priority"] = decision.priority
        target = decision.targets.get(self.config.due_metric)
        if target is not None and target.due_at is not None:
            due = self._due_fields(target.due_at)
            if due:
                fields.update(due)
                applied["due_at"] = target.due_at.isoformat()
        if not fields:
            return None
        self._update(ticket.id, fields)
        return RoutingResult(plugin=PLUGIN, ticket_id=ticket.id, applied=applied)

    @hookimpl
    def slaengine_escalation_actions(self) -> tuple[str, ...]:
        """``reassign`` and ``raise_level``; none without a base_url."""
        return ("reassign", "raise_level") if self.config.base_url is not None else ()

    @hookimpl
    def slaengine_escalate(self, context: EscalationContext, action: Action) -> bool | None:
        """Apply ``reassign`` (params group/queue/assignee) and ``raise_level`` (params level)."""
        if self.config.base_url is None:
            return None
        params = action.params
        if action.type == "reassign":
            route = Route(**{k: params[k] for k in ("queue", "group", "assignee") if k in params})
            fields = self._route_fields(route, {})
        elif action.type == "raise_level":
            if "level" not in params:
                raise WriteBackError("a raise_level action needs params.level")
            fields = self._level_fields(str(params["level"]), context)
        else:
            return None
        if not fields:
            return None
        self._update(context.ticket_id, fields)
        return True

    # -- what to write ------------------------------------------------------

    def _route_fields(self, route: Route, applied: dict[str, str | int | None]) -> Fields:
        settings = self.config
        fields: Fields = {}
        group = route.group or route.queue
        group_field = {"zendesk": "group_id", "servicenow": "assignment_group"}.get(
            str(settings.system), settings.group_field
        )
        if group is not None and settings.group_map is not None and group_field is not None:
            fields[group_field] = _lookup(settings.group_map, group, "group_map")
            applied["group"] = group
        if route.assignee is not None and settings.assignee_map is not None:
            user = _lookup(settings.assignee_map, route.assignee, "assignee_map")
            if settings.system == "zendesk":
                fields["assignee_id"] = user
            elif settings.system == "jira":
                fields["assignee"] = {"accountId": user}
            else:
                fields["assigned_to"] = user
            applied["assignee"] = route.assignee
        return fields

    def _priority_fields(self, priority: str) -> Fields:
        value = _lookup(self.config.priority_map or {}, priority, "priority_map")
        if isinstance(value, dict):
            return value if self.config.system == "servicenow" else {"priority": value}
        if self.config.system == "jira":
            return {"priority": {"name": value}}
        return {"priority": value}

    def _due_fields(self, due_at: datetime) -> Fields:
        if self.config.system == "jira":
            return {"duedate": due_at.date().isoformat()}  # the date where the due time is
        if self.config.system == "servicenow":
            return {"due_date": due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        return {}

    def _level_fields(self, level: str, context: EscalationContext) -> Fields:
        settings = self.config
        fields: Fields = {}
        priority = settings.level_priority.get(level)
        if priority is not None and settings.priority_map is not None:
            fields.update(self._priority_fields(priority))
        tag = settings.level_tag.replace("{level}", level)
        if settings.system == "zendesk":
            fields["additional_tags"] = [tag]
        elif settings.system == "jira":
            fields["update"] = {"labels": [{"add": tag}]}
        else:
            if settings.level_field is not None:
                fields[settings.level_field] = level
            fields["work_notes"] = (
                f"Support level raised to {level}: {context.metric} at {context.threshold} "
                f"(escalation plan {context.plan}, {context.ruleset})."
            )
        return fields

    # -- how to write it ----------------------------------------------------

    def _update(self, ticket_id: str, fields: Fields) -> None:
        settings = self.config
        key = quote(ticket_id, safe="")
        if settings.system == "zendesk":
            method, path, body = "PUT", f"/api/v2/tickets/{key}.json", {"ticket": fields}
        elif settings.system == "jira":
            update = fields.pop("update", None)
            method, path = "PUT", f"/rest/api/3/issue/{key}"
            body = {"fields": fields} | ({"update": update} if update else {})
        else:
            method, path, body = "PATCH", f"/api/now/table/incident/{key}", fields
        url = str(settings.base_url).rstrip("/") + path
        with http_client(settings.timeout, self._auth) as client:
            request = client.build_request(
                method, url, json=body, headers={"Accept": "application/json"}
            )
            record = {"plugin": PLUGIN, "method": method, "url": url, "body": body}
            settings.deliver(lambda: send_http(client, request), record)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _lookup(mapping: Mapping[str, Any], name: str, where: str) -> Any:
    try:
        return mapping[name]
    except KeyError:
        raise WriteBackError(f"{name!r} is not in {where}") from None
