"""Scenes through the real broker, twin and body hardware: enter, restore, conflicts, interlocks, files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cabin.waits import eventually
from evos.cabin import SceneEngine, SceneFileError, load_scene, load_scenes
from evos.cabin._engine import Conditions
from evos.errors import InvalidArgumentError, NotPermittedError

SCENE = "Vehicle.Evos.Cabin.Scene"
STATUS = "Vehicle.Evos.Cabin.SceneStatus"
REASON = "Vehicle.Evos.Cabin.SceneReason"
RECLINE = "Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline"
DOME = "Vehicle.Cabin.Light.IsDomeOn"
DND = "Vehicle.Evos.Cabin.DoNotDisturb"
HVAC_ON = "Vehicle.Cabin.HVAC.IsAirConditioningActive"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
FAN = "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed"
SHADE = "Vehicle.Cabin.Sunroof.Shade.IsOpen"


async def test_cinema_sets_every_path_and_exit_restores_them(car, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evos.cabin")
    await car.broker.actuate({DOME: True, SHADE: True})
    await eventually(lambda: car.value(DOME) is True and car.value(SHADE) is True)  # the shade's motor started
    cinema = car.cabin.scenes["cinema"]
    before = {p: car.value(p) for p in cinema.set}
    assert all(v is not None for v in before.values())
    await car.broker.actuate({SCENE: "cinema"})
    for path, value in cinema.set.items():  # every request went out to the hardware
        assert car.target(path) == value, (path, car.value(REASON))
    await eventually(lambda: car.value(DOME) is False and car.value(DND) is True and car.value(HVAC_ON) is True)
    assert car.value(SCENE) == "cinema" and car.value(STATUS) == "ACTIVE"
    await eventually(lambda: car.value(RECLINE) > before[RECLINE])  # the seat motor is moving back
    await car.broker.actuate({SCENE: "NONE"})
    for path, value in before.items():
        if path != RECLINE:  # the seat is restored to where it was, even though it was moving
            assert car.target(path) == value, (path, car.value(REASON), caplog.text)
    assert car.target(RECLINE) == pytest.approx(before[RECLINE], abs=0.01)
    await eventually(lambda: car.value(DOME) is True and car.value(DND) is False and car.value(STATUS) == "IDLE")
    assert car.value(SCENE) == "NONE"


async def test_manual_change_during_scene_is_kept_on_exit(car) -> None:
    temp_before = car.value(TEMP)
    await car.broker.actuate({SCENE: "office"})
    await eventually(lambda: car.value(FAN) == 20)
    await car.broker.actuate({FAN: 60})  # the user turns the fan up during the scene, and leaves it at once
    await car.broker.actuate({SCENE: "NONE"})
    await eventually(lambda: car.value(TEMP) == temp_before)
    assert car.value(FAN) == 60  # kept, not overwritten by the restore


async def test_held_path_is_reasserted(car) -> None:
    await car.broker.actuate({SCENE: "pet"})
    await eventually(lambda: car.value(HVAC_ON) is True)
    await car.broker.actuate({HVAC_ON: False})  # someone switches the climate off with the dog inside
    await eventually(lambda: car.target(HVAC_ON) is True and car.value(HVAC_ON) is True)
    assert "holds" in str(car.value(REASON))


async def test_entering_a_second_scene_leaves_the_first(car) -> None:
    before_dnd, before_hotspot = car.value(DND), car.value("Vehicle.Evos.Cabin.Hotspot.IsEnabled")
    await car.broker.actuate({SCENE: "cinema"})
    await car.broker.actuate({SCENE: "living"})
    assert car.value(SCENE) == "living"
    assert car.target(DND) == before_dnd  # cinema's do-not-disturb undone (living does not set it)
    await car.broker.actuate({SCENE: "NONE"})
    assert car.target(RECLINE) == pytest.approx(20.0)  # back to before cinema, not to cinema's recline
    assert car.target("Vehicle.Evos.Cabin.Hotspot.IsEnabled") == before_hotspot


async def test_parked_scene_refused_while_moving_and_ends_when_the_car_moves(car) -> None:
    await car.broker.actuate({SCENE: "rest"})
    await eventually(lambda: car.value(STATUS) == "ACTIVE")
    await car.broker.actuate({"Vehicle.Evos.Twin.Driver.TargetSpeed": 30})  # drive off
    await eventually(lambda: car.value(STATUS) == "ENDED")
    assert "moving" in str(car.value(REASON))
    assert car.value(SCENE) == "NONE" and car.target(RECLINE) == pytest.approx(20.0)
    await eventually(lambda: car.value("Vehicle.Speed") > 1)
    with pytest.raises(NotPermittedError, match="cinema needs the car parked: the car is moving"):
        await car.broker.actuate({SCENE: "cinema"})
    assert car.value(STATUS) == "REFUSED" and car.target(DND) is not True


async def test_remaining_time_and_timer_are_cleared_when_the_scene_ends(car) -> None:
    remaining, timer = "Vehicle.Evos.Cabin.SceneRemainingTime", "Vehicle.Evos.Cabin.SceneTimerRemaining"
    await car.broker.actuate({SCENE: "rest"})  # rest wakes the napper after 30 min
    await eventually(lambda: (car.value(remaining) or 0) > 3600 and 0 < (car.value(timer) or 0) <= 30 * 60)
    await car.broker.actuate({SCENE: "cinema"})  # cinema has no wake-up timer: rest's must not linger
    await eventually(lambda: car.value(timer) == 0 and car.value(SCENE) == "cinema")
    await eventually(lambda: car.value(remaining) > 3600)  # cinema's own forecast (it runs off the event loop)
    await car.broker.actuate({SCENE: "NONE"})
    await eventually(lambda: car.value(remaining) == 0 and car.value(timer) == 0)
    await car.broker.actuate({SCENE: "rest"})
    # a scene that ends by itself clears them too
    await car.broker.actuate({"Vehicle.Evos.Twin.Driver.TargetSpeed": 30})
    await eventually(lambda: car.value(STATUS) == "ENDED")
    await eventually(lambda: car.value(remaining) == 0 and car.value(timer) == 0)


async def test_unknown_scene_is_refused(car) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown scene 'disco'; scenes: camp, cinema"):
        await car.broker.actuate({SCENE: "disco"})


def test_engine_wake_timer_reserve_and_empty_cabin(catalog) -> None:
    engine = SceneEngine(load_scenes(catalog), reserve_soc_pct=20)
    parked = Conditions(speed_kmh=0.0, gear=126, soc_pct=60)
    engine.enter("rest", 0.0, {RECLINE: 20.0}, parked)
    assert engine.check(29 * 60, parked) == {}
    assert engine.check(30 * 60, parked) == {RECLINE: 20.0}
    assert engine.status == "ENDED" and "wake-up" in engine.reason
    engine.enter("cinema", 0.0, {RECLINE: 20.0}, parked)
    assert engine.check(1.0, Conditions(soc_pct=30, runtime_s=600)) == {}
    assert engine.reason == "warning: 10 min left to the 20 % reserve"
    assert engine.check(2.0, Conditions(soc_pct=19.9)) == {RECLINE: 20.0}
    assert "reserve" in engine.reason
    engine.enter("camp", 0.0, {}, parked)
    engine.check(1.0, Conditions(occupied=False))
    assert engine.status == "ENDED" and "empty" in engine.reason
    with pytest.raises(NotPermittedError, match="in gear"):
        engine.enter("office", 0.0, {}, Conditions(speed_kmh=0.0, gear=127))
    with pytest.raises(NotPermittedError, match="reserve"):
        engine.enter("office", 0.0, {}, Conditions(speed_kmh=0.0, soc_pct=15))
    with pytest.raises(NotPermittedError, match=r"the car is moving \(6 km/h\)"):  # reversing counts as moving
        engine.enter("office", 0.0, {}, Conditions(speed_kmh=-6.0))


def test_user_scene_files_and_errors(catalog, tmp_path: Path) -> None:
    (tmp_path / "karaoke.yaml").write_text(
        "name: karaoke\ntitle: Karaoke\nrequires_parked: false\nset:\n"
        "  Vehicle.Cabin.Infotainment.Media.Volume: 80\n  Vehicle.Cabin.Light.IsDomeOn: true\n")
    scenes = load_scenes(catalog, tmp_path)
    assert scenes["karaoke"].set == {"Vehicle.Cabin.Infotainment.Media.Volume": 80,
                                     "Vehicle.Cabin.Light.IsDomeOn": True}
    assert {"office", "cinema", "rest", "camp", "pet", "living"} <= set(scenes)
    bad = {
        "name: Bad Name\nset: {Vehicle.Cabin.Light.IsDomeOn: true}\n": "name: 'Bad Name' is not a scene name",
        "name: x\nset: {Vehicle.Speed: 3}\n": "set.Vehicle.Speed: is a sensor, not an actuator",
        "name: x\nset: {Vehicle.Cabin.Infotainment.Media.Volume: 150}\n":
            "set.Vehicle.Cabin.Infotainment.Media.Volume: .*above the maximum",
        "name: x\nset: {Vehicle.Cabin.Nope: 1}\n": "set.Vehicle.Cabin.Nope: unknown signal",
        "name: x\nset: {}\n": "set: must be a non-empty mapping",
        "name: x\ncolour: red\nset: {Vehicle.Cabin.Light.IsDomeOn: true}\n": "colour: unknown field",
        "name: x\nwake_after_min: -5\nset: {Vehicle.Cabin.Light.IsDomeOn: true}\n": "wake_after_min: must be",
        "name: x\nset: {Vehicle.Cabin.Light.IsDomeOn: true}\nrules: {hold: [Vehicle.Cabin.Light.IsGloveBoxOn]}\n":
            "rules.hold: 'Vehicle.Cabin.Light.IsGloveBoxOn' is not one of the paths",
        "name: [x\n": "not valid YAML",
        "name: x\nrequires_parked: false\nset: {Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline: 50}\n":
            "requires_parked: must be true: the scene sets Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline",
    }
    for i, (text, message) in enumerate(bad.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(SceneFileError, match=f"^{path}: .*{message}" if "YAML" in message else
                           f"^{path}: {message}"):
            load_scene(path, catalog)
