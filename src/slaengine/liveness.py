"""Which scheduler workers are alive: a lock each worker holds for its whole life.

A worker claims outbox rows with a lease (:meth:`SqlStore.claim`). Were the
lease all there is, the rows of a worker killed mid-delivery would wait a
minute for it to run out. So each worker also holds a liveness lock, named
after it, for as long as it runs, and the operating system or the database
server drops that lock the moment the process dies. A worker that finds due
rows held by another tries the holder's lock: if it can take it, the holder
is dead, and its rows are freed while the lock is held, so a restart of the
dead worker under the same name cannot claim anything in between.

Per kind of database:

- SQLite file: ``flock`` on a file named after the worker in a directory
  beside the database (``slaengine.db-workers/NAME.lock``). Lock files are
  never removed: removing one while another process has it open would let
  two processes lock two different files under one name.
- PostgreSQL: a session-level advisory lock on a connection of its own;
  a probe takes the same key as a transaction-level lock.
- in-memory SQLite: the database lives in one process, so a worker is alive
  exactly while this process holds it.

A worker that only hangs (alive, stuck in a send) keeps its lock; its rows
wait out their lease as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine

from slaengine.database import sqlite_file
from slaengine.errors import SlaEngineError

#: Opens a write transaction on the database: ``with begin() as conn: ...``.
Transaction = Callable[[], AbstractContextManager[Connection]]

#: How long taking a worker's lock waits for a probe of another worker (which
#: holds it for one short transaction) before deciding a live worker has the name.
HOLD_WAIT_SECONDS = 10.0


class WorkerNameInUse(SlaEngineError):
    """A live worker already holds this name (two workers must never share one)."""

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        super().__init__(
            f"a live worker already runs under the name {name!r} ({where}); "
            "give each worker its own --name"
        )


class Liveness(ABC):
    """The liveness locks of one database as this process sees them."""

    def __init__(self) -> None:
        self._held: dict[str, Any] = {}  # name -> what keeps its lock (a descriptor, a connection)
        self._mutex = threading.Lock()

    def hold(self, name: str, on_taken: Callable[[], object] = lambda: None) -> None:
        """Hold ``name``'s lock from now on.

        Called before every claim, so it also checks that a lock already held
        still is (a dropped database connection loses it) and takes it again.
        ``on_taken`` runs once the lock is first taken, before any other thread
        of this process can claim under the name: it frees what an earlier run
        of the worker held. Raises :class:`WorkerNameInUse` when another live
        process holds the name.
        """
        with self._mutex:
            handle = self._held.get(name)
            if handle is not None:
                if self._still_held(name, handle):
                    return
                del self._held[name]
                self._drop(name, handle)
                self._held[name] = self._wait_for(name)  # lost: take it again
                return
            self._held[name] = self._wait_for(name)
            try:
                on_taken()
            except BaseException:
                self.release(name)  # the next claim tries again
                raise

    def release(self, name: str) -> None:
        """Let go of ``name``'s lock (the worker stops); other workers see it dead."""
        handle = self._held.pop(name, None)
        if handle is not None:
            self._drop(name, handle)

    def close(self) -> None:
        """Let go of every lock this process holds on the database."""
        for name in list(self._held):
            self.release(name)

    @contextmanager
    def probe(self, name: str, begin: Transaction) -> Iterator[Connection | None]:
        """A connection in a transaction (from ``begin()``) if ``name``'s worker is dead, else None.

        The dead worker's lock is held until the transaction has committed,
        so whatever the transaction frees cannot have been claimed by a new
        run of that worker.
        """
        if name in self._held:
            yield None
            return
        with self._probe(name, begin) as conn:
            yield conn

    def _wait_for(self, name: str) -> Any:
        deadline = time.monotonic() + HOLD_WAIT_SECONDS
        while True:
            handle = self._take(name)
            if handle is not None:
                return handle
            if time.monotonic() > deadline:
                raise WorkerNameInUse(name, self._where(name))
            time.sleep(0.01)

    # -- per kind of database ------------------------------------------------

    @abstractmethod
    def _take(self, name: str) -> Any:
        """Try to take ``name``'s lock without waiting: what keeps it, or None."""

    @abstractmethod
    def _still_held(self, name: str, handle: Any) -> bool:
        """Whether the lock ``handle`` keeps is still ``name``'s (a lost one is taken again)."""

    @abstractmethod
    def _drop(self, name: str, handle: Any) -> None:
        """Let go of the lock ``handle`` keeps."""

    @abstractmethod
    def _where(self, name: str) -> str:
        """Where ``name``'s lock lives, for an error message."""

    @abstractmethod
    def _probe(self, name: str, begin: Transaction) -> AbstractContextManager[Connection | None]:
        """:meth:`probe` for a name this process does not hold."""


