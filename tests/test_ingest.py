"""Fast ingestion stays exact: kept clocks and group commit against a service that replays.

The oracle is the same service with ``cache_size=0``: it rebuilds every
ticket from the store on each request, as the service did before clocks
were kept. Both run on one database as two tenants (SQLite, then
PostgreSQL), fed the same requests: the kept-clock service in rounds of
several requests (one transaction each), the oracle one request at a time.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta

import pytest

from slaengine.database import tickets
from slaengine.errors import EventError
from slaengine.hookspecs import hookimpl
from slaengine.ingest import Ingestor
from slaengine.plugins import PluginHost
from slaengine.service import SlaService, statuses_json
from slaengine.store import SqlStore
from slaengine.ticket import TicketEvent

START = datetime.fromisoformat("2026-11-23T09:00:00+08:00")  # a Monday morning
CONTRACTS = ["CN-LOTUS-RETAIL-2026", "CN-NORTHWIND-LOGISTICS-2026", "CN-HUAXIA-BANK-2026"]
SEVERITIES = ["urgent", "serious", "general", "consultation"]


class Escalator:
    """Makes the service schedule escalation rows (one per threshold action)."""

    @hookimpl
    def slaengine_escalate(self, context, action):
        return True


def requests(seed: int, tickets: int = 25, count: int = 260) -> list[list[TicketEvent]]:
    """A helpdesk's requests: ticket lives with pauses, reopens, retries and mistakes."""
    rng = random.Random(seed)
    made: list[list[TicketEvent]] = []
    clock = {f"T{n}": START + timedelta(minutes=7 * n) for n in range(tickets)}
    serial = 0

    def event(ticket: str, kind: str, at: datetime, **fields) -> TicketEvent:
        nonlocal serial
        serial += 1
        return TicketEvent(
            ticket_id=ticket, event_id=f"{ticket}-{serial}", type=kind, at=at, fields=fields
        )

    for ticket, at in clock.items():
        fields = {"contract": rng.choice(CONTRACTS), "severity": rng.choice(SEVERITIES)}
        made.append([event(ticket, "created", at, **fields)])
    choices = [
        ("agent_replied", {"public": True}),
        ("customer_replied", {}),
        ("status_changed", {"status": "pending_customer"}),
        ("status_changed", {"status": "open"}),
        ("severity_changed", {"severity": "urgent"}),
        ("severity_changed", {"severity": "general"}),
        ("resolved", {}),
        ("reopened", {}),
    ]
    while len(made) < count:
        ticket = rng.choice(list(clock))
        roll = rng.random()
        if roll < 0.05 and made:
            made.append(rng.choice(made))  # a webhook retry
            continue
        if roll < 0.08:  # happens before the ticket was created: refused
            made.append([event(ticket, "agent_replied", START - timedelta(days=1))])
            continue
        if roll < 0.10 and made:  # an id reused with other content: refused
            old = rng.choice(made)[0]
            made.append([old.model_copy(update={"fields": {"note": "changed"}})])
            continue
        if roll < 0.14:  # a good event beside a refused one: neither is stored
            at = clock[ticket] + timedelta(minutes=1)
            early = event(ticket, "updated", START - timedelta(days=1))
            made.append([event(ticket, "agent_replied", at, public=True), early])
            continue
        clock[ticket] += timedelta(minutes=rng.randint(1, 240))
        kind, fields = rng.choice(choices)
        batch = [event(ticket, kind, clock[ticket], **fields)]
        if rng.random() < 0.2:  # a second event in the same request, maybe out of order
            back = timedelta(minutes=rng.randint(0, 30))
            batch.append(event(ticket, "agent_replied", clock[ticket] - back, public=False))
        made.append(batch)
    return made


def outcome(result) -> object:
    if isinstance(result, Exception):
        return (type(result).__name__, str(result))
    return {ticket: statuses_json(statuses) for ticket, statuses in result.items()}


def stored_state(store: SqlStore) -> tuple:
    tickets = {}
    for ticket_id in _ticket_ids(store):
        record = store.ticket(ticket_id)
        tickets[ticket_id] = (record.decision, record.statuses, record.next_due_at)
    # What is owed: a row cancelled, or never written because a later request of
    # the same round took it back, owes nothing either way.
    rows = sorted(
        (r["key"], r["fire_at"], r["payload"], r["kind"])
        for r in store.outbox_rows()
        if r["state"] != "cancelled"
    )
    events = sorted((e.event_id, e) for t in _ticket_ids(store) for e in store.events(t))
    return tickets, rows, events


