"""Energy over a drive cycle: the speed trace is followed exactly (as on a dynamometer), so every
quantity is a function of the trace and the model is evaluated for all time steps at once (and for
many vehicles at once: arrays are ``(vehicles, steps)``). Only the battery has state (charge, the RC
voltage, temperature): its recursions are linear filters, solved with ``scipy.signal.lfilter``, and the
coupling through open-circuit voltage and resistance is resolved by a second pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evos.twin import _physics as phys
from evos.twin._battery import available_power_w, pack_constants
from evos.twin._charge import temperature_factor
from evos.twin._config import Vehicle
from evos.twin._cycles import Cycle

J_PER_KWH = phys.J_PER_KWH


@dataclass(frozen=True)
class CycleResult:
    """What one vehicle did over one cycle (SI units; energies in J, power traces in W per step).

    Step k runs from ``time_s[k]`` to ``time_s[k+1]``. Battery energy is chemical energy taken from
    the cells; wall energy is what an AC charger draws to put it back.
    """

    vehicle: str
    cycle: str
    time_s: np.ndarray
    speed_mps: np.ndarray
    distance_m: float
    wheel_power_w: np.ndarray  # at the tyres (negative: braking)
    battery_power_w: np.ndarray  # chemical power of the cells (negative: charging)
    soc: np.ndarray  # state of charge (0-1 of usable) at each sample
    battery_temp_c: np.ndarray
    energy_j: dict[str, float]  # battery, wall, and every term of the balance
    trace_shortfall_s: float  # time the vehicle could not deliver the trace's power
    battery_depleted_s: float = 0.0  # time the trace went on after the usable energy was used up

    @property
    def battery_kwh(self) -> float:
        return self.energy_j["battery"] / J_PER_KWH

    @property
    def wall_kwh(self) -> float:
        return self.energy_j["wall"] / J_PER_KWH

    @property
    def kwh_per_100km(self) -> float:
        """Battery energy per 100 km (0 for a trace that goes nowhere)."""
        return self.battery_kwh / (self.distance_m / 1e5) if self.distance_m > 0 else 0.0

    @property
    def wall_kwh_per_100km(self) -> float:
        return self.wall_kwh / (self.distance_m / 1e5) if self.distance_m > 0 else 0.0

    @property
    def regen_share(self) -> float:
        """Energy recovered by regenerative braking over the energy spent on braking."""
        braking = self.energy_j["regen"] + self.energy_j["friction_brakes"]
        return self.energy_j["regen"] / braking if braking > 0 else 0.0

    @property
    def soc_used(self) -> float:
        return float(self.soc[0] - self.soc[-1])


def _column(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)[:, None]


class _Params:
    """Vehicle parameters as (n, 1) columns, so they broadcast against (n, steps) traces."""

    def __init__(self, vehicles: Sequence[Vehicle]) -> None:
        col = _column
        self.mass = col([v.mass_kg for v in vehicles])
        self.inertial_mass = col([v.inertial_mass_kg for v in vehicles])
        loads = [v.resistance for v in vehicles]
        self.f0, self.f1, self.f2 = (col([r.f0_n for r in loads]), col([r.f1_n_per_mps for r in loads]),
                                     col([r.f2_n_per_mps2 for r in loads]))
        dt = [v.drivetrain for v in vehicles]
        self.radius = col([d.wheel_radius_m for d in dt])
        self.efficiency = col([d.efficiency for d in dt])
        self.copper = col([d.copper_loss_fraction for d in dt])
        self.spin = col([d.spin_loss_w for d in dt])
        self.regen_fraction = col([d.regen_fraction for d in dt])
        self.regen_fade = col([d.regen_fade_mps for d in dt])
        self.motor_count = col([len(v.motors) for v in vehicles])
        self.peak_power = col([v.peak_power_kw * 1e3 for v in vehicles])
        self.aux = col([v.climate.aux_w for v in vehicles])
        b = [v.battery for v in vehicles]
        self.chemistry = [x.chemistry for x in b]
        self.series = col([x.cells_series for x in b])
        self.r0_pack = col([x.pack_r0_ohm for x in b])
        self.r1_pack = col([x.pack_r1_ohm for x in b])
        self.efficiency_maps = [d.efficiency_map for d in dt]
        self.tau = col([x.cell_tau_s for x in b])
        self.max_discharge = col([x.max_discharge_kw * 1e3 for x in b])
        self.max_charge = col([x.max_charge_kw * 1e3 for x in b])
        self.heat_capacity = col([x.heat_capacity_j_per_k for x in b])
        self.thermal_r = col([x.thermal_resistance_k_per_w for x in b])
        self.usable = [x.usable_fraction for x in b]
        self.capacity_as = col([pack_constants(v)[0] for v in vehicles])  # A·s
        self.charger_efficiency = col([v.charging.charger_efficiency for v in vehicles])
        self.ac_charge_w = col([min(v.charging.ac_max_kw, 7.2) * 1e3 for v in vehicles])  # Level 2 wallbox

    def motor_limit_w(self, speed: np.ndarray, vehicles: Sequence[Vehicle]) -> np.ndarray:
        total = np.zeros_like(speed)
        for i, vehicle in enumerate(vehicles):
            for m in vehicle.motors:
                total[i] += phys.motor_power_limit_w(speed[i], m.peak_power_kw * 1e3, m.peak_torque_nm,
                                                     m.gear_ratio, vehicle.drivetrain.wheel_radius_m,
                                                     m.max_speed_rpm)
        return total

    def ocv_pack(self, soc: np.ndarray) -> np.ndarray:
        out = np.empty_like(soc)
        for key in set(zip(self.chemistry, self.usable, strict=True)):
            rows = [i for i, k in enumerate(zip(self.chemistry, self.usable, strict=True)) if k == key]
            out[rows] = phys.ocv_cell_v(soc[rows], key[0], key[1]) * self.series[rows]
        return out

    def available_power_w(self, vehicles: Sequence[Vehicle], soc: float, temp_c: float) -> np.ndarray:
        """Pack power each vehicle can deliver at ``soc`` and ``temp_c`` (rating and minimum cell voltage)."""
        return _column([available_power_w(v, soc, temp_c) for v in vehicles])


def _lfilter_rows(b0: np.ndarray, a1: np.ndarray, x: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """y[k] = a1·y[k-1] + b0·x[k] along each row, starting from y[-1] = initial (per-row coefficients)."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs 0.7 s at start-up of every command

    out = np.empty_like(x)
    keys = np.stack([b0[:, 0], a1[:, 0]], axis=1)
    for key in np.unique(keys, axis=0):
        rows = np.flatnonzero((keys == key).all(axis=1))
        out[rows] = lfilter([key[0]], [1.0, -key[1]], x[rows], axis=1,
                            zi=key[1] * initial[rows])[0]
    return out


