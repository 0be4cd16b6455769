"""POST /v1/intake/{source}: ticket-system payloads through the HTTP API into the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from slaengine.api import SlaApp, create_app
from slaengine.plugins import PluginHost
from slaengine.store import SqlStore
from slaengine.tenancy import create_token
from slaengine_plugins.generic import GenericAdapter
from slaengine_plugins.jira import JiraAdapter
from slaengine_plugins.servicenow import ServiceNowAdapter
from slaengine_plugins.zendesk import ZendeskAdapter
from tests.conftest import RULESETS
from tests.test_adapters import (
    GENERIC_YAML,
    JIRA,
    PAYLOADS,
    SECRET,
    SERVICENOW,
    ZENDESK,
    jira_signature,
    zendesk_headers,
)


@pytest.fixture
def api(tmp_path) -> Iterator[TestClient]:
    host = PluginHost(entry_points=False)
    host.register(ZendeskAdapter(), "zendesk", {**ZENDESK, "secret": SECRET})
    host.register(JiraAdapter(), "jira", {**JIRA, "secret": SECRET})
    host.register(ServiceNowAdapter(), "servicenow", SERVICENOW)
    host.register(GenericAdapter(), "generic", yaml.safe_load(GENERIC_YAML))
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    sla = SlaApp(store, {"acme": RULESETS}, host)
    client = TestClient(create_app(sla))
    client.token = create_token(store.engine, "acme", "test")
    client.store = sla.tenant("acme").service.store
    yield client
    sla.close()


def body_of(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def signed_zendesk(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return zendesk_headers(body, datetime.now(UTC), secret)


def signed_jira(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": jira_signature(body, secret), "X-Atlassian-Webhook-Identifier": "w1"}


def post(api: TestClient, source: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    auth = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    return api.post(f"/v1/intake/{source}", content=body, headers={**auth, **(headers or {})})


ACCEPTED = [
    ("zendesk", "zendesk_ticket_new", signed_zendesk, "35437"),
    ("zendesk", "zendesk_event_ticket_created", signed_zendesk, "35438"),
    ("jira", "jira_issue_created", signed_jira, "SUP-22"),
    ("servicenow", "servicenow_incident_new", None, "a1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"),
    ("acme-desk", "generic_ticket_opened", None, "AD-4711"),
]


@pytest.mark.parametrize(("source", "payload", "sign", "ticket_id"), ACCEPTED)
def test_an_accepted_payload_is_stored_with_its_sla_status(api, source, payload, sign, ticket_id):
    body = body_of(payload)
    response = post(api, source, body, sign(body) if sign else None)

    assert response.status_code == 200, response.json()
    assert response.json()[ticket_id]["first_response"]["state"] == "running"
    sla = api.get(f"/v1/tickets/{ticket_id}/sla", headers={"Authorization": f"Bearer {api.token}"})
    assert sla.status_code == 200
    decision = sla.json()["decision"]
    assert (decision["ticket_id"], decision["ruleset"]) == (ticket_id, "standard-support")
    assert sla.json()["metrics"]["resolution"]["due_at"] is not None
    [created] = api.store.events(ticket_id)
    assert created.type == "created"


def test_the_same_webhook_delivered_twice_is_stored_once(api):
    body = body_of("jira_issue_created")
    first = post(api, "jira", body, signed_jira(body))
    again = post(api, "jira", body, signed_jira(body))
    assert first.status_code == again.status_code == 200
    assert len(api.store.events("SUP-22")) == 1


def test_a_ticket_first_seen_after_its_creation_is_started_from_the_snapshot(api):
    body = body_of("zendesk_ticket_updated")  # updated_at later than created_at
    response = post(api, "zendesk", body, signed_zendesk(body))
    assert response.status_code == 200, response.json()
    assert [e.type for e in api.store.events("35436")] == ["created", "updated"]


def test_a_later_webhook_updates_the_stored_ticket(api):
    for name in ("jira_issue_created", "jira_comment_created"):
        body = body_of(name)
        assert post(api, "jira", body, signed_jira(body)).status_code == 200
    assert api.store.events("SUP-22")[-1].type == "agent_replied"
    statuses = json.loads(api.store.ticket("SUP-22").statuses)
    assert statuses["first_response"]["state"] == "met"


BAD_SIGNATURES = [
    ("zendesk", signed_zendesk(body_of("zendesk_ticket_new"), "not-the-secret"),
     "headers.X-Zendesk-Webhook-Signature", "signature does not match"),
    ("zendesk", {}, "headers.X-Zendesk-Webhook-Signature", "required header is missing"),
    ("jira", signed_jira(body_of("jira_issue_created"), "not-the-secret"),
     "headers.X-Hub-Signature", "signature does not match"),
]  # fmt: skip
PAYLOAD_OF = {"zendesk": "zendesk_ticket_new", "jira": "jira_issue_created"}


@pytest.mark.parametrize(("source", "headers", "path", "message"), BAD_SIGNATURES)
def test_a_bad_signature_is_refused_naming_the_header_and_nothing_is_stored(
    api, source, headers, path, message
):
    response = post(api, source, body_of(PAYLOAD_OF[source]), headers)

    assert 400 <= response.status_code < 500
    assert response.json() == {"error": {"path": path, "message": message}}
    assert api.store.outbox_rows() == []
    assert api.store.events("35437") == api.store.events("SUP-22") == []


def test_a_body_changed_after_signing_is_refused(api):
    body = body_of("zendesk_ticket_new")
    headers = signed_zendesk(body)
    response = post(api, "zendesk", body.replace(b'"urgent"', b'"low"'), headers)
    assert response.json()["error"]["message"] == "signature does not match"
    assert api.store.ticket("35437") is None


@pytest.mark.parametrize(("source", "headers", "path", "message"), BAD_SIGNATURES)
def test_a_bad_signature_is_401(api, source, headers, path, message):
    assert post(api, source, body_of(PAYLOAD_OF[source]), headers).status_code == 401


MISSING = [
    ("zendesk", "zendesk_ticket_new", ("ticket", "priority"), "ticket.priority"),
    ("jira", "jira_issue_created", ("issue", "fields", "created"), "issue.fields.created"),
    ("servicenow", "servicenow_incident", ("result", "state"), "result.state"),
    ("acme-desk", "generic_ticket_opened", ("data", "ticket", "level"), "data.ticket.level"),
]


def without(name: str, keys: tuple[str, ...]) -> bytes:
    payload = json.loads(body_of(name))
    node = payload
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return json.dumps(payload).encode()


def signed_for(source: str, body: bytes) -> dict[str, str]:
    sign = {"zendesk": signed_zendesk, "jira": signed_jira}.get(source)
    return sign(body) if sign else {}


@pytest.mark.parametrize(("source", "payload", "keys", "path"), MISSING)
def test_a_payload_missing_a_field_is_422_and_nothing_is_stored(api, source, payload, keys, path):
    body = without(payload, keys)
    response = post(api, source, body, signed_for(source, body))
    assert response.status_code == 422
    assert api.store.outbox_rows() == []


@pytest.mark.parametrize(("source", "payload", "keys", "path"), MISSING)
def test_a_payload_missing_a_field_is_422_naming_the_field_path(api, source, payload, keys, path):
    body = without(payload, keys)
    response = post(api, source, body, signed_for(source, body))
    assert response.json()["error"]["path"] == path


def test_an_unknown_source_is_refused_naming_it(api):
    response = post(api, "freshdesk", b'{"ticket": {}}')
    assert response.json()["error"] == {
        "path": "source",
        "message": "no intake plugin accepts source 'freshdesk'",
    }


def test_an_unknown_source_is_404(api):
    assert post(api, "freshdesk", b'{"ticket": {}}').status_code == 404
