"""Home Assistant's MQTT device discovery for the car, pure: one device (``homeassistant/device/<id>/config``, HA ≥
2024.11) whose components are the car's sensors, binary sensors, lock, climate, number, buttons, select,
switches, device tracker and update entity, each only where the car has its signals.

Every entity reads the bridge's state topics (``_topics``, ``_derived``) and writes its command topics, so a
command from Home Assistant takes the bridge's one path (permission, the opening rule, the audit log). Units and
device classes are those Home Assistant accepts for each (its ``DEVICE_CLASS_UNITS``); availability is the
bridge's ``<base>/status``, which the broker sets ``offline`` by the bridge's last will. Minor entities (tyre
pressures, single doors and windows, speed) start disabled, as integrations do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evos import __version__
from evos.ecosystem._derived import CABLE, CHG, HAZARD, SOC
from evos.ecosystem._topics import command_topic, state_topic

HVAC = "Vehicle.Cabin.HVAC"
SCENE = "Vehicle.Evos.Cabin.Scene"
_KM = "{{ (value | float(0) / 1000) | round(1) }}"  # the car's metres as the kilometres a home shows


@dataclass(frozen=True)
class Device:
    """What Home Assistant shows of the car: its id (unique on the home's MQTT server) and names."""

    id: str
    name: str
    model: str | None = None


def _sensor(base: str, key: str, path: str, name: str, device_class: str | None, unit: str | None,
            state_class: str | None = "measurement", minor: bool = False, template: str | None = None
            ) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    entity: dict[str, Any] = {"p": "sensor", "name": name, "stat_t": state_topic(base, path)}
    for field, value in (("dev_cla", device_class), ("unit_of_meas", unit), ("stat_cla", state_class),
                         ("val_tpl", template)):
        if value is not None:
            entity[field] = value
    if minor:
        entity["en"] = False
    return key, entity, (path,)


def _binary(base: str, key: str, topic: str, name: str, device_class: str, needs: tuple[str, ...],
            minor: bool = False, on: str = "true", template: str | None = None
            ) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    entity: dict[str, Any] = {"p": "binary_sensor", "name": name, "stat_t": topic, "dev_cla": device_class,
                              "pl_on": on, "pl_off": "false" if on == "true" else "true"}
    if template is not None:
        entity["val_tpl"] = template
    if minor:
        entity["en"] = False
    return key, entity, needs


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def components(base: str, paths: Iterable[str], scenes: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """The device's components (``cmps``) on a car with these signal ``paths``, keyed by an id unique in the
    device; ``scenes``: the cabin's scene names, the options of its scene selector."""
    have = set(paths)
    tyres = sorted(p for p in have if re.fullmatch(r"Vehicle\.Chassis\.Axle\.Row\d\.Wheel\.\w+\.Tire\.Pressure", p))
    doors = sorted(p for p in have if re.fullmatch(r"Vehicle\.Cabin\.Door\.Row\d\.\w+\.IsOpen", p))
    windows = sorted(p for p in have if re.fullmatch(r"Vehicle\.Cabin\.Door\.Row\d\.\w+\.Window\.Position", p))
    lock = state_topic(base, "lock")
    found = [
        _sensor(base, "soc", SOC, "State of charge", "battery", "%"),
        _sensor(base, "range", "Vehicle.Powertrain.Range", "Range", "distance", "km", template=_KM),
        _sensor(base, "power", "Vehicle.Powertrain.TractionBattery.CurrentPower", "Battery power", "power", "W",
                minor=True),
        _sensor(base, "odometer", "Vehicle.TraveledDistance", "Odometer", "distance", "km", "total_increasing",
                template=_KM),
        _sensor(base, "cabin_temperature", f"{HVAC}.AmbientAirTemperature", "Cabin temperature", "temperature",
                "°C"),
        _sensor(base, "outside_temperature", "Vehicle.Exterior.AirTemperature", "Outside temperature",
                "temperature", "°C"),
        _sensor(base, "charge_time_left", f"{CHG}.TimeToComplete", "Charge time left", "duration", "s", None),
        _sensor(base, "speed", "Vehicle.Speed", "Speed", "speed", "km/h", minor=True),
        *(_sensor(base, "tyre_" + _snake(p.split(".")[3]) + "_" + _snake(p.split(".")[5]), p,
                  f"Tyre pressure {p.split('.')[3][-1]} {p.split('.')[5].lower()}", "pressure", "kPa", minor=True)
          for p in tyres),
        _binary(base, "charging", state_topic(base, f"{CHG}.IsCharging"), "Charging", "battery_charging",
                (f"{CHG}.IsCharging",)),
        _binary(base, "plugged_in", state_topic(base, CABLE), "Plugged in", "plug", (CABLE,)),
        _binary(base, "moving", state_topic(base, "Vehicle.IsMoving"), "Moving", "moving", ("Vehicle.IsMoving",)),
        # Home Assistant's lock class is "on" when unlocked
        _binary(base, "locked", lock, "Doors unlocked", "lock", ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",),
                on="false"),
        *(_binary(base, "door_" + _snake(p.split(".")[3]) + "_" + _snake(p.split(".")[4]), state_topic(base, p),
                  f"Door {p.split('.')[3][-1]} {p.split('.')[4].removesuffix('Side').lower()}", "door", (p,),
                  minor=True) for p in doors),
        *(_binary(base, "window_" + _snake(p.split(".")[3]) + "_" + _snake(p.split(".")[4]), state_topic(base, p),
                  f"Window {p.split('.')[3][-1]} {p.split('.')[4].removesuffix('Side').lower()}", "window", (p,),
                  minor=True, template="{{ 'true' if value | int(0) > 0 else 'false' }}") for p in windows),
        _binary(base, "trunk", state_topic(base, "Vehicle.Body.Trunk.Rear.IsOpen"), "Trunk", "opening",
                ("Vehicle.Body.Trunk.Rear.IsOpen",)),
        ("lock", {"p": "lock", "name": "Doors", "stat_t": lock, "cmd_t": lock + "/set", "pl_lock": "true",
                  "pl_unlk": "false", "stat_locked": "true", "stat_unlocked": "false"},
         ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",)),
        ("climate", {"p": "climate", "name": "Climate", "modes": ["off", "heat_cool"],
                     "mode_stat_t": state_topic(base, f"{HVAC}.IsAirConditioningActive"),
                     "mode_stat_tpl": "{{ 'heat_cool' if value == 'true' else 'off' }}",
                     "mode_cmd_t": command_topic(base, f"{HVAC}.IsAirConditioningActive"),
                     "mode_cmd_tpl": "{{ 'false' if value == 'off' else 'true' }}",
                     "temp_stat_t": state_topic(base, f"{HVAC}.Station.Row1.Driver.Temperature"),
                     "temp_cmd_t": command_topic(base, f"{HVAC}.Station.Row1.Driver.Temperature"),
                     "curr_temp_t": state_topic(base, f"{HVAC}.AmbientAirTemperature"),
                     "temp_unit": "C", "min_temp": 16, "max_temp": 28, "temp_step": 0.5, "precision": 0.1},
         (f"{HVAC}.IsAirConditioningActive", f"{HVAC}.Station.Row1.Driver.Temperature")),
        ("charge_limit", {"p": "number", "name": "Charge limit", "stat_t": state_topic(base, f"{CHG}.ChargeLimit"),
                          "cmd_t": command_topic(base, f"{CHG}.ChargeLimit"), "min": 50, "max": 100, "step": 1,
                          "unit_of_meas": "%", "mode": "slider"}, (f"{CHG}.ChargeLimit",)),
        ("charge", {"p": "switch", "name": "Charge", "stat_t": state_topic(base, f"{CHG}.IsCharging"),
                    "stat_on": "true", "stat_off": "false", "cmd_t": command_topic(base, f"{CHG}.StartStopCharging"),
                    "pl_on": "START", "pl_off": "STOP"}, (f"{CHG}.IsCharging", f"{CHG}.StartStopCharging")),
        ("honk", {"p": "button", "name": "Honk", "cmd_t": command_topic(base, "Vehicle.Body.Horn.IsActive"),
                  "pl_prs": "true"}, ("Vehicle.Body.Horn.IsActive",)),
        ("flash", {"p": "button", "name": "Flash lights", "cmd_t": state_topic(base, "flash") + "/set",
                   "pl_prs": "true"}, (HAZARD,)),
        ("scene", {"p": "select", "name": "Cabin scene", "stat_t": state_topic(base, SCENE),
                   "cmd_t": command_topic(base, SCENE), "options": ["NONE", *scenes]}, (SCENE,)),
        *((key, {"p": "switch", "name": name, "stat_t": state_topic(base, path), "cmd_t": command_topic(base, path),
                 "pl_on": "true", "pl_off": "false"}, (path,))
          for key, path, name in (("front_defroster", f"{HVAC}.IsFrontDefrosterActive", "Front defroster"),
                                  ("rear_defroster", f"{HVAC}.IsRearDefrosterActive", "Rear defroster"))),
        *((key, {"p": "switch", "name": name, "stat_t": state_topic(base, path), "cmd_t": command_topic(base, path),
                 "pl_on": "100", "pl_off": "0", "val_tpl": "{{ '100' if value | int(0) > 0 else '0' }}"}, (path,))
          for key, path, name in (("seat_heating_driver", "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling",
                                   "Driver seat heating"),
                                  ("seat_heating_passenger", "Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling",
                                   "Passenger seat heating"))),
        ("location", {"p": "device_tracker", "name": "Location", "json_attr_t": state_topic(base, "location"),
                      "src_type": "gps"}, ("Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude")),
        ("software", {"p": "update", "name": "Software", "stat_t": state_topic(base, "update"),
                      "dev_cla": "firmware"}, ()),
    ]
    return {key: entity for key, entity, needs in found if all(p in have for p in needs) and (
        not entity.get("options") or len(entity["options"]) > 1)}


def device_id(base: str) -> str:
    """The car's device id in Home Assistant: its base topic, unique on the server, with ``_`` for ``/``."""
    return base.replace("/", "_")


def device_topic(prefix: str, base: str) -> str:
    """Where the car's device discovery is (retained; an empty retained payload removes the device)."""
    return f"{prefix}/device/{device_id(base)}/config"


def discovery(base: str, prefix: str, device: Device, paths: Iterable[str], scenes: Iterable[str] = ()
              ) -> tuple[str, dict[str, Any]]:
    """The device discovery message: (its topic, its payload) — retained by the bridge, removed by an empty
    retained payload on the same topic."""
    cmps = components(base, paths, scenes)
    for key, entity in cmps.items():
        entity["uniq_id"] = f"{device.id}_{key}"
    dev: dict[str, Any] = {"ids": [device.id], "name": device.name, "mf": "evos", "sw": __version__}
    if device.model:
        dev["mdl"] = device.model
    payload = {"dev": dev, "o": {"name": "evos", "sw": __version__}, "avty_t": f"{base}/status", "qos": 1,
               "cmps": cmps}
    return device_topic(prefix, base), payload
