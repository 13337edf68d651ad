"""The car in a real Home Assistant 2025.1.4 (its own venv: scripts/ha_venv.sh): HA's own schemas accept the
bridge's discovery, HA makes the car's entities from it and shows the car's states, and HA's service calls change
the car through the bridge's one command path (and cannot unlock it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ecosystem.conftest import BASE, Home, bridged_car, home_client
from ecosystem.ha.instance import HomeAssistantHandle, home_assistant
from ecosystem.mosquitto import Mosquitto
from evos.broker import JOURNAL_NAME, read_journal

HERE = Path(__file__).parent
VENV = Path(os.environ.get("EVOS_HA_VENV", HERE.parents[1] / ".peers" / "ha"))
DISCOVERY = "homeassistant/device/evos_car/config"
CHG = "Vehicle.Powertrain.TractionBattery.Charging"
SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
DEFROSTER = "Vehicle.Cabin.HVAC.IsFrontDefrosterActive"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


@pytest.fixture(scope="session")
def ha_venv() -> Path:
    if not (VENV / "bin" / "hass").exists():
        message = f"the Home Assistant tests need its venv at {VENV}: run scripts/ha_venv.sh"
        if os.environ.get("EVOS_REQUIRE_HA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return VENV


def validate(venv: Path, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """HA's own verdict on discovery messages (ha/validate.py in HA's venv, strict: dropped options are errors)."""
    done = subprocess.run([str(venv / "bin" / "python"), str(HERE / "ha" / "validate.py"), "--strict"],
                          input=json.dumps(messages), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


async def test_home_assistants_own_schemas_accept_the_bridges_discovery(server: Mosquitto, tmp_path: Path,
                                                                         ha_venv: Path) -> None:
    async with bridged_car(server, tmp_path, plugged_in=True) as _car, home_client(server) as home:
        for _ in range(500):
            if DISCOVERY in home.latest:
                break
            await asyncio.sleep(0.01)
        payload = json.loads(home.latest[DISCOVERY])
    verdict = await asyncio.to_thread(validate, ha_venv, [{"topic": DISCOVERY, "payload": payload}])
    assert verdict == {"ok": True, "errors": [], "warnings": []}
    # every minor entity too (they start disabled, but a user turns them on), and the check can say no
    for component in payload["cmps"].values():
        component.pop("en", None)
    broken = json.loads(json.dumps(payload))
    broken["cmps"]["cabin_temperature"]["unit_of_meas"] = "kWh"
    del broken["cmps"]["lock"]["cmd_t"]
    verdicts = await asyncio.to_thread(validate, ha_venv, [{"topic": DISCOVERY, "payload": payload}])
    assert verdicts["ok"], verdicts
    refused = await asyncio.to_thread(validate, ha_venv, [{"topic": DISCOVERY, "payload": broken}])
    assert {e["component"] for e in refused["errors"]} == {"cabin_temperature", "lock"}


@contextlib.asynccontextmanager
async def running_home_assistant(server: Mosquitto, config_dir: Path, venv: Path
                                 ) -> AsyncIterator[HomeAssistantHandle]:
    """instance.home_assistant (blocking: it waits for HA's start and stop) off the test's event loop."""
    with contextlib.ExitStack() as stack:
        try:
            yield await asyncio.to_thread(stack.enter_context, home_assistant(server.port, config_dir, venv))
        finally:
            await asyncio.to_thread(stack.close)


class Watch:
    """What HA shows (mqtt_statestream under ``ha_state/``), and a bounded wait that shows HA's log on failure."""

    def __init__(self, home: Home, ha: HomeAssistantHandle) -> None:
        self.home, self.ha = home, ha

    def entity(self, domain: str, suffix: str) -> str | None:
        """The id of HA's entity in ``domain`` whose object id ends with ``suffix`` (None: HA has none yet)."""
        found = {t.split("/")[2] for t in self.home.latest if t.startswith(f"ha_state/{domain}/")}
        return next((f"{domain}.{object_id}" for object_id in sorted(found) if object_id.endswith(suffix)), None)

    def shows(self, entity_id: str | None, attribute: str = "state") -> Any:
        if entity_id is None:
            return None
        payload = self.home.latest.get(self.ha.state_topic(entity_id, attribute))
        return None if payload is None else json.loads(payload) if attribute != "state" else payload.decode()

    async def until(self, predicate: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
        for _ in range(int(timeout_s / 0.05)):
            if predicate():
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"{what}: not within {timeout_s} s\nbridge errors: {self.home.errors}\n"
                    f"HA's log:\n{self.ha.log()[-4000:]}")

    async def call(self, service: str, entity_id: str | None, **data: Any) -> None:
        assert entity_id is not None, service
        done = len([s for s in self.home.seen if s[0] == self.ha.call_done_topic])
        await self.home.send(self.ha.call_topic, HomeAssistantHandle.call(service, entity_id, **data))
        await self.until(lambda: len([s for s in self.home.seen if s[0] == self.ha.call_done_topic]) > done,
                         f"HA called {service} on {entity_id}")


async def test_a_real_home_assistant_shows_the_car_and_its_service_calls_change_it(server: Mosquitto,
                                                                                  tmp_path: Path,
                                                                                  ha_venv: Path) -> None:
    topics = (f"{BASE}/#", "ha_state/#", "test/ha/call/done")
    async with (bridged_car(server, tmp_path / "car", plugged_in=True) as car,
                home_client(server, topics=topics) as home,
                running_home_assistant(server, tmp_path / "ha", ha_venv) as ha):
        watch = Watch(home, ha)
        # HA made the entities from the discovery and shows the car's states (HA's units: %, °C, km)
        await watch.until(lambda: watch.shows(watch.entity("sensor", "_state_of_charge")) not in (None, "unknown"),
                          "the state of charge in HA")
        assert abs(float(watch.shows(watch.entity("sensor", "_state_of_charge"))) - car.value(SOC)) < 0.1
        await watch.until(lambda: watch.shows(watch.entity("lock", "_doors")) == "locked", "the car locked in HA")
        await watch.until(lambda: watch.shows(watch.entity("binary_sensor", "_plugged_in")) == "on", "plugged in")
        climate = watch.entity("climate", "_climate")
        await watch.until(lambda: watch.shows(climate, "current_temperature") is not None, "the cabin temperature")
        # HA's service calls become commands on the car
        await watch.call("climate.set_temperature", climate, temperature=23.5)
        await watch.until(lambda: car.value(SETPOINT) == 23.5, "the set point changed by HA")
        await watch.until(lambda: watch.shows(climate, "temperature") == 23.5, "HA shows the new set point")
        await watch.call("number.set_value", watch.entity("number", "_charge_limit"), value=85)
        await watch.until(lambda: car.value(f"{CHG}.ChargeLimit") == 85, "the charge limit changed by HA")
        await watch.call("switch.turn_on", watch.entity("switch", "_front_defroster"))
        await watch.until(lambda: car.value(DEFROSTER) is True, "the defroster switched on by HA")
        await watch.until(lambda: watch.shows(watch.entity("switch", "_front_defroster")) == "on", "HA shows it")
        # unlocking takes the owner's opt-in: HA is told no and the car stays locked
        await watch.call("lock.unlock", watch.entity("lock", "_doors"))
        await watch.until(lambda: any(e["code"] == "signature_required" for e in home.errors), "unlock refused")
        await asyncio.sleep(0.5)
        assert car.value(LOCK) is True and watch.shows(watch.entity("lock", "_doors")) == "locked"
        rows = read_journal(tmp_path / "car" / JOURNAL_NAME)
    done = sorted(next(iter(row["args"])) for row in rows if row["result"] == "completed")
    assert done == sorted([SETPOINT, f"{CHG}.ChargeLimit", DEFROSTER])
    assert [row["args"] for row in rows if row["result"] != "completed"] == [
        {"topic": f"{BASE}/lock/set", "payload": "false"}]  # the refusal is journaled too
