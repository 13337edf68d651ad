"""The twin as a provider on the broker: actuators served, VSS signals published, state persisted."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from evos.broker import Broker, LocalPort
from evos.errors import DataError, InvalidValueError
from evos.twin import load_vehicle
from evos.twin._provider import OVERLAY, TwinProvider
from evos.twin._realtime import Controls
from evos.twin._store import StateStore
from evos.vss import load_catalog

CHG = "Vehicle.Powertrain.TractionBattery.Charging"


@pytest.fixture
def car_broker() -> Broker:
    return Broker(load_catalog(overlays=[OVERLAY]))


def ticks(twin: TwinProvider, seconds: float) -> None:
    for _ in range(round(seconds * 10)):
        twin.tick(0.1)


async def started(broker: Broker, *args: Any, **kwargs: Any) -> TwinProvider:
    """A twin on its own port of ``broker``, its actuators claimed (ticked by the test, not by ``run``)."""
    twin = TwinProvider(LocalPort(broker, "twin"), *args, **kwargs)
    await twin.start()
    return twin


async def test_publishes_vss_signals_in_vss_units(car_broker: Broker) -> None:
    twin = await started(car_broker, load_vehicle("xiaomi-su7"), controls=Controls(target_speed_kmh=72))
    ticks(twin, 30)
    assert car_broker.get("Vehicle.Speed").value == pytest.approx(72, abs=0.5)  # km/h
    assert car_broker.get("Vehicle.IsMoving").value is True
    assert car_broker.get("Vehicle.TraveledDistance").value > 300  # m
    soc = car_broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value
    assert 0 < soc < 80  # percent
    assert car_broker.get("Vehicle.Powertrain.TractionBattery.CurrentCurrent").value < 0  # flowing out
    assert car_broker.get("Vehicle.Powertrain.Range").value > 100_000  # m
    assert car_broker.get("Vehicle.Powertrain.ElectricMotor.Speed").value > 1000  # rpm


async def test_the_cabin_air_and_the_tyres_follow_their_temperatures(car_broker: Broker) -> None:
    """The cabin's ambient air is the cabin's (VSS: "inside the vehicle"), not the outside air; a tyre filled to the
    placard's cold pressure at 20 °C loses about 1 % of its absolute pressure per 3 K colder (Gay-Lussac)."""
    cold = await started(car_broker, load_vehicle("xiaomi-su7"), controls=Controls(ambient_c=-10.0, hvac_on=True,
                                                                                    cabin_setpoint_c=22.0))
    ticks(cold, 600)
    cabin_c = car_broker.get("Vehicle.Cabin.HVAC.AmbientAirTemperature").value
    assert cabin_c == pytest.approx(car_broker.get("Vehicle.Evos.Twin.CabinTemperature").value, abs=0.1)
    assert cabin_c > 0 > car_broker.get("Vehicle.Exterior.AirTemperature").value
    pressures = {car_broker.get(f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}.Tire.Pressure").value
                 for r in (1, 2) for s in ("Left", "Right")}
    assert pressures == {round((290 + 101.325) * 263.15 / 293.15 - 101.325)}  # kPa: 250 at -10 °C


async def test_serves_actuators_and_reports_actual_values(car_broker: Broker) -> None:
    twin = await started(car_broker, load_vehicle("xiaomi-su7"))
    await car_broker.actuate({f"{CHG}.ChargeLimit": 90, "Vehicle.Evos.Twin.ChargerConnected": True,
                              "Vehicle.Evos.Twin.ChargerPower": 150.0})
    assert car_broker.get(f"{CHG}.ChargeLimit").value == 90
    ticks(twin, 5)
    assert car_broker.get(f"{CHG}.IsCharging").value is True
    assert car_broker.get(f"{CHG}.TimeToComplete").value > 0
    await car_broker.actuate({f"{CHG}.StartStopCharging": "STOP"})
    ticks(twin, 1)
    assert car_broker.get(f"{CHG}.IsCharging").value is False
    await car_broker.actuate({"Vehicle.Cabin.HVAC.IsAirConditioningActive": True,
                              "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature": 28.0})
    ticks(twin, 60)
    assert car_broker.get("Vehicle.Evos.Twin.CabinTemperature").value > 21
    with pytest.raises(InvalidValueError):
        await car_broker.actuate({f"{CHG}.ChargeLimit": 120})  # out of the signal's range: nothing changes
    assert twin.controls.charge_limit_pct == 90


