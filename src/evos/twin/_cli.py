"""``evos twin ...``: the digital twin for people — presets, cycle simulation, EPA validation."""

from __future__ import annotations

import bisect
import csv
import json
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import track
from rich.table import Table

from evos._connect import CaOpt, Connection, TokenFileOpt, TokenOpt
from evos._console import check_outputs, console, err_console, fail, pyplot, run_async
from evos.errors import EvosError, InvalidArgumentError
from evos.twin import _epa
from evos.twin._cycles import BUILTIN, load_cycle
from evos.twin._realtime import CONDITIONING_TARGET_C
from evos.twin._simulate import CycleResult, simulate_cycle
from evos.twin._vehicles import list_vehicles, load_vehicle

app = typer.Typer(name="twin", no_args_is_help=True, help="The digital twin: vehicles, drive cycles, energy.")

VehicleOpt = Annotated[str, typer.Option("--vehicle", "-v", help="Preset name (see 'evos twin vehicles') or a "
                                                                   "vehicle file (TOML/YAML).")]


@app.command("vehicles")
def vehicles_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the vehicle presets with their key figures."""
    rows: list[dict[str, Any]] = []
    for name in list_vehicles():
        v = load_vehicle(name)
        rows.append({"preset": name, "name": v.name, "mass_kg": round(v.mass_kg), "power_kw": v.peak_power_kw,
                     "battery_kwh": v.battery.gross_kwh, "chemistry": v.battery.chemistry,
                     "motors": len(v.motors)})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="vehicle presets (sources in each file)")
    for column in ("preset", "name", "test mass kg", "power kW", "battery kWh", "chemistry", "motors"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["preset"], r["name"], str(r["mass_kg"]), f"{r['power_kw']:.0f}",
                      f"{r['battery_kwh']:.1f}", r["chemistry"], str(r["motors"]))
    console.print(table)


def _summary(result: CycleResult) -> dict[str, Any]:
    e = result.energy_j
    return {
        "vehicle": result.vehicle, "cycle": result.cycle, "distance_km": round(result.distance_m / 1e3, 3),
        "duration_s": float(result.time_s[-1] - result.time_s[0]),
        "battery_kwh": round(result.battery_kwh, 4), "wall_kwh": round(result.wall_kwh, 4),
        "kwh_per_100km": round(result.kwh_per_100km, 3), "wall_kwh_per_100km": round(result.wall_kwh_per_100km, 3),
        "regen_share": round(result.regen_share, 4), "soc_used_pct": round(result.soc_used * 100, 3),
        "trace_shortfall_s": result.trace_shortfall_s, "battery_depleted_s": result.battery_depleted_s,
        "energy_kwh": {k: round(v / 3.6e6, 5) for k, v in e.items()},
    }


@app.command("simulate")
def simulate_command(
    vehicle: VehicleOpt,
    cycle: Annotated[str, typer.Option("--cycle", "-c", help=f"Built-in cycle ({', '.join(BUILTIN)}) or a CSV of "
                                                              "time_s,speed_mps[,grade].")],
    soc: Annotated[float, typer.Option("--soc", help="State of charge at the start, percent.", min=0, max=100)] = 90,
    ambient: Annotated[float, typer.Option("--ambient", help="Ambient temperature, °C.", min=-40, max=55)] = 23.0,
    hvac: Annotated[float | None, typer.Option("--hvac", help="Cabin climate on, holding this temperature, °C "
                                                              "(off by default).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of speed, power and SoC over time.",
                                              dir_okay=False)] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the per-second trace as CSV.",
                                                 dir_okay=False)] = None,
) -> None:
    """Drive a vehicle over a cycle: distance, energy, kWh/100 km, regen share, SoC used."""
    check_outputs(plot, csv_out)
    try:
        result = simulate_cycle(load_vehicle(vehicle), load_cycle(cycle), soc0=soc / 100, ambient_c=ambient,
                                hvac_setpoint_c=hvac)
    except EvosError as exc:
        raise fail(exc) from None
    summary = _summary(result)
    if as_json:
        print(json.dumps(summary, indent=1))
    else:
        table = Table(title=f"{result.vehicle} on {result.cycle}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for label, value in (("distance", f"{summary['distance_km']:.2f} km"),
                             ("battery energy", f"{summary['battery_kwh']:.3f} kWh"),
                             ("consumption (battery)", f"{summary['kwh_per_100km']:.2f} kWh/100 km"),
                             ("consumption (wall, AC)", f"{summary['wall_kwh_per_100km']:.2f} kWh/100 km"),
                             ("regenerated share of braking", f"{summary['regen_share'] * 100:.1f} %"),
                             ("SoC used", f"{summary['soc_used_pct']:.2f} %")):
            table.add_row(label, value)
        for name, kwh in summary["energy_kwh"].items():
            table.add_row(f"  energy: {name.replace('_', ' ')}", f"{kwh:.4f} kWh")
        if result.trace_shortfall_s:
            table.add_row("[yellow]could not follow the trace for[/]", f"{result.trace_shortfall_s:.0f} s")
        if result.battery_depleted_s:
            table.add_row("[red]battery empty for the last[/]", f"{result.battery_depleted_s:.0f} s")
        console.print(table)
    if csv_out is not None:
        _write_csv(result, csv_out)
    if plot is not None:
        _plot(result, plot)


def _write_csv(result: CycleResult, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_s", "speed_mps", "wheel_power_w", "battery_power_w", "soc", "battery_temp_c"])
        for k in range(len(result.time_s)):
            step = k - 1 if k else 0  # power of the step ending at this sample
            writer.writerow([f"{result.time_s[k]:g}", f"{result.speed_mps[k]:.4f}",
                             f"{result.wheel_power_w[step] if k else 0.0:.1f}",
                             f"{result.battery_power_w[step] if k else 0.0:.1f}",
                             f"{result.soc[k]:.6f}", f"{result.battery_temp_c[k]:.3f}"])


def _plot(result: CycleResult, path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    t = result.time_s
    axes[0].plot(t, result.speed_mps * 3.6, color="tab:blue")
    axes[0].set_ylabel("speed, km/h")
    axes[1].plot(t[1:], result.wheel_power_w / 1e3, label="wheels", color="tab:gray", linewidth=0.8)
    axes[1].plot(t[1:], result.battery_power_w / 1e3, label="battery", color="tab:red", linewidth=0.8)
    axes[1].axhline(0, color="black", linewidth=0.5)
    axes[1].set_ylabel("power, kW")
    axes[1].legend(loc="upper right")
    axes[2].plot(t, result.soc * 100, color="tab:green")
    axes[2].set_ylabel("state of charge, %")
    axes[2].set_xlabel("time, s")
    fig.suptitle(f"{result.vehicle} — {result.cycle}: {result.kwh_per_100km:.2f} kWh/100 km (battery)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@app.command("range")
def range_command(
    vehicle: VehicleOpt,
    procedure: Annotated[str, typer.Option("--procedure", "-p", help="epa (two-cycle label) or wltp.")] = "epa",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Range and consumption by a test procedure: the EPA label or WLTP."""
    from evos.twin._procedures import epa_label, wltp

    if procedure.lower() not in ("epa", "wltp"):
        raise fail(InvalidArgumentError(f"unknown procedure {procedure!r}: use epa or wltp"))
    try:
        car = load_vehicle(vehicle)
    except EvosError as exc:
        raise fail(exc) from None
    result = epa_label(car) if procedure.lower() == "epa" else wltp(car)
    out = {"vehicle": car.name, "procedure": result.procedure, "range_km": round(result.range_km, 1),
           "wall_kwh_per_100km": round(result.wall_kwh_per_100km, 2),
           **{k: round(v, 2) for k, v in result.details.items()}}
    if as_json:
        print(json.dumps(out, indent=1))
        return
    table = Table(title=f"{car.name}: {result.procedure} {'label (adjusted)' if result.procedure == 'EPA' else ''}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in out.items():
        if key not in ("vehicle", "procedure"):
            table.add_row(key.replace("_", " "), f"{value:,.1f}")
    console.print(table)


@app.command("performance")
def performance_command(vehicle: VehicleOpt,
                        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """0-100 km/h time and top speed from the same model."""
    from evos.twin._procedures import acceleration_s, top_speed_kmh

    try:
        car = load_vehicle(vehicle)
    except EvosError as exc:
        raise fail(exc) from None
    out = {"vehicle": car.name, "zero_to_100_kmh_s": round(acceleration_s(car), 2),
           "top_speed_kmh": round(top_speed_kmh(car), 1)}
    if as_json:
        print(json.dumps(out))
    else:
        console.print(f"{car.name}: 0-100 km/h in [bold]{out['zero_to_100_kmh_s']:.1f} s[/], "
                      f"top speed [bold]{out['top_speed_kmh']:.0f} km/h[/]", highlight=False)


@app.command("charge")
def charge_command(
    vehicle: VehicleOpt,
    soc_from: Annotated[float, typer.Option("--from", help="Start state of charge, percent.", min=0, max=100)] = 10,
    soc_to: Annotated[float, typer.Option("--to", help="Target state of charge, percent.", min=0, max=100)] = 80,
    charger_kw: Annotated[float, typer.Option("--charger-kw", help="Charger power, kW.", min=0.1)] = 250.0,
    ac: Annotated[bool, typer.Option("--ac", help="AC charging through the on-board charger (default DC).")] = False,
    ambient: Annotated[float, typer.Option("--ambient", help="Ambient temperature, °C.", min=-40, max=55)] = 23.0,
    pack_temp: Annotated[float | None, typer.Option("--pack-temp", help="Pack temperature at the start, °C "
                                                    "(default: the ambient).", min=-40, max=60)] = None,
    precondition: Annotated[bool, typer.Option(
        "--precondition", help="Warm the pack to the fast-charging target first (VSS battery conditioning, "
                               f"{CONDITIONING_TARGET_C['FAST_CHARGING_PREPARATION']:g} °C): says how long the "
                               "heater takes and what it costs, and the charging time it saves.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of power and SoC over time.",
                                              dir_okay=False)] = None,
) -> None:
    """Charging time and energy from one state of charge to another, with the car's DC power curve."""
    from evos.twin._battery import conditioning_s
    from evos.twin._charge import charge

    check_outputs(plot)
    start_c = ambient if pack_temp is None else pack_temp
    target_c = CONDITIONING_TARGET_C["FAST_CHARGING_PREPARATION"]
    try:
        car = load_vehicle(vehicle)
        heating_s = conditioning_s(car, start_c, target_c, ambient) if precondition else 0.0
        if heating_s is None:
            raise InvalidArgumentError(f"the pack heater ({car.battery.heater_kw:g} kW) cannot warm the pack to "
                                       f"{target_c:g} °C at {ambient:g} °C ambient")
        session = partial(charge, car, soc_from / 100, soc_to / 100, charger_kw, dc=not ac, ambient_c=ambient)
        result = session(battery_temp_c=max(start_c, target_c) if precondition else start_c)
        cold = session(battery_temp_c=start_c) if precondition else result
    except EvosError as exc:
        raise fail(exc) from None
    car_max_kw = car.charging.ac_max_kw if ac else car.charging.dc_max_kw  # on-board charger, or DC inlet
    out: dict[str, Any] = {"vehicle": result.vehicle, "mode": result.mode, "from_pct": soc_from, "to_pct": soc_to,
           "charger_kw": charger_kw, "car_max_kw": car_max_kw,
           "minutes": round(result.duration_s / 60, 2), "energy_from_charger_kwh": round(result.grid_kwh, 3),
           "peak_power_kw": round(float(result.battery_power_w.max()) / 1e3, 1),
           "battery_temp_end_c": round(float(result.battery_temp_c[-1]), 1), "reached": result.reached}
    if precondition:
        out["precondition"] = {"pack_from_c": start_c, "pack_to_c": max(start_c, target_c),
                               "minutes": round(heating_s / 60, 1),
                               "heater_kwh": round(car.battery.heater_kw * heating_s / 3600, 2),
                               "charging_minutes_without": round(cold.duration_s / 60, 2)}
    if as_json:
        print(json.dumps(out))
    else:
        console.print(f"{result.vehicle}: {result.mode} {soc_from:g} -> {soc_to:g} % at a {charger_kw:g} kW charger "
                      f"in [bold]{out['minutes']:.1f} min[/], {out['energy_from_charger_kwh']:.1f} kWh, peak "
                      f"{out['peak_power_kw']:.0f} kW, pack {out['battery_temp_end_c']:.0f} °C", highlight=False)
        if precondition:
            pre = out["precondition"]
            console.print(f"preconditioning: {pre['minutes']:.0f} min and {pre['heater_kwh']:.1f} kWh to warm the pack "
                          f"from {start_c:g} to {pre['pack_to_c']:g} °C; charging without it: "
                          f"{pre['charging_minutes_without']:.1f} min", highlight=False)
        if charger_kw > car_max_kw:
            what = "its on-board charger" if ac else "its DC power curve"
            console.print(f"the car takes at most {car_max_kw:g} kW {result.mode} ({what}), not the charger's "
                          f"{charger_kw:g} kW", highlight=False)
    if plot is not None:
        plt = pyplot()

        fig, ax = plt.subplots(figsize=(9, 4.5))
        minutes = result.time_s / 60
        ax.plot(minutes, result.battery_power_w / 1e3, color="tab:red", label="power into battery, kW")
        ax.set_xlabel("time, min")
        ax.set_ylabel("kW")
        ax2 = ax.twinx()
        ax2.plot(minutes, result.soc * 100, color="tab:green", label="state of charge, %")
        ax2.set_ylabel("%")
        fig.legend(loc="lower center", ncol=2)
        ax.set_title(f"{result.vehicle}: {result.mode} charge {soc_from:g} -> {soc_to:g} %")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(plot, dpi=110)
        plt.close(fig)


@app.command("validate-epa")
def validate_epa_command(
    csv_path: Annotated[Path | None, typer.Argument(
        help="EPA Test Car List CSV: one row per configuration with udds_kwh_100mi / hwy_kwh_100mi, or the list as "
             "EPA publishes it (one row per test; its battery-electric cars are used). Default: the 51 battery-"
             "electric configurations of EPA's 2022 list shipped with evos.", exists=True, dir_okay=False)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON to this file.",
                                                  dir_okay=False)] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of predicted against measured, "
                                                             "per cycle, with the ±3 % and ±6 % bands.",
                                              dir_okay=False)] = None,
) -> None:
    """Predict each row's EPA UDDS and Highway wall energy from its own columns and shared defaults."""
    check_outputs(json_out, plot)
    try:
        with resources.as_file(_epa.BUILTIN_CSV) as builtin:
            rows = _epa.read_epa_csv(csv_path or builtin)
        chunk = 50
        parts = [_epa.report(rows[i:i + chunk]) for i in track(range(0, len(rows), chunk),
                                                                 description="simulating", console=err_console,
                                                                 transient=True)]
        report = _epa.report_from_vehicles([v for part in parts for v in part["vehicles"]])
    except EvosError as exc:
        raise fail(exc) from None
    name = csv_path.name if csv_path else _epa.BUILTIN_CSV.name
    table = Table(title=f"EPA charge-depleting tests, AC wall energy (kWh/100 mi): {name}")
    for column in ("vehicle", "UDDS meas.", "UDDS pred.", "err %", "HWY meas.", "HWY pred.", "err %"):
        table.add_column(column, justify="left" if column == "vehicle" else "right")

    def cell(value: Any, fmt: str = "{:.2f}") -> str:
        return "" if value is None else fmt.format(value)

    for v in report["vehicles"]:
        table.add_row(f"{v['make']} {v['model']}"[:40], cell(v["udds_kwh_100mi_measured"]),
                      cell(v["udds_kwh_100mi_pred"]), cell(v.get("udds_error_pct"), "{:+.1f}"),
                      cell(v["hwy_kwh_100mi_measured"]), cell(v["hwy_kwh_100mi_pred"]),
                      cell(v.get("hwy_error_pct"), "{:+.1f}"))
    console.print(table)
    s = report["summary"]
    if "median_abs_error_pct" in s:
        console.print(f"{s['predictions_compared']} predictions: median absolute error "
                      f"[bold]{s['median_abs_error_pct']:.2f} %[/], p90 [bold]{s['p90_abs_error_pct']:.2f} %[/], "
                      f"mean {s['mean_abs_error_pct']:.2f} %, max {s['max_abs_error_pct']:.2f} %", highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=1))
    if plot is not None:
        _parity_plot(report, name, plot)


