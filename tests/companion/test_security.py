"""The companion reviewed as a car maker's security engineer would: each test is a finding of the review (issue 5),
written to fail before its fix. Real car, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from companion.car import BOTH_DATABASES, OWNER, PASSWORD, Car, PhoneKey, b64url, bearer, pair_phone, sign_in

HORN = "Vehicle.Body.Horn.IsActive"


def _signed_text(key: PhoneKey, text: str) -> dict[str, str]:
    """An envelope exactly as given, signed by ``key`` (a phone that writes something odd, or a hostile one)."""
    return {"envelope": text, "signature": b64url(key.private.sign(text.encode()))}


async def _audit_results(client: httpx.AsyncClient, owner: dict[str, str]) -> list[str]:
    return [e["result"] for e in (await client.get("/api/v1/audit", headers=owner)).json()]


@BOTH_DATABASES
async def test_an_envelope_must_be_canonical_and_finite(car: Car, client: httpx.AsyncClient,
                                                        owner: dict[str, str]) -> None:
    """NaN passed both expiry comparisons (a signed command valid forever); duplicate fields were read last-wins,
    so what a reader of the signed text sees need not be what the car ran. Both are refused now, as is any
    envelope not in canonical form, a key id that is not one, and nesting deep enough to crash the parser."""
    key = await pair_phone(car, client, owner)
    expires = int(time.time() + 60)
    odd = {
        "nan expiry": f'{{"args":{{}},"command":"honk","counter":5,"expires_at":NaN,"key_id":"{key.key_id}"}}',
        "infinite expiry": f'{{"args":{{}},"command":"honk","counter":5,"expires_at":-Infinity,'
                           f'"key_id":"{key.key_id}"}}',
        "duplicate field": f'{{"args":{{}},"command":"unlock","command":"honk","counter":5,"expires_at":{expires},'
                           f'"key_id":"{key.key_id}"}}',
        "whitespace": f'{{"args": {{}}, "command": "honk", "counter": 5, "expires_at": {expires}, '
                      f'"key_id": "{key.key_id}"}}',
        "escaped name": f'{{"args":{{}},"command":"hon\\u006b","counter":5,"expires_at":{expires},'
                        f'"key_id":"{key.key_id}"}}',
        "key id with NUL": f'{{"args":{{}},"command":"honk","counter":5,"expires_at":{expires},'
                           f'"key_id":"{key.key_id[:-1]}\\u0000"}}',
    }
    for what, text in odd.items():
        response = await client.post("/api/v1/vehicle/commands/honk", headers=owner, json=_signed_text(key, text))
        assert response.status_code == 422, (what, response.text)
        assert response.json()["error"] == "invalid_envelope", (what, response.text)
    deep = {"envelope": '{"args":' + "[" * 2000 + "]" * 2000 + "}", "signature": "AA"}
    response = await client.post("/api/v1/vehicle/commands/honk", headers=owner, json=deep)
    assert response.status_code == 422 and response.json()["error"] == "invalid_envelope", response.text
    assert car.broker.get(HORN).value is not True  # nothing reached the car
    assert (await client.get("/api/v1/keys", headers=owner)).json()[0]["counter"] == 0  # no counter was spent
    assert set(await _audit_results(client, owner)) == {"invalid_envelope"}
    # the same command, canonical, passes
    good = await client.post("/api/v1/vehicle/commands/honk", headers=owner, json=key.sign("honk"))
    assert good.status_code == 200, good.text


@BOTH_DATABASES
async def test_names_and_ids_that_cannot_exist_answer_4xx(client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    """PostgreSQL text cannot hold NUL: a user name or key id with one reached the database and answered 500."""
    wrong = await client.post("/api/v1/oauth/token", data={"grant_type": "password", "username": "own\x00er",
                                                           "password": PASSWORD})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
    for key_id in ("a%00b", "x" * 22):
        missing = await client.delete(f"/api/v1/keys/{key_id}", headers=owner)
        assert missing.status_code in (404, 422), missing.text


async def test_pairing_codes_cannot_be_brute_forced(car: Car, client: httpx.AsyncClient,
                                                    owner: dict[str, str]) -> None:
    """Someone with the owner's password but not at the car must not pair a key by guessing. Every live code used
    to count, so asking for many codes multiplied the odds of a guess; now a new code replaces the last one, and
    wrong guesses are limited across all codes and tokens."""
    assert (await client.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
    first = car.shown_code()
    assert (await client.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
    second = car.shown_code()
    if first != second:  # one in a million they are equal
        stale = await client.post("/api/v1/keys", headers=owner, json={"code": first, "public_key":
                                                                       PhoneKey().public_b64})
        assert stale.status_code == 403 and stale.json()["error"] == "bad_pairing_code", stale.text
    statuses = []
    for attempt in range(24):  # new codes and fresh sign-ins do not buy more guesses
        if attempt % 6 == 0:
            owner = bearer((await sign_in(client))["access_token"])
            assert (await client.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
        code = car.shown_code()
        guess = "000000" if code != "000000" else "111111"
        response = await client.post("/api/v1/keys", headers=owner, json={"code": guess, "public_key":
                                                                          PhoneKey().public_b64})
        statuses.append(response.status_code)
    assert statuses.count(403) <= 10 and statuses[-1] == 429, statuses
    assert (await client.get("/api/v1/keys", headers=owner)).json() == []


async def test_garbage_refresh_tokens_do_not_lock_the_owner_out(client: httpx.AsyncClient) -> None:
    """The refresh grant had one rate-limit bucket for everyone: anyone could spend it with made-up tokens and the
    owner's app could no longer refresh."""
    tokens = await sign_in(client)
    for _ in range(40):
        bogus = await client.post("/api/v1/oauth/token", data={"grant_type": "refresh_token",
                                                               "refresh_token": "evrt_made_up"})
        assert bogus.status_code in (400, 429)
    response = await client.post("/api/v1/oauth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text


async def test_token_responses_are_not_cached_and_pages_carry_security_headers(client: httpx.AsyncClient) -> None:
    """RFC 6749 §5.1: a token response must say Cache-Control: no-store. The web app is served with a strict
    Content-Security-Policy (no inline script or style), no MIME sniffing and no framing (clickjacking)."""
    await client.post("/api/v1/setup", json={"name": OWNER, "password": PASSWORD})
    response = await client.post("/api/v1/oauth/token", data={"grant_type": "password", "username": OWNER,
                                                              "password": PASSWORD})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    for path in ("/", "/app.js", "/api/v1/setup"):
        headers = (await client.get(path)).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


async def test_the_stream_refuses_other_sites(car: Car, client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    """Cross-site WebSocket hijacking: a page on another site that holds a token must not open the stream from the
    owner's browser. An Origin other than the car's own is refused with 4403; no Origin (an app) is fine."""
    token = owner["Authorization"].removeprefix("Bearer ")
    url = car.url.replace("http", "ws") + f"/api/v1/vehicle/stream?access_token={token}"
    async with websockets.connect(url, origin=Origin("http://evil.example")) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with websockets.connect(url, origin=Origin(car.url)) as socket:
        assert json.loads(await socket.recv())["type"] == "state"
    async with websockets.connect(url) as socket:
        assert json.loads(await socket.recv())["type"] == "state"
