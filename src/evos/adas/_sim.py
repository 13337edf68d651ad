"""The road simulator: an ego with the driver-assistance functions, scripted targets and IDM/MOBIL traffic.

Deterministic for a given scenario (its seed drives sensor noise and traffic placement). All vehicles but the ego
live in numpy arrays (:class:`~evos.adas._traffic.Fleet`) stepped together in road (Frenet) coordinates. The ego's
longitudinal motion is a point mass whose acceleration follows the demand through a first-order actuator lag
within the real car's limits (the twin's drive-force limit and road load, ``evos.twin``; the brake limit); its
lateral motion is a kinematic bicycle model in the Frenet frame (path curvature through a steering lag). Collision =
the bodies overlap longitudinally and laterally. Metrics come from ground truth; controllers only see the sensors.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from evos.adas._acc import AccCommand, AccController, AccMode, Observation
from evos.adas._aeb import AebController, AebStage
from evos.adas._lateral import LaneCentring, LaneChangeState, LaneFrame, LaneSensor
from evos.adas._params import AccParams, AebParams, EgoLimits
from evos.adas._pilot import HighwayPilot, PilotParams
from evos.adas._scenario import Scenario
from evos.adas._sensor import ObjectTruth, RadarSensor, visible
from evos.adas._traffic import Fleet, place_traffic
from evos.twin import DRIVER_MODEL, Chassis, Vehicle, drive_force_limit_n, load_vehicle

FORCE_TABLE_STEP_MPS = 0.25
FORCE_TABLE_SIZE = 321  # up to 80 m/s
COMFORT_TOLERANCE = 1.02  # 2 % over a limit counts as a breach (numerical noise below that)
LAT_JERK_WINDOW_S = 0.5  # assumed: lateral jerk is judged as the change of lateral acceleration over 0.5 s
ISO_LAT_ACCEL_MPS2 = 3.0  # ISO 11270 (opendbc ISO_LATERAL_ACCEL)
ISO_LAT_JERK_MPS3 = 5.0  # ISO 11270 (opendbc ISO_LATERAL_JERK)
CAMERA_PREVIEW_S = 0.5  # assumed: lane curvature is reported for the road 0.5 s ahead
LC_CODES = {s: i for i, s in enumerate(LaneChangeState)}
FEW_OBJECTS = 8  # up to this many objects the contact check runs in plain Python (measured: 1.2 vs 2.1 µs for one)


@dataclass(frozen=True)
class Trace:
    """Time series of one run (arrays of equal length, one sample per step)."""

    time_s: np.ndarray
    ego_speed_mps: np.ndarray
    ego_accel_mps2: np.ndarray
    demand_mps2: np.ndarray
    gap_m: np.ndarray  # to the nearest vehicle in the ego's lane (nan: none)
    target_speed_mps: np.ndarray  # shape (steps, scripted targets)
    target_lateral_m: np.ndarray  # shape (steps, scripted targets), road frame (0: the ego's starting lane)
    aeb_stage: np.ndarray
    acc_active: np.ndarray  # ACC alone controlled the acceleration
    ego_lateral_m: np.ndarray  # road frame
    lat_accel_mps2: np.ndarray
    lateral_active: np.ndarray  # lane centring steered
    lane_change: np.ndarray  # LaneChangeState index


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
    lateral_error_rms_m: float = 0.0  # from the lane centre, while lane centring and not changing lanes
    max_lat_accel_mps2: float = 0.0
    max_lat_jerk_mps3: float = 0.0
    lane_changes: int = 0  # completed by the ego
    lane_changes_aborted: int = 0
    traffic_lane_changes: int = 0

    def metrics(self) -> dict[str, object]:
        """The JSON-ready metrics (no trace)."""
        def num(x: float) -> float | None:
            return round(x, 3) if math.isfinite(x) else None

        return {"name": self.name, "collision": self.collision, "impact_speed_mps": round(self.impact_speed_mps, 3),
                "min_ttc_s": num(self.min_ttc_s), "min_time_gap_s": num(self.min_time_gap_s),
                "max_decel_mps2": round(self.max_decel_mps2, 3), "max_jerk_mps3": round(self.max_jerk_mps3, 3),
                "lateral_error_rms_m": round(self.lateral_error_rms_m, 4),
                "max_lat_accel_mps2": round(self.max_lat_accel_mps2, 3),
                "max_lat_jerk_mps3": round(self.max_lat_jerk_mps3, 3),
                "comfort_breach": self.comfort_breach, "progress": round(self.progress, 3),
                "lane_changes": self.lane_changes, "lane_changes_aborted": self.lane_changes_aborted,
                "aeb_stage": self.aeb_stage, "fcw_time_s": self.fcw_time_s, "duration_s": round(self.duration_s, 2)}


def _in_windows(now_s: float, windows: tuple[tuple[float, float], ...]) -> bool:
    if not windows:  # most scenarios: none (and this runs several times a step)
        return False
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
    steer_lag: float  # share of the curvature error the steering closes per step
    x_m: float = 0.0  # front bumper, along the reference line
    a_act_mps2: float = 0.0  # the actuators' acceleration (the lagged demand)
    a_mps2: float = 0.0  # the acceleration actually achieved (zero at standstill)
    d_m: float = 0.0  # lateral, road frame
    psi_rad: float = 0.0  # heading relative to the road
    kappa_per_m: float = 0.0  # path curvature the steering achieves (tan δ / wheelbase)

    def __post_init__(self) -> None:
        self._limit_n = _force_table(self.car)
        road = self.car.resistance  # computed properties of the twin: read once, not every step
        self._road_n = (road.f0_n, road.f1_n_per_mps, road.f2_n_per_mps2)
        self._mass_kg = self.car.inertial_mass_kg

    def drive_limit_n(self, speed_mps: float) -> float:
        """Maximum drive force at ``speed_mps`` (N), interpolated in the table."""
        pos = min(speed_mps / FORCE_TABLE_STEP_MPS, FORCE_TABLE_SIZE - 1.001)
        i = int(pos)
        return self._limit_n[i] + (self._limit_n[i + 1] - self._limit_n[i]) * (pos - i)

    def step(self, demand_mps2: float, curvature_per_m: float | None, road_kappa_per_m: float, dt_s: float) -> None:
        """Advance by ``dt_s``; ``curvature_per_m`` None: no lateral dynamics (the ego stays on its line)."""
        v = self.v_mps
        f0, f1, f2 = self._road_n
        max_accel = (self.drive_limit_n(v) - (f0 + f1 * v + f2 * v * v)) / self._mass_kg
        target = min(max(demand_mps2, -self.car.chassis.max_brake_mps2), max_accel)
        self.a_act_mps2 += (target - self.a_act_mps2) * self.lag
        v_new = max(v + self.a_act_mps2 * dt_s, 0.0)
        self.a_mps2 = (v_new - v) / dt_s  # zero at standstill whatever the brakes do
        ds = (v + v_new) / 2 * dt_s
        self.v_mps = v_new
        if curvature_per_m is None:
            self.x_m += ds
            return
        # kinematic bicycle in the Frenet frame: s' = v cos ψ / (1 - d κ), d' = v sin ψ, ψ' = v κ_path - κ_road s'
        self.kappa_per_m += (curvature_per_m - self.kappa_per_m) * self.steer_lag
        s_dot = math.cos(self.psi_rad) / (1 - self.d_m * road_kappa_per_m)
        self.d_m += ds * math.sin(self.psi_rad)
        self.psi_rad += ds * (self.kappa_per_m - road_kappa_per_m * s_dot)
        self.x_m += ds * s_dot




class _Functions:
    """ACC or the highway pilot, AEB and the driver, arbitrated: AEB wins, then the pilot/ACC, then the driver."""

    def __init__(self, scenario: Scenario, oracle: bool, chassis: Chassis) -> None:
        ego = scenario.ego
        self.chassis = chassis
        self.ego = ego
        self.oracle = oracle
        self.set_speed_mps = ego.set_speed_mps if ego.set_speed_mps is not None else ego.speed_mps
        acc_params = AccParams(set_speed_mps=self.set_speed_mps, time_gap_s=ego.time_gap_s)
        self.acc = AccController(acc_params)
        self.pilot: HighwayPilot | None = None
        if ego.pilot and not oracle:
            self.pilot = HighwayPilot(acc_params, pilot=PilotParams(auto_lane_change=ego.auto_lane_change),
                                      ego_length_m=chassis.length_m)
            self.pilot.switch_on()
            self.pilot.engage()
        elif ego.acc and not oracle:
            self.acc.switch_on()
            self.acc.engage()
        self.aeb = AebController(AebParams(full_decel_mps2=chassis.max_brake_mps2), ego_width_m=chassis.width_m) \
            if ego.aeb and not oracle else None
        self.driver_lateral = LaneCentring()  # the driver keeps the lane when no function steers
        self.requests = sorted(ego.lane_change_requests)

    def decide(self, obs: Observation, lanes: LaneFrame | None, lane_truth: LaneFrame | None,
               oracle_brake: bool) -> tuple[float, float | None, int, bool, bool, LaneChangeState]:
        """(acceleration demand m/s², path curvature 1/m or None, AEB stage, ACC/pilot alone in longitudinal
        control, lane centring steering, lane-change state) for this step."""
        now = obs.now_s
        aeb_cmd = self.aeb.command(obs) if self.aeb is not None else None
        aeb_accel = aeb_cmd.accel_mps2 if aeb_cmd is not None else None
        stage = int(aeb_cmd.stage) if aeb_cmd is not None else 0
        if aeb_accel is not None:
            obs = Observation(now, obs.speed_mps, obs.accel_mps2, obs.frame, obs.brake_pedal,
                              obs.accelerator_pedal, intervention=True)
        curvature: float | None = None
        state = LaneChangeState.IDLE
        if self.pilot is not None and lanes is not None:
            while self.requests and self.requests[0][0] <= now:
                self.pilot.request_lane_change(self.requests.pop(0)[1], now)
            cmd = self.pilot.command(obs, lanes, _in_windows(now, self.ego.steering_torque))
            acc_cmd = AccCommand(cmd.accel_mps2, cmd.mode)
            curvature, state = cmd.curvature_per_m, cmd.lane_change
        else:
            acc_cmd = self.acc.command(obs)
        steering = curvature is not None
        if curvature is None and lane_truth is not None:
            curvature = self.driver_lateral.command(now, obs.speed_mps, lane_truth)
        holding = DRIVER_MODEL.accel_mps2(self.ego.speed_mps, obs.speed_mps)  # the driver holding the set speed
        if self.oracle:
            return (-self.chassis.max_brake_mps2 if oracle_brake else holding), curvature, 0, False, False, state
        alone = acc_cmd.mode is AccMode.ACTIVE and aeb_accel is None and acc_cmd.accel_mps2 is not None
        if aeb_accel is not None:
            accel = aeb_accel
        elif acc_cmd.accel_mps2 is not None:
            accel = acc_cmd.accel_mps2
        elif obs.brake_pedal:
            accel = -self.ego.driver_brake_mps2
        else:
            accel = holding
        return accel, curvature, stage, alone, steering, state


class _Scene:
    """The world of one run: the road, the ego, and every other vehicle in a Fleet (index 0 mirrors the ego)."""

    def __init__(self, scenario: Scenario, vehicle: Vehicle) -> None:
        road, limits, w = scenario.road, scenario.ego.limits, scenario.road.lane_width_m
        chassis = self.chassis = vehicle.chassis
        dt = 1.0 / scenario.rate_hz
        self.road = road
        self.ego = _Ego(vehicle, limits, 1.0 - math.exp(-dt / limits.actuator_tau_s), scenario.ego.speed_mps,
                        1.0 - math.exp(-dt / limits.steer_tau_s))
        rng = np.random.default_rng(scenario.seed)
        targets = scenario.targets
        bg = place_traffic(scenario.traffic, tuple(range(road.lowest_lane, road.highest_lane + 1)), w,
                           chassis.length_m, np.random.default_rng([scenario.seed, 1]))
        arrays = {
            "s": np.concatenate([[-chassis.length_m], [t.gap_m for t in targets], bg["s"]]),
            "d": np.concatenate([[0.0], [t.lateral_m(chassis.width_m, w) for t in targets], bg["d"]]),
            "v": np.concatenate([[scenario.ego.speed_mps], [t.speed_mps for t in targets], bg["v"]]),
            "v0": np.concatenate([[max(scenario.ego.speed_mps, 1.0)], [max(t.speed_mps, 1.0) for t in targets],
                                  bg["v0"]]),
            "length": np.concatenate([[chassis.length_m], [t.length_m for t in targets], bg["length"]]),
            "width": np.concatenate([[chassis.width_m], [t.width_m for t in targets], bg["width"]]),
        }
        idm_mask = np.zeros(len(arrays["s"]), dtype=bool)
        self.first_idm = 1 + len(targets)  # the ego, the scripted targets, then the IDM vehicles
        idm_mask[self.first_idm:] = True
        self.fleet = Fleet(arrays, idm_mask, w, scenario.traffic.idm, scenario.traffic.mobil)
        self.n_scripted = len(targets)
        self.scripts = [list(t.actions) for t in targets]
        self.script_accel = [(0.0, 0.0)] * len(targets)  # (accel, until speed) per scripted target
        self.traffic = bool(idm_mask.any())
        self.curved = road.curved  # a property that walks the segments: read once
        self.lateral = self.curved or scenario.ego.pilot or self.traffic
        self.half_widths = (chassis.width_m + arrays["width"][1:]) / 2
        self.reach_m = chassis.length_m + arrays["length"][1:]  # bodies touch at ranges in (-reach, 0]
        self.ids = np.arange(len(arrays["s"]) - 1)
        self.sensor = RadarSensor(scenario.sensor, rng, chassis.length_m)
        self.camera = LaneSensor(scenario.lane_sensor, np.random.default_rng([scenario.seed, 2]))

    def truth(self) -> ObjectTruth:
        f, e = self.fleet, self.ego
        return ObjectTruth(self.ids, f.s[1:] - e.x_m, f.v[1:] - e.v_mps, f.a[1:] - e.a_mps2, f.d[1:] - e.d_m,
                           f.width[1:], f.length[1:])

    def lane_truth(self, now_s: float) -> LaneFrame:
        road, e = self.road, self.ego
        lane = road.lane_of(e.d_m)
        ahead_m = e.v_mps * CAMERA_PREVIEW_S  # the camera sees the lane's curvature ahead of the car
        return LaneFrame(now_s, e.d_m - lane * road.lane_width_m, e.psi_rad, road.curvature(e.x_m + ahead_m),
                         road.lane_width_m, max(road.highest_lane - lane, 0), max(lane - road.lowest_lane, 0))

    def step(self, now_s: float, dt_s: float, demand: float, curvature: float | None) -> None:
        e, f = self.ego, self.fleet
        e.step(demand, curvature if self.lateral else None, self.road.curvature(e.x_m), dt_s)
        f.s[0], f.d[0], f.v[0], f.a[0] = e.x_m - self.chassis.length_m, e.d_m, e.v_mps, e.a_mps2
        if self.traffic:
            index = f.index()
            acc = f.idm_accelerations(index)
            f.a[self.first_idm:] = acc[self.first_idm:]  # the IDM vehicles come last (a slice: cheaper than a mask)
            f.decide_lanes(now_s, index, acc, (self.road.lowest_lane, self.road.highest_lane))
        self._script(now_s, dt_s)
        f.move(now_s, dt_s, self.road.curvatures(f.s) if self.curved else None)  # leaves the ego's row (0) alone

    def _script(self, now_s: float, dt_s: float) -> None:
        f, w = self.fleet, self.road.lane_width_m
        for k in range(self.n_scripted):
            i = k + 1
            for action in self.scripts[k]:
                gap = f.s[i] - self.ego.x_m
                if (action.at_s is not None and now_s >= action.at_s) or (
                        action.at_gap_m is not None and gap <= action.at_gap_m):
                    self.scripts[k] = [a for a in self.scripts[k] if a is not action]
                    if action.accel_mps2 is not None:
                        self.script_accel[k] = (action.accel_mps2, action.until_speed_mps)
                    elif action.to_lane is not None:
                        f.start_lateral_move(i, now_s, action.to_lane * w + action.to_offset_m, action.duration_s)
            accel, until = self.script_accel[k]
            if accel:
                v_next = f.v[i] + accel * dt_s
                if (v_next <= until) if accel < 0 else (v_next >= until):
                    accel = (until - f.v[i]) / dt_s
                    self.script_accel[k] = (0.0, 0.0)
            f.a[i] = accel


def _impact_mps(truth: ObjectTruth, half_widths: np.ndarray, reach_m: np.ndarray) -> float | None:
    """The relative speed (m/s) of the fastest contact when a body touches the ego's (None: no contact).

    ``reach_m`` is per object ``ego length + object length``: touching = ranges in (-reach, 0] and bodies
    overlapping laterally. Checked every step (a collision ends the run); cheap ops first, as there rarely is one.
    """
    r = truth.range_m
    if len(r) <= FEW_OBJECTS:  # a handful of objects (Euro NCAP scenes): plain Python beats numpy's per-call cost
        hits = [-rate for r_m, rate, lat, half_width, reach in zip(
            r.tolist(), truth.range_rate_mps.tolist(), truth.lateral_m.tolist(), half_widths.tolist(),
            reach_m.tolist(), strict=True) if -reach < r_m <= 0 and abs(lat) < half_width]
        return max(hits) if hits else None
    near = (r <= 0) & (r > -reach_m)
    if not near.any():
        return None
    touching = near & (np.abs(truth.lateral_m) < half_widths)
    return float(np.max(-truth.range_rate_mps[touching])) if touching.any() else None


def _path_metrics(range_m: np.ndarray, range_rate_mps: np.ndarray, lateral_m: np.ndarray, half_widths: np.ndarray,
                  lane_width_m: float, speed_mps: np.ndarray, ego_d_m: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(gap to the in-path lead per step m or nan, min TTC s, min time gap s) of a whole run at once.

    Arrays have one row per step and one column per object (the truth of that step), ``speed_mps`` and ``ego_d_m``
    one entry per step. TTC counts objects ahead that overlap the ego's path and close in. The in-path lead is the
    nearest vehicle ahead whose centre is in the lane the ego's centre is in (road frame): while the ego changes
    lanes, cars in the lane it has not yet entered do not count for the time gap (taken while faster than 1 m/s).
    """
    ahead = range_m > 0
    closing = ahead & (range_rate_mps < 0) & (np.abs(lateral_m) < half_widths)
    ttc = float(np.min(range_m[closing] / -range_rate_mps[closing])) if closing.any() else math.inf
    ego_lane = np.rint(ego_d_m / lane_width_m)[:, None]
    in_lane = ahead & (np.rint((lateral_m + ego_d_m[:, None]) / lane_width_m) == ego_lane)
    lane_gap = np.where(in_lane, range_m, np.inf).min(axis=1, initial=np.inf)
    lane_gap[np.isinf(lane_gap)] = np.nan
    moving = (speed_mps > 1.0) & ~np.isnan(lane_gap)
    time_gap = float(np.min(lane_gap[moving] / speed_mps[moving])) if moving.any() else math.inf
    return lane_gap, ttc, time_gap


