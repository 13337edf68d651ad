"""The MQTT bridge as an entrance: audited first like every other one, and never able to drive the car."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ecosystem.conftest import BASE, bridged_car, home_client
from ecosystem.mosquitto import Mosquitto
from evos.broker import JOURNAL_NAME
from evos.car import app_named, permissions_of
from helpers import eventually

SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


async def test_a_command_the_audit_journal_cannot_hold_is_refused(mqtt_server: Mosquitto, tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).mkdir(parents=True)  # a directory where the journal's file should be: unwritable
    async with bridged_car(mqtt_server, tmp_path) as car, home_client(mqtt_server) as home:
        before = car.value(SETPOINT)
        await home.command(SETPOINT, "27")
        await eventually(lambda: len(home.errors) == 1, 5)
        assert home.errors[0]["code"] == "unavailable" and "journal" in home.errors[0]["message"]
        await asyncio.sleep(0.3)
        assert car.value(SETPOINT) == before


async def test_the_bridges_token_cannot_drive_steer_or_touch_driver_assistance(mqtt_server: Mosquitto,
                                                                               tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"  # an owner's file that lists a driving actuator among its commands
    config.write_text(f"server: {mqtt_server.url}\ncommands: [Vehicle.Evos.Twin.Driver.AcceleratorPedal]\n")
    async with bridged_car(mqtt_server, tmp_path, config=config) as car:
        permissions = permissions_of(app_named("mqtt"), car.broker)
        for path in ("Vehicle.Evos.Twin.Driver.AcceleratorPedal", "Vehicle.Evos.Twin.Driver.SteeringAngle",
                     "Vehicle.Evos.Twin.Driver.TargetSpeed", "Vehicle.Evos.ADAS.TimeGap",
                     "Vehicle.Evos.Twin.TimeScale", "Vehicle.ADAS.CruiseControl.IsActive"):
            assert not permissions.allows("actuate", path), path
        assert permissions.allows("actuate", "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked")
        # the file's list cannot widen the token: the broker refuses it, and the home is told
        async with home_client(mqtt_server) as home:
            await home.send(f"{BASE}/Vehicle/Evos/Twin/Driver/AcceleratorPedal/set", "100")
            await eventually(lambda: len(home.errors) == 1, 5)
            assert home.errors[0]["code"] == "not_permitted"
            assert car.value("Vehicle.Evos.Twin.Driver.AcceleratorPedal") in (None, 0)
