"""One time step of the traction battery: equivalent circuit (R0 + RC pair), charge and lumped heat."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from evos.twin import _physics as phys
from evos.twin._config import Vehicle

J_PER_KWH = phys.J_PER_KWH


@lru_cache(maxsize=1024)
def pack_constants(vehicle: Vehicle) -> tuple[float, float, float, float]:
    """(capacity A·s, R0 at 25 °C, R1, RC time constant) of the pack."""
    b = vehicle.battery
    mean_ocv = float(phys.ocv_cell_v(np.linspace(0, 1, 101), b.chemistry, b.usable_fraction).mean()) * b.cells_series
    return b.usable_kwh * J_PER_KWH / mean_ocv, b.pack_r0_ohm, b.pack_r1_ohm, b.cell_tau_s


def battery_step(vehicle: Vehicle, soc: float, temp_c: float, v_rc: float, bus_w: float, ambient_c: float,
                 dt_s: float, heater_w: float = 0.0) -> tuple[float, float, float, float, float]:
    """One step of the pack at terminal power ``bus_w`` (W, discharge positive), ``heater_w`` warming it.

    Returns (soc, temperature °C, RC voltage V, current A, terminal voltage V).
    """
    b = vehicle.battery
    capacity_as, r0_ref, r1, tau = pack_constants(vehicle)
    ocv = float(phys.ocv_cell_v(soc, b.chemistry, b.usable_fraction)) * b.cells_series
    r0 = r0_ref * float(phys.resistance_factor(temp_c))
    current = float(phys.cell_current_a(bus_w, ocv - v_rc, r0))
    decay = math.exp(-dt_s / tau)
    v_rc = decay * v_rc + (1 - decay) * r1 * current
    heat_w = current * current * r0 + (v_rc * v_rc / r1 if r1 > 0 else 0.0)
    temp_c += dt_s * (heat_w + heater_w - (temp_c - ambient_c) / b.thermal_resistance_k_per_w) / b.heat_capacity_j_per_k
    soc = min(max(soc - current * dt_s / capacity_as, 0.0), 1.0)
    return soc, temp_c, v_rc, current, ocv - v_rc - current * r0


def conditioning_s(vehicle: Vehicle, from_c: float, to_c: float, ambient_c: float) -> float | None:
    """Seconds the pack heater takes to warm the pack from ``from_c`` to ``to_c`` against ``ambient_c`` (the
    lumped model solved: T approaches ambient + P·R with time constant R·C); 0 if it is warm enough, None if
    the heater cannot get there."""
    b = vehicle.battery
    if from_c >= to_c:
        return 0.0
    ceiling_c = ambient_c + b.heater_kw * 1e3 * b.thermal_resistance_k_per_w
    if to_c >= ceiling_c:
        return None
    tau_s = b.thermal_resistance_k_per_w * b.heat_capacity_j_per_k
    return tau_s * math.log((ceiling_c - from_c) / (ceiling_c - to_c))


def available_power_w(vehicle: Vehicle, soc: float, temp_c: float) -> float:
    """Most power (W) the pack can deliver now: its rating, and no cell below its minimum voltage
    (P = V_min·(OCV − V_min)/R); nothing when empty."""
    b = vehicle.battery
    if soc <= 0.0:
        return 0.0
    _, r0_ref, _, _ = pack_constants(vehicle)
    ocv = float(phys.ocv_cell_v(soc, b.chemistry, b.usable_fraction)) * b.cells_series
    v_min = phys.MIN_CELL_V[b.chemistry] * b.cells_series
    r0 = r0_ref * float(phys.resistance_factor(temp_c))
    return float(min(b.max_discharge_kw * 1e3, max(v_min * (ocv - v_min) / r0, 0.0)))
