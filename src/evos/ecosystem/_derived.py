"""Topics a home wants that are no single signal, pure: states computed from signals (the car locked, its
location as one JSON, evcc's vehicle in evcc's units) and commands that act on several (lock every door, flash the
hazards, evcc's charge enable).

A ``View`` publishes ``<base>/<topic>`` from its ``inputs``; a ``Control`` turns a command on ``<base>/<topic>/set``
(its text checked as a signal's command is, ``_topics``) into actuator targets, which then take the same path as a
command on a signal's own topic (permission, the opening rule, the audit log).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from evos import __version__
from evos.ecosystem._topics import require_form
from evos.errors import InvalidValueError
from evos.vss import Kind, Value

CHG = "Vehicle.Powertrain.TractionBattery.Charging"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
CABLE = f"{CHG}.ChargingPort.AnyPosition.IsChargingCableConnected"
DOOR_LOCKS = tuple(f"Vehicle.Cabin.Door.Row{row}.{side}.IsLocked" for row in (1, 2)
                   for side in ("DriverSide", "PassengerSide"))
HAZARD = "Vehicle.Body.Lights.Hazard.IsSignaling"
FLASH_S = 3.0  # "flash the lights": the hazards this long, as the phone's command does
LOCATION = tuple(f"Vehicle.CurrentLocation.{name}" for name in ("Latitude", "Longitude", "HorizontalAccuracy",
                                                                  "Altitude", "Heading"))
Values = Mapping[str, Value | None]


@dataclass(frozen=True)
class View:
    """A state topic computed from signals; ``render`` returns None while an input it needs has no value."""

    topic: str
    inputs: tuple[str, ...]
    render: Callable[[Values], str | None]


@dataclass(frozen=True)
class Control:
    """A command topic (``topic`` + ``/set``) acting on several actuators: ``targets(text)`` raises
    InvalidValueError for a payload it does not take. ``momentary_s`` > 0: the targets are switched back off
    (boolean ``False``) after that long."""

    topic: str
    targets: Callable[[str], dict[str, Value]]
    momentary_s: float = 0.0


def _boolean(topic: str, text: str) -> bool:
    require_form(f"{topic}/set", Kind.BOOL, text)
    return text == "true"


def _number(topic: str, text: str, low: int, high: int) -> int:
    require_form(f"{topic}/set", Kind.INT, text)
    number = int(text, 10)
    if not low <= number <= high:
        raise InvalidValueError(f"{topic}/set: value {number} is outside {low}..{high}")
    return number


def _locked(values: Values) -> str | None:
    locks = [values.get(p) for p in DOOR_LOCKS]
    return None if None in locks else ("true" if all(locks) else "false")


def _location(values: Values) -> str | None:
    lat, lon, accuracy, altitude, heading = (values.get(p) for p in LOCATION)
    if lat is None or lon is None:
        return None
    # the attributes Home Assistant's device_tracker reads (latitude, longitude, gps_accuracy)
    found = {"latitude": lat, "longitude": lon, "gps_accuracy": accuracy, "altitude": altitude, "heading": heading}
    return json.dumps({k: v for k, v in found.items() if v is not None})


def _km(path: str, digits: int) -> Callable[[Values], str | None]:
    def render(values: Values) -> str | None:
        metres = values.get(path)
        return None if not isinstance(metres, int | float) else f"{metres / 1000:.{digits}f}"

    return render


def _plain(path: str) -> Callable[[Values], str | None]:
    def render(values: Values) -> str | None:
        value = values.get(path)
        return None if not isinstance(value, int | float) else f"{value:.1f}".removesuffix(".0")

    return render


def _evcc_status(values: Values) -> str | None:
    """evcc's charge status: A not connected, B connected, C charging (IEC 61851-1's states)."""
    cable, charging = values.get(CABLE), values.get(f"{CHG}.IsCharging")
    if cable is None and charging is None:
        return None
    return "C" if charging else ("B" if cable else "A")


VIEWS = (
    View("lock", DOOR_LOCKS, _locked),
    View("location", LOCATION, _location),
    # Home Assistant's update entity: what is installed (the OTA issue will say what is offered)
    View("update", (), lambda _values: json.dumps({"installed_version": __version__,
                                                    "latest_version": __version__})),
    View("evcc/soc", (SOC,), _plain(SOC)),
    View("evcc/range", ("Vehicle.Powertrain.Range",), _km("Vehicle.Powertrain.Range", 0)),  # evcc reads an integer
    View("evcc/odometer", ("Vehicle.TraveledDistance",), _km("Vehicle.TraveledDistance", 1)),
    View("evcc/limitsoc", (f"{CHG}.ChargeLimit",), _plain(f"{CHG}.ChargeLimit")),
    View("evcc/status", (CABLE, f"{CHG}.IsCharging"), _evcc_status),
)
CONTROLS = (
    Control("lock", lambda text: dict.fromkeys(DOOR_LOCKS, _boolean("lock", text))),
    Control("flash", lambda text: {HAZARD: _boolean("flash", text)}, momentary_s=FLASH_S),
    Control("evcc/enable", lambda text: {f"{CHG}.StartStopCharging": "START" if _boolean("evcc/enable", text)
                                         else "STOP"}),
    Control("evcc/limitsoc", lambda text: {f"{CHG}.ChargeLimit": _number("evcc/limitsoc", text, 0, 100)}),
)
