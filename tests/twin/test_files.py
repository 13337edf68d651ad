"""Vehicle files, presets and drive-cycle CSVs: loaded when good, rejected with file and field when bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from evos.twin import (
    BUILTIN_CYCLES,
    CycleFileError,
    Vehicle,
    VehicleFileError,
    list_vehicles,
    load_cycle,
    load_vehicle,
)
from helpers import GOOD_VEHICLE_TOML as GOOD


def test_presets_load_with_sources() -> None:
    names = list_vehicles()
    assert {"tesla-model-3-rwd-2022", "xiaomi-su7", "xiaomi-su7-pro", "xiaomi-su7-max", "byd-seal-rwd"} <= set(names)
    for name in names:
        vehicle = load_vehicle(name)
        assert isinstance(vehicle, Vehicle)
        assert vehicle.sources, f"{name} names no sources"
    su7 = [load_vehicle(n) for n in ("xiaomi-su7", "xiaomi-su7-pro", "xiaomi-su7-max")]
    assert [v.battery.gross_kwh for v in su7] == [73.6, 94.3, 101.0]
    assert [v.peak_power_kw for v in su7] == [220.0, 220.0, 495.0]
    assert {v.body.drag_coefficient for v in su7 if v.body} == {0.195}
    tesla = load_vehicle("tesla-model-3-rwd-2022")
    assert (tesla.mass_kg, tesla.battery.gross_kwh, tesla.peak_power_kw) == (1752.0, 54.0, 239.0)


def test_vehicle_file_yaml_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "car.toml"
    toml.write_text(GOOD)
    yaml_file = tmp_path / "car.yaml"
    yaml_file.write_text("name: Test\nbody: {curb_mass_kg: 1800, drag_coefficient: 0.25, frontal_area_m2: 2.3}\n"
                         "motors: [{peak_power_kw: 150, peak_torque_nm: 300}]\n"
                         "battery: {chemistry: NMC, gross_kwh: 60}\n")
    assert load_vehicle(toml) == load_vehicle(yaml_file)
    assert load_vehicle(toml).mass_kg == 1800 + 136


BAD_VEHICLES = [
    ("battery.gross_kwh", GOOD.replace("gross_kwh = 60", "gross_kwh = -60"), "must be > 0"),
    ("battery.chemistry", GOOD.replace('"NMC"', '"NiCd"'), "must be one of ['NMC', 'LFP']"),
    ("body.drag_coefficient", GOOD.replace("drag_coefficient = 0.25", 'drag_coefficient = "low"'), "must be a number"),
    ("body.colour", GOOD.replace("[body]", "[body]\ncolour = 1"), "unknown field"),
    ("motors", GOOD.replace("[[motors]]\npeak_power_kw = 150\npeak_torque_nm = 300\n", ""), "at least one"),
    ("motors[0].peak_torque_nm", GOOD.replace("peak_torque_nm = 300\n", ""), "missing required field"),
    ("battery", GOOD[: GOOD.index("[battery]")], "missing required section"),
    ("name", GOOD.replace('name = "Test"', ""), "missing or not a string"),
    ("wings", GOOD + "\n[wings]\nspan = 3\n", "unknown section"),
    ("charging.dc_curve", GOOD + "\n[charging]\ndc_curve = [[50, 1.0], [10, 0.5]]\n", "increasing x"),
    (None, GOOD + "\n[road_load]\nf0_n = 100\n", "exactly one of body or road_load"),
    (None, "name = [unclosed", "not valid TOML"),
]


@pytest.mark.parametrize(("field", "text", "message"), BAD_VEHICLES, ids=[f"{b[0]}-{b[2][:12]}" for b in BAD_VEHICLES])
def test_bad_vehicle_files_name_file_and_field(tmp_path: Path, field: str | None, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(VehicleFileError) as info:
        load_vehicle(path)
    assert str(path) in str(info.value)
    if field:
        assert f": {field}: " in str(info.value)
    assert message in str(info.value)


def test_unknown_vehicle() -> None:
    with pytest.raises(VehicleFileError, match="not a preset"):
        load_vehicle("flying-car")


def test_builtin_cycles_are_the_regulatory_traces() -> None:
    facts = {"udds": (1369, 11.99), "hwfet": (765, 16.51), "us06": (600, 12.89), "wltc3b": (1800, 23.27)}
    for name in BUILTIN_CYCLES:
        cycle = load_cycle(name)
        duration, km = facts[name]
        assert cycle.duration_s == duration
        assert cycle.distance_m / 1000 == pytest.approx(km, abs=0.01)
    assert load_cycle("WLTP").name == "wltc3b"


def test_user_cycle_csv_with_kmh_and_grade(tmp_path: Path) -> None:
    path = tmp_path / "hill.csv"
    path.write_text("time_s,speed_kmh,grade\n0,0,0\n1,36,0.02\n2,36,0.02\n")
    cycle = load_cycle(path)
    assert list(cycle.speed_mps) == [0.0, 10.0, 10.0]
    assert list(cycle.grade) == [0.0, 0.02, 0.02]


BAD_CYCLES = [
    ("t,v\n0,1\n", "line 1", "header needs a time column"),
    ("time_s,speed_mps\n0,0\n1,abc\n", "line 3", "not a number"),
    ("time_s,speed_mps\n0,0\n0,1\n", "line 3", "does not increase"),
    ("time_s,speed_mps\n0,0\n1,-2\n", "line 3", "negative speed"),
    ("time_s,speed_mps,grade\n0,0,0\n1,1,5\n", "line 3", "a fraction, not percent"),
    ("time_s,speed_mps\n0,0\n", None, "at least two samples"),
    ("", None, "empty file"),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD_CYCLES, ids=[b[2][:20] for b in BAD_CYCLES])
def test_bad_cycle_csvs_name_file_and_line(tmp_path: Path, text: str, where: str | None, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CycleFileError) as info:
        load_cycle(path)
    assert str(path) in str(info.value)
    if where:
        assert where in str(info.value)
    assert message in str(info.value)


def test_missing_cycle() -> None:
    with pytest.raises(CycleFileError, match="not a built-in cycle"):
        load_cycle("no-such-cycle")


def test_parallel_cells_and_efficiency_map(tmp_path: Path) -> None:
    path = tmp_path / "car.toml"
    path.write_text(GOOD.replace("gross_kwh = 60", "gross_kwh = 60\ncells_series = 96\ncells_parallel = 2")
                    + "\n[drivetrain]\nefficiency_map = [[0, 0.80], [0.5, 0.95], [1.0, 0.92]]\n")
    vehicle = load_vehicle(path)
    assert vehicle.battery.pack_r0_ohm == pytest.approx(vehicle.battery.cell_r0_ohm * 96 / 2)
    assert vehicle.drivetrain.efficiency_map == ((0.0, 0.80), (0.5, 0.95), (1.0, 0.92))
    path.write_text(GOOD + "\n[drivetrain]\nefficiency_map = [[0.5, 0.9], [0.1, 0.9]]\n")
    with pytest.raises(VehicleFileError, match=r"drivetrain\.efficiency_map: needs at least two points"):
        load_vehicle(path)