def _battery(p: _Params, bus: np.ndarray, dt: np.ndarray, soc0: float, ambient_c: float,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(current A, open-circuit voltage V, temperature °C, SoC) for bus power ``bus`` (W, per step).

    Two passes resolve the feedback of charge on open-circuit voltage and of heat on resistance.
    """
    n = bus.shape[0]
    soc = np.full((n, 1), soc0) - np.cumsum(bus * dt, axis=1) / (p.capacity_as * p.ocv_pack(np.full((n, 1), soc0)))
    temp = np.full_like(bus, ambient_c)
    v_rc = np.zeros_like(bus)
    a_rc = np.exp(-dt[:, :1] / p.tau) * np.ones((n, 1))
    a_th = 1.0 - dt[:, :1] / (p.heat_capacity * p.thermal_r)
    for _ in range(2):
        ocv = p.ocv_pack(np.clip(soc, 0.0, 1.0))
        r0 = p.r0_pack * phys.resistance_factor(temp)
        current = phys.cell_current_a(bus, ocv - v_rc, r0)
        v_rc = _lfilter_rows((1 - a_rc) * p.r1_pack, a_rc, current, np.zeros((n, 1)))
        current = phys.cell_current_a(bus, ocv - v_rc, r0)
        heat = current * current * r0 + v_rc * v_rc / np.maximum(p.r1_pack, 1e-12)
        temp = ambient_c + _lfilter_rows(dt[:, :1] / p.heat_capacity * np.ones((n, 1)), a_th * np.ones((n, 1)),
                                         heat, np.zeros((n, 1)))
        soc = soc0 - np.cumsum(current * dt, axis=1) / p.capacity_as
    return current, ocv, temp, soc


def climate_power_w(vehicle: Vehicle, ambient_c: float, setpoint_c: float | None, duration_s: float) -> float:
    """Mean electric power (W) of the cabin climate holding ``setpoint_c`` over a trip of ``duration_s``:
    the cabin's heat loss at the setpoint plus bringing it from ambient to the setpoint, through the COP."""
    if setpoint_c is None:
        return 0.0
    delta_k = setpoint_c - ambient_c
    warm_up_w = phys.CABIN_HEAT_CAPACITY_J_PER_K * abs(delta_k) / duration_s
    heat_w = vehicle.climate.cabin_ua_w_per_k * abs(delta_k) + warm_up_w
    return min(heat_w, vehicle.climate.heater_max_kw * 1e3) / phys.hvac_cop(delta_k >= 0, ambient_c,
                                                                          vehicle.climate.heat_pump)


def simulate_batch(vehicles: Sequence[Vehicle], cycle: Cycle, soc0: float = 0.9, ambient_c: float = 23.0,
                   hvac_setpoint_c: float | None = None) -> list[CycleResult]:
    """Simulate each vehicle over ``cycle`` (vectorised across vehicles and time).

    With ``hvac_setpoint_c`` the cabin climate holds that temperature against ``ambient_c``.
    """
    p = _Params(vehicles)
    if hvac_setpoint_c is not None:
        p.aux = p.aux + _column([climate_power_w(v, ambient_c, hvac_setpoint_c, cycle.duration_s) for v in vehicles])
    n = len(vehicles)
    t = cycle.time_s
    dt = np.diff(t)[None, :]
    v0, v1 = cycle.speed_mps[None, :-1], cycle.speed_mps[None, 1:]
    speed = np.broadcast_to((v0 + v1) / 2, (n, dt.shape[1])).copy()
    accel = (v1 - v0) / dt
    grade = (cycle.grade[None, :-1] + cycle.grade[None, 1:]) / 2

    # ---- wheels: road load, grade, inertia ------------------------------------------------------
    f_road = phys.road_load_force_n(speed, p.f0, p.f1, p.f2)
    f_grade = phys.grade_force_n(p.mass, grade)
    wheel = (f_road + f_grade + p.inertial_mass * accel) * speed

    # ---- motors: traction limited by motor and battery, braking split into regen and friction ---
    motor_limit = p.motor_limit_w(speed, vehicles)
    # the battery's power at the start (rating, minimum cell voltage at this SoC and temperature)
    traction_limit = np.minimum(motor_limit, p.available_power_w(vehicles, soc0, ambient_c) * 0.97)
    traction = np.clip(wheel, 0.0, None)
    shortfall = traction > traction_limit + 1.0
    traction = np.minimum(traction, traction_limit)
    braking = np.clip(-wheel, 0.0, None)
    regen_limit = p.max_charge * temperature_factor(ambient_c)  # cold cells take less charge
    regen = np.minimum(braking * p.regen_fraction * phys.regen_fade(speed, p.regen_fade),
                       np.minimum(motor_limit, regen_limit))
    friction = braking - regen
    mech = traction - regen
    loss = phys.drive_loss_w(mech, speed, p.motor_count, p.peak_power, p.efficiency, p.copper, p.spin)
    for i, table in enumerate(p.efficiency_maps):
        if table is not None:
            loss[i] = phys.map_drive_loss_w(mech[i], speed[i], p.motor_count[i], p.peak_power[i], table, p.spin[i])
    loss = np.minimum(loss, np.where(mech < 0, regen, np.inf))  # regen never turns into a net draw
    bus = mech + loss + p.aux  # DC bus power drawn from the battery

    # ---- battery --------------------------------------------------------------------------------
    current, ocv, temp, soc = _battery(p, bus, dt, soc0, ambient_c)
    chemical = ocv * current
    battery_loss = chemical - bus

    # ---- wall energy: recharge by AC (charger, then the battery's own charge losses) ------------
    dc_charge = p.ac_charge_w * p.charger_efficiency
    ocv_mid = p.ocv_pack(np.full((n, 1), 0.5))
    i_charge = -phys.cell_current_a(-dc_charge, ocv_mid, p.r0_pack)
    charge_efficiency = 1.0 - i_charge * i_charge * p.r0_pack / dc_charge

    def per_vehicle(x: np.ndarray) -> np.ndarray:
        return (np.broadcast_to(x, bus.shape) * dt).sum(axis=1)

    distance = per_vehicle(speed)
    battery_j = per_vehicle(chemical)
    totals = {
        "battery": battery_j,
        "wall": battery_j / (p.charger_efficiency * charge_efficiency)[:, 0],
        "traction": per_vehicle(traction),
        "regen": per_vehicle(regen),
        "friction_brakes": per_vehicle(friction),
        "drivetrain_losses": per_vehicle(loss),
        "aux": per_vehicle(p.aux),
        "battery_losses": per_vehicle(battery_loss),
        "road_load": per_vehicle(f_road * speed),
        "grade": per_vehicle(f_grade * speed),
        "kinetic": 0.5 * p.inertial_mass[:, 0] * float(cycle.speed_mps[-1] ** 2 - cycle.speed_mps[0] ** 2),
    }
    shortfall_s = per_vehicle(shortfall)
    depleted_s = per_vehicle(soc < 0)
    soc_trace = np.concatenate([np.full((n, 1), soc0), soc], axis=1)
    temp_trace = np.concatenate([np.full((n, 1), ambient_c), temp], axis=1)
    results = []
    for i, vehicle in enumerate(vehicles):
        results.append(CycleResult(
            vehicle=vehicle.name, cycle=cycle.name, time_s=t, speed_mps=cycle.speed_mps,
            distance_m=float(distance[i]), wheel_power_w=wheel[i], battery_power_w=chemical[i],
            soc=soc_trace[i], battery_temp_c=temp_trace[i],
            energy_j={name: float(values[i]) for name, values in totals.items()},
            trace_shortfall_s=float(shortfall_s[i]), battery_depleted_s=float(depleted_s[i]),
        ))
    return results


def simulate_cycle(vehicle: Vehicle, cycle: Cycle, soc0: float = 0.9, ambient_c: float = 23.0,
                   hvac_setpoint_c: float | None = None) -> CycleResult:
    """Simulate one vehicle over one cycle; see CycleResult and ``simulate_batch``."""
    return simulate_batch([vehicle], cycle, soc0, ambient_c, hvac_setpoint_c)[0]
