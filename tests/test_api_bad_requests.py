"""Bad requests: each gets the right status and a clear message, and nothing stored changes.

One app per database (SQLite, then the throwaway PostgreSQL server) serves
every case in turn; before and after each bad request the whole database is
read back, so a refusal that leaves a half-stored event, a moved outbox row
or a touched ticket fails its case. A good request after all of them shows
the refusals left the service working.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from slaengine.api import MAX_BODY_BYTES, SlaApp, create_app
from slaengine.database import metadata
from slaengine.store import SqlStore
from slaengine.tenancy import create_token
from tests.conftest import RULESETS
from tests.postgres import PostgresCluster

CREATED = {
    "event_id": "e1",
    "type": "created",
    "at": "2026-11-23T10:00:00+08:00",
    "fields": {"contract": "CN-LOTUS-RETAIL-2026", "severity": "serious"},
}
REPLY = {"event_id": "e2", "type": "agent_replied", "at": "2026-11-23T10:20:00+08:00"}
EVENTS = "/v1/tickets/INC-1/events"


@dataclass
class Api:
    client: TestClient
    sla: SlaApp
    tokens: dict[str, str]

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tenant]}"}

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order."""
        with self.sla.store.engine.connect() as conn:
            return {
                table.name: sorted(
                    (tuple(map(repr, row)) for row in conn.execute(sa.select(table))),
                )
                for table in metadata.sorted_tables
            }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """acme's ticket INC-1 created; tenant beta has nothing."""
    tmp = tmp_path_factory.mktemp("bad-requests")
    cluster: PostgresCluster | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'sla.db'}"
    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.create_database("bad_requests")
    rulesets_b = tmp / "rulesets-b"
    shutil.copytree(RULESETS, rulesets_b)
    store = SqlStore.open(url)
    sla = SlaApp(store, {"acme": RULESETS, "beta": rulesets_b})
    tokens = {t: create_token(store.engine, t, "test") for t in ("acme", "beta")}
    with TestClient(create_app(sla)) as client:
        api = Api(client, sla, tokens)
        assert client.post(EVENTS, json=CREATED, headers=api.auth()).status_code == 200
        yield api
    sla.close()
    store.engine.dispose()
    if cluster is not None:
        cluster.drop_database("bad_requests")


@dataclass(frozen=True)
class Case:
    """A bad request and the answer it must get."""

    send: Callable[[Api], Any]
    status: int
    path: str
    message: str  # a fragment the message must hold

    def __repr__(self) -> str:  # pytest ids come from the dict keys
        return f"{self.status} {self.path}"


def _chunks(size: int) -> Iterator[bytes]:
    # No Content-Length: the body's real size must be checked, not the header.
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


