"""``evos adas ...``: run the built-in driver-assistance suites and scenario files, print tables, write JSON/plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from evos._console import check_outputs, console, fail, pyplot
from evos.adas._highway_env import run_highway_env
from evos.adas._scenario import load_scenario
from evos.adas._sim import RunResult, simulate
from evos.adas._suite import SUITES, SuiteRun, best_case_impact_mps, run_suite, summary
from evos.errors import EvosError
from evos.twin import load_vehicle

app = typer.Typer(name="adas", no_args_is_help=True,
                  help="Driver assistance (ACC, AEB, lane centring, highway pilot): built-in suites, scenario files "
                       "and the highway-env check.")
MODE_LABELS = {"aeb": "AEB only", "acc": "ACC on", "pilot": "highway pilot"}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or x == float("inf") else f"{x:.{digits}f}"


def _suite_table(name: str, runs: list[SuiteRun]) -> Table:
    table = Table(title=f"{name}: {len(runs)} runs")
    for column in ("scenario", "collision", "impact m/s", "unavoidable", "min TTC s", "min gap s", "max decel",
                   "max jerk", "lat err RMS m", "max lat acc", "comfort", "AEB", "progress"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for run in runs:
        r = run.result
        table.add_row(r.name, "[red]yes[/]" if r.collision else "no", _fmt(r.impact_speed_mps),
                      "yes" if run.unavoidable else "", _fmt(r.min_ttc_s), _fmt(r.min_time_gap_s),
                      _fmt(r.max_decel_mps2), _fmt(r.max_jerk_mps3), _fmt(r.lateral_error_rms_m, 3),
                      _fmt(r.max_lat_accel_mps2), "[yellow]breach[/]" if r.comfort_breach else "ok",
                      r.aeb_stage, _fmt(r.progress))
    return table


@app.command("suite")
def suite_command(
    name: Annotated[str, typer.Argument(help=f"Built-in suite: {', '.join(SUITES)}.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON to this file.",
                                                  dir_okay=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary, not every run.")] = False,
) -> None:
    """Run a built-in suite (AEB suites: each cell with AEB only and with ACC on) and report collisions and comfort."""
    check_outputs(json_out)
    try:
        runs = run_suite(name)
    except EvosError as exc:
        raise fail(exc) from None
    result = summary(runs)
    if not quiet:
        console.print(_suite_table(name, runs))
    for mode, label in MODE_LABELS.items():
        if mode not in result:
            continue
        m: dict[str, Any] = result[mode]  # type: ignore[assignment]
        console.print(f"{label}: {m['collisions']}/{m['runs']} collisions ({m['avoidable_collisions']} avoidable), "
                      f"{m['comfort_breaches']} comfort breaches, min TTC {m['min_ttc_s']} s", highlight=False)
    console.print(f"unavoidable cells: {', '.join(result['unavoidable_cells']) or 'none'}",  # type: ignore[arg-type]
                  highlight=False)
    if json_out is not None:
        doc = {"suite": name, "scenarios": [r.row() for r in runs], "summary": result}
        json_out.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")


@app.command("scenario")
def scenario_command(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file (schema in docs/adas.md).", dir_okay=False)],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of distance, speeds, acceleration and "
                                                             "lane position over time.", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON instead of a table.")] = False,
) -> None:
    """Run one scenario file and report its metrics."""
    check_outputs(plot)
    try:
        scenario = load_scenario(file)
        vehicle = load_vehicle(scenario.ego.vehicle)
        result = simulate(scenario, vehicle=vehicle)
        best = best_case_impact_mps(scenario, vehicle)
    except EvosError as exc:
        raise fail(exc) from None
    metrics = {**result.metrics(), "unavoidable": best > 0, "best_case_impact_mps": round(best, 3)}
    if as_json:
        print(json.dumps(metrics, indent=1))
    else:
        table = Table(title=f"{scenario.name}" + (f" — {scenario.description}" if scenario.description else ""))
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            if key != "name":
                table.add_row(key.replace("_", " "), str(value))
        console.print(table)
    if plot is not None:
        road = scenario.road
        _plot(result, scenario.name, plot, (road.lowest_lane, road.highest_lane), road.lane_width_m)


def _plot(result: RunResult, title: str, path: Path, lanes: tuple[int, int], lane_width_m: float) -> None:
    plt = pyplot()

    tr = result.trace
    t = tr.time_s
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(t, tr.gap_m, color="tab:blue")
    axes[0].set_ylabel("gap in lane, m")
    axes[1].plot(t, tr.ego_speed_mps * 3.6, label="ego", color="black")
    for i in range(tr.target_speed_mps.shape[1]):
        axes[1].plot(t, tr.target_speed_mps[:, i] * 3.6, label=f"target {i}", linewidth=0.9)
        axes[3].plot(t, tr.target_lateral_m[:, i], label=f"target {i}", linewidth=0.9)
    axes[3].plot(t, tr.ego_lateral_m, label="ego", color="black")
    axes[1].set_ylabel("speed, km/h")
    axes[1].legend(loc="upper right")
    axes[2].plot(t, tr.demand_mps2, label="demand", color="tab:gray", linewidth=0.8)
    axes[2].plot(t, tr.ego_accel_mps2, label="ego", color="tab:red")
    axes[2].set_ylabel("accel, m/s²")
    axes[2].legend(loc="lower right")
    w = lane_width_m
    for edge in np.arange(lanes[0] - 0.5, lanes[1] + 1.0) * w:
        axes[3].axhline(edge, color="gray", linestyle="--", linewidth=0.6)
    axes[3].set_ylabel("lane position, m (left +)")
    axes[3].legend(loc="upper right")
    axes[3].set_xlabel("time, s")
    verdict = f"collision at {result.impact_speed_mps:.2f} m/s" if result.collision else "no collision"
    fig.suptitle(f"{title}: {verdict}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@app.command("highway-env")
def highway_env_command(
    env: Annotated[str, typer.Option("--env", help="highway-env environment id (highway-v0, highway-fast-v0, "
                                                   "merge-v0, ...).")] = "highway-v0",
    episodes: Annotated[int, typer.Option("--episodes", help="Episodes per policy.", min=1)] = 10,
    seed_start: Annotated[int, typer.Option("--seed-start", help="Seed of the first episode (then +1 each).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the evos result (and the IDM "
                                                                 "reference) as JSON to this file.",
                                                  dir_okay=False)] = None,
) -> None:
    """Drive highway-env's ego with the evos stack, and compare with its own IDM/MOBIL ego on the same seeds."""
    check_outputs(json_out)
    try:
        ours = run_highway_env(env, episodes, seed_start, "evos")
        reference = run_highway_env(env, episodes, seed_start, "idm")
    except EvosError as exc:
        raise fail(exc) from None
    table = Table(title=f"{env}: {episodes} episodes from seed {seed_start}")
    for column in ("ego", "collisions", "collision rate", "mean speed m/s"):
        table.add_column(column, justify="left" if column == "ego" else "right")
    for r, label in ((ours, "evos (ACC, AEB, lane centring, lane changes)"), (reference, "highway-env IDM/MOBIL")):
        table.add_row(label, str(r.collisions), f"{r.collision_rate:.2f}", f"{r.mean_speed_mps:.2f}")
    console.print(table)
    if json_out is not None:
        doc = {**ours.as_json(), "reference_idm": reference.as_json()}
        json_out.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