def _ticket_ids(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(tickets.select().where(tickets.c.tenant_id == store.tenant))
        return {row.ticket_id for row in rows}


@pytest.fixture
def pair(shipped, database_url):
    """(kept-clock service, replaying oracle) on one database, as two tenants."""
    host = PluginHost(entry_points=False)
    host.register(Escalator(), "escalator")
    store = SqlStore.open(database_url, tenant="kept")
    fast = SlaService(shipped, host, store)
    oracle = SlaService(shipped, host, store.for_tenant("oracle"), cache_size=0)
    yield fast, oracle
    store.engine.dispose()
    host.close()


def test_rounds_with_kept_clocks_answer_and_store_what_a_full_replay_does(pair):
    fast, oracle = pair
    stream = requests(seed=7)
    rng = random.Random(1)
    i, refused = 0, 0
    while i < len(stream):
        size = rng.randint(1, 8)
        round_ = stream[i : i + size]
        got = [outcome(r) for r in fast.apply_many(round_)]
        want = [outcome(oracle.apply_many([request])[0]) for request in round_]
        assert got == want, f"requests {i}..{i + size - 1}"
        refused += sum(isinstance(o, tuple) for o in want)
        i += size
    assert refused > 5
    assert stored_state(fast.store) == stored_state(oracle.store)
    states = {row["state"] for row in fast.store.outbox_rows()}
    assert {"pending", "cancelled"} <= states  # pauses and stops moved rows


def test_a_refused_request_leaves_the_rest_of_its_round_applied(pair):
    fast, _ = pair
    created = TicketEvent(
        ticket_id="A",
        event_id="a1",
        type="created",
        at=START,
        fields={"contract": CONTRACTS[0], "severity": "urgent"},
    )
    early = TicketEvent(ticket_id="A", event_id="a0", type="updated", at=START - timedelta(1))
    reply = TicketEvent(
        ticket_id="A",
        event_id="a2",
        type="agent_replied",
        at=START + timedelta(minutes=5),
        fields={"public": True},
    )
    note = TicketEvent(
        ticket_id="A", event_id="a3", type="customer_replied", at=START + timedelta(minutes=9)
    )
    first, refused, after, last = fast.apply_many([[created], [reply, early], [note], [reply]])
    assert isinstance(refused, EventError)
    assert first["A"]["first_response"].state == "running"
    assert after["A"]["first_response"].state == "running"  # the refused reply left no trace
    assert last["A"]["first_response"].state == "met"
    assert [e.event_id for e in fast.store.events("A")] == ["a1", "a3", "a2"]


def test_an_event_id_another_ticket_has_is_refused_alone_or_in_a_round(pair):
    fast, _ = pair

    def created(ticket: str, event_id: str) -> TicketEvent:
        fields = {"contract": CONTRACTS[1], "severity": "general"}
        return TicketEvent(
            ticket_id=ticket, event_id=event_id, type="created", at=START, fields=fields
        )

    fast.apply([created("A", "e1")])
    with pytest.raises(EventError, match="different content"):
        fast.apply([created("B", "e1")])
    ok, refused, also_ok = fast.apply_many(
        [[created("C", "e3")], [created("B", "e1")], [created("D", "e4")]]
    )
    assert isinstance(refused, EventError) and "different content" in str(refused)
    assert set(ok) == {"C"} and set(also_ok) == {"D"}
    assert fast.store.events("B") == [] and len(fast.store.events("D")) == 1


@pytest.mark.parametrize("optimistic", [False, True], ids=["locked", "optimistic"])
def test_a_kept_clock_notices_events_another_service_stored(pair, shipped, optimistic):
    fast, oracle = pair
    fast.optimistic = optimistic
    # another process, same tenant
    other = SlaService(shipped, fast.host, fast.store, optimistic=optimistic)
    stream = requests(seed=11, tickets=6, count=80)
    for n, request in enumerate(stream):
        writer = fast if n % 3 else other
        got = outcome(writer.apply_many([request])[0])
        assert got == outcome(oracle.apply_many([request])[0]), f"request {n}"
    assert stored_state(fast.store) == stored_state(oracle.store)


@pytest.mark.parametrize("optimistic", [False, True], ids=["locked", "optimistic"])
def test_concurrent_services_on_one_tenant_lose_no_event(pair, shipped, optimistic):
    fast, oracle = pair
    fast.optimistic = optimistic
    services = [fast, SlaService(shipped, fast.host, fast.store, optimistic=optimistic)]
    # Leave out reused ids with other content: which copy wins depends on the interleaving.
    first: dict[str, TicketEvent] = {}
    stream = [
        r
        for r in requests(seed=5, tickets=4, count=120)
        if len(r) == 1 and first.setdefault(r[0].event_id, r[0]) == r[0]
    ]
    # The tickets are created first: an event of a ticket whose creation the
    # other thread has not stored yet would be refused here, not in the oracle.
    created, stream = stream[:4], stream[4:]
    for request in created:
        fast.apply(request)
        oracle.apply(request)
    errors: list[Exception] = []

    def feed(service: SlaService, part: list[list[TicketEvent]]) -> None:
        for request in part:
            try:
                service.apply(request)
            except EventError:
                pass  # refused by its timeline, as in the oracle
            except Exception as exc:  # anything else is a lost event
                errors.append(exc)

    threads = [
        threading.Thread(target=feed, args=(s, stream[i::2])) for i, s in enumerate(services)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for request in stream:
        oracle.apply_many([request])
    # Whatever the interleaving, the stored events and the views built from them agree.
    for ticket_id in _ticket_ids(oracle.store):
        assert {e.event_id for e in fast.store.events(ticket_id)} == {
            e.event_id for e in oracle.store.events(ticket_id)
        }
        fresh = SlaService(fast.engine, fast.host, fast.store, cache_size=0)
        at = max(e.at for e in fast.store.events(ticket_id))
        assert statuses_json(fresh.status(ticket_id, at)) == statuses_json(
            oracle.status(ticket_id, at)
        )


class WritesInBetween:
    """A store snapshot after which another service writes, before the write lock is taken."""

    def __init__(self, snapshot, then) -> None:
        self.snapshot, self.then = snapshot(), then

    def __enter__(self):
        return self.snapshot.__enter__()

    def __exit__(self, *exc) -> None:
        self.snapshot.__exit__(*exc)
        # On a thread: were the write lock held now, it would wait, not deadlock the test.
        writer = threading.Thread(target=self.then)
        writer.start()
        writer.join(10)
        assert not writer.is_alive(), "the write lock was held while the round was worked out"


def test_an_optimistic_round_that_another_process_overtook_is_worked_out_again(
    shipped, tmp_path, monkeypatch
):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    fast = SlaService(shipped, store=store, optimistic=True)
    other = SlaService(shipped, store=store)  # another process, same tenant
    oracle = SlaService(shipped, store=store.for_tenant("oracle"), cache_size=0)
    fields = {"contract": "CN-LOTUS-RETAIL-2026", "severity": "serious"}
    created = TicketEvent(ticket_id="T1", event_id="e0", type="created", at=START, fields=fields)
    # Taken by the other process while this one works out its next round.
    pause = TicketEvent(
        ticket_id="T1",
        event_id="e1",
        type="status_changed",
        at=START + timedelta(hours=1),
        fields={"status": "pending_customer"},
    )
    reply = TicketEvent(
        ticket_id="T1", event_id="e2", type="customer_replied", at=START + timedelta(hours=3)
    )
    fast.apply([created])
    monkeypatch.setattr(
        store,
        "snapshot",
        lambda: WritesInBetween(SqlStore.snapshot.__get__(store), lambda: other.apply([pause])),
    )
    answer = fast.apply([reply])
    for request in ([created], [pause], [reply]):
        expected = oracle.apply(request)
    assert statuses_json(answer["T1"]) == statuses_json(expected["T1"])
    assert answer["T1"]["resolution"].paused  # the pause the other process stored counts
    assert [e.event_id for e in store.events("T1")] == ["e0", "e1", "e2"]
    assert store.ticket("T1").statuses == oracle.store.ticket("T1").statuses


def test_an_optimistic_round_is_worked_out_once_from_its_kept_clocks(
    shipped, tmp_path, monkeypatch
):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}")
    fast = SlaService(shipped, store=store, optimistic=True)
    worked: list[int] = []
    work_out = fast._work_out
    monkeypatch.setattr(fast, "_work_out", lambda *a: worked.append(1) or work_out(*a))
    oracle = SlaService(shipped, store=store.for_tenant("oracle"), cache_size=0)
    stream = requests(seed=21, tickets=8, count=120)
    for n in range(0, len(stream), 4):
        round_ = stream[n : n + 4]
        got = [outcome(r) for r in fast.apply_many(round_)]
        assert got == [outcome(r) for r in oracle.apply_many(round_)], f"round {n}"
    assert stored_state(fast.store) == stored_state(oracle.store)
    assert len(worked) == len(range(0, len(stream), 4))  # no round had to start over


class Gate(SlaService):
    """A service whose first round waits at a gate, and that records its round sizes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.rounds: list[int] = []

    def apply_many(self, requests):
        self.entered.set()
        self.gate.wait(10)
        self.rounds.append(len(requests))
        return super().apply_many(requests)


def test_requests_queued_behind_a_round_share_the_next_transaction(shipped, tmp_path):
    service = Gate(shipped, store=SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}"))
    ingest = Ingestor()
    stream = requests(seed=3, tickets=12, count=12)  # twelve tickets created
    futures = [ingest.submit(service, stream[0])]
    assert service.entered.wait(10)  # the writer holds the first request at the gate
    futures += [ingest.submit(service, request) for request in stream[1:]]
    service.gate.set()
    results = [f.result(10) for f in futures]
    ingest.close()
    assert service.rounds == [1, 11]
    assert [list(r) for r in results] == [[request[0].ticket_id] for request in stream]


def test_the_ingestor_answers_each_request_with_its_own_error(shipped, tmp_path):
    service = SlaService(shipped, store=SqlStore.open(f"sqlite:///{tmp_path / 'sla.db'}"))
    ingest = Ingestor()
    orphan = TicketEvent(ticket_id="X", event_id="x1", type="agent_replied", at=START)
    good = requests(seed=2, tickets=1, count=1)[0]
    bad_future, good_future = ingest.submit(service, [orphan]), ingest.submit(service, good)
    with pytest.raises(EventError, match="no created event"):
        bad_future.result(10)
    assert "T0" in good_future.result(10)
    ingest.close()
    with pytest.raises(RuntimeError, match="closed"):
        ingest.submit(service, good)


def test_an_in_memory_store_takes_transactions_from_several_threads():
    store = SqlStore.in_memory()  # one connection shared by every thread

    def write(n: int) -> None:
        for i in range(30):
            event = TicketEvent(ticket_id=f"T{n}", event_id=f"{n}-{i}", type="updated", at=START)
            store.for_tenant("t").add_events([event])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(store.for_tenant("t").events(f"T{n}")) for n in range(4)] == [30] * 4


@pytest.mark.slow
def test_serve_with_two_workers_answers_as_a_replay_whichever_process_takes_an_event(tmp_path):
    import http.client
    import json

    from tests.conftest import RULESETS, serving

    options = ("--workers", "2", "--no-scheduler")
    with serving(tmp_path, RULESETS, *options) as (port, headers):
        connections = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(6)]
        stream = requests(seed=9, tickets=3, count=60)
        latest: dict[str, datetime] = {}  # instant of each ticket's latest stored event
        for n, request in enumerate(stream):
            conn = connections[n % len(connections)]
            ticket = request[0].ticket_id
            body = json.dumps([json.loads(e.model_dump_json()) for e in request])
            conn.request("POST", f"/v1/tickets/{ticket}/events", body, headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                assert response.status == 422, answer
                continue
            latest[ticket] = max([latest.get(ticket, START), *(e.at for e in request)])
            at = latest[ticket].isoformat().replace("+", "%2B")
            conn.request("GET", f"/v1/tickets/{ticket}/sla?at={at}", headers=headers)
            replayed = json.loads(conn.getresponse().read())
            assert answer["metrics"] == replayed["metrics"], f"request {n}"
