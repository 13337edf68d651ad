"""The twin as part of the running car: a provider on the broker, stepping the model at 10 Hz.

It claims the actuators a car's hardware would serve (charge limit, start/stop charging, HVAC, and the
twin's driver and environment inputs from ``data/twin-overlay.vspec``), carries out each request
and publishes the actual value, and publishes the measured signals every tick. Units are SI inside and
converted to VSS units here, at the boundary. State is saved to the data directory every second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from evos._connect import Connection
from evos.broker import Broker, ProviderStream
from evos.errors import EvosError
from evos.twin import _physics as phys
from evos.twin._config import Vehicle
from evos.twin._procedures import wltp
from evos.twin._realtime import Controls, TwinState, conditioning_target_c, step
from evos.twin._store import StateStore

log = logging.getLogger("evos.twin")
OVERLAY = Path(str(resources.files("evos.twin").joinpath("data", "twin-overlay.vspec")))
MAX_STEP_S = 0.1  # the model's step; faster-than-real-time ticks are split into steps of this size
# A parked car (standing, no pedal, no driver model) changes slowly: charging, climate and the pack's temperature
# are stable with 1 s steps (cabin controller: 1 s x 950 W/K / 80 kJ/K = 0.012), which keeps a car sped up 1000x
# for a night of camping cheap enough to leave the rest of the car responsive.
MAX_PARKED_STEP_S = 1.0
SAVE_INTERVAL_S = 1.0
UINT32_MAX = 2**32 - 1

BAT = "Vehicle.Powertrain.TractionBattery"
CHG = f"{BAT}.Charging"
TWIN = "Vehicle.Evos.Twin"
HVAC = "Vehicle.Cabin.HVAC"

CONDITIONING_TARGET = f"{BAT}.BatteryConditioning.TargetTemperature"
# actuator path -> (Controls field, conversion from the VSS value)
ACTUATORS: dict[str, tuple[str, Any]] = {
    f"{CHG}.ChargeLimit": ("charge_limit_pct", float),
    f"{CHG}.StartStopCharging": ("charging_enabled", lambda v: v == "START"),
    f"{HVAC}.IsAirConditioningActive": ("hvac_on", bool),  # climate on/off (heating or cooling)
    f"{HVAC}.Station.Row1.Driver.Temperature": ("cabin_setpoint_c", float),
    f"{HVAC}.Station.Row1.Passenger.Temperature": ("cabin_setpoint_c", float),
    f"{TWIN}.Driver.AcceleratorPedal": ("accelerator_pct", float),
    f"{TWIN}.Driver.BrakePedal": ("brake_pct", float),
    f"{TWIN}.Driver.SteeringAngle": ("steering_deg", float),
    f"{TWIN}.Driver.TargetSpeed": ("target_speed_kmh", lambda v: None if v < 0 else float(v)),
    f"{TWIN}.ChargerConnected": ("charger_connected", bool),
    f"{TWIN}.ChargerPower": ("charger_kw", float),
    f"{TWIN}.AmbientTemperature": ("ambient_c", float),
    f"{BAT}.BatteryConditioning.RequestedMode": ("battery_conditioning", str),
    CONDITIONING_TARGET: ("battery_target_c", float),
}
TIME_SCALE = f"{TWIN}.TimeScale"


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
)


def _parked_for(vehicle: Vehicle, state: TwinState, ambient_c: float, seconds: float) -> TwinState:
    """The state after standing switched off for ``seconds``: pack and cabin cool (or warm) toward ambient."""
    b = vehicle.battery
    pack = math.exp(-max(seconds, 0.0) / (b.heat_capacity_j_per_k * b.thermal_resistance_k_per_w * 20))  # no pump
    cabin = math.exp(-max(seconds, 0.0) * vehicle.climate.cabin_ua_w_per_k / phys.CABIN_HEAT_CAPACITY_J_PER_K)
    return replace(state, battery_temp_c=ambient_c + (state.battery_temp_c - ambient_c) * pack,
                   cabin_temp_c=ambient_c + (state.cabin_temp_c - ambient_c) * cabin)


class Claim(Protocol):
    def close(self) -> None: ...


class SignalPort(Protocol):
    """What the twin needs of a broker: claim actuators and publish values (in-process ``Broker`` or remote)."""

    def provide(self, paths: Iterable[str], handler: Callable[[dict[str, Any]], None]) -> Claim: ...

    def set_many(self, updates: Mapping[str, Any]) -> None: ...


class RemotePort:
    """A ``SignalPort`` over an open provider stream to a remote broker (``evos twin run``)."""

    def __init__(self) -> None:
        self.stream: ProviderStream | None = None
        self._handler: Callable[[dict[str, Any]], None] | None = None

    def forward(self, batch: dict[str, Any]) -> None:
        if self._handler is not None:
            self._handler(batch)

    def provide(self, paths: Iterable[str], handler: Callable[[dict[str, Any]], None]) -> Claim:
        self._handler = handler  # the stream already claimed the actuators when it opened
        return self

    def set_many(self, updates: Mapping[str, Any]) -> None:
        assert self.stream is not None
        self.stream.publish(updates)

    def close(self) -> None:
        self._handler = None


async def run_remote(car: Connection, vehicle: Vehicle, controls: Controls, store: StateStore | None,
                     stop: asyncio.Event | None = None, vehicle_ref: str | None = None) -> None:
    """Run the twin as a provider of the broker of ``car`` (which must carry the twin overlay); ``vehicle_ref``
    is the preset name or file the car was loaded from, published so that other apps can load it too."""
    port = RemotePort()
    async with car.client() as client:
        signals = list(TwinProvider.published_paths())
        async with client.provide([*ACTUATORS, TIME_SCALE], port.forward, publishes=signals) as stream:
            port.stream = stream
            await TwinProvider(port, vehicle, store, controls, vehicle_ref=vehicle_ref).run(stop)


class TwinProvider:
    """Runs a vehicle's twin on a broker (in-process, or remote through a ``SignalPort``) until stopped."""

    def __init__(self, broker: SignalPort | Broker, vehicle: Vehicle, store: StateStore | None = None,
                 controls: Controls | None = None, rate_hz: float = 10.0, vehicle_ref: str | None = None) -> None:
        self.broker = broker
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
        self._provision = broker.provide([*ACTUATORS, TIME_SCALE], self._on_actuate)
        self._last_save = -math.inf
        self._last_error = ""
        self._cabin_loads_w: dict[str, float] = {}
        self.steps = 0

    def _on_actuate(self, batch: dict[str, Any]) -> None:
        changes: dict[str, Any] = {}
        for path, value in batch.items():
            if path == TIME_SCALE:
                self.time_scale = float(value)
                continue
            name, convert = ACTUATORS[path]
            changes[name] = convert(value)
            if name in ("accelerator_pct", "brake_pct"):
                changes.setdefault("target_speed_kmh", None)  # a pedal takes over from the driver model
            if name == "battery_conditioning":
                changes.setdefault("battery_target_c", None)  # a new request heats to its mode's own target
        self.controls = replace(self.controls, **changes)
        reported = dict(batch)  # the twin carries requests out at once: report the actual values
        if "battery_conditioning" in changes and (target_c := conditioning_target_c(self.controls)) is not None:
            reported[CONDITIONING_TARGET] = target_c
        self.broker.set_many(reported)

    @functools.cached_property
    def _kwh_per_m(self) -> float:
        """The range estimate's consumption: this car's WLTP battery kWh per metre (one cycle simulation, made when
        first needed, not while the car starts)."""
        return float(wltp(self.vehicle).details["battery_kwh_per_100km"]) / 1e5

    def set_cabin_load(self, load_w: float, source: str = "body") -> None:
        """The body and cabin devices of ``source`` (``BodyProvider(on_load=...)``: "body"; the cabin's media:
        "media") now draw ``load_w``; the twin drains the sum of all sources."""
        self._cabin_loads_w[source] = load_w
        self.controls = replace(self.controls, cabin_load_w=sum(self._cabin_loads_w.values()))

    def _parked(self) -> bool:
        c = self.controls
        return (self.state.speed_mps == 0.0 and c.accelerator_pct == 0.0 and c.target_speed_kmh is None
                and self.time_scale > 1.0)

    def tick(self, wall_dt_s: float) -> None:
        """Advance by ``wall_dt_s`` of wall time (times the time scale) and publish the signals."""
        remaining = wall_dt_s * self.time_scale
        while remaining > 1e-9:
            dt = min(remaining, MAX_PARKED_STEP_S if self._parked() else MAX_STEP_S)
            self.state = step(self.vehicle, self.state, self.controls, dt)
            remaining -= dt
            self.steps += 1
        try:
            self.broker.set_many(self.signals())
        except EvosError as exc:  # a value the catalog refuses must not stop the car: report it, go on
            if str(exc) != self._last_error:
                log.error("twin: publishing failed: %s", exc)
                self._last_error = str(exc)

    @staticmethod
    def published_paths() -> tuple[str, ...]:
        """Every path the twin publishes (measurements and the actual values of its actuators)."""
        return (*_MEASURED, *ACTUATORS, TIME_SCALE, f"{TWIN}.Vehicle", "Vehicle.VehicleIdentification.Model",
                "Vehicle.Powertrain.TractionBattery.GrossCapacity", f"{BAT}.NetCapacity")

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
            f"{HVAC}.AmbientAirTemperature": c.ambient_c,
            "Vehicle.Exterior.AirTemperature": c.ambient_c,
            f"{TWIN}.CabinTemperature": s.cabin_temp_c,
            f"{TWIN}.CabinLoadPower": c.cabin_load_w,
            f"{BAT}.BatteryConditioning.IsActive": c.battery_conditioning != "INACTIVE",  # requested
            f"{BAT}.BatteryConditioning.IsOngoing": s.battery_heater_w > 0,  # the heater is running
        }

    def publish_settings(self) -> None:
        """Publish the current value of every actuator the twin serves (at start)."""
        c = self.controls
        self.broker.set_many({
            f"{CHG}.ChargeLimit": round(c.charge_limit_pct),
            f"{CHG}.StartStopCharging": "START" if c.charging_enabled else "STOP",
            f"{HVAC}.IsAirConditioningActive": c.hvac_on,
            f"{HVAC}.Station.Row1.Driver.Temperature": c.cabin_setpoint_c,
            f"{HVAC}.Station.Row1.Passenger.Temperature": c.cabin_setpoint_c,
            f"{TWIN}.ChargerConnected": c.charger_connected,
            f"{TWIN}.ChargerPower": c.charger_kw,
            f"{TWIN}.AmbientTemperature": c.ambient_c,
            f"{BAT}.BatteryConditioning.RequestedMode": c.battery_conditioning,
            f"{TWIN}.TimeScale": self.time_scale,
            f"{TWIN}.Vehicle": self.vehicle_ref,
            # what the car is, in VSS's own attributes (apps show these, e.g. the phone app's title)
            "Vehicle.VehicleIdentification.Model": self.vehicle.name,
            "Vehicle.Powertrain.TractionBattery.GrossCapacity": round(self.vehicle.battery.gross_kwh),
            f"{BAT}.NetCapacity": round(self.vehicle.battery.usable_kwh),
        })

    def save(self, now_s: float) -> None:
        """Persist the state (``now_s`` is the monotonic time of the save)."""
        if self.store is not None:
            self.store.save(self.vehicle.name, self.state, time.time())
        self._last_save = now_s

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick at ``rate_hz`` (faster when time is sped up, so each tick covers at most 1 s of car time)
        until ``stop`` is set or the task is cancelled; save on the way out."""
        self.publish_settings()
        await asyncio.to_thread(lambda: self._kwh_per_m)  # the range estimate's cycle run, off the event loop
        self.tick(0.0)
        last = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                period = 1.0 / (self.rate_hz * min(max(self.time_scale, 1.0), 10.0))
                await asyncio.sleep(max(0.0, last + period - time.monotonic()))
                now = time.monotonic()
                self.tick(now - last)
                last = now
                if now - self._last_save >= SAVE_INTERVAL_S:
                    await asyncio.to_thread(self.save, now)  # an fsync must not stall the car's event loop
        finally:
            self.save(time.monotonic())
            self._provision.close()
