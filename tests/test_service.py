"""The in-process service: events in, decisions announced, escalations and breaches once."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest

from slaengine.errors import EventError
from slaengine.hookspecs import hookimpl
from slaengine.plugins import PluginHost
from slaengine.service import Announcer, SlaService
from slaengine.store import SqlStore
from slaengine.ticket import TicketEvent

CREATED = datetime.fromisoformat("2026-11-21T23:40:00+08:00")  # a Saturday night


def event(kind: str, minutes: float, ticket: str = "INC-1", **fields) -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket,
        event_id=f"{ticket}:{kind}:{minutes}",
        type=kind,
        at=CREATED + timedelta(minutes=minutes),
        fields=fields,
    )


def created(ticket: str = "INC-1", severity: str = "urgent") -> TicketEvent:
    return event("created", 0, ticket, contract="CN-NORTHWIND-LOGISTICS-2026", severity=severity)


class Recorder:
    def __init__(self) -> None:
        self.decisions: list[str] = []
        self.routes: list[str] = []
        self.escalations: list[str] = []
        self.breaches: list[str] = []

    @hookimpl
    def slaengine_decision(self, ticket, decision):
        self.decisions.append(f"{ticket.id}:{decision.priority}")

    @hookimpl
    def slaengine_route(self, ticket, decision):
        self.routes.append(f"{ticket.id}:{decision.route.queue}")

    @hookimpl
    def slaengine_escalate(self, context, action):
        self.escalations.append(f"{context.idempotency_key}:{action.type}")
        return True

    @hookimpl
    def slaengine_breach(self, ticket_id, status):
        self.breaches.append(f"{ticket_id}:{status.metric}")


class Flaky:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def slaengine_escalate(self, context, action):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("receiver down")
        return True


@pytest.fixture
def service(shipped, database_url):
    """A service over an SQLite file, then over PostgreSQL (tests/postgres.py)."""
    host = PluginHost(entry_points=False)
    recorder = Recorder()
    host.register(recorder, "recorder")
    svc = SlaService(shipped, host, SqlStore.open(database_url))
    svc.recorder = recorder
    yield svc
    svc.store.engine.dispose()
    host.close()


def test_a_new_ticket_is_decided_routed_and_announced_once(service):
    service.apply([created()])
    service.apply([created()])  # a retry of the same event changes nothing
    assert service.recorder.decisions == ["INC-1:P1"]
    assert service.recorder.routes == ["INC-1:duty-desk"]


def test_a_severity_change_announces_the_new_decision(service):
    service.apply([created(severity="serious")])
    service.apply([event("severity_changed", 60, severity="urgent")])
    assert service.recorder.decisions == ["INC-1:P2", "INC-1:P1"]


def test_statuses_are_returned_at_the_latest_event(service):
    statuses = service.apply([created(), event("agent_replied", 10, public=True)])
    assert statuses["INC-1"]["first_response"].state == "met"


def escalations(report) -> list[str]:
    return sorted(k.split(":")[1] for k in report.sent if k.startswith("escalate:"))


def test_thresholds_fire_once_each_when_they_come_due(service):
    service.apply([created()])  # standard 2.0.0 urgent: resolution 6h on the 7x24 clock
    assert escalations(service.deliver_due(CREATED + timedelta(hours=2))) == []
    half = service.deliver_due(CREATED + timedelta(hours=3))
    assert escalations(half) == ["INC-1/resolution/1/50%/0"]
    assert escalations(service.deliver_due(CREATED + timedelta(hours=3, minutes=1))) == []
    late = service.deliver_due(CREATED + timedelta(hours=9))
    assert escalations(late) == [
        "INC-1/resolution/1/100%+2h/0",
        "INC-1/resolution/1/100%/0",
        "INC-1/resolution/1/75%/0",
    ]
    assert len(service.recorder.escalations) == 4


def test_a_pause_moves_pending_thresholds(service):
    service.apply([created(), event("status_changed", 60, status="pending_customer")])
    assert escalations(service.deliver_due(CREATED + timedelta(hours=5))) == []
    service.apply([event("status_changed", 120, status="open")])  # paused one hour
    assert escalations(service.deliver_due(CREATED + timedelta(hours=3, minutes=59))) == []
    assert escalations(service.deliver_due(CREATED + timedelta(hours=4))) == [
        "INC-1/resolution/1/50%/0"
    ]


def test_a_breach_is_reported_once_per_metric_cycle(service):
    service.apply([created()])
    report = service.deliver_due(CREATED + timedelta(minutes=20))
    assert report.sent == ["breach:INC-1/first_response/1"]
    assert service.recorder.breaches == ["INC-1:first_response"]
    service.deliver_due(CREATED + timedelta(minutes=30))
    assert service.recorder.breaches == ["INC-1:first_response"]


def test_a_failed_delivery_is_retried_and_a_delivered_one_is_not(service):
    flaky = Flaky()
    service.host.register(flaky, "flaky")
    service.apply([created()])
    first = service.deliver_due(CREATED + timedelta(hours=3))
    assert first.failed == ["escalate:INC-1/resolution/1/50%/0:flaky"]
    assert len(service.recorder.escalations) == 1
    second = service.deliver_due(CREATED + timedelta(hours=3, minutes=1))
    assert "escalate:INC-1/resolution/1/50%/0:flaky" in second.sent
    assert len(service.recorder.escalations) == 1  # the recorder was not asked again
    assert flaky.calls == 2


def test_a_resolved_ticket_escalates_no_further(service):
    service.apply([created()])
    service.apply([event("resolved", 60)])
    report = service.deliver_due(CREATED + timedelta(hours=9))
    assert [k for k in report.sent if "resolution" in k] == []
    assert {r["state"] for r in service.store.outbox_rows() if "resolution" in r["key"]} == {
        "cancelled"
    }


def test_an_event_the_timeline_refuses_stores_nothing(service):
    service.apply([created()])
    bad = TicketEvent(
        ticket_id="INC-1",
        event_id="early",
        type="updated",
        at=CREATED - timedelta(hours=1),
        fields={},
    )
    good = event("agent_replied", 5, public=True)
    with pytest.raises(EventError):
        service.apply([good, bad])
    assert [e.event_id for e in service.store.events("INC-1")] == [created().event_id]


class HeldRouter:
    """A routing hook that holds until released, as a write-back waiting on a ticket system."""

    def __init__(self) -> None:
        self.started, self.release, self.finished = (threading.Event() for _ in range(3))
        self.routes: list[str] = []

    @hookimpl
    def slaengine_route(self, ticket, decision):
        self.started.set()
        self.release.wait(5)
        self.routes.append(f"{ticket.id}:{decision.route.queue}")
        self.finished.set()


def test_with_an_announcer_a_request_does_not_wait_for_a_slow_routing_hook(shipped, tmp_path):
    host = PluginHost(entry_points=False, timeout=30)
    router = HeldRouter()
    host.register(router, "router")
    announcer = Announcer()
    service = SlaService(
        shipped, host, SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}"), announcer=announcer
    )
    statuses = service.apply([created()])  # answered with the hook still held
    assert statuses["INC-1"]["first_response"].state == "running"
    assert router.started.wait(5) and not router.finished.is_set()
    assert [e.event_id for e in service.store.events("INC-1")] == ["INC-1:created:0"]
    router.release.set()
    announcer.close()
    assert router.routes == ["INC-1:duty-desk"]
    host.close()


def test_an_announcer_keeps_the_order_of_decisions_and_announces_all_before_closing(
    shipped, tmp_path
):
    host = PluginHost(entry_points=False)
    recorder = Recorder()
    host.register(recorder, "recorder")
    announcer = Announcer()
    service = SlaService(
        shipped, host, SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}"), announcer=announcer
    )
    service.apply([created(severity="serious")])
    for n, severity in enumerate(["urgent", "general", "urgent", "serious"], start=1):
        service.apply([event("severity_changed", 10 * n, severity=severity)])
    announcer.close()
    assert recorder.decisions == [f"INC-1:{p}" for p in ("P2", "P1", "P3", "P1", "P2")]
    host.close()


class Paced:
    """An escalation receiver that is slow for one ticket; records when each delivery ended."""

    def __init__(self, slow: str, seconds: float) -> None:
        self.slow, self.seconds = slow, seconds
        self.done: list[tuple[str, str, float]] = []  # (ticket, threshold, monotonic time)
        self.lock = threading.Lock()

    @hookimpl
    def slaengine_escalate(self, context, action):
        if context.ticket_id == self.slow:
            time.sleep(self.seconds)
        with self.lock:
            self.done.append((context.ticket_id, context.threshold, time.monotonic()))
        return True


def test_a_slow_receiver_for_one_ticket_holds_up_only_that_ticket(shipped, database_url):
    host = PluginHost(entry_points=False)
    paced = Paced("INC-0", seconds=0.15)
    host.register(paced, "paced")
    service = SlaService(shipped, host, SqlStore.open(database_url))
    try:
        service.apply([created(f"INC-{n}") for n in range(6)])
        started = time.monotonic()
        report = service.deliver_due(CREATED + timedelta(hours=9))
        took = time.monotonic() - started
    finally:
        service.store.engine.dispose()
        host.close()
    # urgent: 50 %, 75 %, 100 % and 100 %+2h of the resolution clock, per ticket
    assert len([k for k in report.sent if k.startswith("escalate:")]) == 6 * 4
    slow = [at for ticket, _, at in paced.done if ticket == "INC-0"]
    fast = [at for ticket, _, at in paced.done if ticket != "INC-0"]
    assert len(slow) == 4 and len(fast) == 20
    assert max(fast) < slow[1]  # the other tickets were not queued behind its second
    assert took < 4 * 0.15 + 1.0  # its own four one after another, the rest beside them
    for n in range(6):  # each ticket's thresholds in the order they fell due
        order = [threshold for ticket, threshold, _ in paced.done if ticket == f"INC-{n}"]
        assert order == ["50%", "75%", "100%", "100%+2h"]
