"""The twin's equations: pure numpy functions on SI quantities (arrays broadcast, scalars work too).

Each function is one relation of the model; `_simulate` chains them over a drive cycle. Sources of
the constants are in the comments and in docs/twin.md.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

Array = Any  # numpy array or float

# Open-circuit voltage of one cell over state of charge (fraction of the cell's window), computed with
# PyBaMM 26.10 from its parameter sets (OCV = U_p(y) - U_n(x), stoichiometry linear in SoC between the
# cut-offs, 25 °C):
# NMC: "Chen2020", LG M50 21700 NMC811 / graphite-SiOx (Chen et al. 2020, J. Electrochem. Soc. 167
#      080534), 2.5-4.2 V.
# LFP: "Prada2013", LFP (OCP after Afshar 2017) / graphite (Chen2020), 2.0-3.6 V; its flat
#      3.25-3.31 V plateau is why LFP state of charge is hard to read from voltage.
OCV_SOC = np.array([0.0, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95, 1.0])
OCV_V = {
    "NMC": np.array([2.500, 3.109, 3.296, 3.485, 3.581, 3.667, 3.751, 3.841, 3.948, 4.042, 4.097, 4.124, 4.200]),
    "LFP": np.array([2.000, 2.785, 2.978, 3.169, 3.206, 3.253, 3.266, 3.269, 3.274, 3.310, 3.314, 3.316, 3.600]),
}
# Resistance grows in the cold: R(T) = R(25 °C)·exp(B (1/T - 1/298.15 K)); B = 2250 K doubles R from
# 25 °C to 0 °C, the typical Arrhenius behaviour of lithium-ion cell resistance (activation energy
# ~0.19 eV, e.g. Waag et al. 2013, Appl. Energy 102, 885).
RESISTANCE_ACTIVATION_K = 2250.0
REF_SPEED_MPS = 100 / 3.6  # speed at which the drivetrain spin loss is specified
J_PER_KWH = 3.6e6  # joules per kilowatt-hour
COOLING_COP = 2.5  # typical automotive A/C coefficient of performance
CABIN_HEAT_CAPACITY_J_PER_K = 80_123.0  # FASTSim 3.1 Model 3 LumpedCabin capacitance (NREL/fastsim)


# Lowest cell voltage a BMS allows under load (V): typical cut-offs of NMC and LFP cells.
MIN_CELL_V = {"NMC": 3.0, "LFP": 2.5}


def ocv_cell_v(soc: Array, chemistry: str, usable_fraction: float = 1.0) -> Array:
    """Open-circuit voltage of one cell (V) at usable state of charge ``soc`` (0-1).

    The usable window sits in the middle of the cell's full range: 0 % usable is not an empty cell.
    """
    cell_soc = (1.0 - usable_fraction) / 2 + usable_fraction * np.asarray(soc)
    return np.interp(cell_soc, OCV_SOC, OCV_V[chemistry])


def resistance_factor(temp_c: Array) -> Array:
    """Multiplier of the cell resistance at ``temp_c`` relative to 25 °C."""
    return np.exp(RESISTANCE_ACTIVATION_K * (1.0 / (np.asarray(temp_c) + 273.15) - 1.0 / 298.15))


def road_load_force_n(speed_mps: Array, f0_n: Array, f1: Array, f2: Array) -> Array:
    """Coast-down road load F = f0 + f1 v + f2 v² (N); zero at standstill (no rolling, no drag)."""
    force = f0_n + f1 * speed_mps + f2 * speed_mps * speed_mps
    return np.where(speed_mps > 0, force, 0.0)


def grade_force_n(mass_kg: Array, grade: Array) -> Array:
    """Weight component along a road of ``grade`` (rise over run)."""
    return mass_kg * 9.80665 * np.sin(np.arctan(grade))


def motor_power_limit_w(speed_mps: Array, peak_power_w: Array, peak_torque_nm: Array, gear_ratio: Array,
                        wheel_radius_m: Array, max_speed_rpm: Array) -> Array:
    """Peak mechanical power a motor can give at the wheels at ``speed_mps``.

    Constant torque up to base speed, constant power above it, nothing beyond the motor's top speed.
    """
    omega = speed_mps * gear_ratio / wheel_radius_m  # motor rad/s
    power = np.minimum(peak_power_w, peak_torque_nm * omega)
    return np.where(omega * 60 / (2 * np.pi) <= max_speed_rpm * 1.0001, power, 0.0)


def drive_loss_w(mech_power_w: Array, speed_mps: Array, motor_count: Array, peak_power_w: Array,
                 efficiency: Array, copper_loss_fraction: Array, spin_loss_w: Array) -> Array:
    """Loss of motors + inverters + gears (W) when they deliver (P > 0) or regenerate (P < 0) ``mech_power_w``.

    Spin losses grow with speed; the proportional term is the marginal efficiency; the quadratic term
    (copper losses) reaches ``copper_loss_fraction`` of peak power at peak power.
    """
    magnitude = np.abs(mech_power_w)
    return (motor_count * spin_loss_w * speed_mps / REF_SPEED_MPS
            + (1.0 / efficiency - 1.0) * magnitude
            + copper_loss_fraction * magnitude * magnitude / peak_power_w)


@functools.lru_cache(maxsize=64)
def _table(pairs: tuple[tuple[float, float], ...]) -> np.ndarray:
    table = np.asarray(pairs, dtype=float)
    table.flags.writeable = False
    return table


def as_table(pairs: Any) -> np.ndarray:
    """A vehicle file's table (efficiency map, DC charge curve) as an (n, 2) array; a tuple's is made once
    and shared, since the real-time step reads these at every tick."""
    return _table(pairs) if isinstance(pairs, tuple) else np.asarray(pairs, dtype=float)


def map_drive_loss_w(mech_power_w: Array, speed_mps: Array, motor_count: Array, peak_power_w: Array,
                     efficiency_map: Any, spin_loss_w: Array) -> Array:
    """Drivetrain loss (W) from a measured efficiency map over the fraction of peak power, plus spin loss."""
    table = as_table(efficiency_map)
    magnitude = np.abs(mech_power_w)
    efficiency = np.interp(magnitude / peak_power_w, table[:, 0], table[:, 1])
    return motor_count * spin_loss_w * speed_mps / REF_SPEED_MPS + magnitude * (1.0 / efficiency - 1.0)


def hvac_cop(heating: bool, ambient_c: float, heat_pump: bool) -> float:
    """Coefficient of performance of the cabin climate: a heat pump's falls with the cold (~3.5 at 20 °C,
    ~1.7 at -10 °C, never below resistive heating's 1), resistive heating is 1, A/C cooling 2.5."""
    if not heating:
        return COOLING_COP
    return max(1.0, 3.5 - 0.06 * (20.0 - ambient_c)) if heat_pump else 1.0


def regen_fade(speed_mps: Array, fade_mps: Array) -> Array:
    """Share of braking the motor may take: none at standstill, all above ``fade_mps`` (linear ramp)."""
    return np.clip(speed_mps / np.maximum(fade_mps, 1e-9), 0.0, 1.0)


def cell_current_a(power_w: Array, open_circuit_v: Array, resistance_ohm: Array) -> Array:
    """Current (A, discharge positive) that delivers ``power_w`` at the terminals of a source with
    open-circuit voltage ``open_circuit_v`` behind ``resistance_ohm``: P = V I - R I².

    Power beyond the source's maximum V²/4R is capped there.
    """
    disc = np.maximum(open_circuit_v * open_circuit_v - 4.0 * resistance_ohm * power_w, 0.0)
    return (open_circuit_v - np.sqrt(disc)) / (2.0 * resistance_ohm)


def dc_charge_power_w(soc: Array, curve_soc_pct: Array, curve_fraction: Array, dc_max_w: Array) -> Array:
    """DC fast-charge power (W) the car accepts at ``soc`` from its power curve (fraction of max)."""
    return dc_max_w * np.interp(np.asarray(soc) * 100.0, curve_soc_pct, curve_fraction)
