"""Prediction of EPA dynamometer results (charge-depleting UDDS and Highway, AC energy at the wall)
from the columns of the EPA Test Car List, with defaults that are the same for every vehicle.

What one row gives: equivalent test weight, target road-load coefficients A/B/C, drive system, rated
power, N/V ratio. Everything else (drivetrain losses, regenerative braking, auxiliary load, charger
and battery) is a shared default, calibrated once over the EPA 2022 battery-electric rows (docs/twin.md).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from evos.errors import DataError
from evos.twin._config import (
    LB_KG,
    MPH_MPS,
    Axle,
    Battery,
    Charging,
    Climate,
    Drivetrain,
    Motor,
    RoadLoad,
    Vehicle,
    road_load_is_positive,
)
from evos.twin._cycles import load_cycle
from evos.twin._simulate import J_PER_KWH, CycleResult, simulate_batch

HP_W = 745.699872  # watts per mechanical horsepower
MI_M = 1609.344
COLUMNS = {
    "id": "Test Vehicle ID", "make": "Represented Test Veh Make", "model": "Represented Test Veh Model",
    "drive": "Drive System Code", "hp": "Rated Horsepower", "nv": "N/V Ratio",
    "etw": "Equivalent Test Weight (lbs.)", "a": "Target Coef A (lbf)", "b": "Target Coef B (lbf/mph)",
    "c": "Target Coef C (lbf/mph**2)",
}
MEASURED = {"udds": "udds_kwh_100mi", "hwfet": "hwy_kwh_100mi"}
# EPA's 2022 battery-electric results, shipped with evos (source: data/epa/README.md)
BUILTIN_CSV = resources.files("evos.twin").joinpath("data", "epa", "epa_2022_bev_tests.csv")
# the Test Car List as EPA publishes it: one row per test
TEST_COLUMNS = {"procedure": "Test Procedure Description", "fuel": "Test Fuel Type Description", "result": "RND_ADJ_FE"}
PROCEDURES = {"Charge Depleting UDDS": "udds", "Charge Depleting Highway": "hwfet"}
CONFIGURATION_COLUMN = "Test Veh Configuration #"
DRIVE_DESCRIPTION = "Drive System Description"
DISPLACEMENT = "Test Veh Displacement (L)"
CYLINDERS = "# of Cylinders and Rotors"
DRIVE_WORDS = (("front", "F"), ("rear", "R"), ("all wheel", "A"), ("part-time", "P"), ("4-wheel", "4"))
KWH_PER_GALLON_EQUIVALENT = 33.705  # EPA's definition of MPGe

# Shared defaults, calibrated over the EPA 2022 BEV rows (see docs/twin.md for how and how well).
SHARED_DRIVETRAIN = Drivetrain()  # its defaults are the calibrated shared values
SHARED_AUX_W = 164.8  # 12 V loads during the test (climate off), calibrated
SHARED_CHARGER_EFFICIENCY = 0.90
SHARED_BATTERY = Battery(chemistry="NMC", gross_kwh=80.0, cells_series=96)


@dataclass(frozen=True)
class EpaRow:
    """The columns of one Test Car List row that the prediction uses, and the measured results."""

    test_vehicle_id: str
    make: str
    model: str
    drive: str
    rated_hp: float
    nv_ratio: float | None
    etw_lb: float
    a_lbf: float
    b_lbf_per_mph: float
    c_lbf_per_mph2: float
    measured_kwh_100mi: dict[str, float | None]


def read_epa_csv(path: Path) -> list[EpaRow]:
    """Rows of an EPA Test Car List CSV; DataError names the file, line and column when one is bad.

    Two shapes are read: one row per configuration with its results in ``udds_kwh_100mi`` /
    ``hwy_kwh_100mi`` (as in ``epa_2022_bev_tests.csv``), or the Test Car List as EPA publishes it, one
    row per test, from which the battery-electric configurations are taken (`_battery_electric_rows`).
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            missing = [c for c in COLUMNS.values() if c not in fields
                       and not (c == COLUMNS["drive"] and DRIVE_DESCRIPTION in fields)]
            if missing:
                raise DataError(str(path), "header", f"missing column(s) {missing}")
            if any(c in fields for c in MEASURED.values()):
                return [_row(raw, str(path), reader.line_num, _measured(raw, str(path), reader.line_num))
                        for raw in reader]
            if all(c in fields for c in TEST_COLUMNS.values()):
                return _battery_electric_rows(reader, str(path))
            raise DataError(str(path), "header", f"no results: it needs the columns {list(MEASURED.values())}, or "
                                                 f"EPA's per-test columns {list(TEST_COLUMNS.values())}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(str(path), None, f"cannot read the CSV: {exc}") from exc


def _battery_electric_rows(reader: csv.DictReader[str], source: str) -> list[EpaRow]:
    """The battery-electric configurations of a Test Car List as EPA publishes it (one row per test).

    A vehicle is battery-electric when every test of its Test Vehicle ID ran on electricity and it has
    no engine, by cylinders or displacement (a plug-in hybrid has gasoline tests, or at least an engine). Its
    charge-depleting UDDS and Highway results are averaged per configuration (the same ID,
    configuration number and row columns), in the order the configurations first appear. EPA writes
    every result under the unit "MPG": values above 60 are MPGe (33.705 kWh per gallon equivalent),
    lower ones are already kWh/100 mi (a battery-electric car's unadjusted result lies between about
    12 and 55 kWh/100 mi, 60-280 MPGe).
    """
    lines = [(reader.line_num, raw) for raw in reader]
    fuels: dict[str, set[str]] = {}
    for _, raw in lines:
        fuel = (raw.get(TEST_COLUMNS["fuel"]) or "").strip()
        fuels.setdefault(raw[COLUMNS["id"]], set()).add(fuel if _engineless(raw) else "engine")
    configurations: dict[tuple[str, ...], tuple[int, Mapping[str, Any], dict[str, list[float]]]] = {}
    for line, raw in lines:
        cycle = PROCEDURES.get((raw.get(TEST_COLUMNS["procedure"]) or "").strip())
        if cycle is None or fuels[raw[COLUMNS["id"]]] != {"Electricity"}:
            continue
        value = _number(raw, TEST_COLUMNS["result"], source, line, optional=True)
        if not value:  # blank or 0: no result (EPA writes 0 for a test that was not completed)
            continue
        if value < 0:
            raise DataError(source, f"line {line}, column {TEST_COLUMNS['result']!r}", f"must be > 0, got {value}")
        key = (raw.get(CONFIGURATION_COLUMN) or "", *(raw.get(c) or "" for c in COLUMNS.values()))
        configurations.setdefault(key, (line, raw, {c: [] for c in MEASURED}))[2][cycle].append(
            100 * KWH_PER_GALLON_EQUIVALENT / value if value > 60 else value)
    if not configurations:
        raise DataError(source, None, "no battery-electric charge-depleting UDDS or Highway result in it")
    return [_row(raw, source, line, {c: round(statistics.fmean(v), 2) if v else None for c, v in results.items()})
            for line, raw, results in configurations.values()]


def _number(raw: Mapping[str, Any], column: str, source: str, line: int, optional: bool = False) -> float | None:
    text = (raw.get(column) or "").strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(source, f"line {line}, column {column!r}", f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DataError(source, f"line {line}, column {column!r}", f"not finite: {text!r}")
    return value


def _measured(raw: Mapping[str, Any], source: str, line: int) -> dict[str, float | None]:
    measured = {cyc: _number(raw, col, source, line, optional=True) for cyc, col in MEASURED.items() if col in raw}
    for cyc, value in measured.items():
        if value is not None and value <= 0:
            raise DataError(source, f"line {line}, column {MEASURED[cyc]!r}", f"must be > 0, got {value}")
    return measured


def _engineless(raw: Mapping[str, Any]) -> bool:
    """No engine: no cylinders, and a displacement EPA writes for none (0.001-0.1 L or 99.999 L). A plug-in
    hybrid has both (EPA's 2017 list has no displacement column, but cylinders)."""
    if (raw.get(CYLINDERS) or "").strip() not in ("", "0"):
        return False
    try:
        litres = float((raw.get(DISPLACEMENT) or "0").strip())
    except ValueError:
        return True
    return litres < 0.5 or litres >= 99


def _drive_code(raw: Mapping[str, Any]) -> str:
    """F, R, A, 4 or P; from the description where a list has no code column (EPA's 2017 list)."""
    if COLUMNS["drive"] in raw:
        return (raw[COLUMNS["drive"]] or "").strip().upper()
    description = (raw.get(DRIVE_DESCRIPTION) or "").lower()
    return next((code for words, code in DRIVE_WORDS if words in description), "")


def _row(raw: Mapping[str, Any], source: str, line: int, measured: dict[str, float | None]) -> EpaRow:
    def num(key: str) -> float:
        value = _number(raw, COLUMNS[key], source, line)
        assert value is not None
        return value

    for key in ("hp", "etw"):
        if num(key) <= 0:
            raise DataError(source, f"line {line}, column {COLUMNS[key]!r}", "must be > 0")
    if not road_load_is_positive(RoadLoad.from_epa(num("a"), num("b"), num("c"))):
        raise DataError(source, f"line {line}", "target coefficients A/B/C give a road load that is not positive")
    nv = _number(raw, COLUMNS["nv"], source, line, optional=True)
    return EpaRow(
        test_vehicle_id=raw[COLUMNS["id"]], make=raw[COLUMNS["make"]], model=raw[COLUMNS["model"]],
        drive=_drive_code(raw), rated_hp=num("hp"),
        nv_ratio=nv if nv is not None and 20 < nv < 300 else None,  # EPA writes 999.9 for "not applicable"
        etw_lb=num("etw"), a_lbf=num("a"), b_lbf_per_mph=num("b"), c_lbf_per_mph2=num("c"),
        measured_kwh_100mi=measured,
    )


BASE_SPEED_MPS = 50 / 3.6  # full torque up to ~50 km/h, constant power above


def vehicle_from_row(row: EpaRow, drivetrain: Drivetrain = SHARED_DRIVETRAIN, aux_w: float = SHARED_AUX_W,
                     charger_efficiency: float = SHARED_CHARGER_EFFICIENCY, peak_w: float | None = None) -> Vehicle:
    """A twin vehicle from one row's columns and the shared defaults (``peak_w`` replaces the rated power)."""
    awd = row.drive in ("A", "4", "P")
    peak_w = row.rated_hp * HP_W if peak_w is None else peak_w
    radius = drivetrain.wheel_radius_m
    # N/V: motor rpm per mph in top gear -> reduction ratio for the shared wheel radius
    gear = (row.nv_ratio * 2 * math.pi / 60 / MPH_MPS * radius) if row.nv_ratio else 9.0
    axles: tuple[Axle, ...] = ("front", "rear") if awd else ("front",) if row.drive == "F" else ("rear",)
    per_motor_w = peak_w / len(axles)
    base_speed_rad_s = BASE_SPEED_MPS * gear / radius
    motors = tuple(Motor(peak_power_kw=per_motor_w / 1e3, peak_torque_nm=per_motor_w / base_speed_rad_s,
                         axle=axle, gear_ratio=gear, max_speed_rpm=20000.0) for axle in axles)
    return Vehicle(
        name=f"{row.make} {row.model} ({row.test_vehicle_id})", motors=motors, battery=SHARED_BATTERY,
        road_load=RoadLoad.from_epa(row.a_lbf, row.b_lbf_per_mph, row.c_lbf_per_mph2),
        test_mass_kg=row.etw_lb * LB_KG, drivetrain=drivetrain,
        charging=Charging(charger_efficiency=charger_efficiency, ac_max_kw=7.2), climate=Climate(aux_w=aux_w),
    )


def power_to_follow_w(result: CycleResult) -> float:
    """The least peak (mechanical) power in W that follows the result's trace, with the shared motor model's
    full torque up to 50 km/h and constant power above."""
    speed = (result.speed_mps[:-1] + result.speed_mps[1:]) / 2
    needed = result.wheel_power_w * np.maximum(1.0, BASE_SPEED_MPS / np.maximum(speed, 1e-3))
    return float(needed.max())


def predict(rows: Sequence[EpaRow], **shared: Any) -> list[dict[str, float]]:
    """Predicted wall energy (kWh/100 mi) on the charge-depleting UDDS and Highway tests, per row.

    A row whose rated power cannot follow a cycle's trace was still driven over it on the dynamometer,
    so its rated power is wrong (EPA's lists hold such typos, e.g. 37 hp for a 4,000 lb car): that
    row is predicted with the power the trace needs, and ``power_used_hp`` says so. NaN when even
    that cannot follow (a row's other columns are then wrong too).
    """
    cycles = [load_cycle(name) for name in MEASURED]
    vehicles = [vehicle_from_row(r, **shared) for r in rows]
    results = [simulate_batch(vehicles, cycle, soc0=0.6) for cycle in cycles]
    out: list[dict[str, float]] = [{} for _ in rows]
    for i, row in enumerate(rows):
        short = [per_cycle[i] for per_cycle in results if per_cycle[i].trace_shortfall_s > 0]
        if short:  # one power for both tests: the larger need, with 2 % to spare
            peak_w = max(power_to_follow_w(r) for r in short) * 1.02
            out[i]["power_used_hp"] = peak_w / HP_W
            redone = vehicle_from_row(row, peak_w=peak_w, **shared)
            for per_cycle, cycle in zip(results, cycles, strict=True):
                per_cycle[i] = simulate_batch([redone], cycle, soc0=0.6)[0]
        for name, per_cycle in zip(MEASURED, results, strict=True):
            result = per_cycle[i]
            kwh_100mi = result.energy_j["wall"] / J_PER_KWH / (result.distance_m / MI_M) * 100
            out[i][name] = kwh_100mi if result.trace_shortfall_s == 0 else math.nan
    return out


def report(rows: Sequence[EpaRow], **shared: Any) -> dict[str, Any]:
    """The ``validate-epa`` JSON: one object per row (CSV order) and a summary of absolute % errors."""
    predictions = predict(rows, **shared)
    vehicles = []
    for row, pred in zip(rows, predictions, strict=True):
        entry: dict[str, Any] = {"test_vehicle_id": row.test_vehicle_id, "make": row.make, "model": row.model}
        if "power_used_hp" in pred:
            entry["power_note"] = (f"its rated power ({row.rated_hp:g} hp) cannot follow the test's trace, which "
                                   f"was driven: predicted with the {pred['power_used_hp']:.0f} hp the trace needs")
        for cycle_name, prefix in (("udds", "udds"), ("hwfet", "hwy")):
            measured = row.measured_kwh_100mi.get(cycle_name)
            followed = not math.isnan(pred[cycle_name])
            entry[f"{prefix}_kwh_100mi_pred"] = round(pred[cycle_name], 3) if followed else None
            entry[f"{prefix}_kwh_100mi_measured"] = measured
            if not followed:
                entry[f"{prefix}_note"] = "this row cannot follow the cycle's trace: left out of the summary"
            elif measured:
                entry[f"{prefix}_error_pct"] = round((pred[cycle_name] / measured - 1) * 100, 2)
        vehicles.append(entry)
    return report_from_vehicles(vehicles)


def report_from_vehicles(vehicles: list[dict[str, Any]]) -> dict[str, Any]:
    """The report around per-row entries: the summary of their absolute percentage errors."""
    errors = [abs(v[key]) for v in vehicles for key in ("udds_error_pct", "hwy_error_pct") if key in v]
    summary: dict[str, Any] = {"rows": len(vehicles), "predictions_compared": len(errors)}
    if errors:
        ordered = sorted(errors)
        summary.update({
            "median_abs_error_pct": round(statistics.median(ordered), 2),
            "p90_abs_error_pct": round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 2),
            "mean_abs_error_pct": round(statistics.fmean(ordered), 2),
            "max_abs_error_pct": round(ordered[-1], 2),
        })
    return {"vehicles": vehicles, "summary": summary}


__all__ = ["SHARED_DRIVETRAIN", "EpaRow", "predict", "read_epa_csv", "report", "vehicle_from_row"]