CASES: dict[str, Case] = {
    "malformed JSON": Case(
        lambda a: a.client.post(EVENTS, content=b'{"event_id": "e3",', headers=a.auth()),
        400,
        "body",
        "malformed JSON",
    ),
    "not UTF-8": Case(
        lambda a: a.client.post(EVENTS, content=b'{"a": "\xff"}', headers=a.auth()),
        400,
        "body",
        "malformed JSON",
    ),
    "an event that is not an object": Case(
        lambda a: a.client.post(EVENTS, json="created", headers=a.auth()),
        422,
        "",
        "an event must be a JSON object, not str",
    ),
    "wrong type: type is a number": Case(
        lambda a: a.client.post(EVENTS, json={**REPLY, "type": 7}, headers=a.auth()),
        422,
        "type",
        "valid string",
    ),
    "wrong type: fields is a list": Case(
        lambda a: a.client.post(EVENTS, json={**REPLY, "fields": [1, 2]}, headers=a.auth()),
        422,
        "fields",
        "valid dictionary",
    ),
    "wrong type: at is not an instant": Case(
        lambda a: a.client.post(EVENTS, json={**REPLY, "at": "soon"}, headers=a.auth()),
        422,
        "at",
        "datetime",
    ),
    "missing event id": Case(
        lambda a: a.client.post(
            EVENTS, json={k: v for k, v in REPLY.items() if k != "event_id"}, headers=a.auth()
        ),
        422,
        "event_id",
        "required field is missing",
    ),
    "unknown top-level field": Case(
        lambda a: a.client.post(EVENTS, json={**REPLY, "severity": "urgent"}, headers=a.auth()),
        422,
        "severity",
        "put extra ticket-system fields under 'fields'",
    ),
    "event for another ticket than the URL's": Case(
        lambda a: a.client.post(EVENTS, json={**REPLY, "ticket_id": "INC-2"}, headers=a.auth()),
        422,
        "ticket_id",
        "INC-2",
    ),
    "naive instant in an event": Case(
        lambda a: a.client.post(
            EVENTS, json={**REPLY, "at": "2026-11-23T10:20:00"}, headers=a.auth()
        ),
        422,
        "at",
        "has no timezone",
    ),
    "naive instant in a batch's second event": Case(
        lambda a: a.client.post(
            EVENTS,
            json=[REPLY, {**REPLY, "event_id": "e3", "at": "2026-11-23T10:30:00"}],
            headers=a.auth(),
        ),
        422,
        "[1].at",
        "has no timezone",
    ),
    "event before the ticket was created": Case(
        lambda a: a.client.post(
            EVENTS, json={**REPLY, "at": "2026-11-23T09:00:00+08:00"}, headers=a.auth()
        ),
        422,
        "event e2",
        "happens before the ticket's creation",
    ),
    "reused event id with other content": Case(
        lambda a: a.client.post(
            EVENTS, json={**CREATED, "fields": {"severity": "urgent"}}, headers=a.auth()
        ),
        422,
        "e1",
        "different content",
    ),
    "naive instant in the query": Case(
        lambda a: a.client.get(
            "/v1/tickets/INC-1/sla", params={"at": "2026-11-23T10:30:00"}, headers=a.auth()
        ),
        400,
        "query.at",
        "has no timezone",
    ),
    "naive work-queue bound": Case(
        lambda a: a.client.get(
            "/v1/tickets", params={"breaching_before": "2026-11-24T00:00:00"}, headers=a.auth()
        ),
        400,
        "query.breaching_before",
        "has no timezone",
    ),
    "wrong type in the query": Case(
        lambda a: a.client.get(
            "/v1/tickets",
            params={"breaching_before": "2026-11-24T00:00:00Z", "limit": "many"},
            headers=a.auth(),
        ),
        422,
        "query.limit",
        "valid integer",
    ),
    "unknown ticket": Case(
        lambda a: a.client.get("/v1/tickets/NOPE/sla", headers=a.auth()),
        404,
        "ticket_id",
        "unknown ticket 'NOPE'",
    ),
    "event for an unknown ticket that is not its creation": Case(
        lambda a: a.client.post("/v1/tickets/NOPE/events", json=REPLY, headers=a.auth()),
        422,
        "ticket NOPE",
        "ticket NOPE has no created event",
    ),
    "unknown intake source": Case(
        lambda a: a.client.post("/v1/intake/nosuch", json={"id": 1}, headers=a.auth()),
        404,
        "source",
        "no intake plugin accepts source 'nosuch'",
    ),
    "oversize body by its Content-Length": Case(
        lambda a: a.client.post(EVENTS, content=b" " * (MAX_BODY_BYTES + 1), headers=a.auth()),
        413,
        "body",
        f"over {MAX_BODY_BYTES} bytes",
    ),
    "oversize body sent in chunks": Case(
        lambda a: a.client.post(EVENTS, content=_chunks(MAX_BODY_BYTES + 1), headers=a.auth()),
        413,
        "body",
        f"over {MAX_BODY_BYTES} bytes",
    ),
    "no token": Case(
        lambda a: a.client.post(EVENTS, json=REPLY),
        401,
        "headers.authorization",
        "missing bearer token",
    ),
    "wrong token": Case(
        lambda a: a.client.post(EVENTS, json=REPLY, headers={"Authorization": "Bearer sla_nope"}),
        401,
        "headers.authorization",
        "unknown token",
    ),
    "another scheme than Bearer": Case(
        lambda a: a.client.post(
            EVENTS, json=REPLY, headers={"Authorization": f"Basic {a.tokens['acme']}"}
        ),
        401,
        "headers.authorization",
        "missing bearer token",
    ),
    "another tenant reads the ticket": Case(
        lambda a: a.client.get("/v1/tickets/INC-1/sla", headers=a.auth("beta")),
        404,
        "ticket_id",
        "unknown ticket 'INC-1'",
    ),
    "another tenant posts to the ticket": Case(
        lambda a: a.client.post(EVENTS, json=REPLY, headers=a.auth("beta")),
        422,
        "ticket INC-1",
        "ticket INC-1 has no created event",  # beta's view: no such ticket
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_a_bad_request_is_refused_clearly_and_changes_nothing(api: Api, name: str) -> None:
    case = CASES[name]
    before = api.snapshot()
    response = case.send(api)
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert error["path"] == case.path
    assert case.message in error["message"]
    assert error["message"].strip(), "an error must say what is wrong"
    assert api.snapshot() == before


def test_the_service_still_works_after_the_refusals(api: Api) -> None:
    """Run after the cases: a refused request leaves no half-state behind (nor in caches)."""
    before = api.snapshot()
    reply = api.client.post(EVENTS, json=REPLY, headers=api.auth())
    assert reply.status_code == 200, reply.text
    assert api.snapshot() != before  # the snapshot does see a stored change
    answer = api.client.post(EVENTS, json=REPLY, headers=api.auth())
    assert answer.json() == reply.json()  # a retry of the same event
    events = api.sla.tenant("acme").service.store.events("INC-1")
    assert [e.event_id for e in events] == ["e1", "e2"]
    assert api.sla.tenant("beta").service.store.events("INC-1") == []
