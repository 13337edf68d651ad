"""The car as the phone sees it: grouped state read from VSS signals, and commands that become one actuation each.

``STATE_FIELDS`` names each value the app shows and the VSS signal it comes from (values in VSS units, named in the
field). ``COMMANDS`` maps each remote command to its arguments, the scope it needs, whether it must be signed by a
paired phone key, and the actuator targets it sends. ``execute`` sends them in one ``batch_actuate`` and waits (a
bounded time) for the car to report the new values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evos.broker import Mirror, VehiclePort
from evos.companion._errors import NotFoundError
from evos.errors import EvosError
from evos.vss import Catalog

log = logging.getLogger("evos.companion")

BAT = "Vehicle.Powertrain.TractionBattery"
CHG = f"{BAT}.Charging"
HVAC = "Vehicle.Cabin.HVAC"
SCENE = "Vehicle.Evos.Cabin.Scene"  # the cabin's scene actuator (evos.cabin overlay), when the car has it
DOORS = {"row1_driver": "Row1.DriverSide", "row1_passenger": "Row1.PassengerSide",
         "row2_driver": "Row2.DriverSide", "row2_passenger": "Row2.PassengerSide"}
VENT_PCT = 10  # window opening for "vent" (assumed: a gap of a few centimetres)
FLASH_S = 2.0  # "flash lights" blinks the hazards this long, like a car app's locate-my-car flash (assumed)
HAZARD = "Vehicle.Body.Lights.Hazard.IsSignaling"


def _per_door(template: str, name: str) -> dict[str, str]:
    return {name.format(door=door): template.format(side=side) for door, side in DOORS.items()}


STATE_FIELDS: dict[str, dict[str, str]] = {
    "battery": {
        "soc_pct": f"{BAT}.StateOfCharge.Current",
        "energy_kwh": f"{BAT}.StateOfCharge.CurrentEnergy",
        "range_m": f"{BAT}.Range",
        "power_w": f"{BAT}.CurrentPower",
        "temperature_c": f"{BAT}.Temperature.Average",
        "conditioning": f"{BAT}.BatteryConditioning.RequestedMode",
        "conditioning_heating": f"{BAT}.BatteryConditioning.IsOngoing",
    },
    "charging": {
        "is_charging": f"{CHG}.IsCharging",
        "cable_connected": f"{CHG}.ChargingPort.AnyPosition.IsChargingCableConnected",
        "charge_limit_pct": f"{CHG}.ChargeLimit",
        "start_stop": f"{CHG}.StartStopCharging",
        "time_to_complete_s": f"{CHG}.TimeToComplete",
    },
    "climate": {
        "is_on": f"{HVAC}.IsAirConditioningActive",
        "driver_temp_c": f"{HVAC}.Station.Row1.Driver.Temperature",
        "passenger_temp_c": f"{HVAC}.Station.Row1.Passenger.Temperature",
        "cabin_temp_c": "Vehicle.Evos.Twin.CabinTemperature",
        "outside_temp_c": "Vehicle.Exterior.AirTemperature",
        "front_defroster": f"{HVAC}.IsFrontDefrosterActive",
        "rear_defroster": f"{HVAC}.IsRearDefrosterActive",
        **_per_door("Vehicle.Cabin.Seat.{side}.HeatingCooling", "seat_{door}_heating_pct"),
        "scene": SCENE,
    },
    "closures": {
        **_per_door("Vehicle.Cabin.Door.{side}.IsLocked", "door_{door}_locked"),
        **_per_door("Vehicle.Cabin.Door.{side}.IsOpen", "door_{door}_open"),
        **_per_door("Vehicle.Cabin.Door.{side}.Window.Position", "window_{door}_pct"),
        "trunk_locked": "Vehicle.Body.Trunk.Rear.IsLocked",
        "trunk_open": "Vehicle.Body.Trunk.Rear.IsOpen",
        "frunk_open": "Vehicle.Body.Trunk.Front.IsOpen",
        "hazards_on": "Vehicle.Body.Lights.Hazard.IsSignaling",
        "horn_active": "Vehicle.Body.Horn.IsActive",
    },
    "location": {
        "latitude_deg": "Vehicle.CurrentLocation.Latitude",
        "longitude_deg": "Vehicle.CurrentLocation.Longitude",
        "heading_deg": "Vehicle.CurrentLocation.Heading",
    },
    "drive": {
        "speed_kmh": "Vehicle.Speed",
        "is_moving": "Vehicle.IsMoving",
        "odometer_m": "Vehicle.TraveledDistance",
        "gear": "Vehicle.Powertrain.Transmission.CurrentGear",
        "model": "Vehicle.VehicleIdentification.Model",  # e.g. "Xiaomi SU7" (the twin publishes its name)
    },
}
LOCATION_GROUP = "location"


def state_paths(catalog: Catalog, with_location: bool) -> dict[str, tuple[str, str]]:
    """VSS path -> (group, field) for every state field the catalog has (location only ``with_location``)."""
    return {path: (group, name) for group, fields in STATE_FIELDS.items()
            if with_location or group != LOCATION_GROUP
            for name, path in fields.items() if path in catalog.signals}


def group_values(paths: Mapping[str, tuple[str, str]], values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{group: {field: value}}`` for the paths present in ``values``."""
    groups: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        group, name = paths[path]
        groups.setdefault(group, {})[name] = value
    return groups


