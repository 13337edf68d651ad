"""Built-in test suites: Euro NCAP AEB car-to-car rear (CCRs, CCRm, CCRb), each run with AEB only and with ACC on.

Test matrix as Euro NCAP AEB C2C test protocol v3.0.2 (as implemented by open test suites): CCRs ego 10-50 km/h
in 5 km/h steps against a stationary target at overlaps -75/-50/50/75/100 %; CCRm ego 30-80 km/h against a
20 km/h target at 100 and ±50 %; CCRb both at 50 km/h, the target braking at 2 or 6 m/s² from a gap of 12 or
40 m. CCRs/CCRm start at TTC 4 s. With AEB only the driver holds the initial speed and the run ends as Euro NCAP's
does (ego no faster than the target, or contact); with ACC on the set speed is the initial speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from evos.adas._params import CAR_LENGTH_M, CAR_WIDTH_M, LANE_WIDTH_M, SensorParams
from evos.adas._road import Road, Segment
from evos.adas._scenario import EgoSpec, Scenario, TargetAction, TargetSpec
from evos.adas._sim import RunResult, simulate
from evos.adas._traffic import TrafficSpec
from evos.errors import InvalidArgumentError
from evos.twin import Vehicle, load_vehicle

KMH = 1 / 3.6
CCRS_OVERLAPS_PCT = (-75.0, -50.0, 50.0, 75.0, 100.0)
CCRM_OVERLAPS_PCT = (-50.0, 50.0, 100.0)
START_TTC_S = 4.0
CCRB_BRAKE_AT_S = 1.0  # the target brakes after 1 s of steady driving
CCRB_DURATION_S = 10.0


@dataclass(frozen=True)
class SuiteRun:
    """One cell of a suite: its scenario, the run, and whether the physical best case still collides."""

    scenario: Scenario
    result: RunResult
    unavoidable: bool
    best_case_impact_mps: float

    def row(self) -> dict[str, object]:
        return {**self.result.metrics(), "unavoidable": self.unavoidable, **dict(self.scenario.tags)}


def _kmh(v: float) -> str:
    return f"{v:g}"


def euro_ncap_ccr() -> list[Scenario]:
    """The Euro NCAP CCR matrix, AEB only (``acc: false``); see :func:`with_acc` for the ACC-on variant."""
    cells: list[Scenario] = []
    for ego_kmh in range(10, 55, 5):
        v = ego_kmh * KMH
        for overlap in CCRS_OVERLAPS_PCT:
            cells.append(Scenario(
                f"CCRs {ego_kmh} km/h {overlap:+g}%", EgoSpec(speed_mps=v),
                (TargetSpec(gap_m=v * START_TTC_S, speed_mps=0.0, overlap_pct=overlap),),
                duration_s=START_TTC_S + 6.0, end_when_matched=True,
                tags={"test": "CCRs", "ego_kmh": _kmh(ego_kmh), "target_kmh": "0", "overlap_pct": f"{overlap:g}"}))
    for ego_kmh in range(30, 85, 5):
        v, vt = ego_kmh * KMH, 20 * KMH
        for overlap in CCRM_OVERLAPS_PCT:
            cells.append(Scenario(
                f"CCRm {ego_kmh} km/h {overlap:+g}%", EgoSpec(speed_mps=v),
                (TargetSpec(gap_m=(v - vt) * START_TTC_S, speed_mps=vt, overlap_pct=overlap),),
                duration_s=START_TTC_S + 8.0, end_when_matched=True,
                tags={"test": "CCRm", "ego_kmh": _kmh(ego_kmh), "target_kmh": "20", "overlap_pct": f"{overlap:g}"}))
    for decel in (2.0, 6.0):
        for gap in (12.0, 40.0):
            v = 50 * KMH
            action = TargetAction(at_s=CCRB_BRAKE_AT_S, accel_mps2=-decel)
            cells.append(Scenario(
                f"CCRb {decel:g} m/s² {gap:g} m", EgoSpec(speed_mps=v),
                (TargetSpec(gap_m=gap, speed_mps=v, actions=(action,)),),
                duration_s=CCRB_DURATION_S, end_when_matched=True,
                tags={"test": "CCRb", "ego_kmh": "50", "target_kmh": "50", "overlap_pct": "100",
                      "target_decel_mps2": f"{decel:g}", "gap_m": f"{gap:g}"}))
    return cells


# EU 2022/1426 (ADS type approval, referring to UN R157's cut-in assessment), as tabulated by a German
# authority: a collision must be avoided when the time to collision at cut-in is at least this (s), by the
# relative speed (km/h) of the car cutting in (shared/notes/peers.md).
CUT_IN_TTC_S = {10: 0.48, 20: 0.71, 30: 0.94, 40: 1.18, 50: 1.41, 60: 1.64}
CUT_IN_EGO_KMH = 100.0
CUT_IN_START_S = 1.0  # the target starts its lane change after this
CUT_IN_DURATION_S = 3.0  # lateral move over one lane (cosine profile, peak ~1.8 m/s)
# A car cutting in close ahead is beside the ego, outside a ±30° mid-range beam: cut-ins need the near-range
# beam of a front radar, ±60° (e.g. Continental ARS 408-21 datasheet: near range ±60°, 0.2-70 m).
NEAR_RANGE_SENSOR = SensorParams(fov_deg=120.0)


def _overlap_share(lane_m: float, half_widths_m: float) -> float:
    """Share of a cosine lane change (from ``lane_m`` to 0) at which the bodies start to overlap laterally."""
    return math.acos(1 - 2 * (lane_m - half_widths_m) / lane_m) / math.pi


def un_r157_cut_in() -> list[Scenario]:
    """Cut-ins from the next lane at relative speeds 10-60 km/h, timed so the TTC at the moment the bodies
    start to overlap is the regulation's value (and 0.5 s more); the ego drives at 100 km/h."""
    cells: list[Scenario] = []
    v_ego = CUT_IN_EGO_KMH * KMH
    overlap_at_s = CUT_IN_START_S + _overlap_share(LANE_WIDTH_M, CAR_WIDTH_M) * CUT_IN_DURATION_S
    for dv_kmh, ttc_s in CUT_IN_TTC_S.items():
        for extra_s in (0.0, 0.5):
            dv = dv_kmh * KMH
            gap_m = (ttc_s + extra_s) * dv + dv * overlap_at_s  # the gap closes at dv until the overlap
            action = TargetAction(at_s=CUT_IN_START_S, to_lane=0, duration_s=CUT_IN_DURATION_S)
            cells.append(Scenario(
                f"cut-in {dv_kmh} km/h TTC {ttc_s + extra_s:.2f} s", EgoSpec(speed_mps=v_ego),
                (TargetSpec(gap_m=gap_m, speed_mps=v_ego - dv, lane=1, actions=(action,)),),
                duration_s=overlap_at_s + 8.0, end_when_matched=True, sensor=NEAR_RANGE_SENSOR,
                tags={"test": "cut-in", "ego_kmh": f"{CUT_IN_EGO_KMH:g}", "relative_kmh": str(dv_kmh),
                      "ttc_at_cut_in_s": f"{ttc_s + extra_s:.2f}"}))
    return cells


