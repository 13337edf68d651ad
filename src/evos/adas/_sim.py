"""The longitudinal road simulator: an ego with ACC/AEB and scripted targets, stepped at 50 or 100 Hz.

Deterministic for a given scenario (its seed drives the sensor noise). The ego is a point mass whose
acceleration follows the demand through a first-order actuator lag, within the real car's limits: the twin's
drive-force limit and road load (``evos.twin``) and the brake limit. Collision = the vehicle bodies overlap
longitudinally and laterally. Metrics are computed from ground truth; controllers only see the sensor.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from evos.adas._acc import AccCommand, AccController, AccMode, Observation
from evos.adas._aeb import AebCommand, AebController, AebStage
from evos.adas._params import LANE_WIDTH_M, AccParams, AebParams, EgoLimits
from evos.adas._scenario import Scenario, TargetSpec
from evos.adas._sensor import ObjectTruth, RadarSensor, visible
from evos.twin import Vehicle, drive_force_limit_n, load_vehicle

DRIVER_GAIN_PER_S = 0.8  # the driver holding a speed (as the twin's driver model)
DRIVER_ACCEL_MPS2 = (-3.5, 2.0)
FORCE_TABLE_STEP_MPS = 0.25
FORCE_TABLE_SIZE = 321  # up to 80 m/s
COMFORT_TOLERANCE = 1.02  # 2 % over an ISO 15622 limit counts as a breach (numerical noise below that)


@dataclass
class _Target:
    spec: TargetSpec
    x_m: float  # rear bumper, along the road (ego front bumper starts at 0)
    v_mps: float
    y_m: float
    a_mps2: float = 0.0
    until_mps: float = 0.0
    lateral: tuple[float, float, float, float] | None = None  # (start_s, duration_s, from_y, to_y)
    fired: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class Trace:
    """Time series of one run (arrays of equal length, one sample per step)."""

    time_s: np.ndarray
    ego_speed_mps: np.ndarray
    ego_accel_mps2: np.ndarray
    demand_mps2: np.ndarray
    gap_m: np.ndarray  # to the nearest target in the ego's lane (nan: none)
    target_speed_mps: np.ndarray  # shape (steps, targets)
    target_lateral_m: np.ndarray  # shape (steps, targets)
    aeb_stage: np.ndarray
    acc_active: np.ndarray


@dataclass(frozen=True)
class RunResult:
    """The outcome and metrics of one run (SI units)."""

    name: str
    collision: bool
    impact_speed_mps: float
    min_ttc_s: float
    min_time_gap_s: float
    max_decel_mps2: float
    max_jerk_mps3: float  # largest 1 s average jerk (ISO 15622 measures jerk over 1 s)
    comfort_breach: bool
    progress: float  # mean speed / set speed
    aeb_stage: str  # the strongest AEB stage reached
    fcw_time_s: float | None  # first forward collision warning
    duration_s: float
    trace: Trace

    def metrics(self) -> dict[str, object]:
        """The JSON-ready metrics (no trace)."""
        def num(x: float) -> float | None:
            return round(x, 3) if math.isfinite(x) else None

        return {"name": self.name, "collision": self.collision, "impact_speed_mps": round(self.impact_speed_mps, 3),
                "min_ttc_s": num(self.min_ttc_s), "min_time_gap_s": num(self.min_time_gap_s),
                "max_decel_mps2": round(self.max_decel_mps2, 3), "max_jerk_mps3": round(self.max_jerk_mps3, 3),
                "comfort_breach": self.comfort_breach, "progress": round(self.progress, 3),
                "aeb_stage": self.aeb_stage, "fcw_time_s": self.fcw_time_s, "duration_s": round(self.duration_s, 2)}


def _step_target(t: _Target, now_s: float, gap_m: float, dt_s: float) -> None:
    for i, action in enumerate(t.spec.actions):
        due = (action.at_s is not None and now_s >= action.at_s) or (
            action.at_gap_m is not None and gap_m <= action.at_gap_m)
        if t.fired[i] or not due:
            continue
        t.fired[i] = True
        if action.accel_mps2 is not None:
            t.a_mps2, t.until_mps = action.accel_mps2, action.until_speed_mps
        elif action.to_lane is not None:
            t.lateral = (now_s, action.duration_s, t.y_m, action.to_lane * LANE_WIDTH_M + action.to_offset_m)
    if t.a_mps2:
        v = t.v_mps + t.a_mps2 * dt_s
        done = v <= t.until_mps if t.a_mps2 < 0 else v >= t.until_mps
        if done:
            v, t.a_mps2 = t.until_mps, 0.0
        t.x_m += (t.v_mps + v) / 2 * dt_s
        t.v_mps = v
    else:
        t.x_m += t.v_mps * dt_s
    if t.lateral is not None:
        start, duration, y0, y1 = t.lateral
        share = min((now_s + dt_s - start) / duration, 1.0)
        t.y_m = y0 + (y1 - y0) * (1 - math.cos(math.pi * share)) / 2
        if share >= 1.0:
            t.lateral = None


def _measure(truth: tuple[ObjectTruth, ...], half_widths: list[float], ego_length_m: float,
             targets: list[_Target], speed_mps: float) -> tuple[float, float, float, float | None]:
    """(gap to the nearest car in lane m or nan, TTC s, time gap s, impact speed m/s if bodies touch)."""
    lane_gap, ttc, time_gap = math.nan, math.inf, math.inf
    impact: float | None = None
    for i, (t, obj) in enumerate(zip(targets, truth, strict=True)):
        overlapping = abs(obj.lateral_m) < half_widths[i]
        if overlapping and obj.range_m > 0 and obj.range_rate_mps < 0:
            ttc = min(ttc, obj.range_m / -obj.range_rate_mps)
        if abs(obj.lateral_m) <= LANE_WIDTH_M / 2 and obj.range_m > 0:
            lane_gap = obj.range_m if math.isnan(lane_gap) else min(lane_gap, obj.range_m)
            if speed_mps > 1.0:
                time_gap = min(time_gap, obj.range_m / speed_mps)
        if overlapping and -(ego_length_m + t.spec.length_m) < obj.range_m <= 0:
            impact = max(impact or 0.0, -obj.range_rate_mps)
    return lane_gap, ttc, time_gap, impact


def _in_windows(now_s: float, windows: tuple[tuple[float, float], ...]) -> bool:
    return any(a <= now_s < b for a, b in windows)


@functools.lru_cache(maxsize=8)
def _force_table(car: Vehicle) -> tuple[float, ...]:
    """The twin's drive-force limit (N) every 0.25 m/s: a call costs ~15 µs, the table is read by interpolation."""
    return tuple(drive_force_limit_n(car, i * FORCE_TABLE_STEP_MPS) for i in range(FORCE_TABLE_SIZE))


