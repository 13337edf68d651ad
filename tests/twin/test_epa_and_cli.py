"""EPA validation (`evos twin validate-epa`) and the twin's command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evos.twin import _epa
from helpers import EPA_HEADER, EPA_ROWS, shared_file

ENV = {**os.environ, "COLUMNS": "200"}


def evos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evos", *args], capture_output=True, text=True, timeout=120, env=ENV)


def test_validate_epa_json_contract(tmp_path: Path) -> None:
    csv_path = tmp_path / "epa.csv"
    csv_path.write_text("\n".join([EPA_HEADER, *EPA_ROWS]) + "\n")
    out = tmp_path / "report.json"
    result = evos("twin", "validate-epa", str(csv_path), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "median absolute error" in result.stdout
    report = json.loads(out.read_text())
    assert [v["test_vehicle_id"] for v in report["vehicles"]] == ["YD222-231326", "NKMXV00.0NU1", "MMA00001"]
    for v in report["vehicles"]:
        assert {"test_vehicle_id", "model", "udds_kwh_100mi_pred", "hwy_kwh_100mi_pred",
                "udds_kwh_100mi_measured", "hwy_kwh_100mi_measured"} <= set(v)
        assert 12 < v["udds_kwh_100mi_pred"] < 40 and 12 < v["hwy_kwh_100mi_pred"] < 40
    assert {"median_abs_error_pct", "p90_abs_error_pct"} <= set(report["summary"])


def test_prediction_uses_only_the_rows_columns() -> None:
    rows = _epa.read_epa_csv(_write_rows(EPA_ROWS))
    heavier = [r.__class__(**{**r.__dict__, "etw_lb": r.etw_lb + 500}) for r in rows]
    base, heavy = _epa.predict(rows), _epa.predict(heavier)
    assert all(h["udds"] > b["udds"] for b, h in zip(base, heavy, strict=True))  # mass matters in the city
    alone = _epa.predict(rows[:1])
    assert alone[0] == pytest.approx(base[0])  # no row affects another


def _write_rows(rows: list[str]) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "epa.csv"
    path.write_text("\n".join([EPA_HEADER, *rows]) + "\n")
    return path


def test_full_epa_file_accuracy() -> None:
    """The key result, measured: see docs/twin.md. Guards against regressions of the calibrated model."""
    report = _epa.report(_epa.read_epa_csv(shared_file("data/epa/epa_2022_bev_tests.csv")))
    summary = report["summary"]
    assert summary["predictions_compared"] == 102
    assert summary["median_abs_error_pct"] <= 3.5
    assert summary["p90_abs_error_pct"] <= 20.0


def test_bad_epa_csv(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("make,model\nx,y\n")
    result = evos("twin", "validate-epa", str(path))
    assert result.returncode == 1 and "missing column" in result.stderr
    path.write_text("\n".join([EPA_HEADER, EPA_ROWS[0].replace("4750", "heavy")]) + "\n")
    result = evos("twin", "validate-epa", str(path))
    assert result.returncode == 1 and "line 2" in result.stderr and "Equivalent Test Weight" in result.stderr


def test_simulate_cli_outputs(tmp_path: Path) -> None:
    png, csv_path = tmp_path / "run.png", tmp_path / "run.csv"
    result = evos("twin", "simulate", "--vehicle", "xiaomi-su7", "--cycle", "udds", "--json",
                  "--plot", str(png), "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["distance_km"] == pytest.approx(11.99, abs=0.01)
    assert 8 < summary["kwh_per_100km"] < 20
    assert 0.5 < summary["regen_share"] < 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(csv_path.read_text().splitlines()) == 1371
    table = evos("twin", "simulate", "-v", "byd-seal-rwd", "-c", "hwfet").stdout
    assert "kWh/100 km" in table and "regenerated share" in table
    listing = json.loads(evos("twin", "vehicles", "--json").stdout)
    assert any(v["preset"] == "tesla-model-3-rwd-2022" for v in listing)


def test_simulate_cli_bad_input(tmp_path: Path) -> None:
    result = evos("twin", "simulate", "--vehicle", "nope", "--cycle", "udds")
    assert result.returncode == 1 and "not a preset" in result.stderr
    result = evos("twin", "simulate", "--vehicle", "xiaomi-su7", "--cycle", "nope")
    assert result.returncode == 1 and "not a built-in cycle" in result.stderr
    epa, lost = tmp_path / "epa.csv", tmp_path / "no-such-folder"
    epa.write_text("\n".join([EPA_HEADER, *EPA_ROWS]) + "\n")
    for args in (["simulate", "-v", "xiaomi-su7", "-c", "udds", "--csv", str(lost / "run.csv")],
                 ["validate-epa", str(epa), "--json", str(lost / "epa.json")]):
        result = evos("twin", *args)
        assert result.returncode == 1 and f"the folder {lost} does not exist" in result.stderr.replace("\n", "")
        assert "Traceback" not in result.stderr and result.stdout == ""
