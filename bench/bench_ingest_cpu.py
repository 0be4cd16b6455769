"""CPU cost of the ingest path per event, in process: no HTTP, no client on the same cores.

    python bench/bench_ingest_cpu.py [--requests 6000] [--rounds 1,8,32] [--repeats 3]
                                     [--postgres] [--profile] [--rate R] [--hop]
                                     [--processes N [--locked]]

``bench_http.py`` gives the issue's figure, but on a shared 2-core machine
its latency swings with whatever else runs. This measures what one event
costs the service itself: the requests ``bench_http`` would post (same
workload generator, one event each, webhook configured for notify
actions) are parsed as the API parses them and applied with
``SlaService.apply_many`` in rounds of a fixed size, as the ingest
thread's group commit would take them, on a fresh SQLite file (or a
throwaway PostgreSQL). The garbage collector is set as ``serve`` sets it.

Prints, per round size, the median CPU ms per event over the repeats and
the round durations (median, p99, max); or, with --profile, a cProfile of
one run at the first round size.

``--hop`` applies the rounds alternately through two services of one
process on one database (one request stream): a ticket's next event often
finds its clock behind the store, as under ``serve --workers 2`` where any
process may take it, and is brought up to date first.

``--processes N`` runs N such writers at once on one database, as ``serve
--workers N`` does, each on tickets of its own and on --requests of its
own, and adds the events stored per wall second by all of them. They work
out their rounds before taking the SQLite write lock (``optimistic``, as
``serve --workers N`` sets it); ``--locked`` keeps the whole round under
the lock instead, as one process does.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import multiprocessing as mp
import os
import pstats
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_http  # noqa: E402

from slaengine.api import _parse_events  # noqa: E402
from slaengine.database import WalCheckpointer, sqlite_url  # noqa: E402
from slaengine.engine import Engine  # noqa: E402
from slaengine.plugins import PluginHost  # noqa: E402
from slaengine.serve import _steady_gc  # noqa: E402
from slaengine.service import Announcer, SlaService, statuses_json  # noqa: E402
from slaengine.store import SqlStore  # noqa: E402


def requests(n: int, client: int = 0) -> list[tuple[str, bytes]]:
    """(ticket, body) of n requests as bench_http's client number ``client`` would post them."""
    work = bench_http.Workload(client, argparse.Namespace(open=200, batch=1, retries=0.01))
    out = []
    for _ in range(n):
        ticket, _path, chunk = work.next_request()
        out.append((ticket, json.dumps(chunk[0]).encode()))
        work.answered(ticket, chunk, True)
    return out


