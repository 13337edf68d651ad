"""The automations' rules file (docs/automations.md): read, checked whole against the car's catalog, and turned into
frozen rules. ``load_rules`` raises InvalidArgumentError naming the file, the rule and the field that is wrong."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evos.broker import Condition, compile_condition
from evos.ecosystem._config import BridgeConfig, _ca_file, _number, _server_fields, _text, _topic
from evos.errors import EvosError, InvalidArgumentError
from evos.openings import opens_the_car
from evos.vss import Catalog, Datatype, EntryType, Value, validate

LATITUDE, LONGITUDE = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
DEFAULT_NOTIFY_TOPIC = "evos/car/notify"
# how long a publish or notify waits for the home's MQTT server when it is not connected: long enough for a car
# arriving home to get back on the home's network, short enough that a garage never opens long after the arrival
DEFAULT_PUBLISH_WAIT_S = 30.0
MAX_PUBLISH_WAIT_S = 600.0
MAX_NAME_CHARS = 100
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOME_TYPES = {"float": Datatype.DOUBLE, "int": Datatype.INT64, "bool": Datatype.BOOLEAN, "string": Datatype.STRING}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
_TOP_KEYS = ("rules", "zones", "home", "mqtt", "timezone", "notify_topic", "publish_wait_s")
_RULE_KEYS = ("name", "when", "only_if", "cooldown_s", "do")
_WHEN_KEYS = ("becomes", "enters", "leaves", "at")


@dataclass(frozen=True)
class Zone:
    latitude_deg: float
    longitude_deg: float
    radius_m: float


@dataclass(frozen=True)
class HomeValue:
    """A value of the home read from an MQTT topic (``json``: the key of a JSON object payload)."""

    topic: str
    type: str
    json: str | None = None


@dataclass(frozen=True)
class Set:
    targets: Mapping[str, Value]


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: str
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True)
class Notify:
    message: str


Action = Set | Publish | Notify


@dataclass(frozen=True)
class Becomes:
    """Fires when ``condition`` turns true (and has stayed true ``for_s``)."""

    condition: Condition
    for_s: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class At:
    """Fires at a local time of day on ``days`` (0 = Monday)."""

    time: dt.time
    days: frozenset[int]
    text: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    when: Becomes | At
    actions: tuple[Action, ...]
    only_if: Condition | None = None
    cooldown_s: float = 0.0


@dataclass(frozen=True)
class Rules:
    """A checked rules file. ``reads``: the car's signals its rules read; ``actuates``: the actuators they set."""

    rules: tuple[Rule, ...]
    zones: Mapping[str, Zone]
    home: Mapping[str, HomeValue]
    mqtt: BridgeConfig | None
    timezone: dt.tzinfo | None
    notify_topic: str
    reads: frozenset[str]
    actuates: frozenset[str]
    publish_wait_s: float


def _read(source: Path | str) -> tuple[str, Any]:
    name = str(source) if isinstance(source, Path) else "rules"
    try:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    except OSError as exc:
        raise InvalidArgumentError(f"{name}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{name}: not UTF-8 text: {exc}") from None
    try:
        return name, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{name}: not YAML: {exc}") from None


def _mapping(value: Any, where: str, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: expected a mapping" + (f" ({', '.join(keys)})" if keys else ""))
    if keys is not None:
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise InvalidArgumentError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(keys)}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidArgumentError(f"{where}: {value!r} is not a name (letters, digits and _, not starting with a "
                                   "digit)")
    return value


