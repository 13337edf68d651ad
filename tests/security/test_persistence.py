"""Nothing acknowledged is lost (issue 12, items 6 and 7), and no app outlives its supervisor: a lock answered
OK survives a kill -9 of the body right after the answer; the owner's settings (charge limit, charging on/off,
climate, battery conditioning) survive a restart and a kill; killing the supervisor takes its apps down."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import grpc
import psutil
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.twin._body import BodyStore
from helpers import app_process, evos, free_port, start, stop, wait_listening

DOOR_LOCKS = tuple(f"Vehicle.Cabin.Door.{door}.IsLocked" for door in (
    "Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide"))
CHG = "Vehicle.Powertrain.TractionBattery.Charging"
HVAC = "Vehicle.Cabin.HVAC"
CONDITIONING = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
SETTINGS = {
    f"{CHG}.ChargeLimit": t2.Value(uint32=63),
    f"{CHG}.StartStopCharging": t2.Value(string="STOP"),
    f"{HVAC}.IsAirConditioningActive": t2.Value(bool=True),
    f"{HVAC}.Station.Row1.Driver.Temperature": t2.Value(float=26.5),
    CONDITIONING: t2.Value(string="FAST_CHARGING_PREPARATION"),
}


def actuate(address: str, path: str, value: t2.Value) -> None:
    with grpc.insecure_channel(address) as channel:
        v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=path), value=value),
                                          timeout=10)


def values(address: str, *paths: str) -> dict[str, object]:
    result = evos("get", *paths, "--json", "--address", address)
    assert result.returncode == 0, result.stderr
    return {path: entry["value"] for path, entry in json.loads(result.stdout).items()}


def restarted(address: str, app: str, restarts: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        result = evos("apps", "--json", "--address", address)
        state = json.loads(result.stdout)[app] if result.returncode == 0 else {}
        if state.get("State") == "RUNNING" and state.get("Restarts") == restarts:
            return
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_an_acknowledged_lock_survives_a_kill_right_after_the_answer(tmp_path: Path) -> None:
    address, data = f"127.0.0.1:{free_port()}", tmp_path / "car"
    data.mkdir()
    store = BodyStore(data / "body.sqlite")  # the car was left unlocked (unlocking over gRPC is refused)
    store.save(dict.fromkeys(DOOR_LOCKS, False))
    store.close()
    proc = start("up", "--apps", "twin,body", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        for trial, lock in enumerate(DOOR_LOCKS, start=1):
            body = app_process(proc.pid, "body")
            actuate(address, lock, t2.Value(bool=True))  # answered: the body carried it out
            os.kill(body.pid, signal.SIGKILL)  # at once, before any periodic save
            restarted(address, "Body", trial)
            assert values(address, *DOOR_LOCKS) == {p: p in DOOR_LOCKS[:trial] for p in DOOR_LOCKS}, (
                f"trial {trial}: the acknowledged lock was lost")
    finally:
        stop(proc)


def test_the_owners_settings_survive_a_restart_and_a_kill(tmp_path: Path) -> None:
    address, data = f"127.0.0.1:{free_port()}", tmp_path / "car"
    expected = {f"{CHG}.ChargeLimit": 63, f"{CHG}.StartStopCharging": "STOP", f"{HVAC}.IsAirConditioningActive": True,
                f"{HVAC}.Station.Row1.Driver.Temperature": 26.5,
                CONDITIONING: "FAST_CHARGING_PREPARATION"}
    proc = start("up", "--apps", "twin", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        assert values(address, *expected) != expected  # not the defaults already
        for path, value in SETTINGS.items():
            actuate(address, path, value)
    finally:
        stop(proc)
    proc = start("up", "--apps", "twin", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        assert values(address, *expected) == expected  # a clean restart keeps them
        twin = app_process(proc.pid, "twin")
        actuate(address, f"{CHG}.ChargeLimit", t2.Value(uint32=71))
        os.kill(twin.pid, signal.SIGKILL)
        restarted(address, "Twin", 1)
        assert values(address, f"{CHG}.ChargeLimit") == {f"{CHG}.ChargeLimit": 71}  # and so does a kill
    finally:
        stop(proc)


def test_killing_the_supervisor_takes_its_apps_down(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = start("up", "--apps", "twin,body", "--address", address, "--data-dir", str(tmp_path / "car"))
    try:
        wait_listening(proc, address)
        apps = psutil.Process(proc.pid).children()
        assert len(apps) == 2
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(apps, timeout=15)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_corrupt_state_is_said_and_set_aside_never_reset_in_silence(tmp_path: Path) -> None:
    """Issue 12, item 9: a twin row with one field missing started a fresh car (odometer 123,456.8 km -> 0) without
    a word; garbage in body.sqlite ended in a traceback. Now the car starts, says what was wrong and keeps the file."""
    import sqlite3

    address, data = f"127.0.0.1:{free_port()}", tmp_path / "car"
    proc = start("up", "--apps", "twin,body", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
    finally:
        stop(proc)
    with sqlite3.connect(data / "twin.sqlite") as db:
        state = json.loads(db.execute("SELECT state FROM twin_state").fetchone()[0])
        del state["odometer_m"]
        db.execute("UPDATE twin_state SET state = ?", (json.dumps(state),))
    (data / "body.sqlite").write_bytes(b"this is not a database" * 100)
    for name in ("body.sqlite-wal", "body.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    proc = start("up", "--apps", "twin,body", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
    finally:
        out = stop(proc)
    assert "twin_state[Xiaomi SU7]: the field 'odometer_m' is missing" in out, out
    assert "not a usable body state database" in out, out
    assert "Traceback" not in out, out
    kept = sorted(p.name for p in data.iterdir() if ".bad-" in p.name)
    assert any(n.startswith("twin.sqlite.bad-") for n in kept) and any(n.startswith("body.sqlite.bad-") for n in kept)


@pytest.mark.parametrize("content", [b"", b"garbage, not SQLite" * 64], ids=["empty", "garbage"])
def test_a_lost_companion_database_never_reopens_first_run_ownership(tmp_path: Path, content: bytes) -> None:
    """Issue 12, item 9: a zero-length companion.sqlite opened the first-run page, so whoever reached it claimed the
    car as its owner; garbage in it ended in a traceback. Now it is said and set aside, and the first run stays
    shut: the owner is added again on the car itself (``evos users add``)."""
    import urllib.error
    import urllib.request

    data = tmp_path / "car"
    data.mkdir()
    (data / "companion.sqlite").write_bytes(content)
    address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start("up", "--apps", "companion", "--address", address, "--http", http, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        with urllib.request.urlopen(f"http://{http}/api/v1/setup", timeout=30) as answer:
            assert json.load(answer) == {"needs_owner": False}
        intruder = json.dumps({"name": "intruder", "password": "a long intruder password"}).encode()
        claim = urllib.request.Request(f"http://{http}/api/v1/setup", intruder, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(claim, timeout=30)
        assert refused.value.code == 409 and "evos users add" in json.load(refused.value)["detail"]
    finally:
        out = stop(proc)
    assert ("the database is empty" if not content else "not a usable companion database") in out, out
    assert "Traceback" not in out, out
    assert any(p.name.startswith("companion.sqlite.bad-") for p in data.iterdir())
