"""The twin stepped in time: ``step(vehicle, state, controls, dt_s) -> state``, pure and deterministic.

This is the same physics as the cycle simulation (`_physics`), but driven by inputs instead of a speed
trace: a driver's pedals and steering, or a target speed for the built-in driver model, plus charging
and climate. The real-time provider (`_provider`) runs it at 10 Hz on the broker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from evos.twin import _physics as phys
from evos.twin._battery import J_PER_KWH, available_power_w, battery_step
from evos.twin._charge import HEATER_HYSTERESIS_K, accepted_power_w, supply_w, temperature_factor, wants_warming
from evos.twin._config import Vehicle

EARTH_RADIUS_M = 6_371_000.0
HVAC_GAIN_W_PER_K = 950.0  # FASTSim 3.1 Model 3 cabin controller proportional gain (949.875 W/K)
RECHARGE_HYSTERESIS_PCT = 1.0
PARKED_LOAD_W = 30.0  # a parked car asleep (telematics, alarm): ~0.7 kWh a day, typical "vampire drain"


@dataclass(frozen=True)
class DriverModel:
    """A driver holding a target speed, as the twin's built-in driver and the scenario engine's ego both drive:
    the target's own acceleration (what the driver anticipates) plus a correction proportional to the speed
    error, within comfortable limits, braking firmly to a full stop at a zero target."""

    gain_per_s: float = 0.8  # desired acceleration per m/s of speed error (a time constant of 1.25 s)
    min_accel_mps2: float = -3.5  # comfortable limits, as ISO 15622 sets for ACC
    max_accel_mps2: float = 2.0
    stopping_mps2: float = 1.5  # the final braking to a standstill, not an asymptotic crawl

    def accel_mps2(self, target_mps: float, speed_mps: float, target_accel_mps2: float = 0.0) -> float:
        """The acceleration the driver asks for (m/s²)."""
        desired = target_accel_mps2 + self.gain_per_s * (target_mps - speed_mps)
        desired = min(max(desired, self.min_accel_mps2), self.max_accel_mps2)
        if target_mps < 0.14:  # 0.5 km/h: come to a full stop
            desired = min(desired, -self.stopping_mps2)
        return desired


DRIVER_MODEL = DriverModel()


@dataclass(frozen=True)
class Controls:
    """Everything the outside world sets: driver, charging, climate, environment."""

    accelerator_pct: float = 0.0
    brake_pct: float = 0.0
    steering_deg: float = 0.0  # road-wheel angle, positive left
    target_speed_kmh: float | None = None  # when set, the driver model drives (pedals ignored)
    # the target speed's rate of change, which the driver model anticipates; None: from how the target changed
    target_accel_mps2: float | None = None
    power_on: bool = False  # the car is switched on (VSS LowVoltageSystemState ON): awake, even standing still
    charger_connected: bool = False
    charger_kw: float = 11.0  # up to 22 kW: AC wallbox; above: DC fast charger
    charging_enabled: bool = True  # StartStopCharging
    charge_limit_pct: float = 80.0
    hvac_on: bool = False
    cabin_setpoint_c: float = 21.0
    ambient_c: float = 20.0
    grade: float = 0.0
    cabin_load_w: float = 0.0  # body and cabin devices switched on (seat heaters, lights...), see _body
    battery_conditioning: str = "INACTIVE"  # VSS BatteryConditioning.RequestedMode
    battery_target_c: float | None = None  # None: the mode's own target (CONDITIONING_TARGET_C)

    @property
    def dc_charger(self) -> bool:
        """A charger above 22 kW is DC; up to 22 kW it is an AC wallbox."""
        return self.charger_kw > 22.0


@dataclass(frozen=True)
class TwinState:
    """The twin's state and what it measured in the last step (SI units)."""

    soc: float = 0.8
    battery_temp_c: float = 20.0
    cabin_temp_c: float = 20.0
    odometer_m: float = 0.0
    speed_mps: float = 0.0
    latitude_deg: float = 52.5200  # Berlin, the default parking spot
    longitude_deg: float = 13.4050
    heading_deg: float = 0.0
    v_rc: float = 0.0
    consumed_kwh: float = 0.0  # energy taken from the battery while driving, lifetime
    accel_mps2: float = 0.0
    motor_power_w: float = 0.0
    battery_power_w: float = 0.0
    current_a: float = 0.0
    voltage_v: float = 0.0
    charging_power_w: float = 0.0
    hvac_power_w: float = 0.0
    battery_heater_w: float = 0.0
    motor_rpm: float = 0.0
    driver_target_mps: float | None = None  # the driver model's target in the last step (its rate: anticipated)


