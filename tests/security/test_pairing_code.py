"""Attack: the owner's password alone, off loopback, pairs a phone key (issue 12, item 3).

A pairing code is the proof that whoever pairs a key is at the car: ``POST /api/v1/pairing/codes`` (owner token)
makes the car show one, and the answer (202) never carries it. But the code was also a broker signal
(``Vehicle.Evos.Companion.PairingCode``), and so in the centre screen's state (``/cabin/api/state``): someone
elsewhere with the owner's password (or any gRPC client) read it there and paired a key of their own.

A fixed car shows the code on its centre screen only: the screen's page reads it from ``GET /api/v1/pairing/screen``,
answered to a loopback client alone (the car's own screen); any other client address gets 403 ``screen_only``. No
signal of the catalog holds it, and ``/cabin/api/state`` never carries it.

One car (twin, body, cabin, companion) in the test's event loop, its web server on 127.0.0.1: the screen is a real
HTTP client from 127.0.0.1; the remote attacker drives the same app in memory (ASGI) from 192.168.1.20, since the
tests never listen beyond 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from companion.car import CODE_SIGNAL, Car, PhoneKey, bearer, sign_in
from evos.errors import UnknownSignalError

REMOTE = ("192.168.1.20", 50000)  # a phone or laptop on the car's network (or beyond): not the car's screen
SCREEN = "/api/v1/pairing/screen"
SIGNALS = (CODE_SIGNAL, "Vehicle.Evos.Companion.PairingCodeExpiresAt")


@pytest.fixture
async def screen(car: Car) -> AsyncIterator[httpx.AsyncClient]:
    """The car's centre screen: real HTTP from 127.0.0.1. It also creates the owner (first run)."""
    async with httpx.AsyncClient(base_url=car.url, timeout=10) as http:
        await sign_in(http)
        yield http


@pytest.fixture
async def remote(car: Car, screen: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client at a non-loopback address that knows the owner's password (Host names the car, as a LAN client's
    would: the attack here is the address, not DNS rebinding)."""
    transport = httpx.ASGITransport(app=car.service.app, client=REMOTE)
    async with httpx.AsyncClient(transport=transport, base_url=car.url, timeout=10) as http:
        yield http


def _shows(text: str, code: str) -> bool:
    """Whether ``text`` carries the code (as a token of its own, not inside a longer number) or its signals."""
    return bool(re.search(rf"(?<![\d.]){code}(?![\d.])", text)) or any(name in text for name in SIGNALS)


async def _on_screen(screen: httpx.AsyncClient) -> dict[str, Any]:
    answer = await screen.get(SCREEN)
    assert answer.status_code == 200, f"the car's own screen could not read the code: {answer.status_code} " \
        f"{answer.text[:200]}"
    shown: dict[str, Any] = answer.json()
    return shown


async def test_the_password_off_loopback_does_not_reach_the_code(car: Car, screen: httpx.AsyncClient,
                                                                 remote: httpx.AsyncClient) -> None:
    """The remote owner asks for a code and then tries every way to read it: the screen's route (with and without
    the token, with forwarding headers claiming 127.0.0.1), the centre screen's state, the vehicle state, the 202
    answer itself; then pairs a key with codes that are not it. Nothing shows the code, no key is paired."""
    owner = bearer((await sign_in(remote))["access_token"])
    created = await remote.post("/api/v1/pairing/codes", headers=owner)
    assert created.status_code == 202, created.text
    assert set(created.json()) == {"shown_on", "expires_at"} and created.json()["shown_on"] == "car", created.text
    seen = {"202 answer": created.text}
    spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
    for name, headers in {"no token": {}, "owner token": owner, "forwarded": {**owner, **spoofed}}.items():
        refused = await remote.get(SCREEN, headers=headers)
        assert refused.status_code == 403, f"{SCREEN} ({name}) from {REMOTE[0]}: {refused.status_code} {refused.text}"
        assert refused.json()["error"] == "screen_only", refused.text
        assert "code" not in refused.json(), refused.text
        seen[f"{SCREEN} ({name})"] = refused.text
    for name, headers in {"no token": {}, "owner token": owner}.items():
        seen[f"/cabin/api/state ({name})"] = (await remote.get("/cabin/api/state", headers=headers)).text
    seen["/api/v1/vehicle/state"] = (await remote.get("/api/v1/vehicle/state", headers=owner)).text

    code = (await _on_screen(screen))["code"]  # what the car shows, to know what must not leak
    assert re.fullmatch(r"\d{6}", code), code
    leaked = [where for where, text in seen.items() if _shows(text, code)]
    assert not leaked, f"the code {code} (or its signal) reached the remote client through {leaked}"

    for guess in ("000000", "123456", "999999", f"{(int(code) + 1) % 1_000_000:06d}"):
        if guess == code:
            continue
        response = await remote.post("/api/v1/keys", headers=owner,
                                     json={"code": guess, "public_key": PhoneKey().public_b64, "name": "mallory"})
        assert response.status_code == 403 and response.json()["error"] == "bad_pairing_code", response.text
    assert (await remote.get("/api/v1/keys", headers=owner)).json() == []


async def test_the_cars_screen_reads_the_code_and_the_phone_pairs_with_it(car: Car, screen: httpx.AsyncClient,
                                                                          remote: httpx.AsyncClient) -> None:
    """The legitimate path still works: the screen (loopback) reads the 6-digit code, the owner's phone types it in
    and pairs (201); the code is spent, so the screen shows none. The screen's own state never carries it."""
    assert await _on_screen(screen) == {"code": "", "expires_at": 0}  # nothing asked for yet
    owner = bearer((await sign_in(remote))["access_token"])
    assert (await remote.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
    shown = await _on_screen(screen)
    code = shown["code"]
    assert isinstance(code, str) and re.fullmatch(r"\d{6}", code), shown
    assert time.time() < shown["expires_at"] <= time.time() + 600, shown
    state = await screen.get("/cabin/api/state")
    assert state.status_code == 200 and "Vehicle.Speed" in state.json(), state.text[:200]
    assert not _shows(state.text, code), "the centre screen's state carries the pairing code or its signal"
    key = PhoneKey()
    paired = await remote.post("/api/v1/keys", headers=owner,
                               json={"code": code, "public_key": key.public_b64, "name": "owner's phone"})
    assert paired.status_code == 201, paired.text
    assert [k["id"] for k in (await remote.get("/api/v1/keys", headers=owner)).json()] == [paired.json()["id"]]
    assert await _on_screen(screen) == {"code": "", "expires_at": 0}  # spent: the screen clears it


async def test_no_broker_signal_holds_the_code(car: Car) -> None:
    """Any gRPC client (an app, `evos get`) read the code as a signal; the catalog has no such signal now."""
    pairing = [s.path for s in car.broker.catalog if s.path.startswith("Vehicle.Evos.Companion.")
               and "pairing" in s.path.lower()]
    assert pairing == [], f"the broker's catalog still has {pairing}"
    for name in SIGNALS:
        with pytest.raises(UnknownSignalError):
            car.broker.get(name)
