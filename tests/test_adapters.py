"""Intake adapters: Zendesk, Jira, ServiceNow and generic JSON in; tickets and events out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from slaengine.clock import TicketClock
from slaengine.errors import SignatureError, TicketError
from slaengine.intake import Intake
from slaengine.plugins import PluginError, PluginHost
from slaengine_plugins.generic import GenericAdapter
from slaengine_plugins.jira import JiraAdapter
from slaengine_plugins.servicenow import ServiceNowAdapter
from slaengine_plugins.zendesk import ZendeskAdapter

PAYLOADS = Path(__file__).parent / "payloads"
LOTUS = "CN-LOTUS-RETAIL-2026"
SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # Zendesk's documented example secret
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"

ZENDESK = {"contract_map": {509974: LOTUS}, "custom_fields": {27642: "region"}}
JIRA = {"contract_map": {"SUP": LOTUS}, "custom_fields": {"customfield_10042": "region"}}
SERVICENOW = {
    "contract_map": {"31bea3d53790200044e0bfc8bcbe5dec": LOTUS},
    "custom_fields": {"u_region": "region"},
}
GENERIC_YAML = """\
source: acme-desk
fields:
  id: data.ticket.number
  created_at: data.ticket.opened
  severity: data.ticket.level
  status: data.ticket.state
  contract: data.customer.account
  channel: data.ticket.via
  tags: data.ticket.labels
  at: occurred_at
  event_id: delivery
  public: data.comment.public
