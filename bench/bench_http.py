"""Sustained event ingestion over loopback HTTP: events/s and latency percentiles.

    python bench/bench_http.py [--seconds 60] [--clients 4] [--runs 3] [--rate 1000]
                               [--database URL | --postgres] [--batch 1] [-- SERVE ARGS]

Each run starts ``slaengine serve`` as its own process on a fresh temporary
data directory (SQLite there unless --database is given; --postgres starts a
throwaway PostgreSQL cluster with fsync on and gives every run a fresh
database), waits until it answers, then --clients processes post realistic
event streams for --seconds: each client keeps --open tickets going and
picks one at random for its next event (created, replies, pending customer
and back, a severity change now and then, resolved), with instants taken
from the wall clock as a live helpdesk would send them, and now and then the
retry of an event already sent. A ticket's next event is sent only once its
previous one has been answered, as a helpdesk sends them in order.

Two kinds of load:

- closed loop (default): each client has one keep-alive connection and sends
  its next request when the last is answered; the figure is the most the
  server takes at that concurrency;
- open loop (``--rate R``): R events a second are offered in all, spread
  evenly over the clients, whatever the answers; each client sends on up to
  --connections keep-alive connections. A request's latency counts from the
  instant it was due, so a server that falls behind shows it in the
  percentiles (no coordinated omission).

Clients are lean (``http.client``; asyncio streams on uvloop in open loop) so the load
generator costs little of the shared CPU. After each run every acknowledged
event is looked for in the database: the figures count events that were
really stored.

Escalations are planned as a deployment plans them: the webhook plugin is
configured (``--plugins-config``) to send the plan's ``notify`` actions to a
receiver the bench runs, so every event that moves a clock rewrites its
ticket's pending outbox rows (``--no-webhook``: plugins left unconfigured,
which are owed no escalation rows at all).

Printed per run: events/s, request latency p50/p99, errors, the medians
over per-second windows (events/s and p99), the server's CPU time per event,
the load average and whether the store holds every acknowledged event; with
--runs N, the median of each figure over the runs. The first --warmup
seconds are left out of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvloop

from slaengine.database import connect, events, sqlite_url

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ["CN-LOTUS-RETAIL-2026", "CN-NORTHWIND-LOGISTICS-2026", "CN-HUAXIA-BANK-2026"]
SEVERITIES = ["urgent", "serious", "general", "consultation"]
CHANNELS = ["phone", "email", "web", "chat"]

#: One request's outcome: (finish time, latency in seconds, answered 200, events in it).
#: Its start (when it was due, or sent) is finish time - latency.
Row = tuple[float, float, bool, int]
#: Open loop: how long requests still queued at the end of a run are waited for.
LATE_SECONDS = 5.0
#: A second whose p99 is over this is listed by name (ms).
SLOW_MS = 50
#: What a --postgres cluster logs, to set beside the slow seconds.
PG_LOGGING = {
    "log_checkpoints": "on",
    "log_autovacuum_min_duration": "0",
    "log_min_duration_statement": str(SLOW_MS),
    "log_timezone": "UTC",
    # Where PostgreSQL's own time goes: printed after each run (top statements).
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track_planning": "on",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(rng: random.Random) -> list[tuple[str, dict]]:
    """The events of one ticket's life after ``created``: (type, fields)."""
    steps: list[tuple[str, dict]] = [("agent_replied", {"public": True})]
    for _ in range(rng.randint(0, 2)):
        steps.append(("status_changed", {"status": "pending_customer"}))
        steps.append(("customer_replied", {}))
        steps.append(("status_changed", {"status": "open"}))
    if rng.random() < 0.2:
        steps.append(("severity_changed", {"severity": rng.choice(SEVERITIES)}))
    steps.append(("agent_replied", {"public": rng.random() < 0.7}))
    steps.append(("resolved", {}))
    return steps


