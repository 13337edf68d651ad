"""The evos command line as a user runs it: `evos broker`/`evos up` processes and the client commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import ENV, evos, free_port, start, stop, wait_listening

SPEED = "Vehicle.Speed"


@pytest.fixture
def running_broker(tmp_path: Path) -> Iterator[str]:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("Vehicle.Evos.Scene:\n  type: actuator\n  datatype: string\n  allowed: [OFFICE, CINEMA]\n")
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--address", address, "--overlay", str(overlay))
    try:
        wait_listening(proc, address)
        yield address
    finally:
        out = stop(proc)
        assert "Authorization is OFF" in out  # said loudly at start
        assert proc.returncode == 0


def test_get_set_signals_and_watch(running_broker: str) -> None:
    address = running_broker
    assert evos("set", SPEED, "72.5", "--address", address).returncode == 0
    assert evos("set", "Vehicle.Cabin.SeatPosCount", "[2, 3]", "--address", address).returncode == 0
    got = json.loads(evos("get", SPEED, "Vehicle.Cabin.SeatPosCount", "Vehicle.IsMoving", "--json",
                          "--address", address).stdout)
    assert got[SPEED]["value"] == 72.5 and got[SPEED]["timestamp_s"] > 0
    assert got["Vehicle.Cabin.SeatPosCount"]["value"] == [2, 3]
    assert got["Vehicle.IsMoving"]["value"] is None
    table = evos("signals", "Vehicle.Powertrain.TractionBattery.StateOfCharge", "--address", address).stdout
    assert "StateOfCharge.Current" in table and "percent" in table and "3 signals" in table
    listed = json.loads(evos("signals", "Vehicle.Evos", "--json", "--address", address).stdout)
    assert listed == [{"type": "actuator", "datatype": "string", "allowed": ["OFFICE", "CINEMA"],
                       "path": "Vehicle.Evos.Scene", "value": None}]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "evos", "watch", SPEED, "--json", "--duration", "6", "--address", address],
        stdout=subprocess.PIPE, text=True, env=ENV)
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())
    assert first == {SPEED: 72.5}
    assert evos("set", SPEED, "80", "--address", address).returncode == 0
    assert json.loads(watcher.stdout.readline()) == {SPEED: 80.0}
    watcher.kill()
    watcher.wait()


def test_actuate_without_provider_fails_clearly(running_broker: str) -> None:
    result = evos("actuate", "Vehicle.Evos.Scene", "CINEMA", "--address", running_broker)
    assert result.returncode == 1
    assert "Vehicle.Evos.Scene: no provider" in result.stderr
    result = evos("actuate", "Vehicle.Evos.Scene", "DISCO", "--address", running_broker)
    assert "not one of the allowed values" in result.stderr


def test_up_holds_its_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "car"
    address = f"127.0.0.1:{free_port()}"
    proc = start("up", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        assert (data / "evos.lock").exists()
        second = evos("up", "--address", f"127.0.0.1:{free_port()}", "--data-dir", str(data))
        assert second.returncode == 1
        assert "is in use by another running evos" in second.stderr
    finally:
        out = stop(proc)
    assert f"data directory: {data}" in out
    # after a kill -9 the lock is released by the OS and the car starts again
    proc = start("up", "--address", address, "--data-dir", str(data))
    try:
        wait_listening(proc, address)
        proc.kill()
        proc.wait()
        proc = start("up", "--address", address, "--data-dir", str(data))
        wait_listening(proc, address)
    finally:
        stop(proc)


def test_bad_server_options() -> None:
    result = evos("broker", "--address", "nowhere")
    assert result.returncode == 1 and "is not HOST:PORT" in result.stderr
    result = evos("broker", "--vss", "/no/such/file.json")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_help_explains_every_option() -> None:
    from typer.main import get_command

    from evos.cli import app

    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            if param.name == "help":
                continue
            assert getattr(param, "help", None), f"evos {name}: {param.name} has no help text"
    assert "HOST:PORT" in evos("up", "--help").stdout
