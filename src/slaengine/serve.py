"""``slaengine serve``, ``slaengine worker`` and ``slaengine token``: running the service.

uvicorn picks uvloop and httptools (project dependencies) for its event loop
and HTTP parser. ``serve --workers N`` runs N HTTP processes: each keeps its
own ticket clocks, checked against the store before use, so a ticket's events
may reach any of them; the scheduler runs once, in the supervising process.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slaengine.database import WalCheckpointer, sqlite_url

log = logging.getLogger("slaengine")

#: The longest the scheduler waits between looks for due deliveries.
TICK_SECONDS = 0.2
#: The shortest: rows due within it of each other go out in one round.
MIN_WAIT_SECONDS = 0.05
#: How often a process looks for ruleset reloads that another process accepted.
RELOAD_POLL_SECONDS = 1.0
#: Carries ``serve``'s arguments to the worker processes of ``serve --workers N``.
ARGS_ENV = "SLAENGINE_SERVE_ARGS"
#: The cyclic collector's thresholds while serving (Python's default: 700, 10, 10).
GC_THRESHOLDS = (10_000, 2, 100)


def _steady_gc() -> None:
    """Keep the cyclic garbage collector's pauses out of request latency.

    Once the rulesets, plugins and store are loaded, those objects live as
    long as the process: ``gc.freeze`` moves them out of the collector's
    sight, so a full collection no longer walks them. What grows while
    serving is the cache of ticket clocks (about 80 objects a ticket, and
    no reference cycles). A middle-generation collection walks everything
    made since the last one: with Python's default thresholds that came
    every few seconds and cost about 4 % of the CPU; with (20,000, 20) it
    came every half minute at 1,000 events/s and stalled every request for
    about 200 ms (bench/bench_http.py, its slowest second). With these the
    young generation is collected every 10,000 new objects and the middle
    one every second time (about 15 ms, every few seconds); the whole heap
    after a hundred of those, i.e. only as the heap keeps growing.
    Unreachable cycles are still collected, later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _checkpointing(sla: Any) -> AbstractContextManager[object]:
    """The WAL checkpointer of ``sla``'s SQLite file while in use (nothing for other databases)."""
    return WalCheckpointer.for_engine(sla.store.engine) or nullcontext()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at INFO: a line per delivered escalation.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _tenants(values: list[str] | None, default_rulesets: str) -> dict[str, str]:
    tenants = {}
    for value in values or [f"default={default_rulesets}"]:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--tenant takes NAME=RULESETS_DIR, not {value!r}")
        tenants[name] = path
    return tenants


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rulesets", default="rulesets", help="rulesets of the default tenant")
    p.add_argument(
        "--tenant",
        action="append",
        metavar="NAME=DIR",
        help="a tenant and its rulesets directory (repeatable)",
    )
    p.add_argument("--data", default="data", help="data directory (embedded SQLite lives here)")
    p.add_argument(
        "--database",
        default=os.environ.get("SLAENGINE_DATABASE"),
        help="database URL (default: SQLite in --data; or postgresql://...)",
    )
    p.add_argument("--plugins-config", help="plugin settings YAML")


def add_serve_parsers(sub: Any) -> None:
    """Register serve, worker and token."""
    p = sub.add_parser("serve", help="run the HTTP API and the escalation scheduler")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--no-scheduler", action="store_true", help="leave escalations to workers")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="HTTP worker processes (each keeps its own clock cache, checked against the store)",
    )
    p.set_defaults(func=serve_command)

    p = sub.add_parser("worker", help="run only the escalation scheduler")
    _common(p)
    p.add_argument(
        "--name",
        help="a name unique among the live workers of the database (default: worker-PID); "
        "deliveries held by a worker that died are taken over by the other workers at once, "
        "or by its restart under the same name",
    )
    p.set_defaults(func=worker_command)

    p = sub.add_parser("token", help="create an API token for a tenant (shown once)")
    p.add_argument("tenant")
    p.add_argument("--name", default="cli")
    p.add_argument("--data", default="data")
    p.add_argument("--database", default=os.environ.get("SLAENGINE_DATABASE"))
    p.set_defaults(func=token_command)


def _app(args: argparse.Namespace, worker: str) -> Any:
    from slaengine.api import SlaApp
    from slaengine.plugins import PluginHost, load_plugin_config
    from slaengine.store import SqlStore

    store = SqlStore.open(args.database or sqlite_url(args.data))
    host = PluginHost(load_plugin_config(args.plugins_config))
    sla = SlaApp(store, _tenants(args.tenant, args.rulesets), host, announce_in_background=True)
    for tenant in sla.tenants.values():
        tenant.service.worker = worker
        # Several processes write the database: work rounds out before taking its lock.
        tenant.service.optimistic = getattr(args, "workers", 1) > 1
    return sla


