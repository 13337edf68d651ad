"""Hand-calculated cases and the energy balance of the twin's cycle simulation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from evos.twin import (
    Battery,
    Body,
    Climate,
    Cycle,
    Drivetrain,
    Motor,
    Vehicle,
    load_cycle,
    load_vehicle,
    simulate_batch,
    simulate_cycle,
)
from evos.twin import _physics as phys

G = 9.80665


def simple_vehicle(**battery: float) -> Vehicle:
    """A car whose losses are only the marginal drivetrain efficiency (no spin, copper or aux losses)."""
    return Vehicle(
        name="test car", motors=(Motor(peak_power_kw=200, peak_torque_nm=400, gear_ratio=9.0),),
        battery=Battery(chemistry="NMC", gross_kwh=80, **battery),  # type: ignore[arg-type]
        body=Body(curb_mass_kg=1864, payload_kg=136, drag_coefficient=0.25, frontal_area_m2=2.3,
                  rolling_resistance=0.009, rotating_inertia_factor=0.0),
        drivetrain=Drivetrain(efficiency=0.9, copper_loss_fraction=0.0, spin_loss_w=0.0),
        climate=Climate(aux_w=0.0),
    )


def steady(speed_mps: float, seconds: int, grade: float = 0.0) -> Cycle:
    t = np.arange(seconds + 1, dtype=float)
    return Cycle("steady", t, np.full_like(t, speed_mps), np.full_like(t, grade))


def test_steady_speed_on_the_flat_matches_hand_calculation() -> None:
    car = simple_vehicle(cell_r0_ohm=1e-9, cell_r1_ohm=0.0)
    v = 25.0
    road_n = 0.009 * 2000 * G + 0.5 * 1.2 * 0.25 * 2.3 * v**2  # rolling + aero at 1.2 kg/m3
    expected_battery_w = road_n * v / 0.9
    result = simulate_cycle(car, steady(v, 100))
    assert result.energy_j["battery"] / 100 == pytest.approx(expected_battery_w, rel=1e-4)
    assert result.distance_m == pytest.approx(2500.0)


def test_battery_resistance_loss_matches_hand_calculation() -> None:
    car = simple_vehicle(cell_r0_ohm=0.001, cell_r1_ohm=0.0, cells_series=96)
    result = simulate_cycle(car, steady(25.0, 60), soc0=0.5, ambient_c=25.0)  # R is specified at 25 °C
    bus_w = (0.009 * 2000 * G + 0.5 * 1.2 * 0.25 * 2.3 * 625) * 25 / 0.9
    ocv = float(phys.ocv_cell_v(0.5, "NMC")) * 96
    r = 0.001 * 96
    current = (ocv - math.sqrt(ocv * ocv - 4 * r * bus_w)) / (2 * r)  # P = V I - R I^2
    assert result.energy_j["battery_losses"] / 60 == pytest.approx(current * current * r, rel=0.02)


def test_grade_climb_energy_is_mgh_over_efficiency() -> None:
    car = simple_vehicle(cell_r0_ohm=1e-9, cell_r1_ohm=0.0)
    flat = simulate_cycle(car, steady(10.0, 200))
    climb = simulate_cycle(car, steady(10.0, 200, grade=0.05))
    height_m = 2000.0 * math.sin(math.atan(0.05))
    assert climb.energy_j["battery"] - flat.energy_j["battery"] == pytest.approx(2000 * G * height_m / 0.9, rel=1e-3)
    assert climb.energy_j["grade"] == pytest.approx(2000 * G * height_m, rel=1e-6)


@pytest.mark.parametrize("cycle", ["udds", "hwfet", "us06", "wltc3b"])
@pytest.mark.parametrize("preset", ["tesla-model-3-rwd-2022", "xiaomi-su7-max", "hyundai-ioniq-5-lr-rwd"])
def test_energy_balance_over_cycles(preset: str, cycle: str) -> None:
    result = simulate_cycle(load_vehicle(preset), load_cycle(cycle))
    e = result.energy_j
    accounted = (e["road_load"] + e["grade"] + e["kinetic"] + e["friction_brakes"] + e["drivetrain_losses"]
                 + e["aux"] + e["battery_losses"])
    assert e["battery"] == pytest.approx(accounted, rel=1e-3)
    assert result.trace_shortfall_s == 0
    assert e["traction"] - e["regen"] == pytest.approx(
        e["road_load"] + e["grade"] + e["kinetic"] + e["friction_brakes"], rel=1e-6)


def test_regen_never_exceeds_its_limits() -> None:
    car = load_vehicle("xiaomi-su7")
    weak = dataclasses.replace(car, battery=dataclasses.replace(car.battery, max_charge_kw=5.0))
    cycle = load_cycle("us06")
    for vehicle in (car, weak):
        result = simulate_cycle(vehicle, cycle)
        braking = result.energy_j["regen"] + result.energy_j["friction_brakes"]
        assert result.energy_j["regen"] <= braking * vehicle.drivetrain.regen_fraction + 1e-6
        assert result.battery_power_w.min() >= -vehicle.battery.max_charge_kw * 1e3 - 1e-6
    strong = simulate_cycle(car, cycle)
    limited = simulate_cycle(weak, cycle)
    assert limited.energy_j["regen"] < strong.energy_j["regen"]
    assert limited.energy_j["battery"] > strong.energy_j["battery"]


def test_soc_stays_in_limits_and_matches_energy() -> None:
    car = load_vehicle("vw-id3-pro")
    result = simulate_cycle(car, load_cycle("wltc3b"), soc0=0.5)
    assert np.all((result.soc >= 0) & (result.soc <= 1))
    expected_used = result.battery_kwh / car.battery.usable_kwh
    assert result.soc_used == pytest.approx(expected_used, rel=0.03)  # OCV-weighted vs mean OCV
    assert result.soc[-1] < result.soc[0]


def test_battery_warms_with_losses_and_cold_costs_energy() -> None:
    car = load_vehicle("xiaomi-su7")
    warm = simulate_cycle(car, load_cycle("us06"), ambient_c=25.0)
    cold = simulate_cycle(car, load_cycle("us06"), ambient_c=-10.0)
    assert warm.battery_temp_c[-1] > 25.0
    assert cold.energy_j["battery_losses"] > 2 * warm.energy_j["battery_losses"]


def test_batch_equals_single_runs() -> None:
    cycle = load_cycle("udds")
    presets = ["tesla-model-3-rwd-2022", "byd-seal-rwd", "xiaomi-su7-max", "hyundai-ioniq-5-lr-rwd"]
    vehicles = [load_vehicle(p) for p in presets]
    for single, batched in zip((simulate_cycle(v, cycle) for v in vehicles), simulate_batch(vehicles, cycle),
                               strict=True):
        assert batched.energy_j == pytest.approx(single.energy_j, rel=1e-9)


def test_power_limited_car_reports_the_trace_shortfall() -> None:
    car = dataclasses.replace(load_vehicle("vw-id3-pro"), motors=(Motor(peak_power_kw=20, peak_torque_nm=100),))
    result = simulate_cycle(car, load_cycle("us06"))
    assert result.trace_shortfall_s > 30


def test_motor_limit_is_constant_torque_then_constant_power() -> None:
    r, gear = 0.35, 9.0
    low = phys.motor_power_limit_w(2.0, 200e3, 400.0, gear, r, 16000)
    assert low == pytest.approx(400.0 * 2.0 * gear / r)
    assert phys.motor_power_limit_w(30.0, 200e3, 400.0, gear, r, 16000) == 200e3
    assert phys.motor_power_limit_w(80.0, 200e3, 400.0, gear, r, 16000) == 0.0  # beyond the motor's top speed


def test_efficiency_map_loss() -> None:
    table = ((0.0, 0.8), (0.5, 0.95), (1.0, 0.9))
    loss = phys.map_drive_loss_w(50e3, 20.0, 1, 200e3, table, 0.0)  # 25 % load: efficiency 0.875
    assert loss == pytest.approx(50e3 * (1 / 0.875 - 1))
    regen = phys.map_drive_loss_w(-50e3, 20.0, 1, 200e3, table, 0.0)
    assert regen == pytest.approx(loss)  # the same map when regenerating


def test_winter_climate_costs_energy_and_the_heat_pump_saves_some() -> None:
    car = load_vehicle("xiaomi-su7")
    resistive = dataclasses.replace(car, climate=dataclasses.replace(car.climate, heat_pump=False))
    cycle = load_cycle("wltc3b")
    mild = simulate_cycle(car, cycle, ambient_c=21.0, hvac_setpoint_c=21.0)
    cold = simulate_cycle(car, cycle, ambient_c=-10.0, hvac_setpoint_c=21.0)
    cold_resistive = simulate_cycle(resistive, cycle, ambient_c=-10.0, hvac_setpoint_c=21.0)
    assert mild.energy_j["aux"] == pytest.approx(simulate_cycle(car, cycle, ambient_c=21.0).energy_j["aux"])
    assert cold.kwh_per_100km > 1.3 * mild.kwh_per_100km  # winter range loss of EVs: tens of percent
    assert cold_resistive.kwh_per_100km > cold.kwh_per_100km
    ua_w = car.climate.cabin_ua_w_per_k * 31
    warm_up_w = phys.CABIN_HEAT_CAPACITY_J_PER_K * 31 / cycle.duration_s
    expected_w = car.climate.aux_w + (ua_w + warm_up_w) / phys.hvac_cop(True, -10.0, True)
    assert cold.energy_j["aux"] / cycle.duration_s == pytest.approx(expected_w, rel=1e-6)