def _zones(value: Any, where: str) -> dict[str, Zone]:
    zones = {}
    for name, given in _mapping(value, where).items():
        here = f"{where}.{_name(name, f'{where}: zone name')}"
        zone = _mapping(given, here, ("latitude", "longitude", "radius_m"))
        missing = [k for k in ("latitude", "longitude", "radius_m") if k not in zone]
        if missing:
            raise InvalidArgumentError(f"{here}: needs {missing[0]}")
        radius = _number(zone["radius_m"], f"{here}.radius_m", 0.0, 1e7)
        if radius <= 0:
            raise InvalidArgumentError(f"{here}.radius_m: {zone['radius_m']!r} must be above 0 m")
        zones[name] = Zone(_number(zone["latitude"], f"{here}.latitude", -90, 90),
                           _number(zone["longitude"], f"{here}.longitude", -180, 180), radius)
    return zones


def _home(value: Any, where: str) -> dict[str, HomeValue]:
    home = {}
    for name, given in _mapping(value, where).items():
        here = f"{where}.{_name(name, f'{where}: name')}"
        item = _mapping(given, here, ("topic", "type", "json"))
        if "topic" not in item or "type" not in item:
            raise InvalidArgumentError(f"{here}: needs topic and type")
        topic = _text(item["topic"], f"{here}.topic")
        if "+" in topic or "#" in topic:
            raise InvalidArgumentError(f"{here}.topic: {topic!r} has a wildcard; name one topic")
        if item["type"] not in HOME_TYPES:
            raise InvalidArgumentError(f"{here}.type: {item['type']!r} is not one of {', '.join(HOME_TYPES)}")
        key = _text(item["json"], f"{here}.json") if "json" in item else None
        home[name] = HomeValue(topic, item["type"], key)
    return home


def _server(value: Any, where: str) -> BridgeConfig:
    if isinstance(value, str):
        return BridgeConfig(**_server_fields(value, where), client_id="evos-automations")
    given = _mapping(value, where, ("url", "username", "password", "ca_file"))
    if "url" not in given:
        raise InvalidArgumentError(f"{where}: needs url (mqtt://HOST:PORT)")
    fields = _server_fields(_text(given["url"], f"{where}.url"), f"{where}.url")
    for key in ("username", "password"):
        if key in given:
            fields[key] = _text(given[key], f"{where}.{key}")
    if "ca_file" in given:
        fields["ca_file"] = _ca_file(given["ca_file"], f"{where}.ca_file")
    return BridgeConfig(**fields, client_id="evos-automations")