def _parity_plot(report: dict[str, Any], title: str, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    points = {c: [(v[f"{c}_kwh_100mi_measured"], v[f"{c}_kwh_100mi_pred"]) for v in report["vehicles"]
                  if v[f"{c}_kwh_100mi_measured"] and v[f"{c}_kwh_100mi_pred"]] for c in ("udds", "hwy")}
    values = [x for cycle in points.values() for pair in cycle for x in pair]
    low, high = (min(values) * 0.9, max(values) * 1.1) if values else (10.0, 50.0)
    line = [low, high]
    ax.plot(line, line, color="black", linewidth=1)
    for band, style in ((0.03, ":"), (0.06, "--")):
        for sign in (1, -1):
            ax.plot(line, [x * (1 + sign * band) for x in line], color="grey", linestyle=style, linewidth=0.8,
                    label=f"±{band:.0%}" if sign == 1 else None)
    for cycle, name, color in (("udds", "UDDS (city)", "tab:orange"), ("hwy", "Highway", "tab:blue")):
        if points[cycle]:
            measured, predicted = zip(*points[cycle], strict=True)
            ax.scatter(measured, predicted, s=14, color=color, label=name)
    s = report["summary"]
    ax.set_title(f"{title}: median {s.get('median_abs_error_pct', float('nan')):.2f} %, "
                 f"p90 {s.get('p90_abs_error_pct', float('nan')):.2f} %")
    ax.set_xlabel("measured, kWh/100 mi (AC, charge-depleting)")
    ax.set_ylabel("predicted, kWh/100 mi")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def drive_command(
    cycle: Annotated[str, typer.Option("--cycle", "-c", help=f"Built-in cycle ({', '.join(BUILTIN)}) or a CSV.")],
    speedup: Annotated[float, typer.Option("--speedup", help="Run the cycle this many times faster than real time "
                                                             "(at most 100: the twin must see every second).",
                                           min=0.1, max=100)] = 1.0,
    address: Annotated[str, typer.Option("--address", "-a", envvar="EVOS_BROKER_ADDRESS",
                                         help="Broker gRPC address of the running car.")] = "127.0.0.1:55555",
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None,
) -> None:
    """Drive a cycle through the running car ('evos up'): its driver model follows the speed trace."""
    import asyncio

    from rich.progress import Progress

    twin = "Vehicle.Evos.Twin"
    # energy: the change of the battery's energy content (net of regeneration)
    watched = ["Vehicle.TraveledDistance", "Vehicle.Powertrain.TractionBattery.StateOfCharge.CurrentEnergy"]

    async def main() -> dict[str, float]:
        trace = load_cycle(cycle)
        # the speed trace's acceleration from each sample to the next, which the driver model anticipates
        accel = [float((b - a) / (tb - ta)) for a, b, ta, tb in zip(trace.speed_mps[:-1], trace.speed_mps[1:],
                                                                     trace.time_s[:-1], trace.time_s[1:], strict=True)]
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            before = await client.get_many(watched)
            await client.actuate({f"{twin}.ChargerConnected": False, f"{twin}.TimeScale": speedup})
            start = asyncio.get_running_loop().time()
            try:
                with Progress(console=err_console, transient=True) as progress:
                    task = progress.add_task(f"driving {trace.name} at {speedup:g}×", total=trace.duration_s)
                    times_s = [float(t - trace.time_s[0]) for t in trace.time_s]
                    sent = -1
                    while True:
                        # the sample due now in car time: a client that falls behind (a slow machine, a debugged
                        # loop) skips samples rather than stretching the trace, so the car drives the cycle's time
                        car_s = (asyncio.get_running_loop().time() - start) * speedup
                        i = bisect.bisect_right(times_s, car_s) - 1
                        if i > sent:
                            await client.actuate({f"{twin}.Driver.TargetSpeed": float(trace.speed_mps[i] * 3.6),
                                                  f"{twin}.Driver.TargetAcceleration": max(min(accel[i], 10.0), -10.0)
                                                  if i < len(accel) else 0.0})
                            sent = i
                            progress.update(task, completed=times_s[i])
                        if i >= len(times_s) - 1:
                            break
                        next_s = start + times_s[i + 1] / speedup
                        await asyncio.sleep(max(0.0, next_s - asyncio.get_running_loop().time()))
            finally:
                await client.actuate({f"{twin}.Driver.TargetSpeed": 0.0})
                await asyncio.sleep(max(1.0, 5.0 / speedup))
                await client.actuate({f"{twin}.Driver.TargetSpeed": -1.0, f"{twin}.TimeScale": 1.0})
            after = await client.get_many(watched)
        def delta(path: str) -> float:
            return float(after[path].value or 0) - float(before[path].value or 0)  # type: ignore[arg-type]

        distance_m = delta(watched[0])
        energy_kwh = -delta(watched[1])
        return {"distance_km": distance_m / 1e3, "energy_kwh": energy_kwh,
                "kwh_per_100km": energy_kwh / (distance_m / 1e5) if distance_m > 0 else 0.0}

    result = run_async(main())
    console.print(f"drove {cycle}: {result['distance_km']:.2f} km, {result['energy_kwh']:.3f} kWh from the battery, "
                  f"{result['kwh_per_100km']:.2f} kWh/100 km", highlight=False)
