"""Soak of the escalation scheduler: many open tickets, a kill -9 and a restart mid-run.

    python bench/soak_scheduler.py [--tickets 100000] [--window 300] [--workers 1]
                                   [--postgres | --database URL] [--kill-at 0.5]
                                   [--restart-after 0]

--tickets open tickets are created through :class:`SlaService` (the path the
HTTP API takes) on a ruleset whose resolution clock runs around the clock
with a ``notify`` escalation at 100%: each ticket owes one webhook
escalation and one breach notice at its due instant, and the instants are
spread evenly over --window seconds that start once the setup is done. Then
--workers ``slaengine worker`` processes run against the database, with the
shipped webhook plugin posting signed escalations to a local HTTP receiver
in this process. The receiver checks each signature and honours the
Idempotency-Key: the first delivery of a key is acted on, a repeat is
counted and dropped. At --kill-at of the window, as soon as worker 0 holds
claimed rows it has not all recorded (mid-delivery), it gets SIGKILL and is
started again under the same ``--name`` after --restart-after seconds.

Printed: lateness of each escalation (receipt at the receiver minus the
threshold instant) and of each breach notice (recorded ``sent_at`` minus its
instant): median, p99, max and how many were over 1 s; escalations lost;
repeats at the receiver (at-least-once re-sends after the kill); outbox rows
by state; rows the killed worker held, and repeats beyond those (which only a
double claim could cause), and how long after the kill the last of them was
recorded sent. Exit status 1 when an escalation is lost (recorded as sent,
never received) or missing, a row is still pending at the end, a repeat is
unexplained, or a delivery is later than 1 s.

Each worker holds a liveness lock for its life (:mod:`slaengine.liveness`):
with two workers or more, the next round of a surviving worker finds the
killed one's lock free and claims its rows at once. With one worker they
wait for its restart under the same name (a few seconds: Python start-up and
compiling the rulesets), which takes them back at start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from slaengine.database import outbox
from slaengine.engine import Engine
from slaengine.plugins import PluginHost
from slaengine.service import SlaService
from slaengine.store import SqlStore
from slaengine.ticket import TicketEvent
from slaengine_plugins.webhook import verify_signature

ROOT = Path(__file__).resolve().parent.parent
SECRET = "soak-secret"
TARGET = timedelta(hours=1)
RULESET = """\
name: soak
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
        then:
          priority: P1
          calendar: always
          targets: {resolution: 1h}
          escalation_plan: on-due
"""
CONTRACTS = """\
contracts:
  - {id: SOAK-1, customer: soak, ruleset: soak}
"""


@dataclass
class Receiver:
    """A webhook receiver that honours idempotency keys: the first delivery of a key counts."""

    first: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (instant, late)
    repeats: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, headers: Any, body: bytes) -> int:
        received = time.time()
        if not verify_signature(
            SECRET,
            headers.get("X-Slaengine-Timestamp", ""),
            body,
            headers.get("X-Slaengine-Signature", ""),
        ):
            with self.lock:
                self.bad_signatures += 1
            return 401
        payload = json.loads(body)
        key = payload["idempotency_key"]
        assert headers.get("Idempotency-Key") == key
        instant = datetime.fromisoformat(payload["instant"]).timestamp()
        with self.lock:
            if key in self.first:
                self.repeats[key] += 1  # already acted on: dropped
            else:
                self.first[key] = (instant, received - instant)
        return 200

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a production receiver does: the webhook plugin reuses
            # its connection instead of opening one (and a server thread) per post.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(receiver.take(self.headers, body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # The killed worker's post in flight resets its kept-alive connection.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server


def write_config(directory: Path, receiver_url: str) -> tuple[Path, Path]:
    """The soak ruleset directory and a plugin config with only the webhook enabled."""
    rulesets = directory / "rulesets"
    (rulesets / "soak").mkdir(parents=True)
    (rulesets / "soak" / "1.0.0.yaml").write_text(RULESET)
    (rulesets / "contracts.yaml").write_text(CONTRACTS)
    plugins = directory / "plugins.yaml"
    plugins.write_text(
        "plugins:\n"
        f"  webhook: {{url: '{receiver_url}/sla', secret_env: SOAK_WEBHOOK_SECRET,"
        " timeout: 5, retries: 3, backoff: 0.2}\n"
        "  smtp: {enabled: false}\n"
        "  writeback: {enabled: false}\n"
    )
    return rulesets, plugins


def plugin_host(plugins: Path) -> PluginHost:
    from slaengine.plugins import load_plugin_config

    return PluginHost(load_plugin_config(plugins))


def created(n: int, due: datetime) -> TicketEvent:
    return TicketEvent(
        ticket_id=f"SOAK-{n:06d}",
        event_id=f"SOAK-{n:06d}:created",
        type="created",
        at=due - TARGET,
        fields={"contract": "SOAK-1", "severity": "urgent"},
    )


def create_tickets(service: SlaService, dues: list[datetime], batch: int = 100) -> float:
    """Open one ticket per due instant; seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(dues), batch):
        service.apply(created(n, dues[n]) for n in range(start, min(start + batch, len(dues))))
    return time.perf_counter() - started