event_type: event
event_map: {ticket.opened: created, comment.added: agent_replied}
severity_map: {P1: urgent, P2: serious, P3: general, P4: consultation}
contract_map: {lotus-retail: CN-LOTUS-RETAIL-2026}
channel_map: {portal: web, mail: email}
custom_fields: {data.ticket.region: region, data.ticket.title: subject}
"""


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def host() -> Iterator[PluginHost]:
    host = PluginHost(entry_points=False)
    yield host
    host.close()


def zendesk(host: PluginHost, **config: Any) -> ZendeskAdapter:
    adapter = ZendeskAdapter()
    host.register(adapter, "zendesk", {**ZENDESK, **config})
    return adapter


def jira(host: PluginHost, **config: Any) -> JiraAdapter:
    adapter = JiraAdapter()
    host.register(adapter, "jira", {**JIRA, **config})
    return adapter


def servicenow(host: PluginHost, **config: Any) -> ServiceNowAdapter:
    adapter = ServiceNowAdapter()
    host.register(adapter, "servicenow", {**SERVICENOW, **config})
    return adapter


def generic(host: PluginHost, text: str = GENERIC_YAML) -> GenericAdapter:
    adapter = GenericAdapter()
    host.register(adapter, "generic", yaml.safe_load(text))
    return adapter


def intake(
    host: PluginHost, source: str, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Intake:
    result = host.first("slaengine_intake", source=source, payload=payload, headers=headers or {})
    assert not host.failures, host.failures
    assert isinstance(result, Intake)
    return result


def refused(adapter: Any, source: str, payload: dict[str, Any]) -> TicketError:
    with pytest.raises(TicketError) as caught:
        adapter.slaengine_intake(source=source, payload=payload, headers={})
    return caught.value


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ----------------------------------------------------------------- zendesk


def test_zendesk_new_ticket_gives_the_ticket_and_a_created_event_at_its_creation(host):
    zendesk(host)
    result = intake(host, "zendesk", load("zendesk_ticket_new"))
    assert result.source == "zendesk"
    assert result.external_id == "35437"
    assert result.ticket is not None
    [event] = result.events
    assert (event.type, event.ticket_id, event.at) == ("created", "35437", at("2026-11-23T01:00Z"))
    assert event.event_id == "zendesk:35437:created"
    assert event.fields["severity"] == "urgent"
    assert event.fields["contract"] == LOTUS


def test_zendesk_ticket_maps_each_field(host):
    zendesk(host)
    ticket = intake(host, "zendesk", load("zendesk_ticket_new")).ticket
    assert ticket.id == "35437"
    assert ticket.created_at == at("2026-11-23T01:00:00+00:00")
    assert ticket.severity == "urgent"
    assert ticket.status == "open"
    assert ticket.contract == LOTUS
    assert ticket.channel == "email"
    assert ticket.category == "incident"
    assert ticket.tags == ("pos", "payments")
    assert ticket.fields == {"subject": "POS terminals cannot take payments", "region": "cn-east"}


def test_zendesk_update_gives_an_updated_event_at_updated_at_with_the_current_fields(host):
    zendesk(host)
    result = intake(host, "zendesk", load("zendesk_ticket_updated"))
    # The snapshot's ticket comes along, for a service that first sees the ticket now.
    assert (result.ticket.id, result.ticket.created_at) == ("35436", at("2026-11-23T01:00Z"))
    [event] = result.events
    assert event.type == "updated"
    assert event.at == at("2026-11-23T01:05:12Z")
    assert event.event_id == "zendesk:35436:2026-11-23T01:05:12Z"
    assert event.fields == {
        "severity": "serious",
        "contract": LOTUS,
        "channel": "email",
        "category": "incident",
        "status": "open",
        "tags": ["checkout", "vip"],
        "fields": {"subject": "Checkout fails with error 502", "region": "eu-west"},
    }


def test_zendesk_solved_ticket_also_gives_a_resolved_event(host):
    zendesk(host)
    payload = load("zendesk_ticket_updated")
    payload["ticket"]["status"] = "solved"
    updated, resolved = intake(host, "zendesk", payload).events
    assert updated.fields["status"] == "resolved"
    assert (resolved.type, resolved.at) == ("resolved", updated.at)


@pytest.mark.parametrize(
    ("priority", "severity"),
    [("urgent", "urgent"), ("high", "serious"), ("normal", "general"), ("low", "consultation")],
)
def test_zendesk_priority_maps_to_our_severity(host, priority, severity):
    zendesk(host)
    payload = load("zendesk_ticket_new")
    payload["ticket"]["priority"] = priority
    assert intake(host, "zendesk", payload).ticket.severity == severity


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("new", "open"),
        ("open", "open"),
        ("pending", "pending_customer"),
        ("hold", "on_hold"),
        ("solved", "resolved"),
        ("closed", "closed"),
    ],
)
def test_zendesk_status_maps_to_ours(host, status, ours):
    zendesk(host)
    payload = load("zendesk_ticket_new")
    payload["ticket"]["status"] = status
    assert intake(host, "zendesk", payload).ticket.status == ours


@pytest.mark.parametrize(
    ("channel", "ours"),
    [("mail", "email"), (4, "email"), ("web", "web"), (29, "chat"), ("voice", "phone")],
)
def test_zendesk_via_channel_as_type_or_id_maps_to_our_channel(host, channel, ours):
    zendesk(host)
    payload = load("zendesk_ticket_new")
    payload["ticket"]["via"]["channel"] = channel
    assert intake(host, "zendesk", payload).ticket.channel == ours


def test_zendesk_channel_not_in_the_map_leaves_channel_unset(host):
    zendesk(host)
    payload = load("zendesk_ticket_new")
    payload["ticket"]["via"]["channel"] = "api"
    assert intake(host, "zendesk", payload).ticket.channel is None


def test_a_configured_severity_map_replaces_the_default(host):
    zendesk(host, severity_map={"urgent": "serious"})
    assert intake(host, "zendesk", load("zendesk_ticket_new")).ticket.severity == "serious"
    payload = load("zendesk_ticket_new")
    payload["ticket"]["priority"] = "high"
    error = refused(host.pm.get_plugin("zendesk"), "zendesk", payload)
    assert error.path == "ticket.priority"
    assert "'high' is not in severity_map" in error.message


def test_zendesk_ticket_without_priority_is_refused_unless_a_default_severity_is_set(host):
    payload = load("zendesk_ticket_new")
    payload["ticket"]["priority"] = None
    error = refused(zendesk(host), "zendesk", payload)
    assert error.path == "ticket.priority"
    adapter = ZendeskAdapter()
    adapter.slaengine_configure({"default_severity": "general"})
    result = adapter.slaengine_intake(source="zendesk", payload=payload, headers={})
    assert result.ticket.severity == "general"


def test_zendesk_unknown_status_is_refused_naming_the_path(host):
    payload = load("zendesk_ticket_new")
    payload["ticket"]["status"] = "deleted"
    error = refused(zendesk(host), "zendesk", payload)
    assert error.path == "ticket.status"
    assert "'deleted' is not in status_map" in error.message


def test_zendesk_payload_without_a_ticket_object_is_refused(host):
    error = refused(zendesk(host), "zendesk", {"id": 35437})
    assert (error.path, error.message) == ("ticket", "required field is missing")


def test_zendesk_unparseable_created_at_is_refused_naming_the_path(host):
    payload = load("zendesk_ticket_new")
    payload["ticket"]["created_at"] = "May 18, 2014"
    assert refused(zendesk(host), "zendesk", payload).path == "ticket.created_at"


def test_zendesk_malformed_custom_field_is_refused_naming_its_index(host):
    payload = load("zendesk_ticket_new")
    payload["ticket"]["custom_fields"][1] = {"value": "x"}
    assert refused(zendesk(host), "zendesk", payload).path == "ticket.custom_fields.1.id"


def test_an_adapter_answers_none_for_another_source(host):
    zendesk(host)
    assert host.first("slaengine_intake", source="jira", payload={}, headers={}) is None


def test_a_refused_payload_is_recorded_as_the_adapters_failure_by_the_host(host):
    zendesk(host)
    assert host.first("slaengine_intake", source="zendesk", payload={}, headers={}) is None
    [failure] = host.failures
    assert failure.plugin == "zendesk"
    assert "ticket: required field is missing" in failure.error


def test_an_unknown_config_key_is_refused(host):
    with pytest.raises(PluginError, match="severity_mapping"):
        host.register(ZendeskAdapter(), "zendesk", {"severity_mapping": {}})


# ------------------------------------------------------ zendesk event webhooks


def status_changed(previous: str, current: str) -> dict[str, Any]:
    """A ``ticket.status_changed`` event webhook of the ticket created in the sample."""
    payload = load("zendesk_event_ticket_created")
    payload.update(
        type="zen:event-type:ticket.status_changed",
        id="0b4c1f7e-5d2a-4c11-9a6e-2f1d3c4b5a69",
        event={"current": current, "previous": previous},
    )
    payload["detail"].update(status=current, updated_at="2026-11-23T03:00:00Z")
    return payload


def test_zendesk_ticket_created_event_gives_the_ticket_read_from_its_detail(host):
    zendesk(host)
    result = intake(host, "zendesk", load("zendesk_event_ticket_created"))
    ticket = result.ticket
    assert (ticket.id, ticket.created_at) == ("35438", at("2026-11-23T01:00:00Z"))
    # The event webhooks spell priority, status and type in capitals.
    assert (ticket.severity, ticket.status, ticket.category) == ("serious", "open", "incident")
    assert (ticket.contract, ticket.channel) == (LOTUS, "web")
    [event] = result.events
    assert (event.type, event.event_id) == ("created", "zendesk:35438:created")


def test_zendesk_status_changed_to_solved_gives_updated_and_resolved_at_updated_at(host):
    zendesk(host)
    result = intake(host, "zendesk", status_changed("OPEN", "SOLVED"))
    assert result.ticket.status == "resolved"
    updated, resolved = result.events
    assert (updated.type, updated.fields["status"]) == ("updated", "resolved")
    assert updated.event_id == "zendesk:35438:2026-11-23T03:00:00Z"
    assert (resolved.type, resolved.at) == ("resolved", at("2026-11-23T03:00:00Z"))


def test_zendesk_status_changed_out_of_solved_gives_a_reopened_event_first(host):
    zendesk(host)
    reopened, updated = intake(host, "zendesk", status_changed("SOLVED", "OPEN")).events
    assert (reopened.type, reopened.at) == ("reopened", at("2026-11-23T03:00:00Z"))
    assert (updated.type, updated.fields["status"]) == ("updated", "open")


def test_zendesk_ticket_and_event_webhook_of_one_moment_share_the_event_id(host):
    zendesk(host)
    payload = load("zendesk_ticket_new")
    payload["ticket"]["id"] = 35438
    from_ticket = intake(host, "zendesk", payload).events[0]
    from_event = intake(host, "zendesk", load("zendesk_event_ticket_created")).events[0]
    assert from_ticket.event_id == from_event.event_id == "zendesk:35438:created"


def test_zendesk_event_of_another_domain_is_refused_naming_the_type(host):
    payload = load("zendesk_event_ticket_created")
    payload["type"] = "zen:event-type:user.created"
    error = refused(zendesk(host), "zendesk", payload)
    assert error.path == "type"
    assert "is not a ticket event" in error.message


def test_zendesk_event_without_detail_is_refused_naming_it(host):
    payload = load("zendesk_event_ticket_created")
    del payload["detail"]
    assert refused(zendesk(host), "zendesk", payload).path == "detail"


# --------------------------------------------------------- zendesk signatures


def zendesk_headers(body: bytes, signed_at: datetime, secret: str = SECRET) -> dict[str, str]:
    stamp = signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def test_zendesk_signature_of_timestamp_and_body_is_accepted(host):
    adapter = zendesk(host, secret=SECRET)
    body = (PAYLOADS / "zendesk_ticket_new.json").read_bytes()
    headers = {k.lower(): v for k, v in zendesk_headers(body, datetime.now(UTC)).items()}
    adapter.verify(headers, body)  # header names are compared without case


def test_zendesk_signature_with_another_secret_is_refused(host):
    adapter = zendesk(host, secret=SECRET)
    body = (PAYLOADS / "zendesk_ticket_new.json").read_bytes()
    headers = zendesk_headers(body, datetime.now(UTC), secret="not-the-secret")
    with pytest.raises(SignatureError, match="signature does not match") as caught:
        adapter.verify(headers, body)
    assert caught.value.path == "headers.X-Zendesk-Webhook-Signature"


def test_zendesk_signature_of_a_changed_body_is_refused(host):
    adapter = zendesk(host, secret=SECRET)
    body = (PAYLOADS / "zendesk_ticket_new.json").read_bytes()
    headers = zendesk_headers(body, datetime.now(UTC))
    with pytest.raises(TicketError, match="signature does not match"):
        adapter.verify(headers, body.replace(b'"urgent"', b'"low"'))


def test_zendesk_signature_with_a_stale_timestamp_is_refused(host):
    adapter = zendesk(host, secret=SECRET, max_age=300)
    body = (PAYLOADS / "zendesk_ticket_new.json").read_bytes()
    headers = zendesk_headers(body, datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(TicketError, match="more than max_age") as caught:
        adapter.verify(headers, body)
    assert caught.value.path == "headers.X-Zendesk-Webhook-Signature-Timestamp"


def test_zendesk_request_without_a_signature_is_refused_when_a_secret_is_set(host):
    adapter = zendesk(host, secret=SECRET)
    with pytest.raises(SignatureError) as caught:
        adapter.verify({}, b"{}")
    assert caught.value.path == "headers.X-Zendesk-Webhook-Signature"


def test_zendesk_timestamp_that_is_not_an_instant_is_a_signature_error(host):
    adapter = zendesk(host, secret=SECRET)
    headers = {**zendesk_headers(b"{}", datetime.now(UTC)), TIMESTAMP: "yesterday"}
    with pytest.raises(SignatureError) as caught:
        adapter.verify(headers, b"{}")
    assert caught.value.path == f"headers.{TIMESTAMP}"


def test_zendesk_secret_is_read_from_the_named_environment_variable(host, monkeypatch):
    monkeypatch.setenv("ZENDESK_WEBHOOK_SECRET", SECRET)
    adapter = zendesk(host, secret_env="ZENDESK_WEBHOOK_SECRET")
    body = b'{"ticket": {}}'
    adapter.verify(zendesk_headers(body, datetime.now(UTC)), body)


def test_a_secret_env_naming_an_unset_variable_is_refused(host, monkeypatch):
    monkeypatch.delenv("ZENDESK_WEBHOOK_SECRET", raising=False)
    with pytest.raises(PluginError, match="ZENDESK_WEBHOOK_SECRET is not set"):
        zendesk(host, secret_env="ZENDESK_WEBHOOK_SECRET")


def test_without_a_secret_verify_accepts_any_body(host):
    zendesk(host).verify({}, b"anything")


# -------------------------------------------------------------------- jira


def test_jira_issue_created_gives_the_ticket_and_a_created_event(host):
    jira(host)
    headers = {"X-Atlassian-Webhook-Identifier": "wh-1"}
    result = intake(host, "jira", load("jira_issue_created"), headers)
    assert result.external_id == "SUP-22"
    [event] = result.events
    assert (event.type, event.event_id) == ("created", "jira:wh-1:created")
    assert event.at == at("2026-11-23T09:00:00+08:00")
    assert event.fields["severity"] == "serious"


def test_jira_issue_maps_each_field(host):
    jira(host)
    ticket = intake(host, "jira", load("jira_issue_created")).ticket
    assert ticket.id == "SUP-22"
    assert ticket.created_at == at("2026-11-23T09:00:00+08:00")
    assert ticket.created_at.utcoffset() == timedelta(hours=8)
    assert ticket.severity == "serious"
    assert ticket.status == "open"
    assert ticket.contract == LOTUS
    assert ticket.category == "Incident"
    assert ticket.tags == ("checkout", "vip")
    assert ticket.fields == {"subject": "Checkout fails with error 502", "region": "EU-West"}


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("Highest", "urgent"),
        ("High", "serious"),
        ("Medium", "general"),
        ("Low", "consultation"),
        ("Lowest", "consultation"),
    ],
)
def test_jira_priority_name_maps_to_our_severity(host, name, severity):
    jira(host)
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["priority"]["name"] = name
    assert intake(host, "jira", payload).ticket.severity == severity


@pytest.mark.parametrize(
    ("category", "status"), [("new", "open"), ("indeterminate", "open"), ("done", "resolved")]
)
def test_jira_status_category_maps_to_our_status(host, category, status):
    jira(host)
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["status"]["statusCategory"]["key"] = category
    assert intake(host, "jira", payload).ticket.status == status


@pytest.mark.parametrize(
    ("name", "status"),
    [("Waiting for customer", "pending_customer"), ("Pending", "on_hold"), ("Closed", "closed")],
)
def test_jira_status_name_map_wins_over_the_category(host, name, status):
    jira(host)
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["status"]["name"] = name
    assert intake(host, "jira", payload).ticket.status == status


def test_jira_status_in_neither_map_is_refused_naming_the_path(host):
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["status"]["statusCategory"]["key"] = "undefined"
    error = refused(jira(host), "jira", payload)
    assert error.path == "issue.fields.status"


def test_jira_unknown_priority_is_refused_naming_the_path(host):
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["priority"]["name"] = "Blocker"
    assert refused(jira(host), "jira", payload).path == "issue.fields.priority.name"


def test_jira_created_without_an_offset_is_refused_naming_the_path(host):
    payload = load("jira_issue_created")
    payload["issue"]["fields"]["created"] = "2026-11-23T09:00:00.000"
    error = refused(jira(host), "jira", payload)
    assert (error.path, error.message) == (
        "issue.fields.created",
        "'2026-11-23T09:00:00.000' has no timezone offset",
    )


def test_jira_payload_without_webhook_event_is_refused(host):
    payload = load("jira_issue_created")
    del payload["webhookEvent"]
    assert refused(jira(host), "jira", payload).path == "webhookEvent"


def test_jira_update_gives_a_severity_and_a_status_event_at_the_delivery_timestamp(host):
    jira(host)
    headers = {"X-Atlassian-Webhook-Identifier": "wh-2"}
    result = intake(host, "jira", load("jira_issue_updated"), headers)
    assert (result.ticket.id, result.ticket.status) == ("SUP-22", "open")
    severity, status = result.events
    assert (severity.type, severity.fields) == ("severity_changed", {"severity": "serious"})
    assert (status.type, status.fields) == ("status_changed", {"status": "open"})
    assert severity.event_id == "jira:wh-2:severity_changed"
    assert status.at == datetime.fromtimestamp(1795395600, UTC)


def test_jira_event_ids_fall_back_to_issue_id_and_timestamp(host):
    jira(host)
    events = intake(host, "jira", load("jira_issue_updated")).events
    assert [e.event_id for e in events] == [
        "jira:10021:1795395600000:severity_changed",
        "jira:10021:1795395600000:status_changed",
    ]


def test_jira_transition_to_done_gives_a_resolved_event(host):
    jira(host)
    payload = load("jira_issue_updated")
    payload["issue"]["fields"]["status"] = {
        "name": "Done",
        "statusCategory": {"key": "done"},
    }
    payload["changelog"]["items"] = [
        {"fieldId": "status", "fromString": "In Progress", "toString": "Done"}
    ]
    [event] = intake(host, "jira", payload).events
    assert (event.type, event.fields) == ("resolved", {"status": "resolved"})


def test_jira_transition_out_of_done_gives_a_reopened_event(host):
    jira(host)
    payload = load("jira_issue_updated")
    payload["changelog"]["items"] = [
        {"fieldId": "status", "fromString": "Done", "toString": "In Progress"}
    ]
    [event] = intake(host, "jira", payload).events
    assert (event.type, event.fields) == ("reopened", {"status": "open"})


def test_jira_label_and_custom_field_changes_give_an_updated_event(host):
    jira(host)
    payload = load("jira_issue_updated")
    payload["changelog"]["items"] = [
        {
            "field": "labels",
            "fieldId": "labels",
            "fromString": "checkout",
            "toString": "checkout vip",
        },
        {"field": "Region", "fieldId": "customfield_10042", "toString": "EU-West"},
        {"field": "assignee", "fieldId": "assignee", "toString": "Li Wei"},
    ]
    [event] = intake(host, "jira", payload).events
    assert event.type == "updated"
    assert event.fields == {"tags": ["checkout", "vip"], "fields": {"region": "EU-West"}}


def test_jira_public_agent_comment_gives_agent_replied_with_public_true(host):
    jira(host)
    result = intake(host, "jira", load("jira_comment_created"))
    assert result.external_id == "SUP-22"
    [event] = result.events
    assert (event.type, event.fields) == ("agent_replied", {"public": True})
    assert event.at == at("2026-11-23T09:20:00+08:00")
    assert event.event_id == "jira:comment:10100"


def test_jira_internal_comment_gives_agent_replied_with_public_false(host):
    jira(host)
    payload = load("jira_comment_created")
    payload["comment"]["jsdPublic"] = False
    [event] = intake(host, "jira", payload).events
    assert (event.type, event.fields) == ("agent_replied", {"public": False})


def test_jira_comment_by_a_portal_customer_gives_customer_replied(host):
    jira(host)
    payload = load("jira_comment_created")
    payload["comment"]["author"]["accountType"] = "customer"
    [event] = intake(host, "jira", payload).events
    assert event.type == "customer_replied"


def test_jira_comment_on_an_issue_update_gives_the_same_reply_event(host):
    jira(host)
    comment = load("jira_comment_created")["comment"]
    payload = load("jira_issue_updated")
    payload["changelog"]["items"] = []
    payload["issue_event_type_name"] = "issue_commented"
    payload["comment"] = comment
    [event] = intake(host, "jira", payload).events
    assert event == intake(host, "jira", load("jira_comment_created")).events[0]


def test_jira_other_issue_events_give_no_events(host):
    jira(host)
    payload = load("jira_issue_updated")
    payload["webhookEvent"] = "jira:issue_deleted"
    assert intake(host, "jira", payload).events == []


def jira_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_jira_hub_signature_of_the_body_is_accepted(host):
    adapter = jira(host, secret=SECRET)
    body = (PAYLOADS / "jira_issue_updated.json").read_bytes()
    adapter.verify({"x-hub-signature": jira_signature(body)}, body)


def test_jira_hub_signature_with_another_secret_is_refused(host):
    adapter = jira(host, secret=SECRET)
    body = (PAYLOADS / "jira_issue_updated.json").read_bytes()
    with pytest.raises(SignatureError, match="signature does not match") as caught:
        adapter.verify({"X-Hub-Signature": jira_signature(body, "other")}, body)
    assert caught.value.path == "headers.X-Hub-Signature"


def test_jira_hub_signature_with_another_algorithm_is_refused(host):
    adapter = jira(host, secret=SECRET)
    body = b"{}"
    digest = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    with pytest.raises(TicketError, match="'sha1' signatures are not supported"):
        adapter.verify({"X-Hub-Signature": f"sha1={digest}"}, body)


# -------------------------------------------------------------- servicenow


def test_servicenow_table_api_record_gives_an_updated_event_at_sys_updated_on(host):
    servicenow(host)
    result = intake(host, "servicenow", load("servicenow_incident"))
    assert result.external_id == "9d385017c611228701d22104cc95c371"
    assert result.ticket.created_at == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    [event] = result.events
    assert (event.ticket_id, event.type) == ("9d385017c611228701d22104cc95c371", "updated")
    assert event.at == datetime(2026, 11, 23, 1, 5, 12, tzinfo=UTC)
    assert event.event_id == "servicenow:9d385017c611228701d22104cc95c371:2026-11-23 01:05:12"
    assert event.fields == {
        "severity": "serious",
        "contract": LOTUS,
        "channel": "email",
        "category": "software",
        "status": "pending_customer",
        "tags": [],
        "fields": {
            "number": "INC0010001",
            "subject": "Checkout fails with error 502",
            "region": "eu-west",
        },
    }


def test_servicenow_new_bare_record_gives_the_ticket_created_at_sys_created_on_in_utc(host):
    servicenow(host)
    result = intake(host, "servicenow", load("servicenow_incident_new"))
    ticket = result.ticket
    assert ticket.id == "a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"  # the sys_id: write-back's record key
    assert ticket.fields["number"] == "INC0010002"
    assert ticket.created_at == at("2026-11-23T10:15:00+08:00")
    assert (ticket.severity, ticket.status, ticket.channel) == ("general", "open", "phone")
    assert ticket.contract == LOTUS  # the reference given as a plain sys_id
    [event] = result.events
    assert event.event_id == "servicenow:a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6:created"


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("1", "urgent"),
        ("2", "serious"),
        ("3", "general"),
        ("4", "consultation"),
        ("5", "consultation"),
    ],
)
def test_servicenow_priority_maps_to_our_severity(host, priority, severity):
    servicenow(host)
    payload = load("servicenow_incident_new")
    payload["priority"] = priority
    assert intake(host, "servicenow", payload).ticket.severity == severity


@pytest.mark.parametrize(
    ("state", "hold_reason", "status"),
    [
        ("1", "", "open"),
        ("2", "", "open"),
        ("3", "1", "pending_customer"),
        ("3", "4", "on_hold"),
        ("6", "", "resolved"),
        ("7", "", "closed"),
        ("8", "", "closed"),
    ],
)
def test_servicenow_state_and_hold_reason_map_to_our_status(host, state, hold_reason, status):
    servicenow(host)
    payload = load("servicenow_incident_new")
    payload.update(state=state, hold_reason=hold_reason)
    assert intake(host, "servicenow", payload).ticket.status == status


def test_servicenow_resolved_incident_also_gives_a_resolved_event_at_resolved_at(host):
    servicenow(host)
    payload = load("servicenow_incident")
    payload["result"].update(state="6", hold_reason="", resolved_at="2026-11-23 01:04:00")
    updated, resolved = intake(host, "servicenow", payload).events
    assert updated.type == "updated"
    assert (resolved.type, resolved.at) == ("resolved", datetime(2026, 11, 23, 1, 4, tzinfo=UTC))


def test_servicenow_choice_given_as_display_and_value_is_read_by_value(host):
    servicenow(host)
    payload = load("servicenow_incident_new")
    payload["priority"] = {"display_value": "1 - Critical", "value": "1"}
    assert intake(host, "servicenow", payload).ticket.severity == "urgent"


def test_servicenow_map_keys_written_as_yaml_numbers_match(host):
    servicenow(host, **yaml.safe_load("severity_map: {1: serious, 2: serious, 3: serious}"))
    assert intake(host, "servicenow", load("servicenow_incident_new")).ticket.severity == "serious"


def test_servicenow_display_date_is_refused_naming_the_path(host):
    payload = load("servicenow_incident")
    payload["result"]["sys_created_on"] = "23/11/2026 09:00:00"
    error = refused(servicenow(host), "servicenow", payload)
    assert error.path == "result.sys_created_on"


def test_servicenow_record_without_state_is_refused_naming_the_path(host):
    payload = load("servicenow_incident_new")
    payload["state"] = ""
    assert refused(servicenow(host), "servicenow", payload).path == "state"


def test_servicenow_record_without_sys_id_is_refused_naming_the_path(host):
    payload = load("servicenow_incident")
    del payload["result"]["sys_id"]
    assert refused(servicenow(host), "servicenow", payload).path == "result.sys_id"


def test_servicenow_list_of_records_is_refused(host):
    payload = {"result": [load("servicenow_incident_new")]}
    assert refused(servicenow(host), "servicenow", payload).path == "result"


# ----------------------------------------------------------------- generic


def test_generic_adapter_reads_a_ticket_through_the_yaml_paths(host):
    generic(host)
    result = intake(host, "acme-desk", load("generic_ticket_opened"))
    ticket = result.ticket
    assert ticket.id == "AD-4711"
    assert ticket.created_at == at("2026-11-23T10:15:00+08:00")
    assert (ticket.severity, ticket.status, ticket.channel) == ("serious", "open", "web")
    assert ticket.contract == LOTUS
    assert ticket.tags == ("pos", "sync")
    assert ticket.fields == {"region": "cn-east", "subject": "POS sync delayed"}
    [event] = result.events
    assert (event.type, event.event_id) == ("created", "d-7f3a9c")


def test_generic_event_type_gives_that_event_at_its_instant(host):
    generic(host)
    [event] = intake(host, "acme-desk", load("generic_comment_added")).events
    assert (event.ticket_id, event.type, event.event_id) == ("AD-4711", "agent_replied", "d-7f3b02")
    assert event.at == at("2026-11-23T10:40:00+08:00")
    assert event.fields == {"public": True}


def test_generic_missing_required_path_is_refused_naming_it(host):
    payload = load("generic_ticket_opened")
    del payload["data"]["ticket"]["level"]
    error = refused(generic(host), "acme-desk", payload)
    assert error.path == "data.ticket.level"


def test_generic_event_type_not_in_event_map_is_refused_naming_the_path(host):
    payload = load("generic_comment_added")
    payload["event"] = "comment.deleted"
    error = refused(generic(host), "acme-desk", payload)
    assert (error.path, error.message.split(" (")[0]) == (
        "event",
        "'comment.deleted' is not in event_map",
    )


def test_generic_without_a_timezone_refuses_a_date_without_offset(host):
    payload = load("generic_ticket_opened")
    payload["data"]["ticket"]["opened"] = "2026-11-23 10:15:00"
    assert refused(generic(host), "acme-desk", payload).path == "data.ticket.opened"


def test_generic_configured_timezone_places_a_date_without_offset(host):
    generic(host, GENERIC_YAML + "timezone: Asia/Shanghai\n")
    payload = load("generic_ticket_opened")
    payload["data"]["ticket"]["opened"] = "2026-11-23 10:15:00"
    assert intake(host, "acme-desk", payload).ticket.created_at == at("2026-11-23T02:15:00Z")


def test_generic_config_without_a_required_path_is_refused(host):
    with pytest.raises(PluginError, match="give the path of severity"):
        generic(host, "source: acme-desk\nfields: {id: n, created_at: t}\n")


def test_generic_without_configuration_answers_no_source(host):
    host.register(GenericAdapter(), "generic", {})
    assert host.first("slaengine_intake", source="generic", payload={}, headers={}) is None


# ------------------------------------------------------- into the engine


@pytest.mark.parametrize(
    ("register", "source", "payload"),
    [
        (zendesk, "zendesk", "zendesk_ticket_new"),
        (jira, "jira", "jira_issue_created"),
        (servicenow, "servicenow", "servicenow_incident_new"),
        (generic, "acme-desk", "generic_ticket_opened"),
    ],
)
def test_the_intake_ticket_is_decided_by_the_engine(host, shipped, register, source, payload):
    register(host)
    ticket = intake(host, source, load(payload)).ticket
    decision = shipped.evaluate(ticket)
    assert (decision.ticket_id, decision.ruleset) == (ticket.id, "standard-support")


def test_jira_events_drive_the_ticket_clock_to_a_met_first_response(host, shipped):
    jira(host)
    events = [
        *intake(host, "jira", load("jira_issue_created")).events,
        *intake(host, "jira", load("jira_issue_updated")).events,
        *intake(host, "jira", load("jira_comment_created")).events,
    ]
    clock = TicketClock(shipped).apply_all(events)
    status = clock.status(at("2026-11-23T10:00:00+08:00"))
    assert status["first_response"].state == "met"
    assert status["resolution"].state == "running"