class Ticket:
    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.steps = script(rng)
        self.sent = 0  # events sent so far, created included
        self.created = {
            "contract": rng.choice(CONTRACTS),
            "severity": rng.choice(SEVERITIES),
            "channel": rng.choice(CHANNELS),
        }

    def next_event(self) -> dict:
        if self.sent == 0:
            kind, fields = "created", self.created
        else:
            kind, fields = self.steps[self.sent - 1]
        self.sent += 1
        return {
            "event_id": f"{self.name}-{self.sent}",
            "type": kind,
            "at": datetime.now(UTC).isoformat(),
            "fields": fields,
        }

    @property
    def done(self) -> bool:
        return self.sent > len(self.steps)


class Workload:
    """One client's tickets: what to post next, and which events were acknowledged."""

    def __init__(self, index: int, args: argparse.Namespace) -> None:
        self.index = index
        self.args = args
        self.rng = random.Random(index)
        self.serial = 0
        self.open = [self._new_ticket() for _ in range(args.open)]
        self.busy: set[str] = set()  # tickets with a request in flight
        self.last: dict[str, tuple[str, list[dict]]] = {}  # each ticket's last request
        self.acknowledged: set[str] = set()  # event ids answered 200

    def _new_ticket(self) -> Ticket:
        self.serial += 1
        return Ticket(f"C{self.index}-T{self.serial}", self.rng)

    def next_request(self) -> tuple[str, str, list[dict]]:
        """(ticket, path, events) of the next request, on a ticket with none in flight."""
        free = [i for i, t in enumerate(self.open) if t.name not in self.busy]
        if not free:  # every ticket waits for an answer: a new one starts
            self.open.append(self._new_ticket())
            free = [len(self.open) - 1]
        i = self.rng.choice(free)
        ticket = self.open[i]
        previous = self.last.get(ticket.name)
        if previous is not None and self.rng.random() < self.args.retries:
            path, chunk = previous  # a webhook retry: the same events again
        else:
            chunk = []
            while len(chunk) < self.args.batch and not ticket.done:
                chunk.append(ticket.next_event())
            path = f"/v1/tickets/{ticket.name}/events"
            self.last[ticket.name] = (path, chunk)
            if ticket.done:
                self.open[i] = self._new_ticket()
        self.busy.add(ticket.name)
        return ticket.name, path, chunk

    def answered(self, ticket: str, chunk: list[dict], ok: bool) -> None:
        self.busy.discard(ticket)
        if ok:
            self.acknowledged.update(event["event_id"] for event in chunk)

    def body(self, chunk: list[dict]) -> bytes:
        return json.dumps(chunk if self.args.batch > 1 else chunk[0]).encode()


def client(
    index: int, port: int, token: str, args: argparse.Namespace, start_at: float, out: mp.Queue
) -> None:
    """Post events until the run ends; send back its rows and the acknowledged event ids."""
    work = Workload(index, args)
    if args.rate:
        rows = uvloop.run(open_loop(work, port, token, start_at))  # leaner than asyncio's loop
    else:
        rows = closed_loop(work, port, token, start_at)
    out.put((rows, sorted(work.acknowledged)))