def with_acc(scenario: Scenario, end_at_standstill: bool = False) -> Scenario:
    """The same cell with ACC on at the initial speed (AEB stays on); it runs to its duration, or with
    ``end_at_standstill`` ends as the AEB run does once the ego stands behind the object (then it would only wait
    there, which ``progress`` would count as lost progress)."""
    return replace(scenario, name=f"{scenario.name} ACC", ego=replace(scenario.ego, acc=True),
                   end_when_matched=end_at_standstill and scenario.end_when_matched,
                   tags={**scenario.tags, "mode": "acc"})


CUT_OUT_EGO_KMH = (50, 70, 90, 110)
CUT_OUT_ADVANCE_S = (2.5, 3.5)  # the lead starts its lane change this long before it would reach the stopped car
CUT_OUT_DURATION_S = 3.0
FOLLOW_TIME_GAP_S = 1.8


def cut_out() -> list[Scenario]:
    """A lead driving ahead at the ego's speed (1.8 s gap) changes lane and reveals a stopped car."""
    cells: list[Scenario] = []
    for ego_kmh in CUT_OUT_EGO_KMH:
        v = ego_kmh * KMH
        lead_gap = 4.0 + FOLLOW_TIME_GAP_S * v
        for advance_s in CUT_OUT_ADVANCE_S:
            start_s = 2.0
            stopped_gap = lead_gap + CAR_LENGTH_M + v * (start_s + advance_s)
            lead = TargetSpec(name="lead", gap_m=lead_gap, speed_mps=v,
                              actions=(TargetAction(at_s=start_s, to_lane=1, duration_s=CUT_OUT_DURATION_S),))
            cells.append(Scenario(
                f"cut-out {ego_kmh} km/h {advance_s:g} s", EgoSpec(speed_mps=v),
                (lead, TargetSpec(name="stopped", gap_m=stopped_gap, speed_mps=0.0)),
                duration_s=start_s + advance_s + 10.0, end_when_matched=True, sensor=NEAR_RANGE_SENSOR,
                tags={"test": "cut-out", "ego_kmh": str(ego_kmh), "advance_s": f"{advance_s:g}"}))
    return cells


