"""The HTTP API: status codes, clear errors, idempotency and tenant isolation."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from slaengine.api import MAX_BODY_BYTES, SlaApp, create_app
from slaengine.store import SqlStore
from slaengine.tenancy import create_token
from tests.conftest import RULESETS

CREATED = {
    "event_id": "e1",
    "type": "created",
    "at": "2026-11-23T10:00:00+08:00",
    "fields": {"contract": "CN-LOTUS-RETAIL-2026", "severity": "serious"},
}
TICKET = {
    "id": "INC-1",
    "contract": "CN-LOTUS-RETAIL-2026",
    "severity": "serious",
    "created_at": "2026-11-23T10:00:00+08:00",
}


@pytest.fixture
def api(tmp_path):
    rulesets_b = tmp_path / "rulesets-b"
    shutil.copytree(RULESETS, rulesets_b)
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    sla = SlaApp(store, {"acme": RULESETS, "beta": rulesets_b})
    client = TestClient(create_app(sla))
    client.tokens = {t: create_token(store.engine, t, "test") for t in ("acme", "beta")}
    client.sla = sla
    client.rulesets_b = rulesets_b
    yield client
    sla.close()


def auth(api, tenant="acme"):
    return {"Authorization": f"Bearer {api.tokens[tenant]}"}


def test_health_and_readiness_need_no_token(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json()["status"] == "ready"


def test_a_missing_or_wrong_token_is_refused(api):
    assert api.post("/v1/evaluate", json=TICKET).status_code == 401
    response = api.post("/v1/evaluate", json=TICKET, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"] == {"path": "headers.authorization", "message": "unknown token"}


def test_evaluate_one_ticket_and_a_batch(api):
    one = api.post("/v1/evaluate", json=TICKET, headers=auth(api)).json()
    assert one["priority"] == "P2" and one["targets"]["first_response"]["target"] == "1h"
    many = api.post("/v1/evaluate", json=[TICKET, {**TICKET, "id": "INC-2"}], headers=auth(api))
    assert [d["ticket_id"] for d in many.json()] == ["INC-1", "INC-2"]


def test_bad_tickets_get_the_field_path(api):
    naive = api.post(
        "/v1/evaluate", json={**TICKET, "created_at": "2026-11-23T10:00:00"}, headers=auth(api)
    )
    assert naive.status_code == 422 and naive.json()["error"]["path"] == "created_at"
    wrong = api.post("/v1/evaluate", json={**TICKET, "severity": 3}, headers=auth(api))
    assert wrong.status_code == 422 and wrong.json()["error"]["path"] == "severity"


def test_malformed_json_and_oversize_bodies_are_refused(api):
    bad = api.post("/v1/evaluate", content=b'{"id":', headers=auth(api))
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["error"]["message"]
    big = api.post("/v1/evaluate", content=b" " * (MAX_BODY_BYTES + 1), headers=auth(api))
    assert big.status_code == 413


def test_posting_an_event_twice_stores_it_once(api):
    first = api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api))
    again = api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api))
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(api.sla.tenant("acme").service.store.events("INC-1")) == 1


def test_a_reused_event_id_with_other_content_is_refused_and_changes_nothing(api):
    api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api))
    changed = {**CREATED, "fields": {**CREATED["fields"], "severity": "urgent"}}
    response = api.post("/v1/tickets/INC-1/events", json=changed, headers=auth(api))
    assert response.status_code == 422
    assert "different content" in response.json()["error"]["message"]
    sla = api.get(
        "/v1/tickets/INC-1/sla", params={"at": "2026-11-23T10:30:00+08:00"}, headers=auth(api)
    ).json()
    assert sla["decision"]["priority"] == "P2"


def test_an_event_with_a_naive_instant_names_the_field(api):
    response = api.post(
        "/v1/tickets/INC-1/events", json={**CREATED, "at": "2026-11-23T10:00:00"}, headers=auth(api)
    )
    assert response.status_code == 422 and response.json()["error"]["path"] == "at"


def test_sla_of_a_ticket_and_the_work_queue(api):
    api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api))
    sla = api.get(
        "/v1/tickets/INC-1/sla", params={"at": "2026-11-23T10:30:00+08:00"}, headers=auth(api)
    ).json()
    assert sla["metrics"]["first_response"]["state"] == "running"
    due = datetime.fromisoformat(sla["metrics"]["first_response"]["due_at"])
    assert due == datetime.fromisoformat("2026-11-23T11:00:00+08:00")
    queue = api.get(
        "/v1/tickets", params={"breaching_before": "2026-11-23T12:00:00+08:00"}, headers=auth(api)
    ).json()
    assert [row["ticket_id"] for row in queue] == ["INC-1"]
    later = api.get(
        "/v1/tickets", params={"breaching_before": "2026-11-23T10:59:00+08:00"}, headers=auth(api)
    ).json()
    assert later == []


def test_an_unknown_ticket_is_404(api):
    response = api.get("/v1/tickets/NOPE/sla", headers=auth(api))
    assert response.status_code == 404


def test_a_tenant_never_sees_another_tenants_ticket(api):
    api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api, "acme"))
    assert api.get("/v1/tickets/INC-1/sla", headers=auth(api, "beta")).status_code == 404
    queue = api.get(
        "/v1/tickets",
        params={"breaching_before": "2027-01-01T00:00:00Z"},
        headers=auth(api, "beta"),
    ).json()
    assert queue == []
    # The same event id in another tenant is another event.
    assert (
        api.post(
            "/v1/tickets/INC-1/events",
            json={**CREATED, "fields": {**CREATED["fields"], "severity": "urgent"}},
            headers=auth(api, "beta"),
        ).status_code
        == 200
    )
    acme = api.get("/v1/tickets/INC-1/sla", headers=auth(api, "acme")).json()
    assert acme["decision"]["priority"] == "P2"


def test_rulesets_are_listed_and_a_broken_reload_keeps_the_working_set(api):
    before = api.get("/v1/rulesets", headers=auth(api, "beta")).json()
    path = api.rulesets_b / "standard-support" / "2.0.0.yaml"
    path.write_text(path.read_text().replace("resolution: 6h", "resolution: 6 hours"))
    response = api.post("/v1/rulesets/reload", headers=auth(api, "beta"))
    assert response.status_code == 422
    assert "2.0.0.yaml" in response.json()["error"]["message"]
    assert api.get("/v1/rulesets", headers=auth(api, "beta")).json() == before
    assert api.post("/v1/evaluate", json=TICKET, headers=auth(api, "beta")).status_code == 200


def test_a_good_reload_takes_effect_for_that_tenant_only(api):
    path = api.rulesets_b / "standard-support" / "2.0.0.yaml"
    path.write_text(path.read_text().replace("first_response: 1h,", "first_response: 45m,"))
    assert api.post("/v1/rulesets/reload", headers=auth(api, "beta")).status_code == 200
    beta = api.post("/v1/evaluate", json=TICKET, headers=auth(api, "beta")).json()
    acme = api.post("/v1/evaluate", json=TICKET, headers=auth(api, "acme")).json()
    assert beta["targets"]["first_response"]["target"] == "45m"
    assert acme["targets"]["first_response"]["target"] == "1h"


def test_another_process_takes_up_a_reload_and_only_that_tenants(api):
    # A second app on the same database: another process of serve --workers N.
    other = SlaApp(
        SqlStore.open(str(api.sla.store.engine.url)), {"acme": RULESETS, "beta": api.rulesets_b}
    )
    other_api = TestClient(create_app(other))
    try:
        path = api.rulesets_b / "standard-support" / "2.0.0.yaml"
        path.write_text(path.read_text().replace("first_response: 1h,", "first_response: 45m,"))
        assert other.follow_reloads() == []  # changed on disk, but nobody reloaded yet
        assert api.post("/v1/rulesets/reload", headers=auth(api, "beta")).status_code == 200
        assert api.sla.follow_reloads() == []  # its own reload is in force already
        assert other.follow_reloads() == ["beta"]
        assert other.follow_reloads() == []  # taken up once
        beta = other_api.post("/v1/evaluate", json=TICKET, headers=auth(api, "beta")).json()
        acme = other_api.post("/v1/evaluate", json=TICKET, headers=auth(api, "acme")).json()
        assert beta["targets"]["first_response"]["target"] == "45m"
        assert acme["targets"]["first_response"]["target"] == "1h"
        assert other.tenants["beta"].service.engine is not api.sla.tenants["beta"].service.engine
    finally:
        other.close()


def test_a_reload_that_no_longer_loads_elsewhere_keeps_that_process_working_set(api):
    other = SlaApp(
        SqlStore.open(str(api.sla.store.engine.url)), {"acme": RULESETS, "beta": api.rulesets_b}
    )
    try:
        before = other.tenants["beta"].service.engine
        assert api.post("/v1/rulesets/reload", headers=auth(api, "beta")).status_code == 200
        path = api.rulesets_b / "standard-support" / "2.0.0.yaml"  # broken on disk since
        path.write_text(path.read_text().replace("resolution: 6h", "resolution: 6 hours"))
        assert other.follow_reloads() == []
        assert other.tenants["beta"].service.engine is before
        assert other.follow_reloads() == []  # not tried again and again
    finally:
        other.close()


def test_a_refused_reload_is_not_taken_up_elsewhere(api):
    other = SlaApp(SqlStore.open(str(api.sla.store.engine.url)), {"beta": api.rulesets_b})
    try:
        path = api.rulesets_b / "standard-support" / "2.0.0.yaml"
        path.write_text(path.read_text().replace("resolution: 6h", "resolution: 6 hours"))
        assert api.post("/v1/rulesets/reload", headers=auth(api, "beta")).status_code == 422
        assert other.follow_reloads() == []
    finally:
        other.close()


def test_metrics_count_decisions_and_events(api):
    api.post("/v1/evaluate", json=TICKET, headers=auth(api))
    api.post("/v1/tickets/INC-1/events", json=CREATED, headers=auth(api))
    text = api.get("/metrics").text
    assert "slaengine_decisions_total 1.0" in text
    assert "slaengine_events_total 1.0" in text
    assert "slaengine_request_seconds_bucket" in text


def test_openapi_document_is_served(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "/v1/tickets/{ticket_id}/events" in paths and "/v1/evaluate" in paths
