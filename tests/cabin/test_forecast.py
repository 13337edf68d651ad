"""The energy forecast of a scene against the twin stepping the same car under the same load."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cabin.waits import eventually
from evos.cabin import forecast
from evos.cabin._forecast import MEDIA_ACTION, SOC
from evos.twin import load_vehicle, step

MEDIA_LOAD = "Vehicle.Evos.Cabin.MediaLoadPower"


async def test_cinema_forecast_matches_a_twin_simulation(car) -> None:
    before = car.cabin.forecast("cinema")
    assert before.hvac_on and before.setpoint_c == 21 and before.ambient_c == 10
    assert before.text.startswith("cinema: ") and before.text.endswith(" to 20 %")
    await car.broker.actuate({"Vehicle.Evos.Cabin.Scene": "cinema"})
    await eventually(lambda: car.twin.controls.hvac_on and car.value(MEDIA_LOAD) == pytest.approx(66.0)
                     and car.twin.controls.cabin_load_w == pytest.approx(car.cabin.forecast().cabin_load_w))
    during = car.cabin.forecast()
    assert during.scene == "cinema"
    # the film plays: playback 28 W and the screen at 100 % brightness 38 W over the car's awake base load
    assert car.value("Vehicle.Cabin.Infotainment.Media.Action") == "PLAY"
    assert before.media_load_w == during.media_load_w == pytest.approx(66.0)
    # the forecast's load is what the body hardware reports to the twin once the scene is on
    assert during.cabin_load_w == pytest.approx(car.twin.controls.cabin_load_w)
    assert before.cabin_load_w == pytest.approx(during.cabin_load_w)
    # simulate the running car (its state and controls as they are now) from 24 % down to the 20 % reserve,
    # stepping the twin at 1 s, and compare with the forecast from the same SoC
    vehicle = load_vehicle("xiaomi-su7")
    state = replace(car.twin.state, soc=0.24)
    controls = car.twin.controls
    elapsed_s = 0
    while state.soc > 0.20:
        state = step(vehicle, state, controls, 1.0)
        elapsed_s += 1
        assert elapsed_s < 86_400
    inputs = {**car.cabin.forecast_inputs(), SOC: 24.0}
    predicted = forecast(vehicle, car.cabin.scenes["cinema"], inputs, 20.0)
    assert predicted.runtime_s == pytest.approx(elapsed_s, rel=0.03)
    # the media load is in the forecast: the same scene without the film lasts longer
    silent = replace(car.cabin.scenes["cinema"], set={**car.cabin.scenes["cinema"].set, MEDIA_ACTION: "STOP"})
    quiet = forecast(vehicle, silent, inputs, 20.0)
    assert quiet.media_load_w == 0 and quiet.cabin_load_w == pytest.approx(predicted.cabin_load_w - 66.0)
    assert quiet.runtime_s > predicted.runtime_s
    # a warmer scene costs more at 10 °C ambient: rest holds 22 °C
    assert car.cabin.forecast("rest").runtime_s < car.cabin.forecast("cinema").runtime_s


def test_a_requested_battery_warming_shortens_the_forecast() -> None:
    """The forecast reads the battery-conditioning request: a parked car warming its pack in the cold drains
    faster, as the twin's own steps do."""
    from evos.cabin._forecast import BATTERY_TEMP

    ambient = "Vehicle.Evos.Twin.AmbientTemperature"  # the twin's environment, as its codec reads it
    conditioning = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"

    vehicle = load_vehicle("xiaomi-su7")
    cold = {SOC: 60.0, ambient: -10.0, BATTERY_TEMP: -10.0}
    plain = forecast(vehicle, None, cold, 20)
    warming = forecast(vehicle, None, {**cold, conditioning: "FAST_CHARGING_PREPARATION"}, 20)
    assert warming.runtime_s < 0.5 * plain.runtime_s
    assert forecast(vehicle, None, {**cold, conditioning: "INACTIVE"}, 20).runtime_s == plain.runtime_s