QUEUE_CARS = 3
QUEUE_SPACING_S = 1.0  # each car in the queue reacts this much after the one ahead of it


def stop_and_go() -> list[Scenario]:
    """ACC behind a queue of three cars that brake to a stop, wait 6 s and drive off again (front car first)."""
    cells: list[Scenario] = []
    for speed in (10.0, 15.0, 20.0):
        for time_gap in (1.0, 1.8, 2.5):
            gap = 4.0 + time_gap * speed
            cars = []
            for k in range(QUEUE_CARS):  # k = 0 is the nearest
                lag = (QUEUE_CARS - 1 - k) * QUEUE_SPACING_S
                stop_at = 5.0 + lag
                go_at = 5.0 + (QUEUE_CARS - 1) * QUEUE_SPACING_S + speed / 2.0 + 6.0 + lag
                cars.append(TargetSpec(name=f"queue{k}", gap_m=gap + k * (CAR_LENGTH_M + 25.0), speed_mps=speed,
                                       actions=(TargetAction(at_s=stop_at, accel_mps2=-2.0, until_speed_mps=0.0),
                                                TargetAction(at_s=go_at, accel_mps2=1.5, until_speed_mps=speed))))
            cells.append(Scenario(
                f"stop-and-go {speed:g} m/s gap {time_gap:g} s",
                EgoSpec(speed_mps=speed, acc=True, time_gap_s=time_gap), tuple(cars), duration_s=45.0,
                tags={"test": "stop-and-go", "mode": "acc", "speed_mps": f"{speed:g}", "time_gap_s": f"{time_gap:g}"}))
    return cells


CURVE_RADII_M = (250.0, 500.0, 1000.0)
CURVE_LAT_ACCEL_MPS2 = 2.0  # the speed for each radius: v²/R = 2 m/s², capped at 130 km/h
CURVE_LENGTH_M = 600.0


def curves() -> list[Scenario]:
    """Lane centring alone on left and right curves of 250-1000 m radius (straight 100 m before and after)."""
    cells: list[Scenario] = []
    for radius in CURVE_RADII_M:
        v = min(math.sqrt(CURVE_LAT_ACCEL_MPS2 * radius), 130 * KMH)
        for sign, side in ((1, "left"), (-1, "right")):
            road = Road(segments=(Segment(100.0), Segment(CURVE_LENGTH_M, sign / radius), Segment(100.0)))
            cells.append(Scenario(
                f"curve {radius:g} m {side} {v * 3.6:.0f} km/h", EgoSpec(speed_mps=v, lane_centring=True),
                road=road, duration_s=(CURVE_LENGTH_M + 300.0) / v, rate_hz=50.0,
                tags={"test": "curve", "mode": "pilot", "radius_m": f"{radius:g}", "side": side}))
    return cells


DENSE_SEEDS = (0, 1, 2, 3, 4)


def dense_traffic() -> list[Scenario]:
    """The highway pilot (120 km/h set speed, automatic overtaking) in IDM/MOBIL traffic on 4 lanes."""
    sensor = SensorParams(fov_deg=120.0, rear_range_m=80.0)  # near-range beam and rear corner radars
    return [Scenario(
        f"dense traffic seed {seed}",
        EgoSpec(speed_mps=25.0, set_speed_mps=33.3, lane_centring=True, auto_lane_change=True),
        road=Road(lanes=4, ego_lane=1), traffic=TrafficSpec(vehicles=60, from_m=-300.0, to_m=1200.0),
        duration_s=90.0, rate_hz=20.0, seed=seed, sensor=sensor,
        tags={"test": "dense-traffic", "mode": "pilot", "seed": str(seed)}) for seed in DENSE_SEEDS]


