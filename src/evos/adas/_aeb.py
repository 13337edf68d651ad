"""Autonomous emergency braking: forward collision warning, then partial, then full braking.

A track is a threat when its body overlaps the ego's laterally (a car in the next lane is not). For the nearest
threat, AEB computes the time to collision and the deceleration required to stop ``margin_m`` short of it, taking
the object's own braking into account; the stage follows whichever is more urgent and latches (never weakens) until
the ego stands (then it holds the car, ``hold_s``) or no longer closes in. AEB runs whether ACC is on or off, and
its demand always wins.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from evos.adas._acc import Observation
from evos.adas._params import CAR_WIDTH_M, AebParams
from evos.adas._sensor import Track


class AebStage(enum.IntEnum):
    IDLE = 0
    WARNING = 1
    PARTIAL = 2
    FULL = 3
    HOLD = 4  # the car was braked to a standstill and is held there


@dataclass(frozen=True)
class AebCommand:
    """The AEB output: stage, acceleration demand (None: no intervention) and why."""

    stage: AebStage
    accel_mps2: float | None
    threat: Track | None = None
    ttc_s: float = math.inf
    required_decel_mps2: float = 0.0


def required_decel_mps2(gap_m: float, speed_mps: float, closing_mps: float, lead_decel_mps2: float) -> float:
    """Constant deceleration (m/s², positive) the ego needs to not close ``gap_m`` to a braking object.

    ``closing_mps`` = ego speed - object speed; ``lead_decel_mps2`` >= 0 is the object's braking. Two cases: speeds
    match while the object still moves (``b + v_r²/2d``), or the object stops first (``v²/2(d + v_t²/2b)``).
    """
    if gap_m <= 0:
        return math.inf
    lead_speed = max(speed_mps - closing_mps, 0.0)
    closing = max(closing_mps, 0.0)
    if closing == 0 and lead_decel_mps2 <= 0:
        return 0.0
    a_match = lead_decel_mps2 + closing**2 / (2 * gap_m)
    t_match = closing / (a_match - lead_decel_mps2) if a_match > lead_decel_mps2 else 0.0
    t_lead_stops = lead_speed / lead_decel_mps2 if lead_decel_mps2 > 0 else math.inf
    if t_match <= t_lead_stops:
        return a_match
    return speed_mps**2 / (2 * (gap_m + lead_speed**2 / (2 * lead_decel_mps2)))


def is_threat(track: Track, ego_width_m: float, overlap_margin_m: float) -> bool:
    """Whether the object's body overlaps the ego's body laterally (with a margin)."""
    return abs(track.lateral_m) < (ego_width_m + track.width_m) / 2 + overlap_margin_m


class AebController:
    """AEB for one car: ``command(observation) -> AebCommand`` once per control step."""

    def __init__(self, params: AebParams | None = None, ego_width_m: float = CAR_WIDTH_M) -> None:
        self.params = params or AebParams()
        self.ego_width_m = ego_width_m
        self.stage = AebStage.IDLE
        self._hold_until_s = -math.inf

    def assess(self, obs: Observation) -> tuple[Track | None, float, float]:
        """(nearest threat, TTC s, required deceleration m/s²) from the sensor frame."""
        p = self.params
        threat: Track | None = None  # the nearest (the first of equals, as min())
        for t in obs.frame.tracks:
            if t.range_m > 0 and (threat is None or t.range_m < threat.range_m) and \
                    is_threat(t, self.ego_width_m, p.overlap_margin_m):
                threat = t
        if threat is None:
            return None, math.inf, 0.0
        lead_decel = max(-(obs.accel_mps2 + threat.range_accel_mps2), 0.0)
        required = required_decel_mps2(threat.range_m - p.margin_m, obs.speed_mps, -threat.range_rate_mps,
                                       lead_decel)
        return threat, threat.ttc_s(), required

    def _stage_for(self, ttc_s: float, required: float) -> AebStage:
        p = self.params
        if ttc_s <= p.full_ttc_s or required >= p.full_required_mps2:
            return AebStage.FULL
        if ttc_s <= p.partial_ttc_s or required >= p.partial_required_mps2:
            return AebStage.PARTIAL
        if ttc_s <= p.fcw_ttc_s or required >= p.fcw_required_mps2:
            return AebStage.WARNING
        return AebStage.IDLE

    def command(self, obs: Observation) -> AebCommand:
        p = self.params
        threat, ttc, required = self.assess(obs)
        if self.stage is AebStage.HOLD and obs.now_s < self._hold_until_s and not obs.accelerator_pedal:
            return AebCommand(AebStage.HOLD, -p.partial_decel_mps2, threat, ttc, required)
        braking = self.stage in (AebStage.PARTIAL, AebStage.FULL)
        if braking and obs.speed_mps < 0.05:
            self.stage = AebStage.HOLD
            self._hold_until_s = obs.now_s + p.hold_s
            return AebCommand(AebStage.HOLD, -p.partial_decel_mps2, threat, ttc, required)
        stage = self._stage_for(ttc, required) if obs.speed_mps > 0.5 and obs.frame.healthy else AebStage.IDLE
        # latch: never weaken braking while still closing in, nor before the car stands (at a crawl the closing
        # speed falls below any threshold, and letting go there leaves the car creeping toward the object)
        closing = threat is not None and (threat.range_rate_mps < -0.2 or (
            obs.speed_mps >= 0.05 and threat.range_rate_mps <= 0.2))
        if braking and closing:
            stage = max(stage, self.stage)
        self.stage = stage
        accel = {AebStage.PARTIAL: -p.partial_decel_mps2, AebStage.FULL: -p.full_decel_mps2}.get(stage)
        return AebCommand(stage, accel, threat, ttc, required)
