"""Crash safety: kill -9 the car while commands run and a trip is being recorded; after a restart nothing that was
acknowledged is lost (accounts, tokens, phone keys and their counters, the audit log, the trip)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from companion.car import BOTH_DATABASES, PASSWORD, PhoneKey, bearer
from evos.companion._db import Database
from evos.companion._keys import create_pairing_code

CAR = Path(__file__).with_name("car.py")


def start(data_dir: Path, database_url: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(CAR), str(data_dir), database_url, *flags], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"the car did not start: {url!r}")
    return proc, url


def pair(http: httpx.Client, owner: dict[str, str], database_url: str) -> PhoneKey:
    """Pair a phone key with a code made as `evos pair` makes it: straight into the database the running car uses."""
    db = Database(database_url)
    code, _ = db.call(create_pairing_code, time.time(), 300.0, 5)
    db.close()
    key = PhoneKey()
    paired = http.post("/api/v1/keys", headers=owner, json={"code": code, "public_key": key.public_b64})
    assert paired.status_code == 201
    key.key_id = paired.json()["id"]
    return key


def hammer(url: str, owner: dict[str, str], key: PhoneKey, acknowledged: list[str]) -> None:
    """Unlock (signed) and lock, over and over, noting each acknowledged command, until the car dies."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for i in range(10_000):
            name = "unlock" if i % 2 == 0 else "lock"
            body = key.sign(name) if name == "unlock" else {}
            try:
                response = client.post(f"/api/v1/vehicle/commands/{name}", headers=owner, json=body)
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged.append(name)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout_s} s")
        time.sleep(0.05)


@BOTH_DATABASES
def test_kill_9_loses_nothing_committed(tmp_path: Path, database_url: str) -> None:
    proc, url = start(tmp_path, database_url, "--drive")
    acknowledged: list[str] = []
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/api/v1/setup", json={"name": "owner", "password": PASSWORD}).status_code == 201
            tokens = http.post("/api/v1/oauth/token", data={"grant_type": "password", "username": "owner",
                                                            "password": PASSWORD}).json()
            owner = bearer(tokens["access_token"])
            key = pair(http, owner, database_url)
            worker = threading.Thread(target=hammer, args=(url, owner, key, acknowledged))
            worker.start()
            wait_until(lambda: len(acknowledged) >= 20)
            # a trip under way, its progress written at least once (asked with a token of its own: the hammer
            # keeps the owner's token at its rate limit)
            reader = bearer(http.post("/api/v1/oauth/token", data={
                "grant_type": "password", "username": "owner", "password": PASSWORD}).json()["access_token"])
            wait_until(lambda: any(t["ended_at"] is None and t["distance_m"] > 0
                                   for t in http.get("/api/v1/trips", headers=reader).json()))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            worker.join(10)
    finally:
        proc.kill()
        proc.wait(10)

    proc, url = start(tmp_path, database_url)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/api/v1/me", headers=owner).status_code == 200  # the token survived
            audit = http.get("/api/v1/audit?limit=1000", headers=owner).json()
            done = [e["command"] for e in reversed(audit) if e["result"] == "completed"]
            assert done[: len(acknowledged)] == acknowledged  # every acknowledged command is in the log
            unlock = "/api/v1/vehicle/commands/unlock"
            assert http.post(unlock, headers=owner, json=key.sign("unlock", counter=1)).json()["error"] == "replayed"
            assert http.post(unlock, headers=owner, json=key.sign("unlock")).status_code == 200
            [trip] = http.get("/api/v1/trips", headers=owner).json()
            assert trip["ended_at"] is not None and trip["distance_m"] > 0  # closed at its last recorded point
    finally:
        proc.kill()
        proc.wait(10)