def simulate(scenario: Scenario, *, oracle: bool = False, vehicle: Vehicle | None = None) -> RunResult:
    """Run a scenario to its end (duration, collision, or the Euro NCAP end condition).

    ``oracle``: instead of the functions, hold the initial speed and brake fully (at the brake limit, through the
    actuator lag) from the first moment the sensor could report (within range and field of view, after its
    latency) an object overlapping the ego's path that the ego closes in on or that brakes — the physical best
    case used to mark a test as unavoidable. ``vehicle`` saves loading the preset again.
    """
    dt = 1.0 / scenario.rate_hz
    scene = _Scene(scenario, vehicle or load_vehicle(scenario.ego.vehicle))
    functions = _Functions(scenario, oracle, scene.chassis)
    ego, w = scene.ego, scenario.road.lane_width_m
    rows: list[tuple[float, ...]] = []
    tgt_rows: list[tuple[float, ...]] = []
    truths: list[ObjectTruth] = []  # the path metrics are computed at the end, from every step's truth at once
    collision, impact = False, 0.0
    max_stage, fcw_time, braked = AebStage.IDLE, None, False
    oracle_from_s: float | None = None
    lane_changes = aborted = 0
    last_state = LaneChangeState.IDLE
    steps = round(scenario.duration_s * scenario.rate_hz)
    k = 0
    for k in range(steps + 1):
        now, v = k * dt, ego.v_mps
        truth = scene.truth()
        frame = scene.sensor.measure(now, truth, healthy=not _in_windows(now, scenario.sensor_fault))
        obs = Observation(now, v, ego.a_mps2, frame, brake_pedal=_in_windows(now, scenario.ego.brake_pedal))
        lane_truth = scene.lane_truth(now) if scene.lateral else None
        lanes = scene.camera.measure(now, lane_truth) if lane_truth is not None and functions.pilot else None
        if oracle and oracle_from_s is None and _threat_visible(scenario, truth, scene):
            oracle_from_s = now + scenario.sensor.latency_steps * dt
        demand, curvature, stage, alone, steering, state = functions.decide(
            obs, lanes, lane_truth, oracle_from_s is not None and now >= oracle_from_s - 1e-9)
        if stage:
            max_stage = max(max_stage, AebStage(stage))
            fcw_time = round(now, 3) if fcw_time is None else fcw_time
            braked = braked or stage in (AebStage.PARTIAL, AebStage.FULL, AebStage.HOLD)
        if state is LaneChangeState.IDLE and last_state is not LaneChangeState.IDLE and functions.pilot is not None:
            outcome = functions.pilot.lane_change.outcome
            lane_changes += outcome == "done"
            aborted += outcome == "aborted"
        last_state = state
        impact_now = _impact_mps(truth, scene.half_widths, scene.reach_m)
        if impact_now is not None:
            collision, impact = True, impact_now
        truths.append(truth)
        rows.append((now, v, ego.a_mps2, demand, float(stage), float(alone), ego.d_m,
                     v * v * ego.kappa_per_m, float(steering), float(LC_CODES[state])))
        if scene.n_scripted:
            tgt_rows.append((*scene.fleet.v[1:1 + scene.n_scripted].tolist(),
                             *scene.fleet.d[1:1 + scene.n_scripted].tolist()))
        ended = scenario.end_when_matched and (braked or v <= 0.0) and _matched(truth, scene, v)
        if collision or k == steps or ended:
            break
        scene.step(now, dt, demand, curvature)
    ranges, rates, lateral = (np.concatenate([getattr(t, name) for t in truths]).reshape(len(truths), -1)
                              for name in ("range_m", "range_rate_mps", "lateral_m"))
    lane_gap, min_ttc, min_tg = _path_metrics(ranges, rates, lateral, scene.half_widths, w,
                                              np.array([r[1] for r in rows]), np.array([r[6] for r in rows]))
    return _result(scenario, rows, tgt_rows, lane_gap, (collision, impact, min_ttc, min_tg), max_stage, fcw_time,
                   functions.set_speed_mps, k * dt, (lane_changes, aborted, scene.fleet.lane_changes))