@dataclass
class _Ego:
    """The ego's longitudinal state and dynamics: point mass, first-order actuator lag, the car's limits."""

    car: Vehicle
    limits: EgoLimits
    lag: float  # share of the demand error the actuators close per step
    v_mps: float
    x_m: float = 0.0
    a_act_mps2: float = 0.0  # the actuators' acceleration (the lagged demand)
    a_mps2: float = 0.0  # the acceleration actually achieved (zero at standstill)

    def __post_init__(self) -> None:
        self._limit_n = _force_table(self.car)

    def drive_limit_n(self, speed_mps: float) -> float:
        """Maximum drive force at ``speed_mps`` (N), interpolated in the table."""
        pos = min(speed_mps / FORCE_TABLE_STEP_MPS, FORCE_TABLE_SIZE - 1.001)
        i = int(pos)
        return self._limit_n[i] + (self._limit_n[i + 1] - self._limit_n[i]) * (pos - i)

    def step(self, demand_mps2: float, dt_s: float) -> None:
        v, road = self.v_mps, self.car.resistance
        road_n = road.f0_n + road.f1_n_per_mps * v + road.f2_n_per_mps2 * v * v
        max_accel = (self.drive_limit_n(v) - road_n) / self.car.inertial_mass_kg
        target = min(max(demand_mps2, -self.limits.max_brake_mps2), max_accel)
        self.a_act_mps2 += (target - self.a_act_mps2) * self.lag
        v_new = max(v + self.a_act_mps2 * dt_s, 0.0)
        self.a_mps2 = (v_new - v) / dt_s  # zero at standstill whatever the brakes do
        self.x_m += (v + v_new) / 2 * dt_s
        self.v_mps = v_new


