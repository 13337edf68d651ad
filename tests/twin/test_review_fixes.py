"""Edge cases found in review: the globe's edges, empty and full batteries, cold cells, bad inputs."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from evos.broker import Broker, LocalPort
from evos.errors import DataError
from evos.twin import VehicleFileError, load_cycle, load_vehicle, simulate_cycle
from evos.twin import _physics as phys
from evos.twin._battery import available_power_w
from evos.twin._epa import read_epa_csv
from evos.twin._provider import OVERLAY, TwinProvider
from evos.twin._realtime import Controls, TwinState, _drive_loss_w, _mech_power_for_bus_w, step
from evos.twin._store import StateStore
from evos.vss import load_catalog
from helpers import EPA_HEADER, EPA_ROWS, GOOD_VEHICLE_TOML, evos

SU7 = load_vehicle("xiaomi-su7")


def drive(state: TwinState, controls: Controls, seconds: float, car: object = SU7) -> TwinState:
    for _ in range(round(seconds * 10)):
        state = step(car, state, controls, 0.1)  # type: ignore[arg-type]
    return state


def test_dateline_and_pole_wrap() -> None:
    east = drive(TwinState(longitude_deg=179.9995, heading_deg=90.0), Controls(target_speed_kmh=100), 10)
    assert -180 <= east.longitude_deg < -179
    north = drive(TwinState(latitude_deg=89.9995, heading_deg=0.0), Controls(target_speed_kmh=100), 10)
    assert north.latitude_deg <= 90.0 and north.heading_deg == pytest.approx(180.0)


async def test_published_values_stay_in_vss_ranges() -> None:
    broker = Broker(load_catalog(overlays=[OVERLAY]))
    twin = TwinProvider(LocalPort(broker), SU7)
    twin.state = dataclasses.replace(twin.state, odometer_m=5e9, latitude_deg=90.0)
    twin.tick(0.1)
    assert broker.get("Vehicle.TraveledDistance").value == 2**32 - 1


def test_bad_saved_position_is_not_trusted(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "twin.sqlite")
    store.save(SU7.name, TwinState(latitude_deg=91.0), 0.0)
    with pytest.raises(DataError, match=r"latitude_deg = 91.0 is out of range"):  # said, not reset in silence
        store.load(SU7.name)
    with pytest.raises(DataError, match="latitude_deg"):
        StateStore(tmp_path / "twin.sqlite")


def test_empty_battery_does_not_drive_and_full_battery_does_not_regenerate() -> None:
    empty = drive(TwinState(soc=0.0), Controls(accelerator_pct=100), 5)
    assert empty.speed_mps == 0.0
    full = TwinState(soc=1.0, speed_mps=25.0)
    braking = step(SU7, full, Controls(brake_pct=30), 0.1)
    assert braking.soc <= 1.0 and braking.battery_power_w >= 0  # nothing flows back into a full pack


def test_battery_power_limit_and_top_speed() -> None:
    tesla = load_vehicle("tesla-model-3-rwd-2022")
    flat_out = drive(TwinState(soc=0.9), Controls(accelerator_pct=100), 4, tesla)
    assert flat_out.battery_power_w <= tesla.battery.max_discharge_kw * 1e3 + 2e3  # plus the car's loads
    fast = drive(TwinState(soc=0.9, speed_mps=55.0), Controls(accelerator_pct=100), 30)
    assert fast.speed_mps * 3.6 <= SU7.max_speed_kmh + 1  # type: ignore[operator]
    cold_low = drive(TwinState(soc=0.05, battery_temp_c=-20), Controls(accelerator_pct=100), 3)
    warm_full = drive(TwinState(soc=0.9), Controls(accelerator_pct=100), 3)
    assert cold_low.speed_mps < warm_full.speed_mps  # a cold, nearly empty pack gives less power


@pytest.mark.parametrize("name", ["xiaomi-su7", "tesla-model-3-rwd-2022"])  # the loss formula; a measured map
def test_the_drive_limit_inverts_the_drive_losses(name: str) -> None:
    car = load_vehicle(name)
    for bus_w in (5e3, 50e3, 200e3):
        for speed_mps in (0.0, 10.0, 40.0):
            mech_w = _mech_power_for_bus_w(car, bus_w, speed_mps)
            assert 0 < mech_w < bus_w
            assert mech_w + _drive_loss_w(car, mech_w, speed_mps) == pytest.approx(bus_w, rel=0.005)


def test_the_battery_carries_drive_and_loads_within_its_limit_and_still_takes_regen() -> None:
    """A cold, nearly empty pack with the heating and cabin loads on: full pedal draws no more than the pack
    can give (drive plus loads), and braking still regenerates though the pack can give almost nothing."""
    car = load_vehicle("vw-id3-pro")
    controls = Controls(accelerator_pct=100, hvac_on=True, cabin_setpoint_c=22, ambient_c=-20, cabin_load_w=800)
    state = TwinState(soc=0.02, battery_temp_c=-20, cabin_temp_c=-20, speed_mps=25.0)
    for _ in range(20):
        limit_w = available_power_w(car, state.soc, state.battery_temp_c)
        state = step(car, state, controls, 0.1)
        assert state.hvac_power_w > 0 and state.battery_power_w <= limit_w * 1.005
    braking = step(car, TwinState(soc=0.005, speed_mps=20.0), Controls(brake_pct=30), 0.1)
    assert braking.motor_power_w < -10e3 and braking.battery_power_w < 0


def test_parked_car_holds_on_a_slope_and_time_runs_forward() -> None:
    parked = drive(TwinState(), Controls(grade=-0.10), 10)
    assert parked.speed_mps == 0.0 and parked.odometer_m == 0.0
    with pytest.raises(ValueError, match="dt_s must be > 0"):
        step(SU7, TwinState(), Controls(), -1.0)


def test_cold_cells_take_less_regen() -> None:
    cycle = load_cycle("us06")
    warm = simulate_cycle(SU7, cycle, ambient_c=20.0)
    cold = simulate_cycle(SU7, cycle, ambient_c=-20.0)
    assert cold.energy_j["regen"] < 0.8 * warm.energy_j["regen"]


def test_an_empty_battery_is_reported() -> None:
    trip = load_cycle("hwfet")  # 16.5 km: about 2.5 % of the SU7's battery
    nearly_empty = simulate_cycle(SU7, trip, soc0=0.02)
    assert nearly_empty.battery_depleted_s > 0 or nearly_empty.trace_shortfall_s > 0
    full = simulate_cycle(SU7, trip, soc0=0.9)
    assert full.battery_depleted_s == 0 and full.trace_shortfall_s == 0


def test_open_circuit_voltage_uses_the_usable_window() -> None:
    usable = SU7.battery.usable_fraction
    assert phys.ocv_cell_v(0.0, "LFP", usable) > phys.ocv_cell_v(0.0, "LFP")


def test_uneven_cycles_are_resampled(tmp_path: Path) -> None:
    path = tmp_path / "uneven.csv"
    path.write_text("time_s,speed_mps\n0,0\n0.01,0\n1,1\n2,2\n3,3\n")
    cycle = load_cycle(path)
    steps = {round(float(x), 9) for x in (cycle.time_s[1:] - cycle.time_s[:-1])}
    assert len(steps) == 1


BAD = [
    ("[drivetrain]\nefficiency_map = [[0, 0.0], [1, 0.9]]\n", "drivetrain.efficiency_map"),
    ("[charging]\ndc_curve = [[0, 1.0], [120, -0.5]]\n", "charging.dc_curve"),
    ("[drivetrain]\nefficiency = 0.9\n[road_load_check]\n", "road_load_check"),
]


@pytest.mark.parametrize(("extra", "field"), BAD)
def test_nonsense_vehicle_files_are_refused(tmp_path: Path, extra: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD_VEHICLE_TOML + extra)
    with pytest.raises(VehicleFileError, match=field.replace(".", r"\.")):
        load_vehicle(path)


def test_negative_road_load_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "negative.yaml"
    path.write_text("name: X\ntest_mass_kg: 1800\nroad_load: {f0_n: 100, f1_n_per_mps: -50}\n"
                    "motors: [{peak_power_kw: 100, peak_torque_nm: 200}]\nbattery: {chemistry: NMC, gross_kwh: 50}\n")
    with pytest.raises(VehicleFileError, match="road load must be positive"):
        load_vehicle(path)


def test_epa_rows_that_make_no_sense(tmp_path: Path) -> None:
    path = tmp_path / "epa.csv"
    path.write_text("\n".join([EPA_HEADER, EPA_ROWS[0].replace("34.260,0.31910", "-90.0,-5.0")]) + "\n")
    with pytest.raises(DataError, match="line 2"):
        read_epa_csv(path)
    path.write_bytes(("\n".join([EPA_HEADER, EPA_ROWS[0]]) + "\n").encode() + b"\xff\xfe broken")
    with pytest.raises(DataError, match="cannot read the CSV"):
        read_epa_csv(path)


def test_cli_edge_cases(tmp_path: Path) -> None:
    still = tmp_path / "still.csv"
    still.write_text("time_s,speed_mps\n0,0\n1,0\n2,0\n")
    result = evos("twin", "simulate", "-v", "xiaomi-su7", "-c", str(still), "--json")
    assert result.returncode == 0, result.stderr
    result = evos("twin", "simulate", "-v", "xiaomi-su7", "-c", "udds", "--csv", str(tmp_path / "no" / "x.csv"))
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = evos("twin", "simulate", "-v", "xiaomi-su7", "-c", "udds", "--ambient", "-273")
    assert result.returncode == 2
    result = evos("drive", "--cycle", "udds", "--speedup", "1000")
    assert result.returncode == 2


def test_the_pack_heater_does_not_switch_on_and_off_at_its_target() -> None:
    """Conditioning starts 1 K below its target and runs up to it; a charge at the cold threshold keeps charging."""
    car = load_vehicle("xiaomi-su7")
    controls = Controls(ambient_c=-10, battery_conditioning="DRIVING_PREPARATION")
    state = TwinState(battery_temp_c=19.9, cabin_temp_c=-10, battery_heater_w=7000.0)
    heating = []
    for _ in range(1200):  # 2 min
        state = step(car, state, controls, 0.1)
        heating.append(state.battery_heater_w > 0)
    assert heating[0] and not heating[-1] and sum(a != b for a, b in itertools.pairwise(heating)) == 1
    plugged = Controls(ambient_c=10, charger_connected=True, charger_kw=11.0)
    state = TwinState(soc=0.5, battery_temp_c=19.99, cabin_temp_c=10)
    for _ in range(600):
        state = step(car, state, plugged, 0.1)
        assert state.charging_power_w > 9e3 and state.battery_heater_w == 0.0


def test_unplugged_conditioning_keeps_a_reserve() -> None:
    car = load_vehicle("xiaomi-su7")
    controls = Controls(ambient_c=-10, battery_conditioning="FAST_CHARGING_PREPARATION")
    assert step(car, TwinState(soc=0.21, battery_temp_c=-10), controls, 1.0).battery_heater_w > 0
    assert step(car, TwinState(soc=0.19, battery_temp_c=-10), controls, 1.0).battery_heater_w == 0
    plugged = dataclasses.replace(controls, charger_connected=True, charging_enabled=False)
    parked = step(car, TwinState(soc=0.19, battery_temp_c=-10), plugged, 1.0)
    assert parked.battery_heater_w > 0 and parked.battery_power_w < 1e3  # the charger runs it
