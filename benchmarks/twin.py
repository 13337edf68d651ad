"""Twin benchmark: wall time per cycle and energy against NREL FASTSim 3.1, and a 1,000-vehicle batch.

    pip install -e ".[bench]"          # FASTSim 3.1.0, the peer
    python benchmarks/twin.py           # figures for docs/benchmarks.md
    python benchmarks/twin.py --quick   # a few seconds, to check the benchmark still runs

Both models run the same car, FASTSim's "2022 Tesla Model 3 RWD" (evos preset `tesla-model-3-rwd-2022`
carries the same parameters), over UDDS and HWFET in this process. Without FASTSim installed, the peer
columns are left empty.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from evos.twin import load_cycle, load_vehicle, simulate_batch, simulate_cycle

console = Console()
PRESET = "tesla-model-3-rwd-2022"
FASTSIM_VEHICLE = "2022 Tesla Model 3 RWD thrml.yaml"


def median_time_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fastsim_runner(cycle: str) -> tuple[Callable[[], object], Callable[[], float]] | None:
    """(run one cycle, battery kWh/100 km of the last run) with FASTSim, or None if it is not installed."""
    try:
        import fastsim
    except ImportError:
        return None
    vehicle = fastsim.Vehicle.from_resource(FASTSIM_VEHICLE)
    fs_cycle = fastsim.Cycle.from_resource(f"{cycle}.csv")
    last: dict[str, object] = {}

    def run() -> object:
        sim = fastsim.SimDrive(vehicle, fs_cycle)  # a new simulation per cycle, as a user runs one
        sim.run()
        last["sim"] = sim
        return sim

    def kwh_per_100km() -> float:
        veh = last["sim"].to_dict()["veh"]  # type: ignore[attr-defined]
        joules = veh["pt_type"]["BEV"]["res"]["state"]["energy_out_chemical_joules"]
        return float(joules / 3.6e6 / (veh["state"]["dist_meters"] / 1e5))

    return run, kwh_per_100km


def fleet(size: int) -> list:
    """`size` variants of four presets (mass and drag ±10 %), as a fleet study would run."""
    rng = np.random.default_rng(0)
    base = [load_vehicle(n) for n in (PRESET, "xiaomi-su7", "byd-seal-rwd", "vw-id3-pro")]
    out = []
    for i in range(size):
        vehicle = base[i % len(base)]
        body = dataclasses.replace(vehicle.body, curb_mass_kg=vehicle.body.curb_mass_kg * rng.uniform(0.9, 1.1),
                                   drag_coefficient=vehicle.body.drag_coefficient * rng.uniform(0.9, 1.1))
        out.append(dataclasses.replace(vehicle, body=body))
    return out


def main(quick: bool) -> None:
    repeats = 5 if quick else 50
    table = Table(title="evos twin vs FASTSim 3.1 (2022 Tesla Model 3 RWD)")
    for column in ("measure", "evos", "FASTSim 3.1", "ratio", "target"):
        table.add_column(column)
    vehicle = load_vehicle(PRESET)
    for cycle_name in ("udds", "hwfet"):
        cycle = load_cycle(cycle_name)
        evos_s = median_time_s(lambda c=cycle: simulate_cycle(vehicle, c), repeats)
        evos_kwh = simulate_cycle(vehicle, cycle).kwh_per_100km
        peer = fastsim_runner(cycle_name)
        if peer is None:
            table.add_row(f"{cycle_name}: time per cycle", f"{evos_s * 1e3:.2f} ms", "not installed", "", "≥ 10×")
            table.add_row(f"{cycle_name}: battery kWh/100 km", f"{evos_kwh:.2f}", "", "", "")
            continue
        run, energy = peer
        fs_s = median_time_s(run, repeats)
        fs_kwh = energy()
        table.add_row(f"{cycle_name}: time per cycle", f"{evos_s * 1e3:.2f} ms", f"{fs_s * 1e3:.2f} ms",
                      f"evos {fs_s / evos_s:.1f}× faster", "≥ 10×")
        table.add_row(f"{cycle_name}: battery kWh/100 km", f"{evos_kwh:.2f}", f"{fs_kwh:.2f}",
                      f"{(evos_kwh / fs_kwh - 1) * 100:+.1f} %", "")
    size = 100 if quick else 1000
    vehicles = fleet(size)
    udds = load_cycle("udds")
    simulate_batch(vehicles[:10], udds)  # warm up
    batch_s = median_time_s(lambda: simulate_batch(vehicles, udds), 1 if quick else 5)
    table.add_row(f"{size} vehicles × UDDS (vectorised batch)", f"{batch_s:.3f} s", "", "", "≤ 1 s for 1,000")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 100-vehicle batch")
    main(parser.parse_args().quick)
