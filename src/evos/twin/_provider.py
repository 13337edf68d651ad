"""The twin as an app of the running car: a provider on the vehicle-data port, stepping the model at 10 Hz.

It claims the actuators a car's hardware would serve (charge limit, start/stop charging, HVAC, and the
twin's driver and environment inputs from ``data/twin-overlay.vspec``), carries out each request and
publishes the actual value, and publishes the measured signals every tick. What the other apps' devices
draw (``LOADS``: the body hardware, the media) it reads from their signals and drains from the battery.
Units are SI inside and converted to VSS units here, at the boundary (``_codec`` for the controls). State
is saved to the data directory every second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from evos import datadir
from evos.app import App, AppEnv, Grants, paths_in
from evos.broker import Mirror, VehiclePort
from evos.errors import EvosError, UnavailableError
from evos.twin import _physics as phys
from evos.twin._codec import (
    ACTUATORS,
    BAT,
    CHG,
    CONDITIONING_TARGET,
    HVAC,
    LOADS,
    POWER_STATE,
    SETTINGS,
    TIME_SCALE,
    TWIN,
    apply_actuation,
    controls_to_vss,
)
from evos.twin._config import Vehicle
from evos.twin._procedures import wltp
from evos.twin._realtime import Controls, TwinState, conditioning_target_c, step
from evos.twin._store import StateStore, StorageFault
from evos.twin._vehicles import load_vehicle
from evos.vss import Signal, Value, validate

log = logging.getLogger("evos.twin")
OVERLAY = Path(str(resources.files("evos.twin").joinpath("data", "twin-overlay.vspec")))
MAX_STEP_S = 0.1  # the model's step; faster-than-real-time ticks are split into steps of this size
# A parked car (standing, no pedal, no driver model) changes slowly: charging, climate and the pack's temperature
# are stable with 1 s steps (cabin controller: 1 s x 950 W/K / 80 kJ/K = 0.012), which keeps a car sped up 1000x
# for a night of camping cheap enough to leave the rest of the car responsive.
MAX_PARKED_STEP_S = 1.0
SAVE_INTERVAL_S = 1.0
STORAGE_FAULT = "Vehicle.Evos.Twin.StorageFault"
# Each tick publishes what changed by at least the signal's resolution, and while the car moves these every tick
# (driver assistance faults on a moving car's speed older than 0.5 s, as on a silent wheel-speed sensor); every
# signal is sent again, exact, once a second (a cyclic message, as on CAN). A parked car's slow drifts (the state of
# charge under the 12 V load, temperatures) so reach the other apps once a second, not at every step.
CYCLIC = ("Vehicle.Speed", "Vehicle.Acceleration.Longitudinal")
REFRESH_S = 1.0
# Assumed resolutions, of the order of the CAN signals and GNSS fixes that carry them (VSS gives none): a smaller
# change waits for the next refresh.
RESOLUTIONS = {
    "Vehicle.CurrentLocation.Latitude": 1e-7, "Vehicle.CurrentLocation.Longitude": 1e-7,  # degrees, ~1 cm
    "Vehicle.CurrentLocation.Heading": 0.1,  # degrees
    f"{BAT}.StateOfCharge.Current": 0.01,  # percent
    f"{BAT}.StateOfCharge.CurrentEnergy": 0.001,  # kWh
    f"{BAT}.CurrentVoltage": 0.1,  # V
    f"{BAT}.CurrentCurrent": 0.1,  # A
    f"{BAT}.CurrentPower": 10.0,  # W
    f"{BAT}.Temperature.Average": 0.1,  # celsius
    f"{BAT}.AccumulatedConsumedEnergy": 0.001,  # kWh
    "Vehicle.Powertrain.ElectricMotor.Speed": 1,  # rpm
    f"{TWIN}.CabinTemperature": 0.1,  # celsius
    f"{HVAC}.AmbientAirTemperature": 0.1,  # celsius: the cabin's, as above
    f"{TWIN}.CabinLoadPower": 1.0,  # W
}
# A car left standing with no drive input switches itself off after this long (car time), unless a load keeps it
# awake: assumed, of the order cars go to sleep after (10-15 min reported for several makes).
SLEEP_AFTER_S = 600.0
UINT32_MAX = 2**32 - 1
# Tyres: filled to the placard's cold pressure at 20 °C, the gas then follows the air temperature (Gay-Lussac:
# absolute pressure proportional to absolute temperature); rolling warm-up is not modelled. 290 kPa is the Tesla
# Model 3's placard (42 psi, Model 3 Owner's Manual, "Tire Care and Maintenance"), for every preset.
TIRE_COLD_KPA = 290.0
TIRE_REFERENCE_C = 20.0
ATMOSPHERE_KPA = 101.325
TIRES = tuple(f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Pressure" for row in (1, 2)
              for side in ("Left", "Right"))


def tire_pressure_kpa(air_c: float) -> float:
    """A tyre's gauge pressure, kPa, with its air at ``air_c``."""
    absolute_kpa = (TIRE_COLD_KPA + ATMOSPHERE_KPA) * (air_c + 273.15) / (TIRE_REFERENCE_C + 273.15)
    return absolute_kpa - ATMOSPHERE_KPA