class _Functions:
    """ACC, AEB and the driver, arbitrated: AEB wins, then ACC, then the driver's brake or speed holding."""

    def __init__(self, scenario: Scenario, oracle: bool) -> None:
        ego = scenario.ego
        self.ego = ego
        self.oracle = oracle
        self.set_speed_mps = ego.set_speed_mps if ego.set_speed_mps is not None else ego.speed_mps
        self.acc = AccController(AccParams(set_speed_mps=self.set_speed_mps, time_gap_s=ego.time_gap_s))
        if ego.acc and not oracle:
            self.acc.switch_on()
            self.acc.engage()
        self.aeb = AebController(AebParams(), ego_width_m=ego.limits.width_m) if ego.aeb and not oracle else None

    def decide(self, obs: Observation, oracle_brake: bool) -> tuple[float, AebCommand | None, AccCommand]:
        """(acceleration demand m/s², AEB command, ACC command) for this step."""
        aeb_cmd = self.aeb.command(obs) if self.aeb is not None else None
        aeb_accel = aeb_cmd.accel_mps2 if aeb_cmd is not None else None
        if aeb_accel is not None:
            obs = Observation(obs.now_s, obs.speed_mps, obs.accel_mps2, obs.frame, obs.brake_pedal,
                              obs.accelerator_pedal, intervention=True)
        acc_cmd = self.acc.command(obs)
        holding = DRIVER_GAIN_PER_S * (self.ego.speed_mps - obs.speed_mps)
        if self.oracle:
            return (-self.ego.limits.max_brake_mps2 if oracle_brake else holding), None, acc_cmd
        if aeb_accel is not None:
            return aeb_accel, aeb_cmd, acc_cmd
        if acc_cmd.accel_mps2 is not None:
            return acc_cmd.accel_mps2, aeb_cmd, acc_cmd
        if obs.brake_pedal:
            return -self.ego.driver_brake_mps2, aeb_cmd, acc_cmd
        return min(max(holding, DRIVER_ACCEL_MPS2[0]), DRIVER_ACCEL_MPS2[1]), aeb_cmd, acc_cmd


def simulate(scenario: Scenario, *, oracle: bool = False, vehicle: Vehicle | None = None) -> RunResult:
    """Run a scenario to its end (duration, collision, or the Euro NCAP end condition).

    ``oracle``: instead of ACC/AEB, hold the initial speed and brake fully (at the brake limit, through the
    actuator lag) from the first moment the sensor could report (within range and field of view, after its
    latency) an object overlapping the ego's path that the ego closes in on or that brakes — the physical best
    case used to mark a test as unavoidable. ``vehicle`` saves loading the preset again.
    """
    limits = scenario.ego.limits
    dt = 1.0 / scenario.rate_hz
    ego = _Ego(vehicle or load_vehicle(scenario.ego.vehicle), limits, 1.0 - math.exp(-dt / limits.actuator_tau_s),
               scenario.ego.speed_mps)
    sensor = RadarSensor(scenario.sensor, np.random.default_rng(scenario.seed))
    functions = _Functions(scenario, oracle)
    targets = [_Target(s, s.gap_m, s.speed_mps, s.lateral_m(limits.width_m), fired=[False] * len(s.actions))
               for s in scenario.targets]
    half_widths = [(limits.width_m + t.spec.width_m) / 2 for t in targets]
    rows: list[tuple[float, ...]] = []
    tgt_rows: list[list[float]] = []
    collision, impact, min_ttc, min_tg = False, 0.0, math.inf, math.inf
    max_stage, fcw_time, braked = AebStage.IDLE, None, False
    oracle_from_s: float | None = None
    steps = round(scenario.duration_s * scenario.rate_hz)
    k = 0
    for k in range(steps + 1):
        now, v = k * dt, ego.v_mps
        truth = tuple(ObjectTruth(i, t.x_m - ego.x_m, t.v_mps - v, t.a_mps2 - ego.a_mps2, t.y_m, t.spec.width_m)
                      for i, t in enumerate(targets))
        frame = sensor.measure(now, truth, healthy=not _in_windows(now, scenario.sensor_fault))
        obs = Observation(now, v, ego.a_mps2, frame, brake_pedal=_in_windows(now, scenario.ego.brake_pedal))
        if oracle and oracle_from_s is None and _threat_visible(scenario, truth, targets, half_widths):
            oracle_from_s = now + scenario.sensor.latency_steps * dt
        demand, aeb_cmd, acc_cmd = functions.decide(obs, oracle_from_s is not None and now >= oracle_from_s - 1e-9)
        if aeb_cmd is not None:
            max_stage = max(max_stage, aeb_cmd.stage)
            fcw_time = round(now, 3) if fcw_time is None and aeb_cmd.warning else fcw_time
            braked = braked or aeb_cmd.accel_mps2 is not None
        lane_gap, ttc, time_gap, impact_now = _measure(truth, half_widths, limits.length_m, targets, v)
        min_ttc, min_tg = min(min_ttc, ttc), min(min_tg, time_gap)
        if impact_now is not None:
            collision, impact = True, impact_now
        acc_alone = acc_cmd.mode is AccMode.ACTIVE and (aeb_cmd is None or aeb_cmd.accel_mps2 is None)
        rows.append((now, v, ego.a_mps2, demand, lane_gap, float(aeb_cmd.stage if aeb_cmd else 0), float(acc_alone)))
        tgt_rows.append([t.v_mps for t in targets] + [t.y_m for t in targets])
        if collision or k == steps or (scenario.end_when_matched and braked and _matched(truth, half_widths, v)):
            break
        ego.step(demand, dt)
        for t in targets:
            _step_target(t, now, t.x_m - ego.x_m, dt)
    return _result(scenario, rows, tgt_rows, collision, impact, min_ttc, min_tg, max_stage, fcw_time,
                   functions.set_speed_mps, k * dt)


