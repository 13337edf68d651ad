"""The broker's audit journal: who asked, over gRPC, for which actuation — written before the broker acts.

The car's own apps, on the app socket with the tokens their supervisor minted, are not journaled here: the entrances
among them (the phone API, the centre screen and its assistant) keep the companion's audit log. Every other
actuation that comes in over gRPC (`evos actuate`, `evos assistant --address`, any KUKSA client) is: a row is
written, durably (WAL, synchronous FULL), before the broker carries it out, and given its outcome after; a request
the entrance refuses is one row. A request whose row cannot be written is refused (UNAVAILABLE) and changes nothing.

The journal keeps the newest ``MAX_ROWS`` rows in ``JOURNAL_NAME`` in the car's data directory; a file found
unusable is set aside (``evos.datadir``) and a new one begun. ``read_journal`` lists it, newest first, in the shape
of the companion's audit log, which shows both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from evos import datadir
from evos.errors import DataError, EvosError, UnavailableError

log = logging.getLogger("evos.broker.journal")
T = TypeVar("T")
JOURNAL_NAME = "broker-audit.sqlite"
MAX_ROWS = 100_000  # rows kept; older ones are dropped (every PRUNE_EVERY writes)
PRUNE_EVERY = 1000
MAX_DETAIL_CHARS = 2000
_SCHEMA = ("CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, "
           "user TEXT NOT NULL, credential TEXT NOT NULL, command TEXT NOT NULL, args TEXT NOT NULL, "
           "result TEXT NOT NULL, detail TEXT NOT NULL)")
_COLUMNS = ("id", "at", "user", "credential", "command", "args", "result", "detail")


@dataclass(frozen=True)
class Caller:
    """Who asks, as the journal names it: the token's subject (or that there was no token), and how it came."""

    user: str
    credential: str  # e.g. "gRPC ipv4:127.0.0.1:50214"


def result_of(exc: BaseException) -> str:
    """The result an error is written as (its ``code`` where it has one, else its class's name)."""
    return str(getattr(exc, "code", type(exc).__name__))


class Journal:
    """The journal in one SQLite file, written on a thread of its own (never on the broker's event loop)."""

    def __init__(self, path: Path, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.max_rows = max_rows
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="evos-journal")
        self._db: sqlite3.Connection | None = None
        self._writes = 0

    def _open(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a row is on the disk before the broker acts
            db.execute(_SCHEMA)
            db.execute("SELECT id FROM journal ORDER BY id DESC LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise DataError(str(path), None, f"not a usable audit journal: {exc}") from exc
        return db

    def _connection(self) -> sqlite3.Connection:
        """The open journal (opened, or set aside and begun again, on first use: a disk that failed may work now)."""
        if self._db is None:
            self._db = datadir.open_or_set_aside(self.path, self._open, "a new journal begins", log)
        return self._db

    def _insert(self, at_s: float, caller: Caller, command: str, args: str, result: str, detail: str) -> int:
        db = self._connection()
        row = db.execute("INSERT INTO journal (at, user, credential, command, args, result, detail) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (at_s, caller.user, caller.credential, command, args, result, detail[:MAX_DETAIL_CHARS]))
        row_id = int(row.lastrowid or 0)
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            db.execute("DELETE FROM journal WHERE id <= ?", (row_id - self.max_rows,))
        return row_id

    def _finish(self, row_id: int, result: str, detail: str) -> None:
        self._connection().execute("UPDATE journal SET result = ?, detail = ? WHERE id = ?",
                                   (result, detail[:MAX_DETAIL_CHARS], row_id))

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def _write(self, caller: Caller, targets: Mapping[str, Any], result: str, detail: str = "") -> int:
        args = json.dumps(dict(targets), sort_keys=True, default=str)
        try:
            return await self._run(self._insert, time.time(), caller, "actuate", args, result, detail)
        except (sqlite3.Error, OSError, DataError) as exc:
            log.error("the audit journal %s cannot be written: %s", self.path, exc)
            self._drop_connection()
            raise UnavailableError(f"not carried out: the broker's audit journal cannot be written "
                                   f"({self.path}: {type(exc).__name__}: {exc})") from exc

    def _drop_connection(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            self._executor.submit(db.close)

    async def refused(self, caller: Caller, targets: Mapping[str, Any], error: EvosError) -> None:
        """Write a request the entrance refused before anything was done."""
        await self._write(caller, targets, result_of(error), str(error))

    async def audited(self, caller: Caller, targets: Mapping[str, Any], act: Callable[[], Awaitable[None]]) -> None:
        """Write the request, then ``act()``, then its outcome (``completed`` or the error's), before the caller is
        answered. UnavailableError, and nothing done, when the request cannot be written."""
        row_id = await self._write(caller, targets, "requested")
        try:
            await act()
        except asyncio.CancelledError:  # the caller went away: the outcome is written, not waited for
            self._executor.submit(self._finish, row_id, "cancelled", "the caller went away before the answer")
            raise
        except BaseException as exc:
            await self._outcome(row_id, result_of(exc), str(exc))
            raise
        await self._outcome(row_id, "completed", "")

    async def _outcome(self, row_id: int, result: str, detail: str) -> None:
        """Give a row its outcome; a failure is logged (the act is done, its request is in the journal)."""
        try:
            await self._run(self._finish, row_id, result, detail)
        except (sqlite3.Error, OSError, DataError) as exc:
            log.error("an audit journal row (%d) could not be given its outcome %s: %s", row_id, result, exc)

    def close(self) -> None:
        """Write what is queued, then close the file."""
        self._executor.submit(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def read_journal(path: Path, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of the journal at ``path``, newest first (none when it does not exist), each as
    ``{"id", "at", "user", "credential", "command", "args", "result", "detail"}``."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM journal ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise DataError(str(path), None, f"not a readable audit journal: {exc}") from exc
    finally:
        db.close()
    return [{**dict(zip(_COLUMNS, row, strict=True)), "args": json.loads(row[5])} for row in rows]