def drive_force_limit_n(vehicle: Vehicle, speed_mps: float) -> float:
    """Most tractive force (N) the motors can give at ``speed_mps`` (torque limit, then power limit)."""
    total = 0.0
    radius = vehicle.drivetrain.wheel_radius_m
    for m in vehicle.motors:
        torque_force = m.peak_torque_nm * m.gear_ratio / radius
        power = float(phys.motor_power_limit_w(max(speed_mps, 0.1), m.peak_power_kw * 1e3, m.peak_torque_nm,
                                               m.gear_ratio, radius, m.max_speed_rpm))
        total += min(torque_force, power / max(speed_mps, 0.1))
    return total


def _climate(vehicle: Vehicle, state: TwinState, c: Controls, dt_s: float) -> tuple[float, float]:
    """(cabin temperature °C, electric power W) after one step of the cabin and its HVAC."""
    heat_w = 0.0
    electric_w = 0.0
    if c.hvac_on:
        climate = vehicle.climate
        # feed-forward of the cabin's heat loss at the setpoint, plus proportional correction
        demand_w = (climate.cabin_ua_w_per_k * (c.cabin_setpoint_c - c.ambient_c)
                    + HVAC_GAIN_W_PER_K * (c.cabin_setpoint_c - state.cabin_temp_c))
        heat_w = min(max(demand_w, -climate.heater_max_kw * 1e3), climate.heater_max_kw * 1e3)
        electric_w = abs(heat_w) / phys.hvac_cop(heat_w >= 0, c.ambient_c, climate.heat_pump)
    ua = vehicle.climate.cabin_ua_w_per_k
    flow_w = ua * (c.ambient_c - state.cabin_temp_c) + heat_w
    cabin = state.cabin_temp_c + dt_s * flow_w / phys.CABIN_HEAT_CAPACITY_J_PER_K
    return cabin, electric_w


def _target_accel_mps2(c: Controls, state: TwinState, dt_s: float) -> float:
    """The acceleration the driver model anticipates: the given one, else the target's change since the last step."""
    if c.target_accel_mps2 is not None:
        return c.target_accel_mps2
    if c.target_speed_kmh is None or state.driver_target_mps is None:
        return 0.0
    return (c.target_speed_kmh / 3.6 - state.driver_target_mps) / dt_s


def _driver(vehicle: Vehicle, c: Controls, v: float, m_inertial: float, limit_n: float, resist_n: float,
            target_accel_mps2: float) -> tuple[float, float]:
    """(traction, brake) force in N from the pedals, or from the driver model when a target speed is set."""
    if c.target_speed_kmh is not None:
        desired = DRIVER_MODEL.accel_mps2(c.target_speed_kmh / 3.6, v, target_accel_mps2)
        needed_n = m_inertial * desired + resist_n
        return min(max(needed_n, 0.0), limit_n), max(-needed_n, 0.0)
    chassis = vehicle.chassis
    traction_n = limit_n * min(max(c.accelerator_pct, 0.0), 100.0) / 100
    brake_pct = min(max(c.brake_pct, 0.0), 100.0)
    brake_n = m_inertial * (chassis.max_brake_mps2 * brake_pct / 100 if brake_pct else
                            chassis.coast_regen_mps2 if c.accelerator_pct <= 0 and v > 0 else 0.0)
    return traction_n, brake_n


# Pack temperature battery conditioning heats to, per VSS RequestedMode, unless TargetTemperature says otherwise.
# Fast charging: full charge power from 20 °C in evos's model (_charge), with margin for the drive there; typical
# preconditioning targets are 30-40 °C (assumed). Driving: where the cells' resistance is back to normal.
CONDITIONING_TARGET_C = {"FAST_CHARGING_PREPARATION": 35.0, "DRIVING_PREPARATION": 20.0}
# Unplugged, conditioning stops at this state of charge: a forgotten request must not empty the car (assumed).
CONDITIONING_MIN_SOC = 0.2


def conditioning_target_c(c: Controls) -> float | None:
    """The pack temperature conditioning heats to, or None when none is requested."""
    if c.battery_conditioning not in CONDITIONING_TARGET_C:
        return None
    return c.battery_target_c if c.battery_target_c is not None else CONDITIONING_TARGET_C[c.battery_conditioning]


