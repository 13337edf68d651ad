"""The twin stepped in time (pure): driver model, pedals, charging, climate, steering, interlocks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from evos.twin import load_vehicle
from evos.twin._realtime import Controls, TwinState, step

CAR = load_vehicle("xiaomi-su7")


def run(state: TwinState, controls: Controls, seconds: float, dt_s: float = 0.1) -> TwinState:
    for _ in range(round(seconds / dt_s)):
        state = step(CAR, state, controls, dt_s)
    return state


def test_driver_model_reaches_and_holds_the_target_speed() -> None:
    state = run(TwinState(), Controls(target_speed_kmh=80), 40)
    assert state.speed_mps * 3.6 == pytest.approx(80, abs=0.5)
    assert state.accel_mps2 + 0.01 > 0  # holding speed, not braking
    odometer = state.odometer_m
    state = run(state, Controls(target_speed_kmh=80), 10)
    assert state.odometer_m - odometer == pytest.approx(80 / 3.6 * 10, rel=0.01)


def test_pedals_and_full_brake() -> None:
    state = run(TwinState(), Controls(accelerator_pct=100), 3)
    assert state.speed_mps > 12 and state.motor_power_w > 100e3  # 0-100 km/h in ~6 s
    v0 = state.speed_mps
    stopped = run(state, Controls(brake_pct=100), v0 / 9.0 + 0.3)
    assert stopped.speed_mps == 0.0  # about 9 m/s² at full brake
    coasting = run(state, Controls(), 2)
    assert 0 < coasting.speed_mps < v0  # gentle regenerative coasting


def test_driving_drains_and_regeneration_refills() -> None:
    moving = run(TwinState(soc=0.8), Controls(target_speed_kmh=100), 30)
    assert moving.soc < 0.8 and moving.consumed_kwh > 0
    braked = run(moving, Controls(target_speed_kmh=0), 20)
    assert braked.speed_mps == 0 and braked.soc > moving.soc - 1e-3  # regen recovered some charge


def test_charging_stops_at_the_limit_with_hysteresis() -> None:
    plugged = Controls(charger_connected=True, charger_kw=150, charge_limit_pct=60)
    state = run(TwinState(soc=0.5), plugged, 600, dt_s=1.0)
    assert state.soc == pytest.approx(0.60, abs=2e-4)  # at the limit, less the car's own loads since
    assert state.charging_power_w == 0
    idle = run(state, dataclasses.replace(plugged, hvac_on=True, cabin_setpoint_c=30), 5, dt_s=1.0)
    assert idle.charging_power_w == 0  # 0.6 % below the limit does not restart charging yet
    stopped = run(TwinState(soc=0.5), dataclasses.replace(plugged, charging_enabled=False), 60, dt_s=1.0)
    assert stopped.soc <= 0.5


def test_plugged_in_car_does_not_drive() -> None:
    state = run(TwinState(), Controls(target_speed_kmh=50, charger_connected=True), 5)
    assert state.speed_mps == 0


def test_climate_heats_the_cabin_and_the_heat_pump_saves_energy() -> None:
    cold = Controls(hvac_on=True, cabin_setpoint_c=21, ambient_c=-5)
    warm = run(TwinState(cabin_temp_c=-5, battery_temp_c=-5), cold, 900, dt_s=1.0)
    assert warm.cabin_temp_c == pytest.approx(21, abs=1.0)
    resistive_car = dataclasses.replace(CAR, climate=dataclasses.replace(CAR.climate, heat_pump=False))
    hp = step(CAR, TwinState(cabin_temp_c=-5), cold, 1.0).hvac_power_w
    resistive = step(resistive_car, TwinState(cabin_temp_c=-5), cold, 1.0).hvac_power_w
    assert hp < resistive
    off = run(TwinState(cabin_temp_c=30), Controls(ambient_c=10), 1800, dt_s=1.0)
    assert off.cabin_temp_c < 20 and off.hvac_power_w == 0  # cools toward ambient with the climate off


def test_steering_turns_the_heading() -> None:
    state = run(TwinState(), Controls(target_speed_kmh=30), 10)
    turned = run(state, Controls(target_speed_kmh=30, steering_deg=10), 5)
    assert turned.heading_deg != pytest.approx(0.0)
    straight = run(state, Controls(target_speed_kmh=30), 10)
    north_m = (straight.latitude_deg - state.latitude_deg) * math.pi / 180 * 6_371_000
    assert north_m == pytest.approx(straight.odometer_m - state.odometer_m, rel=1e-3)  # heading 0 is north
