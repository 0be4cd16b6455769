"""End to end: a signed Zendesk webhook in, the decision out, routing written back to a
local HTTP receiver, escalation mail to a local SMTP server, breaches recorded and
credited.

Time is driven by calling the service's ``deliver_due(now)`` at chosen instants.
The ticket: Zendesk 35437, urgent, organization 509974 (CN-LOTUS-RETAIL-2026 on
standard-support 2.0.0), created 2026-11-23 01:00Z, so P1 on the 7x24 clock with
first_response 15m (due 01:15Z) and resolution 6h (due 07:00Z) under the
urgent-fault plan: 50% at 04:00Z, 75% at 05:30Z, 100% at 07:00Z, 100%+2h at 09:00Z.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from slaengine.api import SlaApp, create_app
from slaengine.clock import MetricStatus
from slaengine.credits import PENALTIES_FILE, compute_statements, load_penalties
from slaengine.decision import Decision
from slaengine.hookspecs import hookimpl
from slaengine.plugins import PluginHost
from slaengine.service import MAX_ATTEMPTS, SlaService
from slaengine.store import SqlStore
from slaengine.tenancy import create_token
from slaengine.ticket import Ticket
from slaengine_plugins.smtp import SmtpNotifier
from slaengine_plugins.webhook import WebhookNotifier
from slaengine_plugins.writeback import WriteBack
from slaengine_plugins.zendesk import ZendeskAdapter
from tests.conftest import RULESETS
from tests.receivers import HttpReceiver, Received, Reply, SmtpReceiver, closed_url
from tests.test_adapters import PAYLOADS, SECRET, ZENDESK, zendesk_headers

CREATED = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TICKET = "35437"
API_USER = "agent@acme.example/token"
GROUPS = {"l2-oncall": 98738, "l1-support": 98700}
RECIPIENTS = {
    "duty-manager": "duty@vendor.example",
    "support-director": "director@vendor.example",
    "customer-success-vp": "vp@vendor.example",
}


class BreachLog:
    """Records the breach hook's calls, as a penalty or reporting plugin would see them."""

    def __init__(self) -> None:
        self.breaches: list[tuple[str, str, datetime | None]] = []

    @hookimpl
    def slaengine_breach(self, ticket_id: str, status: MetricStatus) -> None:
        self.breaches.append((ticket_id, status.metric, status.breached_at))


class BrokenRouter:
    """A routing plugin whose backend is gone: it raises on every route."""

    @hookimpl
    def slaengine_route(self, ticket: Ticket, decision: Decision) -> None:
        raise RuntimeError("queue service unavailable")


class SlowAudit:
    """A decision observer that takes longer than the host's timeout."""

    @hookimpl
    def slaengine_decision(self, ticket: Ticket, decision: Decision) -> None:
        time.sleep(1.0)


@dataclass
class World:
    """The app, its tenant's service and the local receivers behind the plugins."""

    api: TestClient
    token: str
    service: SlaService
    host: PluginHost
    zendesk_api: HttpReceiver
    mail: SmtpReceiver
    breaches: BreachLog
    dead_letters: Path

    def send_webhook(self, body: bytes) -> dict:
        """POST a Zendesk webhook body, signed as Zendesk signs it, now."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            **zendesk_headers(body, datetime.now(UTC)),
        }
        response = self.api.post("/v1/intake/zendesk", content=body, headers=headers)
        assert response.status_code == 200, response.json()
        return response.json()

    def sla(self, at: datetime) -> dict:
        response = self.api.get(
            f"/v1/tickets/{TICKET}/sla",
            params={"at": at.isoformat()},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200
        return response.json()

    def outbox(self, key: str) -> dict:
        [row] = [r for r in self.service.store.outbox_rows(TICKET) if r["key"] == key]
        return row

    def failures(self) -> set[tuple[str, str, str]]:
        return {(f.plugin, f.hook, f.kind) for f in self.host.failures}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("ZENDESK_API_TOKEN", "zd-token")
    dead_letters = tmp_path / "dead-letters.jsonl"
    with HttpReceiver() as zendesk_api, SmtpReceiver() as mail:
        # Observation hooks get 0.3 s; deliveries (route, escalate) keep a long timeout.
        host = PluginHost(entry_points=False, timeout=0.3, delivery_timeout=10)
        host.register(ZendeskAdapter(), "zendesk", {**ZENDESK, "secret": SECRET})
        writeback = {
            "system": "zendesk",
            "base_url": zendesk_api.url,
            "username": API_USER,
            "token_env": "ZENDESK_API_TOKEN",
            "group_map": GROUPS,
            "priority_map": {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"},
            "backoff": 0.01,
        }
        host.register(WriteBack(), "writeback", writeback)
        smtp = {
            "host": "127.0.0.1",
            "port": mail.port,
            "sender": "sla@vendor.example",
            "recipients": RECIPIENTS,
            "backoff": 0.01,
        }
        host.register(SmtpNotifier(), "smtp", smtp)
        down = {
            "url": closed_url("/hooks/sla"),
            "secret": "s3cret",
            "retries": 0,
            "timeout": 1,
            "dead_letter": str(dead_letters),
        }
        host.register(WebhookNotifier(), "webhook-down", down)
        breaches = BreachLog()
        host.register(breaches, "breach-log")
        store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
        sla = SlaApp(store, {"acme": RULESETS}, host)
        try:
            yield World(
                api=TestClient(create_app(sla)),
                token=create_token(store.engine, "acme", "e2e"),
                service=sla.tenant("acme").service,
                host=host,
                zendesk_api=zendesk_api,
                mail=mail,
                breaches=breaches,
                dead_letters=dead_letters,
            )
        finally:
            sla.close()


def ticket_body() -> bytes:
    return (PAYLOADS / "zendesk_ticket_new.json").read_bytes()


def after(hours: float) -> datetime:
    """The instant ``hours`` after the ticket's creation (01:00Z)."""
    return CREATED + timedelta(hours=hours)


