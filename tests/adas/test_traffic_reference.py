"""The vectorised traffic step (sorted lane index, leaders by neighbour in the sort, MOBIL for all lanes in one batch,
lanes covered kept between steps) against a straightforward reference: every vehicle compared with every other,
neighbours found by scanning, lanes covered computed from the positions every time."""

from __future__ import annotations

import math

import numpy as np

from evos.adas._traffic import Fleet, IdmParams, MobilParams, TrafficSpec, idm_accel, place_traffic

LANE_WIDTH_M = 3.5
LANES = (0, 3)
DT_S = 1 / 15


def _idm(p: IdmParams, v: float, v0: float, gap_m: float, lead_v: float) -> float:
    return float(idm_accel(p, np.array([v]), np.array([v0]), np.array([gap_m]), np.array([lead_v]))[0])


def _covers(f: Fleet, i: int, lane: int) -> bool:
    """Whether vehicle i's body covers ``lane`` (from its position, no cache)."""
    lo = math.floor((f.d[i] - f.width[i] / 2) / LANE_WIDTH_M + 0.5)
    hi = math.floor((f.d[i] + f.width[i] / 2) / LANE_WIDTH_M + 0.5)
    return lo <= lane <= hi


def _neighbours(f: Fleet, lane: int, s_m: float, exclude: int) -> tuple[int, int]:
    """(leader, follower) a vehicle with its rear at ``s_m`` would have in ``lane``: the nearest rear ahead, the
    nearest rear behind or level; -1 for none."""
    others = [j for j in range(len(f.s)) if j != exclude and _covers(f, j, lane)]
    ahead = [j for j in others if f.s[j] > s_m]
    behind = [j for j in others if f.s[j] <= s_m]
    return (min(ahead, key=lambda j: f.s[j], default=-1), max(behind, key=lambda j: f.s[j], default=-1))


def _gap(f: Fleet, follower: int, leader_s_m: float) -> float:
    return leader_s_m - f.s[follower] - f.length[follower]


def _reference_accels(f: Fleet) -> np.ndarray:
    """IDM with each vehicle's leader = the nearest vehicle ahead in any lane its body covers."""
    acc = np.zeros(len(f.s))
    for i in range(len(f.s)):
        lanes = [lane for lane in range(LANES[0] - 1, LANES[1] + 2) if _covers(f, i, lane)]
        leads = [_neighbours(f, lane, f.s[i], i)[0] for lane in lanes]
        lead = min((j for j in leads if j >= 0), key=lambda j: f.s[j], default=-1)
        gap, lead_v = (_gap(f, i, f.s[lead]), f.v[lead]) if lead >= 0 else (math.inf, 0.0)
        acc[i] = _idm(f.idm, f.v[i], f.v0[i], gap, lead_v)
    return acc


def _reference_mobil(f: Fleet, now_s: float, acc_now: np.ndarray) -> None:
    """MOBIL as Kesting, Treiber & Helbing (2007), one vehicle at a time; left is tried first."""
    if now_s < f.next_decision_s:
        return
    f.next_decision_s = now_s + f.mobil.decision_interval_s
    p, m = f.idm, f.mobil
    changes = []
    for i in np.flatnonzero(f.idm_mask & np.isnan(f.lc_t0)):
        s, lane = f.s[i], int(f.lane[i])
        same_lead, old_foll = _neighbours(f, lane, s, i)
        a_o_old = a_o_new = 0.0
        if old_foll >= 0:
            v0_f = f.v0[old_foll] + 1e-9
            a_o_old = _idm(p, f.v[old_foll], v0_f, _gap(f, old_foll, s), f.v[i])
            a_o_new = _idm(p, f.v[old_foll], v0_f, _gap(f, old_foll, f.s[same_lead]) if same_lead >= 0 else math.inf,
                           f.v[same_lead] if same_lead >= 0 else 0.0)
        best_gain, best_lane = 0.0, lane
        for direction, bias in ((1, m.keep_right_bias_mps2), (-1, -m.keep_right_bias_mps2)):
            target = lane + direction
            lead, foll = _neighbours(f, target, s, i)
            front = f.s[lead] - s - f.length[i] if lead >= 0 else math.inf
            back = s - f.s[foll] - f.length[foll] if foll >= 0 else math.inf
            a_c_new = _idm(p, f.v[i], f.v0[i], front, f.v[lead] if lead >= 0 else 0.0)
            a_n_new = a_n_old = 0.0
            if foll >= 0:
                v0_f = f.v0[foll] + 1e-9
                a_n_new = _idm(p, f.v[foll], v0_f, back, f.v[i])
                a_n_old = _idm(p, f.v[foll], v0_f, _gap(f, foll, f.s[lead]) if lead >= 0 else math.inf,
                               f.v[lead] if lead >= 0 else 0.0)
            safe = (LANES[0] <= target <= LANES[1] and front > p.min_gap_m and back > p.min_gap_m
                    and a_n_new >= -m.safe_decel_mps2)
            gain = (a_c_new - acc_now[i] + m.politeness * (a_n_new - a_n_old + a_o_new - a_o_old)
                    - m.threshold_mps2 - bias)
            if safe and gain > best_gain:
                best_gain, best_lane = gain, target
        if best_lane != lane:
            changes.append((i, best_lane))
    for i, lane in changes:  # decided on the same snapshot, as the vectorised version
        f.start_lateral_move(i, now_s, lane * LANE_WIDTH_M, m.lane_change_s)
        f.lane_changes += 1


def _fleet(seed: int) -> Fleet:
    spec = TrafficSpec(vehicles=50, from_m=-200.0, to_m=600.0)
    arrays = place_traffic(spec, tuple(range(LANES[0], LANES[1] + 1)), LANE_WIDTH_M, 4.7,
                           np.random.default_rng(seed))
    ego = {"s": -4.7, "d": LANE_WIDTH_M, "v": 25.0, "v0": 25.0, "length": 4.7, "width": 1.9}  # index 0, unmoved
    arrays = {k: np.concatenate([[ego[k]], v]) for k, v in arrays.items()}
    mask = np.ones(len(arrays["s"]), dtype=bool)
    mask[0] = False
    # a less polite, more eager MOBIL than the default, so that many cars change lanes (and straddle lane lines)
    return Fleet(arrays, mask, LANE_WIDTH_M, IdmParams(), MobilParams(politeness=0.0, threshold_mps2=0.05))


def test_vectorised_traffic_step_equals_the_reference() -> None:
    for seed in (0, 1):
        fast, ref = _fleet(seed), _fleet(seed)
        straddled = 0
        for k in range(300):
            now_s = k * DT_S
            index = fast.index()
            acc = fast.idm_accelerations(index)
            fast.a[fast.idm_mask] = acc[fast.idm_mask]
            fast.decide_lanes(now_s, index, acc, LANES)
            fast.move(now_s, DT_S, None)
            acc_ref = _reference_accels(ref)
            np.testing.assert_allclose(acc, acc_ref, rtol=0, atol=1e-12)
            ref.a[ref.idm_mask] = acc_ref[ref.idm_mask]
            _reference_mobil(ref, now_s, acc_ref)
            ref.move(now_s, DT_S, None)
            assert np.array_equal(fast.lane, ref.lane)
            np.testing.assert_allclose(fast.s, ref.s, rtol=0, atol=1e-9)
            np.testing.assert_allclose(fast.d, ref.d, rtol=0, atol=1e-12)
            straddled += len(index.keys) > len(fast.s)
        assert fast.lane_changes == ref.lane_changes > 10  # MOBIL was exercised
        assert straddled > 50  # and so were vehicles covering two lanes