def _threat_visible(scenario: Scenario, truth: tuple[ObjectTruth, ...], targets: list[_Target],
                    half_widths: list[float]) -> bool:
    """Whether the sensor can see an object in the ego's path that the ego closes in on or that brakes (truth)."""
    return any(visible(scenario.sensor, o) and abs(o.lateral_m) < half_widths[i]
               and (o.range_rate_mps < -0.01 or targets[i].a_mps2 < -0.01) for i, o in enumerate(truth))


def _matched(truth: tuple[ObjectTruth, ...], half_widths: list[float], speed_mps: float) -> bool:
    """Euro NCAP's end of a test: the ego stopped or is no faster than the object in its path."""
    ahead = [speed_mps + o.range_rate_mps for o in truth
             if o.range_m > 0 and abs(o.lateral_m) < half_widths[o.object_id]]
    return speed_mps <= 0.0 or (bool(ahead) and speed_mps <= min(ahead) + 1e-9)


def _result(scenario: Scenario, rows: list[tuple[float, ...]], tgt_rows: list[list[float]], collision: bool,
            impact: float, min_ttc: float, min_tg: float,
            max_stage: AebStage, fcw_time: float | None, set_speed: float, duration_s: float) -> RunResult:
    arr = np.array(rows, dtype=float)
    n_targets = len(scenario.targets)
    tgt = np.array(tgt_rows, dtype=float).reshape(len(rows), 2 * n_targets)
    trace = Trace(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], tgt[:, :n_targets], tgt[:, n_targets:],
                  arr[:, 5].astype(int), arr[:, 6].astype(bool))
    jerk, breach = _comfort(trace, scenario.rate_hz)
    mean_speed = float(trace.ego_speed_mps.mean())
    return RunResult(scenario.name, collision, impact, min_ttc, min_tg,
                     max(float(-trace.ego_accel_mps2.min()), 0.0), jerk, breach,
                     mean_speed / set_speed if set_speed > 0 else 1.0, max_stage.name.lower(), fcw_time,
                     duration_s, trace)


def _comfort(trace: Trace, rate_hz: float) -> tuple[float, bool]:
    """(largest 1 s average jerk m/s³, whether ACC broke an ISO 15622 limit while it alone was in control)."""
    p = AccParams()
    window = round(rate_hz)
    a = trace.ego_accel_mps2
    if len(a) <= window:
        return 0.0, False
    jerk = np.abs(a[window:] - a[:-window])  # over 1 s: m/s² per s
    # a window counts for comfort only if ACC alone controlled the car throughout it and the second before it
    # (the actuators still carry an AEB demand for about 4 time constants)
    alone = np.convolve(trace.acc_active.astype(float), np.ones(2 * window + 1), "valid") >= 2 * window + 1
    alone = np.concatenate([np.zeros(len(a) - window - len(alone), dtype=bool), alone])
    speed = trace.ego_speed_mps[window:]
    limit = np.where(speed >= p.jerk_speed_mps, p.max_jerk_mps3, p.max_jerk_low_mps3)
    breach = bool(np.any(alone & (jerk > limit * COMFORT_TOLERANCE)))
    a_now = a[window:]
    breach |= bool(np.any(alone & ((a_now > p.max_accel_mps2 * COMFORT_TOLERANCE)
                                   | (a_now < -p.max_decel_mps2 * COMFORT_TOLERANCE))))
    return float(jerk.max()), breach