def _heater_w(vehicle: Vehicle, state: TwinState, c: Controls) -> float:
    """The pack heater's power (W) for conditioning: on from 1 K below the target up to it, and, unplugged, only
    above CONDITIONING_MIN_SOC."""
    target_c = conditioning_target_c(c)
    if target_c is None or (state.soc <= CONDITIONING_MIN_SOC and not c.charger_connected):
        return 0.0
    start_c = target_c - (0.0 if state.battery_heater_w > 0 else HEATER_HYSTERESIS_K)
    return vehicle.battery.heater_kw * 1e3 if state.battery_temp_c < start_c else 0.0


def _charging(vehicle: Vehicle, state: TwinState, c: Controls, conditioning_w: float) -> tuple[float, float]:
    """(power into the battery, pack heater power) of a parked car. It charges when plugged in, enabled and below
    the limit (with hysteresis); its heater runs for conditioning, and while charging when the pack is too cold to
    take the charger's power, on the charger's share."""
    # charge up to the limit; once there, start again only when 1 % below it (no flicker at the limit)
    under_way = state.charging_power_w > 0 or (c.charger_connected and state.battery_heater_w > 0)
    threshold = c.charge_limit_pct if under_way else c.charge_limit_pct - RECHARGE_HYSTERESIS_PCT
    if not (c.charger_connected and c.charging_enabled and state.soc * 100 < threshold and state.soc < 1.0):
        return 0.0, conditioning_w
    into_battery_w, _, heater_w = accepted_power_w(
        vehicle, state.soc, state.battery_temp_c, c.charger_kw, dc=c.dc_charger, heater_w=conditioning_w,
        warm=wants_warming(state.battery_temp_c, state.battery_heater_w > 0))
    return into_battery_w, heater_w


def _move(state: TwinState, steering_deg: float, distance_m: float, wheelbase_m: float) -> tuple[float, float, float]:
    """(latitude, longitude, heading) after ``distance_m`` with a kinematic bicycle model."""
    yaw_rad = distance_m / wheelbase_m * math.tan(math.radians(min(max(steering_deg, -40.0), 40.0)))
    heading = (state.heading_deg + math.degrees(yaw_rad)) % 360.0
    north = distance_m * math.cos(math.radians(heading))
    east = distance_m * math.sin(math.radians(heading))
    lat = state.latitude_deg + math.degrees(north / EARTH_RADIUS_M)
    cos_lat = max(math.cos(math.radians(state.latitude_deg)), 1e-9)
    lon = state.longitude_deg + math.degrees(east / (EARTH_RADIUS_M * cos_lat))
    if abs(lat) > 90.0:  # over a pole: come down the other side, heading the other way
        lat = math.copysign(180.0, lat) - lat
        lon += 180.0
        heading = (180.0 - heading) % 360.0
    lon = (lon + 180.0) % 360.0 - 180.0
    return lat, lon, heading


def _drive_loss_w(vehicle: Vehicle, mech_w: float, speed_mps: float) -> float:
    dt = vehicle.drivetrain
    if dt.efficiency_map is not None:
        return float(phys.map_drive_loss_w(mech_w, speed_mps, len(vehicle.motors), vehicle.peak_power_kw * 1e3,
                                           dt.efficiency_map, dt.spin_loss_w))
    return float(phys.drive_loss_w(mech_w, speed_mps, len(vehicle.motors), vehicle.peak_power_kw * 1e3,
                                   dt.efficiency, dt.copper_loss_fraction, dt.spin_loss_w))


def _mech_power_for_bus_w(vehicle: Vehicle, bus_w: float, speed_mps: float) -> float:
    """The mechanical power that, with its drive losses, draws ``bus_w`` from the battery."""
    dt = vehicle.drivetrain
    if dt.efficiency_map is not None:  # fixed point: the losses grow far slower than the power
        mech_w = bus_w * 0.9
        for _ in range(2):
            mech_w = max(bus_w - _drive_loss_w(vehicle, mech_w, speed_mps), 0.0)
        return mech_w
    # P/eta + k P^2/P_peak + spin = bus: the positive root
    spin_w = len(vehicle.motors) * dt.spin_loss_w * speed_mps / phys.REF_SPEED_MPS
    rest_w = bus_w - spin_w
    if rest_w <= 0:
        return 0.0
    quadratic = dt.copper_loss_fraction / (vehicle.peak_power_kw * 1e3)
    if quadratic == 0:
        return rest_w * dt.efficiency
    linear = 1.0 / dt.efficiency
    return (math.sqrt(linear * linear + 4 * quadratic * rest_w) - linear) / (2 * quadratic)