_MEASURED = (
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.TraveledDistance",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Heading",
    f"{BAT}.StateOfCharge.Current",
    f"{BAT}.StateOfCharge.Displayed",
    f"{BAT}.StateOfCharge.CurrentEnergy",
    f"{BAT}.CurrentVoltage",
    f"{BAT}.CurrentCurrent",
    f"{BAT}.CurrentPower",
    f"{BAT}.Temperature.Average",
    f"{BAT}.Range",
    f"{BAT}.AccumulatedConsumedEnergy",
    "Vehicle.Powertrain.Range",
    f"{CHG}.IsCharging",
    f"{CHG}.TimeToComplete",
    f"{CHG}.ChargingPort.AnyPosition.IsChargingCableConnected",
    "Vehicle.Powertrain.ElectricMotor.Power",
    "Vehicle.Powertrain.ElectricMotor.Speed",
    "Vehicle.Chassis.Accelerator.PedalPosition",
    "Vehicle.Chassis.Brake.PedalPosition",
    f"{HVAC}.AmbientAirTemperature",
    "Vehicle.Exterior.AirTemperature",
    f"{TWIN}.CabinTemperature",
    f"{TWIN}.CabinLoadPower",
    f"{BAT}.BatteryConditioning.IsActive",
    f"{BAT}.BatteryConditioning.IsOngoing",
    POWER_STATE,
    *TIRES,
)
_ATTRIBUTES = (f"{TWIN}.Vehicle", "Vehicle.VehicleIdentification.Model",
               "Vehicle.Powertrain.TractionBattery.GrossCapacity", f"{BAT}.NetCapacity")


def _changed(value: Any, sent: Any, resolution: float | None) -> bool:
    """Whether ``value`` differs from the one last ``sent`` (by at least ``resolution``, for a number that has one)."""
    if resolution is not None and isinstance(value, int | float) and isinstance(sent, int | float):
        return abs(value - sent) >= resolution
    return bool(value != sent)


def _parked_for(vehicle: Vehicle, state: TwinState, ambient_c: float, seconds: float) -> TwinState:
    """The state after standing switched off for ``seconds``: pack and cabin cool (or warm) toward ambient."""
    b = vehicle.battery
    pack = math.exp(-max(seconds, 0.0) / (b.heat_capacity_j_per_k * b.thermal_resistance_k_per_w * 20))  # no pump
    cabin = math.exp(-max(seconds, 0.0) * vehicle.climate.cabin_ua_w_per_k / phys.CABIN_HEAT_CAPACITY_J_PER_K)
    return replace(state, battery_temp_c=ambient_c + (state.battery_temp_c - ambient_c) * pack,
                   cabin_temp_c=ambient_c + (state.cabin_temp_c - ambient_c) * cabin)


