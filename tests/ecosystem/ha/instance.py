"""A real Home Assistant 2025.1.4 (venv from scripts/ha_venv.sh) as a test peer, on an MQTT server of the test's.
Standard library only (it runs on the project's Python; HA runs in its own venv on Python 3.12)::

    with home_assistant(mqtt_port, tmp_path / "ha", venv) as ha:
        # HA is up, connected, subscribed to discovery, and has sent its birth message homeassistant/status=online
        publish(f"{ha.DISCOVERY_PREFIX}/device/car1/config", {...})   # with the test's own MQTT client
        wait for ha.state_topic("lock.evos_car_door")   # mqtt_statestream: ha_state/lock/evos_car_door/state
        publish(ha.call_topic, ha.call("lock.unlock", "lock.evos_car_door"))   # HA calls the service, then
        wait for ha.call_done_topic                                  # echoes the request there

What it writes into ``config_dir``: configuration.yaml (no default_config: the integrations bootstrap always sets
up, plus mqtt_statestream and one automation), .storage/core.config_entries (the mqtt entry: broker 127.0.0.1,
the given port, discovery on). HTTP listens on 127.0.0.1 and a free port; nothing needs HA's auth.

The service-call automation: a JSON message on ``test/ha/call`` ``{"service": "lock.unlock", "entity_id": "..."
(optional, a string or a list), "data": {...} (optional)}`` makes HA call that service (``action`` and ``target``
and ``data`` are templates); when the call returned, HA publishes the same JSON on ``test/ha/call/done``. A call
that fails (unknown service or entity, bad data) publishes nothing there; the error is in ``ha.log()``.

Entity ids of discovered entities (HA 2025.1.4, ``has_entity_name``): ``<platform>.<slug(device name + " " +
entity name)>``, ``<platform>.<slug(device name)>`` for ``"name": null``; a component's ``object_id`` sets
``<platform>.<object_id>`` instead. mqtt_statestream publishes each state (retained, QoS 1) on
``ha_state/<domain>/<object_id>/state`` and each attribute, JSON-encoded, on ``ha_state/<domain>/<object_id>/<attr>``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

CONFIGURATION_YAML = """\
# written by tests/ecosystem/ha/instance.py
homeassistant:
  name: evos test home
  latitude: 52.52
  longitude: 13.40
  elevation: 34
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: DE
  internal_url: "http://127.0.0.1:{http_port}"

http:
  server_host: 127.0.0.1
  server_port: {http_port}

logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info

mqtt_statestream:
  base_topic: {state_base}
  publish_attributes: true
  publish_timestamps: false

automation:
  - id: evos_test_service_call
    alias: evos test service call
    description: "A JSON message on {call_topic} becomes a service call; its echo on {call_topic}/done when done"
    mode: parallel
    max: 1000
    triggers:
      - trigger: mqtt
        topic: {call_topic}
    conditions:
      - condition: template
        value_template: "{{{{ trigger.payload_json is defined and trigger.payload_json.service is defined }}}}"
    actions:
      - action: "{{{{ trigger.payload_json.service }}}}"
        target: >-
          {{{{ {{'entity_id': trigger.payload_json.entity_id}} if trigger.payload_json.entity_id is defined
             else {{}} }}}}
        data: "{{{{ trigger.payload_json.data | default({{}}, true) }}}}"
      - action: mqtt.publish
        data:
          topic: {call_topic}/done
          payload: "{{{{ trigger.payload_json | to_json }}}}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_entries(mqtt_port: int) -> dict[str, Any]:
    """The .storage/core.config_entries of an HA whose only config entry is MQTT on 127.0.0.1:``mqtt_port``."""
    now = "2025-01-01T00:00:00+00:00"
    entry = {"entry_id": "01evostestmqttentry000000", "version": 1, "minor_version": 1, "domain": "mqtt",
             "title": "127.0.0.1", "data": {"broker": "127.0.0.1", "port": mqtt_port, "discovery": True},
             "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False, "source": "user",
             "unique_id": None, "disabled_by": None, "discovery_keys": {}, "created_at": now, "modified_at": now}
    return {"version": 1, "minor_version": 4, "key": "core.config_entries", "data": {"entries": [entry]}}


def write_config(config_dir: Path, mqtt_port: int, http_port: int, state_base: str = "ha_state",
                 call_topic: str = "test/ha/call") -> None:
    (config_dir / ".storage").mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(http_port=http_port, state_base=state_base, call_topic=call_topic))
    (config_dir / ".storage" / "core.config_entries").write_text(json.dumps(config_entries(mqtt_port), indent=1))


