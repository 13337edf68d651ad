"""The companion's database: accounts, tokens, phone keys, pairing codes, the audit log, trips and charging sessions.

SQLAlchemy 2 with a synchronous engine whose calls run on one dedicated worker thread (``Database.run``). Why not
async (aiosqlite): aiosqlite itself runs each connection on a thread, so it costs the same hop; a single writer
thread also serializes SQLite writes (no "database is locked" under load) and keeps the event loop, which the broker
runs on, free of disk waits. PostgreSQL URLs (``postgresql+psycopg://...``, the ``psycopg``
driver) go through the same code, tested against a real server. SQLite runs in WAL mode with ``synchronous=FULL``:
every committed transaction survives a crash or power loss. Times are seconds since the Unix epoch; tokens and
pairing codes are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from evos.errors import DataError, UnavailableError

T = TypeVar("T")
# 64-bit on every database, as on SQLite, whose INTEGER is 64-bit (PostgreSQL's is 32-bit: ids up to 2**63 - 1 from
# the API and command counters up to 2**53 - 1 would overflow it). SQLite keeps plain INTEGER for its primary keys,
# which only as "INTEGER PRIMARY KEY" number themselves.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, PHC string format
    created_at: Mapped[float] = mapped_column(Float)


class App(Base):
    """A third-party application the owner granted scopes to (an OAuth client with its own token)."""

    __tablename__ = "oauth_clients"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)


class Token(Base):
    """An access or refresh token (only its hash). Tokens of one login share a ``family`` (refresh rotation)."""

    __tablename__ = "oauth_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # "access" or "refresh"
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[int | None] = mapped_column(Id, ForeignKey("oauth_clients.id", ondelete="CASCADE"), default=None)
    family: Mapped[str] = mapped_column(String(32), index=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)
    rotated_at: Mapped[float | None] = mapped_column(Float, default=None)  # a refresh token already exchanged


class PairedKey(Base):
    """A phone's Ed25519 public key, paired with the car; ``counter`` is the last accepted command counter."""

    __tablename__ = "paired_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # key id: base64url SHA-256 of the key, 22 chars
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(64))  # raw 32 bytes, base64url
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, default=None)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)


class PairingCode(Base):
    __tablename__ = "pairing_codes"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    attempts_left: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[float | None] = mapped_column(Float, default=None)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    user: Mapped[str] = mapped_column(String(64))
    credential: Mapped[str] = mapped_column(String(80))  # "token:<id>", "app:<id>", plus " key:<id>" when signed
    command: Mapped[str] = mapped_column(String(40))
    args: Mapped[str] = mapped_column(Text)  # JSON
    result: Mapped[str] = mapped_column(String(20))  # "completed", "in_progress" or the error code
    detail: Mapped[str] = mapped_column(Text, default="")


class Trip(Base):
    __tablename__ = "trips"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)
    start_odometer_m: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    energy_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    start_soc_pct: Mapped[float | None] = mapped_column(Float, default=None)
    end_soc_pct: Mapped[float | None] = mapped_column(Float, default=None)
    max_speed_kmh: Mapped[float] = mapped_column(Float, default=0.0)


class ChargingSession(Base):
    __tablename__ = "charging_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)
    start_soc_pct: Mapped[float | None] = mapped_column(Float, default=None)
    end_soc_pct: Mapped[float | None] = mapped_column(Float, default=None)
    energy_added_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    max_power_kw: Mapped[float] = mapped_column(Float, default=0.0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")  # the CLI (evos users/pair) may write while the car runs
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the tables created; DataError for a malformed URL, UnavailableError if unusable."""
    try:
        engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DataError(url, None, f"not a usable database URL: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        path = sqlite_path(url)
        if path is not None and path.exists() and path.stat().st_size == 0:  # SQLite would take it as a new car's
            raise DataError(str(path), None, "the database is empty: the car's accounts, keys and history are gone")
    try:
        Base.metadata.create_all(engine)
    except OperationalError as exc:
        raise UnavailableError(f"database {engine.url.render_as_string()} cannot be opened: {exc.orig}") from exc
    except DatabaseError as exc:  # not a database at all (garbage in the file)
        raise DataError(engine.url.render_as_string(), None, f"not a usable companion database: {exc.orig}") from exc
    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database, or SQLite in memory)."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) and len(url) > len(prefix) else None


class Database:
    """Sessions on one engine; ``run`` executes a function in one transaction on the database thread."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-db")

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction here: committed if it returns, rolled back if it raises,
        unless the error says its changes must stay (``keep_changes``: a revoked token family, a spent attempt)."""
        with self._sessions() as session:
            try:
                result = fn(session, *args)
            except BaseException as exc:
                if getattr(exc, "keep_changes", False):
                    session.commit()
                else:
                    session.rollback()
                raise
            session.commit()
            return result

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``call`` on the database thread, awaited."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.call, fn, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

