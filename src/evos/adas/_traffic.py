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


def lanes_covered(d_m: np.ndarray, edges_m: np.ndarray, lane_width_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(rightmost, leftmost) lane each body covers: equal unless the vehicle straddles a lane line. ``edges_m`` is
    (2, n): the right and left edge relative to the centre, ``-width / 2`` and ``+width / 2``."""
    edges = np.floor((d_m + edges_m) / lane_width_m + 0.5).astype(np.int64)
    return edges[0], edges[1]  # both edges in one pass: numpy's cost is per call


def build_index(s_rear_m: np.ndarray, lane_lo: np.ndarray, lane_hi: np.ndarray) -> LaneIndex:
    """The sorted entries of all vehicles (one or two per vehicle).

    Called every step: array methods rather than numpy's Python-level wrappers (``np.flatnonzero``, ``np.argsort``
    cost about a microsecond more per call, as much as the work on 50 vehicles)."""
    n = len(s_rear_m)
    two = (lane_hi != lane_lo).nonzero()[0]
    if len(two) == 0:  # most steps: one entry per vehicle, the sort order is the vehicle column
        keys = lane_lo * LANE_KEY + s_rear_m
        order = keys.argsort(kind="stable")
        return LaneIndex(keys[order], order, lane_lo[order])
    vehicle = np.concatenate([np.arange(n), two])
    lane = np.concatenate([lane_lo, lane_hi[two]])
    keys = lane * LANE_KEY + s_rear_m[vehicle]
    order = keys.argsort(kind="stable")
    return LaneIndex(keys[order], vehicle[order], lane[order])


def leaders(index: LaneIndex, n: int, s_rear_m: np.ndarray) -> np.ndarray:
    """The nearest vehicle ahead (by rear position) in any lane a vehicle covers; -1 when none."""
    lead = np.empty(len(index.keys), dtype=np.int64)
    lead[-1] = -1
    lead[:-1] = np.where(index.lane[1:] == index.lane[:-1], index.vehicle[1:], -1)
    if len(lead) == n:  # most steps: nobody straddles a lane line, one entry per vehicle
        best = np.empty(n, dtype=np.int64)
        best[index.vehicle] = lead
        return best
    lead_s = np.where(lead >= 0, s_rear_m[lead], np.inf)
    order = np.argsort(-lead_s, kind="stable")  # a vehicle may have two entries: assign the nearer lead last
    best = np.full(n, -1, dtype=np.int64)
    best[index.vehicle[order]] = lead[order]
    return best


def neighbours_at(index: LaneIndex, lane: np.ndarray, s_rear_m: np.ndarray,
                  exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(leader, follower) a vehicle at ``s_rear_m`` would have in ``lane`` (-1: none), skipping ``exclude``.

    The leader is the first entry after the query's key, the follower the last one at or before it, each one entry
    further when that entry is the vehicle itself (a vehicle has at most one entry per lane). An entry of another
    lane ends the search: the sort puts lower lanes before and higher lanes after the query.
    """
    key = lane * LANE_KEY + s_rear_m
    i = np.searchsorted(index.keys, key, side="right") + 2  # into the entries padded with two "none" on each side
    vehicle = np.concatenate(([-1, -1], index.vehicle, [-1, -1]))
    entry_lane = np.concatenate(([lane.min() - 1] * 2, index.lane, [lane.max() + 1] * 2))
    lead_i = i + (vehicle[i] == exclude)
    foll_i = i - 1 - (vehicle[i - 1] == exclude)
    return (np.where(entry_lane[lead_i] == lane, vehicle[lead_i], -1),
            np.where(entry_lane[foll_i] == lane, vehicle[foll_i], -1))


