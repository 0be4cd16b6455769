"""A throwaway PostgreSQL server for the test suite, and a fixture over both databases.

The ``postgres`` session fixture runs ``initdb`` into a fresh temporary
directory and starts the server with ``pg_ctl`` on a Unix socket in that
directory (no TCP port, so parallel runs cannot collide), and removes it all
at the end. ``database_url`` gives each test an empty database, once on
SQLite (a file) and once on PostgreSQL, so store and service tests run the
same assertions on both.

When the server binaries are missing the PostgreSQL cases fail with a
message saying how to install them (``scripts/ensure-postgres.sh``); only
``SLAENGINE_SKIP_POSTGRES=1`` turns that into a skip, so a CI job cannot
pass by silently leaving PostgreSQL out.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

SKIP_ENV = "SLAENGINE_SKIP_POSTGRES"
BIN_ENV = "SLAENGINE_PG_BIN"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None.

    Looks at ``$SLAENGINE_PG_BIN``, ``pg_config --bindir``, then Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first).
    """
    candidates = [os.environ.get(BIN_ENV, "")]
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(result.stdout.strip())
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates.append("/usr/local/pgsql/bin")
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, reached over a Unix socket.

    ``initdb`` and ``pg_ctl`` refuse to run as root, so under root the server
    runs as the ``postgres`` user (``nobody`` when there is none).
    ``fsync=off`` suits a throwaway server: only a machine crash could tell.
    """

    def __init__(
        self, bindir: Path, *, fsync: bool = False, settings: dict[str, str] | None = None
    ) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.settings = settings or {}  # further server settings (-c NAME=VALUE)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            **self._as,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}"
            )

    def start(self) -> PostgresCluster:
        """initdb and start the server; raises RuntimeError with its output on failure."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-k {self.root} -c listen_addresses='' -c fsync={'on' if self.fsync else 'off'}"
            " -c max_connections=200"
        )
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server at once and remove its directory."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}"

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser on the ``postgres`` database."""
        with psycopg.connect(host=str(self.root), user="postgres", autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection still open to it."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PREFIX = "slaengine-pg-"
OWNER_FILE = "owner.pid"


def reap_abandoned(bindir: Path) -> None:
    """Stop and remove servers whose test process died before its teardown (e.g. killed)."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
            continue  # its owner still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        orphan = PostgresCluster.__new__(PostgresCluster)
        orphan.bindir, orphan.root, orphan.data = bindir, root, root / "data"
        orphan.log = root / "server.log"
        stat = root.stat()
        orphan._as = (
            {"user": stat.st_uid, "group": stat.st_gid, "extra_groups": []}
            if os.geteuid() == 0
            else {}
        )
        try:
            orphan.stop()
        except (RuntimeError, OSError):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A running throwaway PostgreSQL server for the whole session."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"PostgreSQL left out: {SKIP_ENV}=1")
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found, so the PostgreSQL "
            "half of the store tests cannot run. Install them with `sh scripts/ensure-postgres.sh`"
            f" (Debian/Ubuntu: apt-get install postgresql), point {BIN_ENV} at their directory, "
            f"or set {SKIP_ENV}=1 to skip these tests knowingly.",
            pytrace=False,
        )
    reap_abandoned(bindir)
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        pytest.fail(f"the throwaway PostgreSQL server did not start: {exc}", pytrace=False)
    yield cluster
    cluster.stop()


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sla.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = f"test_{os.getpid()}_{next(_databases)}"
    url = cluster.create_database(name)
    yield url
    cluster.drop_database(name)