class _Checker:
    """Checks one file's rules against the catalog, its zones and home values."""

    def __init__(self, catalog: Catalog, zones: Mapping[str, Zone], home: Mapping[str, HomeValue]) -> None:
        self.catalog = catalog
        self.zones = zones
        self.home = home
        self.reads: set[str] = set()
        self.actuates: set[str] = set()

    def resolve(self, name: str) -> Datatype:
        kind, _, rest = name.partition(".")
        if kind == "zone":
            if rest not in self.zones:
                raise InvalidArgumentError(f"no zone {rest!r}; zones: {', '.join(self.zones) or '(none)'}")
            self.reads.update((LATITUDE, LONGITUDE))
            return Datatype.BOOLEAN
        if kind == "home":
            if rest not in self.home:
                raise InvalidArgumentError(f"no home value {rest!r}; home values: {', '.join(self.home) or '(none)'}")
            return HOME_TYPES[self.home[rest].type]
        signal = self.catalog.get(name)
        self.reads.add(name)
        return signal.datatype

    def condition(self, value: Any, where: str) -> Condition:
        if isinstance(value, bool) or not isinstance(value, str):
            raise InvalidArgumentError(f"{where}: {value!r} is not a condition (text, e.g. \"Vehicle.Speed > 0\")")
        return compile_condition(value, self.resolve, where)

    def when(self, value: Any, where: str) -> Becomes | At:
        given = _mapping(value, where, (*_WHEN_KEYS, "for_s", "days"))
        triggers = [k for k in _WHEN_KEYS if k in given]
        if len(triggers) != 1:
            raise InvalidArgumentError(f"{where}: needs exactly one of {', '.join(_WHEN_KEYS)} (found "
                                       f"{', '.join(triggers) or 'none'})")
        kind = triggers[0]
        if kind == "at":
            if "for_s" in given:
                raise InvalidArgumentError(f"{where}.for_s: only with becomes, enters or leaves, not with at")
            return self._at(given, where)
        if "days" in given:
            raise InvalidArgumentError(f"{where}.days: only with at")
        for_s = _number(given.get("for_s", 0), f"{where}.for_s", 0, 7 * 86400)
        if kind == "becomes":
            text = given["becomes"]
        else:
            zone = given[kind]
            if not isinstance(zone, str) or zone not in self.zones:
                raise InvalidArgumentError(f"{where}.{kind}: no zone {zone!r}; zones: "
                                           f"{', '.join(self.zones) or '(none: add zones:)'}")
            text = f"zone.{zone}" if kind == "enters" else f"NOT zone.{zone}"
        return Becomes(self.condition(text, f"{where}.{kind}"), for_s, f"{kind}: {given[kind]}")

    def _at(self, given: Mapping[str, Any], where: str) -> At:
        text = given["at"]
        match = _TIME.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidArgumentError(f"{where}.at: {text!r} is not a time of day \"HH:MM\" or \"HH:MM:SS\" "
                                       "(quote it in YAML)")
        days_given = given.get("days", list(DAYS))
        if not isinstance(days_given, list) or not days_given:
            raise InvalidArgumentError(f"{where}.days: expected a list of {', '.join(DAYS)}")
        days = set()
        for day in days_given:
            if not isinstance(day, str) or day.lower() not in DAYS:
                raise InvalidArgumentError(f"{where}.days: {day!r} is not one of {', '.join(DAYS)}")
            days.add(DAYS.index(day.lower()))
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        return At(dt.time(hour, minute, second), frozenset(days), f"at {text}")

    def action(self, value: Any, where: str, has_mqtt: bool) -> Action:
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidArgumentError(f"{where}: an action is one of set, publish, notify (a mapping with one "
                                       "of them)")
        kind, given = next(iter(value.items()))
        if kind not in ("set", "publish", "notify"):
            raise InvalidArgumentError(f"{where}: unknown action {kind!r}; actions: set, publish, notify")
        if kind != "set" and not has_mqtt:
            raise InvalidArgumentError(f"{where}.{kind}: needs an MQTT server: give mqtt: in the file, or "
                                       "evos up --mqtt URL")
        if kind == "notify":
            return Notify(_text(given, f"{where}.notify"))
        if kind == "publish":
            item = _mapping(given, f"{where}.publish", ("topic", "payload", "retain", "qos"))
            if "topic" not in item or "payload" not in item:
                raise InvalidArgumentError(f"{where}.publish: needs topic and payload")
            payload = item["payload"]
            if isinstance(payload, bool):
                payload = "true" if payload else "false"
            if not isinstance(payload, str | int | float) or "\x00" in str(payload):
                raise InvalidArgumentError(f"{where}.publish.payload: {payload!r} is not text")
            retain = item.get("retain", False)
            if not isinstance(retain, bool):
                raise InvalidArgumentError(f"{where}.publish.retain: {retain!r} is not true or false")
            qos = item.get("qos", 1)
            if qos not in (0, 1, 2) or isinstance(qos, bool):
                raise InvalidArgumentError(f"{where}.publish.qos: {qos!r} is not 0, 1 or 2")
            return Publish(_topic(item["topic"], f"{where}.publish.topic"), str(payload), retain, qos)
        targets = {}
        for path, target in _mapping(given, f"{where}.set").items():
            here = f"{where}.set.{path}"
            try:
                signal = self.catalog.get(str(path))
            except EvosError as exc:
                raise InvalidArgumentError(f"{here}: {exc}") from None
            if signal.entry_type is not EntryType.ACTUATOR:
                raise InvalidArgumentError(f"{here}: is a {signal.entry_type.value}, not an actuator; only actuators "
                                           "are set")
            try:
                targets[signal.path] = validate(signal, target)
            except EvosError as exc:
                raise InvalidArgumentError(f"{here}: {exc}") from None
            if opens_the_car({signal.path: targets[signal.path]}, locked=True):
                raise InvalidArgumentError(f"{here}: {target!r} opens the car (unlocks, or opens a door, window, the "
                                           "trunk or the sunroof); an automation may not: that takes the owner's "
                                           "signed command")
            self.actuates.add(signal.path)
        if not targets:
            raise InvalidArgumentError(f"{where}.set: names no actuator")
        return Set(targets)