class StateView:
    """The state groups as JSON text, kept from one read to the next until a state signal changes.

    A read costs a dictionary lookup while the car is still; the twin updates a few signals ten times a second, so
    the JSON is rebuilt at most that often rather than for every request. ``start`` it (it follows the signals
    with a mirror) and ``stop`` it when done.
    """

    def __init__(self, port: VehiclePort) -> None:
        self._port = port
        self._paths: dict[bool, dict[str, tuple[str, str]]] = {}
        self._mirror: Mirror | None = None
        self._json: dict[bool, str] = {}
        self._version = -1
        self.catalog = Catalog({})

    async def start(self) -> None:
        self.catalog = Catalog({s.path: s for s in await self._port.signals()})
        self._paths = {located: state_paths(self.catalog, located) for located in (False, True)}
        self._mirror = await Mirror(self._port, tuple(self._paths[True])).start()

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()

    def paths(self, with_location: bool) -> dict[str, tuple[str, str]]:
        return self._paths[with_location]

    def values(self, paths: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        assert self._mirror is not None, "start() first"
        return self._mirror.values(paths)

    def changes(self, paths: Mapping[str, tuple[str, str]]) -> Changes:
        """The changes of ``paths`` from now on, merged between reads (``Changes.next``); close it when done."""
        assert self._mirror is not None, "start() first"
        return Changes(self._mirror, frozenset(paths))

    def groups_json(self, with_location: bool) -> str:
        """``{group: {field: value}}`` as JSON (the location group only ``with_location``)."""
        assert self._mirror is not None, "start() first"
        if self._mirror.version != self._version:
            self._version = self._mirror.version
            self._json.clear()
        text = self._json.get(with_location)
        if text is None:
            paths = self._paths[with_location]
            values = self._mirror.values(paths)
            text = self._json[with_location] = json.dumps(group_values(paths, values), ensure_ascii=False,
                                                          allow_nan=False, separators=(",", ":"))
        return text


class Changes:
    """Changed values of some signals of a mirror, merged until taken (latest value per signal)."""

    def __init__(self, mirror: Mirror, paths: frozenset[str]) -> None:
        self._pending: dict[str, Any] = {}
        self._event = asyncio.Event()
        self._paths = paths
        self.close = mirror.on_change(self._take)

    def _take(self, batch: Mapping[str, Any]) -> None:
        for path, dp in batch.items():
            if path in self._paths:
                self._pending[path] = dp.value
                self._event.set()

    async def next(self) -> dict[str, Any]:
        """Wait for a change; every change since the last call."""
        while not self._pending:
            self._event.clear()
            await self._event.wait()
        taken, self._pending = self._pending, {}
        return taken


# ---- command arguments (validated by FastAPI; they also document the API in /openapi.json) --------------------
class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemperatureArgs(NoArgs):
    temperature_c: float = Field(ge=15, le=28, description="Cabin set point, °C (assumed range of car climate "
                                                            "controls).")


class SeatHeatingArgs(NoArgs):
    seat: Literal["row1_driver", "row1_passenger", "row2_driver", "row2_passenger"] = "row1_driver"
    level_pct: int = Field(ge=0, le=100, description="Heating level, percent (0 = off).")


class SwitchArgs(NoArgs):
    on: bool = True


class ChargeLimitArgs(NoArgs):
    limit_pct: int = Field(ge=50, le=100, description="Charge to this state of charge, percent (assumed floor "
                                                      "50 %, as car apps commonly allow).")


CONDITIONING_MODES = {"fast_charging": "FAST_CHARGING_PREPARATION", "driving": "DRIVING_PREPARATION",
                      "off": "INACTIVE"}


class ConditioningArgs(NoArgs):
    mode: Literal["fast_charging", "driving", "off"] = Field(
        "fast_charging", description="Warm the battery for a fast charge or for driving, or stop.")


class SceneArgs(NoArgs):
    scene: str = Field(min_length=1, max_length=40, description="The scene's name, as the cabin lists it.")


@dataclass(frozen=True)
class Command:
    """A remote command: its arguments, the scope it needs, whether a paired key must sign it, what it actuates."""

    name: str
    summary: str
    scope: str
    signed: bool
    args: type[NoArgs]
    targets: Callable[[Any], dict[str, Any]]
    momentary_s: float = 0.0  # > 0: the companion switches the (boolean) targets off again after this long


def _doors(template: str, value: Any) -> dict[str, Any]:
    return {f"Vehicle.Cabin.Door.{side}.{template}": value for side in DOORS.values()}


_TRUNK = "Vehicle.Body.Trunk.Rear"
_CMDS = "vehicle_cmds"
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("lock", "Lock every door.", _CMDS, False, NoArgs, lambda a: _doors("IsLocked", True)),
    Command("unlock", "Unlock every door (signed).", _CMDS, True, NoArgs, lambda a: _doors("IsLocked", False)),
    Command("climate_on", "Switch the climate on.", _CMDS, False, NoArgs,
            lambda a: {f"{HVAC}.IsAirConditioningActive": True}),
    Command("climate_off", "Switch the climate off.", _CMDS, False, NoArgs,
            lambda a: {f"{HVAC}.IsAirConditioningActive": False}),
    Command("set_temperature", "Set the cabin temperature (driver and passenger).", _CMDS, False, TemperatureArgs,
            lambda a: {f"{HVAC}.Station.Row1.Driver.Temperature": a.temperature_c,
                       f"{HVAC}.Station.Row1.Passenger.Temperature": a.temperature_c}),
    Command("seat_heating", "Set a seat heater's level.", _CMDS, False, SeatHeatingArgs,
            lambda a: {f"Vehicle.Cabin.Seat.{DOORS[a.seat]}.HeatingCooling": a.level_pct}),
    Command("defrost", "Switch the front and rear defrosters on or off.", _CMDS, False, SwitchArgs,
            lambda a: {f"{HVAC}.IsFrontDefrosterActive": a.on, f"{HVAC}.IsRearDefrosterActive": a.on}),
    Command("charge_start", "Start charging.", "charging_cmds", False, NoArgs,
            lambda a: {f"{CHG}.StartStopCharging": "START"}),
    Command("charge_stop", "Stop charging.", "charging_cmds", False, NoArgs,
            lambda a: {f"{CHG}.StartStopCharging": "STOP"}),
    Command("set_charge_limit", "Set the charge limit.", "charging_cmds", False, ChargeLimitArgs,
            lambda a: {f"{CHG}.ChargeLimit": a.limit_pct}),
    Command("battery_conditioning", "Warm the battery for a fast charge or for driving, or stop.",
            "charging_cmds", False, ConditioningArgs,
            lambda a: {f"{BAT}.BatteryConditioning.RequestedMode": CONDITIONING_MODES[a.mode]}),
    Command("honk", "Sound the horn briefly.", _CMDS, False, NoArgs, lambda a: {"Vehicle.Body.Horn.IsActive": True}),
    Command("flash_lights", f"Flash the hazard lights for {FLASH_S:g} s.", _CMDS, False, NoArgs,
            lambda a: {HAZARD: True}, momentary_s=FLASH_S),
    Command("open_trunk", "Unlock and open the trunk (signed).", _CMDS, True, NoArgs,
            lambda a: {f"{_TRUNK}.IsLocked": False, f"{_TRUNK}.IsOpen": True}),
    Command("close_trunk", "Close the trunk.", _CMDS, False, NoArgs, lambda a: {f"{_TRUNK}.IsOpen": False}),
    Command("open_windows", f"Open every window {VENT_PCT} % to vent (signed).", _CMDS, True, NoArgs,
            lambda a: _doors("Window.Position", VENT_PCT)),
    Command("close_windows", "Close every window.", _CMDS, False, NoArgs, lambda a: _doors("Window.Position", 0)),
    Command("scene_enter", "Enter a cabin scene.", _CMDS, False, SceneArgs, lambda a: {SCENE: a.scene}),
    Command("scene_exit", "Leave the cabin scene.", _CMDS, False, NoArgs, lambda a: {SCENE: "NONE"}),
)}


