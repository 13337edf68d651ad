"""Background traffic: IDM car following and MOBIL lane changes, vectorised over every vehicle of the scene.

Models: the Intelligent Driver Model (Treiber, Hennecke & Helbing 2000; Treiber & Kesting, *Traffic Flow Dynamics*,
Springer 2013, ch. 11) and the lane-changing model MOBIL (Kesting, Treiber & Helbing, Transp. Res. Rec. 1999, 2007).
Parameters, checked against public sources (see docs/adas.md, "Traffic parameters"):

- IDM s0 = 2 m and δ = 4 are in every published set; T = 1.0 s, a = 1.0 m/s², b = 1.5 m/s² are assumed (cited
  before as the book's Table 11.2 highway set, which could not be checked here); they lie within the published
  sets: T 1.4-1.8 s, a 0.3-1.0 m/s², b 1.67-3 m/s².
- MOBIL b_safe = 4 m/s², Δa_th = 0.2 m/s², right-lane bias 0.2 m/s² and politeness 0..0.5 as on Treiber's MOBIL
  page (www.vwi.tu-dresden.de/~treiber/MicroApplet/MOBIL.html, as copied in 2005); traffic-simulation.de's source
  (js/control_gui.js) uses b_safe = 4, Δa_th = 0.4, bias 0.05 (cars), politeness 0.1.

A vehicle whose body covers two lanes (changing lanes) counts in both: it follows the nearest vehicle ahead in
either and is seen by the followers in both. Arrays are indexed by vehicle; functions are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evos.adas._params import _check
from evos.errors import InvalidArgumentError

MAX_DECEL_MPS2 = 9.0  # IDM can ask for more than the tyres give when cut off; clamp at the tyre limit
MIN_GAP_M = 0.1  # the gap used when bodies already overlap (avoids a division by zero)
LANE_KEY = 1.0e6  # sort key = lane * LANE_KEY + position: positions stay within ±LANE_KEY/2


@dataclass(frozen=True)
class IdmParams:
    """IDM: desired speed is per vehicle (see TrafficSpec); the rest see the module docstring."""

    time_gap_s: float = 1.0
    min_gap_m: float = 2.0
    accel_mps2: float = 1.0
    decel_mps2: float = 1.5
    delta: float = 4.0

    def __post_init__(self) -> None:
        _check(self, {"time_gap_s": (0.1, 5.0), "min_gap_m": (0.1, 20.0), "accel_mps2": (0.1, 5.0),
                      "decel_mps2": (0.1, 9.0), "delta": (1.0, 10.0)})


@dataclass(frozen=True)
class MobilParams:
    """MOBIL lane changes (Kesting, Treiber & Helbing 2007); decisions every ``decision_interval_s``."""

    politeness: float = 0.2  # assumed: within Treiber's "realistic" range 0..0.5
    threshold_mps2: float = 0.2  # Treiber's MOBIL page
    safe_decel_mps2: float = 4.0  # Treiber's MOBIL page; traffic-simulation.de
    keep_right_bias_mps2: float = 0.2  # Treiber's MOBIL page (European keep-right rule)
    decision_interval_s: float = 1.0  # as highway-env 1.12.1 (IDMVehicle.LANE_CHANGE_DELAY = 1.0 s)
    lane_change_s: float = 4.0  # assumed: duration of the lateral move (typical 3-6 s on motorways)

    def __post_init__(self) -> None:
        _check(self, {"politeness": (0.0, 1.0), "threshold_mps2": (0.0, 5.0), "safe_decel_mps2": (0.5, 9.0),
                      "keep_right_bias_mps2": (0.0, 5.0), "decision_interval_s": (0.05, 60.0),
                      "lane_change_s": (1.0, 15.0)})


def idm_accel(p: IdmParams, v_mps: np.ndarray, v0_mps: np.ndarray, gap_m: np.ndarray,
              lead_v_mps: np.ndarray) -> np.ndarray:
    """IDM acceleration (m/s²): ``a [1 - (v/v0)^δ - (s*/s)²]``, ``s* = s0 + max(0, vT + vΔv / 2√(ab))``.

    ``gap_m`` may be inf (no leader). Clamped at the tyre limit.
    """
    dv = v_mps - lead_v_mps
    s_star = p.min_gap_m + np.maximum(v_mps * p.time_gap_s + v_mps * dv / (2 * math.sqrt(p.accel_mps2 * p.decel_mps2)),
                                      0.0)
    free = 1 - (v_mps / v0_mps) ** p.delta
    acc = p.accel_mps2 * (free - (s_star / np.maximum(gap_m, MIN_GAP_M)) ** 2)
    return np.maximum(acc, -MAX_DECEL_MPS2)


@dataclass(frozen=True)
class LaneIndex:
    """Vehicles sorted by lane and position: entries (lane, vehicle) for every lane a body covers."""

    keys: np.ndarray  # sorted: lane * LANE_KEY + rear position
    vehicle: np.ndarray  # the vehicle of each entry
    lane: np.ndarray  # the lane of each entry


def lanes_covered(d_m: np.ndarray, width_m: np.ndarray, lane_width_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(rightmost, leftmost) lane each body covers: equal unless the vehicle straddles a lane line."""
    lo = np.floor((d_m - width_m / 2) / lane_width_m + 0.5).astype(np.int64)
    hi = np.floor((d_m + width_m / 2) / lane_width_m + 0.5).astype(np.int64)
    return lo, hi