def load_rules(source: Path | str, catalog: Catalog, mqtt: BridgeConfig | None = None) -> Rules:
    """The rules of ``source`` (a file, or YAML text) checked against ``catalog``; ``mqtt``: the server the car was
    given (``evos up --mqtt``), used when the file names none. InvalidArgumentError names what is wrong."""
    name, data = _read(source)
    top = _mapping(data, name, _TOP_KEYS)
    if "rules" not in top:
        raise InvalidArgumentError(f"{name}: needs rules (a list)")
    zones = _zones(top.get("zones", {}), f"{name}: zones")
    home = _home(top.get("home", {}), f"{name}: home")
    server = _server(top["mqtt"], f"{name}: mqtt") if "mqtt" in top else mqtt
    timezone = None
    if "timezone" in top:
        try:
            timezone = zoneinfo.ZoneInfo(_text(top["timezone"], f"{name}: timezone"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidArgumentError(f"{name}: timezone: {top['timezone']!r} is not a time zone (an IANA name "
                                       "such as Europe/Berlin)") from None
    notify_topic = _topic(top.get("notify_topic", DEFAULT_NOTIFY_TOPIC), f"{name}: notify_topic")
    publish_wait_s = _number(top.get("publish_wait_s", DEFAULT_PUBLISH_WAIT_S), f"{name}: publish_wait_s", 0,
                             MAX_PUBLISH_WAIT_S)
    if home and server is None:
        raise InvalidArgumentError(f"{name}: home: values of the home need an MQTT server: give mqtt: in the file, "
                                   "or evos up --mqtt URL")
    given = top["rules"]
    if not isinstance(given, list) or not given:
        raise InvalidArgumentError(f"{name}: rules: expected a non-empty list of rules")
    checker = _Checker(catalog, zones, home)
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(given):
        label = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        where = f"{name}: rule {label!r}" if label else f"{name}: rules[{index}]"
        rule = _mapping(item, where, _RULE_KEYS)
        for key in ("name", "when", "do"):
            if key not in rule:
                raise InvalidArgumentError(f"{where}: needs {key}")
        if not label or len(label) > MAX_NAME_CHARS or "\x00" in label:
            raise InvalidArgumentError(f"{where}: name: {rule['name']!r} is not a name of 1 to {MAX_NAME_CHARS} "
                                       "characters")
        if label in seen:
            raise InvalidArgumentError(f"{where}: name: another rule is called {label!r}; names are unique")
        seen.add(label)
        when = checker.when(rule["when"], f"{where}: when")
        only_if = checker.condition(rule["only_if"], f"{where}: only_if") if "only_if" in rule else None
        cooldown_s = _number(rule.get("cooldown_s", 0), f"{where}: cooldown_s", 0, 7 * 86400)
        do = rule["do"]
        if not isinstance(do, list) or not do:
            raise InvalidArgumentError(f"{where}: do: expected a non-empty list of actions")
        actions = tuple(checker.action(a, f"{where}: do[{i}]", server is not None) for i, a in enumerate(do))
        rules.append(Rule(label, when, actions, only_if, cooldown_s))
    return Rules(tuple(rules), zones, home, server, timezone, notify_topic, frozenset(checker.reads),
                 frozenset(checker.actuates), publish_wait_s)