def _tiled(x: np.ndarray, times: int) -> np.ndarray:
    """``np.tile`` for 1-D arrays at a quarter of its cost per call."""
    return np.concatenate((x,) * times)


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
        self._edges_m = np.multiply.outer((-0.5, 0.5), self.width)
        self._lo, self._hi = lanes_covered(self.d, self._edges_m, lane_width_m)
        self.lc_t0 = np.full(n, np.nan)  # lateral moves: start time, duration, from and to
        self.moves_under_way = False
        self.lc_dur = np.ones(n)
        self.lc_d0 = self.d.copy()
        self.lc_d1 = self.d.copy()
        self.idm, self.mobil = idm, mobil
        self.next_decision_s = 0.0
        self.lane_changes = 0

    def index(self) -> LaneIndex:
        """The lane index of this step. The lanes each body covers are kept between steps: they change only for
        the vehicles moving sideways (recomputed in ``move``) and the ego (index 0, moved from outside)."""
        w, half_width, d = self.lane_width_m, self.width[0] / 2, float(self.d[0])
        self._lo[0], self._hi[0] = math.floor((d - half_width) / w + 0.5), math.floor((d + half_width) / w + 0.5)
        return build_index(self.s, self._lo, self._hi)

    def idm_accelerations(self, index: LaneIndex) -> np.ndarray:
        lead = leaders(index, len(self.s), self.s)
        has = lead >= 0
        gap = np.where(has, self.s[lead] - self.s - self.length, np.inf)  # bumper to bumper
        return idm_accel(self.idm, self.v, self.v0, gap, np.where(has, self.v[lead], 0.0))

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
        p, m, n = self.idm, self.mobil, len(cand)
        s, v, v0, lane = self.s[cand], self.v[cand], self.v0[cand], self.lane[cand]
        # neighbours in the own lane, the left and the right lane at once (numpy's cost is per call, not per item)
        lead3, foll3 = neighbours_at(index, np.concatenate([lane, lane + 1, lane - 1]), _tiled(s, 3),
                                     _tiled(cand, 3))
        same_lead, old_foll, lead, foll = lead3[:n], foll3[:n], lead3[n:], foll3[n:]  # lead, foll: left then right
        s2, v2 = _tiled(s, 2), _tiled(v, 2)
        front_gap = np.where(lead >= 0, self.s[np.maximum(lead, 0)] - s2 - _tiled(self.length[cand], 2), np.inf)
        back_gap = self._gap_behind(foll, s2)
        ov, ov0 = speeds_of(self.v, old_foll), speeds_of(self.v0, old_foll) + 1e-9
        fv, fv0 = speeds_of(self.v, foll), speeds_of(self.v0, foll) + 1e-9
        lead_v = speeds_of(self.v, lead)
        # one IDM evaluation for all of MOBIL's cases: old follower now (a_o_old) and once we left (a_o_new); us in
        # the target lane (a_c_new); the new follower behind us (a_n_new) and as it is (a_n_old)
        acc = idm_accel(p, np.concatenate([ov, ov, v2, fv, fv]), np.concatenate([ov0, ov0, _tiled(v0, 2), fv0, fv0]),
                        np.concatenate([self._gap_behind(old_foll, s), self._gap_between(old_foll, same_lead),
                                        front_gap, back_gap, self._gap_between(foll, lead)]),
                        np.concatenate([v, speeds_of(self.v, same_lead), lead_v, v2, lead_v]))
        has_old, has_new = old_foll >= 0, foll >= 0
        a_o_old = np.where(has_old, acc[:n], 0.0)
        a_o_new = np.where(has_old, acc[n:2 * n], 0.0)
        a_c_new = acc[2 * n:4 * n]
        a_n_new = np.where(has_new, acc[4 * n:6 * n], 0.0)
        a_n_old = np.where(has_new, acc[6 * n:], 0.0)
        target = np.concatenate([lane + 1, lane - 1])
        safe = ((target >= lanes[0]) & (target <= lanes[1]) & (front_gap > p.min_gap_m) & (back_gap > p.min_gap_m)
                & (a_n_new >= -m.safe_decel_mps2))
        bias = np.repeat([m.keep_right_bias_mps2, -m.keep_right_bias_mps2], n)
        courtesy = a_n_new - a_n_old + _tiled(a_o_new, 2) - _tiled(a_o_old, 2)
        gain = a_c_new - _tiled(acc_now[cand], 2) + m.politeness * courtesy - m.threshold_mps2 - bias
        best_gain = np.zeros(n)
        best_lane = lane.copy()
        for side in (slice(0, n), slice(n, 2 * n)):  # left first; right only if it gains more
            better = safe[side] & (gain[side] > best_gain)
            best_gain = np.where(better, gain[side], best_gain)
            best_lane = np.where(better, target[side], best_lane)
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
        moving = (~np.isnan(self.lc_t0)).nonzero()[0]
        self.moves_under_way = len(moving) > 0
        if len(moving):
            share = np.minimum((now_s + dt_s - self.lc_t0[moving]) / self.lc_dur[moving], 1.0)
            d0, d1 = self.lc_d0[moving], self.lc_d1[moving]
            self.d[moving] = d0 + (d1 - d0) * (1 - np.cos(np.pi * share)) / 2
            self._lo, self._hi = lanes_covered(self.d, self._edges_m, self.lane_width_m)
            self.lc_t0[moving[share >= 1.0]] = np.nan
