"""The evos stack on someone else's simulator: highway-env (PyPI ``highway-env``, the optional extra ``bench``).

The ego gets a continuous action (``ContinuousAction``: acceleration in [-9, 9] m/s² and front-wheel steering
angle in [-π/4, π/4]) every simulation frame (policy frequency = simulation frequency). Each frame the adapter
turns highway-env's ``Kinematics`` observation (absolute x, y, vx, vy of the nearest vehicles) into the evos
object truth, runs it through :class:`RadarSensor` (noise, one frame latency, near-range beam and rear corner
radars), builds the camera's lane frame from the ego's pose on highway-env's straight 4 m lanes, and lets the
:class:`HighwayPilot` and :class:`AebController` decide. Curvature maps to highway-env's steering through its
bicycle model (slip angle ``β = asin(κ L/2)``, ``tan δ = 2 tan β``, L = 5 m).

The reference is highway-env's own rule-based ego: an ``IDMVehicle`` (IDM + MOBIL) put in the ego's place on the
same seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evos.adas._acc import Observation
from evos.adas._aeb import AebController
from evos.adas._lateral import LaneFrame
from evos.adas._params import AccParams, SensorParams
from evos.adas._pilot import HighwayPilot
from evos.adas._sensor import ObjectTruth, RadarSensor
from evos.errors import InvalidArgumentError, UnavailableError

ACCEL_RANGE_MPS2 = 9.0
STEER_RANGE_RAD = math.pi / 4
HE_LENGTH_M = 5.0  # highway-env Vehicle.LENGTH
HE_WIDTH_M = 2.0  # highway-env Vehicle.WIDTH
OBSERVED = 15  # vehicles in the observation (the ego first)
SET_SPEED_MPS = 30.0  # the top of highway-v0's rewarded speed range [20, 30] m/s


@dataclass(frozen=True)
class HighwayEnvResult:
    """Collision rate and mean ego speed over episodes of one policy."""

    env: str
    policy: str  # "evos" or "idm"
    episodes: int
    collisions: int
    mean_speed_mps: float

    @property
    def collision_rate(self) -> float:
        return self.collisions / self.episodes if self.episodes else 0.0

    def as_json(self) -> dict[str, object]:
        return {"env": self.env, "policy": self.policy, "episodes": self.episodes, "collisions": self.collisions,
                "collision_rate": round(self.collision_rate, 4), "mean_speed_mps": round(self.mean_speed_mps, 3)}


def _gym() -> Any:
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers the environments)
    except ImportError as exc:
        raise UnavailableError("highway-env is not installed: pip install 'evos[bench]' (highway-env 1.12.1)") from exc
    return gym


def _make(env_id: str) -> Any:
    gym = _gym()
    if not env_id.startswith(("highway", "merge")):
        raise InvalidArgumentError(f"--env: a highway-env highway or merge environment id, got {env_id!r}")
    try:
        env = gym.make(env_id, render_mode=None)
    except gym.error.Error as exc:
        raise InvalidArgumentError(f"--env: unknown environment {env_id!r} ({exc})") from exc
    sim_hz = env.unwrapped.config["simulation_frequency"]
    env.unwrapped.configure({
        "action": {"type": "ContinuousAction", "acceleration_range": [-ACCEL_RANGE_MPS2, ACCEL_RANGE_MPS2],
                   "steering_range": [-STEER_RANGE_RAD, STEER_RANGE_RAD]},
        "policy_frequency": sim_hz,
        "observation": {"type": "Kinematics", "vehicles_count": OBSERVED, "absolute": True, "normalize": False,
                        "see_behind": True, "features": ["presence", "x", "y", "vx", "vy", "heading"]},
    })
    return env


class _EvosDriver:
    """The evos functions for one episode: observation in, continuous action out."""

    def __init__(self, sim_hz: float, seed: int) -> None:
        self.dt = 1.0 / sim_hz
        self.sensor = RadarSensor(SensorParams(fov_deg=120.0, rear_range_m=80.0, latency_steps=1),
                                  np.random.default_rng(seed), HE_LENGTH_M)
        self.pilot = HighwayPilot(AccParams(set_speed_mps=SET_SPEED_MPS, time_gap_s=1.5), ego_length_m=HE_LENGTH_M)
        self.pilot.switch_on()
        self.pilot.engage()
        self.aeb = AebController(ego_width_m=HE_WIDTH_M)
        self.last_speed: float | None = None

    def act(self, now_s: float, obs: np.ndarray, lanes: int, lane_width_m: float) -> np.ndarray:
        ego, others = obs[0], obs[1:][obs[1:, 0] > 0.5]
        speed = float(ego[3])
        accel = 0.0 if self.last_speed is None else (speed - self.last_speed) / self.dt
        self.last_speed = speed
        truth = ObjectTruth(np.arange(len(others)), others[:, 1] - ego[1] - HE_LENGTH_M, others[:, 3] - ego[3],
                            np.zeros(len(others)), -(others[:, 2] - ego[2]), np.full(len(others), HE_WIDTH_M),
                            np.full(len(others), HE_LENGTH_M))
        frame = self.sensor.measure(now_s, truth)
        lane = min(max(round(float(ego[2]) / lane_width_m), 0), lanes - 1)  # lane 0 is the leftmost
        lane_frame = LaneFrame(now_s, -(float(ego[2]) - lane * lane_width_m), -float(ego[5]), 0.0, lane_width_m,
                               lanes_left=lane, lanes_right=lanes - 1 - lane)
        observation = Observation(now_s, speed, accel, frame)
        aeb = self.aeb.command(observation)
        cmd = self.pilot.command(observation, lane_frame)
        demand = aeb.accel_mps2 if aeb.accel_mps2 is not None else (cmd.accel_mps2 or 0.0)
        demand = max(demand, -speed / self.dt)  # brake to a standstill, never into reverse
        kappa = -(cmd.curvature_per_m or 0.0)  # highway-env's y points right: its curvature sign is opposite
        beta = math.asin(min(max(kappa * HE_LENGTH_M / 2, -1.0), 1.0))
        steer = math.atan(2 * math.tan(beta))
        return np.array([demand / ACCEL_RANGE_MPS2, steer / STEER_RANGE_RAD], dtype=np.float32)


def run_highway_env(env_id: str, episodes: int, seed_start: int, policy: str = "evos") -> HighwayEnvResult:
    """Run ``episodes`` episodes (seeds ``seed_start``...) with the evos stack or highway-env's IDM ego."""
    if episodes < 1:
        raise InvalidArgumentError(f"--episodes: must be at least 1, got {episodes}")
    if policy not in ("evos", "idm"):
        raise InvalidArgumentError(f"policy: 'evos' or 'idm', got {policy!r}")
    env = _make(env_id)  # first: fails clearly when highway-env is missing
    from highway_env.road.lane import StraightLane
    from highway_env.vehicle.behavior import IDMVehicle

    collisions, speeds = 0, []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed_start + episode)
            base = env.unwrapped
            sim_hz = base.config["simulation_frequency"]
            lanes = int(base.config.get("lanes_count", 2))
            driver = _EvosDriver(sim_hz, seed_start + episode)
            if policy == "idm":
                idm = IDMVehicle(base.road, base.vehicle.position, base.vehicle.heading, base.vehicle.speed)
                base.road.vehicles[base.road.vehicles.index(base.vehicle)] = idm
                base.controlled_vehicles[0] = idm
            done, k = False, 0
            while not done:
                action = (driver.act(k / sim_hz, obs, lanes, StraightLane.DEFAULT_WIDTH) if policy == "evos"
                          else np.zeros(2, dtype=np.float32))
                obs, _, terminated, truncated, _ = env.step(action)
                speeds.append(float(base.vehicle.speed))
                done = terminated or truncated or k > 60 * sim_hz  # merge-v0 has no time limit
                k += 1
            collisions += bool(base.vehicle.crashed)
    finally:
        env.close()
    return HighwayEnvResult(env_id, policy, episodes, collisions, float(np.mean(speeds)) if speeds else 0.0)