def run(
    bodies: list[tuple[str, bytes]],
    size: int,
    url: str,
    profile: cProfile.Profile | None = None,
    rate: float = 0,
    optimistic: bool = False,
    start: mp.synchronize.Barrier | None = None,
    hop: bool = False,
) -> tuple[float, list[float]]:
    """Apply every request in rounds of ``size`` (paced to ``rate`` requests/s when given,
    as a server between arrivals), with serve's WAL checkpointer: (CPU s, round durations).

    ``start``: wait there for the other writers first (``--processes``)."""
    host = PluginHost({"webhook": {"url": "http://127.0.0.1:9/sla", "secret": "bench"}})
    rounds: list[float] = []
    with Engine.from_directory(ROOT / "rulesets") as engine:
        announcer = Announcer()  # decision and routing hooks off the round, as serve has them
        store = SqlStore.open(url)
        service = SlaService(engine, host, store, optimistic=optimistic or hop, announcer=announcer)
        services = [service]
        if hop:  # another process's service, as serve --workers 2 runs them
            other = SlaService(
                engine, host, SqlStore.open(url), optimistic=True, announcer=announcer
            )
            services.append(other)
        before = gc.get_threshold()
        _steady_gc()
        try:
            with WalCheckpointer.for_engine(service.store.engine) or nullcontext():
                if start is not None:
                    start.wait()
                cpu = time.process_time()
                if profile is not None:
                    profile.enable()
                begun = time.perf_counter()
                for i in range(0, len(bodies), size):
                    if rate:
                        time.sleep(max(0.0, begun + i / rate - time.perf_counter()))
                    chunk = [(t, _parse_events(t, json.loads(b))) for t, b in bodies[i : i + size]]
                    started = time.perf_counter()
                    writer = services[(i // size) % len(services)]
                    results = writer.apply_many([events for _, events in chunk])
                    rounds.append(time.perf_counter() - started)
                    for (ticket, _), result in zip(chunk, results, strict=True):
                        if isinstance(result, Exception):
                            raise result
                        statuses_json(result[ticket])  # the answer's body
                announcer.close()  # its hook calls are part of the cost
                if profile is not None:
                    profile.disable()
                used = time.process_time() - cpu
        finally:
            gc.unfreeze()
            gc.set_threshold(*before)
            for each in services:
                each.store.engine.dispose()
            host.close()
    return used, rounds


def _writer(
    index: int, args: argparse.Namespace, size: int, url: str, start: Any, out: Any
) -> None:
    """One of --processes writers: its own tickets, all at once with the others."""
    bodies = requests(args.requests, client=index)
    optimistic = not args.locked
    out.put(run(bodies, size, url, rate=args.rate, optimistic=optimistic, start=start))


def together(args: argparse.Namespace, size: int, url: str) -> tuple[float, float, list[float]]:
    """--processes writers on one database: (events/s stored by all, CPU s, round durations)."""
    start = mp.Barrier(args.processes + 1)
    out: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=_writer, args=(i, args, size, url, start, out))
        for i in range(args.processes)
    ]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    runs = [out.get() for _ in procs]
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join()
    rounds = [d for _, durations in runs for d in durations]
    return args.requests * args.processes / wall, sum(cpu for cpu, _ in runs), rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="requests (one event each)")
    parser.add_argument("--rounds", default="1,8,32", help="round sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per round size (median)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    parser.add_argument(
        "--rate", type=float, default=0, help="pace requests to this many a second (0: flat out)"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="writers at once on one database (and events/s)"
    )
    parser.add_argument(
        "--locked", action="store_true", help="with --processes: whole rounds under the lock"
    )
    parser.add_argument(
        "--hop", action="store_true", help="rounds alternate between two services of one database"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.rounds.split(",")]
    cluster = None
    if args.postgres:
        from tests.postgres import PostgresCluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("PostgreSQL server binaries not found (scripts/ensure-postgres.sh)")
        cluster = PostgresCluster(bindir, fsync=True).start()
    serial = itertools.count()

    scratch = tempfile.TemporaryDirectory(prefix="bench-ingest-")

    def url() -> str:
        if cluster is not None:
            return cluster.create_database(f"ingest{next(serial)}")
        return sqlite_url(tempfile.mkdtemp(dir=scratch.name))

    bodies = requests(args.requests)
    print(
        f"{args.requests} requests of one event; {'PostgreSQL' if cluster else 'SQLite'}; "
        f"{'rounds alternating between two services; ' if args.hop else ''}"
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        if args.profile:
            profile = cProfile.Profile()
            run(bodies, sizes[0], url(), profile, hop=args.hop)
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)
            return
        if args.processes:
            mode = "whole rounds under the lock" if args.locked else "optimistic"
            print(f"writer processes at once: {args.processes} ({mode})", flush=True)
            for size in sizes:
                runs = [together(args, size, url()) for _ in range(args.repeats)]
                rates = [rate for rate, _, _ in runs]
                per_event = [cpu / (args.requests * args.processes) * 1000 for _, cpu, _ in runs]
                durations = sorted(d * 1000 for _, _, rounds in runs for d in rounds)
                print(
                    f"rounds of {size:>3}: {statistics.median(rates):,.0f} events/s stored "
                    f"(runs {', '.join(f'{x:,.0f}' for x in rates)}); CPU "
                    f"{statistics.median(per_event):.3f} ms/event; round ms median "
                    f"{statistics.median(durations):.2f}, p99 "
                    f"{durations[int(len(durations) * 0.99)]:.2f}",
                    flush=True,
                )
            return
        for size in sizes:
            runs = [
                run(bodies, size, url(), rate=args.rate, hop=args.hop) for _ in range(args.repeats)
            ]
            per_event = [cpu / args.requests * 1000 for cpu, _ in runs]
            durations = sorted(d * 1000 for _, rounds in runs for d in rounds)
            print(
                f"rounds of {size:>3}: CPU {statistics.median(per_event):.3f} ms/event "
                f"(runs {', '.join(f'{x:.3f}' for x in per_event)}); round ms median "
                f"{statistics.median(durations):.2f}, p99 "
                f"{durations[int(len(durations) * 0.99)]:.2f}, max {durations[-1]:.1f}",
                flush=True,
            )
    finally:
        scratch.cleanup()
        if cluster is not None:
            cluster.stop()
    print(f"after: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
