"""The database schema and connections (SQLAlchemy 2).

SQLite is the embedded default (a file under a data directory, WAL
journal); PostgreSQL serves production. The schema is created and upgraded
by Alembic migrations (``slaengine/migrations``), never by ``create_all``
outside tests of the migrations themselves.

Every row belongs to a tenant; every key starts with the tenant.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine as SqlEngine

log = logging.getLogger(__name__)

#: SQLite's own checkpoint, run by the committing writer once the WAL holds this
#: many pages: a safety net behind :class:`WalCheckpointer` (SQLite's default: 1000).
WAL_AUTOCHECKPOINT_PAGES = 10_000

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 hex; tokens are not stored
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("ticket_id", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the event as JSON
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_events_ticket", "tenant_id", "ticket_id"),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ruleset", sa.String(300), nullable=False),  # name@version+revision
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("statuses", sa.Text, nullable=False),  # metric statuses as JSON
    sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),  # earliest open due
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_tickets_due", "tenant_id", "next_due_at"),
)

#: The condition of the partial index on owed outbox rows.
PENDING_ONLY = "state = 'pending'"

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(600), nullable=False),  # idempotency key (+ plugin)
    sa.Column("kind", sa.String(32), nullable=False),  # escalate | breach
    sa.Column("ticket_id", sa.String(200), nullable=False),
    sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | cancelled | dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("tenant_id", "key", name="uq_outbox_key"),
    # The scheduler's index: only the rows still owed, by when they fall due.
    # Partial, so that sent and cancelled rows (most of the table, over time)
    # are not in it, and so that no planner takes it for a lookup by key:
    # with ``(state, fire_at)`` PostgreSQL's generic plan for cancelling one
    # row by its key walked every pending row until the table was analyzed.
    # Queries that want it say ``state = 'pending'`` literally (PENDING_ROW).
    sa.Index(
        "ix_outbox_pending",
        "tenant_id",
        "fire_at",
        postgresql_where=sa.text(PENDING_ONLY),
        sqlite_where=sa.text(PENDING_ONLY),
    ),
    sa.Index("ix_outbox_ticket", "tenant_id", "ticket_id"),
)

#: The rows of ix_outbox_pending, as a query condition written out (a bound
#: parameter in its place would keep both databases' planners off the index).
PENDING_ROW = outbox.c.state == sa.literal_column("'pending'")

ruleset_reloads = sa.Table(
    "ruleset_reloads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("revisions", sa.Text, nullable=False),  # JSON list of name@version+revision
    sa.Column("errors", sa.Text, nullable=True),
)


def sqlite_url(data_dir: str | Path) -> str:
    """The URL of the embedded database file in ``data_dir``."""
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(path / 'slaengine.db').resolve()}"


def sqlite_file(engine: SqlEngine) -> str | None:
    """The path of ``engine``'s SQLite database file; None for memory or another database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return database


def writer_lock_path(engine: SqlEngine) -> str | None:
    """The lock file that writers of ``engine``'s SQLite file queue on; None if it has none.

    Writers take it before ``BEGIN IMMEDIATE``: a waiter wakes the moment the
    lock is free, where SQLite's own busy handler polls with sleeps of up to
    100 ms.
    """
    database = sqlite_file(engine)
    return None if database is None else f"{database}-writer.lock"


@contextmanager
def writer_lock(engine: SqlEngine) -> Iterator[None]:
    """Hold the writer lock of ``engine``'s SQLite file (nothing for other databases)."""
    path = writer_lock_path(engine)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed
        yield
    finally:
        os.close(fd)