class TwinProvider:
    """Runs a vehicle's twin on a vehicle-data port until stopped (``run``)."""

    def __init__(self, port: VehiclePort, vehicle: Vehicle, store: StateStore | None = None,
                 controls: Controls | None = None, rate_hz: float = 10.0, vehicle_ref: str | None = None) -> None:
        self.port = port
        self.vehicle = vehicle
        self.vehicle_ref = vehicle_ref or vehicle.name  # what `load_vehicle` takes to load this car again
        self.store = store
        self.controls = controls or Controls()
        self.rate_hz = rate_hz
        self.time_scale = 1.0
        saved = store.load(vehicle.name) if store is not None else None
        ambient = self.controls.ambient_c
        if saved is not None and store is not None and store.saved_at_s is not None:
            saved = _parked_for(vehicle, saved, ambient, time.time() - store.saved_at_s)
        self.state = saved or TwinState(battery_temp_c=ambient, cabin_temp_c=ambient)
        self._loads: Mirror | None = None
        self._idle_s = 0.0  # car time standing with no drive input (toward switching off)
        self._last_save = -math.inf
        self._last_error = ""
        self._storage = StorageFault(port.publish_nowait, STORAGE_FAULT, "twin")
        self._sent: dict[str, Any] = {}  # the last value published per signal
        self._refreshed_s = -math.inf  # when every signal was last published (monotonic)
        self.steps = 0

    def _on_actuate(self, batch: dict[str, Value]) -> Awaitable[None] | None:
        """Carry out a request at once; one that changes the owner's settings (``SETTINGS``) is answered only once
        they are on the disk (a failed save refuses it and changes nothing). Driver inputs, many a second, are not
        saved and wait for nothing."""
        if self.store is not None and any(path in SETTINGS for path in batch):
            return self._save_then_apply(batch)
        self._apply(batch)
        return None

    async def _save_then_apply(self, batch: dict[str, Value]) -> None:
        assert self.store is not None
        controls = apply_actuation(self.controls, batch)
        try:
            await asyncio.to_thread(self.store.save_settings, self.vehicle.name,
                                    {p: v for p, v in controls_to_vss(controls).items() if p in SETTINGS})
        except sqlite3.Error as exc:
            raise UnavailableError(f"twin: cannot save the settings: {exc}; nothing was changed") from exc
        self._apply(batch, controls)

    def _apply(self, batch: dict[str, Value], controls: Controls | None = None) -> None:
        """Carry ``batch`` out (``controls``: what it makes of the controls, when already worked out)."""
        if TIME_SCALE in batch:
            self.time_scale = float(batch[TIME_SCALE])  # type: ignore[arg-type]
        self.controls = controls or apply_actuation(self.controls, batch)
        reported = dict(batch)  # the twin carries requests out at once: report the actual values
        if f"{BAT}.BatteryConditioning.RequestedMode" in batch and (
                target_c := conditioning_target_c(self.controls)) is not None:
            reported[CONDITIONING_TARGET] = target_c
        reported[POWER_STATE] = "ON" if self.controls.power_on else "OFF"
        self.port.publish_nowait(reported)

    @functools.cached_property
    def _kwh_per_m(self) -> float:
        """The range estimate's consumption: this car's WLTP battery kWh per metre (one cycle simulation, made when
        first needed, not while the car starts)."""
        return float(wltp(self.vehicle).details["battery_kwh_per_100km"]) / 1e5

    def _parked(self) -> bool:
        c = self.controls
        return (self.state.speed_mps == 0.0 and c.accelerator_pct == 0.0 and c.target_speed_kmh is None
                and self.time_scale > 1.0)

    def _take_loads(self) -> None:
        """The other apps' loads, from their signals (the body hardware's, the media's)."""
        if self._loads is not None:
            load_w = sum(float(v) for v in self._loads.values().values() if isinstance(v, int | float))
            if load_w != self.controls.cabin_load_w:
                self.controls = replace(self.controls, cabin_load_w=load_w)

    def _power(self, dt_s: float) -> None:
        """Switch the car off once it stood long enough with no drive input (a load still keeps it awake)."""
        c = self.controls
        driving = (self.state.speed_mps > 0 or c.target_speed_kmh is not None or c.accelerator_pct > 0
                   or c.brake_pct > 0)
        self._idle_s = 0.0 if driving else self._idle_s + dt_s
        if c.power_on and self._idle_s >= SLEEP_AFTER_S:
            self.controls = replace(c, power_on=False)

    def tick(self, wall_dt_s: float) -> None:
        """Advance by ``wall_dt_s`` of wall time (times the time scale) and publish the signals."""
        self._take_loads()
        remaining = wall_dt_s * self.time_scale
        while remaining > 1e-9:
            dt = min(remaining, MAX_PARKED_STEP_S if self._parked() else MAX_STEP_S)
            self.state = step(self.vehicle, self.state, self.controls, dt)
            self._power(dt)
            remaining -= dt
            self.steps += 1
        signals = self.signals()
        now_s = time.monotonic()
        if now_s - self._refreshed_s >= REFRESH_S:
            self._refreshed_s = now_s
        else:
            moving = self.state.speed_mps != 0.0 or self.state.accel_mps2 != 0.0
            signals = {p: v for p, v in signals.items()
                       if (moving and p in CYCLIC) or _changed(v, self._sent.get(p), RESOLUTIONS.get(p))}
        if not signals:  # a parked car between refreshes: nothing moved by its resolution
            return
        try:
            self.port.publish_nowait(signals)
            self._sent.update(signals)
        except EvosError as exc:  # a value the catalog refuses must not stop the car: report it, go on
            if str(exc) != self._last_error:
                log.error("twin: publishing failed: %s", exc)
                self._last_error = str(exc)

    @staticmethod
    def published_paths() -> tuple[str, ...]:
        """Every path the twin publishes (measurements and the actual values of its actuators)."""
        return (*_MEASURED, *ACTUATORS, TIME_SCALE, *_ATTRIBUTES, STORAGE_FAULT)

    @staticmethod
    def served_paths() -> tuple[str, ...]:
        """The actuators the twin serves."""
        return (*ACTUATORS, TIME_SCALE)

    def signals(self) -> dict[str, Any]:
        """The twin's measurements in VSS paths and units."""
        s, c, v = self.state, self.controls, self.vehicle
        usable_kwh = v.battery.usable_kwh
        range_m = int(s.soc * usable_kwh / self._kwh_per_m)
        charging = s.charging_power_w > 0
        to_go_kwh = max(c.charge_limit_pct / 100 - s.soc, 0.0) * usable_kwh
        time_to_complete_s = int(to_go_kwh * 3.6e6 / s.charging_power_w) if charging else 0
        return {
            "Vehicle.Speed": s.speed_mps * 3.6,
            "Vehicle.IsMoving": s.speed_mps > 0.05,
            "Vehicle.TraveledDistance": min(int(s.odometer_m), UINT32_MAX),
            "Vehicle.Acceleration.Longitudinal": s.accel_mps2,
            "Vehicle.CurrentLocation.Latitude": s.latitude_deg,
            "Vehicle.CurrentLocation.Longitude": s.longitude_deg,
            "Vehicle.CurrentLocation.Heading": s.heading_deg,
            f"{BAT}.StateOfCharge.Current": s.soc * 100,
            f"{BAT}.StateOfCharge.Displayed": round(s.soc * 100),
            f"{BAT}.StateOfCharge.CurrentEnergy": s.soc * usable_kwh,
            f"{BAT}.CurrentVoltage": s.voltage_v,
            f"{BAT}.CurrentCurrent": -s.current_a,  # VSS: positive flows into the battery
            f"{BAT}.CurrentPower": -s.battery_power_w,
            f"{BAT}.Temperature.Average": s.battery_temp_c,
            f"{BAT}.Range": min(range_m, UINT32_MAX),
            f"{BAT}.AccumulatedConsumedEnergy": s.consumed_kwh,
            "Vehicle.Powertrain.Range": min(range_m, UINT32_MAX),
            f"{CHG}.IsCharging": charging,
            f"{CHG}.TimeToComplete": min(time_to_complete_s, UINT32_MAX),
            f"{CHG}.ChargingPort.AnyPosition.IsChargingCableConnected": c.charger_connected,
            "Vehicle.Powertrain.ElectricMotor.Power": max(min(round(s.motor_power_w / 1e3), 32767), -32768),
            "Vehicle.Powertrain.ElectricMotor.Speed": s.motor_rpm,
            "Vehicle.Chassis.Accelerator.PedalPosition": round(c.accelerator_pct),
            "Vehicle.Chassis.Brake.PedalPosition": round(c.brake_pct),
            f"{HVAC}.AmbientAirTemperature": s.cabin_temp_c,  # VSS: "ambient air temperature inside the vehicle"
            "Vehicle.Exterior.AirTemperature": c.ambient_c,
            **dict.fromkeys(TIRES, round(tire_pressure_kpa(c.ambient_c))),
            f"{TWIN}.CabinTemperature": s.cabin_temp_c,
            f"{TWIN}.CabinLoadPower": c.cabin_load_w,
            f"{BAT}.BatteryConditioning.IsActive": c.battery_conditioning != "INACTIVE",  # requested
            f"{BAT}.BatteryConditioning.IsOngoing": s.battery_heater_w > 0,  # the heater is running
            POWER_STATE: "ON" if c.power_on else "OFF",
        }

    def settings(self) -> dict[str, Value]:
        """The value of every actuator the twin serves, and what the car is (published at start)."""
        return {
            **controls_to_vss(self.controls),
            TIME_SCALE: self.time_scale,
            f"{TWIN}.Vehicle": self.vehicle_ref,
            # what the car is, in VSS's own attributes (apps show these, e.g. the phone app's title)
            "Vehicle.VehicleIdentification.Model": self.vehicle.name,
            "Vehicle.Powertrain.TractionBattery.GrossCapacity": round(self.vehicle.battery.gross_kwh),
            f"{BAT}.NetCapacity": round(self.vehicle.battery.usable_kwh),
        }

    async def _save_or_say(self, now_s: float) -> None:
        """Save (off the loop); a save that fails (a full or broken disk) is logged once, published as
        ``STORAGE_FAULT`` and tried again at the next interval, never the end of the car."""
        try:
            await asyncio.to_thread(self.save, now_s)
        except (sqlite3.Error, OSError) as exc:
            self._last_save = now_s  # the next try, an interval later
            self._storage.failed(exc, f"tried again every {SAVE_INTERVAL_S:g} s")
            return
        self._storage.worked()

    def save(self, now_s: float) -> None:
        """Persist the state (``now_s`` is the monotonic time of the save)."""
        if self.store is not None:
            self.store.save(self.vehicle.name, self.state, time.time())
        self._last_save = now_s

    async def start(self) -> None:
        """Claim the twin's actuators, follow the other apps' loads and publish the settings and a first tick."""
        await self.port.provide(self.served_paths(), self._on_actuate)
        self._loads = await Mirror(self.port, LOADS).start()
        await asyncio.to_thread(lambda: self._kwh_per_m)  # the range estimate's cycle run, off the event loop
        self.port.publish_nowait({**self.settings(), STORAGE_FAULT: ""})
        self.tick(0.0)

    async def stop(self) -> None:
        """Save the state (off the event loop: a commit waits for the disk) and stop following the loads."""
        await self._save_or_say(time.monotonic())
        if self._loads is not None:
            await self._loads.stop()

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Tick at ``rate_hz`` (faster when time is sped up, so each tick covers at most 1 s of car time) until
        ``stop`` is set or the task is cancelled; save on the way out."""
        await self.start()
        ready()
        last = time.monotonic()
        try:
            while not stop.is_set():
                period = 1.0 / (self.rate_hz * min(max(self.time_scale, 1.0), 10.0))
                await asyncio.sleep(max(0.0, last + period - time.monotonic()))
                now = time.monotonic()
                self.tick(now - last)
                last = now
                if now - self._last_save >= SAVE_INTERVAL_S:
                    await self._save_or_say(now)  # an fsync must not stall the app's event loop
        finally:
            await self.stop()


async def _main(port: VehiclePort, env: AppEnv) -> None:
    s = env.settings
    controls = Controls(charger_connected=s.plugged_in, charger_kw=s.charger_kw, ambient_c=s.ambient_c)

    settings = {path: (await port.signals(path))[0] for path in SETTINGS}

    def make() -> TwinProvider:  # reads the vehicle file and the saved state and settings: off the event loop
        vehicle = load_vehicle(s.vehicle)
        store = None if env.data_dir is None else datadir.open_or_set_aside(
            env.data_dir / "twin.sqlite", StateStore, "the car's state (SoC, odometer) and settings begin anew", log)
        saved = store.load_settings(vehicle.name) if store is not None else {}
        return TwinProvider(port, vehicle, store, apply_actuation(controls, _checked_settings(settings, saved)),
                            vehicle_ref=s.vehicle)

    twin = env.instance = await asyncio.to_thread(make)
    vehicle = twin.vehicle
    log.info("twin: %s, SoC %.0f %%, odometer %.1f km", vehicle.name, twin.state.soc * 100,
             twin.state.odometer_m / 1e3)
    await twin.run(env.stop, env.ready)


def _checked_settings(signals: dict[str, Signal], saved: dict[str, Any]) -> dict[str, Value]:
    """The saved settings the catalog still takes (``signals``: the settings' metadata); one it refuses is said and
    left at its default."""
    checked: dict[str, Value] = {}
    for path, value in saved.items():
        if path not in signals:
            log.warning("twin: ignoring the saved %s: not one of the twin's settings", path)
            continue
        try:
            checked[path] = validate(signals[path], value)
        except EvosError as exc:
            log.warning("twin: ignoring the saved setting %s = %r: %s", path, value, exc)
    return checked


TWIN_APP = App(
    name="twin", summary="the digital twin: dynamics, motor, battery, charging, climate", partition="vehicle",
    main=_main, overlays=(OVERLAY,),
    grants=Grants(read=paths_in(*LOADS), provide=paths_in(*TwinProvider.published_paths()),
                  actuate=paths_in(*TwinProvider.served_paths())),
)