def step(vehicle: Vehicle, state: TwinState, c: Controls, dt_s: float) -> TwinState:
    """Advance the twin by ``dt_s`` seconds (> 0) under ``c``."""
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    v = state.speed_mps
    m_inertial = vehicle.inertial_mass_kg
    rl = vehicle.resistance
    road_n = float(phys.road_load_force_n(v, rl.f0_n, rl.f1_n_per_mps, rl.f2_n_per_mps2))
    grade_n = float(phys.grade_force_n(vehicle.mass_kg, c.grade))
    cabin_c, hvac_w = _climate(vehicle, state, c, dt_s)
    conditioning_w = _heater_w(vehicle, state, c)
    driving_loads_w = vehicle.climate.aux_w + hvac_w + conditioning_w + c.cabin_load_w  # the battery's other loads
    # no drive when plugged in (the charge-port interlock), at the top speed, or with the battery's power gone
    at_top = vehicle.max_speed_kmh is not None and v * 3.6 >= vehicle.max_speed_kmh
    motor_n = 0.0 if c.charger_connected else drive_force_limit_n(vehicle, v)
    battery_w = _mech_power_for_bus_w(
        vehicle, max(available_power_w(vehicle, state.soc, state.battery_temp_c) - driving_loads_w, 0.0), v)
    limit_n = 0.0 if at_top else min(motor_n, battery_w / max(v, 1.0))
    traction_n, brake_n = _driver(vehicle, c, v, m_inertial, limit_n, road_n + grade_n,
                                  _target_accel_mps2(c, state, dt_s))
    accel = (traction_n - brake_n - road_n - grade_n) / m_inertial
    if v == 0.0 and traction_n == 0.0:
        accel = 0.0  # standing still without drive: the brakes hold it (no rolling away on a slope)
    v_new = max(v + accel * dt_s, 0.0)
    if traction_n * (v + v_new) / 2 > battery_w:  # the battery's limit holds over the step, not only at its start
        traction_n = battery_w / ((v + v_new) / 2)
        accel = (traction_n - brake_n - road_n - grade_n) / m_inertial
        v_new = max(v + accel * dt_s, 0.0)
    v_avg = (v + v_new) / 2
    # ---- power flow, as in the cycle simulation ------------------------------------------------
    dt = vehicle.drivetrain
    traction_w = traction_n * v_avg
    braking_w = brake_n * v_avg
    motor_limit_w = motor_n * max(v_avg, 0.1)  # regen: the motor's limit, not the battery's discharge limit
    regen_limit_w = 0.0 if state.soc >= 1.0 else (
        vehicle.battery.max_charge_kw * 1e3 * temperature_factor(state.battery_temp_c))  # cold cells take less
    regen_w = min(braking_w * dt.regen_fraction * float(phys.regen_fade(v_avg, dt.regen_fade_mps)),
                  motor_limit_w, regen_limit_w)
    mech_w = traction_w - regen_w
    loss_w = _drive_loss_w(vehicle, mech_w, v_avg)
    if mech_w < 0:
        loss_w = min(loss_w, regen_w)
    charging_w, heater_w = _charging(vehicle, state, c, conditioning_w) if v_new == 0.0 else (0.0, conditioning_w)
    # awake: switched on (a car waiting at a red light draws its auxiliary load), driven, or serving a load
    driven = c.target_speed_kmh is not None or c.accelerator_pct > 0 or c.brake_pct > 0
    awake = c.power_on or driven or c.hvac_on or charging_w > 0 or c.cabin_load_w > 0 or heater_w > 0
    # plugged in, the charger runs the pack heater (as far as it can)
    shore_w = min(heater_w, supply_w(vehicle, c.charger_kw, c.dc_charger)) if c.charger_connected and v_new == 0.0 \
        else 0.0
    loads_w = (vehicle.climate.aux_w if awake else PARKED_LOAD_W) + hvac_w + c.cabin_load_w + heater_w - shore_w
    driving_w = mech_w + loss_w
    bus_w = driving_w + loads_w - charging_w  # the charger also carries the car's loads while it charges
    soc, temp, v_rc, current, voltage = battery_step(vehicle, state.soc, state.battery_temp_c, state.v_rc, bus_w,
                                                    c.ambient_c, dt_s, heater_w)
    if charging_w and soc * 100 > c.charge_limit_pct:
        soc = c.charge_limit_pct / 100
    distance = v_avg * dt_s
    lat, lon, heading = _move(state, c.steering_deg, distance, vehicle.chassis.wheelbase_m)
    motor = vehicle.motors[-1]
    return replace(
        state, soc=soc, battery_temp_c=temp, cabin_temp_c=cabin_c, odometer_m=state.odometer_m + distance,
        speed_mps=v_new, latitude_deg=lat, longitude_deg=lon, heading_deg=heading, v_rc=v_rc,
        consumed_kwh=state.consumed_kwh + (0.0 if charging_w else max(bus_w, 0.0) * dt_s / J_PER_KWH),
        accel_mps2=accel, motor_power_w=mech_w, battery_power_w=bus_w, current_a=current, voltage_v=voltage,
        charging_power_w=charging_w, hvac_power_w=hvac_w, battery_heater_w=heater_w,
        motor_rpm=v_new * motor.gear_ratio / dt.wheel_radius_m * 60 / (2 * math.pi),
        driver_target_mps=None if c.target_speed_kmh is None else c.target_speed_kmh / 3.6,
    )