def _threat_visible(scenario: Scenario, truth: ObjectTruth, scene: _Scene) -> bool:
    """Whether the sensor can see an object in the ego's path that the ego closes in on or that brakes (truth)."""
    braking = scene.fleet.a[1:] < -0.01
    return bool(np.any(visible(scenario.sensor, truth, scene.chassis.length_m)
                       & (np.abs(truth.lateral_m) < scene.half_widths)
                       & ((truth.range_rate_mps < -0.01) | braking)))


def _matched(truth: ObjectTruth, scene: _Scene, speed_mps: float) -> bool:
    """Euro NCAP's end of a test: the ego stopped or is no faster than the object in its path."""
    ahead = (truth.range_m > 0) & (np.abs(truth.lateral_m) < scene.half_widths)
    return speed_mps <= 0.0 or (bool(ahead.any()) and speed_mps <= float(np.min(speed_mps +
                                                                                 truth.range_rate_mps[ahead])) + 1e-9)


def _result(scenario: Scenario, rows: list[tuple[float, ...]], tgt_rows: list[tuple[float, ...]],
            lane_gap_m: np.ndarray, outcome: tuple[bool, float, float, float], max_stage: AebStage,
            fcw_time: float | None, set_speed: float, duration_s: float, changes: tuple[int, int, int]) -> RunResult:
    collision, impact, min_ttc, min_tg = outcome
    arr = np.array(rows, dtype=float)
    n = len(scenario.targets)
    tgt = np.array(tgt_rows, dtype=float).reshape(len(rows), 2 * n)
    trace = Trace(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], lane_gap_m, tgt[:, :n], tgt[:, n:],
                  arr[:, 4].astype(int), arr[:, 5].astype(bool), arr[:, 6], arr[:, 7], arr[:, 8].astype(bool),
                  arr[:, 9].astype(int))
    jerk, breach = _comfort(trace, scenario.rate_hz)
    lat_err, lat_acc, lat_jerk, lat_breach = _lateral_metrics(trace, scenario)
    mean_speed = float(trace.ego_speed_mps.mean())
    return RunResult(scenario.name, collision, impact, min_ttc, min_tg,
                     max(float(-trace.ego_accel_mps2.min()), 0.0), jerk, breach or lat_breach,
                     mean_speed / set_speed if set_speed > 0 else 1.0, max_stage.name.lower(), fcw_time,
                     duration_s, trace, lat_err, lat_acc, lat_jerk, *changes)


