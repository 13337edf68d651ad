"""Adaptive cruise control: a constant time-gap law with ISO 15622 limits and a small state machine.

Modes: ``off`` (main switch off) → ``standby`` (armed, not controlling) → ``active`` (controlling) ⇄
``override`` (driver presses the accelerator; ACC resumes when released). The brake pedal sends ``active`` or
``override`` back to ``standby``; an unhealthy sensor sends any armed mode to ``fault`` until it is healthy again,
which returns to ``standby`` (the driver must re-engage). Deciding (``command``) is pure apart from this mode and
the last command, which the jerk limit needs.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

from evos.adas._params import AccParams
from evos.adas._sensor import SensorFrame, Track

KINEMATIC_MIN_MPS2 = 0.3  # the kinematic bound applies from this deceleration on
LEAD_STOPPED_MPS = 0.5


class AccMode(enum.Enum):
    OFF = "off"
    STANDBY = "standby"
    ACTIVE = "active"
    OVERRIDE = "override"
    FAULT = "fault"


@dataclass(frozen=True)
class Observation:
    """What the driver-assistance functions know at ``now_s``: own motion, sensor frame and the driver's pedals."""

    now_s: float
    speed_mps: float  # ego, wheel speeds
    accel_mps2: float  # ego, inertial sensor
    frame: SensorFrame
    brake_pedal: bool = False
    accelerator_pedal: bool = False
    intervention: bool = False  # another function (AEB) overrides the acceleration this step
    path_lateral_m: tuple[float, ...] = (0.0,)  # centres of the lanes the ego drives in or moves to (m, left)


@dataclass(frozen=True)
class AccCommand:
    """The ACC output: an acceleration demand (None: no demand, the driver is in control) and the mode."""

    accel_mps2: float | None
    mode: AccMode
    lead: Track | None = None


def select_lead(frame: SensorFrame, in_lane_m: float, path_lateral_m: tuple[float, ...] = (0.0,)) -> Track | None:
    """The nearest track ahead whose centre is within ``in_lane_m`` of the ego's path (its centre line, or the
    centres of the lanes in ``path_lateral_m`` during a lane change)."""
    lead = None  # the first of equally near ones, as min() would pick (this runs every step over every track)
    for t in frame.tracks:
        if t.range_m > 0 and (lead is None or t.range_m < lead.range_m) and (
                abs(t.lateral_m - path_lateral_m[0]) <= in_lane_m if len(path_lateral_m) == 1
                else any(abs(t.lateral_m - y) <= in_lane_m for y in path_lateral_m)):
            lead = t
    return lead


def jerk_limit_mps3(p: AccParams, speed_mps: float) -> float:
    """The ISO 15622 jerk limit that applies at this speed."""
    return p.max_jerk_mps3 if speed_mps >= p.jerk_speed_mps else p.max_jerk_low_mps3


def desired_accel_mps2(p: AccParams, speed_mps: float, lead: Track | None) -> float:
    """The constant time-gap law, before limits (m/s²)."""
    a_speed = p.k_speed_per_s * (p.set_speed_mps - speed_mps)
    if lead is None:
        return a_speed
    gap_m, rate_mps = lead.range_m, lead.range_rate_mps
    desired_gap_m = p.standstill_m + p.time_gap_s * speed_mps
    a_gap = p.k_gap_per_s2 * (gap_m - desired_gap_m) + p.k_rate_per_s * rate_mps
    # kinematic bound: the constant deceleration that matches speeds at the standstill distance; it takes over
    # when it asks for real braking; behind a stopped car it alone decides (no asymptotic creep to a stop)
    a_kin = -rate_mps**2 / (2 * max(gap_m - p.standstill_m, 0.1)) if rate_mps < 0 else math.inf
    lead_speed = speed_mps + rate_mps
    lead_stopped = lead_speed < LEAD_STOPPED_MPS
    if speed_mps < 0.1 and lead_stopped:
        return -p.hold_decel_mps2  # stop-and-go: wait at standstill until the lead drives off
    if lead_stopped:
        return min(a_speed, a_kin)  # stop at the standstill distance with constant deceleration
    return min(a_speed, a_gap, a_kin if a_kin < -KINEMATIC_MIN_MPS2 else math.inf)


