"""Parameters of the driver-assistance components: frozen dataclasses, SI units in the names, checked once.

Real-world limits carry their source: ISO 15622:2018 (ACC) for the comfort limits, Euro NCAP AEB car-to-car
test protocol v3.0.2 for the test conditions. The ego car's own size and full braking are the vehicle's
(``evos.twin.Chassis``), not repeated here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evos.errors import InvalidArgumentError
from evos.twin import Chassis

LANE_WIDTH_M = 3.5  # motorway lane width (EU, typical)
CAR_WIDTH_M = 1.9  # the other cars (targets, traffic): a typical passenger car
CAR_LENGTH_M = 4.7
G_MPS2 = 9.80665


def _check(obj: object, rules: dict[str, tuple[float, float]]) -> None:
    """Raise InvalidArgumentError naming the first field outside its closed range [lo, hi]."""
    name = type(obj).__name__
    for field, (lo, hi) in rules.items():
        value = getattr(obj, field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgumentError(f"{name}.{field}: must be a finite number, got {value!r}")
        if not lo <= value <= hi:
            raise InvalidArgumentError(f"{name}.{field}: must be in [{lo:g}, {hi:g}], got {value!r}")


@dataclass(frozen=True)
class SensorParams:
    """A forward object-list sensor (fused radar/camera): coverage, noise (1 sigma) and latency."""

    max_range_m: float = 160.0  # long-range radar class
    fov_deg: float = 60.0  # full horizontal field of view (±30°, mid-range radar / camera)
    range_noise_m: float = 0.10
    range_rate_noise_mps: float = 0.10
    lateral_noise_m: float = 0.05
    accel_noise_mps2: float = 0.20  # the tracker's estimate of the object's relative acceleration
    latency_steps: int = 5  # 50 ms at 100 Hz: cycle time of a typical radar ECU
    rear_range_m: float = 0.0  # rear corner radars (blind spot / lane change assist); 0: none fitted

    def __post_init__(self) -> None:
        _check(self, {"max_range_m": (1.0, 500.0), "fov_deg": (1.0, 180.0), "range_noise_m": (0.0, 5.0),
                      "range_rate_noise_mps": (0.0, 5.0), "lateral_noise_m": (0.0, 2.0),
                      "accel_noise_mps2": (0.0, 5.0), "latency_steps": (0, 100),
                      "rear_range_m": (0.0, 200.0)})


@dataclass(frozen=True)
class AccParams:
    """Adaptive cruise control: constant time-gap law with ISO 15622 limits.

    Law: ``a = min(k_s (v_set - v), k_gap (d - d_des) + k_v (v_lead - v), a_kin)`` with
    ``d_des = standstill_m + time_gap_s * v``; clipped to the acceleration limits and rate-limited to the jerk limits.
    """

    set_speed_mps: float = 27.8  # 100 km/h
    time_gap_s: float = 1.8  # ISO 15622 selectable 0.8..; evos offers 1.0-2.5 s, default 1.8
    standstill_m: float = 4.0  # gap kept at standstill
    k_speed_per_s: float = 0.4  # speed control gain
    k_gap_per_s2: float = 0.25  # gap error gain (CTG law, Milanés & Shladover 2014 use 0.23)
    k_rate_per_s: float = 0.7  # relative speed gain
    max_accel_mps2: float = 2.0  # ISO 15622:2018 §6.2: mean acceleration ≤ 2.0 m/s²
    max_decel_mps2: float = 3.5  # ISO 15622:2018: deceleration ≤ 3.5 m/s² (outside emergencies)
    max_jerk_mps3: float = 2.5  # ISO 15622:2018: jerk ≤ 2.5 m/s³ above 20 m/s
    max_jerk_low_mps3: float = 5.0  # ISO 15622:2018: ≤ 5 m/s³ at low speed (applied below jerk_speed_mps)
    jerk_speed_mps: float = 20.0  # where the stricter jerk limit starts
    hold_decel_mps2: float = 1.0  # brake held at standstill
    in_lane_m: float = LANE_WIDTH_M / 2  # an object is "in lane" when its centre is this close laterally

    def __post_init__(self) -> None:
        _check(self, {"set_speed_mps": (0.0, 60.0), "time_gap_s": (1.0, 2.5), "standstill_m": (1.0, 10.0),
                      "k_speed_per_s": (0.01, 5.0), "k_gap_per_s2": (0.01, 5.0), "k_rate_per_s": (0.01, 5.0),
                      "max_accel_mps2": (0.1, 2.0), "max_decel_mps2": (0.1, 3.5), "max_jerk_mps3": (0.1, 2.5),
                      "max_jerk_low_mps3": (0.1, 5.0), "jerk_speed_mps": (0.0, 60.0),
                      "hold_decel_mps2": (0.0, 3.5), "in_lane_m": (0.1, 5.0)})


@dataclass(frozen=True)
class AebParams:
    """Autonomous emergency braking: a warning, then partial, then full braking.

    Stages trigger on time-to-collision (TTC = range / closing speed) or on the deceleration required to stop
    ``margin_m`` short of the object (from range, closing speed and the object's own deceleration).
    """

    fcw_ttc_s: float = 2.6  # forward collision warning (Euro NCAP FCW tests expect ≥ ~2 s)
    fcw_required_mps2: float = 3.0
    partial_ttc_s: float = 1.6
    partial_required_mps2: float = 4.0  # beyond the 3.5 m/s² a comfort system may use
    partial_decel_mps2: float = 4.0
    full_ttc_s: float = 1.0
    full_required_mps2: float = 5.0  # partial braking would not be enough (with margin for the brake build-up)
    full_decel_mps2: float = Chassis().max_brake_mps2  # full braking: the car's (its chassis gives it)
    margin_m: float = 1.0  # stop this far short of the object
    overlap_margin_m: float = 0.1  # lateral: object must overlap the ego's body width plus this
    hold_s: float = 2.0  # keep the car braked this long after it stops

    def __post_init__(self) -> None:
        _check(self, {"fcw_ttc_s": (0.1, 10.0), "fcw_required_mps2": (0.1, 10.0), "partial_ttc_s": (0.1, 10.0),
                      "partial_required_mps2": (0.1, 10.0), "partial_decel_mps2": (0.5, 10.0),
                      "full_ttc_s": (0.1, 10.0), "full_required_mps2": (0.1, 12.0), "full_decel_mps2": (1.0, 12.0),
                      "margin_m": (0.0, 5.0), "overlap_margin_m": (-1.0, 2.0), "hold_s": (0.0, 60.0)})
        if not self.full_ttc_s <= self.partial_ttc_s <= self.fcw_ttc_s:
            raise InvalidArgumentError("AebParams: needs full_ttc_s <= partial_ttc_s <= fcw_ttc_s")


@dataclass(frozen=True)
class EgoLimits:
    """The ego's actuators: first-order lags on the acceleration demand and on steering (its size and brake limit
    are the vehicle's chassis)."""

    actuator_tau_s: float = 0.25  # brake/drive torque build-up (typical 0.2-0.3 s)
    steer_tau_s: float = 0.1  # assumed: electric power steering follows the demand with ~0.1 s lag

    def __post_init__(self) -> None:
        _check(self, {"actuator_tau_s": (0.01, 2.0), "steer_tau_s": (0.01, 1.0)})