def build_index(s_rear_m: np.ndarray, lane_lo: np.ndarray, lane_hi: np.ndarray) -> LaneIndex:
    """The sorted entries of all vehicles (one or two per vehicle)."""
    n = len(s_rear_m)
    two = np.flatnonzero(lane_hi != lane_lo)
    vehicle = np.concatenate([np.arange(n), two])
    lane = np.concatenate([lane_lo, lane_hi[two]])
    keys = lane * LANE_KEY + s_rear_m[vehicle]
    order = np.argsort(keys, kind="stable")
    return LaneIndex(keys[order], vehicle[order], lane[order])


def leaders(index: LaneIndex, n: int, s_rear_m: np.ndarray) -> np.ndarray:
    """The nearest vehicle ahead (by rear position) in any lane a vehicle covers; -1 when none."""
    lead = np.full(len(index.keys), -1, dtype=np.int64)
    lead[:-1] = np.where(index.lane[1:] == index.lane[:-1], index.vehicle[1:], -1)
    lead_s = np.where(lead >= 0, s_rear_m[lead], np.inf)
    order = np.argsort(-lead_s, kind="stable")  # a vehicle may have two entries: assign the nearer lead last
    best = np.full(n, -1, dtype=np.int64)
    best[index.vehicle[order]] = lead[order]
    return best