def closed_loop(work: Workload, port: int, token: str, start_at: float) -> list[Row]:
    """One connection, the next request as soon as the last is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rows: list[Row] = []
    while time.time() < start_at:
        time.sleep(0.001)
    stop_at = start_at + work.args.seconds
    while time.time() < stop_at:
        ticket, path, chunk = work.next_request()
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, work.body(chunk), headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            ok = False
        rows.append((time.time(), time.perf_counter() - t0, ok, len(chunk)))
        work.answered(ticket, chunk, ok)
    conn.close()
    return rows


class Connection:
    """A keep-alive HTTP/1.1 connection on asyncio streams: just what posting events needs."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = (
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> int:
        """The status of one POST; the connection is reopened after a failure."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                % (path.encode(), self.head, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            return int(head[9:12])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            self.streams = None
            return 0


async def open_loop(work: Workload, port: int, token: str, start_at: float) -> list[Row]:
    """Requests due at a fixed rate, each on a free connection, whatever the answers."""
    args = work.args
    interval = args.clients / args.rate
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.connections):
        free.put_nowait(Connection(port, token))
    rows: list[Row] = []

    async def send(due: float) -> None:
        conn = await free.get()
        try:
            ticket, path, chunk = work.next_request()
            status = await conn.post(path, work.body(chunk))
        finally:
            free.put_nowait(conn)
        now = time.time()
        rows.append((now, now - due, status == 200, len(chunk)))
        work.answered(ticket, chunk, status == 200)

    # The clients start a fraction of an interval apart, so their requests interleave.
    due = start_at + interval * work.index / args.clients
    stop_at = start_at + args.seconds
    tasks: dict[asyncio.Task[None], float] = {}  # unanswered requests and when they were due
    while due < stop_at:
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(due))
        tasks[task] = due
        task.add_done_callback(tasks.pop)
        due += interval
    # A server that fell behind leaves requests queued: those not answered within
    # a few seconds of the end are given up and counted as failed (with the time
    # they waited), not waited for.
    if tasks:
        _, late = await asyncio.wait(list(tasks), timeout=LATE_SECONDS)
        now = time.time()
        rows += [(now, now - tasks[task], False, args.batch) for task in late]
        for task in late:
            task.cancel()
    return rows


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its live descendants (``serve --workers``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError):
                continue  # gone meanwhile
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = 0
    for member in tree:
        try:
            ticks += sum(int(x) for x in _stat(member)[11:15])  # utime stime cutime cstime
        except OSError:
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    events_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    median_window_rate: float
    median_window_p99_ms: float
    worst_window_p99_ms: float  # the slowest second's p99
    worst_window: int  # and which second of the run it was
    slow_windows: dict[int, float]  # second -> p99 (ms) of each second over SLOW_MS
    measured_from: float  # epoch seconds: second 0 of the windows
    server_cpu_ms_per_event: float
    load: float
    unstored: int  # events answered 200 that the store does not hold


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


class Receiver(BaseHTTPRequestHandler):
    """The webhook's far end: takes every delivery (and counts it)."""

    received = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Receiver.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_receiver() -> int:
    """Serve :class:`Receiver` on a free loopback port (a daemon thread); the port."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver.server_address[1]


def webhook_config(data: Path, receiver_port: int) -> Path:
    """A plugin config sending ``notify`` actions to the bench's receiver."""
    path = data / "plugins.yaml"
    path.write_text(
        "plugins:\n  webhook:\n"
        f"    url: http://127.0.0.1:{receiver_port}/sla\n    secret: bench-secret\n"
    )
    return path


