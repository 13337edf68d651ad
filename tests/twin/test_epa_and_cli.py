"""EPA validation (`evos twin validate-epa`) and the twin's command line."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from evos.errors import DataError
from evos.twin import _epa
from helpers import EPA_HEADER, EPA_ROWS, shared_file

ENV = {**os.environ, "COLUMNS": "200"}


def evos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evos", *args], capture_output=True, text=True, timeout=120, env=ENV)


def test_validate_epa_json_contract(tmp_path: Path) -> None:
    csv_path = tmp_path / "epa.csv"
    csv_path.write_text("\n".join([EPA_HEADER, *EPA_ROWS]) + "\n")
    out, png = tmp_path / "report.json", tmp_path / "parity.png"
    result = evos("twin", "validate-epa", str(csv_path), "--json", str(out), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert "median absolute error" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
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


def test_a_rated_power_too_low_to_follow_the_test_is_replaced_and_said() -> None:
    """EPA's lists hold typos such as 37 hp for a 4,000 lb car (2019 Kona Electric): the test was driven,
    so the row is predicted with the power its trace needs, and the report says so."""
    typo = EPA_ROWS[1].replace(",R,225,", ",R,37,")
    report = _epa.report(_epa.read_epa_csv(_write_rows([EPA_ROWS[1], typo])))
    right, wrong = report["vehicles"]
    assert "power_note" not in right and "37 hp" in wrong["power_note"]
    used_hp = float(re.search(r"with the (\d+) hp", wrong["power_note"])[1])
    assert 37 < used_hp < 225
    for cycle in ("udds", "hwy"):  # a smaller motor, loaded harder: close to the right row, not far off
        assert wrong[f"{cycle}_kwh_100mi_pred"] == pytest.approx(right[f"{cycle}_kwh_100mi_pred"], rel=0.05)
    assert report["summary"]["predictions_compared"] == 4


def test_the_test_car_list_as_epa_publishes_it(tmp_path: Path) -> None:
    """One row per test: battery-electric configurations are found, their results averaged and MPGe
    converted; a plug-in hybrid's charge-depleting tests and a result of 0 are left out."""
    fields = [*_epa.COLUMNS.values(), "Test Veh Configuration #", "Test Veh Displacement (L)",
              "# of Cylinders and Rotors", "Test Procedure Description", "Test Fuel Type Description", "RND_ADJ_FE",
              "FE_UNIT"]
    tesla, kia = (dict(zip(EPA_HEADER.split(","), row.split(","), strict=True)) for row in EPA_ROWS[:2])

    def test(car: dict[str, str], procedure: str, fuel: str, result: str) -> dict[str, str]:
        return {**{c: car[c] for c in _epa.COLUMNS.values()}, "Test Veh Configuration #": "0",
                "Test Veh Displacement (L)": car.get("Test Veh Displacement (L)", "0.001"),
                "# of Cylinders and Rotors": car.get("# of Cylinders and Rotors", ""),
                "Test Procedure Description": procedure, "Test Fuel Type Description": fuel, "RND_ADJ_FE": result,
                "FE_UNIT": "MPG"}

    hybrid = {**kia, "Test Vehicle ID": "PHEV1"}
    other_hybrid = {**kia, "Test Vehicle ID": "PHEV2", "Test Veh Displacement (L)": "1.969"}  # tests elsewhere
    third_hybrid = {**kia, "Test Vehicle ID": "PHEV3", "Test Veh Displacement (L)": "",
                    "# of Cylinders and Rotors": "4"}
    tests = [
        test(tesla, "Charge Depleting UDDS", "Electricity", "168.5"),  # MPGe: 20.00 kWh/100 mi
        test(kia, "Charge Depleting Highway", "Electricity", "22.70"),  # already kWh/100 mi
        test(tesla, "Charge Depleting UDDS", "Electricity", "21.00"),  # a repeat: averaged with the first
        test(tesla, "Charge Depleting Highway", "Electricity", "22.16"),
        test(kia, "Charge Depleting UDDS", "Electricity", "0"),  # no result
        test(hybrid, "Federal fuel 2-day exhaust (w/can load)", "Tier 3 Gasoline", "40.1"),
        test(hybrid, "Charge Depleting UDDS", "Electricity", "90.0"),
        test(other_hybrid, "Charge Depleting Highway", "Electricity", "44.6"),
        test(third_hybrid, "Charge Depleting UDDS", "Electricity", "44.6"),  # EPA's 2017 list: no displacement
        test(tesla, "HWFE", "Electricity", "30.0"),  # not a charge-depleting test
    ]
    path = tmp_path / "22-tstcar.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(tests)
    rows = _epa.read_epa_csv(path)
    assert [r.test_vehicle_id for r in rows] == ["YD222-231326", "NKMXV00.0NU1"]
    assert rows[0].measured_kwh_100mi == {"udds": pytest.approx(20.5, abs=0.01), "hwfet": 22.16}
    assert rows[1].measured_kwh_100mi == {"udds": None, "hwfet": 22.70}
    out = tmp_path / "report.json"
    result = evos("twin", "validate-epa", str(path), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["summary"]["predictions_compared"] == 3 and "udds_error_pct" not in report["vehicles"][1]

    with path.open("w", newline="") as handle:  # a list with no battery-electric car in it
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(tests[5:9])
    result = evos("twin", "validate-epa", str(path))
    assert result.returncode == 1 and "no battery-electric" in result.stderr

    del fields[fields.index("Drive System Code")]  # EPA's 2017 list: only the description
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*fields, "Drive System Description"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**t, "Drive System Description": d}
                         for t, d in zip(tests[:2], ("All Wheel Drive", "2-Wheel Drive, Rear"), strict=True))
        handle.write("\n")  # a blank line: errors still name the file's own line numbers
        writer.writerow({**tests[0], "Rated Horsepower": "lots"})
    with pytest.raises(DataError, match="line 5, column 'Rated Horsepower'"):
        _epa.read_epa_csv(path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    assert [r.drive for r in _epa.read_epa_csv(path)] == ["A", "R"]


def _write_rows(rows: list[str]) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "epa.csv"
    path.write_text("\n".join([EPA_HEADER, *rows]) + "\n")
    return path


def test_full_epa_file_accuracy() -> None:
    """The key result, measured: see docs/twin.md. Guards against regressions of the calibrated model."""
    with resources.as_file(_epa.BUILTIN_CSV) as builtin:  # shipped with evos: runs in a user's clone too
        report = _epa.report(_epa.read_epa_csv(builtin))
    summary = report["summary"]
    assert summary["predictions_compared"] == 102
    assert summary["median_abs_error_pct"] <= 3.0  # 2.91 % measured: issue #3's median target
    assert summary["p90_abs_error_pct"] <= 19.0  # 18.39 % measured: far from the 6 % target (docs/twin.md)


def test_the_shipped_epa_file_is_the_shared_one() -> None:
    shipped = _epa.BUILTIN_CSV.read_bytes()
    assert shipped == shared_file("data/epa/epa_2022_bev_tests.csv").read_bytes()


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
