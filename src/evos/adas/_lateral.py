"""Lateral functions: a camera lane-line sensor, lane centring and automatic lane changes with a gap check.

Limits: lateral acceleration ≤ 3 m/s² and lateral jerk ≤ 5 m/s³ (ISO 11270 as applied by openpilot,
``opendbc/car/lateral.py``: ISO_LATERAL_ACCEL = 3.0, ISO_LATERAL_JERK = 5.0). Lane changes follow UN R79 ACSF
category C as the issue states it: the lateral move starts after the indicator has been on ≥ 1 s and within 5 s
of the request (else the request is cancelled), takes ≤ 5 s, and needs a free gap on the target lane — behind,
at least R79's critical distance ``S = Δv·t_B + Δv²/(2a) + v·t_G`` (t_B = 0.4 s, a = 3 m/s², t_G = 1 s); ahead,
the same rule mirrored for a slower car and half the time gap for a faster one (assumed). When the gap closes
before the ego's wheels reach the lane line, the change aborts back to the original lane; after that it completes.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from evos.adas._params import LANE_WIDTH_M, _check
from evos.adas._sensor import NOISE_BLOCK, SensorFrame


@dataclass(frozen=True)
class LaneSensorParams:
    """A lane-line camera: frame rate, latency and Gaussian noise (1 sigma); all assumed typical values."""

    rate_hz: float = 20.0  # automotive front cameras run at 20-36 frames/s
    latency_s: float = 0.1  # exposure + lane detection
    offset_noise_m: float = 0.03
    heading_noise_rad: float = 0.002
    curvature_noise_per_m: float = 2e-5

    def __post_init__(self) -> None:
        _check(self, {"rate_hz": (1.0, 200.0), "latency_s": (0.0, 1.0), "offset_noise_m": (0.0, 1.0),
                      "heading_noise_rad": (0.0, 0.1), "curvature_noise_per_m": (0.0, 0.01)})


@dataclass(frozen=True)
class LaneFrame:
    """What the camera reports: the ego relative to the lane it is in (offset of its centre from the lane centre,
    m, positive left; heading relative to the lane, rad, positive left), the lane's curvature (1/m, positive left),
    lane width and how many lanes there are to each side."""

    now_s: float
    offset_m: float = 0.0
    heading_rad: float = 0.0
    curvature_per_m: float = 0.0
    lane_width_m: float = LANE_WIDTH_M
    lanes_left: int = 0
    lanes_right: int = 0
    healthy: bool = True


class LaneSensor:
    """The camera: samples the truth every 1/rate_hz s, adds noise, and delivers each sample latency_s later."""

    def __init__(self, params: LaneSensorParams, rng: np.random.Generator) -> None:
        self.params = params
        self._rng = rng
        self._next_sample_s = 0.0
        self._pipeline: deque[tuple[float, LaneFrame]] = deque()
        self._current: LaneFrame | None = None
        self._noise: list[list[float]] = []
        self._next = 0

    def _normal3(self) -> list[float]:
        """Three standard normal draws (drawn in blocks: the same sequence as one call per frame, far fewer calls)."""
        if self._next == len(self._noise):
            self._noise, self._next = self._rng.standard_normal((NOISE_BLOCK, 3)).tolist(), 0
        self._next += 1
        return self._noise[self._next - 1]

    def measure(self, now_s: float, truth: LaneFrame) -> LaneFrame:
        p = self.params
        if now_s >= self._next_sample_s - 1e-9:
            self._next_sample_s = now_s + 1 / p.rate_hz
            n = self._normal3()
            noisy = LaneFrame(now_s, truth.offset_m + p.offset_noise_m * n[0],
                              truth.heading_rad + p.heading_noise_rad * n[1],
                              truth.curvature_per_m + p.curvature_noise_per_m * n[2], truth.lane_width_m,
                              truth.lanes_left, truth.lanes_right, truth.healthy)
            self._pipeline.append((now_s + p.latency_s, noisy))
        current = self._current or self._pipeline.popleft()[1]  # the first frame counts at once: it ran before
        while self._pipeline and self._pipeline[0][0] <= now_s + 1e-9:
            current = self._pipeline.popleft()[1]
        self._current = current
        return current


@dataclass(frozen=True)
class LateralParams:
    """Lane centring (curvature feed-forward + offset/heading feedback) and lane-change rules."""

    natural_freq_rad_s: float = 0.6  # of the lateral error dynamics (assumed: ~10 s settling, no overshoot)
    tracking_freq_rad_s: float = 1.0  # assumed: stiffer while following a lane change or returning after an abort
    settled_m: float = 0.2  # an abort ends when the ego is this close to its lane centre, moving sideways
    # slower than this many m/s (and at least 1 s has passed)
    damping: float = 0.9
    min_speed_mps: float = 5.0  # below this the gains stay those of this speed
    max_lat_accel_mps2: float = 3.0  # ISO 11270 (opendbc ISO_LATERAL_ACCEL)
    max_lat_jerk_mps3: float = 5.0  # ISO 11270 (opendbc ISO_LATERAL_JERK)
    lane_change_s: float = 4.0  # the lateral move (cosine profile); R79 wants ≤ 5 s
    min_signal_s: float = 1.0  # indicator on before the move starts
    max_wait_s: float = 5.0  # a request not started by then is cancelled
    reaction_s: float = 0.4  # UN R79 t_B
    rear_decel_mps2: float = 3.0  # UN R79 a
    time_gap_s: float = 1.0  # UN R79 t_G

    def __post_init__(self) -> None:
        _check(self, {"natural_freq_rad_s": (0.05, 5.0), "tracking_freq_rad_s": (0.05, 5.0),
                      "settled_m": (0.01, 1.0), "damping": (0.1, 3.0), "min_speed_mps": (0.5, 30.0),
                      "max_lat_accel_mps2": (0.1, 3.0), "max_lat_jerk_mps3": (0.1, 5.0),
                      "lane_change_s": (1.0, 5.0), "min_signal_s": (0.0, 5.0), "max_wait_s": (0.5, 30.0),
                      "reaction_s": (0.0, 3.0), "rear_decel_mps2": (0.5, 10.0), "time_gap_s": (0.0, 5.0)})


class LaneCentring:
    """``command(now_s, speed, frame, reference) -> path curvature (1/m)``, within the lateral limits."""

    def __init__(self, params: LateralParams | None = None) -> None:
        self.params = params or LateralParams()
        self._last: tuple[float, float] | None = None  # (time, lateral acceleration) for the jerk limit

    def reset(self) -> None:
        self._last = None

    def command(self, now_s: float, speed_mps: float, frame: LaneFrame,
                reference: tuple[float, float, float] = (0.0, 0.0, 0.0), position_m: float | None = None) -> float:
        """Curvature that steers the ego onto ``reference`` = (offset m, its rate m/s, its acceleration m/s²)
        relative to the lane; ``position_m`` replaces the camera offset (during a lane change, which is tracked
        with the stiffer ``tracking_freq_rad_s``)."""
        p = self.params
        v = max(speed_mps, p.min_speed_mps)
        ref_d, ref_rate, ref_acc = reference
        pos = frame.offset_m if position_m is None else position_m
        omega = p.natural_freq_rad_s if position_m is None else p.tracking_freq_rad_s
        k_d = omega**2 / v**2
        k_psi = 2 * p.damping * omega / v
        heading_ref = math.atan2(ref_rate, v)
        kappa = (frame.curvature_per_m + ref_acc / v**2 - k_d * (pos - ref_d)
                 - k_psi * (frame.heading_rad - heading_ref))
        lat = speed_mps**2 * kappa
        lat = min(max(lat, -p.max_lat_accel_mps2), p.max_lat_accel_mps2)
        if self._last is not None:
            step = p.max_lat_jerk_mps3 * max(now_s - self._last[0], 0.0)
            lat = min(max(lat, self._last[1] - step), self._last[1] + step)
        self._last = (now_s, lat)
        return lat / speed_mps**2 if speed_mps > 0.1 else kappa


class LaneChangeState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"  # requested, indicator on, waiting for the signal time and a gap
    MOVING = "moving"
    ABORTING = "aborting"  # going back to the original lane


def critical_gaps_m(p: LateralParams, speed_mps: float, track_speed_mps: float) -> float:
    """UN R79 critical distance to a vehicle on the target lane (behind: it approaches at Δv; ahead: mirrored)."""
    dv = abs(track_speed_mps - speed_mps)
    return dv * p.reaction_s + dv**2 / (2 * p.rear_decel_mps2) + speed_mps * p.time_gap_s


def gap_free(p: LateralParams, speed_mps: float, frame: SensorFrame, lane_centre_m: float, lane_width_m: float,
             ego_length_m: float) -> bool:
    """Whether no track on the lane centred ``lane_centre_m`` (relative to the ego) is within its critical gap.

    Never without rear coverage: a car beside or behind the ego would be invisible (UN R79 ACSF-C needs rear
    detection for a lane change)."""
    if not frame.rear_covered:
        return False
    for t in frame.tracks:
        if abs(t.lateral_m - lane_centre_m) > lane_width_m / 2:
            continue
        other_speed = speed_mps + t.range_rate_mps
        if t.range_m > 0:  # ahead: the critical gap to a slower car, half the time gap to a faster one (assumed)
            slower = other_speed < speed_mps
            if t.range_m < (critical_gaps_m(p, speed_mps, other_speed) if slower else speed_mps * p.time_gap_s / 2):
                return False
            continue
        behind_m = -t.range_m - t.length_m - ego_length_m
        if behind_m < 0:
            return False  # beside the ego
        if behind_m < critical_gaps_m(p, speed_mps, max(other_speed, speed_mps)):
            return False
    return True


class LaneChange:
    """The lane-change procedure: request → wait (signal, gap) → move → done, or cancel/abort."""

    def __init__(self, params: LateralParams | None = None, ego_length_m: float = 4.7,
                 ego_width_m: float = 1.9) -> None:
        self.params = params or LateralParams()
        self.ego_length_m = ego_length_m
        self.ego_width_m = ego_width_m
        self.state = LaneChangeState.IDLE
        self.direction = 0
        self.outcome = ""  # "done", "cancelled", "aborted" once finished
        self._requested_s = 0.0
        self._move: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # start_s, from, to, duration
        self._shift = 0  # lane lines crossed since the request (+left)
        self._last_offset: float | None = None
        self._aborted_s = 0.0

    def request(self, direction: int, now_s: float) -> bool:
        """The driver (or the pilot) asks for a change left (+1) or right (-1); False if one is under way."""
        if self.state is not LaneChangeState.IDLE or direction not in (-1, 1):
            return False
        self.state, self.direction, self._requested_s, self.outcome = LaneChangeState.WAITING, direction, now_s, ""
        self._shift, self._last_offset = 0, None
        return True

    def cancel(self) -> None:
        if self.state is not LaneChangeState.IDLE:
            self.state, self.outcome = LaneChangeState.IDLE, "cancelled"

    def position_m(self, frame: LaneFrame) -> float:
        """The ego's offset from the centre of the lane it started in (tracks lane-line crossings)."""
        if self._last_offset is not None and abs(frame.offset_m - self._last_offset) > frame.lane_width_m / 2:
            self._shift += 1 if frame.offset_m < self._last_offset else -1
        self._last_offset = frame.offset_m
        return frame.offset_m + self._shift * frame.lane_width_m

    def step(self, now_s: float, speed_mps: float, lanes: LaneFrame,
             objects: SensorFrame) -> tuple[float, tuple[float, float, float]] | None:
        """(position m, reference (offset, rate, acceleration)) relative to the original lane, or None when no lane
        change is under way (then centre in the current lane)."""
        if self.state is LaneChangeState.IDLE:
            return None
        p, w = self.params, lanes.lane_width_m
        pos = self.position_m(lanes)
        target_centre = self.direction * w - pos  # relative to the ego
        free = gap_free(p, speed_mps, objects, target_centre, w, self.ego_length_m) and objects.healthy
        exists = (lanes.lanes_left if self.direction > 0 else lanes.lanes_right) + abs(self._shift) > 0
        if self.state is LaneChangeState.WAITING:
            waited = now_s - self._requested_s
            if waited > p.max_wait_s or not exists:
                self.state, self.outcome = LaneChangeState.IDLE, "cancelled"
                return None
            if waited < p.min_signal_s or not free:
                return pos, (0.0, 0.0, 0.0)
            self.state = LaneChangeState.MOVING
            self._move = (now_s, pos, self.direction * w, p.lane_change_s)
        elif self.state is LaneChangeState.MOVING and not free and abs(pos) < (w - self.ego_width_m) / 2:
            self.state, self._aborted_s = LaneChangeState.ABORTING, now_s
        if self.state is LaneChangeState.ABORTING:
            # back to the original lane's centre with the tracking gains, from wherever the move had got to (a
            # profile from the position alone would ignore the lateral speed the ego already has)
            settled = abs(pos) < p.settled_m and abs(lanes.heading_rad) * speed_mps < p.settled_m  # m, m/s
            if (settled and now_s - self._aborted_s >= 1.0) or now_s - self._aborted_s > p.max_wait_s:
                self.state, self.outcome = LaneChangeState.IDLE, "aborted"
                return None
            return pos, (0.0, 0.0, 0.0)
        start, d0, d1, duration = self._move
        share = (now_s - start) / duration
        if share >= 1.0:
            self.state, self.outcome = LaneChangeState.IDLE, "done"
            return None
        k = math.pi / duration
        half = (d1 - d0) / 2
        return pos, (d0 + half * (1 - math.cos(math.pi * share)), half * k * math.sin(math.pi * share),
                     half * k * k * math.cos(math.pi * share))