def connect(url: str) -> SqlEngine:
    """An SQLAlchemy engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL syncs at checkpoints, not at every commit: a
            # committed transaction survives a crash of the process (kill -9),
            # but a power loss or OS crash may lose the last transactions since
            # the last checkpoint. The database is never corrupted either way.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def upgrade(engine: SqlEngine) -> None:
    """Bring the schema to the newest migration.

    Processes that open one SQLite file at once (``serve --workers``, a
    worker started beside ``serve``) take turns: SQLite runs each DDL
    statement in a transaction of its own, so two upgrades at once would
    both try to create the first table. PostgreSQL runs the migration in
    one transaction.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with writer_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class WalCheckpointer:
    """Checkpoints an SQLite database's WAL from a thread of its own.

    SQLite checkpoints inside the commit that takes the WAL over its limit:
    with the default limit of 1,000 pages, one write transaction in every
    few dozen stalled for 20-40 ms copying pages into the database file and
    syncing it, and every request of that group commit waited with it. A
    long-running process (``serve``, ``worker``) runs this instead: a
    PASSIVE checkpoint every ``interval`` seconds on its own connection,
    which never blocks the writer and releases the GIL while it works. The
    WAL starts over once a checkpoint has caught up between two writes; if
    writes never pause, the writer's own checkpoint at
    :data:`WAL_AUTOCHECKPOINT_PAGES` still bounds it.
    """

    def __init__(self, path: str | Path, interval: float = 0.25) -> None:
        self.path = str(path)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_engine(cls, engine: SqlEngine, interval: float = 0.25) -> WalCheckpointer | None:
        """A checkpointer for an SQLite file engine; None for any other database."""
        path = sqlite_file(engine)
        return None if path is None else cls(path, interval)

    def start(self) -> WalCheckpointer:
        self._thread = threading.Thread(target=self._run, name="slaengine-checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> WalCheckpointer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # keep going: the writer's checkpoint is the net
                    log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            connection.close()


#: Events a new PostgreSQL database takes before the store analyzes its tables.
ANALYZE_AFTER_EVENTS = 1_000
_ANALYZED = ("events", "tickets", "outbox")
_STATISTICS: weakref.WeakKeyDictionary[SqlEngine, FirstStatistics] = weakref.WeakKeyDictionary()


class FirstStatistics:
    """Analyzes a PostgreSQL database's tables once, early, when nothing else has yet.

    Until a table is first analyzed PostgreSQL guesses that a condition
    like ``tenant_id = 'default'`` picks out 0.5 % of its rows, so it may
    search an index by tenant alone and filter every row of the tenant by
    ticket, which costs more with every row written. Autovacuum's first look
    at a new database can be a minute away (``autovacuum_naptime``), and a
    restored database has no statistics at all. In bench_http a new
    database took 60,000 events that way: lookups of 3-5 ms instead of
    0.03 ms, and a backlog of requests until autovacuum analyzed it.

    So when the store opens a database whose tables were never analyzed, it
    runs ``ANALYZE`` on them itself (on a thread of its own) once they hold
    :data:`ANALYZE_AFTER_EVENTS` events, enough for the planner to see that
    one tenant is most rows. Later analyses are autovacuum's.
    """

    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._to_go: int | None = None  # events still to come; None: nothing (more) to do
        with engine.connect() as conn:
            analyzed = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN :tables "
                    "AND schemaname = current_schema() "
                    "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
                ).bindparams(sa.bindparam("tables", expanding=True)),
                {"tables": list(_ANALYZED)},
            ).scalar_one()
            if analyzed == len(_ANALYZED):
                self.done.set()
                return
            held = conn.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(events.c.event_id).limit(ANALYZE_AFTER_EVENTS).subquery()
                )
            ).scalar_one()
        self._to_go = ANALYZE_AFTER_EVENTS - held
        self.wrote(0)

    @classmethod
    def for_engine(cls, engine: SqlEngine) -> FirstStatistics | None:
        """The engine's keeper of first statistics: PostgreSQL only, one per engine."""
        return cls._of(engine)[0]

    @classmethod
    def committed(cls, engine: SqlEngine, events_added: int) -> None:
        """Count a transaction's events once it has committed (PostgreSQL only).

        The call that creates the keeper counts what the database holds,
        these events included, so they are not counted again.
        """
        found, created = cls._of(engine)
        if found is not None and not created:
            found.wrote(events_added)

    @classmethod
    def _of(cls, engine: SqlEngine) -> tuple[FirstStatistics | None, bool]:
        """The engine's keeper, and whether this call created it."""
        if engine.dialect.name != "postgresql":
            return None, False
        found = _STATISTICS.get(engine)
        if found is not None:
            return found, False
        with _STATISTICS_LOCK:
            found = _STATISTICS.get(engine)
            if found is not None:
                return found, False
            found = _STATISTICS[engine] = cls(engine)
            return found, True

    def wrote(self, events_added: int) -> None:
        """Count committed events; analyze once enough have come."""
        if self._to_go is None:
            return
        with self._lock:
            if self._to_go is None:
                return
            self._to_go -= events_added
            if self._to_go > 0:
                return
            self._to_go = None
        threading.Thread(target=self._analyze, name="slaengine-analyze", daemon=True).start()

    def _analyze(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text(f"ANALYZE {', '.join(_ANALYZED)}"))
                conn.commit()
            log.info("analyzed the tables of a new database (%s)", ", ".join(_ANALYZED))
        except Exception:  # the planner goes on guessing until autovacuum analyzes
            log.exception("analyzing the tables of a new database failed")
        finally:
            self.done.set()


_STATISTICS_LOCK = threading.Lock()
