"""Validate MQTT discovery messages with Home Assistant 2025.1.4's own code (run with the HA venv's python, see
scripts/ha_venv.sh):

    echo '[{"topic": "homeassistant/device/car1/config", "payload": {...}}]' | .peers/ha/bin/python validate.py

stdin: a JSON list of ``{"topic": ..., "payload": ...}``; ``payload`` is an object, a JSON string, or ``""`` / ``{}``
(a removal, always valid). stdout: ``{"ok": bool, "errors": [...], "warnings": [...]}``, each item
``{"topic", "component", "error"}`` (``component`` is the ``cmps`` key for device-based discovery, the topic's
object id for one-entity discovery, ``null`` for an error in the whole message). Exit code 0 when ok, 1 when not,
2 on unreadable input. ``--strict`` turns warnings (options HA silently drops) into errors.

The path a message takes is HA's own (``homeassistant.components.mqtt.discovery.async_discovery_message_received``
and the platforms' ``async_setup_entity_entry_helper``), called piece by piece since they need a running HA:

- ``discovery.TOPIC_MATCHER`` splits the topic; HA subscribes only to ``<prefix>/<c>/+/config`` and
  ``<prefix>/<c>/+/+/config`` for ``const.SUPPORTED_COMPONENTS`` and ``<prefix>/device/...``: any other topic is
  ignored by HA, so it is an error here.
- ``util.json.json_loads_object`` for string payloads, ``discovery._async_process_discovery_migration``
  (``migrate_discovery`` messages are accepted as they are), ``discovery._replace_all_abbreviations`` (the
  ``abbreviations`` tables for entity, ``dev``, ``o`` and availability keys, inside every ``cmps`` entry too).
- device-based: ``schemas.DEVICE_DISCOVERY_SCHEMA`` on the whole payload (HA keeps the unvalidated but expanded
  payload, as here); then for each ``cmps`` entry: ``p`` popped, ``device`` and ``origin`` copied in,
  ``discovery._merge_common_device_options`` (``schemas.SHARED_OPTIONS``), as in HA.
  one-entity: ``schemas.MQTT_ORIGIN_INFO_SCHEMA`` on ``o`` (HA's ``_valid_origin_info`` drops the message).
- ``discovery._replace_topic_base`` (``~``) where the component payload has one, then the platform's
  ``homeassistant.components.mqtt.<platform>.DISCOVERY_SCHEMA`` (what ``async_setup_entity_entry_helper`` calls).
- the checks HA's entity base classes make when the first state is written, which the MQTT schemas lack:
  ``homeassistant.components.sensor.const`` ``NON_NUMERIC_DEVICE_CLASSES`` (a unit there makes every state write
  fail), ``DEVICE_CLASS_UNITS`` and ``DEVICE_CLASS_STATE_CLASSES`` (HA logs "is not a valid unit for the device
  class" / "impossible considering device class"), and ``homeassistant.components.number.const.DEVICE_CLASS_UNITS``
  for numbers (HA 2025.1 does not check those at run time, but the unit conversions assume them).
- across messages: a ``unique_id`` used twice on one platform (HA's entity registry keeps the first, ignores the
  rest: "Platform mqtt does not generate unique IDs").

Warnings: options that the platform's DISCOVERY_SCHEMA (``extra=vol.REMOVE_EXTRA``) silently drops — a misspelled
or unknown option, or an abbreviation HA does not know.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import sys
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt import discovery, schemas
from homeassistant.components.mqtt.const import CONF_COMPONENTS, CONF_ORIGIN, SUPPORTED_COMPONENTS
from homeassistant.components.number import const as number_const
from homeassistant.components.sensor import const as sensor_const
from homeassistant.const import CONF_DEVICE, CONF_PLATFORM
from homeassistant.util.json import json_loads_object

PREFIX = "homeassistant"


def _schema(platform: str) -> Any:
    return importlib.import_module(f"homeassistant.components.mqtt.{platform}").DISCOVERY_SCHEMA


def _enum(enum_type: Any, value: Any) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        return None


def _entity_checks(platform: str, config: dict[str, Any]) -> list[str]:
    """The device class, unit and state class checks HA's sensor (and number) entities make at run time."""
    problems: list[str] = []
    unit = config.get("unit_of_measurement")
    if platform == "sensor":
        device_class = _enum(sensor_const.SensorDeviceClass, config.get("device_class"))
        state_class = config.get("state_class")
        if device_class is None:
            return problems
        if device_class in sensor_const.NON_NUMERIC_DEVICE_CLASSES and unit:
            problems.append(f"sensor has unit of measurement '{unit}' but the non-numeric device class "
                            f"'{device_class}': every state write fails")
        units = sensor_const.DEVICE_CLASS_UNITS.get(device_class)
        if units is not None and unit not in units:
            allowed = sorted(str(u) if u else "no unit" for u in units)
            problems.append(f"unit of measurement '{unit}' is not a valid unit for the device class "
                            f"'{device_class}'; expected one of {allowed}")
        classes = sensor_const.DEVICE_CLASS_STATE_CLASSES.get(device_class)
        if state_class and classes is not None and state_class not in classes:
            problems.append(f"state class '{state_class}' is impossible for the device class '{device_class}'; "
                            f"expected None or one of {sorted(str(c) for c in classes)}")
    elif platform == "number":
        device_class = _enum(number_const.NumberDeviceClass, config.get("device_class"))
        units = number_const.DEVICE_CLASS_UNITS.get(device_class) if device_class else None
        if units is not None and unit not in units:
            allowed = sorted(str(u) if u else "no unit" for u in units)
            problems.append(f"unit of measurement '{unit}' is not a valid unit for the number device class "
                            f"'{device_class}'; expected one of {allowed}")
    return problems