def neighbours_at(index: LaneIndex, lane: np.ndarray, s_rear_m: np.ndarray,
                  exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(leader, follower) a vehicle at ``s_rear_m`` would have in ``lane`` (-1: none), skipping ``exclude``."""
    key = lane * LANE_KEY + s_rear_m
    pos = np.searchsorted(index.keys, key, side="right")
    m = len(index.keys)
    lead = np.full(len(key), -1, dtype=np.int64)
    foll = np.full(len(key), -1, dtype=np.int64)
    for step, out, start in ((1, lead, pos), (-1, foll, pos - 1)):
        i = start.copy()
        for _ in range(2):  # at most one entry to skip: the vehicle itself
            ok = (i >= 0) & (i < m)
            ii = np.clip(i, 0, m - 1)
            hit = ok & (index.lane[ii] == lane) & (index.vehicle[ii] != exclude) & (out < 0)
            out[hit] = index.vehicle[ii][hit]
            skip = ok & (index.lane[ii] == lane) & (index.vehicle[ii] == exclude)
            i = np.where(skip, i + step, -2 if step < 0 else m)
    return lead, foll


def gap_to(s_rear_m: np.ndarray, length_m: np.ndarray, follower: np.ndarray, leader: np.ndarray,
           follower_s_m: np.ndarray | None = None) -> np.ndarray:
    """Bumper-to-bumper gap (m) from each follower to its leader (inf when there is none)."""
    fs = s_rear_m[follower] if follower_s_m is None else follower_s_m
    return np.where(leader >= 0, s_rear_m[leader] - fs - length_m[follower], np.inf)


def speeds_of(v_mps: np.ndarray, vehicle: np.ndarray) -> np.ndarray:
    return np.where(vehicle >= 0, v_mps[vehicle], 0.0)


@dataclass(frozen=True)
class TrafficSpec:
    """Background vehicles driven by IDM and MOBIL, placed at random (the scenario's seed) over all lanes.

    ``vehicles`` cars spread evenly with jitter over ``[from_m, to_m]`` (relative to the ego's front bumper);
    cars that would overlap the ego or start closer than ``clear_m`` to it in its lane are left out.
    """

    vehicles: int = 0
    from_m: float = -150.0
    to_m: float = 600.0
    clear_m: float = 30.0
    speed_mps: tuple[float, float] = (22.0, 28.0)  # initial speeds, uniform
    desired_speed_mps: tuple[float, float] = (24.0, 33.3)  # IDM v0, uniform (33.3 m/s = 120 km/h)
    length_m: float = 4.7
    width_m: float = 1.9
    idm: IdmParams = IdmParams()
    mobil: MobilParams = MobilParams()

    def __post_init__(self) -> None:
        _check(self, {"vehicles": (0, 2000), "from_m": (-10_000.0, 0.0), "to_m": (0.0, 50_000.0),
                      "clear_m": (0.0, 500.0), "length_m": (1.0, 20.0), "width_m": (0.5, 3.0)})
        for name in ("speed_mps", "desired_speed_mps"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 70.0:
                raise InvalidArgumentError(f"TrafficSpec.{name}: must be [low, high] within 0..70 m/s, got "
                                           f"{[lo, hi]}")
        if self.desired_speed_mps[0] <= 0:
            raise InvalidArgumentError("TrafficSpec.desired_speed_mps: must be above 0")


def place_traffic(spec: TrafficSpec, lanes: tuple[int, ...], lane_width_m: float, ego_length_m: float,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial arrays (s_rear, d, v, v0, length, width) of the background vehicles; InvalidArgumentError if the
    stretch is too short for them."""
    per_lane = math.ceil(spec.vehicles / len(lanes)) if spec.vehicles else 0
    if per_lane == 0:
        return {k: np.empty(0) for k in ("s", "d", "v", "v0", "length", "width")}
    spacing = (spec.to_m - spec.from_m) / per_lane
    if spacing < 2 * (spec.length_m + 5.0):
        raise InvalidArgumentError(f"TrafficSpec: {spec.vehicles} vehicles do not fit in {spec.to_m - spec.from_m:g} m "
                                   f"of {len(lanes)} lanes (need ≥ {2 * (spec.length_m + 5):g} m per car and lane)")
    k = np.arange(spec.vehicles)
    lane = np.array(lanes)[k % len(lanes)]
    slot = k // len(lanes)
    s = spec.from_m + slot * spacing + rng.uniform(0.0, spacing / 2, spec.vehicles)
    v = rng.uniform(*spec.speed_mps, spec.vehicles)
    v0 = rng.uniform(*spec.desired_speed_mps, spec.vehicles)
    keep = ~((lane == 0) & (s > -ego_length_m - spec.length_m - spec.clear_m) & (s < spec.clear_m))
    return {"s": s[keep], "d": lane[keep] * lane_width_m, "v": v[keep], "v0": np.maximum(v0[keep], v[keep]),
            "length": np.full(keep.sum(), spec.length_m), "width": np.full(keep.sum(), spec.width_m)}


class Fleet:
    """Every vehicle of a scene as arrays (index 0 is the ego, moved by its own model): IDM accelerations,
    MOBIL decisions and smooth lateral moves between lanes. Scripted vehicles set their own acceleration."""

    def __init__(self, arrays: dict[str, np.ndarray], idm_mask: np.ndarray, lane_width_m: float,
                 idm: IdmParams, mobil: MobilParams) -> None:
        self.s, self.d, self.v = arrays["s"].astype(float), arrays["d"].astype(float), arrays["v"].astype(float)
        self.v0, self.length, self.width = arrays["v0"], arrays["length"], arrays["width"]
        n = len(self.s)
        self.a = np.zeros(n)
        self.idm_mask = idm_mask
        self.lane_width_m = lane_width_m
        self.lane = np.rint(self.d / lane_width_m).astype(np.int64)  # the lane each vehicle drives in or heads to
        self.lc_t0 = np.full(n, np.nan)  # lateral moves: start time, duration, from and to
        self.moves_under_way = False
        self.lc_dur = np.ones(n)
        self.lc_d0 = self.d.copy()
        self.lc_d1 = self.d.copy()
        self.idm, self.mobil = idm, mobil
        self.next_decision_s = 0.0
        self.lane_changes = 0

    def index(self) -> LaneIndex:
        lo, hi = lanes_covered(self.d, self.width, self.lane_width_m)
        return build_index(self.s, lo, hi)

    def idm_accelerations(self, index: LaneIndex) -> np.ndarray:
        lead = leaders(index, len(self.s), self.s)
        gap = gap_to(self.s, self.length, np.arange(len(self.s)), lead)
        return idm_accel(self.idm, self.v, self.v0, gap, speeds_of(self.v, lead))

    def start_lateral_move(self, i: int | np.ndarray, now_s: float, to_d_m: float | np.ndarray,
                           duration_s: float) -> None:
        self.lc_t0[i], self.lc_dur[i], self.lc_d0[i], self.lc_d1[i] = now_s, duration_s, self.d[i], to_d_m
        self.lane[i] = np.rint(np.asarray(to_d_m) / self.lane_width_m)
        self.moves_under_way = True

    def decide_lanes(self, now_s: float, index: LaneIndex, acc_now: np.ndarray, lanes: tuple[int, int]) -> None:
        """MOBIL for the IDM vehicles that are not moving sideways: change lane where it pays and is safe."""
        if now_s < self.next_decision_s:
            return
        self.next_decision_s = now_s + self.mobil.decision_interval_s
        cand = np.flatnonzero(self.idm_mask & np.isnan(self.lc_t0))
        if len(cand) == 0:
            return
        p, m = self.idm, self.mobil
        s, v, v0 = self.s[cand], self.v[cand], self.v0[cand]
        lane = self.lane[cand]
        same_lead, old_foll = neighbours_at(index, lane, s, cand)
        a_o_old = np.where(old_foll >= 0, idm_accel(p, speeds_of(self.v, old_foll), speeds_of(self.v0, old_foll) + 1e-9,
                                                    self._gap_behind(old_foll, s), v), 0.0)
        a_o_new = np.where(old_foll >= 0, idm_accel(p, speeds_of(self.v, old_foll), speeds_of(self.v0, old_foll) + 1e-9,
                                                    self._gap_between(old_foll, same_lead),
                                                    speeds_of(self.v, same_lead)), 0.0)
        best_gain = np.zeros(len(cand))
        best_lane = lane.copy()
        for direction, bias in ((1, m.keep_right_bias_mps2), (-1, -m.keep_right_bias_mps2)):
            target = lane + direction
            valid = (target >= lanes[0]) & (target <= lanes[1])
            lead, foll = neighbours_at(index, target, s, cand)
            front_gap = np.where(lead >= 0, self.s[np.maximum(lead, 0)] - s - self.length[cand], np.inf)
            back_gap = self._gap_behind(foll, s)
            a_c_new = idm_accel(p, v, v0, front_gap, speeds_of(self.v, lead))
            fv, fv0 = speeds_of(self.v, foll), speeds_of(self.v0, foll) + 1e-9
            a_n_new = np.where(foll >= 0, idm_accel(p, fv, fv0, back_gap, v), 0.0)
            a_n_old = np.where(foll >= 0, idm_accel(p, fv, fv0, self._gap_between(foll, lead),
                                                    speeds_of(self.v, lead)), 0.0)
            safe = valid & (front_gap > p.min_gap_m) & (back_gap > p.min_gap_m) & (a_n_new >= -m.safe_decel_mps2)
            gain = (a_c_new - acc_now[cand] + m.politeness * (a_n_new - a_n_old + a_o_new - a_o_old)
                    - m.threshold_mps2 - bias)
            better = safe & (gain > best_gain)
            best_gain = np.where(better, gain, best_gain)
            best_lane = np.where(better, target, best_lane)
        moving = np.flatnonzero(best_lane != lane)
        if len(moving):
            idx = cand[moving]
            self.start_lateral_move(idx, now_s, best_lane[moving] * self.lane_width_m, m.lane_change_s)
            self.lane_changes += len(moving)

    def _gap_behind(self, follower: np.ndarray, s_rear_m: np.ndarray) -> np.ndarray:
        """Gap from ``follower`` (its front) to a vehicle whose rear is at ``s_rear_m``."""
        f = np.maximum(follower, 0)
        return np.where(follower >= 0, s_rear_m - self.s[f] - self.length[f], np.inf)

    def _gap_between(self, follower: np.ndarray, leader: np.ndarray) -> np.ndarray:
        f, ld = np.maximum(follower, 0), np.maximum(leader, 0)
        return np.where((follower >= 0) & (leader >= 0), self.s[ld] - self.s[f] - self.length[f], np.inf)

    def move(self, now_s: float, dt_s: float, curvature_per_m: np.ndarray | None) -> None:
        """Advance every vehicle but the ego by ``dt_s`` (accelerations in ``self.a``; no reversing)."""
        v_new = self.v + self.a * dt_s
        np.maximum(v_new, 0.0, out=v_new)  # in place: with few vehicles the cost is per numpy call
        ds = self.v + v_new
        ds *= dt_s / 2
        if curvature_per_m is not None:  # along an inner lane a car covers more reference-line length
            ds /= 1 - self.d * curvature_per_m
        ds[0] = 0.0
        v_new[0] = self.v[0]
        self.s += ds
        self.v = v_new
        if not self.moves_under_way:  # most steps: nobody moves sideways, skip the bookkeeping
            return
        moving = np.flatnonzero(~np.isnan(self.lc_t0))
        self.moves_under_way = len(moving) > 0
        if len(moving):
            share = np.minimum((now_s + dt_s - self.lc_t0[moving]) / self.lc_dur[moving], 1.0)
            d0, d1 = self.lc_d0[moving], self.lc_d1[moving]
            self.d[moving] = d0 + (d1 - d0) * (1 - np.cos(np.pi * share)) / 2
            self.lc_t0[moving[share >= 1.0]] = np.nan
