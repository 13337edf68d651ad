"""``evos up --mqtt URL`` on real processes: the bridge is one more supervised app, with a password-protected
mosquitto, and its password never on a command line."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from ecosystem.conftest import BASE, home_client
from ecosystem.mosquitto import mosquitto
from helpers import app_process, eventually, evos, free_port, start, stop, wait_listening

SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


async def test_evos_up_runs_the_bridge_as_a_supervised_app(tmp_path: Path) -> None:
    (tmp_path / "mqtt").mkdir()
    passwords = tmp_path / "mqtt" / "passwords"
    passwords.touch()
    await asyncio.to_thread(subprocess.run, ["mosquitto_passwd", "-b", str(passwords), "car", "s3cret-Pa55"],
                            check=True)
    passwords.chmod(0o600)
    with mosquitto(tmp_path / "mqtt", password_file=passwords) as server:
        address = f"127.0.0.1:{free_port()}"
        url = f"mqtt://car:s3cret-Pa55@127.0.0.1:{server.port}"
        proc = start("up", "--apps", "twin,body,cabin,mqtt", "--address", address, "--data-dir",
                     str(tmp_path / "car"), "--mqtt", url)
        try:
            await asyncio.to_thread(wait_listening, proc, address)
            bridge = app_process(proc.pid, "mqtt")
            # the bridge's process gets the URL in its environment, which only this user can read: not in its argv,
            # which every user can (a user who wants it off the car's own command line too sets EVOS_MQTT)
            assert not any("s3cret" in part for part in bridge.cmdline())
            async with home_client(server, username="car", password="s3cret-Pa55") as home:
                await eventually(lambda: home.state(f"{BASE}/status") == "online", 10)
                await home.command(SETPOINT, "24.5")

                def set_point() -> float | None:
                    got = evos("get", SETPOINT, "--address", address, "--json")
                    return json.loads(got.stdout)[SETPOINT]["value"] if got.returncode == 0 else None

                for _ in range(50):
                    if await asyncio.to_thread(set_point) == 24.5:
                        break
                    await asyncio.sleep(0.2)
                assert await asyncio.to_thread(set_point) == 24.5
                await eventually(lambda: home.state(SETPOINT) == "24.5", 5)
            apps = json.loads(evos("apps", "--json", "--address", address).stdout)
            assert apps["Mqtt"]["State"] == "RUNNING"
        finally:
            out = await asyncio.to_thread(stop, proc)
        assert "car ready" in out
