"""Scenario-engine benchmark: simulated frames per second on a highway scene, against highway-env.

    pip install -e ".[bench]"           # highway-env 1.12.1, the peer
    python benchmarks/adas.py            # figures for docs/benchmarks.md
    python benchmarks/adas.py --quick    # a few seconds, to check the benchmark still runs

The scene in both: the ego and 50 other vehicles (IDM + MOBIL) on four lanes, stepped at 15 Hz (one step =
one frame). evos runs its ego with the highway pilot (ACC, AEB, lane centring, automatic lane changes) through
the radar and camera models; highway-env (highway-v0) runs its own vehicles with the ego idling.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from evos.adas import EgoSpec, Road, Scenario, TrafficSpec, simulate

console = Console()
FRAME_HZ = 15.0  # highway-v0's simulation frequency: the unit of a "frame"
VEHICLES = 50
LANES = 4


def highway_scene(duration_s: float) -> Scenario:
    return Scenario("highway", EgoSpec(speed_mps=25.0, set_speed_mps=30.0, lane_centring=True, auto_lane_change=True),
                    road=Road(lanes=LANES, ego_lane=1), traffic=TrafficSpec(vehicles=VEHICLES, from_m=-200.0,
                                                                            to_m=800.0),
                    duration_s=duration_s, rate_hz=FRAME_HZ)


def evos_frames_per_s(duration_s: float) -> float:
    scene = highway_scene(duration_s)
    simulate(highway_scene(2.0))  # warm up
    start = time.perf_counter()
    simulate(scene)
    return duration_s * FRAME_HZ / (time.perf_counter() - start)


def highway_env_frames_per_s(steps: int) -> float | None:
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers the environments)
    except ImportError:
        return None
    env = gym.make("highway-v0", render_mode=None)
    env.reset(seed=0)
    frames_per_step = env.unwrapped.config["simulation_frequency"] // env.unwrapped.config["policy_frequency"]
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(1)  # IDLE
        if terminated or truncated:
            env.reset(seed=1)
    return steps * frames_per_step / (time.perf_counter() - start)


def main(quick: bool) -> None:
    ours = evos_frames_per_s(10.0 if quick else 120.0)
    peer = highway_env_frames_per_s(3 if quick else 20)
    table = Table(title=f"scenario engine: {VEHICLES} vehicles, {LANES} lanes (frames of 1/{FRAME_HZ:g} s)")
    for column in ("measure", "evos", "highway-env 1.12.1", "ratio", "target"):
        table.add_column(column)
    table.add_row("frames per second", f"{ours:,.0f}", f"{peer:,.1f}" if peer else "not installed",
                  f"evos {ours / peer:,.0f}× faster" if peer else "", "≥ 100×")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    main(parser.parse_args().quick)
