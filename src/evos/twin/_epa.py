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
from pathlib import Path
from typing import Any

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
from evos.twin._simulate import J_PER_KWH, simulate_batch

HP_W = 745.699872  # watts per mechanical horsepower
MI_M = 1609.344
COLUMNS = {
    "id": "Test Vehicle ID", "make": "Represented Test Veh Make", "model": "Represented Test Veh Model",
    "drive": "Drive System Code", "hp": "Rated Horsepower", "nv": "N/V Ratio",
    "etw": "Equivalent Test Weight (lbs.)", "a": "Target Coef A (lbf)", "b": "Target Coef B (lbf/mph)",
    "c": "Target Coef C (lbf/mph**2)",
}
MEASURED = {"udds": "udds_kwh_100mi", "hwfet": "hwy_kwh_100mi"}

# Shared defaults, calibrated over the EPA 2022 BEV rows (see docs/twin.md for how and how well).
SHARED_DRIVETRAIN = Drivetrain()  # its defaults are the calibrated shared values
SHARED_AUX_W = 150.0  # 12 V loads during the test (climate off), calibrated
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
    """Rows of an EPA Test Car List CSV; DataError names the file, line and column when one is bad."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS.values() if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(str(path), "header", f"missing column(s) {missing}")
            return [_row(raw, str(path), number) for number, raw in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(str(path), None, f"cannot read the CSV: {exc}") from exc


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


def _row(raw: Mapping[str, Any], source: str, line: int) -> EpaRow:
    def num(key: str) -> float:
        value = _number(raw, COLUMNS[key], source, line)
        assert value is not None
        return value

    for key in ("hp", "etw"):
        if num(key) <= 0:
            raise DataError(source, f"line {line}, column {COLUMNS[key]!r}", "must be > 0")
    if not road_load_is_positive(RoadLoad.from_epa(num("a"), num("b"), num("c"))):
        raise DataError(source, f"line {line}", "target coefficients A/B/C give a road load that is not positive")
    measured = {cyc: _number(raw, col, source, line, optional=True) for cyc, col in MEASURED.items() if col in raw}
    for cyc, value in measured.items():
        if value is not None and value <= 0:
            raise DataError(source, f"line {line}, column {MEASURED[cyc]!r}", f"must be > 0, got {value}")
    nv = _number(raw, COLUMNS["nv"], source, line, optional=True)
    return EpaRow(
        test_vehicle_id=raw[COLUMNS["id"]], make=raw[COLUMNS["make"]], model=raw[COLUMNS["model"]],
        drive=(raw[COLUMNS["drive"]] or "").strip().upper(), rated_hp=num("hp"),
        nv_ratio=nv if nv is not None and 20 < nv < 300 else None,  # EPA writes 999.9 for "not applicable"
        etw_lb=num("etw"), a_lbf=num("a"), b_lbf_per_mph=num("b"), c_lbf_per_mph2=num("c"),
        measured_kwh_100mi=measured,
    )


def vehicle_from_row(row: EpaRow, drivetrain: Drivetrain = SHARED_DRIVETRAIN, aux_w: float = SHARED_AUX_W,
                     charger_efficiency: float = SHARED_CHARGER_EFFICIENCY) -> Vehicle:
    """A twin vehicle from one row's columns and the shared defaults."""
    awd = row.drive in ("A", "4", "P")
    peak_w = row.rated_hp * HP_W
    radius = drivetrain.wheel_radius_m
    # N/V: motor rpm per mph in top gear -> reduction ratio for the shared wheel radius
    gear = (row.nv_ratio * 2 * math.pi / 60 / MPH_MPS * radius) if row.nv_ratio else 9.0
    axles: tuple[Axle, ...] = ("front", "rear") if awd else ("front",) if row.drive == "F" else ("rear",)
    per_motor_w = peak_w / len(axles)
    base_speed_rad_s = 50 / 3.6 * gear / radius  # full torque up to ~50 km/h, constant power above
    motors = tuple(Motor(peak_power_kw=per_motor_w / 1e3, peak_torque_nm=per_motor_w / base_speed_rad_s,
                         axle=axle, gear_ratio=gear, max_speed_rpm=20000.0) for axle in axles)
    return Vehicle(
        name=f"{row.make} {row.model} ({row.test_vehicle_id})", motors=motors, battery=SHARED_BATTERY,
        road_load=RoadLoad.from_epa(row.a_lbf, row.b_lbf_per_mph, row.c_lbf_per_mph2),
        test_mass_kg=row.etw_lb * LB_KG, drivetrain=drivetrain,
        charging=Charging(charger_efficiency=charger_efficiency, ac_max_kw=7.2), climate=Climate(aux_w=aux_w),
    )


def predict(rows: Sequence[EpaRow], **shared: Any) -> list[dict[str, float]]:
    """Predicted wall energy (kWh/100 mi) on the charge-depleting UDDS and Highway tests, per row."""
    vehicles = [vehicle_from_row(r, **shared) for r in rows]
    out: list[dict[str, float]] = [{} for _ in rows]
    for cycle_name in MEASURED:
        cycle = load_cycle(cycle_name)
        for i, result in enumerate(simulate_batch(vehicles, cycle, soc0=0.6)):
            kwh_100mi = result.energy_j["wall"] / J_PER_KWH / (result.distance_m / MI_M) * 100
            out[i][cycle_name] = kwh_100mi if result.trace_shortfall_s == 0 else math.nan  # cannot follow it
    return out


def report(rows: Sequence[EpaRow], **shared: Any) -> dict[str, Any]:
    """The ``validate-epa`` JSON: one object per row (CSV order) and a summary of absolute % errors."""
    predictions = predict(rows, **shared)
    vehicles = []
    for row, pred in zip(rows, predictions, strict=True):
        entry: dict[str, Any] = {"test_vehicle_id": row.test_vehicle_id, "make": row.make, "model": row.model}
        for cycle_name, prefix in (("udds", "udds"), ("hwfet", "hwy")):
            measured = row.measured_kwh_100mi.get(cycle_name)
            followed = not math.isnan(pred[cycle_name])
            entry[f"{prefix}_kwh_100mi_pred"] = round(pred[cycle_name], 3) if followed else None
            entry[f"{prefix}_kwh_100mi_measured"] = measured
            if not followed:
                entry[f"{prefix}_note"] = "this vehicle cannot follow the cycle's trace: left out of the summary"
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
