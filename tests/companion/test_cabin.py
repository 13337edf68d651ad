"""With the cabin (evos.cabin) in the car: scene commands reach its scene engine, its centre screen is under /cabin."""

from __future__ import annotations

from pathlib import Path

import httpx

from companion.car import bearer, sign_in, start_car
from evos.app import AppEnv, CarSettings
from evos.broker import Broker, LocalPort
from evos.cabin import CABIN_OVERLAY, centre_screen
from evos.companion import CompanionConfig, CompanionService
from evos.twin import TWIN_OVERLAY
from evos.vss import load_catalog

SCENE = "Vehicle.Evos.Cabin.Scene"


async def test_scene_commands_and_the_centre_screen(tmp_path: Path) -> None:
    car = await start_car(tmp_path, cabin=True)
    try:
        async with httpx.AsyncClient(base_url=car.url) as http:
            owner = bearer((await sign_in(http))["access_token"])
            entered = await http.post("/api/v1/vehicle/commands/scene_enter", headers=owner,
                                       json={"args": {"scene": "cinema"}})
            assert entered.status_code == 200, entered.text
            assert car.broker.get(SCENE).value == "cinema"
            state = (await http.get("/api/v1/vehicle/state", headers=owner)).json()
            assert state["groups"]["climate"]["scene"] == "cinema"
            assert (await http.post("/api/v1/vehicle/commands/scene_exit", headers=owner)).status_code == 200
            assert car.broker.get(SCENE).value == "NONE"
            bad = await http.post("/api/v1/vehicle/commands/scene_enter", headers=owner,
                                  json={"args": {"scene": "Not A Scene"}})
            assert bad.status_code == 422 and SCENE in bad.json()["detail"]
            assert car.broker.get(SCENE).value == "NONE"
            assert (await http.get("/cabin/")).status_code == 200  # the centre screen, mounted by the companion
            assert (await http.get("/cabin/api/state")).status_code == 200  # open on a loopback address
    finally:
        await car.shutdown()


async def test_cabin_api_needs_the_owner_off_loopback(tmp_path: Path) -> None:
    """A companion configured for a non-loopback address guards /cabin/api. The app is driven in memory (ASGI):
    tests never listen beyond 127.0.0.1."""
    broker = Broker(load_catalog(None, [TWIN_OVERLAY, CABIN_OVERLAY]))
    config = CompanionConfig.for_data_dir(tmp_path, host="0.0.0.0")  # configured so, never listened on
    port = LocalPort(broker, "companion")
    async with centre_screen(port, AppEnv(CarSettings(), tmp_path)) as router:
        service = CompanionService(port, config, [router])
        await service._state.start()
        try:
            await _owner_only_off_loopback(service)
        finally:
            service.db.close()


async def _owner_only_off_loopback(service: CompanionService) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://127.0.0.1") as http:
        assert (await http.get("/cabin/")).status_code == 200  # the page loads
        anonymous = await http.get("/cabin/api/state")
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"
        owner = bearer((await sign_in(http))["access_token"])
        assert (await http.get("/cabin/api/state", headers=owner)).status_code == 200
        app = await http.post("/api/v1/tokens", headers=owner, json={"name": "app", "scopes": ["vehicle_data"]})
        reader = bearer(app.json()["access_token"])
        refused = await http.post("/cabin/api/scene", headers=reader, json={"name": "cinema"})
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
