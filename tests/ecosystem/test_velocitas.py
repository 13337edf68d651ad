"""A real Eclipse Velocitas vehicle app (velocitas-sdk 0.15.7 and a vehicle model made by Velocitas' own generator
from the car's catalog, in their own venv: scripts/velocitas_venv.sh) on the whole car as real processes, through
``sdv.databroker.v1`` (docs/sdv-databroker-v1.md): it reads Vehicle.Speed, follows it in two subscriptions (one with
a WHERE condition) while the car drives a short cycle, and switches the driver's seat heater on, which the car's
body carries out and journals; and it talks to a real mosquitto, as every Velocitas app must."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ecosystem.conftest import home_client
from ecosystem.mosquitto import Mosquitto
from evos.broker import JOURNAL_NAME, read_journal
from helpers import ENV, evos, free_port, start, stop, wait_listening

HERE = Path(__file__).parent
VENV = Path(os.environ.get("EVOS_VELOCITAS_VENV", HERE.parents[1] / ".peers" / "velocitas"))
APP = HERE / "velocitas" / "app.py"
SPEED = "Vehicle.Speed"
HEATER = "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"
HEATING = 30
FAST_KMH = 10.0
ALL_QUERY = f"SELECT {SPEED}"
FAST_QUERY = f"SELECT {SPEED} WHERE {SPEED} > {FAST_KMH}"
TOPICS = "evos-velocitas-app"
# a short drive: up to 50 km/h and back to a stop in 10 s
RAMP = "time_s,speed_kmh\n0,0\n1,15\n2,30\n3,45\n4,50\n5,50\n6,50\n7,40\n8,25\n9,10\n10,0\n"
APP_TIMEOUT_S = 60.0  # the app stops itself by then; the test's waits are bounded above it


@pytest.fixture(scope="session")
def velocitas_venv() -> Path:
    if not (VENV / "bin" / "python").exists() or not (VENV / ".evos-velocitas-model").exists():
        message = (f"the Velocitas tests need its venv with the generated vehicle model at {VENV}: "
                   "run scripts/velocitas_venv.sh")
        if os.environ.get("EVOS_REQUIRE_VELOCITAS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return VENV


def events(report: Path) -> list[dict[str, Any]]:
    """The app's report so far (JSON lines; a line being written is left for the next look)."""
    if not report.exists():
        return []
    found = []
    for line in report.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            found.append(json.loads(line))
    return found


def errors(seen: list[dict[str, Any]]) -> list[str]:
    """Each failed step of the app, as '<step> [<query>]: <gRPC code> <details>'."""
    return [f"{e['event']}{' ' + e['query'] if 'query' in e else ''}: {e['error']['code'] or e['error']['type']} "
            f"{e['error']['details']}" for e in seen if "error" in e]