class MiniMqtt:
    """Just enough MQTT 3.1.1 (QoS 0) to see HA's birth message without a third-party client."""

    def __init__(self, port: int, client_id: str, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        payload = _string("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + _string(client_id)
        self.sock.sendall(_packet(0x10, payload))
        kind, body = self.read(timeout)
        if kind != 0x20 or body[1:2] != b"\x00":
            raise ConnectionError(f"MQTT CONNECT refused: {kind:#x} {body!r}")

    def subscribe(self, topic: str) -> None:
        self.sock.sendall(_packet(0x82, struct.pack("!H", 1) + _string(topic) + b"\x00"))

    def read(self, timeout: float) -> tuple[int, bytes]:
        """The next packet (type nibble << 4, body); TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 2:
                length, shift, i = 0, 0, 1
                while i < len(self.buffer):
                    byte = self.buffer[i]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not byte & 0x80:
                        if len(self.buffer) >= i + length:
                            kind, body = self.buffer[0] & 0xF0, self.buffer[i:i + length]
                            self.buffer = self.buffer[i + length:]
                            return kind, body
                        break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionError("MQTT server closed the connection")
            self.buffer += chunk

    def wait_publish(self, topic: str, payload: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                kind, body = self.read(left)
            except TimeoutError:
                return False
            if kind == 0x30:  # PUBLISH, QoS 0 (no packet id)
                (size,) = struct.unpack("!H", body[:2])
                if body[2:2 + size].decode() == topic and body[2 + size:] == payload:
                    return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
        self.sock.close()


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(header: int, body: bytes) -> bytes:
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            return bytes([header]) + encoded + body


def _http_up(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/manifest.json")  # the frontend's, served without auth
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@dataclass
class HomeAssistantHandle:
    config_dir: Path
    mqtt_port: int
    http_port: int
    proc: subprocess.Popen[bytes]
    started_in_s: float = 0.0
    state_base: str = "ha_state"
    call_topic: str = "test/ha/call"
    extra: dict[str, Any] = field(default_factory=dict)

    DISCOVERY_PREFIX = "homeassistant"
    STATUS_TOPIC = "homeassistant/status"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def call_done_topic(self) -> str:
        return f"{self.call_topic}/done"

    def state_topic(self, entity_id: str, attribute: str = "state") -> str:
        """Where mqtt_statestream publishes ``entity_id``'s state (or one attribute, JSON-encoded)."""
        return f"{self.state_base}/{entity_id.replace('.', '/')}/{attribute}"

    @staticmethod
    def call(service: str, entity_id: str | list[str] | None = None, **data: Any) -> str:
        """The payload for ``call_topic`` that makes HA call ``service``."""
        request: dict[str, Any] = {"service": service}
        if entity_id is not None:
            request["entity_id"] = entity_id
        if data:
            request["data"] = data
        return json.dumps(request)

    def log(self) -> str:
        """HA's output so far (its log lines at warning and above, mqtt's at info)."""
        path = self.config_dir / "hass.out"
        return path.read_text(errors="replace") if path.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def home_assistant(mqtt_port: int, config_dir: Path, venv: Path,
                   timeout: float = START_TIMEOUT_S) -> Iterator[HomeAssistantHandle]:
    """HA 2025.1.4 from ``venv`` with its config in ``config_dir``, on the MQTT server at 127.0.0.1:``mqtt_port``
    (anonymous). Yields once HTTP answers and HA's birth message ``homeassistant/status`` = ``online`` was seen
    (HA sends it once connected and subscribed to discovery: a bridge re-publishes its discovery on it); stops
    HA on exit (SIGTERM, killed after STOP_TIMEOUT_S)."""
    hass = venv / "bin" / "hass"
    if not hass.exists():
        raise FileNotFoundError(f"{hass} is missing: run scripts/ha_venv.sh")
    config_dir.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    write_config(config_dir, mqtt_port, http_port)
    watcher = MiniMqtt(mqtt_port, f"evos-ha-watch-{os.getpid()}-{http_port}")
    watcher.subscribe(HomeAssistantHandle.STATUS_TOPIC)
    started = time.monotonic()
    with (config_dir / "hass.out").open("ab") as out:
        proc = subprocess.Popen([str(hass), "-c", str(config_dir), "--skip-pip"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle = HomeAssistantHandle(config_dir, mqtt_port, http_port, proc)
    try:
        deadline = started + timeout
        birth = False
        while not birth and time.monotonic() < deadline and proc.poll() is None:
            birth = watcher.wait_publish(HomeAssistantHandle.STATUS_TOPIC, b"online", 1.0)
        while birth and not _http_up(http_port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None or not birth or not _http_up(http_port):
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not up after {timeout:.0f} s"
            raise RuntimeError(f"Home Assistant {state}; its output:\n{handle.log()[-5000:]}")
        handle.started_in_s = time.monotonic() - started
    except BaseException:
        watcher.close()
        _stop(proc)
        raise
    watcher.close()
    try:
        yield handle
    finally:
        _stop(proc)
