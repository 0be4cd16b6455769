"""A dead worker's deliveries are taken over at once; a live worker's never.

Deaths here are real: processes killed with SIGKILL, on SQLite and on a real
PostgreSQL server (``database_url`` runs each test on both). The test with two
``slaengine worker`` processes is slow (``pytest -m slow``, scripts/bench.sh).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from slaengine import liveness
from slaengine.database import outbox
from slaengine.engine import Engine
from slaengine.liveness import WorkerNameInUse
from slaengine.plugins import PluginHost, load_plugin_config
from slaengine.service import SlaService
from slaengine.store import PENDING, SENT, OutboxItem, SqlStore, TicketRecord
from slaengine.ticket import TicketEvent
from tests.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    store = SqlStore.open(database_url)
    yield store
    store.liveness.close()
    store.engine.dispose()


def schedule(store: SqlStore, count: int) -> None:
    record = TicketRecord("INC-1", T0, "tiny@1.0.0+abc", "{}", "{}", None)
    rows = [
        OutboxItem(key=f"k{n}", kind="escalate", ticket_id="INC-1", fire_at=T0, payload={})
        for n in range(count)
    ]
    store.save_ticket(record, rows)


HOLDER = """\
import sys, time
from datetime import datetime
from slaengine.store import SqlStore
store = SqlStore.open(sys.argv[1])
held = store.claim(datetime.fromisoformat(sys.argv[2]), "victim")
print(len(held), flush=True)
time.sleep(120)
"""


def test_a_killed_workers_rows_are_claimed_by_another_within_a_second(store, database_url):
    schedule(store, 5)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url, T0.isoformat()], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"5"
        assert store.claim(T0, "survivor") == []  # alive: its one-minute lease stands
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        taken: list[OutboxItem] = []
        while len(taken) < 5 and time.monotonic() - killed < 1:
            taken += store.claim(T0, "survivor")  # a scheduler round
            time.sleep(0.02)
        took = time.monotonic() - killed
    finally:
        holder.kill()
        holder.wait()
    assert sorted(i.key for i in taken) == [f"k{n}" for n in range(5)]
    assert took < 1


def test_a_name_a_live_worker_holds_is_refused_with_the_name(store, database_url, monkeypatch):
    monkeypatch.setattr(liveness, "HOLD_WAIT_SECONDS", 0.2)
    store.start_worker("night-shift")
    other = SqlStore.open(database_url)  # another engine: as another process would
    try:
        with pytest.raises(WorkerNameInUse, match="'night-shift'"):
            other.start_worker("night-shift")
        with pytest.raises(WorkerNameInUse):
            other.claim(T0, "night-shift")
        store.stop_worker("night-shift")
        assert other.start_worker("night-shift") == 0
    finally:
        other.liveness.close()
        other.engine.dispose()


def test_a_restart_under_a_name_waits_for_a_probe_holding_it(store, database_url):
    """A probe holds a dead worker's lock while it frees the rows: the restart waits, then runs."""
    schedule(store, 2)
    store.claim(T0, "w1")
    store.stop_worker("w1")
    restarted = SqlStore.open(database_url)
    started: list[int] = []
    try:
        with store.liveness.probe("w1", store.engine.begin) as conn:
            assert conn is not None  # dead: the probe holds its lock
            thread = threading.Thread(target=lambda: started.append(restarted.start_worker("w1")))
            thread.start()
            time.sleep(0.3)
            assert started == []  # waiting for the probe
            conn.execute(outbox.update().values(claimed_by=None, claimed_until=None))
        thread.join(5)
        assert started == [0]  # the probe freed them first
        with store.liveness.probe("w1", store.engine.begin) as conn:
            assert conn is None  # alive again
    finally:
        restarted.liveness.close()
        restarted.engine.dispose()


def test_a_worker_whose_lock_file_was_removed_locks_the_new_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'sla.db'}"
    store, other = SqlStore.open(url), SqlStore.open(url)
    schedule(store, 1)
    assert len(store.claim(T0, "w1")) == 1
    path = store.liveness.path("w1")
    path.unlink()  # an over-eager clean-up
    with other.liveness.probe("w1", other.engine.begin) as conn:
        assert conn is not None  # the new file is unlocked: w1 looks dead for now
    store.claim(T0, "w1")  # its next round locks the file on disk again
    with other.liveness.probe("w1", other.engine.begin) as conn:
        assert conn is None
    for each in (store, other):
        each.liveness.close()
        each.engine.dispose()


def test_a_worker_whose_postgres_session_dropped_takes_its_lock_again(postgres: PostgresCluster):
    url = postgres.create_database("liveness_dropped")
    store, other = SqlStore.open(url), SqlStore.open(url)
    try:
        store.start_worker("w1")
        with other.liveness.probe("w1", other.engine.begin) as conn:
            assert conn is None
        with store.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND objsubid = 2 AND pid <> pg_backend_pid()"
                )
            ).all()
        assert killed == [(True,)]
        time.sleep(0.2)
        with other.liveness.probe("w1", other.engine.begin) as conn:
            assert conn is not None  # the server dropped the session, and the lock
        assert store.start_worker("w1") == 0  # every claim starts with this: the lock is back
        with other.liveness.probe("w1", other.engine.begin) as conn:
            assert conn is None
    finally:
        for each in (store, other):
            each.liveness.close()
            each.engine.dispose()
        postgres.drop_database("liveness_dropped")


