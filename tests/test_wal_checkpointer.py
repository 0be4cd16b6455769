"""The WAL of the embedded database is checkpointed off the writer's commits."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from slaengine.database import (
    WAL_AUTOCHECKPOINT_PAGES,
    WalCheckpointer,
    connect,
    ruleset_reloads,
    sqlite_url,
)
from slaengine.store import SqlStore

WRITES = 120


def wal_frames_after_writes(url: str, checkpointer: WalCheckpointer | None) -> int:
    """Frames in the WAL after WRITES small transactions with pauses between them."""
    engine = SqlStore.open(url).engine
    if checkpointer is not None:
        checkpointer.start()
    try:
        for i in range(WRITES):
            with engine.begin() as conn:
                conn.execute(
                    ruleset_reloads.insert().values(
                        at=datetime.now(UTC), ok=True, revisions="x" * 3000, errors=str(i)
                    )
                )
            time.sleep(0.003)
        time.sleep(0.2)  # a last checkpoint catches up
        with engine.begin() as conn:  # a write after a full checkpoint starts the WAL over
            conn.execute(ruleset_reloads.delete().where(ruleset_reloads.c.errors == "0"))
        with engine.connect() as conn:
            # (busy, frames in the WAL, frames checkpointed); NOOP-like: nothing left to do
            return conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]
    finally:
        if checkpointer is not None:
            checkpointer.stop()
        engine.dispose()


def test_the_wal_starts_over_when_the_checkpointer_runs(tmp_path):
    url = sqlite_url(tmp_path / "with")
    database = sa.make_url(url).database
    with_checkpointer = wal_frames_after_writes(url, WalCheckpointer(database, interval=0.02))
    without = wal_frames_after_writes(sqlite_url(tmp_path / "without"), None)
    # Without it nothing checkpoints below the writer's 10,000-page net: every write stays.
    assert without >= WRITES
    assert with_checkpointer < 10


def test_connections_keep_the_writers_checkpoint_as_a_net(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    try:
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == WAL_AUTOCHECKPOINT_PAGES
    finally:
        engine.dispose()


def test_only_an_sqlite_file_gets_a_checkpointer(tmp_path):
    assert WalCheckpointer.for_engine(connect(sqlite_url(tmp_path))) is not None
    assert WalCheckpointer.for_engine(SqlStore.in_memory().engine) is None
    postgres = sa.create_engine("postgresql+psycopg://user@localhost/db")
    assert WalCheckpointer.for_engine(postgres) is None


def test_stop_ends_the_thread(tmp_path):
    engine = connect(sqlite_url(tmp_path))
    checkpointer = WalCheckpointer.for_engine(engine, interval=0.01)
    assert checkpointer is not None
    checkpointer.start()
    time.sleep(0.05)
    checkpointer.stop()
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()
    engine.dispose()
