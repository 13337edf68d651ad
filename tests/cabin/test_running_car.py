"""The cabin end to end through a running car (``evos up`` in a subprocess) and the command line: scenes set and
restore the hardware, the assistant acts on the car, and scenes end by themselves at their wake-up timer and at the
energy reserve (the twin sped up with ``Vehicle.Evos.Twin.TimeScale``, a cold ambient draining the battery)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from helpers import evos, free_port, start, stop, wait_listening

RECLINE = "Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline"
SHADE = "Vehicle.Cabin.Sunroof.Shade.IsOpen"
DND = "Vehicle.Evos.Cabin.DoNotDisturb"
SCENE, STATUS, REASON = "Vehicle.Evos.Cabin.Scene", "Vehicle.Evos.Cabin.SceneStatus", "Vehicle.Evos.Cabin.SceneReason"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"

# User scenes of the test car: a nap with the shortest wake-up timer a scene file takes, and a scene whose reserve is
# 1 % below the fresh car's 80 % so that a cold night reaches it within minutes of the car's time.
NAP = """name: nap
title: Nap
wake_after_min: 30
set:
  Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline: 55
"""
DRAIN = """name: drain
title: Drain
reserve_soc_pct: 79
set:
  Vehicle.Cabin.HVAC.IsAirConditioningActive: true
  Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature: 24
  Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling: 100
rules:
  hold: [Vehicle.Cabin.HVAC.IsAirConditioningActive]
"""


def read(address: str, *paths: str) -> dict[str, str]:
    """Current values as ``evos get`` prints them (``path = value``)."""
    result = evos("get", *paths, "--address", address)
    assert result.returncode == 0, result.stdout + result.stderr
    pairs = (line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    return {path.strip(): value.strip() for path, value in pairs}


def until(address: str, paths: tuple[str, ...], done: Callable[[dict[str, str]], bool],
          timeout_s: float = 30) -> dict[str, str]:
    """Poll ``paths`` (bounded) until ``done(values)``; fail with the last values if it never is."""
    deadline = time.monotonic() + timeout_s
    while True:
        values = read(address, *paths)
        if done(values):
            return values
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout_s} s: {values}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def running_car(car_with_screen: tuple[str, str]) -> str:
    return car_with_screen[0]


@pytest.fixture(scope="module")
def car_with_screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``evos up`` in a subprocess: its gRPC address and the URL of its web server."""
    data = Path(tmp_path_factory.mktemp("car"))
    (data / "scenes").mkdir()
    (data / "scenes" / "nap.yaml").write_text(NAP)
    (data / "scenes" / "drain.yaml").write_text(DRAIN)
    address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start("up", "--data-dir", str(data), "--address", address, "--http", http)
    try:
        wait_listening(proc, address)
        yield address, f"http://{http}"
    finally:
        stop(proc)


def test_cli_enters_and_leaves_a_scene_on_the_running_car(running_car: str) -> None:
    address = running_car
    before = read(address, RECLINE, SHADE, DND)
    result = evos("cabin", "enter", "cinema", "--address", address)
    assert result.returncode == 0 and "scene cinema (ACTIVE)" in result.stdout, result.stdout + result.stderr
    # the time left is forecast on entering, not 0 until the service's next forecast
    assert " to the reserve" in result.stdout and ", 0 min to the reserve" not in result.stdout, result.stdout
    # the seat motor reclines to 40° over a few seconds; the shade and do-not-disturb at once
    until(address, (RECLINE, SHADE, DND), lambda v: float(v[RECLINE]) == 40 and v[SHADE] == "false"
          and v[DND] == "true")
    status = evos("cabin", "status", "--address", address)
    assert "scene cinema (ACTIVE)" in status.stdout and " to the reserve" in status.stdout
    result = evos("cabin", "exit", "--address", address)
    assert result.returncode == 0 and "scene NONE (IDLE): cinema left" in result.stdout
    until(address, (RECLINE, SHADE, DND), lambda v: v == before)


def test_assistant_acts_on_the_running_car(running_car: str) -> None:
    address = running_car
    result = evos("assistant", "打开影院模式", "--address", address)
    assert result.returncode == 0 and result.stdout.startswith("好的，影院模式已开启，预计可用约"), result.stdout
    until(address, (STATUS,), lambda v: v[STATUS] == "ACTIVE")
    result = evos("assistant", "exit cinema mode", "--broker", address)  # the older name of --address
    assert result.stdout.startswith("Leaving cinema mode and restoring the cabin."), result.stdout
    until(address, (SCENE, STATUS), lambda v: v == {SCENE: "NONE", STATUS: "IDLE"})
    # the forecast of the running car takes the same -a/--address as every command that talks to a car
    forecast = evos("cabin", "forecast", "camp", "-a", address, "--json")
    assert forecast.returncode == 0 and json.loads(forecast.stdout)["scene"] == "camp", forecast.stderr


