"""Charging sessions, the EPA label and WLTP procedures, and performance figures."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from evos.errors import InvalidArgumentError
from evos.twin import load_vehicle
from evos.twin._battery import conditioning_s
from evos.twin._charge import charge, temperature_factor
from evos.twin._procedures import EPA_ADJUSTMENT, acceleration_s, epa_label, top_speed_kmh, wltp
from evos.twin._realtime import Controls, TwinState, step


def test_charge_curve_is_monotone_and_tapers() -> None:
    result = charge(load_vehicle("hyundai-ioniq-5-lr-rwd"), 0.05, 1.0, 350)
    assert result.reached
    assert np.all(np.diff(result.soc) >= 0) and np.all(np.diff(result.time_s) > 0)
    t50, t80, t100 = (result.time_to_soc_s(x) for x in (0.5, 0.8, 1.0))
    assert t50 < t80 < t100
    power = result.battery_power_w[:-1]
    assert power[result.soc[:-1] > 0.9].max() < 0.4 * power.max()  # taper above 90 %


def test_published_dc_claims() -> None:
    # BYD: 30-80 % in 26 min at 150 kW (Auto Express); Hyundai's measured curve: 10-80 % in ~16 min (EVKX)
    seal = charge(load_vehicle("byd-seal-rwd"), 0.30, 0.80, 150)
    assert seal.duration_s / 60 == pytest.approx(26, abs=2)
    ioniq = charge(load_vehicle("hyundai-ioniq-5-lr-rwd"), 0.10, 0.80, 350)
    assert ioniq.duration_s / 60 == pytest.approx(16.2, abs=1.5)


def test_charger_and_car_limits() -> None:
    car = load_vehicle("xiaomi-su7")
    slow = charge(car, 0.2, 0.8, 50)
    fast = charge(car, 0.2, 0.8, 350)
    assert slow.battery_power_w.max() <= 50e3 + 1
    assert fast.battery_power_w.max() <= car.charging.dc_max_kw * 1e3 + 1
    assert fast.duration_s < slow.duration_s
    ac = charge(car, 0.2, 0.8, 22, dc=False)
    assert ac.grid_power_w.max() <= car.charging.ac_max_kw * 1e3 + 1  # the on-board charger limits AC
    stored_kwh = np.sum(ac.battery_power_w[:-1] * np.diff(ac.time_s)) / 3.6e6
    assert ac.grid_kwh == pytest.approx(stored_kwh / car.charging.charger_efficiency, rel=1e-6)


def test_cold_battery_charges_slower_and_warms() -> None:
    """A cold pack takes little charge; the BMS warms it with the pack heater from the charger's power, which a
    car without a heater cannot."""
    car = load_vehicle("xiaomi-su7-max")
    warm = charge(car, 0.1, 0.8, 350, ambient_c=25)
    cold = charge(car, 0.1, 0.8, 350, ambient_c=0)
    unheated = charge(dataclasses.replace(car, battery=dataclasses.replace(car.battery, heater_kw=0.0)),
                      0.1, 0.8, 350, ambient_c=0)
    assert warm.duration_s < cold.duration_s < unheated.duration_s and unheated.duration_s > 1.5 * warm.duration_s
    assert cold.battery_temp_c[-1] > unheated.battery_temp_c[-1] > cold.battery_temp_c[0]
    stored_kwh = np.sum(cold.battery_power_w[:-1] * np.diff(cold.time_s)) / 3.6e6
    assert cold.grid_kwh > stored_kwh + 1.0  # the heater's energy came from the charger
    assert temperature_factor(0.0) == pytest.approx(0.1) and temperature_factor(25.0) == 1.0


def test_battery_preconditioning_saves_charging_time() -> None:
    """``twin charge --precondition``: the heater's time and energy from the cold to the fast-charging target,
    and a shorter session than from the cold pack."""
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "evos", "twin", "charge", "-v", "xiaomi-su7", "--ambient", "-10",
                             "--precondition", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    pre = out["precondition"]
    assert pre["pack_from_c"] == -10 and pre["pack_to_c"] == 35
    car = load_vehicle("xiaomi-su7")
    state, controls, stepped_s = (TwinState(battery_temp_c=-10, cabin_temp_c=-10),
                                  Controls(ambient_c=-10, battery_conditioning="FAST_CHARGING_PREPARATION"), 0)
    while state.battery_temp_c < 35 and stepped_s < 3 * 3600:  # the twin's own steps, parked and heating
        state, stepped_s = step(car, state, controls, 1.0), stepped_s + 1
    assert pre["minutes"] * 60 == pytest.approx(stepped_s, rel=0.02)
    assert pre["heater_kwh"] == pytest.approx(car.battery.heater_kw * pre["minutes"] / 60, rel=0.01)
    assert out["minutes"] < 0.8 * pre["charging_minutes_without"]
    assert conditioning_s(car, 30, 20, -10) == 0.0 and conditioning_s(car, -10, 200, -10) is None


def test_preconditioning_a_heater_cannot_finish_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from helpers import GOOD_VEHICLE_TOML

    weak = Path(str(tmp_path)) / "weak-heater.toml"
    weak.write_text(GOOD_VEHICLE_TOML + "heater_kw = 0.1\n")  # warms the pack 1.5 K above ambient at most
    result = subprocess.run([sys.executable, "-m", "evos", "twin", "charge", "-v", str(weak), "--ambient", "-10",
                             "--precondition"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 1 and "cannot warm the pack to 35 °C at -10 °C ambient" in result.stderr


def test_the_bms_warms_only_a_fast_charge_held_back_by_the_cold() -> None:
    """An AC session is limited by its charger, not the cold pack: warming it would only take the charger's
    power, so it is no slower than without a heater; a cold fast charge is faster with one."""
    car = load_vehicle("xiaomi-su7")
    unheated = dataclasses.replace(car, battery=dataclasses.replace(car.battery, heater_kw=0.0))
    for charger_kw in (3.7, 11.0):
        ac = charge(car, 0.2, 0.8, charger_kw, dc=False, ambient_c=-10)
        assert ac.duration_s <= charge(unheated, 0.2, 0.8, charger_kw, dc=False, ambient_c=-10).duration_s
    assert charge(car, 0.1, 0.8, 250, ambient_c=-10).duration_s < 0.5 * charge(unheated, 0.1, 0.8, 250,
                                                                                   ambient_c=-10).duration_s


def test_bad_charge_requests() -> None:
    car = load_vehicle("xiaomi-su7")
    with pytest.raises(InvalidArgumentError, match="from < to"):
        charge(car, 0.8, 0.2, 100)
    with pytest.raises(InvalidArgumentError, match="charger power"):
        charge(car, 0.2, 0.8, 0)


def test_epa_label_rules() -> None:
    car = load_vehicle("tesla-model-3-rwd-2022")
    label = epa_label(car)
    d = label.details
    assert label.range_km == pytest.approx(0.55 * d["city_range_km"] + 0.45 * d["highway_range_km"])
    assert label.wall_kwh_per_100km == pytest.approx(
        0.55 * d["city_wall_kwh_per_100km"] + 0.45 * d["highway_wall_kwh_per_100km"])
    # 2022 Model 3 RWD label: 25 kWh/100 mi combined (fueleconomy.gov); 54 kWh in FASTSim's parameters
    assert d["combined_wall_kwh_per_100mi"] == pytest.approx(25, rel=0.08)
    assert EPA_ADJUSTMENT == 0.7


def test_wltp_is_longer_than_epa_and_scales_with_battery() -> None:
    su7, pro = load_vehicle("xiaomi-su7"), load_vehicle("xiaomi-su7-pro")
    assert wltp(su7).range_km > epa_label(su7).range_km
    assert wltp(pro).range_km > wltp(su7).range_km


@pytest.mark.parametrize(("preset", "claim_s"), [("xiaomi-su7-max", 2.78), ("xiaomi-su7", 5.28),
                                                  ("byd-seal-rwd", 5.9), ("vw-id3-pro", 7.3)])
def test_acceleration_near_published_figures(preset: str, claim_s: float) -> None:
    assert acceleration_s(load_vehicle(preset)) == pytest.approx(claim_s, rel=0.25)


def test_top_speed() -> None:
    assert top_speed_kmh(load_vehicle("xiaomi-su7-max")) == pytest.approx(265, abs=3)
    assert top_speed_kmh(load_vehicle("vw-id3-pro")) == 160.0  # electronically limited


def test_cli_range_charge_performance(tmp_path: object) -> None:
    env = {**os.environ, "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evos", "twin", *args], capture_output=True, text=True,
                              timeout=120, env=env)

    epa = json.loads(run("range", "-v", "xiaomi-su7", "-p", "epa", "--json").stdout)
    assert epa["procedure"] == "EPA" and epa["range_km"] > 300
    charged = json.loads(run("charge", "-v", "byd-seal-rwd", "--from", "30", "--to", "80", "--charger-kw", "150",
                             "--json").stdout)
    assert charged["reached"] and 20 < charged["minutes"] < 32
    uncapped = run("charge", "-v", "byd-seal-rwd", "--charger-kw", "50")
    assert uncapped.returncode == 0 and "min" in uncapped.stdout and "takes at most" not in uncapped.stdout
    capped = run("charge", "-v", "xiaomi-su7", "--ac", "--from", "20", "--to", "25", "--charger-kw", "250")
    assert "takes at most 11 kW AC (its on-board charger)" in capped.stdout  # said, not silently capped
    perf = json.loads(run("performance", "-v", "xiaomi-su7-max", "--json").stdout)
    assert perf["top_speed_kmh"] == pytest.approx(265, abs=3)
    bad = run("range", "-v", "xiaomi-su7", "-p", "cltc")
    assert bad.returncode == 1 and "unknown procedure" in bad.stderr
    bad = run("charge", "-v", "xiaomi-su7", "--from", "80", "--to", "20")
    assert bad.returncode == 1 and "from < to" in bad.stderr


def test_hot_battery_charges_slower() -> None:
    assert temperature_factor(40.0) == 1.0
    assert temperature_factor(50.0) == pytest.approx(0.65)
    assert temperature_factor(60.0) == pytest.approx(0.3)
    car = load_vehicle("xiaomi-su7-max")
    normal = charge(car, 0.1, 0.8, 350, ambient_c=25)
    hot = charge(car, 0.1, 0.8, 350, ambient_c=25, battery_temp_c=52)
    assert hot.duration_s > normal.duration_s
