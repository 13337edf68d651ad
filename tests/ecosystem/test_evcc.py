"""The evcc example (docs/examples/evcc.yaml) against a running bridge: every topic it reads is published in the
form evcc parses, and its charge enable starts and stops charging."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ecosystem.conftest import bridged_car, home_client
from ecosystem.mosquitto import Mosquitto
from helpers import eventually

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "evcc.yaml"
CHG = "Vehicle.Powertrain.TractionBattery.Charging"
# what evcc's custom vehicle parses from each getter (its float, int and charge-status getters)
FORMS = {"soc": r"\d+(\.\d+)?", "range": r"\d+", "odometer": r"\d+(\.\d+)?", "limitsoc": r"\d+(\.\d+)?",
         "status": r"[ABC]"}


def _vehicle() -> dict:
    (vehicle,) = yaml.safe_load(EXAMPLE.read_text())["vehicles"]
    assert vehicle["type"] == "custom"
    return vehicle


async def test_every_topic_evcc_reads_is_published_as_evcc_parses_it(server: Mosquitto, tmp_path: Path) -> None:
    vehicle = _vehicle()
    readers = {key: vehicle[key]["topic"] for key in FORMS if key in vehicle}
    assert set(readers) == set(FORMS)
    async with bridged_car(server, tmp_path) as car, home_client(server) as home:
        await eventually(lambda: all(home.state(t) is not None for t in readers.values()), 5)
        for key, topic in readers.items():
            assert re.fullmatch(FORMS[key], home.state(topic) or ""), (key, home.state(topic))
        soc = car.value("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
        assert abs(float(home.state(readers["soc"]) or 0) - soc) < 0.1
        assert int(home.state(readers["range"]) or 0) == round(car.value("Vehicle.Powertrain.Range") / 1000)
        assert home.state(readers["status"]) == "A"  # parked, not plugged in


async def test_evccs_charge_enable_starts_and_stops_charging(server: Mosquitto, tmp_path: Path) -> None:
    writer = _vehicle()["chargeenable"]
    assert writer["payload"] == "${enable}"
    status = _vehicle()["status"]["topic"]
    async with bridged_car(server, tmp_path, plugged_in=True) as car, home_client(server) as home:
        await car.port.actuate({f"{CHG}.ChargeLimit": 100})  # the parked car is at its default limit
        await eventually(lambda: home.state(status) in ("B", "C"), 5)
        # evcc writes ${enable} as true or false; the car's charging follows, and so does evcc's status
        for enable, charging, wanted in (("false", False, "B"), ("true", True, "C"), ("false", False, "B")):
            await home.send(writer["topic"], enable)
            await eventually(lambda c=charging: car.value(f"{CHG}.IsCharging") is c, 10)
            await eventually(lambda w=wanted: home.state(status) == w, 5)
        assert home.errors == []
