"""The hot route, ``POST /v1/tickets/{id}/events``, served in front of FastAPI's stack.

It must answer exactly as a FastAPI route would: JSON errors with a field
path, a documented operation, request timing, and a fault of the service
answered as a JSON 500 (and logged) rather than a dropped connection.
"""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from slaengine.api import EVENTS_ROUTE, SlaApp, create_app
from slaengine.store import SqlStore
from slaengine.tenancy import create_token
from tests.conftest import RULESETS

CREATED = {
    "event_id": "e1",
    "type": "created",
    "at": "2026-11-23T10:00:00+08:00",
    "fields": {"contract": "CN-LOTUS-RETAIL-2026", "severity": "serious"},
}
REPLY = {"event_id": "e2", "type": "agent_replied", "at": "2026-11-23T10:20:00+08:00"}


@pytest.fixture
def api(tmp_path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    sla = SlaApp(store, {"acme": RULESETS})
    client = TestClient(create_app(sla), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {create_token(store.engine, 'acme', 'test')}"
    client.sla = sla
    yield client
    sla.close()


def test_an_event_is_answered_with_the_tickets_statuses_as_stored(api):
    response = api.post("/v1/tickets/INC-1/events", json=CREATED)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    stored = api.sla.tenant("acme").service.store.ticket("INC-1")
    assert body["ticket_id"] == "INC-1" and {"first_response", "resolution"} <= set(body["metrics"])
    assert response.text == f'{{"ticket_id":"INC-1","metrics":{stored.statuses}}}'


def test_a_list_of_events_is_applied_at_once_and_errors_name_the_item(api):
    response = api.post("/v1/tickets/INC-1/events", json=[CREATED, REPLY])
    assert response.status_code == 200
    assert len(api.sla.tenant("acme").service.store.events("INC-1")) == 2
    bad = api.post("/v1/tickets/INC-2/events", json=[CREATED, {**REPLY, "at": "soon"}])
    assert bad.status_code == 422
    assert bad.json()["error"]["path"] == "[1].at"


def test_another_method_on_the_events_path_is_refused_with_the_allowed_one(api):
    response = api.get("/v1/tickets/INC-1/events")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["message"] == "method GET not allowed; use POST"


def test_a_fault_of_the_service_is_a_json_500_and_logged(api, monkeypatch, caplog):
    async def broken(service, events):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(api.sla.ingest, "run", broken)
    with caplog.at_level(logging.ERROR, logger="slaengine.api"):
        response = api.post("/v1/tickets/INC-1/events", json=CREATED)
    assert response.status_code == 500
    assert response.json() == {
        "error": {"path": "", "message": "internal error; see the service log"}
    }
    assert "disk on fire" in caplog.text  # the cause is in the log, not in the answer


def test_the_hot_route_is_timed_under_its_route_name(api):
    api.post("/v1/tickets/INC-1/events", json=CREATED)
    text = api.get("/metrics").text
    assert f'slaengine_request_seconds_count{{route="{EVENTS_ROUTE}"}} 1.0' in text


def test_the_openapi_document_describes_the_hot_route(api):
    document = api.get("/openapi.json").json()
    operation = document["paths"][EVENTS_ROUTE]["post"]
    assert operation["parameters"][0]["name"] == "ticket_id"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Event"} in schema["anyOf"]
    event = document["components"]["schemas"]["Event"]
    assert set(event["required"]) == {"event_id", "at", "type"}
    assert "ticket_id" not in event["properties"]  # it comes from the path