# -- two real ``slaengine worker`` processes ------------------------------------

RULESET = """\
name: tiny
version: 1.0.0
effective_from: 2020-01-01
timezone: UTC
vocabularies:
  severity: [urgent]
metrics:
  resolution: {stop: [resolved]}
escalation_plans:
  on-due:
    metric: resolution
    thresholds:
      - {at: 100%, actions: [{type: notify, params: {to: duty-manager}}]}
tables:
  - name: targets
    rules:
      - name: urgent
        when: {severity: urgent}
        then: {priority: P1, calendar: always, targets: {resolution: 1h}, escalation_plan: on-due}
"""


class HangingReceiver:
    """A webhook receiver that records each request and leaves the first one unanswered."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []  # (monotonic time, idempotency key)
        self.hung = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = json.loads(body)["idempotency_key"]
                receiver.received.append((time.monotonic(), key))
                if not receiver.hung.is_set():
                    receiver.hung.set()
                    receiver.release.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # its sender was killed

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sla"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow  # two worker processes start per database: ~8 s each
def test_a_worker_killed_mid_delivery_has_its_rows_delivered_by_the_other_within_a_second(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "rulesets" / "tiny").mkdir(parents=True)
    (tmp_path / "rulesets" / "tiny" / "1.0.0.yaml").write_text(RULESET)
    (tmp_path / "rulesets" / "contracts.yaml").write_text(
        "contracts:\n  - {id: C-1, customer: c, ruleset: tiny}\n"
    )
    receiver = HangingReceiver()
    plugins = tmp_path / "plugins.yaml"
    plugins.write_text(
        textwrap.dedent(f"""\
            plugins:
              webhook: {{url: '{receiver.url}', secret: s3cret, timeout: 20, retries: 0}}
              smtp: {{enabled: false}}
              writeback: {{enabled: false}}
            """)
    )
    common = ["--rulesets", str(tmp_path / "rulesets"), "--database", database_url]
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "slaengine", "worker", "--name", name, *common]
            + ["--plugins-config", str(plugins)],
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"{name}.log").open("wb"),
            cwd=tmp_path,
        )
        for name in ("blue", "green")
    }
    engine = Engine.from_directory(tmp_path / "rulesets")
    host = PluginHost(load_plugin_config(plugins))
    store = SqlStore.open(database_url)
    try:
        for process in workers.values():
            assert b"running" in process.stdout.readline()
        # 20 tickets whose threshold instant is just ahead: one round claims them all.
        instant = datetime.now(UTC) + timedelta(seconds=0.5)
        SlaService(engine, host, store).apply(
            TicketEvent(
                ticket_id=f"INC-{n}",
                event_id=f"INC-{n}:created",
                type="created",
                at=instant - timedelta(hours=1),
                fields={"contract": "C-1", "severity": "urgent"},
            )
            for n in range(20)
        )
        assert receiver.hung.wait(10), "no worker delivered anything"
        hung_key = receiver.received[0][1]
        with store.engine.connect() as conn:
            victim = conn.execute(
                sa.select(outbox.c.claimed_by).where(outbox.c.key == f"escalate:{hung_key}:webhook")
            ).scalar_one()
            held = {
                key.removeprefix("escalate:").removesuffix(":webhook")
                for key in conn.execute(
                    sa.select(outbox.c.key).where(
                        outbox.c.claimed_by == victim, outbox.c.state == PENDING
                    )
                ).scalars()
            }
        assert victim in workers and hung_key in held
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        killed = time.monotonic()
        deadline = killed + 5
        while time.monotonic() < deadline and len(set(k for _, k in receiver.received)) < 20:
            time.sleep(0.01)
        late = max(t for t, _ in receiver.received) - killed
        while time.monotonic() < deadline:  # and the breach notices, a second later
            rows = store.outbox_rows()
            if len(rows) == 40 and {r["state"] for r in rows} == {SENT}:
                break
            time.sleep(0.05)
    finally:
        for process in workers.values():
            process.kill()
            process.wait()
        receiver.close()
        host.close()
        engine.close()
    counts = Counter(k for _, k in receiver.received)
    # None lost. Repeated (once, with their keys) are only sends the victim had
    # in flight or not yet recorded: its claim delivers tickets side by side.
    assert len(counts) == 20
    repeated = {k: n for k, n in counts.items() if n != 1}
    assert repeated[hung_key] == 2 and set(repeated.values()) == {2}
    assert set(repeated) <= held
    assert late < 1, f"the victim's rows reached the receiver {late:.2f} s after the kill"
    rows = store.outbox_rows()
    assert [(r["state"], r["attempts"]) for r in rows] == [(SENT, 1)] * 40
    survivor = next(name for name in workers if name != victim)
    assert {r["claimed_by"] for r in rows} == {None}
    assert f"worker {victim} is dead" in (tmp_path / f"{survivor}.log").read_text()
    store.liveness.close()
    store.engine.dispose()