def run_once(args: argparse.Namespace, database: str | None, serve_args: list[str]) -> Result:
    data = Path(tempfile.mkdtemp(prefix="slaengine-bench-"))
    port = free_port()
    cmd = [sys.executable, "-m", "slaengine", "serve", "--data", str(data), "--port", str(port)]
    cmd += ["--rulesets", str(ROOT / "rulesets"), *serve_args]
    if args.receiver_port:
        cmd += ["--plugins-config", str(webhook_config(data, args.receiver_port))]
    if database:
        cmd += ["--database", database]
    with open(data / "server.log", "w") as log:
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"server did not start:\n{(data / 'server.log').read_text()}")
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200 and (data / "token").exists():
                    break
            except OSError:
                pass
            time.sleep(0.2)
        token = (data / "token").read_text().strip()
        out: mp.Queue = mp.Queue()
        start_at = time.time() + 1
        procs = [
            mp.Process(target=client, args=(i, port, token, args, start_at, out))
            for i in range(args.clients)
        ]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu_from_at = start_at + args.warmup
        time.sleep(args.warmup)
        cpu_from = cpu_seconds(server.pid)
        rows: list[Row] = []
        acknowledged: set[str] = set()
        for _ in procs:
            client_rows, client_acknowledged = out.get()
            rows += client_rows
            acknowledged.update(client_acknowledged)
        cpu_used = cpu_seconds(server.pid) - cpu_from
        load = os.getloadavg()[0]
        for p in procs:
            p.join()
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    unstored = len(acknowledged - stored_event_ids(database or sqlite_url(data)))
    shutil.rmtree(data)  # kept only when the run failed (server.log is there)
    # Throughput: events answered within the measured period. Latency and errors:
    # every request due (or sent) within it, however late it was answered, so a
    # backlog draining after the period still counts in the percentiles.
    span = start_at + args.seconds - cpu_from_at
    done = [r for r in rows if cpu_from_at <= r[0] < cpu_from_at + span]
    offered = [r for r in rows if cpu_from_at <= r[0] - r[1] < cpu_from_at + span]
    events = sum(r[3] for r in done if r[2])
    latencies = [r[1] for r in offered]
    answered: dict[int, list[Row]] = {}
    for r in done:
        answered.setdefault(int(r[0] - cpu_from_at), []).append(r)
    due: dict[int, list[Row]] = {}
    for r in offered:
        due.setdefault(int(r[0] - r[1] - cpu_from_at), []).append(r)
    window_p99 = {
        k: percentile([r[1] for r in w], 0.99) * 1000 for k, w in due.items() if k < int(span)
    }
    worst = max(window_p99, key=window_p99.__getitem__)
    return Result(
        events_per_s=events / span,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=sum(1 for r in offered if not r[2]),
        requests=len(offered),
        median_window_rate=statistics.median(
            sum(r[3] for r in w if r[2]) for k, w in answered.items() if k < int(span)
        ),
        median_window_p99_ms=statistics.median(window_p99.values()),
        worst_window_p99_ms=window_p99[worst],
        worst_window=worst,
        slow_windows={k: v for k, v in sorted(window_p99.items()) if v > SLOW_MS},
        measured_from=cpu_from_at,
        server_cpu_ms_per_event=cpu_used * 1000 / max(events, 1),
        load=load,
        unstored=unstored,
    )


def stored_event_ids(url: str) -> set[str]:
    """Every event id the service's database holds."""
    engine = connect(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(events.c.event_id)).scalars())
    finally:
        engine.dispose()


def show(label: str, r: Result) -> None:
    print(
        f"{label}: {r.events_per_s:,.0f} events/s; latency p50 {r.p50_ms:.1f} ms, "
        f"p99 {r.p99_ms:.1f} ms; errors {r.errors}/{r.requests}; per-second windows: median "
        f"{r.median_window_rate:,.0f} events/s, median p99 {r.median_window_p99_ms:.1f} ms, "
        f"worst p99 {r.worst_window_p99_ms:.1f} ms (second {r.worst_window:.0f}); "
        f"server CPU {r.server_cpu_ms_per_event:.3f} ms/event; load {r.load:.2f}; "
        f"acknowledged but not stored: {r.unstored}",
        flush=True,
    )
    if r.slow_windows:
        slow = ", ".join(f"{k} ({v:.0f} ms)" for k, v in r.slow_windows.items())
        start = datetime.fromtimestamp(r.measured_from, UTC).strftime("%H:%M:%S.%f")[:-3]
        print(f"  seconds with p99 over {SLOW_MS} ms (second 0: {start} UTC): {slow}", flush=True)


def show_postgres_log(log: Path, offset: int) -> None:
    """What PostgreSQL logged from ``offset`` on: checkpoints, autovacuum, slow statements."""
    with log.open("rb") as stream:
        stream.seek(offset)
        lines = stream.read().decode(errors="replace").splitlines()
    notable = ("checkpoint", "automatic", "duration:")
    found = [line for line in lines if any(word in line for word in notable)]
    for line in found[:20]:
        print(f"  postgres: {line[:200]}", flush=True)
    if len(found) > 20:
        print(f"  postgres: ... and {len(found) - 20} more such lines", flush=True)


