"""Helpers of the companion tests: a whole car in the test's event loop (broker, twin, body hardware, companion on a
free port), signing in, and a phone key that signs commands like the web app does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable, Coroutine  # noqa: F401
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from evos.app import CarSettings
from evos.broker import Broker
from evos.car import LocalCar, local_car
from evos.companion import CompanionConfig, CompanionService, companion_app
from evos.twin import BODY_APP, TWIN_APP

OWNER = "owner"
PASSWORD = "correct horse battery"
CODE_SIGNAL = "Vehicle.Evos.Companion.PairingCode"  # the signal that held the code until issue 12 (none now)
# Runs a test once on SQLite and once on a fresh PostgreSQL database (the ``database_url`` fixture, conftest.py).
BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@dataclass
class Car:
    local: LocalCar
    url: str
    stack: contextlib.AsyncExitStack

    @property
    def broker(self) -> Broker:
        return self.local.broker

    @property
    def service(self) -> CompanionService:
        service: CompanionService = self.local.app("companion")
        return service

    def shown_code(self) -> str:
        """The pairing code on the car's screen now ("" for none), as ``GET /api/v1/pairing/screen`` serves it."""
        code: str = self.service.app.state.ctx.shown_code.on_screen(time.time())["code"]
        return code

    async def shutdown(self) -> None:
        await self.stack.aclose()


async def start_car(data_dir: Path, plugged_in: bool = False, cabin: bool = False, database_url: str | None = None,
                    **config: Any) -> Car:
    """The car with its companion on 127.0.0.1 (a free port); state in ``data_dir``, the companion's in
    ``database_url`` (default: SQLite in ``data_dir``). ``cabin`` adds the cabin's scenes and media (``evos.cabin``)
    and its centre screen under ``/cabin``."""
    apps = [TWIN_APP, BODY_APP]
    routers = []
    if cabin:
        from evos.cabin import CABIN_APP, MEDIA_APP, centre_screen

        apps += [MEDIA_APP, CABIN_APP]
        routers.append(centre_screen)
    companion = CompanionConfig(database_url or CompanionConfig.for_data_dir(data_dir).database_url, port=0, **config)
    apps.append(companion_app(routers, companion))
    stack = contextlib.AsyncExitStack()
    local = await stack.enter_async_context(local_car(apps, data_dir, CarSettings(plugged_in=plugged_in)))
    service: CompanionService = local.app("companion")
    return Car(local, f"http://127.0.0.1:{service.port_number}", stack)


async def sign_in(http: httpx.AsyncClient, scope: str | None = None) -> dict[str, Any]:
    """Create the owner (first run) if needed and sign in; the token response."""
    if (await http.get("/api/v1/setup")).json()["needs_owner"]:
        assert (await http.post("/api/v1/setup", json={"name": OWNER, "password": PASSWORD})).status_code == 201
    form = {"grant_type": "password", "username": OWNER, "password": PASSWORD, **({"scope": scope} if scope else {})}
    response = await http.post("/api/v1/oauth/token", data=form)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class PhoneKey:
    """A phone's key as the web app holds it: Ed25519 private key, its id once paired, and its counter."""

    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    key_id: str = ""
    counter: int = 0

    @property
    def public_b64(self) -> str:
        return b64url(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, command: str, args: dict[str, Any] | None = None, counter: int | None = None,
             expires_in_s: float = 60.0) -> dict[str, str]:
        if counter is None:
            self.counter += 1
            counter = self.counter
        envelope = json.dumps({"args": args or {}, "command": command, "counter": counter,
                               "expires_at": int(time.time() + expires_in_s), "key_id": self.key_id},
                              sort_keys=True, separators=(",", ":"))
        return {"envelope": envelope, "signature": b64url(self.private.sign(envelope.encode()))}


async def pair_phone(car: Car, http: httpx.AsyncClient, headers: dict[str, str]) -> PhoneKey:
    """Pair a new phone key: ask for a code, read it off the car's screen, send the key with it."""
    assert (await http.post("/api/v1/pairing/codes", headers=headers)).status_code == 202
    code = car.shown_code()
    assert isinstance(code, str) and len(code) == 6
    key = PhoneKey()
    response = await http.post("/api/v1/keys", headers=headers,
                               json={"code": code, "public_key": key.public_b64, "name": "test phone"})
    assert response.status_code == 201, response.text
    key.key_id = response.json()["id"]
    return key


async def _serve_forever(data_dir: Path, drive: bool, database_url: str | None) -> None:
    car = await start_car(data_dir, trip_park_s=0.5, database_url=database_url)
    if drive:  # a trip under way: 50 km/h, ten times faster than real time
        await car.local.port.actuate({"Vehicle.Evos.Twin.TimeScale": 10.0,
                                      "Vehicle.Evos.Twin.Driver.TargetSpeed": 50.0})
    print(car.url, flush=True)
    await asyncio.sleep(120)  # the test kills it; a forgotten one stops by itself
    await car.shutdown()


if __name__ == "__main__":  # a car in its own process, for the kill -9 test: car.py DATA_DIR [--drive] [DATABASE_URL]
    import sys

    urls = [arg for arg in sys.argv[2:] if "://" in arg]
    asyncio.run(_serve_forever(Path(sys.argv[1]), "--drive" in sys.argv, urls[0] if urls else None))


def grant_password(session: Any, name: str, password: str, scope: str | None, now_s: float,
            config: CompanionConfig) -> dict[str, Any]:
    """The password grant's three steps in one transaction, as a tool that holds the database would sign in (the
    web server checks the password on its own pool between them)."""
    from evos.companion._accounts import password_grant, password_hash_of, password_matches

    user_id, password_hash = password_hash_of(session, name, scope)
    return password_grant(session, user_id, password_matches(password_hash, password), scope, now_s, config)