async def test_time_scale_runs_faster_than_real_time(car_broker: Broker) -> None:
    twin = await started(car_broker, load_vehicle("xiaomi-su7"), controls=Controls(target_speed_kmh=36))
    await car_broker.actuate({"Vehicle.Evos.Twin.TimeScale": 10.0})
    ticks(twin, 3)  # 30 s of car time
    assert twin.state.odometer_m > 200
    assert twin.steps == 300  # split into 0.1 s model steps


async def test_a_parked_car_sped_up_takes_one_second_steps_with_the_same_result(car_broker: Broker) -> None:
    cold = Controls(hvac_on=True, cabin_setpoint_c=22.0, ambient_c=-10.0, charger_connected=True, charger_kw=11.0)
    fast = await started(car_broker, load_vehicle("xiaomi-su7"), controls=cold)
    fast.time_scale = 100.0
    for _ in range(36):  # an hour of car time in 36 ticks of 100 s
        fast.tick(1.0)
    assert fast.steps == 3600  # parked: 1 s model steps
    fine = await started(Broker(load_catalog(overlays=[OVERLAY])), load_vehicle("xiaomi-su7"), controls=cold)
    for _ in range(36_000):
        fine.tick(0.1)
    assert fast.state.soc == pytest.approx(fine.state.soc, abs=2e-4)
    assert fast.state.cabin_temp_c == pytest.approx(fine.state.cabin_temp_c, abs=0.05)
    assert fast.state.battery_temp_c == pytest.approx(fine.state.battery_temp_c, abs=0.05)


async def test_state_persists_across_restarts(car_broker: Broker, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "twin.sqlite")
    car = load_vehicle("xiaomi-su7")
    twin = await started(car_broker, car, store, Controls(target_speed_kmh=50))
    ticks(twin, 20)
    twin.save(0.0)
    odometer, soc = twin.state.odometer_m, twin.state.soc
    await twin.port.close()
    again = await started(car_broker, car, StateStore(tmp_path / "twin.sqlite"))
    assert (again.state.odometer_m, again.state.soc) == (odometer, soc)
    assert again.state.speed_mps == 0  # restarts parked
    other = await started(Broker(load_catalog(overlays=[OVERLAY])), load_vehicle("byd-seal-rwd"),
                         StateStore(tmp_path / "twin.sqlite"))
    assert other.state.odometer_m == 0  # each vehicle has its own state
    with sqlite3.connect(tmp_path / "twin.sqlite") as db:
        db.execute("UPDATE twin_state SET state = '{\"soc\": 7}'")
    with pytest.raises(DataError, match=r"twin_state\[Xiaomi SU7\]: the field 'battery_temp_c' is missing"):
        StateStore(tmp_path / "twin.sqlite")  # a bad row is not trusted, nor reset in silence


async def test_published_paths_match_the_signals(car_broker: Broker) -> None:
    from evos.twin._provider import _MEASURED

    twin = TwinProvider(LocalPort(car_broker), load_vehicle("xiaomi-su7"))
    assert set(twin.signals()) == set(_MEASURED)


async def test_the_twin_runs_alone_against_a_remote_broker(tmp_path: Path) -> None:
    """The twin app on a KUKSA v2 port of a broker in this process (as `evos app run twin --address` runs it)."""
    import asyncio

    from evos.app import AppEnv, CarSettings, run_app
    from evos.broker import BrokerServer, RemotePort, ServerConfig
    from evos.twin import TWIN_APP
    from helpers import eventually

    broker = Broker(load_catalog(overlays=[OVERLAY]))
    server = BrokerServer(broker, ServerConfig(address="127.0.0.1:0"))
    await server.start()
    env = AppEnv(CarSettings(vehicle="vw-id3-pro"), tmp_path)
    port = RemotePort(server.address, name="twin")
    await port.connect()
    await port.signals()
    twin = asyncio.create_task(run_app(TWIN_APP, port, env))
    try:
        await eventually(lambda: broker.get("Vehicle.Speed").available, 10)
        await eventually(lambda: broker.provider_of("Vehicle.Evos.Twin.Driver.TargetSpeed") is not None, 10)
        await broker.actuate({"Vehicle.Evos.Twin.Driver.TargetSpeed": 40.0})  # reaches the twin over gRPC
        # answered once the twin carried it out: its actual value was published before the answer
        assert broker.get("Vehicle.Evos.Twin.Driver.TargetSpeed").value == 40.0
        await eventually(lambda: (broker.get("Vehicle.Speed").value or 0) > 5, 10)
        # the preset it was loaded from, not its display name: the cabin loads the same car from it
        assert broker.get("Vehicle.Evos.Twin.Vehicle").value == "vw-id3-pro"
    finally:
        env.stop.set()
        await asyncio.wait_for(twin, 10)
        await port.close()
        await server.stop(0)
    assert StateStore(tmp_path / "twin.sqlite").load("Volkswagen ID.3 Pro") is not None