# The parked forecast steps adaptively: long steps while nothing switches, down to the running twin's 1 s around
# every switch (the pack heater's on/off within its hysteresis, charging starting or stopping, the reserve). The
# longest step keeps the cabin controller stable and smooth: 60 s x 950 W/K / 80 kJ/K = 0.7 < 1 with the climate
# on; 600 s x 120 W/K / 80 kJ/K = 0.9 for a cabin drifting to ambient with it off.
PARKED_MIN_STEP_S = 1.0
PARKED_MAX_STEP_S = (60.0, 600.0)  # climate on, off


def _switched(vehicle: Vehicle, before: TwinState, after: TwinState, c: Controls, reserve_soc: float) -> bool:
    """Whether something switched within a step: the pack heater or charging was on (off) through it but would be
    off (on) at its end, charging started or stopped, or the reserve was reached. The step's decisions are taken at
    its start: a long step that crosses a switching point carries a wrong one to its end."""
    conditioning_w = _heater_w(vehicle, after, c)
    charging_w, heater_w = _charging(vehicle, after, c, conditioning_w)
    return ((heater_w > 0) != (after.battery_heater_w > 0) or (charging_w > 0) != (after.charging_power_w > 0)
            or (before.charging_power_w > 0) != (after.charging_power_w > 0) or after.soc <= reserve_soc)


def parked_runtime_s(vehicle: Vehicle, state: TwinState, controls: Controls, reserve_soc: float,
                     max_s: float = 7 * 86_400.0) -> float:
    """Seconds a parked car can keep ``controls`` (climate, cabin loads) going from ``state`` until its state of
    charge falls to ``reserve_soc``, from the same model the running twin steps; ``max_s`` if it lasts longer
    (or the charger carries the load). Steps adapt: long while nothing switches, 1 s (the running twin's parked
    step) around every switch, so the answer agrees with stepping the twin second by second."""
    if state.soc <= reserve_soc:
        return 0.0
    parked = replace(controls, accelerator_pct=0.0, brake_pct=0.0, target_speed_kmh=None, target_accel_mps2=None)
    state = replace(state, speed_mps=0.0)
    longest_s = PARKED_MAX_STEP_S[0] if parked.hvac_on else PARKED_MAX_STEP_S[1]
    dt_s = PARKED_MIN_STEP_S
    elapsed_s = 0.0
    while elapsed_s < max_s:
        new = step(vehicle, state, parked, dt_s)
        if dt_s > PARKED_MIN_STEP_S and _switched(vehicle, state, new, parked, reserve_soc):
            dt_s = max(dt_s / 8, PARKED_MIN_STEP_S)  # something switched within it: find where, in shorter steps
            continue
        if new.soc <= reserve_soc:  # interpolate within the (1 s) step
            used = state.soc - new.soc
            return elapsed_s + dt_s * (state.soc - reserve_soc) / used
        state, elapsed_s = new, elapsed_s + dt_s
        dt_s = min(dt_s * 2, longest_s)
    return max_s
