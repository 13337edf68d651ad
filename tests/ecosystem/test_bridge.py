"""The MQTT bridge on a real mosquitto: what a home sees of the car, and what its commands do."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ecosystem.conftest import BASE, bridged_car, home_client
from ecosystem.mosquitto import Mosquitto
from evos.broker import JOURNAL_NAME, read_journal
from evos.ecosystem import bridge_config, forget
from helpers import eventually

SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


async def test_the_car_is_published_retained_with_its_availability_and_discovery(server: Mosquitto,
                                                                                  tmp_path: Path) -> None:
    # a home that subscribes once the bridge is there gets everything from the server's retained messages
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        await eventually(lambda: home.state(SOC) is not None and home.state(f"{BASE}/status") == "online"
                         and "homeassistant/device/evos_car/config" in home.latest
                         and home.state(f"{BASE}/lock") is not None
                         and b'"select"' in home.latest["homeassistant/device/evos_car/config"], 5)
        assert abs(float(home.state(SOC) or 0) - car.value(SOC)) < 0.01
        assert home.state(LOCK) == "true"  # parked, locked
        assert home.state(f"{BASE}/lock") == "true"
        assert home.state("Vehicle.Evos.Cabin.Scenes") is not None
        discovery = json.loads(home.latest["homeassistant/device/evos_car/config"])
        assert discovery["avty_t"] == f"{BASE}/status"
        platforms = {c["p"] for c in discovery["cmps"].values()}
        assert {"sensor", "binary_sensor", "lock", "climate", "number", "button", "select", "switch",
                "device_tracker", "update"} <= platforms
        assert "office" in discovery["cmps"]["scene"]["options"]
    # the bridge stopped: the server says so to everyone
    async with home_client(server) as home:
        await eventually(lambda: home.state(f"{BASE}/status") == "offline" and home.state(LOCK) is not None, 5)
        assert (f"{BASE}/{LOCK.replace('.', '/')}", b"true", True) in home.seen  # kept by the server: retained


async def test_a_command_changes_the_car_and_comes_back_as_its_state_and_is_journaled(server: Mosquitto,
                                                                                     tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        await home.command(SETPOINT, "23.5")
        await eventually(lambda: car.value(SETPOINT) == 23.5, 5)
        await eventually(lambda: home.state(SETPOINT) == "23.5", 5)
        assert home.errors == []
        rows = read_journal(tmp_path / JOURNAL_NAME)
        assert rows[0]["user"] == "mqtt" and rows[0]["args"] == {SETPOINT: 23.5} and rows[0]["result"] == "completed"


async def test_a_bad_command_gets_an_error_reply_and_changes_nothing(server: Mosquitto, tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        before = car.value(SETPOINT)
        for payload in ("hot", "", "nan", "1e400"):
            await home.command(SETPOINT, payload)
        await home.command("Vehicle.Speed", "10")
        await home.command("Vehicle.Evos.Twin.Driver.AcceleratorPedal", "100")
        await home.command("Vehicle.Cabin.Nothing", "1")
        await eventually(lambda: len(home.errors) == 7, 5)
        assert [e["code"] for e in home.errors] == ["invalid_value"] * 4 + ["invalid_argument", "not_permitted",
                                                                             "unknown_signal"]
        assert all(e["topic"].endswith("/set") and e["message"] for e in home.errors)
        assert "Temperature" in home.errors[0]["message"] and "hot" in home.errors[0]["message"]
        assert car.value(SETPOINT) == before and car.value("Vehicle.Evos.Twin.Driver.AcceleratorPedal") in (None, 0)
        refused = [r for r in read_journal(tmp_path / JOURNAL_NAME) if r["user"] == "mqtt"]
        assert len(refused) == 7 and all(r["result"] != "completed" for r in refused)


async def test_opening_the_car_needs_the_owners_opt_in(server: Mosquitto, tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path / "a") as car, home_client(server) as home:
        await home.send(f"{BASE}/lock/set", "false")
        await home.command(LOCK, "false")
        await eventually(lambda: len(home.errors) == 2, 5)
        assert {e["code"] for e in home.errors} == {"signature_required"}
        assert car.value(LOCK) is True
    config = tmp_path / "bridge.yaml"
    config.write_text(f"server: {server.url}\nallow_opening: true\n")
    async with bridged_car(server, tmp_path / "b", config=config) as car, home_client(server) as home:
        await home.send(f"{BASE}/lock/set", "false")
        await eventually(lambda: car.value(LOCK) is False and car.value(
            "Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked") is False, 5)
        await eventually(lambda: home.state(f"{BASE}/lock") == "false", 5)
        assert home.errors == []
        rows = read_journal(tmp_path / "b" / JOURNAL_NAME)
        assert rows[0]["args"][LOCK] is False and rows[0]["result"] == "completed"


async def test_a_command_sent_while_the_server_restarts_is_not_lost(server: Mosquitto, tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path) as car:
        bridge = car.app("mqtt")
        server.stop()
        await eventually(lambda: not bridge.connected.is_set(), 5)
        server.start()
        # the home is back before the bridge (it waits out its backoff): its command waits in the bridge's session
        async with home_client(server, ()) as home:
            await home.command(SETPOINT, "19.0")
        await asyncio.wait_for(bridge.connected.wait(), 40)
        await eventually(lambda: car.value(SETPOINT) == 19.0, 10)


async def test_a_retained_command_is_refused_and_cleared(server: Mosquitto, tmp_path: Path) -> None:
    async with home_client(server, ()) as home:
        await home.send(f"{BASE}/{SETPOINT.replace('.', '/')}/set", "26", retain=True)
    async with home_client(server, (f"{BASE}/error",)) as home, bridged_car(server, tmp_path) as car:
        await eventually(lambda: len(home.errors) == 1, 5)
        assert home.errors[0]["code"] == "invalid_argument" and "retained" in home.errors[0]["message"]
        assert car.value(SETPOINT) != 26
    async with home_client(server, (f"{BASE}/+/+/+/+/+/+/+/set",)) as home:
        await asyncio.sleep(0.5)
        assert home.latest == {}  # nothing retained is left to replay


async def test_home_assistant_starting_gets_the_discovery_again(server: Mosquitto, tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path), home_client(server, ("homeassistant/device/#",)) as home:
        await eventually(lambda: len(home.seen) == 1, 5)
        await home.send("homeassistant/status", "online")
        await eventually(lambda: len(home.seen) == 2, 5)
        assert home.seen[1][0] == "homeassistant/device/evos_car/config"


async def test_flashing_the_lights_switches_the_hazards_off_again(server: Mosquitto, tmp_path: Path) -> None:
    hazard = "Vehicle.Body.Lights.Hazard.IsSignaling"
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        await home.send(f"{BASE}/flash/set", "true")
        await eventually(lambda: car.value(hazard) is True, 5)
        await eventually(lambda: car.value(hazard) is False, 8)
        assert home.errors == []


async def test_forget_removes_the_car_from_the_home(server: Mosquitto, tmp_path: Path) -> None:
    async with bridged_car(server, tmp_path):
        pass
    cleared = await forget(bridge_config(url=server.url), settle_s=0.5)
    assert "homeassistant/device/evos_car/config" in cleared and f"{BASE}/status" in cleared
    async with home_client(server) as home:
        await asyncio.sleep(0.5)
        assert home.latest == {}


async def test_a_control_takes_exactly_the_text_a_signals_command_does(server: Mosquitto, tmp_path: Path) -> None:
    limit = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        before = car.value(limit)
        bad = (("evcc/limitsoc", b"8_0"), ("evcc/limitsoc", "\uff18\uff10".encode()), ("evcc/limitsoc", b" 80"),
               ("evcc/limitsoc", b"80" * 600), ("lock", b"ON"), ("lock", b"\xff"), ("flash", b""))
        for control, payload in bad:
            await home.send(f"{BASE}/{control}/set", payload)
        await eventually(lambda: len(home.errors) == len(bad), 5)
        assert [e["code"] for e in home.errors] == ["invalid_value"] * len(bad), home.errors
        assert "8_0" in home.errors[0]["message"] and "over the limit" in home.errors[3]["message"]
        await asyncio.sleep(0.3)
        assert car.value(limit) == before and car.value(LOCK) is True