async def command_targets(port: VehiclePort, catalog: Catalog, command: Command, args: NoArgs) -> dict[str, Any]:
    """The checked actuator targets of a command on this car (the errors an actuation would raise before it
    reaches a provider; nothing sent).

    NotFoundError when the car has none of the command's actuators (a car without cabin scenes, say).
    """
    wanted = command.targets(args)
    present = {path: value for path, value in wanted.items() if path in catalog.signals}
    if not present:
        raise NotFoundError(f"this car cannot {command.name}: it has no {', '.join(wanted)} signal",
                            code="not_supported")
    return await port.check(present)


class Momentary:
    """Switches that the companion turns off again after a while (the hazards of "flash lights").

    ``schedule`` arms one timer per signal; a second request before it fires starts the time again. ``close``
    (when the companion stops) switches off at once whatever is still on, so nothing stays on by accident.
    """

    def __init__(self, port: VehiclePort) -> None:
        self._port = port
        self._timers: dict[str, asyncio.Task[None]] = {}

    def schedule(self, paths: tuple[str, ...], after_s: float) -> None:
        for path in paths:
            if (timer := self._timers.pop(path, None)) is not None:
                timer.cancel()
            self._timers[path] = asyncio.create_task(self._off_after(path, after_s))

    async def _off_after(self, path: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self._timers.pop(path, None)
        await self._off(path)

    async def _off(self, path: str) -> None:
        try:
            await self._port.actuate({path: False})
        except EvosError as exc:  # the car refused or its provider is gone: nothing to undo, say so
            log.warning("companion: could not switch %s off again: %s", path, exc)

    async def close(self) -> None:
        for path, timer in list(self._timers.items()):
            timer.cancel()
            await self._off(path)
        self._timers.clear()


def _same(actual: Any, target: Any) -> bool:
    if isinstance(target, float) and isinstance(actual, int | float):
        return math.isclose(actual, target, rel_tol=1e-6, abs_tol=1e-3)
    return bool(actual == target)


async def execute(port: VehiclePort, targets: Mapping[str, Any], wait_s: float) -> dict[str, Any]:
    """Actuate ``targets`` in one batch and wait up to ``wait_s`` for the car to report each value.

    Returns ``{"result": "completed" | "in_progress", "values": {path: value now}}``; "in_progress" means a motor
    is still on its way (a window, the trunk) when the wait ended. Errors of the actuation propagate.
    """
    paths = tuple(targets)
    reached: set[str] = set()
    latest: dict[str, Any] = {}
    async with port.subscribe(paths) as updates:
        stream = aiter(updates)
        await anext(stream)  # the current values, before the actuation
        await port.actuate(targets)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while len(reached) < len(paths) and (remaining := deadline - loop.time()) > 0:
            try:
                batch = await asyncio.wait_for(anext(stream), remaining)
            except TimeoutError:
                break
            latest.update((p, dp.value) for p, dp in batch.items())
            reached.update(p for p, dp in batch.items() if _same(dp.value, targets[p]))
    now = {p: dp.value for p, dp in (await port.get_many(p for p in paths if p not in latest)).items()}
    return {"result": "completed" if len(reached) == len(paths) else "in_progress",
            "values": {path: latest[path] if path in latest else now[path] for path in paths}}

