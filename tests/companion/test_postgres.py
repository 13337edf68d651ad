"""What PostgreSQL enforces and SQLite does not: 32-bit INTEGER, text without NUL, real row locks between processes,
and ``evos up`` with a ``postgresql+psycopg://`` URL. The rest of the companion's paths run on both databases through
``BOTH_DATABASES`` in the other test files."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.orm import Session

from companion.car import BOTH_DATABASES, PASSWORD, Car, PhoneKey, bearer, grant_password, pair_phone
from companion.postgres import PostgresServer
from evos.companion import CompanionConfig
from evos.companion._accounts import add_user, refresh_grant
from evos.companion._db import Database
from evos.companion._errors import CompanionError
from evos.companion._keys import MAX_COUNTER, create_pairing_code, pair_key, verify_envelope
from helpers import evos, free_port, start, stop, wait_listening

CONFIG = CompanionConfig(database_url="unused")
LOCK_WAIT_S = 10  # bounded wait for the second transaction to block on the first one's row lock


@BOTH_DATABASES
async def test_values_at_the_edges_answer_4xx_never_5xx(car: Car, client: httpx.AsyncClient,
                                                         owner: dict[str, str]) -> None:
    key = await pair_phone(car, client, owner)
    last = await client.post("/api/v1/vehicle/commands/honk", headers=owner,
                             json=key.sign("honk", counter=MAX_COUNTER))  # beyond a 32-bit INTEGER
    assert last.status_code == 200, last.text
    again = await client.post("/api/v1/vehicle/commands/honk", headers=owner, json=key.sign("honk"))
    assert again.json()["error"] == "replayed"
    assert (await client.get("/api/v1/keys", headers=owner)).json()[0]["counter"] == MAX_COUNTER

    missing = await client.delete(f"/api/v1/tokens/{2**63 - 1}", headers=owner)  # the largest id the API takes
    assert missing.status_code == 404, missing.text
    for name in ("nul\x00inside", "bell\x07"):
        refused = await client.post("/api/v1/tokens", headers=owner, json={"name": name, "scopes": ["vehicle_data"]})
        assert refused.status_code == 422 and "control characters" in refused.text, refused.text
    assert (await client.get("/api/v1/tokens", headers=owner)).json() == []  # nothing was stored
    assert (await client.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
    code = car.shown_code()
    refused = await client.post("/api/v1/keys", headers=owner,
                                json={"code": code, "public_key": PhoneKey().public_b64, "name": "a\x00b"})
    assert refused.status_code == 422 and "control characters" in refused.text, refused.text
    assert len((await client.get("/api/v1/keys", headers=owner)).json()) == 1


def _wait_for_lock_waiter(server: PostgresServer, database: str) -> None:
    """Until a backend of ``database`` waits on a row lock (bounded), i.e. the race is really on."""
    deadline = time.monotonic() + LOCK_WAIT_S
    with psycopg.connect(host="127.0.0.1", port=server.port, user="evos", dbname=database, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                               "'Lock'", (database,)).fetchone()
            if row and row[0] > 0:
                return
            time.sleep(0.02)
    pytest.fail(f"no transaction waited on a lock within {LOCK_WAIT_S} s")


def _race(server: PostgresServer, first: Database, second: Database, fn: Callable[[Session], object]) -> None:
    """``fn`` in a transaction on ``first`` that holds its locks until ``fn`` runs on ``second`` and waits for them;
    then the first commits: the second must be refused (a CompanionError)."""
    outcome: list[BaseException | None] = []

    def loser() -> None:
        try:
            second.call(fn)
            outcome.append(None)
        except CompanionError as exc:
            outcome.append(exc)

    with Session(first.engine) as session:
        fn(session)
        thread = threading.Thread(target=loser)
        thread.start()
        _wait_for_lock_waiter(server, str(first.engine.url.database))
        session.commit()
    thread.join(LOCK_WAIT_S)
    assert not thread.is_alive()
    [error] = outcome
    assert isinstance(error, CompanionError), "both racing transactions passed"


def test_racing_writers_on_postgresql_cannot_both_pass(postgres: PostgresServer) -> None:
    """Two processes' worth of engines: the second UPDATE waits on the first one's row lock, then sees the new row
    and refuses. A replayed signed command and a refresh token used twice at the same moment both lose the race."""
    url = postgres.new_database()
    first, second = Database(url), Database(url)
    try:
        user_id = first.call(lambda s: add_user(s, "owner", PASSWORD, time.time()).id)
        code, _ = first.call(create_pairing_code, time.time(), 300.0, 5)
        phone = PhoneKey()
        phone.key_id = first.call(pair_key, user_id, code, phone.public_b64, "phone", time.time())["id"]
        signed = phone.sign("unlock")
        tokens = first.call(grant_password, "owner", PASSWORD, None, time.time(), CONFIG)

        _race(postgres, first, second, lambda s: verify_envelope(
            s, user_id, "unlock", signed["envelope"], signed["signature"], time.time(), CONFIG))
        _race(postgres, first, second, lambda s: refresh_grant(s, tokens["refresh_token"], None, time.time(), CONFIG))
    finally:
        first.close()
        second.close()


def test_evos_up_keeps_the_companion_in_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.new_database()
    address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start("up", "--address", address, "--http", http, "--data-dir", str(tmp_path), "--database-url", url)
    try:
        wait_listening(proc, address)
        with httpx.Client(base_url=f"http://{http}", timeout=10) as client:
            assert client.post("/api/v1/setup", json={"name": "owner", "password": PASSWORD}).status_code == 201
            tokens = client.post("/api/v1/oauth/token", data={"grant_type": "password", "username": "owner",
                                                              "password": PASSWORD}).json()
            done = client.post("/api/v1/vehicle/commands/climate_on", headers=bearer(tokens["access_token"]), json={})
            assert done.status_code == 200, done.text
    finally:
        stop(proc)
    assert not (tmp_path / "companion.sqlite").exists()  # nothing went to SQLite
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("owner",)]
        assert conn.execute("SELECT command, result FROM audit_log").fetchall() == [("climate_on", "completed")]
    listed = evos("users", "list", "--database-url", url, "--data-dir", str(tmp_path))
    assert listed.returncode == 0 and "owner" in listed.stdout, listed.stdout + listed.stderr
