"""The energy forecast of a scene against the twin stepping the same car under the same load."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evos.cabin import forecast
from evos.cabin._forecast import SOC
from evos.twin import load_vehicle, step
from helpers import eventually


async def test_cinema_forecast_matches_a_twin_simulation(car) -> None:
    before = car.cabin.forecast("cinema")
    assert before.hvac_on and before.setpoint_c == 21 and before.ambient_c == 10
    assert before.text.startswith("cinema: ") and before.text.endswith(" to 20 %")
    car.broker.actuate("Vehicle.Evos.Cabin.Scene", "cinema")
    await eventually(lambda: car.twin.controls.hvac_on and car.twin.controls.cabin_load_w > 0)
    during = car.cabin.forecast()
    assert during.scene == "cinema"
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
    # a warmer scene costs more at 10 °C ambient: rest holds 22 °C
    assert car.cabin.forecast("rest").runtime_s < car.cabin.forecast("cinema").runtime_s
