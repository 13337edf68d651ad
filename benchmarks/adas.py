"""Scenario-engine benchmark: simulated frames per second on a highway scene, against highway-env.

    pip install -e ".[bench]"           # highway-env 1.12.1, the peer
    python benchmarks/adas.py            # figures for docs/benchmarks.md
    python benchmarks/adas.py --quick    # a few seconds, to check the benchmark still runs

The scene in both: the ego and 50 other vehicles over three lanes. highway-env (highway-v0) simulates at
15 Hz, evos at 50 Hz (finer). The comparison is simulated time per wall time, expressed as 15 Hz frames
per second: evos' figure counts 1/15 s of simulated scene as one frame though it took 3.3 steps for it.
evos runs its ego with ACC and AEB through the sensor model; highway-env runs its own vehicles
(IDM/MOBIL) with the ego idling.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from evos.adas._scenario import EgoSpec, Scenario, TargetSpec
from evos.adas._sim import simulate

console = Console()
FRAME_HZ = 15.0  # highway-v0's simulation frequency: the unit of a "frame"
RATE_HZ = 50.0  # evos' step rate
VEHICLES = 50


def highway_scene(duration_s: float) -> Scenario:
    rng = np.random.default_rng(0)
    targets = tuple(
        TargetSpec(name=f"car{i}", gap_m=float(20 + i * 15 + rng.uniform(0, 5)), speed_mps=float(rng.uniform(20, 30)),
                   lane=int(i % 3) - 1)
        for i in range(VEHICLES))
    return Scenario("highway", EgoSpec(speed_mps=28.0, acc=True), targets, duration_s=duration_s, rate_hz=RATE_HZ)


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
    table = Table(title=f"scenario engine: {VEHICLES} vehicles, 3 lanes (frames of 1/{FRAME_HZ:g} s)")
    for column in ("measure", "evos", "highway-env 1.12.1", "ratio", "target"):
        table.add_column(column)
    table.add_row("frames per second", f"{ours:,.0f}", f"{peer:,.1f}" if peer else "not installed",
                  f"evos {ours / peer:,.0f}× faster" if peer else "", "≥ 100×")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    main(parser.parse_args().quick)