def zendesk_update(request: Received) -> dict:
    assert (request.method, request.path) == ("PUT", f"/api/v2/tickets/{TICKET}.json")
    assert request.headers["content-type"] == "application/json"
    expected = base64.b64encode(f"{API_USER}:zd-token".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    return request.json()


def test_a_zendesk_webhook_is_decided_routed_escalated_by_mail_and_its_breaches_recorded(world):
    # In: the webhook. Out: the decision and the clocks, stored.
    statuses = world.send_webhook(ticket_body())[TICKET]
    assert statuses["first_response"]["due_at"] == "2026-11-23T01:15:00Z"
    assert statuses["resolution"]["due_at"] == "2026-11-23T07:00:00Z"
    decision = world.sla(after(0.1))["decision"]
    assert decision["ruleset"] == "standard-support" and decision["version"] == "2.0.0"
    assert decision["priority"] == "P1"
    assert decision["route"] == {"queue": "duty-desk", "group": "l2-oncall", "assignee": None}
    assert decision["escalation_plan"] == "urgent-fault"

    # Routing written back to the ticket in "Zendesk".
    [routed] = world.zendesk_api.requests
    assert zendesk_update(routed) == {"ticket": {"group_id": 98738, "priority": "urgent"}}

    # 01:16Z: no first response by 01:15Z, a breach notice to the breach hook. (A round at
    # 01:15Z itself would notify too, but the clock breaches only after the due time.)
    report = world.service.deliver_due(after(0.25) + timedelta(minutes=1))
    assert report.sent == [f"breach:{TICKET}/first_response/1"]
    assert world.breaches.breaches == [(TICKET, "first_response", after(0.25))]

    # 04:00Z, 50%: the duty manager is mailed.
    world.service.deliver_due(after(3))
    assert [m.recipients for m in world.mail.mail] == [["duty@vendor.example"]]

    # 05:29:59Z nothing new; 05:30Z, 75%: a real mail to the support director.
    world.service.deliver_due(after(4.5) - timedelta(seconds=1))
    assert len(world.mail.mail) == 1
    report = world.service.deliver_due(after(4.5))
    assert f"escalate:{TICKET}/resolution/1/75%/0:smtp" in report.sent
    mail = world.mail.mail[-1]
    assert (mail.sender, mail.recipients) == ("sla@vendor.example", ["director@vendor.example"])
    assert mail.message["Subject"] == f"[SLA] {TICKET} resolution at 75%: notify support-director"
    assert mail.message["X-Idempotency-Key"] == f"{TICKET}/resolution/1/75%/0"
    assert "Due at:    2026-11-23T07:00:00+00:00" in mail.message.get_content()

    # 07:01Z, past 100%: the support level is raised on the ticket, and the resolution
    # breach is recorded: the hook is told, the outbox row is sent.
    report = world.service.deliver_due(after(6) + timedelta(minutes=1))
    assert f"breach:{TICKET}/resolution/1" in report.sent
    assert (TICKET, "resolution", after(6)) in world.breaches.breaches
    assert world.outbox(f"breach:{TICKET}/resolution/1")["state"] == "sent"
    raised = zendesk_update(world.zendesk_api.requests[-1])
    assert raised == {"ticket": {"additional_tags": ["support-level-L3"]}}

    # 09:00Z, 100% + 2h: the VP is mailed; each threshold once per metric cycle.
    world.service.deliver_due(after(8))
    world.service.deliver_due(after(9))
    assert [m.recipients[0] for m in world.mail.mail] == [
        "duty@vendor.example",
        "director@vendor.example",
        "vp@vendor.example",
    ]
    assert world.sla(after(9))["metrics"]["resolution"]["state"] == "breached"

    # The breach costs the vendor: a credit line in the customer's November statement
    # under the shipped penalty terms (standard-support: 5% of 12,000 CNY per P1 breach).
    engine = world.service.engine
    terms = load_penalties(RULESETS / PENALTIES_FILE, engine.library)
    events = world.service.store.events(TICKET)
    statements = compute_statements(terms, engine, "2026-11", events, as_at=after(9))
    [lotus] = [s for s in statements if s.contract == "CN-LOTUS-RETAIL-2026"]
    [credit] = [line for line in lotus.lines if line.kind == "breach"]
    assert (credit.ticket_id, credit.metric, credit.at) == (TICKET, "resolution", after(6))
    assert (credit.amount, credit.currency) == (Decimal("600.00"), "CNY")
    assert credit.rule.startswith(f"{RULESETS / PENALTIES_FILE}:")


def test_a_breach_notice_delivered_at_the_due_instant_still_reports_the_breach(world):
    world.send_webhook(ticket_body())
    world.service.deliver_due(after(0.25))  # exactly 01:15Z, first_response's due time
    world.service.deliver_due(after(0.25) + timedelta(minutes=1))
    assert (TICKET, "first_response", after(0.25)) in world.breaches.breaches


def test_a_failing_and_a_slow_plugin_leave_intake_storage_and_write_back_intact(world):
    world.host.register(BrokenRouter(), "broken-router")  # called before write-back
    world.host.register(SlowAudit(), "slow-audit")

    statuses = world.send_webhook(ticket_body())[TICKET]

    assert world.failures() == {
        ("broken-router", "slaengine_route", "error"),
        ("slow-audit", "slaengine_decision", "timeout"),
    }
    broken = next(f for f in world.host.failures if f.plugin == "broken-router")
    assert broken.error == "RuntimeError: queue service unavailable"
    # The other route plugin still wrote the routing back, and everything was stored.
    [routed] = world.zendesk_api.requests
    assert zendesk_update(routed)["ticket"]["group_id"] == 98738
    assert statuses["resolution"]["state"] == "running"
    assert [e.type for e in world.service.store.events(TICKET)] == ["created"]
    assert {r["state"] for r in world.service.store.outbox_rows(TICKET)} == {"pending"}


def test_a_write_back_answered_500_then_200_is_retried_with_the_same_update(world):
    world.zendesk_api.script(Reply(500, "upstream busy"), Reply(200))

    world.send_webhook(ticket_body())

    first, second = world.zendesk_api.requests
    assert zendesk_update(first) == zendesk_update(second)
    assert world.failures() == set()


def test_an_escalation_receiver_that_is_down_is_dead_lettered_and_others_still_deliver(world):
    world.send_webhook(ticket_body())
    key = f"escalate:{TICKET}/resolution/1/50%/0:webhook-down"

    # 04:00Z the 50% notice fails at the webhook; retried 30 s, 1, 2 and 4 min later.
    now = after(3)
    for _ in range(MAX_ATTEMPTS):
        report = world.service.deliver_due(now)
        assert key in report.failed + report.dead
        row = world.outbox(key)
        if row["state"] == "dead":
            break
        now = row["fire_at"].replace(tzinfo=UTC)

    assert key in report.dead
    assert (row["state"], row["attempts"]) == ("dead", MAX_ATTEMPTS)
    assert "ConnectError" in row["last_error"]
    letters = [json.loads(line) for line in world.dead_letters.read_text().splitlines()]
    assert len(letters) == MAX_ATTEMPTS  # the plugin dead-letters each failed delivery
    assert {letter["body"]["idempotency_key"] for letter in letters} == {
        f"{TICKET}/resolution/1/50%/0"
    }
    # The mail for the same threshold went out once, on time, whatever the webhook did.
    assert world.outbox(f"escalate:{TICKET}/resolution/1/50%/0:smtp")["state"] == "sent"
    assert [m.recipients for m in world.mail.mail] == [["duty@vendor.example"]]
    # A dead row is not tried again.
    later = world.service.deliver_due(now + timedelta(hours=1))
    assert key not in later.sent + later.failed + later.dead
    assert world.outbox(key)["attempts"] == MAX_ATTEMPTS
