"""The MQTT bridge's configuration: a frozen ``BridgeConfig``, from a YAML file, from ``--mqtt URL``, or both.

A file names the server and what the bridge does::

    server: mqtts://car:secret@home.lan:8883   # mqtt:// (1883) or mqtts:// (TLS, 8883); user and password optional
    ca_file: /etc/ssl/home-ca.pem              # the server's CA for mqtts:// (default: the system's)
    mqtt_version: "5"                          # or "3.1.1"
    base_topic: evos/car                       # state on <base>/Vehicle/Speed, commands on .../set
    publish:                                   # the signals published on change (default: DEFAULT_PUBLISH)
      - Vehicle.Speed                          # a path, at the default interval
      - {path: Vehicle.CurrentLocation, min_interval_s: 10}   # a branch: every signal under it
    min_interval_s: 1.0                        # at most one message per signal per interval
    commands: [Vehicle.Cabin.HVAC]             # actuators taking commands (default: DEFAULT_COMMANDS)
    allow_opening: false                       # true: unlocking and opening over MQTT (the owner's opt-in)
    home_assistant: true                       # Home Assistant device discovery
    discovery_prefix: homeassistant

Every mistake is an InvalidArgumentError naming the file, the key and what was wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from evos.errors import InvalidArgumentError

# What a home wants of the car by default (Home Assistant's entities, evcc's vehicle): VSS paths or branches.
DEFAULT_PUBLISH = (
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.Range",
    "Vehicle.Powertrain.TractionBattery.CurrentPower",
    "Vehicle.Powertrain.TractionBattery.Charging",
    "Vehicle.TraveledDistance",
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.Cabin.HVAC",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Chassis.Axle",
    "Vehicle.Cabin.Door",
    "Vehicle.Body.Trunk",
    "Vehicle.Cabin.Sunroof",
    "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling",
    "Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling",
    "Vehicle.CurrentLocation",
    "Vehicle.Evos.Cabin.Scene",
    "Vehicle.Evos.Cabin.SceneStatus",
)
# The actuators a home may command by default: nothing that drives, steers or is driver assistance.
DEFAULT_COMMANDS = (
    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",
    "Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked",
    "Vehicle.Cabin.Door.Row2.DriverSide.IsLocked",
    "Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked",
    "Vehicle.Body.Trunk.Rear.IsLocked",
    "Vehicle.Body.Trunk.Front.IsLocked",
    "Vehicle.Cabin.HVAC.Station",
    "Vehicle.Cabin.HVAC.IsAirConditioningActive",
    "Vehicle.Cabin.HVAC.IsRecirculationActive",
    "Vehicle.Cabin.HVAC.IsFrontDefrosterActive",
    "Vehicle.Cabin.HVAC.IsRearDefrosterActive",
    "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling",
    "Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
    "Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging",
    "Vehicle.Body.Horn.IsActive",
    "Vehicle.Body.Lights.Hazard.IsSignaling",
    "Vehicle.Evos.Cabin.Scene",
)
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_TOPIC = re.compile(r"[^#+\x00/][^#+\x00]*[^#+\x00/]|[^#+\x00/]")  # no wildcards, no empty first or last level


@dataclass(frozen=True)
class Published:
    """Signals published: a path or a branch, at most one message per signal per ``min_interval_s``."""

    path: str
    min_interval_s: float


@dataclass(frozen=True)
class BridgeConfig:
    """What the MQTT bridge connects to and does (see the module docstring)."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    client_id: str = "evos-car"
    base_topic: str = "evos/car"
    publish: tuple[Published, ...] = tuple(Published(p, 1.0) for p in DEFAULT_PUBLISH)
    min_interval_s: float = 1.0
    commands: tuple[str, ...] = DEFAULT_COMMANDS
    allow_opening: bool = False
    home_assistant: bool = True
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 30
    mqtt5: bool = True  # MQTT 5 (else 3.1.1)

    @property
    def server(self) -> str:
        """The server as a URL, without the password (for logs and messages)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def _server_fields(url: str, where: str) -> dict[str, Any]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgumentError(f"{where}: {url!r} is not a server URL: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidArgumentError(f"{where}: {url!r}: expected mqtt://[USER[:PASSWORD]@]HOST[:PORT] or mqtts://...")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgumentError(f"{where}: {url!r}: a server URL has no path, query or fragment")
    found: dict[str, Any] = {"host": parts.hostname, "port": port or DEFAULT_PORTS[parts.scheme],
                             "tls": parts.scheme == "mqtts"}
    if parts.username:
        found["username"] = unquote(parts.username)
    if parts.password is not None:
        found["password"] = unquote(parts.password)
    return found


def _topic(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TOPIC.fullmatch(value):
        raise InvalidArgumentError(f"{where}: {value!r} is not a topic to publish on (no '+', '#', NUL, or empty "
                                   "first or last level)")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidArgumentError(f"{where}: {value!r} is not a number from {low:g} to {high:g}")
    return float(value)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{where}: {value!r} is not true or false")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidArgumentError(f"{where}: {value!r} is not a non-empty string")
    return value


def _ca_file(value: Any, where: str) -> Path:
    ca = Path(_text(value, where))
    if not ca.is_file():
        raise InvalidArgumentError(f"{where}: {ca} is not a file")
    return ca


def _paths(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and (p == "Vehicle" or p.startswith("Vehicle."))
                                              for p in value):
        raise InvalidArgumentError(f"{where}: expected a list of VSS paths or branches (Vehicle, Vehicle....)")
    return tuple(value)


def _published(value: Any, where: str, interval_s: float) -> tuple[Published, ...]:
    if not isinstance(value, list):
        raise InvalidArgumentError(f"{where}: expected a list of paths, or of {{path, min_interval_s}}")
    found = []
    for i, given in enumerate(value):
        here = f"{where}[{i}]"
        item = {"path": given} if isinstance(given, str) else given
        if not isinstance(item, dict) or set(item) - {"path", "min_interval_s"} or "path" not in item:
            raise InvalidArgumentError(f"{here}: expected a path, or {{path: ..., min_interval_s: ...}}")
        path = _paths([item["path"]], f"{here}.path")[0]
        found.append(Published(path, _number(item.get("min_interval_s", interval_s), f"{here}.min_interval_s",
                                             0.0, 3600.0)))
    return tuple(found)


_KEYS = ("server", "ca_file", "mqtt_version", "client_id", "base_topic", "publish", "min_interval_s", "commands",
         "allow_opening", "home_assistant", "discovery_prefix", "keepalive_s")


def bridge_config(file: Path | None = None, url: str | None = None) -> BridgeConfig:
    """The bridge's configuration from a YAML ``file`` and/or a server ``url`` (which wins over the file's
    ``server``); the password may also come from ``$EVOS_MQTT_PASSWORD``. InvalidArgumentError names what was
    wrong."""
    data: dict[str, Any] = {}
    name = str(file) if file else "--mqtt"
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidArgumentError(f"{file}: cannot be read: {exc.strerror or exc}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"{file}: not YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidArgumentError(f"{file}: expected a mapping of settings ({', '.join(_KEYS)})")
        data = loaded or {}
        unknown = sorted(str(k) for k in data if k not in _KEYS)
        if unknown:
            raise InvalidArgumentError(f"{file}: unknown setting {unknown[0]!r}; settings: {', '.join(_KEYS)}")
    server = url if url is not None else data.get("server")
    if server is None:
        raise InvalidArgumentError(f"{name}: no MQTT server: give 'server: mqtt://HOST:PORT' or --mqtt URL")
    fields = _server_fields(_text(server, f"{name}: server"), f"{name}: server")
    if "password" not in fields and os.environ.get("EVOS_MQTT_PASSWORD"):
        fields["password"] = os.environ["EVOS_MQTT_PASSWORD"]
    interval_s = _number(data.get("min_interval_s", 1.0), f"{name}: min_interval_s", 0.0, 3600.0)
    fields["min_interval_s"] = interval_s
    if "ca_file" in data:
        fields["ca_file"] = _ca_file(data["ca_file"], f"{name}: ca_file")
    if "client_id" in data:
        fields["client_id"] = _text(data["client_id"], f"{name}: client_id")
    for key in ("base_topic", "discovery_prefix"):
        if key in data:
            fields[key] = _topic(data[key], f"{name}: {key}")
    fields["publish"] = _published(data.get("publish", list(DEFAULT_PUBLISH)), f"{name}: publish", interval_s)
    if "commands" in data:
        fields["commands"] = _paths(data["commands"], f"{name}: commands")
    for key in ("allow_opening", "home_assistant"):
        if key in data:
            fields[key] = _flag(data[key], f"{name}: {key}")
    if "mqtt_version" in data:
        if str(data["mqtt_version"]) not in ("5", "3.1.1"):
            raise InvalidArgumentError(f"{name}: mqtt_version: {data['mqtt_version']!r} is not \"5\" or \"3.1.1\"")
        fields["mqtt5"] = str(data["mqtt_version"]) == "5"
    if "keepalive_s" in data:
        fields["keepalive_s"] = int(_number(data["keepalive_s"], f"{name}: keepalive_s", 5, 3600))
    return BridgeConfig(**fields)