def _scheduler(sla: Any, stop: threading.Event) -> threading.Thread:
    """The delivery loop: a round (which drains whatever is due), then a wait until
    the next row comes due, at least MIN_WAIT_SECONDS (rows that come due close
    together are delivered in one round: each round costs a write transaction)
    and at most TICK_SECONDS (a row scheduled meanwhile may come due sooner)."""

    def loop() -> None:
        while not stop.is_set():
            wait = TICK_SECONDS
            try:
                sla.deliver_due()
                due = sla.next_due()
                if due is not None:
                    left = (due - datetime.now(UTC)).total_seconds()
                    wait = min(max(left, MIN_WAIT_SECONDS), TICK_SECONDS)
            except Exception:  # keep the scheduler alive; the next round retries
                log.exception("scheduler round failed")
            stop.wait(wait)

    thread = threading.Thread(target=loop, name="slaengine-scheduler", daemon=True)
    thread.start()
    return thread


def _reload_follower(sla: Any, stop: threading.Event) -> threading.Thread:
    """Take up, every RELOAD_POLL_SECONDS, the ruleset reloads other processes accepted."""

    def loop() -> None:
        while not stop.wait(RELOAD_POLL_SECONDS):
            try:
                sla.follow_reloads()
            except Exception:  # keep following; the next look retries
                log.exception("looking for ruleset reloads failed")

    thread = threading.Thread(target=loop, name="slaengine-reloads", daemon=True)
    thread.start()
    return thread


def worker_app() -> Any:
    """The app of one worker process of ``serve --workers N`` (a uvicorn app factory)."""
    from slaengine.api import create_app

    args = argparse.Namespace(**json.loads(os.environ[ARGS_ENV]))
    sla = _app(args, worker=f"serve-{os.getpid()}")
    app = create_app(sla)
    _reload_follower(sla, threading.Event())  # a daemon: ends with the process
    _steady_gc()
    return app


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from slaengine.api import create_app
    from slaengine.tenancy import create_token, has_tokens

    _logging()
    sla = _app(args, worker=f"serve-{os.getpid()}")
    if not has_tokens(sla.store.engine):
        token = create_token(sla.store.engine, next(iter(sla.tenants)), "first start")
        path = Path(args.data)
        path.mkdir(parents=True, exist_ok=True)
        token_file = path / "token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        print(f"created an API token for tenant {next(iter(sla.tenants))!r}: see {token_file}")
    stop = threading.Event()
    if not args.no_scheduler:
        _scheduler(sla, stop)
    _reload_follower(sla, stop)
    print(f"slaengine serving on http://{args.host}:{args.port} (OpenAPI at /docs)", flush=True)
    # One checkpointer per database is enough: with --workers N it runs here, in the supervisor.
    with _checkpointing(sla):
        try:
            if args.workers > 1:
                # Each worker process opens the database and rulesets itself; the
                # scheduler stays here, in the supervising process.
                settings = {k: v for k, v in vars(args).items() if k != "func"}
                os.environ[ARGS_ENV] = json.dumps(settings)
                uvicorn.run(
                    "slaengine.serve:worker_app",
                    factory=True,
                    workers=args.workers,
                    host=args.host,
                    port=args.port,
                    log_level="warning",
                )
            else:
                app = create_app(sla)
                _steady_gc()
                uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        finally:
            stop.set()
            sla.close()
    return 0


def worker_command(args: argparse.Namespace) -> int:
    from slaengine.liveness import WorkerNameInUse

    _logging()
    name = args.name or f"worker-{os.getpid()}"
    sla = _app(args, worker=name)
    # The liveness lock is taken before the first claim, for the worker's
    # whole life (every tenant shares the database, and the name).
    try:
        freed = sla.store.start_worker(name)
    except WorkerNameInUse as exc:
        sla.close()
        raise SystemExit(str(exc)) from None
    if freed:
        log.info("took back %d deliveries held by an earlier run of %s", freed, name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _steady_gc()
    with _checkpointing(sla):
        thread = _scheduler(sla, stop)
        _reload_follower(sla, stop)
        print(f"slaengine worker {name} running", flush=True)
        try:
            while thread.is_alive() and not stop.is_set():
                time.sleep(0.5)
        except KeyboardInterrupt:
            stop.set()
        # Let the round in progress record what it sent before the lock goes: once
        # it has, the other workers see this one dead and take whatever it holds.
        thread.join(timeout=30)
        if thread.is_alive():
            # A send still hangs: keep the lock (the process exit drops it), or the
            # others would take and send again the rows this round is sending.
            log.warning("worker %s stops with a delivery still in progress", name)
            return 1
        sla.store.stop_worker(name)
    sla.close()
    return 0


def token_command(args: argparse.Namespace) -> int:
    from slaengine.store import SqlStore
    from slaengine.tenancy import create_token

    store = SqlStore.open(args.database or sqlite_url(args.data))
    print(create_token(store.engine, args.tenant, args.name))
    return 0
