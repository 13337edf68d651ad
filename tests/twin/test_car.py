"""The whole car as a user runs it (`evos up`): the twin drives, persists its state and survives kill -9."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from helpers import evos, free_port, start, stop, wait_listening

ODOMETER = "Vehicle.TraveledDistance"
TWIN = "Vehicle.Evos.Twin"
SEAT_HEATING = "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"


def read(address: str, *paths: str) -> dict[str, object]:
    result = evos("get", *paths, "--json", "--address", address)
    assert result.returncode == 0, result.stderr
    return {path: entry["value"] for path, entry in json.loads(result.stdout).items()}


def test_state_survives_kill_9(tmp_path: Path) -> None:
    data, address = tmp_path / "car", f"127.0.0.1:{free_port()}"
    proc = start("up", "--address", address, "--data-dir", str(data), "--vehicle", "byd-seal-rwd")
    try:
        wait_listening(proc, address)
        assert evos("actuate", f"{TWIN}.TimeScale", "20", "--address", address).returncode == 0
        assert evos("actuate", f"{TWIN}.Driver.TargetSpeed", "90", "--address", address).returncode == 0
        assert evos("actuate", SEAT_HEATING, "60", "--address", address).returncode == 0  # the body hardware
        time.sleep(3)
        before = read(address, ODOMETER, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
        assert before[ODOMETER] > 100  # type: ignore[operator]
        time.sleep(1.5)  # at least one save after the reading
    finally:
        proc.kill()  # kill -9: no clean shutdown
        proc.wait()
    for name in ("twin.sqlite", "body.sqlite"):
        with sqlite3.connect(data / name) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    proc = start("up", "--address", address, "--data-dir", str(data), "--vehicle", "byd-seal-rwd")
    try:
        wait_listening(proc, address)
        after = read(address, ODOMETER, "Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
                     SEAT_HEATING)
        assert after[SEAT_HEATING] == 60
        assert after[ODOMETER] >= before[ODOMETER]  # type: ignore[operator]
        assert after["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] <= \
            before["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]  # type: ignore[operator]
        assert after["Vehicle.Speed"] == 0.0  # it restarts parked
    finally:
        out = stop(proc)
    assert "twin: BYD Seal RWD" in out


def test_drive_a_cycle_through_the_running_car(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = start("up", "--address", address, "--data-dir", str(tmp_path / "car"), "--plugged-in")
    try:
        wait_listening(proc, address)
        charging = "Vehicle.Powertrain.TractionBattery.Charging"
        assert read(address, f"{charging}.ChargingPort.AnyPosition.IsChargingCableConnected") == {
            f"{charging}.ChargingPort.AnyPosition.IsChargingCableConnected": True}
        assert evos("actuate", f"{charging}.ChargeLimit", "90", "--address", address).returncode == 0
        time.sleep(0.5)
        assert read(address, f"{charging}.IsCharging") == {f"{charging}.IsCharging": True}
        result = evos("drive", "--cycle", "us06", "--speedup", "100", "--address", address, timeout_s=120)
        assert result.returncode == 0, result.stderr
        match = re.search(r"drove us06: ([\d.]+) km, ([\d.]+) kWh", result.stdout)
        assert match, result.stdout
        assert float(match.group(1)) == pytest.approx(12.89, abs=0.4)  # the US06 distance
        assert 1.0 < float(match.group(2)) < 4.0
        assert read(address, "Vehicle.Speed")["Vehicle.Speed"] == 0.0
    finally:
        stop(proc)


def test_drive_and_an_app_without_a_car_fail_clearly(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    for args in (("drive", "--cycle", "udds", "--address", address),
                 ("app", "run", "twin", "--address", address, "--data-dir", str(tmp_path / "car"))):
        result = evos(*args)
        assert result.returncode == 1, args
        assert f"broker at {address}: UNAVAILABLE" in result.stderr
    result = evos("drive", "--cycle", "nope", "--address", address)
    assert result.returncode == 1 and "not a built-in cycle" in result.stderr
