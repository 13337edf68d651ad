"""The bridge's configuration: every mistake in its YAML file or URL is refused with a message that names the file,
the setting and what was wrong; a good file says what the bridge will do."""

from __future__ import annotations

from pathlib import Path

import pytest

from evos.ecosystem import bridge_config
from evos.errors import InvalidArgumentError
from helpers import evos

SERVER = "server: mqtt://127.0.0.1:1883\n"
BAD = {  # the file's text -> words the error must hold (besides the file's name)
    "- a\n- b\n": ["expected a mapping"],
    "server: [1\n": ["not YAML"],
    SERVER + "sever: mqtt://x\n": ["unknown setting", "'sever'"],
    "publish: [Vehicle.Speed]\n": ["no MQTT server"],
    "server: http://127.0.0.1\n": ["server", "http://127.0.0.1", "mqtt://"],
    "server: mqtt://127.0.0.1:99999\n": ["server", "not a server URL"],
    "server: mqtt://127.0.0.1/evos\n": ["server", "no path"],
    "server: 1883\n": ["server", "1883", "not a non-empty string"],
    SERVER + "base_topic: evos/#\n": ["base_topic", "'evos/#'"],
    SERVER + "base_topic: /evos\n": ["base_topic", "'/evos'"],
    SERVER + "discovery_prefix: ''\n": ["discovery_prefix"],
    SERVER + "publish: Vehicle.Speed\n": ["publish", "expected a list"],
    SERVER + "publish: [Speed]\n": ["publish[0].path", "VSS paths"],
    SERVER + "publish: [{path: Vehicle.Speed, every: 2}]\n": ["publish[0]", "min_interval_s"],
    SERVER + "publish: [{path: Vehicle.Speed, min_interval_s: -1}]\n": ["publish[0].min_interval_s", "-1"],
    SERVER + "min_interval_s: fast\n": ["min_interval_s", "'fast'"],
    SERVER + "min_interval_s: true\n": ["min_interval_s", "True"],
    SERVER + "commands: Vehicle.Cabin.HVAC\n": ["commands", "expected a list"],
    SERVER + "allow_opening: yes please\n": ["allow_opening", "'yes please'", "true or false"],
    SERVER + "home_assistant: 1\n": ["home_assistant", "true or false"],
    SERVER + "mqtt_version: 4\n": ["mqtt_version", "4"],
    SERVER + "keepalive_s: 1\n": ["keepalive_s", "from 5 to 3600"],
    SERVER + "ca_file: /nonexistent/ca.pem\n": ["ca_file", "/nonexistent/ca.pem", "not a file"],
    SERVER + "client_id: ''\n": ["client_id"],
}


@pytest.mark.parametrize("text", list(BAD), ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_mistake_in_the_file_is_named(text: str, tmp_path: Path) -> None:
    file = tmp_path / "bridge.yaml"
    file.write_text(text)
    with pytest.raises(InvalidArgumentError) as caught:
        bridge_config(file)
    message = str(caught.value)
    assert message.startswith(str(file)), message
    assert all(word in message for word in BAD[text]), message


def test_a_file_that_cannot_be_read_or_is_not_text_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot be read"):
        bridge_config(tmp_path / "missing.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"server: \xff\xfe\n")
    with pytest.raises(InvalidArgumentError, match="not YAML"):
        bridge_config(tmp_path / "binary.yaml")


def test_the_url_wins_over_the_file_and_the_password_comes_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "bridge.yaml"
    file.write_text("server: mqtt://home.example:1883\nmqtt_version: '3.1.1'\ncommands: [Vehicle.Cabin.HVAC]\n"
                    "publish: [Vehicle.Speed, {path: Vehicle.Powertrain.Range, min_interval_s: 30}]\n")
    monkeypatch.setenv("EVOS_MQTT_PASSWORD", "s3cret")
    config = bridge_config(file, "mqtts://car@127.0.0.1")
    assert (config.host, config.port, config.tls, config.username, config.password) == (
        "127.0.0.1", 8883, True, "car", "s3cret")
    assert not config.mqtt5 and config.commands == ("Vehicle.Cabin.HVAC",)
    assert [(p.path, p.min_interval_s) for p in config.publish] == [("Vehicle.Speed", 1.0),
                                                                    ("Vehicle.Powertrain.Range", 30.0)]
    assert "s3cret" not in repr(config) and "s3cret" not in config.server


def test_evos_mqtt_check_says_what_the_bridge_does_or_what_is_wrong(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(SERVER + "allow_opening: true\nhome_assistant: false\n")
    bad.write_text(SERVER + "allow_opening: maybe\n")
    done = evos("mqtt", "check", "-c", str(good))
    assert done.returncode == 0, done.stderr
    assert "mqtt://127.0.0.1:1883" in done.stdout and "allowed (the owner opted in)" in done.stdout
    assert "Home Assistant discovery: off" in done.stdout
    refused = evos("mqtt", "check", "-c", str(bad))
    assert refused.returncode != 0
    assert "allow_opening" in refused.stderr and "'maybe'" in refused.stderr


def test_the_bridge_asked_for_without_a_server_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = evos("up", "--apps", "twin,mqtt", "--data-dir", str(tmp_path / "car"), "--address", "127.0.0.1:0")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'mqtt'" in done.stderr and "--mqtt URL" in done.stderr
    assert not (tmp_path / "car").exists()  # nothing was made