# name -> (cells, whether each cell runs twice: AEB only, then with ACC on; whether the ACC run ends at standstill)
SUITES: dict[str, tuple[Callable[[], list[Scenario]], bool, bool]] = {
    "euro-ncap-ccr": (euro_ncap_ccr, True, False), "un-r157-cut-in": (un_r157_cut_in, True, False),
    "cut-out": (cut_out, True, True), "stop-and-go": (stop_and_go, False, False), "curves": (curves, False, False),
    "dense-traffic": (dense_traffic, False, False)}


def suite_scenarios(name: str) -> list[Scenario]:
    """Every scenario of a built-in suite (the AEB suites: each cell with AEB only, then with ACC on)."""
    if name not in SUITES:
        raise InvalidArgumentError(f"unknown suite {name!r}: known {', '.join(SUITES)}")
    factory, both, end_at_standstill = SUITES[name]
    if not both:
        return factory()
    cells = [replace(s, tags={**s.tags, "mode": "aeb"}) for s in factory()]
    return cells + [with_acc(s, end_at_standstill) for s in cells]


def best_case_impact_mps(scenario: Scenario, vehicle: Vehicle | None = None) -> float:
    """Impact speed (m/s) if the ego braked at its limit from the first sight of an object in its path (0: none)."""
    if not scenario.targets and scenario.traffic.vehicles == 0:
        return 0.0  # nothing on the road to hit
    best = simulate(replace(scenario, end_when_matched=False), oracle=True, vehicle=vehicle)
    return best.impact_speed_mps if best.collision else 0.0


def run_suite(name: str, progress: Callable[[int, int], None] | None = None) -> list[SuiteRun]:
    """Run a built-in suite; the best case is computed once per cell and shared by its AEB and ACC runs (not for
    the traffic suites, where it would mean nothing)."""
    scenarios = suite_scenarios(name)
    vehicle = load_vehicle(scenarios[0].ego.vehicle)
    best: dict[str, float] = {}
    runs = []
    for i, scenario in enumerate(scenarios):
        cell = scenario.name.removesuffix(" ACC")
        if cell not in best:
            best[cell] = best_case_impact_mps(scenario, vehicle) if scenario.traffic.vehicles == 0 else 0.0
        runs.append(SuiteRun(scenario, simulate(scenario, vehicle=vehicle), best[cell] > 0, best[cell]))
        if progress is not None:
            progress(i + 1, len(scenarios))
    return runs


def summary(runs: list[SuiteRun]) -> dict[str, object]:
    """Counts per mode: runs, collisions, collisions outside unavoidable cells, comfort breaches."""
    out: dict[str, object] = {"runs": len(runs), "unavoidable_cells": sorted(
        {r.scenario.name.removesuffix(" ACC") for r in runs if r.unavoidable})}
    for mode in sorted({r.scenario.tags.get("mode", "") for r in runs}):
        mine = [r for r in runs if r.scenario.tags.get("mode") == mode]
        out[mode] = {
            "runs": len(mine),
            "collisions": sum(r.result.collision for r in mine),
            "avoidable_collisions": sum(r.result.collision and not r.unavoidable for r in mine),
            "max_impact_speed_mps": round(max((r.result.impact_speed_mps for r in mine), default=0.0), 3),
            "comfort_breaches": sum(r.result.comfort_breach for r in mine),
            "min_ttc_s": round(min((r.result.min_ttc_s for r in mine), default=math.inf), 3),
            "max_decel_mps2": round(max((r.result.max_decel_mps2 for r in mine), default=0.0), 3),
            "max_lat_accel_mps2": round(max((r.result.max_lat_accel_mps2 for r in mine), default=0.0), 3),
            "max_lateral_error_rms_m": round(max((r.result.lateral_error_rms_m for r in mine), default=0.0), 4),
            "mean_progress": round(sum(r.result.progress for r in mine) / max(len(mine), 1), 3),
            "lane_changes": sum(r.result.lane_changes for r in mine),
        }
    return out
