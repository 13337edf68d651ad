"""A throw-away PostgreSQL server for the companion tests: Debian's binaries (``apt install postgresql``), a cluster in
a temporary directory, listening on 127.0.0.1 on a free port and a unix socket in that directory, stopped at the end.

Postgres refuses to run as root, so under root the cluster belongs to the ``postgres`` system user and every server
command runs through ``runuser``. Without the binaries or the driver (psycopg) the tests that need it are skipped,
except where ``EVOS_REQUIRE_POSTGRES=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import free_port

START_TIMEOUT_S = 30  # pg_ctl's own bounded wait for the server to accept connections
USER = "evos"  # the cluster's superuser (trust authentication on 127.0.0.1 and the socket)
_names = itertools.count(1)


def _missing(reason: str) -> None:
    message = f"PostgreSQL tests need {reason}"
    if os.environ.get("EVOS_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def postgres_bin() -> Path | None:
    """The directory of initdb/pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else wherever PATH has pg_ctl."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class PostgresServer:
    """One cluster in its own temporary directory; ``start`` and ``stop`` it, ``new_database`` for each test."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="evos-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._runas: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]

    def _run(self, tool: str, *args: str, timeout_s: float) -> None:
        done = subprocess.run([*self._runas, str(self.bin_dir / tool), *args], capture_output=True, text=True,
                              timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale",
                  "--no-sync", timeout_s=120)
        # fsync off: the cluster is thrown away at the end, so durability of the server itself is not under test
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_S), "start", timeout_s=START_TIMEOUT_S + 10)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout_s=40)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"evos_test_{next(_names)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a generated name, never user input
        return self.url(name)


def start_postgres() -> PostgresServer:
    """A running server, or skip (fail under EVOS_REQUIRE_POSTGRES=1) when the binaries or the driver are missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("the psycopg driver (pip install 'psycopg[binary]')")
    bin_dir = postgres_bin()
    if bin_dir is None:
        _missing("the PostgreSQL server binaries (apt install postgresql)")
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except BaseException:
        log = server.root / "server.log"
        print(log.read_text() if log.exists() else "no server log")
        server.stop()
        raise
    return server
