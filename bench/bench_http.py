"""Sustained event ingestion over loopback HTTP: events/s and latency percentiles.

    python bench/bench_http.py [--seconds 60] [--clients 8] [--batch 1] [--database URL]

Starts ``slaengine serve`` (SQLite in a temporary data directory unless
--database is given) as its own process, then posts ticket timelines
(created, public reply, pending customer, back to open, resolved) from
--clients threads for --seconds, and prints events/s and request latency
p50/p99 (medians of the per-second figures beside the totals).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ["CN-LOTUS-RETAIL-2026", "CN-NORTHWIND-LOGISTICS-2026", "CN-HUAXIA-BANK-2026"]
SEVERITIES = ["urgent", "serious", "general", "consultation"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timeline(n: int, start: datetime) -> list[dict]:
    at = start + timedelta(seconds=n)
    base = {"event_id": f"t{n}", "fields": {}}
    return [
        {
            **base,
            "event_id": f"t{n}-c",
            "type": "created",
            "at": at.isoformat(),
            "fields": {"contract": CONTRACTS[n % 3], "severity": SEVERITIES[n % 4]},
        },
        {
            **base,
            "event_id": f"t{n}-r",
            "type": "agent_replied",
            "at": (at + timedelta(minutes=10)).isoformat(),
            "fields": {"public": True},
        },
        {
            **base,
            "event_id": f"t{n}-p",
            "type": "status_changed",
            "at": (at + timedelta(minutes=30)).isoformat(),
            "fields": {"status": "pending_customer"},
        },
        {
            **base,
            "event_id": f"t{n}-o",
            "type": "status_changed",
            "at": (at + timedelta(hours=2)).isoformat(),
            "fields": {"status": "open"},
        },
        {
            **base,
            "event_id": f"t{n}-s",
            "type": "resolved",
            "at": (at + timedelta(hours=3)).isoformat(),
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--database", default=None)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="slaengine-bench-"))
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "slaengine",
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
        "--rulesets",
        str(ROOT / "rulesets"),
    ]
    if args.database:
        cmd += ["--database", args.database]
    server = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/healthz").status_code == 200 and (data / "token").exists():
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = (data / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        start = datetime(2026, 11, 2, 9, tzinfo=UTC)
        counter = iter(range(10**9))
        lock = threading.Lock()
        latencies: list[tuple[float, float]] = []  # (finish time, seconds)
        errors = [0]
        events_done = [0]
        stop_at = time.time() + args.seconds

        def client() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                while time.time() < stop_at:
                    with lock:
                        n = next(counter)
                    events = timeline(n, start)
                    for i in range(0, len(events), args.batch):
                        chunk = events[i : i + args.batch]
                        body = chunk if args.batch > 1 else chunk[0]
                        t0 = time.perf_counter()
                        r = http.post(f"/v1/tickets/T-{n}/events", json=body)
                        elapsed = time.perf_counter() - t0
                        with lock:
                            latencies.append((time.time(), elapsed))
                            if r.status_code != 200:
                                errors[0] += 1
                            else:
                                events_done[0] += len(chunk)

        began = time.time()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - began
        lat = sorted(x for _, x in latencies)
        per_second: dict[int, list[float]] = {}
        for finished, x in latencies:
            per_second.setdefault(int(finished - began), []).append(x)
        p99s = [sorted(v)[int(len(v) * 0.99)] for v in per_second.values() if len(v) >= 20]
        rates = [len(v) * args.batch for v in per_second.values()]
        print(
            f"database: {args.database or 'sqlite (embedded)'}; clients {args.clients}; "
            f"batch {args.batch}; {took:.0f} s"
        )
        print(
            f"events stored: {events_done[0]} ({events_done[0] / took:,.0f} events/s); "
            f"requests {len(lat)}, errors {errors[0]}"
        )
        print(
            f"latency p50 {lat[len(lat) // 2] * 1000:.1f} ms,"
            f" p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms;"
            f" median of per-second p99 {statistics.median(p99s) * 1000:.1f} ms;"
            f" median events/s per second {statistics.median(rates):,.0f}"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
