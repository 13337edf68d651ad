"""The companion API over real HTTP against a running car (broker + twin + body hardware)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from companion.car import BOTH_DATABASES, OWNER, Car, PhoneKey, bearer, pair_phone, sign_in, start_car
from helpers import eventually

DOORS = [f"Vehicle.Cabin.Door.{side}.IsLocked" for side in
         ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide")]
WINDOWS = [p.replace("IsLocked", "Window.Position") for p in DOORS]
HVAC = "Vehicle.Cabin.HVAC"
BAT = "Vehicle.Powertrain.TractionBattery"
CHG = f"{BAT}.Charging"


async def command(http: httpx.AsyncClient, headers: dict[str, str], name: str, **body: Any) -> httpx.Response:
    return await http.post(f"/api/v1/vehicle/commands/{name}", headers=headers, json=body)


@BOTH_DATABASES
async def test_first_run_sign_in_and_errors(car: Car, client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/setup")).json() == {"needs_owner": True}
    tokens = await sign_in(client)
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"].startswith("evrt_")
    again = await client.post("/api/v1/setup", json={"name": "mallory", "password": "x" * 12})
    assert again.status_code == 409 and again.json()["error"] == "already_set_up"
    wrong = await client.post("/api/v1/oauth/token", data={"grant_type": "password", "username": OWNER,
                                                           "password": "wrong password"})
    assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant",
                                                         "detail": "wrong user name or password"}
    me = (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["user"] == OWNER and set(me["scopes"]) == {"owner", "vehicle_data", "vehicle_location",
                                                         "vehicle_cmds", "charging_cmds"}
    missing = await client.get("/api/v1/vehicle/state")
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = await client.post("/api/v1/vehicle/commands/self_destruct", headers=bearer(tokens["access_token"]))
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    bad = await command(client, bearer(tokens["access_token"]), "set_temperature", args={"temperature_c": 99})
    assert bad.status_code == 422 and "temperature_c" in bad.json()["detail"]
    mode = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
    before = car.broker.get(mode).value
    warm = await command(client, bearer(tokens["access_token"]), "battery_conditioning", args={"mode": "toasty"})
    assert warm.status_code == 422 and "mode" in warm.json()["detail"] and car.broker.get(mode).value == before


async def test_state_is_grouped_from_the_signals(car: Car, client: httpx.AsyncClient,
                                                 owner: dict[str, str]) -> None:
    groups = (await client.get("/api/v1/vehicle/state", headers=owner)).json()["groups"]
    assert set(groups) == {"battery", "charging", "climate", "closures", "location", "drive"}
    soc = car.broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value
    assert groups["battery"]["soc_pct"] == pytest.approx(soc, abs=0.01)
    assert groups["closures"]["door_row1_driver_locked"] is True  # a parked car starts locked
    assert "scene" not in groups["climate"]  # this car has no cabin scenes (no cabin overlay)
    assert groups["climate"]["driver_temp_c"] == car.broker.get(f"{HVAC}.Station.Row1.Driver.Temperature").value
    assert groups["drive"]["model"] == "Xiaomi SU7"  # the twin's VSS VehicleIdentification.Model


@BOTH_DATABASES
async def test_every_command_changes_the_car(car: Car, client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    key = await pair_phone(car, client, owner)
    get = car.broker.get

    async def run(name: str, signed: bool = False, **args: Any) -> dict[str, Any]:
        body = key.sign(name, args) if signed else {"args": args}
        response = await command(client, owner, name, **body)
        assert response.status_code == 200, (name, response.text)
        result: dict[str, Any] = response.json()
        return result

    await run("unlock", signed=True)
    assert [get(p).value for p in DOORS] == [False] * 4
    assert (await run("lock"))["result"] == "completed"
    assert [get(p).value for p in DOORS] == [True] * 4
    await run("climate_on")
    assert get(f"{HVAC}.IsAirConditioningActive").value is True
    await run("set_temperature", temperature_c=24.5)
    assert get(f"{HVAC}.Station.Row1.Driver.Temperature").value == 24.5
    assert get(f"{HVAC}.Station.Row1.Passenger.Temperature").value == 24.5
    await run("climate_off")
    assert get(f"{HVAC}.IsAirConditioningActive").value is False
    await run("seat_heating", seat="row1_passenger", level_pct=66)
    assert get("Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling").value == 66
    await run("defrost", on=True)
    assert get(f"{HVAC}.IsFrontDefrosterActive").value is True and get(f"{HVAC}.IsRearDefrosterActive").value
    await run("set_charge_limit", limit_pct=80)
    assert get(f"{CHG}.ChargeLimit").value == 80
    await run("charge_start")
    assert get(f"{CHG}.StartStopCharging").value == "START"
    await run("charge_stop")
    assert get(f"{CHG}.StartStopCharging").value == "STOP"
    for mode, requested in (("fast_charging", "FAST_CHARGING_PREPARATION"), ("off", "INACTIVE")):  # the car's reply
        reply = await run("battery_conditioning", mode=mode)
        assert reply["values"] == {f"{BAT}.BatteryConditioning.RequestedMode": requested}
    honk = await run("honk")
    assert honk["result"] == "completed"  # the horn sounded (it falls silent again half a second later)
    await run("flash_lights")
    assert get("Vehicle.Body.Lights.Hazard.IsSignaling").value is True
    await run("open_trunk", signed=True)
    assert get("Vehicle.Body.Trunk.Rear.IsOpen").value is True
    await run("close_trunk")
    assert get("Vehicle.Body.Trunk.Rear.IsOpen").value is False
    vent = await run("open_windows", signed=True)
    assert vent["values"] == dict.fromkeys(WINDOWS, 10) and vent["result"] == "completed"
    await run("close_windows")
    assert [get(p).value for p in WINDOWS] == [0] * 4
    scene = await command(client, owner, "scene_enter", args={"scene": "cinema"})
    assert scene.status_code == 404 and "Vehicle.Evos.Cabin.Scene" in scene.json()["detail"]

    audit = (await client.get("/api/v1/audit", headers=owner)).json()
    assert audit[0]["command"] == "scene_enter" and audit[0]["result"] == "not_supported"
    unlock = next(e for e in audit if e["command"] == "unlock")
    assert unlock["credential"].endswith(f"key:{key.key_id}") and unlock["result"] == "completed"
    assert len(audit) == 19  # every command above, the refused one included


@BOTH_DATABASES
async def test_scopes_are_enforced(car: Car, client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    created = await client.post("/api/v1/tokens", headers=owner, json={"name": "insurer", "scopes": ["vehicle_data"]})
    assert created.status_code == 201
    reader = bearer(created.json()["access_token"])
    groups = (await client.get("/api/v1/vehicle/state", headers=reader)).json()["groups"]
    assert "location" not in groups and "battery" in groups
    for name in ("unlock", "lock", "charge_start"):
        refused = await command(client, reader, name)
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope", name
    assert (await client.get("/api/v1/tokens", headers=reader)).status_code == 403
    assert [car.broker.get(p).value for p in DOORS] == [True] * 4

    created = await client.post("/api/v1/tokens", headers=owner, json={"name": "charger app",
                                                                       "scopes": ["charging_cmds"]})
    charger = bearer(created.json()["access_token"])
    assert (await command(client, charger, "set_charge_limit", args={"limit_pct": 90})).status_code == 200
    assert (await command(client, charger, "honk")).status_code == 403
    assert (await client.get("/api/v1/vehicle/state", headers=charger)).status_code == 403

    apps = (await client.get("/api/v1/tokens", headers=owner)).json()
    assert [a["name"] for a in apps] == ["insurer", "charger app"]
    assert (await client.delete(f"/api/v1/tokens/{apps[0]['id']}", headers=owner)).status_code == 204
    assert (await client.get("/api/v1/vehicle/state", headers=reader)).status_code == 401
    bad_scope = await client.post("/api/v1/tokens", headers=owner, json={"name": "x", "scopes": ["owner"]})
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"


@BOTH_DATABASES
async def test_signed_commands_refuse_replay_expiry_forgery_and_unknown_keys(
        car: Car, client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    key = await pair_phone(car, client, owner)

    async def refused(body: dict[str, Any], error: str) -> None:
        response = await command(client, owner, "unlock", **body)
        assert response.status_code == 403, response.text
        assert response.json()["error"] == error
        assert [car.broker.get(p).value for p in DOORS] == [True] * 4  # nothing changed

    await refused({}, "signature_required")
    await refused({"args": {}}, "signature_required")
    await refused(key.sign("unlock", expires_in_s=-5), "expired")
    await refused(key.sign("unlock", expires_in_s=3600), "expiry_too_far")
    forged = key.sign("unlock")
    forged["signature"] = PhoneKey().sign("unlock", counter=key.counter)["signature"]
    await refused(forged, "bad_signature")
    stranger = PhoneKey(key_id="A" * 22)
    await refused(stranger.sign("unlock"), "unknown_key")
    await refused(key.sign("open_trunk"), "envelope_mismatch")

    good = key.sign("unlock")
    assert (await command(client, owner, "unlock", **good)).status_code == 200
    assert (await command(client, owner, "lock")).status_code == 200
    await refused(good, "replayed")
    await refused(key.sign("unlock", counter=1), "replayed")

    assert (await client.delete(f"/api/v1/keys/{key.key_id}", headers=owner)).status_code == 204
    await refused(key.sign("unlock"), "revoked_key")
    listed = (await client.get("/api/v1/keys", headers=owner)).json()
    assert listed[0]["id"] == key.key_id and listed[0]["revoked_at"] is not None


@BOTH_DATABASES
async def test_pairing_needs_the_code_the_car_shows(car: Car, client: httpx.AsyncClient,
                                                    owner: dict[str, str]) -> None:
    assert (await client.post("/api/v1/pairing/codes", headers=owner)).status_code == 202
    code = car.shown_code()
    wrong = "000000" if code != "000000" else "111111"
    key = PhoneKey()
    body = {"code": wrong, "public_key": key.public_b64}
    response = await client.post("/api/v1/keys", headers=owner, json=body)
    assert response.status_code == 403 and response.json()["error"] == "bad_pairing_code"
    short = await client.post("/api/v1/keys", headers=owner, json={"code": code, "public_key": "AAAA"})
    assert short.status_code == 422 and "32 bytes" in short.json()["detail"]
    assert (await client.get("/api/v1/keys", headers=owner)).json() == []
    paired = await client.post("/api/v1/keys", headers=owner, json={**body, "code": code})
    assert paired.status_code == 201
    assert car.shown_code() == ""  # the screen clears
    reuse = await client.post("/api/v1/keys", headers=owner, json={"code": code, "public_key": PhoneKey().public_b64})
    assert reuse.status_code == 403  # single use


@BOTH_DATABASES
async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await sign_in(client)
    second = await client.post("/api/v1/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    fresh = second.json()
    assert fresh["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))).status_code == 200
    reuse = await client.post("/api/v1/oauth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": first["refresh_token"]})
    assert reuse.status_code == 400 and "already used" in reuse.json()["detail"]
    assert (await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))).status_code == 401
    assert (await client.post("/api/v1/oauth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": fresh["refresh_token"]})).status_code == 400

    other = await sign_in(client)
    assert (await client.post("/api/v1/oauth/revoke", data={"token": other["access_token"]})).status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(other["access_token"]))).status_code == 401
    unsupported = await client.post("/api/v1/oauth/token", data={"grant_type": "client_credentials"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Any) -> None:
    car = await start_car(tmp_path, rate_per_s=0.01, rate_burst=3)
    try:
        async with httpx.AsyncClient(base_url=car.url) as http:
            headers = bearer((await sign_in(http))["access_token"])
            statuses = [(await http.get("/api/v1/vehicle/state", headers=headers)).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            limited = await http.get("/api/v1/vehicle/state", headers=headers)
            assert limited.json()["error"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
            other = bearer((await sign_in(http))["access_token"])  # another token has its own bucket
            assert (await http.get("/api/v1/vehicle/state", headers=other)).status_code == 200
    finally:
        await car.shutdown()


@BOTH_DATABASES
async def test_restart_keeps_users_tokens_and_keys(tmp_path: Any, database_url: str) -> None:
    car = await start_car(tmp_path, database_url=database_url)
    async with httpx.AsyncClient(base_url=car.url) as http:
        tokens = await sign_in(http)
        key = await pair_phone(car, http, bearer(tokens["access_token"]))
        assert (await command(http, bearer(tokens["access_token"]), "unlock", **key.sign("unlock"))).status_code == 200
        app = (await http.post("/api/v1/tokens", headers=bearer(tokens["access_token"]),
                               json={"name": "logger", "scopes": ["vehicle_data"]})).json()
    await car.shutdown()

    car = await start_car(tmp_path, database_url=database_url)
    try:
        async with httpx.AsyncClient(base_url=car.url) as http:
            headers = bearer(tokens["access_token"])
            assert (await http.get("/api/v1/setup")).json() == {"needs_owner": False}
            assert (await http.get("/api/v1/vehicle/state", headers=bearer(app["access_token"]))).status_code == 200
            assert (await command(http, headers, "lock")).status_code == 200
            stale = key.sign("unlock", counter=1)
            assert (await command(http, headers, "unlock", **stale)).json()["error"] == "replayed"
            assert (await command(http, headers, "unlock", **key.sign("unlock"))).status_code == 200
            assert car.broker.get(DOORS[0]).value is False
            audit = (await http.get("/api/v1/audit", headers=headers)).json()
            assert [(e["command"], e["result"]) for e in audit] == [
                ("unlock", "completed"), ("unlock", "replayed"), ("lock", "completed"), ("unlock", "completed")]
    finally:
        await car.shutdown()


async def test_websocket_streams_live_state(car: Car, client: httpx.AsyncClient, owner: dict[str, str]) -> None:
    token = owner["Authorization"].split()[1]
    url = car.url.replace("http", "ws") + "/api/v1/vehicle/stream"
    async with websockets.connect(f"{url}?access_token={token}") as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "state" and "battery" in first["groups"]
        assert (await command(client, owner, "set_temperature", args={"temperature_c": 26.0})).status_code == 200

        async def set_point_arrives() -> None:
            while True:
                message = json.loads(await ws.recv())
                if message["groups"].get("climate", {}).get("driver_temp_c") == 26.0:
                    return

        await asyncio.wait_for(set_point_arrives(), 5)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(f"{url}?access_token=nonsense") as ws:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@BOTH_DATABASES
async def test_websocket_closes_when_its_token_is_revoked(car: Car, client: httpx.AsyncClient,
                                                          owner: dict[str, str]) -> None:
    app = await client.post("/api/v1/tokens", headers=owner, json={"name": "dashboard", "scopes": ["vehicle_data"]})
    url = car.url.replace("http", "ws") + "/api/v1/vehicle/stream"
    async with websockets.connect(f"{url}?access_token={app.json()['access_token']}") as ws:
        assert json.loads(await ws.recv())["type"] == "state"
        assert (await client.delete(f"/api/v1/tokens/{app.json()['id']}", headers=owner)).status_code == 204

        async def read_until_closed() -> None:
            while True:
                await ws.recv()  # updates may still arrive until the stream checks its token again

        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(read_until_closed(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert "revoked" in closed.value.rcvd.reason
    # a signed-in session's stream ends the same way when its access token is revoked (RFC 7009)
    session = await sign_in(client)
    async with websockets.connect(f"{url}?access_token={session['access_token']}") as ws:
        await ws.recv()
        assert (await client.post("/api/v1/oauth/revoke", data={"token": session["access_token"]})).status_code == 200
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(read_until_closed(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_flash_lights_flashes_and_ends_by_itself(car: Car, client: httpx.AsyncClient,
                                                       owner: dict[str, str]) -> None:
    hazard = "Vehicle.Body.Lights.Hazard.IsSignaling"
    flashed = await command(client, owner, "flash_lights")
    assert flashed.status_code == 200 and flashed.json()["values"] == {hazard: True}
    assert car.broker.get(hazard).value is True  # the body hardware switched the hazards on
    await eventually(lambda: car.broker.get(hazard).value is False, timeout_s=10)  # and the companion off again
    refused = await command(client, owner, "flash_lights", args={"on": True})
    assert refused.status_code == 422 and "on" in refused.json()["detail"]  # no latching on/off any more


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert (await client.get("/")).status_code == 200