class ProcessLiveness(Liveness):
    """An in-memory database: it lives in this process, and so do all its workers."""

    def _take(self, name: str) -> bool:
        return True

    def _still_held(self, name: str, handle: bool) -> bool:
        return True

    def _drop(self, name: str, handle: bool) -> None:
        pass

    def _where(self, name: str) -> str:
        return "in this process"

    @contextmanager
    def _probe(self, name: str, begin: Transaction) -> Iterator[Connection | None]:
        # ``name`` is not held in the one process there is: its worker is gone.
        with begin() as conn:
            yield conn


class FileLiveness(Liveness):
    """``flock`` on one file per worker, in a directory beside an SQLite database."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def path(self, name: str) -> Path:
        """The lock file of worker ``name``."""
        safe = quote(name, safe="")
        if len(safe) > 200:  # a file name is at most 255 bytes
            safe = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
        return self.directory / f"{safe}.lock"

    def _open(self, name: str) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        return os.open(self.path(name), os.O_RDWR | os.O_CREAT, 0o600)

    def _take(self, name: str) -> int | None:
        fd = self._open(name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _still_held(self, name: str, handle: int) -> bool:
        # The lock is on the file the descriptor was opened on; were the path
        # removed and created again, a probe would lock the new file.
        try:
            on_disk = os.stat(self.path(name))
        except FileNotFoundError:
            return False
        mine = os.fstat(handle)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def _drop(self, name: str, handle: int) -> None:
        os.close(handle)  # closing the descriptor releases the flock

    def _where(self, name: str) -> str:
        return f"lock file {self.path(name)}"

    @contextmanager
    def _probe(self, name: str, begin: Transaction) -> Iterator[Connection | None]:
        fd = self._open(name)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            with begin() as conn:
                yield conn
        finally:
            os.close(fd)


#: The first key of every worker's two-key advisory lock: two-key locks never
#: meet the one-key (bigint) locks the store takes on tickets.
_SPACE = int.from_bytes(b"SLAw", "big")


def _key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


_TRY_XACT_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:space, :key)")


class AdvisoryLiveness(Liveness):
    """PostgreSQL advisory locks, held on a connection of their own (not from the pool).

    Two names whose 32-bit keys collide look like one worker: a dead one is
    then taken for alive (its rows wait out their lease) and the second of
    two live ones cannot start; never is a live worker taken for dead.
    """

    def __init__(self, engine: SqlEngine) -> None:
        super().__init__()
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._connect = functools.partial(engine.dialect.connect, *cargs, **cparams)
        self._conn: Any = None

    def _session(self) -> Any:
        if self._conn is None:
            conn = self._connect()
            conn.autocommit = True
            with conn.cursor() as cursor:
                # Over TCP, a worker whose machine vanished (no FIN) loses its
                # locks within about 8 s instead of the system's two hours.
                cursor.execute(
                    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1;"
                    " SET tcp_keepalives_count = 3"
                )
            self._conn = conn
        return self._conn

    def _take(self, name: str) -> Any:
        conn = self._session()
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (_SPACE, _key(name)))
            taken = cursor.fetchone()[0]
        return conn if taken else None

    def _still_held(self, name: str, handle: Any) -> bool:
        # A session lock lasts as long as its session: the lock is held while
        # the connection it was taken on is the current one and answers.
        if handle is not self._conn:
            return False
        try:
            with handle.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            return False
        return True

    def _drop(self, name: str, handle: Any) -> None:
        if handle is not self._conn:
            return  # taken on a connection since lost: the lock went with it
        try:
            if self._held:
                with handle.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", (_SPACE, _key(name)))
                return
        except Exception:
            pass  # the connection is broken, and its locks are gone
        # The last lock, or a broken connection: close it (and the lock goes with it).
        self._conn = None
        with contextlib.suppress(Exception):
            handle.close()

    def _where(self, name: str) -> str:
        return f"PostgreSQL advisory lock ({_SPACE}, {_key(name)})"

    @contextmanager
    def _probe(self, name: str, begin: Transaction) -> Iterator[Connection | None]:
        with begin() as conn:
            dead = conn.execute(_TRY_XACT_LOCK, {"space": _SPACE, "key": _key(name)}).scalar()
            yield conn if dead else None


_BY_ENGINE: weakref.WeakKeyDictionary[SqlEngine, Liveness] = weakref.WeakKeyDictionary()
_BY_ENGINE_LOCK = threading.Lock()


def liveness_for(engine: SqlEngine) -> Liveness:
    """The liveness locks of ``engine``'s database, one set per engine, let go with it."""
    with _BY_ENGINE_LOCK:
        found = _BY_ENGINE.get(engine)
        if found is not None:
            return found
        name = engine.dialect.name
        database = sqlite_file(engine)
        if name == "postgresql":
            found = AdvisoryLiveness(engine)
        elif database is not None:
            found = FileLiveness(Path(f"{os.path.realpath(database)}-workers"))
        elif name == "sqlite":
            found = ProcessLiveness()
        else:
            raise SlaEngineError(f"no worker liveness locks for {name!r} databases")
        _BY_ENGINE[engine] = found
        weakref.finalize(engine, found.close)
        return found
