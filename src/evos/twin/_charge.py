"""Charging: AC through the on-board charger, DC fast charging along the car's power curve.

The accepted power is the smallest of: the charger's power, the car's limit (AC: on-board charger;
DC: power curve over state of charge) and the battery's cold-weather limit. The battery takes the
power through its internal resistance (``P = V·I + R·I²``), its losses warm it (lumped thermal model),
and a warmer pack accepts more: the taper and temperature coupling of a real session. Below full power's
temperature the BMS also runs the pack heater on charger power the cold pack cannot take yet, as cars do, so a
cold fast charge speeds up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evos.errors import InvalidArgumentError
from evos.twin import _physics as phys
from evos.twin._battery import battery_step
from evos.twin._config import Vehicle

J_PER_KWH = phys.J_PER_KWH
# Lithium-ion cells must not be fast-charged cold (lithium plating): BMSs cut the charge power below
# about 20 °C, to a fraction near 0 °C. evos uses a linear derate from 100 % at 20 °C to 10 % at 0 °C,
# a generic assumption (e.g. the cold-weather DC charging curves in INL's EV charging studies).
FULL_POWER_TEMP_C = 20.0
COLD_TEMP_C = 0.0
COLD_FRACTION = 0.1
# Hot cells age fast: BMSs also cut charge power near the top of the operating range. evos derates
# linearly from 100 % at 45 °C to 30 % at 55 °C (a generic assumption, like the cold derate).
HOT_START_C = 45.0
HOT_LIMIT_C = 55.0
HOT_FRACTION = 0.3
HEATER_HYSTERESIS_K = 1.0  # a pack heater starts this far below its target and runs up to it


@dataclass(frozen=True)
class ChargeResult:
    """A charging session, sampled every ``dt_s``: time (s), SoC (0-1), power into the battery (W),
    power drawn from the charger (W) and pack temperature (°C)."""

    vehicle: str
    mode: str  # "AC" or "DC"
    time_s: np.ndarray
    soc: np.ndarray
    battery_power_w: np.ndarray
    grid_power_w: np.ndarray
    battery_temp_c: np.ndarray
    reached: bool  # the target SoC was reached (not stopped by the time limit)

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1])

    @property
    def grid_kwh(self) -> float:
        return float(np.sum(self.grid_power_w[:-1] * np.diff(self.time_s)) / J_PER_KWH)

    def time_to_soc_s(self, soc: float) -> float | None:
        """First time the session reached ``soc`` (0-1), or None."""
        hit = np.flatnonzero(self.soc >= soc - 1e-9)
        return float(self.time_s[hit[0]]) if hit.size else None


def temperature_factor(temp_c: float) -> float:  # plain floats: it runs in every model step
    """Fraction of the charge power the battery accepts at ``temp_c``: less when cold, and when hot."""
    span = (temp_c - COLD_TEMP_C) / (FULL_POWER_TEMP_C - COLD_TEMP_C)
    cold = min(max(COLD_FRACTION + (1 - COLD_FRACTION) * span, COLD_FRACTION), 1.0)
    heat = (temp_c - HOT_START_C) / (HOT_LIMIT_C - HOT_START_C)
    hot = min(max(1.0 - (1 - HOT_FRACTION) * heat, HOT_FRACTION), 1.0)
    return min(cold, hot)


def supply_w(vehicle: Vehicle, charger_kw: float, dc: bool) -> float:
    """What a charger gives the car's high-voltage side (W): DC as it is, AC through the on-board charger."""
    c = vehicle.charging
    return charger_kw * 1e3 if dc else min(charger_kw, c.ac_max_kw) * 1e3 * c.charger_efficiency


def accepted_power_w(vehicle: Vehicle, soc: float, battery_temp_c: float, charger_kw: float, dc: bool,
                     heater_w: float = 0.0, warm: bool = False) -> tuple[float, float, float]:
    """(power into the battery, power drawn from the charger, power to the pack heater) in W at this SoC and
    pack temperature.

    The smallest of the charger, the car's limit (AC: on-board charger; DC: its power curve over SoC)
    and the battery's cold-weather limit. A pack heater asking for ``heater_w`` (battery conditioning) takes
    its share of the charger's power first. With ``warm`` the BMS also runs the heater when the cold limit is
    what holds the charge back, on power the pack cannot take anyway: a cold fast charge speeds up, and a
    charger-limited (AC) session loses nothing to it.
    """
    b, c = vehicle.battery, vehicle.charging
    battery_limit_w = b.max_charge_kw * 1e3 * temperature_factor(battery_temp_c)
    available_w = supply_w(vehicle, charger_kw, dc)
    heater_w = min(heater_w, available_w)
    car_limit_w = math.inf
    if dc:
        curve = phys.as_table(c.dc_curve)
        car_limit_w = float(phys.dc_charge_power_w(soc, curve[:, 0], curve[:, 1], c.dc_max_kw * 1e3))
    into_battery_w = min(available_w - heater_w, car_limit_w, battery_limit_w)
    if warm and battery_temp_c < FULL_POWER_TEMP_C and battery_limit_w < min(available_w - heater_w, car_limit_w):
        heater_w += max(min(b.heater_kw * 1e3 - heater_w, available_w - heater_w - into_battery_w), 0.0)
    drawn_w = into_battery_w + heater_w  # DC energy is counted at the charger's output, AC at the wall
    return into_battery_w, drawn_w if dc else drawn_w / c.charger_efficiency, heater_w


def wants_warming(battery_temp_c: float, was_warming: bool) -> bool:
    """Whether the BMS warms the pack while it charges: below full charge power's temperature, starting 1 K under
    it (no switching on and off at the threshold)."""
    return battery_temp_c < FULL_POWER_TEMP_C - (0.0 if was_warming else HEATER_HYSTERESIS_K)


def charge(vehicle: Vehicle, soc_from: float, soc_to: float, charger_kw: float, dc: bool = True,
           ambient_c: float = 23.0, battery_temp_c: float | None = None, dt_s: float = 1.0,
           max_hours: float = 48.0) -> ChargeResult:
    """Charge from ``soc_from`` to ``soc_to`` (fractions) at a charger of ``charger_kw``."""
    if not 0 <= soc_from < soc_to <= 1:
        raise InvalidArgumentError(f"need 0 <= from < to <= 100 %, got {soc_from * 100:g} -> {soc_to * 100:g}")
    if charger_kw <= 0:
        raise InvalidArgumentError(f"charger power must be > 0 kW, got {charger_kw}")
    soc, temp, v_rc, t = soc_from, ambient_c if battery_temp_c is None else battery_temp_c, 0.0, 0.0
    times, socs, battery_w, grid_w, temps = [0.0], [soc], [], [], [temp]
    heater_w = 0.0
    while soc < soc_to and t < max_hours * 3600:
        into_battery_w, from_grid_w, heater_w = accepted_power_w(vehicle, soc, temp, charger_kw, dc,
                                                                 warm=wants_warming(temp, heater_w > 0))
        soc, temp, v_rc, _, _ = battery_step(vehicle, soc, temp, v_rc, -into_battery_w, ambient_c, dt_s, heater_w)
        soc = min(soc, soc_to)
        t += dt_s
        times.append(t)
        socs.append(soc)
        battery_w.append(into_battery_w)
        grid_w.append(from_grid_w)
        temps.append(temp)
    battery_w.append(0.0)
    grid_w.append(0.0)
    return ChargeResult(vehicle.name, "DC" if dc else "AC", np.array(times), np.array(socs), np.array(battery_w),
                        np.array(grid_w), np.array(temps), reached=soc >= soc_to - 1e-9)
