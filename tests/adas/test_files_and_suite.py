"""Scenario files (loading and clear errors), the Euro NCAP CCR suite, and the ``evos adas`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evos.adas import ScenarioFileError, load_scenario, run_suite, summary
from evos.adas._suite import SuiteRun, best_case_impact_mps, suite_scenarios
from evos.errors import DataError

ENV = {**os.environ, "COLUMNS": "200"}
GOOD = """\
name: cut-in from the left
description: a slower car cuts in 35 m ahead
duration_s: 10
rate_hz: 100
seed: 3
ego:
  speed_mps: 20
  acc: true
  time_gap_s: 1.5
targets:
  - name: cutter
    gap_m: 35
    speed_mps: 10
    lane: 1
    actions:
      - {at_s: 0.5, to_lane: 0, duration_s: 2}
  - gap_m: 60
    speed_mps: 0
    overlap_pct: -50
    lane: -1
"""


def evos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evos", *args], capture_output=True, text=True, timeout=120, env=ENV)


def test_good_file_loads_into_dataclasses(tmp_path: Path) -> None:
    path = tmp_path / "cut-in.yaml"
    path.write_text(GOOD)
    s = load_scenario(path)
    assert s.name == "cut-in from the left" and s.ego.acc and s.ego.time_gap_s == 1.5
    assert s.targets[0].actions[0].to_lane == 0 and s.targets[1].overlap_pct == -50.0
    assert s.targets[1].lateral_m(1.9) == pytest.approx(-3.5 - 0.95)  # half overlap, in the right lane


@pytest.mark.parametrize(("text", "entry", "problem"), [
    ("name: x\n", "ego", "missing required field"),
    ("name: x\nego: {speed_mps: fast}\n", "ego.speed_mps", "must be a number, got 'fast'"),
    ("name: x\nego: {speed_mps: 10, time_gap_s: 0.5}\n", "ego.time_gap_s", r"must be in \[1, 2.5\], got 0.5"),
    ("name: x\nego: {speed_mps: 10}\ntargets: [{gap_m: 10, speed_mps: 0, colour: red}]\n", "targets[0].colour",
     "unknown field"),
    ("name: x\nego: {speed_mps: 10}\ntargets: [{gap_m: 10, speed_mps: 0, actions: [{at_s: 1}]}]\n",
     "targets[0].actions[0]", "give exactly one change"),
    ("name: x\nego: {speed_mps: 10}\nrate_hz: 5\n", "rate_hz", r"must be in \[10, 200\], got 5"),
    ("name: x\nego: {speed_mps: 10}\nsensor: {latency_steps: 2.5}\n", "sensor.latency_steps", "must be an integer"),
    ("name: x\nego: {speed_mps: 10, brake_pedal: [[1, 2, 3]]}\n", "ego.brake_pedal[0]", "list of 2 items"),
    ("- just a list\n", None, "must be a mapping"),
    ("name: [unclosed\n", None, "not valid YAML"),
])
def test_bad_files_name_file_and_field(tmp_path: Path, text: str, entry: str | None, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError, match=problem) as info:
        load_scenario(path)
    assert isinstance(info.value, DataError)
    assert info.value.source == str(path) and info.value.entry == entry
    assert str(path) in str(info.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file"):
        load_scenario(tmp_path / "nope.yaml")


# ---- the Euro NCAP CCR suite ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ccr() -> list[SuiteRun]:
    return run_suite("euro-ncap-ccr")


def test_suite_matrix_is_the_euro_ncap_one() -> None:
    scenarios = suite_scenarios("euro-ncap-ccr")
    tests = [s.tags["test"] for s in scenarios if s.tags["mode"] == "aeb"]
    assert (tests.count("CCRs"), tests.count("CCRm"), tests.count("CCRb")) == (9 * 5, 11 * 3, 4)
    assert len(scenarios) == 2 * (45 + 33 + 4)
    ccrs50 = next(s for s in scenarios if s.name == "CCRs 50 km/h +100%")
    assert ccrs50.targets[0].gap_m == pytest.approx(50 / 3.6 * 4)  # TTC 4 s


def test_suite_has_no_collision_outside_unavoidable_cells(ccr: list[SuiteRun]) -> None:
    aeb = [r for r in ccr if r.scenario.tags["mode"] == "aeb"]
    hits = [r.scenario.name for r in aeb if r.result.collision and not r.unavoidable]
    assert hits == []
    acc = [r for r in ccr if r.scenario.tags["mode"] == "acc"]
    assert [r.scenario.name for r in acc if r.result.collision] == []


def test_suite_acc_runs_keep_iso_15622_limits_outside_emergencies(ccr: list[SuiteRun]) -> None:
    acc = [r for r in ccr if r.scenario.tags["mode"] == "acc"]
    assert [r.scenario.name for r in acc if r.result.comfort_breach] == []
    calm = [r for r in acc if r.result.aeb_stage in ("idle", "warning")]
    assert len(calm) > len(acc) / 2  # most cells ACC handles alone ...
    for r in calm:  # ... and then never beyond 3.5 m/s² and the 1 s jerk limits
        assert r.result.max_decel_mps2 <= 3.5 * 1.02, r.scenario.name
        assert r.result.max_jerk_mps3 <= 5.0 * 1.02, r.scenario.name


def test_suite_aeb_brakes_in_every_cell(ccr: list[SuiteRun]) -> None:
    aeb = [r for r in ccr if r.scenario.tags["mode"] == "aeb"]
    assert all(r.result.aeb_stage in ("partial", "full", "hold") for r in aeb)
    assert all(r.result.fcw_time_s is not None for r in aeb)


def test_unavoidable_rule_flags_a_physically_hopeless_cell() -> None:
    """A target braking at 9 m/s² 1 m ahead cannot be avoided (the ego's brakes need time to build up)."""
    from dataclasses import replace

    cell = next(s for s in suite_scenarios("euro-ncap-ccr") if s.name == "CCRb 6 m/s² 12 m")
    target = replace(cell.targets[0], gap_m=1.0, actions=(replace(cell.targets[0].actions[0], accel_mps2=-9.0),))
    assert best_case_impact_mps(replace(cell, targets=(target,))) > 0.0
    assert best_case_impact_mps(cell) == 0.0


def test_summary_counts(ccr: list[SuiteRun]) -> None:
    s = summary(ccr)
    assert s["runs"] == 164
    assert s["aeb"]["collisions"] == s["acc"]["collisions"] == 0  # type: ignore[index]


# ---- command line --------------------------------------------------------------------------------------
def test_cli_suite_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = evos("adas", "suite", "euro-ncap-ccr", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "CCRs 50 km/h +100%" in proc.stdout and "AEB only: 0/82 collisions" in proc.stdout
    doc = json.loads(out.read_text())
    assert len(doc["scenarios"]) == 164
    first = doc["scenarios"][0]
    for key in ("name", "collision", "impact_speed_mps", "unavoidable", "min_ttc_s", "min_time_gap_s",
                "max_decel_mps2", "max_jerk_mps3", "comfort_breach", "progress"):
        assert key in first
    assert doc["summary"]["acc"]["collisions"] == 0


def test_cli_scenario_table_json_and_plot(tmp_path: Path) -> None:
    path = tmp_path / "cut-in.yaml"
    path.write_text(GOOD)
    png = tmp_path / "run.png"
    proc = evos("adas", "scenario", str(path), "--json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["collision"] is False and metrics["unavoidable"] is False
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = evos("adas", "scenario", str(path))
    assert table.returncode == 0 and "min ttc s" in table.stdout


def test_cli_errors_and_help(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nego: {speed_mps: -3}\n")
    proc = evos("adas", "scenario", str(bad))
    assert proc.returncode == 1 and "ego.speed_mps" in proc.stderr and str(bad) in proc.stderr.replace("\n", "")
    unknown = evos("adas", "suite", "nope")
    assert unknown.returncode == 1 and "unknown suite 'nope'" in unknown.stderr
    # an output file in a missing folder fails before the suite runs, with a message and no traceback
    lost = tmp_path / "no-such-folder" / "ncap.json"
    nowhere = evos("adas", "suite", "euro-ncap-ccr", "--json", str(lost))
    assert nowhere.returncode == 1 and "does not exist" in nowhere.stderr and "Traceback" not in nowhere.stderr
    assert nowhere.stdout == "" and not lost.parent.exists()
    helptext = evos("adas", "scenario", "--help").stdout
    assert "--plot" in helptext and "lane position" in helptext


def test_cut_in_suite_at_and_above_the_regulation_ttc() -> None:
    from dataclasses import replace

    from evos.adas._params import SensorParams
    from evos.adas._sim import simulate
    from evos.adas._suite import CUT_IN_TTC_S, run_suite, summary, un_r157_cut_in

    runs = run_suite("un-r157-cut-in")
    assert len(runs) == 2 * 2 * len(CUT_IN_TTC_S)
    assert [r.scenario.name for r in runs if r.result.collision] == []
    assert summary(runs)["unavoidable_cells"] == []
    braked = [r for r in runs if r.scenario.tags["relative_kmh"] == "60"]
    assert all(r.result.max_decel_mps2 > 8 for r in braked)  # the tight cut-ins take full braking
    # with only a ±30° mid-range beam the closest cut-in is seen too late: the near-range beam matters
    closest = un_r157_cut_in()[0]
    narrow = simulate(replace(closest, sensor=SensorParams(fov_deg=60.0)))
    assert narrow.collision