def postgres_cpu_seconds(cluster: Any) -> float:
    """CPU time of the PostgreSQL server: the postmaster and every backend it has reaped."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def show_postgres_statements(url: str, events: int, top: int = 6) -> None:
    """The statements PostgreSQL spent most time on during a run (pg_stat_statements)."""
    engine = connect(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT calls, rows, total_exec_time, total_plan_time, query "
                    "FROM pg_stat_statements WHERE dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "ORDER BY total_exec_time + total_plan_time DESC LIMIT :top"
                ),
                {"top": top},
            ).all()
    finally:
        engine.dispose()
    for calls, count, executing, planning, query in rows:
        text = " ".join(query.split())[:90]
        print(
            f"  postgres time: {(executing + planning) / max(events, 1) * 1000:6.1f} us/event "
            f"(planning {planning / max(events, 1) * 1000:.1f}) {calls:>7,} calls "
            f"{count:>8,} rows  {text}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds left out at the start")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--open", type=int, default=50, help="open tickets per client")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument(
        "--rate", type=float, default=0, help="open loop: events/s offered in all (0: closed loop)"
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="open loop: connections per client"
    )
    parser.add_argument("--retries", type=float, default=0.01, help="share of repeated posts")
    parser.add_argument("--runs", type=int, default=1, help="runs; medians printed")
    parser.add_argument(
        "--no-webhook",
        action="store_true",
        help="leave the plugins unconfigured (no escalation rows are owed)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="database URL (default: SQLite in the data dir)")
    where.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL cluster"
    )
    parser.add_argument("serve_args", nargs="*", help="extra `slaengine serve` arguments")
    args = parser.parse_args()
    args.seconds += args.warmup
    args.receiver_port = 0
    if not args.no_webhook and not any(a.startswith("--plugins-config") for a in args.serve_args):
        args.receiver_port = start_receiver()

    cluster = None
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.postgres import PostgresCluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("PostgreSQL server binaries not found (scripts/ensure-postgres.sh)")
        cluster = PostgresCluster(bindir, fsync=True, settings=PG_LOGGING).start()
    kind = "PostgreSQL (throwaway, fsync on)" if cluster else args.database or "SQLite (embedded)"
    load = (
        f"open loop: {args.rate:,.0f} events/s offered on {args.clients} x {args.connections} "
        "connections"
        if args.rate
        else f"closed loop: {args.clients} connections"
    )
    plugins = "webhook (notify) to a local receiver" if args.receiver_port else "unconfigured"
    print(
        f"database: {kind}; {load}; clients {args.clients} x {args.open} open tickets; "
        f"batch {args.batch}; {args.seconds - args.warmup:.0f} s measured per run; "
        f"load before {os.getloadavg()[0]:.2f}; serve {' '.join(args.serve_args) or '(defaults)'}"
        f"; plugins: {plugins}",
        flush=True,
    )
    results = []
    try:
        for n in range(args.runs):
            database = cluster.create_database(f"bench{n}") if cluster else args.database
            logged = cluster.log.stat().st_size if cluster else 0
            if cluster is not None:
                with connect(database).begin() as conn:
                    conn.execute(sa.text("CREATE EXTENSION pg_stat_statements"))
                pg_cpu = postgres_cpu_seconds(cluster)
            results.append(run_once(args, database, args.serve_args))
            show(f"run {n + 1}", results[-1])
            if cluster is not None:
                done = results[-1].events_per_s * (args.seconds - args.warmup)
                used = postgres_cpu_seconds(cluster) - pg_cpu
                print(
                    f"  postgres CPU: {used / max(done, 1) * 1000:.3f} ms/event "
                    "(whole run, start-up included)",
                    flush=True,
                )
                show_postgres_statements(database, int(done))
                show_postgres_log(cluster.log, logged)
    finally:
        if cluster is not None:
            cluster.stop()
    if args.receiver_port:
        print(f"webhook deliveries received: {Receiver.received}")
    if len(results) > 1:
        fields = Result.__dataclass_fields__
        medians = Result(
            *(
                {} if f == "slow_windows" else statistics.median(getattr(r, f) for r in results)
                for f in fields
            )
        )
        show(f"median of {len(results)} runs", medians)


if __name__ == "__main__":
    main()
