"""The body hardware on the broker: locks, motors that take time, refusals that change nothing, loads, persistence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from evos.broker import Broker, LocalPort
from evos.errors import NotPermittedError
from evos.twin import TWIN_OVERLAY, Controls, TwinState, body_load_w, load_vehicle, parked_runtime_s, step
from evos.twin._body import HORN_S, SEAT_HEATER_W, WINDOW_PCT_PER_S, BodyProvider
from evos.twin._provider import TwinProvider
from evos.vss import load_catalog

DOOR = "Vehicle.Cabin.Door.Row1.DriverSide"
SEAT = "Vehicle.Cabin.Seat.Row1.DriverSide"


@pytest.fixture
async def car() -> AsyncIterator[tuple[Broker, TwinProvider, BodyProvider]]:
    """The twin and the body hardware, each on its port of one broker; the test moves their clocks."""
    broker = Broker(load_catalog(overlays=[TWIN_OVERLAY]))
    twin = TwinProvider(LocalPort(broker, "twin"), load_vehicle("xiaomi-su7"))
    await twin.start()
    body = BodyProvider(LocalPort(broker, "body"))
    await body.start()
    yield broker, twin, body
    await twin.stop()


async def settle() -> None:
    """Let the apps take in what was just published (their mirrors follow a subscription)."""
    await asyncio.sleep(0.01)


def value(broker: Broker, path: str) -> object:
    return broker.get(path).value


async def test_claims_body_actuators_but_not_the_twins_or_the_media_players(car: tuple) -> None:
    broker, _, body = car
    assert f"{DOOR}.IsLocked" in body.paths and "Vehicle.Body.Horn.IsActive" in body.paths
    assert "Vehicle.Cabin.HVAC.IsAirConditioningActive" not in body.paths  # the twin's
    assert not [p for p in body.paths if ".Infotainment.Media." in p]
    assert len(body.paths) > 400
    assert value(broker, f"{DOOR}.IsLocked") is True  # a fresh car is parked locked
    assert value(broker, f"{DOOR}.Window.Position") == 0


async def test_a_window_moves_at_its_motor_speed_and_reports_as_it_goes(car: tuple) -> None:
    broker, _, body = car
    await broker.actuate({f"{DOOR}.Window.Position": 100})
    assert broker.get_target(f"{DOOR}.Window.Position").value == 100
    assert value(broker, f"{DOOR}.Window.Position") == 0  # not there yet
    body.tick(1.0)
    assert value(broker, f"{DOOR}.Window.Position") == round(WINDOW_PCT_PER_S)
    assert value(broker, f"{DOOR}.Window.IsOpen") is True
    for _ in range(10):
        body.tick(1.0)
    assert value(broker, f"{DOOR}.Window.Position") == 100
    await broker.actuate({f"{DOOR}.Window.Switch": "CLOSE"})
    body.tick(1.0)
    assert value(broker, f"{DOOR}.Window.Switch") == "CLOSE"
    body.tick(2.0)
    await broker.actuate({f"{DOOR}.Window.Switch": "INACTIVE"})  # let go of the switch: it stops where it is
    body.tick(5.0)
    assert value(broker, f"{DOOR}.Window.Position") == 100 - round(3 * WINDOW_PCT_PER_S)
    await broker.actuate({f"{DOOR}.Window.IsOpen": False})
    body.tick(10.0)
    assert value(broker, f"{DOOR}.Window.Position") == 0 and value(broker, f"{DOOR}.Window.IsOpen") is False


async def test_seat_recline_is_limited_to_the_seats_travel(car: tuple) -> None:
    broker, _, body = car
    await broker.actuate({f"{SEAT}.Backrest.Recline": 80.0})  # VSS gives no bound; the seat stops at 60 degrees
    for _ in range(30):
        body.tick(1.0)
    assert value(broker, f"{SEAT}.Backrest.Recline") == 60.0


async def test_a_locked_door_refuses_to_open_and_nothing_changes(car: tuple) -> None:
    broker, _, _ = car
    before = broker.get_target(f"{DOOR}.IsOpen")
    with pytest.raises(NotPermittedError, match=r"IsOpen: locked \(.*IsLocked is true\)"):
        await broker.actuate({f"{DOOR}.IsOpen": True})
    assert broker.get_target(f"{DOOR}.IsOpen") == before
    assert value(broker, f"{DOOR}.IsOpen") is False
    with pytest.raises(NotPermittedError):  # all or nothing: the unlock in the same request is not done either
        await broker.actuate({f"{DOOR}.IsOpen": True, "Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked": False})
    assert value(broker, "Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked") is True
    await broker.actuate({f"{DOOR}.IsLocked": False, f"{DOOR}.IsOpen": True})  # unlocked in the same request
    assert value(broker, f"{DOOR}.IsOpen") is True


async def test_nothing_opens_while_the_car_moves(car: tuple) -> None:
    broker, twin, _ = car
    await broker.actuate({"Vehicle.Body.Trunk.Rear.IsLocked": False})
    twin.controls = replace(twin.controls, target_speed_kmh=30.0)
    for _ in range(30):
        twin.tick(0.1)
    assert value(broker, "Vehicle.Speed") > 0.5
    await settle()
    with pytest.raises(NotPermittedError, match="while the car is moving"):
        await broker.actuate({"Vehicle.Body.Trunk.Rear.IsOpen": True})
    assert value(broker, "Vehicle.Body.Trunk.Rear.IsOpen") is False


async def test_the_horn_sounds_briefly(car: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    broker, _, body = car
    clock = [1000.0]
    monkeypatch.setattr("evos.twin._body.time.monotonic", lambda: clock[0])
    await broker.actuate({"Vehicle.Body.Horn.IsActive": True})
    assert value(broker, "Vehicle.Body.Horn.IsActive") is True
    body.tick(0.1)
    assert value(broker, "Vehicle.Body.Horn.IsActive") is True
    clock[0] += HORN_S
    body.tick(0.1)
    assert value(broker, "Vehicle.Body.Horn.IsActive") is False


async def test_cabin_loads_drain_the_battery_through_the_twin(car: tuple) -> None:
    broker, twin, _ = car
    assert body_load_w({f"{SEAT}.HeatingCooling": 100, "Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling": 50,
                        "Vehicle.Cabin.HVAC.IsRearDefrosterActive": False}) == pytest.approx(1.5 * SEAT_HEATER_W)
    soc_before = twin.state.soc
    for _ in range(600):
        twin.tick(1.0)
    idle_drop = soc_before - twin.state.soc
    await broker.actuate({f"{SEAT}.HeatingCooling": 100, "Vehicle.Cabin.HVAC.IsRearDefrosterActive": True})
    assert value(broker, "Vehicle.Evos.Body.LoadPower") == pytest.approx(SEAT_HEATER_W + 285.0)
    await settle()
    twin.tick(0.0)
    assert twin.controls.cabin_load_w == pytest.approx(SEAT_HEATER_W + 285.0)
    soc_before = twin.state.soc
    for _ in range(600):
        twin.tick(1.0)
    twin.tick(0.0)
    assert soc_before - twin.state.soc > 5 * idle_drop  # asleep (30 W) vs awake with heaters (~640 W)
    assert value(broker, "Vehicle.Evos.Twin.CabinLoadPower") == pytest.approx(SEAT_HEATER_W + 285.0)


async def test_positions_and_locks_persist(tmp_path: Path) -> None:
    broker = Broker(load_catalog(overlays=[TWIN_OVERLAY]))
    body = BodyProvider(LocalPort(broker), tmp_path / "body.sqlite")
    await body.start()
    await broker.actuate({f"{DOOR}.IsLocked": False, f"{DOOR}.Window.Position": 40})
    body.tick(10.0)
    await body.save()
    await body.port.close()
    again = BodyProvider(LocalPort(Broker(load_catalog(overlays=[TWIN_OVERLAY]))), tmp_path / "body.sqlite")
    await again.start()
    assert again.values[f"{DOOR}.IsLocked"] is False
    assert again.values[f"{DOOR}.Window.Position"] == 40
    assert again.values["Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked"] is True


def test_parked_runtime_matches_stepping_the_twin() -> None:
    car = load_vehicle("xiaomi-su7")
    state = TwinState(soc=0.23, battery_temp_c=-10.0, cabin_temp_c=-10.0)
    controls = Controls(hvac_on=True, cabin_setpoint_c=21.0, ambient_c=-10.0, cabin_load_w=2 * SEAT_HEATER_W)
    forecast_s = parked_runtime_s(car, state, controls, reserve_soc=0.20)
    elapsed_s, s = 0.0, state
    while s.soc > 0.20:  # the running twin's own way: small steps
        s = step(car, s, controls, 1.0)
        elapsed_s += 1.0
    assert forecast_s == pytest.approx(elapsed_s, rel=0.02)
    # and by hand: the energy between the two states of charge over the mean load
    energy_j = 0.03 * car.battery.usable_kwh * 3.6e6
    hvac_w = car.climate.cabin_ua_w_per_k * 31 / 2.0  # heat pump COP about 2 at -10 °C
    assert forecast_s == pytest.approx(energy_j / (car.climate.aux_w + 2 * SEAT_HEATER_W + hvac_w), rel=0.3)
    assert parked_runtime_s(car, state, controls, reserve_soc=0.5) == 0.0


async def test_front_seats_do_not_recline_far_while_moving(car: tuple) -> None:
    broker, twin, body = car
    twin.controls = replace(twin.controls, target_speed_kmh=30.0)
    for _ in range(30):
        twin.tick(0.1)
    await settle()
    with pytest.raises(NotPermittedError, match="may not recline beyond 35° while the car is moving"):
        await broker.actuate({f"{SEAT}.Backrest.Recline": 45.0})
    assert broker.get_target(f"{SEAT}.Backrest.Recline").value is None
    await broker.actuate({f"{SEAT}.Backrest.Recline": 25.0})  # a small adjustment is fine
    await broker.actuate({"Vehicle.Cabin.Seat.Row2.PassengerSide.Backrest.Recline": 45.0})  # the rear seats may
    body.tick(1.0)
    assert value(broker, f"{SEAT}.Backrest.Recline") == pytest.approx(23.0)