async def test_battery_conditioning_warms_the_pack_on_request(car_broker: Broker) -> None:
    """VSS BatteryConditioning: a requested mode runs the pack heater to its target (the mode's own, or
    TargetTemperature), from the battery when unplugged and from the grid when plugged in; IsOngoing says
    when it heats. A target VSS leaves unbounded is refused outside the heater's range."""
    cond = "Vehicle.Powertrain.TractionBattery.BatteryConditioning"
    temp = "Vehicle.Powertrain.TractionBattery.Temperature.Average"
    soc = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
    twin = await started(car_broker, load_vehicle("xiaomi-su7"), controls=Controls(ambient_c=-10))
    await car_broker.actuate({"Vehicle.Evos.Twin.TimeScale": 100.0})
    ticks(twin, 6)  # 10 min: switched off, the pack stays cold
    assert car_broker.get(temp).value < -9 and car_broker.get(f"{cond}.IsActive").value is False
    soc_before = car_broker.get(soc).value
    await car_broker.actuate({f"{cond}.RequestedMode": "DRIVING_PREPARATION", f"{cond}.TargetTemperature": 5.0})
    ticks(twin, 1)
    assert car_broker.get(f"{cond}.IsActive").value is True and car_broker.get(f"{cond}.IsOngoing").value is True
    ticks(twin, 30)  # 50 min: at its target, the heater holds it there
    assert 3.9 < car_broker.get(temp).value < 5.1  # held within 1 K below the target
    used_kwh = (soc_before - car_broker.get(soc).value) / 100 * twin.vehicle.battery.usable_kwh
    assert used_kwh > 2.0  # the heater ran on the battery
    await car_broker.actuate({"Vehicle.Evos.Twin.ChargerConnected": True, f"{cond}.TargetTemperature": 15.0,
                              "Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging": "STOP"})
    soc_plugged = car_broker.get(soc).value
    ticks(twin, 12)
    assert car_broker.get(temp).value > 10 and car_broker.get(soc).value == pytest.approx(soc_plugged, abs=0.3)
    with pytest.raises(InvalidValueError, match="above the maximum 45"):
        await car_broker.actuate({f"{cond}.TargetTemperature": 80.0})
    await car_broker.actuate({f"{cond}.RequestedMode": "FAST_CHARGING_PREPARATION"})  # no target: the mode's own
    assert car_broker.get(f"{cond}.TargetTemperature").value == 35.0
    await car_broker.actuate({f"{cond}.RequestedMode": "INACTIVE"})
    ticks(twin, 1)
    assert car_broker.get(f"{cond}.IsActive").value is False and car_broker.get(f"{cond}.IsOngoing").value is False


async def test_a_parked_car_sends_its_slow_drifts_once_a_second_and_a_moving_one_every_tick(
        car_broker: Broker) -> None:
    soc, speed = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "Vehicle.Speed"
    twin = await started(car_broker, load_vehicle("xiaomi-su7"))
    twin.tick(0.1)
    with car_broker.subscribe_paths((soc, speed, "Vehicle.Powertrain.TractionBattery.Temperature.Average")) as sub:
        sub.get_nowait()  # the current values
        ticks(twin, 0.5)  # parked, within a second of wall time: nothing moved by its resolution, nothing is sent
        assert sub.pending() == 0
        twin._refreshed_s = -1e9  # a second later: the refresh sends every signal, exact
        twin.tick(0.1)
        refreshed = sub.get_nowait()
        assert refreshed is not None and len(refreshed) == 3
        assert refreshed[soc].value == twin.signals()[soc]
        await car_broker.actuate({"Vehicle.Evos.Twin.Driver.TargetSpeed": 50.0})
        ticks(twin, 1.0)  # moving: the speed every tick
        batches = [sub.get_nowait() for _ in range(sub.pending())]
        assert len(batches) == 10 and all(speed in b for b in batches)
