"""The evos command line as a user runs it: `evos broker`/`evos up` processes and the client commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def test_a_second_broker_on_the_same_address_says_it_is_in_use(running_broker: str) -> None:
    result = evos("broker", "--address", running_broker)
    message = " ".join(result.stderr.split())
    assert result.returncode == 1 and f"cannot listen on {running_broker}: the address is in use" in message
    assert "GRPC_VERBOSITY" not in message, message


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



def test_a_client_address_without_a_port_is_named() -> None:
    # gRPC itself would only say "errors resolving nowhere:"; every client command says what is wrong instead
    for args in (["get", SPEED], ["cabin", "status"], ["drive", "--cycle", "udds"]):
        result = evos(*args, "--address", "nowhere")
        assert result.returncode == 1 and "address 'nowhere' is not HOST:PORT" in result.stderr, result.stderr


def test_an_unreadable_token_file_is_a_usage_error(tmp_path: Path) -> None:
    token_file = tmp_path / "token.jwt"
    token_file.write_bytes(b"\xff\xfe not text")
    for args in (["get", SPEED], ["cabin", "status"], ["drive", "--cycle", "udds"]):
        result = evos(*args, "--address", "127.0.0.1:1", "--token-file", str(token_file))
        message = " ".join(result.stderr.split())
        assert result.returncode == 2 and "cannot read a token from" in message and "Traceback" not in message


def _commands() -> dict[str, Any]:
    """Every leaf command of ``evos`` by its full name ('up', 'twin simulate', 'cabin media volume', ...)."""
    from typer.main import get_command

    from evos.cli import app

    found: dict[str, Any] = {}

    def walk(prefix: str, group: Any) -> None:
        for name, command in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(command, "commands"):
                walk(full, command)
            else:
                found[full] = command

    walk("", get_command(app))
    return found


def test_help_explains_every_option() -> None:
    commands = _commands()
    assert {"up", "twin simulate", "cabin media volume", "users add"} <= set(commands)
    for name, command in commands.items():
        assert command.help, name
        for param in command.params:
            if param.name == "help":
                continue
            assert getattr(param, "help", None), f"evos {name}: {param.name} has no help text"
    assert "HOST:PORT" in evos("up", "--help").stdout


# without an address these two ask a fresh car in their own process, so an exported EVOS_BROKER_ADDRESS must not
# silently turn them onto a running one
NO_ENVVAR = {("assistant", "--address"), ("cabin forecast", "--address")}


def test_an_option_reads_the_same_environment_variable_in_every_command() -> None:
    envvars: dict[str, dict[str, str | None]] = {}
    for name, command in _commands().items():
        for param in command.params:
            for flag in param.opts:
                if flag.startswith("--") and (name, flag) not in NO_ENVVAR:
                    envvars.setdefault(flag, {})[name] = param.envvar
    for flag, by_command in envvars.items():
        assert len(set(by_command.values())) == 1, f"{flag}: {by_command}"
    assert envvars["--database-url"]["up"] == "EVOS_DATABASE_URL"
