"""Test procedures and performance figures from the same model: EPA label, WLTP range, 0-100 km/h, top speed.

EPA two-cycle label (40 CFR 600.116-12, SAE J1634): city = UDDS, highway = HWFET, both charge-depleting;
label consumption = unadjusted wall consumption / 0.7; combined = 55 % city + 45 % highway; label
range = 0.7 × (55 % city + 45 % highway unadjusted range), each range = usable battery energy / battery
energy per distance on that cycle.
WLTP (UN GTR 15, Annex 8): range = usable battery energy / battery energy per distance over WLTC
class 3b, consumption at the wall = AC recharge energy per distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evos.twin import _physics as phys
from evos.twin._config import G_MPS2, Vehicle
from evos.twin._cycles import load_cycle
from evos.twin._realtime import drive_force_limit_n
from evos.twin._simulate import simulate_cycle

EPA_ADJUSTMENT = 0.7  # 40 CFR 600.116-12(a): the 5-cycle-equivalent derating of 2-cycle results
CITY_SHARE = 0.55  # 40 CFR 600.210-12: combined = 55 % city + 45 % highway
MI_M = 1609.344


@dataclass(frozen=True)
class RangeResult:
    procedure: str
    range_km: float
    wall_kwh_per_100km: float
    details: dict[str, float]


def epa_label(vehicle: Vehicle) -> RangeResult:
    """The EPA two-cycle label: range and combined consumption (adjusted)."""
    usable_kwh = vehicle.battery.usable_kwh
    runs = {name: simulate_cycle(vehicle, load_cycle(name), soc0=0.6) for name in ("udds", "hwfet")}
    ranges_km = {n: usable_kwh / r.battery_kwh * r.distance_m / 1e3 for n, r in runs.items()}
    wall = {n: r.wall_kwh_per_100km / EPA_ADJUSTMENT for n, r in runs.items()}
    combined_range_km = EPA_ADJUSTMENT * (CITY_SHARE * ranges_km["udds"] + (1 - CITY_SHARE) * ranges_km["hwfet"])
    combined_wall = CITY_SHARE * wall["udds"] + (1 - CITY_SHARE) * wall["hwfet"]
    return RangeResult("EPA", combined_range_km, combined_wall, {
        "city_range_km": EPA_ADJUSTMENT * ranges_km["udds"], "highway_range_km": EPA_ADJUSTMENT * ranges_km["hwfet"],
        "city_wall_kwh_per_100km": wall["udds"], "highway_wall_kwh_per_100km": wall["hwfet"],
        "combined_wall_kwh_per_100mi": combined_wall * MI_M / 1e3, "range_mi": combined_range_km * 1e3 / MI_M,
    })


def wltp(vehicle: Vehicle) -> RangeResult:
    """WLTP range and consumption over WLTC class 3b."""
    run = simulate_cycle(vehicle, load_cycle("wltc3b"), soc0=0.6)
    range_km = vehicle.battery.usable_kwh / run.battery_kwh * run.distance_m / 1e3
    return RangeResult("WLTP", range_km, run.wall_kwh_per_100km, {
        "battery_kwh_per_100km": run.kwh_per_100km,
    })


def acceleration_s(vehicle: Vehicle, to_kmh: float = 100.0, dt_s: float = 0.01) -> float:
    """Time from standstill to ``to_kmh`` at full power: motor torque/power, tyre grip on the driven
    axles (all wheels for all-wheel drive, about half the weight otherwise), battery power, road load."""
    axles = {m.axle for m in vehicle.motors}
    driven_share = 1.0 if len(axles) == 2 else 0.55 if axles == {"rear"} else 0.45  # load transfer to the rear
    grip_n = vehicle.drivetrain.tyre_grip * driven_share * vehicle.mass_kg * G_MPS2
    battery_w = vehicle.battery.max_discharge_kw * 1e3 * vehicle.drivetrain.efficiency
    rl = vehicle.resistance
    speed, t, target = 0.0, 0.0, to_kmh / 3.6
    while speed < target:
        motor_n = drive_force_limit_n(vehicle, speed)
        force = min(motor_n, grip_n, battery_w / max(speed, 0.1))
        force -= float(phys.road_load_force_n(speed, rl.f0_n, rl.f1_n_per_mps, rl.f2_n_per_mps2))
        if force <= 0:
            return float("inf")
        speed += force / vehicle.inertial_mass_kg * dt_s
        t += dt_s
        if t > 120:
            return float("inf")
    return t


def top_speed_kmh(vehicle: Vehicle) -> float:
    """Highest speed where the drive power still covers the road load, capped by the motors' top speed
    and by the electronic limit when the vehicle file gives one."""
    rl = vehicle.resistance
    speeds = np.arange(1.0, 120.0, 0.05)
    drive_w = sum(phys.motor_power_limit_w(speeds, m.peak_power_kw * 1e3, m.peak_torque_nm, m.gear_ratio,
                                           vehicle.drivetrain.wheel_radius_m, m.max_speed_rpm)
                  for m in vehicle.motors)
    drive_w = np.minimum(drive_w, vehicle.battery.max_discharge_kw * 1e3) * vehicle.drivetrain.efficiency
    need_w = phys.road_load_force_n(speeds, rl.f0_n, rl.f1_n_per_mps, rl.f2_n_per_mps2) * speeds
    possible = speeds[drive_w >= need_w]
    top = float(possible.max()) * 3.6 if possible.size else 0.0
    return min(top, vehicle.max_speed_kmh) if vehicle.max_speed_kmh else top
