"""With the cabin (evos.cabin) in the car: scene commands reach its scene engine, its centre screen is under /cabin."""

from __future__ import annotations

from pathlib import Path

import httpx

from companion.car import bearer, sign_in, start_car

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
    finally:
        await car.shutdown()