def heater(address: str) -> Any:
    got = evos("get", HEATER, "--address", address, "--json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)[HEATER]["value"]


def start_app(venv: Path, address: str, mqtt_url: str, report: Path, log: Path) -> subprocess.Popen[bytes]:
    """app.py with the Velocitas venv's python, as Velocitas runs an app natively: its settings in SDV_* variables."""
    env = {**ENV, "SDV_MIDDLEWARE_TYPE": "native", "SDV_VEHICLEDATABROKER_ADDRESS": f"grpc://{address}",
           "SDV_MQTT_ADDRESS": mqtt_url, "EVOS_VELOCITAS_REPORT": str(report),
           "EVOS_VELOCITAS_TIMEOUT_S": str(APP_TIMEOUT_S), "EVOS_VELOCITAS_FAST_KMH": str(FAST_KMH),
           "EVOS_VELOCITAS_HEATING": str(HEATING), "LOGLEVEL": "INFO"}
    for name in ("PYTHONPATH", "PYTHONASYNCIODEBUG", "EVOS_LOOP_DEBUG"):  # nothing of evos' venv and test loops
        env.pop(name, None)
    with log.open("wb") as out:
        return subprocess.Popen([str(venv / "bin" / "python"), str(APP)], env=env, cwd=log.parent, stdout=out,
                                stderr=subprocess.STDOUT)


def start_drive(address: str, cycle: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "evos", "drive", "--cycle", str(cycle), "--address", address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)


def end(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def started(seen: list[dict[str, Any]]) -> bool:
    """The app's first steps are over: the read, the set, the first reply of SELECT Vehicle.Speed (or why not)."""
    kinds = {e["event"] for e in seen}
    first_reply = any(e["event"] in ("reply", "subscription_error") and e.get("query") == ALL_QUERY for e in seen)
    return "done" in kinds or ({"read", "set"} <= kinds and first_reply)


def assert_saw_the_drive(seen: list[dict[str, Any]]) -> None:
    """What the app read and its subscriptions saw: the parked car's 0 km/h, then the drive."""
    reads = {e["path"]: e for e in seen if e["event"] == "read"}
    assert reads["Vehicle.Speed"]["value"] == 0.0 and reads["Vehicle.Speed"]["timestamp_s"] > 0
    # an evos overlay signal by the model made from `evos catalog export`: the cabin's scenes, a string array
    assert {"cinema", "office"} <= set(reads["Vehicle.Evos.Cabin.Scenes"]["value"]), reads
    replies = {query: [e for e in seen if e["event"] == "reply" and e["query"] == query]
               for query in (ALL_QUERY, FAST_QUERY)}
    assert all(e["field"] == "float_value" for rs in replies.values() for e in rs), replies
    plain = [e["value"] for e in replies[ALL_QUERY]]
    assert plain[0] == 0.0  # the first reply at once: the current value
    assert max(plain) > FAST_KMH and len(set(plain)) > 2
    fast = [e["value"] for e in replies[FAST_QUERY]]
    assert fast and all(v > FAST_KMH for v in fast)  # nothing while the condition is false
    assert fast[0] in plain  # one update of the car, seen by both
    assert next(e for e in seen if e["event"] == "set") == {"event": "set", "path": HEATER, "value": HEATING,
                                                             "ok": True}


async def test_a_velocitas_app_reads_follows_and_actuates_the_car(server: Mosquitto, tmp_path: Path,
                                                                   velocitas_venv: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    report, app_log = tmp_path / "velocitas.jsonl", tmp_path / "velocitas.log"
    (tmp_path / "ramp.csv").write_text(RAMP)
    car = start("up", "--apps", "twin,body,cabin", "--address", address, "--data-dir", str(tmp_path / "car"),
                "--http", f"127.0.0.1:{free_port()}")
    app: subprocess.Popen[bytes] | None = None
    drive: subprocess.Popen[str] | None = None

    def log_tail() -> str:
        text = app_log.read_text(errors="replace") if app_log.exists() else ""
        return text[-3000:].partition("\n")[2] if len(text) > 3000 else text

    async def until(predicate: Any, what: str, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = events(report)
            if predicate(seen) or (app is not None and app.poll() is not None):
                return seen
            await asyncio.sleep(0.1)
        pytest.fail(f"{what}: not within {timeout_s} s\nthe app's report: {events(report)}\nits log:\n{log_tail()}")

    try:
        await asyncio.to_thread(wait_listening, car, address)
        assert await asyncio.to_thread(heater, address) == 0  # a fresh car: the seat heater off
        async with home_client(server, topics=(f"{TOPICS}/#",)) as home:
            app = await asyncio.to_thread(start_app, velocitas_venv, address, server.url, report, app_log)
            seen = await until(started, "the Velocitas app's read, set and first subscription reply", 30)
            if errors(seen):
                pytest.fail("the Velocitas app's steps failed (read, set, subscribe: the car's sdv.databroker.v1; "
                            "run: MQTT):\n  " + "\n  ".join(errors(seen)) + f"\nits log:\n{log_tail()}")
            if not started(seen):
                pytest.fail(f"the Velocitas app exited (code {app.poll()}) before it started: {seen}\n{log_tail()}")
            assert any(e["event"] == "mqtt" and e["published"] for e in seen), seen

            # the car drives: the app sees the speed change in both subscriptions, and then stops by itself
            drive = await asyncio.to_thread(start_drive, address, tmp_path / "ramp.csv")
            seen = await until(lambda s: any(e["event"] == "done" for e in s), "the app's end", APP_TIMEOUT_S + 15)
            assert await asyncio.to_thread(app.wait, 10) == 0, (
                f"{[e for e in seen if e['event'] == 'done']}\n" + "\n".join(errors(seen)) + f"\n{log_tail()}")
            out, _ = await asyncio.to_thread(drive.communicate, timeout=60)
            assert drive.returncode == 0 and "drove" in out, out
            for _ in range(50):  # the app's MQTT messages, straight to mosquitto (the car's bridge is not running)
                if f"{TOPICS}/currentSpeed" in home.latest:
                    break
                await asyncio.sleep(0.1)
            status = [json.loads(p) for t, p, _ in home.seen if t == f"{TOPICS}/status"]
            speeds = [json.loads(p)["speed"] for t, p, _ in home.seen if t == f"{TOPICS}/currentSpeed"]
        assert_saw_the_drive(seen)
        # over MQTT: its start, and the speeds it published as the template's app does
        assert status == [{"event": "started"}]
        assert speeds[0] == 0.0 and max(speeds) > FAST_KMH
        # its set was an actuation: the body switched the heater on, and the car's journal has it
        assert await asyncio.to_thread(heater, address) == HEATING
        rows = read_journal(tmp_path / "car" / JOURNAL_NAME)
        assert [row["result"] for row in rows if row["args"] == {HEATER: HEATING}] == ["completed"]
    finally:
        await asyncio.to_thread(end, app)
        await asyncio.to_thread(end, drive)
        out = await asyncio.to_thread(stop, car)
    assert "car ready" in out