def calibrate(rulesets: Path, plugins: Path, url: str, count: int = 400) -> float:
    """Tickets per second that the setup manages on this database kind (scratch tenant)."""
    engine = Engine.from_directory(rulesets)
    host = plugin_host(plugins)
    store = SqlStore.open(url).for_tenant("calibration")
    future = datetime.now(UTC) + timedelta(days=1)
    seconds = create_tickets(SlaService(engine, host, store), [future] * count)
    with store.engine.begin() as conn:
        for table in ("events", "tickets", "outbox"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = 'calibration'"))
    store.engine.dispose()
    host.close()
    engine.close()
    return count / seconds


class Worker:
    """One ``slaengine worker`` process that can be killed and started again."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; seconds until it says it is running."""
        env = {**os.environ, "SOAK_WEBHOOK_SECRET": SECRET}
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slaengine", "worker", "--name", self.name, *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if "running" not in line:
            raise SystemExit(f"worker {self.name} did not start: {line!r}; see {self.log}")
        return time.perf_counter() - started

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def troubles(self) -> Counter[str]:
        """Its log's warnings and errors, by their text up to the first digit-laden detail."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            for level in (" WARNING ", " ERROR "):
                if level in line:
                    found[level.strip() + ": " + _gist(line.split(level, 1)[1])] += 1
        return found


def _gist(message: str) -> str:
    # "delivery of escalate:SOAK-000123/... failed (...)" -> "delivery of escalate:... failed"
    words = [w for w in message.split() if not any(c.isdigit() for c in w)]
    return " ".join(words)[:120]


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    buckets = [(0.5, "<=0.5 s"), (1, "<=1 s"), (2, "<=2 s"), (5, "<=5 s"), (30, "<=30 s")]
    counts, below = [], 0
    for limit, label in buckets:
        n = sum(below < v <= limit for v in ordered) if below else sum(v <= limit for v in ordered)
        counts.append(f"{label}: {n}")
        below = limit
    counts.append(f">30 s: {sum(v > 30 for v in ordered)}")
    return (
        f"median {statistics.median(ordered):.3f} s, p99 {p99:.3f} s, max {ordered[-1]:.3f} s, "
        f"over 1 s: {sum(v > 1 for v in ordered)}\n    [{', '.join(counts)}]"
    )


@dataclass
class Result:
    """What a soak run found; ``ok`` when nothing was lost, doubled or later than 1 s."""

    tickets: int
    escalations: list[tuple[float, float]]  # (instant, lateness) of each first receipt
    breach_lateness: list[float]
    lost: int  # recorded as sent, never received
    undelivered: int  # escalation rows still pending when the run ended
    missing: int  # tickets with no escalation row at all
    repeats: int  # deliveries of a key already acted on, dropped by the receiver
    states: dict[str, int]
    held_at_kill: int
    takeover: float | None  # seconds from the kill until the last held row was recorded sent
    troubles: dict[str, int]  # worker log warnings and errors, by gist

    @property
    def unexplained_repeats(self) -> int:
        """Repeats beyond the rows the killed worker held: those would be a double claim."""
        return max(0, self.repeats - self.held_at_kill)

    @property
    def escalation_lateness(self) -> list[float]:
        return [late for _, late in self.escalations]

    def timeline(self, parts: int = 10) -> str:
        """The worst escalation lateness in each tenth of the window."""
        if not self.escalations:
            return ""
        start = min(i for i, _ in self.escalations)
        span = max(i for i, _ in self.escalations) - start or 1
        worst = [0.0] * parts
        for instant, late in self.escalations:
            part = min(parts - 1, int((instant - start) / span * parts))
            worst[part] = max(worst[part], late)
        return " ".join(f"{w:.2f}" for w in worst)

    @property
    def ok(self) -> bool:
        late = [v for v in self.escalation_lateness + self.breach_lateness if v > 1]
        failed = self.lost or self.undelivered or self.missing or self.unexplained_repeats
        return not (failed or late or self.states.get("pending"))


def soak(args: argparse.Namespace, url: str, directory: Path) -> Result:
    receiver = Receiver()
    server = receiver.serve()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}"
    rulesets, plugins = write_config(directory, receiver_url)
    os.environ["SOAK_WEBHOOK_SECRET"] = SECRET
    store = SqlStore.open(url)

    rate = calibrate(rulesets, plugins, url)
    lead = args.lead or args.tickets / rate * 2 + 20  # the database grows as it fills
    base = datetime.now(UTC) + timedelta(seconds=lead)
    step = args.window / args.tickets
    dues = [base + timedelta(seconds=(n + 0.5) * step) for n in range(args.tickets)]
    print(
        f"setup: {args.tickets} tickets at ~{rate:.0f}/s (calibrated); "
        f"thresholds from {base:%H:%M:%S} over {args.window:.0f} s",
        flush=True,
    )
    engine = Engine.from_directory(rulesets)
    host = plugin_host(plugins)
    seconds = create_tickets(SlaService(engine, host, store), dues)
    host.close()
    engine.close()
    margin = (base - datetime.now(UTC)).total_seconds()
    print(f"setup took {seconds:.0f} s; {margin:.0f} s before the first threshold", flush=True)
    if margin < 2:
        raise SystemExit("the setup overran the thresholds' start; rerun with a larger --lead")

    common = ["--rulesets", str(rulesets), "--database", url, "--plugins-config", str(plugins)]
    workers = [
        Worker(f"soak-{k}", common, directory / f"worker-{k}.log") for k in range(args.workers)
    ]
    startups = [w.start() for w in workers]
    print(f"{len(workers)} worker(s) up in {max(startups):.1f} s", flush=True)

    claimed: list[str] = []  # rows worker 0 held just before the kill
    killed = datetime.now(UTC)
    try:
        kill_at = base + timedelta(seconds=args.window * args.kill_at)
        time.sleep(max(0.0, (kill_at - datetime.now(UTC)).total_seconds()))
        # Kill in mid-delivery (claimed, not all recorded): the case a crash makes hard.
        # Only due rows are looked at (an index range), so each look is quick.
        give_up = time.monotonic() + 5
        while time.monotonic() < give_up:
            mine = (
                (outbox.c.state == "pending")
                & (outbox.c.fire_at <= datetime.now(UTC))
                & (outbox.c.claimed_by == workers[0].name)
            )
            with store.engine.connect() as conn:
                claimed = list(conn.execute(sa.select(outbox.c.key).where(mine)).scalars())
            if claimed:
                break
            time.sleep(0.002)
        workers[0].kill()
        killed = datetime.now(UTC)
        time.sleep(args.restart_after)
        restart = workers[0].start()
        print(
            f"killed {workers[0].name} (SIGKILL) at {killed:%H:%M:%S}"
            f"{', mid-delivery' if claimed else ' (it held no rows for 5 s)'}; "
            f"restarted in {restart:.1f} s",
            flush=True,
        )
        # Wait for everything owed (and, with one worker, for its restart).
        deadline = time.monotonic() + max(0.0, (dues[-1] - datetime.now(UTC)).total_seconds())
        deadline += args.grace
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                pending = conn.execute(
                    sa.select(sa.func.count()).where(outbox.c.state == "pending")
                ).scalar_one()
            if not pending and len(receiver.first) >= args.tickets:
                break
            time.sleep(1)
    finally:
        for worker in workers:
            worker.stop()
        server.shutdown()
    troubles = sum((w.troubles() for w in workers), Counter())

    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                outbox.c.key, outbox.c.kind, outbox.c.state, outbox.c.fire_at, outbox.c.sent_at
            )
        ).all()
    store.engine.dispose()
    states = Counter(row.state for row in rows)
    # escalate:<idempotency key>:webhook -> the key the receiver saw
    recorded_sent = {
        row.key.removeprefix("escalate:").rsplit(":", 1)[0]
        for row in rows
        if row.kind == "escalate" and row.state == "sent"
    }
    undelivered = sum(1 for row in rows if row.kind == "escalate" and row.state == "pending")
    sent_at = {row.key: _utc(row.sent_at) for row in rows if row.sent_at is not None}
    # Held at the kill: claimed just before it and not recorded sent before it.
    held = [key for key in claimed if key not in sent_at or sent_at[key] >= killed]
    takeover = (
        max((sent_at[key] - killed).total_seconds() for key in held)
        if held and all(key in sent_at for key in held)
        else None
    )
    breach_lateness = [
        (_utc(row.sent_at) - _utc(row.fire_at)).total_seconds()
        for row in rows
        if row.kind == "breach" and row.sent_at is not None
    ]
    return Result(
        tickets=args.tickets,
        escalations=list(receiver.first.values()),
        breach_lateness=breach_lateness,
        lost=len(recorded_sent - receiver.first.keys()),
        undelivered=undelivered,
        missing=args.tickets - sum(1 for row in rows if row.kind == "escalate"),
        repeats=sum(receiver.repeats.values()),
        states=dict(states),
        held_at_kill=len(held),
        takeover=takeover,
        troubles=dict(troubles),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def show(result: Result) -> None:
    print(f"escalations received: {len(result.escalation_lateness)} of {result.tickets}")
    print(f"  lateness (receipt - instant): {percentiles(result.escalation_lateness)}")
    print(f"  worst per tenth of the window (s): {result.timeline()}")
    print(
        f"  lost (recorded sent, never received): {result.lost}; still pending at the end: "
        f"{result.undelivered}; tickets without an escalation row: {result.missing}"
    )
    print(f"  repeats dropped by idempotency key: {result.repeats}")
    print(f"breach notices recorded: {len(result.breach_lateness)} of {result.tickets}")
    print(f"  lateness (sent_at - instant): {percentiles(result.breach_lateness)}")
    print(f"outbox rows by state: {result.states}")
    if result.held_at_kill:
        takeover = "never" if result.takeover is None else f"{result.takeover:.3f} s"
        held = f", the last recorded sent {takeover} after the kill"
    else:
        held = " (the kill missed a delivery in progress)"
    print(
        f"rows held by the killed worker: {result.held_at_kill}{held}; "
        f"repeats beyond those (double claims): {result.unexplained_repeats}"
    )
    for gist, count in sorted(result.troubles.items(), key=lambda t: -t[1])[:8]:
        print(f"worker log: {count} x {gist}")
    print("OK" if result.ok else "GOAL MISSED: lost, repeated or later than 1 s (see above)")


def run(argv: list[str] | None = None) -> Result:
    """Parse the command line and run one soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=300.0, help="seconds thresholds span")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the window")
    parser.add_argument("--restart-after", type=float, default=0.0, help="seconds")
    parser.add_argument("--lead", type=float, help="seconds before the first threshold")
    parser.add_argument("--grace", type=float, default=90.0, help="seconds to wait at the end")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="database URL (default: an SQLite file)")
    where.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    args = parser.parse_args(argv)

    cluster = None
    with tempfile.TemporaryDirectory(prefix="slaengine-soak-") as tmp:
        directory = Path(tmp)
        url = args.database or f"sqlite:///{directory / 'soak.db'}"
        if args.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.postgres import PostgresCluster, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL binaries not found (scripts/ensure-postgres.sh)")
            cluster = PostgresCluster(bindir, fsync=True).start()
            url = cluster.create_database("soak")
        kind = "PostgreSQL (throwaway, fsync on)" if cluster else url.split(":")[0]
        print(
            f"soak: {args.tickets} tickets, {args.window:.0f} s window, {args.workers} worker(s), "
            f"{kind}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        try:
            result = soak(args, url, directory)
        finally:
            if cluster is not None:
                cluster.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(argv)
    show(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