def test_scenes_end_at_the_reserve_and_at_the_wake_up_timer(running_car: str) -> None:
    address = running_car
    assert float(read(address, SOC)[SOC]) > 79.5  # a fresh car, parked at 80 %
    result = evos("cabin", "enter", "drain", "--address", address)
    assert result.returncode == 0, result.stdout + result.stderr
    # a -30 °C night, 1000 times faster: heating the cabin to 24 °C takes the battery to the 79 % reserve
    assert evos("actuate", "--address", address, "--", "Vehicle.Evos.Twin.AmbientTemperature", "-30").returncode == 0
    assert evos("actuate", "Vehicle.Evos.Twin.TimeScale", "1000", "--address", address).returncode == 0
    ended = until(address, (STATUS, REASON, SOC, SCENE), lambda v: v[STATUS] == "ENDED")
    assert ended[REASON] == "drain ended: the battery reached the 79 % reserve" and ended[SCENE] == "NONE"
    assert float(ended[SOC]) <= 79
    refused = evos("cabin", "enter", "drain", "--address", address)
    assert refused.returncode == 1 and "drain cannot start: the battery is at" in refused.stdout + refused.stderr
    # the nap's 30 min wake-up timer runs on the car's clock: under 2 s of wall time at 1000 times
    assert evos("cabin", "enter", "nap", "--address", address).returncode == 0
    ended = until(address, (STATUS, REASON, RECLINE), lambda v: v[STATUS] == "ENDED")
    assert ended[REASON] == "nap ended: wake-up timer (30 min)"
    assert evos("actuate", "Vehicle.Evos.Twin.TimeScale", "1", "--address", address).returncode == 0


def test_evos_up_serves_the_centre_screen(car_with_screen: tuple[str, str]) -> None:
    address, url = car_with_screen
    deadline = time.monotonic() + 30
    while True:  # the web server starts next to the broker: wait (bounded) for it
        try:
            page = httpx.get(f"{url}/cabin/", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert page.status_code == 200 and "<html" in page.text.lower()
    state = httpx.get(f"{url}/cabin/api/state", timeout=5).json()
    assert state["Vehicle.Evos.Cabin.Scene"] == read(address, SCENE)[SCENE]
    scenes = {s["name"] for s in httpx.get(f"{url}/cabin/api/scenes", timeout=5).json()}
    assert {"cinema", "office", "nap", "drain"} <= scenes  # the built-ins and this car's user scenes


def test_cabin_commands_on_a_broker_without_the_cabin_say_so() -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--address", address)  # a bare broker: no twin, no cabin
    try:
        wait_listening(proc, address)
        for args in (["enter", "cinema"], ["status"], ["media", "play"]):
            result = evos("cabin", *args, "--address", address)
            message = " ".join(result.stderr.split())
            assert result.returncode == 1 and f"the car at {address} has no cabin service" in message, message
    finally:
        stop(proc)


def test_cabin_commands_carry_a_token_to_a_broker_that_requires_one(tmp_path: Path) -> None:
    """A car whose broker requires tokens: the cabin's commands are refused without one and let in with
    ``--token-file`` (this bare broker has no cabin and no climate, which they then say)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, 2048)
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    now = int(time.time())
    claims = {"sub": "owner", "iss": "evos-tests", "aud": ["kuksa.val"], "iat": now, "exp": now + 600, "scope": "read"}
    token_file = tmp_path / "token.jwt"
    token_file.write_text(jwt.encode(claims, key, algorithm="RS256") + "\n")
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--address", address, "--jwt-public-key", str(public))
    try:
        deadline = time.monotonic() + 30
        while evos("get", "Vehicle.Speed", "-a", address, "--token-file", str(token_file)).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the broker did not come up"
            time.sleep(0.2)
        for args in (["cabin", "status"], ["cabin", "media", "play"], ["assistant", "I'm cold"]):
            refused = evos(*args, "--address", address)
            assert refused.returncode == 1 and "authorization required" in refused.stderr, refused.stderr
            let_in = evos(*args, "--address", address, "--token-file", str(token_file))
            message = " ".join(let_in.stderr.split())
            assert "authorization" not in message, message
            if args[0] == "cabin":
                assert let_in.returncode == 1 and "has no cabin service" in message, message
            else:  # in, and read the car: this bare broker serves no climate to warm, which it says
                assert let_in.returncode == 0 and "can't" in let_in.stdout, let_in.stdout
    finally:
        stop(proc)
