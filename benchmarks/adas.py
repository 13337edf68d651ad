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
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from evos.adas import EgoSpec, Road, Scenario, SensorParams, TrafficSpec, simulate
from evos.twin import Vehicle, load_vehicle

console = Console()
FRAME_HZ = 15.0  # highway-v0's simulation frequency: the unit of a "frame"
VEHICLES = 50
LANES = 4


def highway_scene(duration_s: float) -> Scenario:
    """The benchmark scene; the ego has the near-range beam and rear corner radars, so it overtakes (without rear
    radars it keeps its lane)."""
    return Scenario("highway", EgoSpec(speed_mps=25.0, set_speed_mps=30.0, lane_centring=True, auto_lane_change=True),
                    road=Road(lanes=LANES, ego_lane=1), traffic=TrafficSpec(vehicles=VEHICLES, from_m=-200.0,
                                                                            to_m=800.0),
                    duration_s=duration_s, rate_hz=FRAME_HZ, sensor=SensorParams(fov_deg=120.0, rear_range_m=80.0))


def evos_frames_per_s(duration_s: float, car: Vehicle) -> float:
    """Frames per CPU second of one run; the car's model is loaded before (setup, as highway-env's environment is
    created outside its timing); placing the traffic is timed (as highway-env's resets are)."""
    scene = highway_scene(duration_s)
    start = time.process_time()
    result = simulate(scene, vehicle=car)
    if result.collision:  # a run cut short by a crash would measure a different (shorter) scene
        raise SystemExit(f"the benchmark scene collided at {result.duration_s:.1f} s")
    return duration_s * FRAME_HZ / (time.process_time() - start)


def highway_env(steps: int) -> Callable[[], float] | None:
    """A measurement of highway-env's frames per second over ``steps`` env steps (None: not installed)."""
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers the environments)
    except ImportError:
        return None
    env = gym.make("highway-v0", render_mode=None)
    env.reset(seed=0)
    frames_per_step = env.unwrapped.config["simulation_frequency"] // env.unwrapped.config["policy_frequency"]

    def measure() -> float:
        start = time.process_time()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(1)  # IDLE
            if terminated or truncated:
                env.reset(seed=1)
        return steps * frames_per_step / (time.process_time() - start)

    return measure


def main(quick: bool, trials: int) -> None:
    """CPU time (one core) per frame, best of ``trials`` interleaved runs of each: the machine is shared, and the
    fastest run is the least disturbed one (as ``timeit`` does)."""
    car = load_vehicle("xiaomi-su7")
    simulate(highway_scene(2.0), vehicle=car)  # warm up
    peer_measure = highway_env(2 if quick else 10)
    ours, peers = [], []
    for _ in range(1 if quick else trials):
        ours.append(evos_frames_per_s(10.0 if quick else 60.0, car))
        if peer_measure is not None:
            peers.append(peer_measure())
    best, peer = max(ours), max(peers) if peers else None
    table = Table(title=f"scenario engine: {VEHICLES} vehicles, {LANES} lanes (frames of 1/{FRAME_HZ:g} s, "
                        f"CPU time, best of {len(ours)})")
    for column in ("measure", "evos", "highway-env 1.12.1", "ratio", "target"):
        table.add_column(column)
    table.add_row("frames per second", f"{best:,.0f}", f"{peer:,.1f}" if peer else "not installed",
                  f"evos {best / peer:,.0f}× faster" if peer else "", "≥ 100×")
    table.add_row("all runs", " ".join(f"{x:,.0f}" for x in ours), " ".join(f"{x:,.1f}" for x in peers), "", "")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--trials", type=int, default=5, help="interleaved runs of each; the best counts")
    args = parser.parse_args()
    main(args.quick, args.trials)