class AccController:
    """ACC for one car: ``command(observation) -> AccCommand`` once per control step."""

    def __init__(self, params: AccParams | None = None) -> None:
        self.params = params or AccParams()
        self.mode = AccMode.OFF
        self._last_accel: float | None = None  # last demand, for the jerk limit
        self._last_s: float | None = None

    # ---- the driver's switches ------------------------------------------------------------------
    def switch_on(self) -> None:
        if self.mode is AccMode.OFF:
            self.mode = AccMode.STANDBY

    def switch_off(self) -> None:
        self.mode = AccMode.OFF

    def engage(self, set_speed_mps: float | None = None) -> bool:
        """SET/RESUME: from standby, start controlling (at ``set_speed_mps`` if given); False if not armed."""
        if self.mode is not AccMode.STANDBY:
            return False
        if set_speed_mps is not None:
            self.params = dataclasses.replace(self.params, set_speed_mps=set_speed_mps)
        self.mode = AccMode.ACTIVE
        self._last_accel = None
        return True

    def cancel(self) -> None:
        """CANCEL (or the brake pedal): stop controlling, stay armed in standby."""
        if self.mode in (AccMode.ACTIVE, AccMode.OVERRIDE):
            self.mode = AccMode.STANDBY

    def set_time_gap(self, time_gap_s: float) -> None:
        """Select the time gap (1.0-2.5 s); InvalidArgumentError otherwise."""
        self.params = dataclasses.replace(self.params, time_gap_s=time_gap_s)

    def set_speed(self, set_speed_mps: float) -> None:
        """Change the set speed (0-60 m/s) in any mode; InvalidArgumentError otherwise."""
        self.params = dataclasses.replace(self.params, set_speed_mps=set_speed_mps)

    # ---- control ------------------------------------------------------------------------------
    def _transition(self, obs: Observation) -> None:
        if self.mode is AccMode.OFF:
            return
        if not obs.frame.healthy:
            self.mode = AccMode.FAULT
        elif self.mode is AccMode.FAULT or (self.mode in (AccMode.ACTIVE, AccMode.OVERRIDE) and obs.brake_pedal):
            self.mode = AccMode.STANDBY
        elif self.mode is AccMode.ACTIVE and obs.accelerator_pedal:
            self.mode = AccMode.OVERRIDE
        elif self.mode is AccMode.OVERRIDE and not obs.accelerator_pedal:
            self.mode = AccMode.ACTIVE
            self._last_accel = None

    def command(self, obs: Observation) -> AccCommand:
        """The acceleration demand for this step (m/s²), within ISO 15622 acceleration and jerk limits."""
        self._transition(obs)
        p = self.params
        lead = select_lead(obs.frame, p.in_lane_m, obs.path_lateral_m) if obs.frame.healthy else None
        dt_s = max(obs.now_s - self._last_s, 0.0) if self._last_s is not None else 0.0
        self._last_s = obs.now_s
        if self.mode is not AccMode.ACTIVE:
            self._last_accel = None
            return AccCommand(None, self.mode, lead)
        accel = min(max(desired_accel_mps2(p, obs.speed_mps, lead), -p.max_decel_mps2), p.max_accel_mps2)
        # rate-limit from the last demand, or from the measured acceleration when taking over from someone else
        if self._last_accel is None or obs.intervention:
            previous = min(max(obs.accel_mps2, -p.max_decel_mps2), p.max_accel_mps2)
        else:
            previous = self._last_accel
        step = jerk_limit_mps3(p, obs.speed_mps) * dt_s
        accel = min(max(accel, previous - step), previous + step)
        self._last_accel = accel
        return AccCommand(accel, self.mode, lead)