def _lateral_metrics(trace: Trace, scenario: Scenario) -> tuple[float, float, float, bool]:
    """(lateral error RMS m, max |lateral accel| m/s², max lateral jerk m/s³, breach while lane centring)."""
    w = scenario.road.lane_width_m
    d = trace.ego_lateral_m
    centring = trace.lateral_active & (trace.lane_change == LC_CODES[LaneChangeState.IDLE])
    err = d - np.rint(d / w) * w
    rms = float(np.sqrt(np.mean(err[centring] ** 2))) if centring.any() else 0.0
    a = trace.lat_accel_mps2
    window = max(round(LAT_JERK_WINDOW_S * scenario.rate_hz), 1)
    if len(a) <= window:
        return rms, float(np.abs(a).max(initial=0.0)), 0.0, False
    jerk = np.abs(a[window:] - a[:-window]) / LAT_JERK_WINDOW_S
    active = trace.lateral_active[window:] & trace.lateral_active[:-window]
    breach = bool(np.any(active & ((np.abs(a[window:]) > ISO_LAT_ACCEL_MPS2 * COMFORT_TOLERANCE)
                                   | (jerk > ISO_LAT_JERK_MPS3 * COMFORT_TOLERANCE))))
    return rms, float(np.abs(a).max()), float(jerk.max()), breach


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
    alone = np.zeros(len(a) - window, dtype=bool)
    if len(a) > 2 * window:  # runs shorter than that have no such window
        alone[window:] = np.convolve(trace.acc_active.astype(float), np.ones(2 * window + 1), "valid") \
            >= 2 * window + 1
    # ACC applies the stricter limit only at or above 20 m/s: judge each window by its lowest speed
    slow = np.lib.stride_tricks.sliding_window_view(trace.ego_speed_mps, window + 1).min(axis=1)
    limit = np.where(slow >= p.jerk_speed_mps, p.max_jerk_mps3, p.max_jerk_low_mps3)
    breach = bool(np.any(alone & (jerk > limit * COMFORT_TOLERANCE)))
    a_now = a[window:]
    breach |= bool(np.any(alone & ((a_now > p.max_accel_mps2 * COMFORT_TOLERANCE)
                                   | (a_now < -p.max_decel_mps2 * COMFORT_TOLERANCE))))
    return float(jerk.max()), breach