class Validator:
    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.unique_ids: dict[tuple[str, str], str] = {}

    def _error(self, topic: str, component: str | None, error: str) -> None:
        self.errors.append({"topic": topic, "component": component, "error": error})

    def _warning(self, topic: str, component: str | None, warning: str) -> None:
        self.warnings.append({"topic": topic, "component": component, "error": warning})

    def message(self, topic: str, payload: Any) -> None:
        if not isinstance(topic, str) or not topic.startswith(f"{self.prefix}/"):
            self._error(str(topic), None, f"not under the discovery prefix '{self.prefix}/'")
            return
        match = discovery.TOPIC_MATCHER.match(topic[len(self.prefix) + 1:])
        if not match:
            self._error(topic, None, "illegal discovery topic (HA: <prefix>/<component>/[<node_id>/]<object_id>/"
                                     "config, ids of [a-zA-Z0-9_-])")
            return
        component, _node_id, object_id = match.groups()
        if component != CONF_DEVICE and component not in SUPPORTED_COMPONENTS:
            self._error(topic, None, f"HA does not subscribe to discovery for '{component}'")
            return
        if payload in ("", {}, None):
            return  # a removal
        if isinstance(payload, str):
            try:
                payload = json_loads_object(payload)
            except ValueError as err:
                self._error(topic, None, f"payload is not a JSON object: {err}")
                return
        if not isinstance(payload, dict):
            self._error(topic, None, "payload is not a JSON object")
            return
        payload = discovery.MQTTDiscoveryPayload(copy.deepcopy(payload))
        if discovery._async_process_discovery_migration(payload):
            return
        if component == CONF_DEVICE:
            self._device(topic, payload)
        else:
            discovery._replace_all_abbreviations(payload)
            if CONF_ORIGIN in payload:
                try:
                    schemas.MQTT_ORIGIN_INFO_SCHEMA(payload[CONF_ORIGIN])
                except vol.Invalid as err:
                    self._error(topic, object_id, f"origin: {err} (HA drops the message)")
                    return
            self._component(topic, object_id, component, payload)

    def _device(self, topic: str, payload: discovery.MQTTDiscoveryPayload) -> None:
        discovery._replace_all_abbreviations(payload)
        try:
            schemas.DEVICE_DISCOVERY_SCHEMA(payload)
        except vol.Invalid as err:
            self._error(topic, None, f"device discovery: {err}")
            return
        for component_id, config in payload[CONF_COMPONENTS].items():
            platform = config.pop(CONF_PLATFORM)
            component_payload = discovery.MQTTDiscoveryPayload(config)
            if not component_payload:
                continue  # the component is removed
            component_payload[CONF_DEVICE] = payload[CONF_DEVICE]
            component_payload[CONF_ORIGIN] = payload.get(CONF_ORIGIN)
            discovery._merge_common_device_options(component_payload, payload)
            self._component(topic, component_id, platform, component_payload)

    def _component(self, topic: str, component_id: str, platform: str,
                   payload: discovery.MQTTDiscoveryPayload) -> None:
        if discovery.TOPIC_BASE in payload:
            discovery._replace_topic_base(payload)
        given = set(payload)
        try:
            config = _schema(platform)(payload)
        except vol.Invalid as err:
            self._error(topic, component_id, f"{platform}: {err}")
            return
        except ModuleNotFoundError as err:
            self._error(topic, component_id, f"{platform}: cannot load its schema here: {err}")
            return
        for problem in _entity_checks(platform, config):
            self._error(topic, component_id, f"{platform}: {problem}")
        for dropped in sorted(given - set(config)):
            self._warning(topic, component_id, f"{platform}: option '{dropped}' is unknown to HA 2025.1.4 and "
                                               f"silently dropped")
        if (unique_id := config.get("unique_id")) is not None:
            first = self.unique_ids.setdefault((platform, unique_id), f"{topic} {component_id}")
            if first != f"{topic} {component_id}":
                self._error(topic, component_id, f"{platform}: unique_id '{unique_id}' already used by {first} "
                                                 f"(HA ignores the second entity)")


def validate(messages: list[dict[str, Any]], prefix: str = PREFIX, strict: bool = False) -> dict[str, Any]:
    validator = Validator(prefix)
    for item in messages:
        if not isinstance(item, dict) or "topic" not in item:
            validator._error(str(item)[:80], None, "each item must be {\"topic\": ..., \"payload\": ...}")
            continue
        validator.message(item["topic"], item.get("payload", ""))
    errors = validator.errors + (validator.warnings if strict else [])
    return {"ok": not errors, "errors": errors, "warnings": [] if strict else validator.warnings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=PREFIX, help="the discovery prefix (HA's default: homeassistant)")
    parser.add_argument("--strict", action="store_true", help="options HA would silently drop are errors")
    args = parser.parse_args()
    try:
        messages = json.load(sys.stdin)
        if not isinstance(messages, list):
            raise ValueError("expected a JSON list")
    except ValueError as err:
        print(json.dumps({"ok": False, "errors": [{"topic": None, "component": None, "error": f"stdin: {err}"}],
                          "warnings": []}))
        return 2
    result = validate(messages, args.prefix, args.strict)
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
