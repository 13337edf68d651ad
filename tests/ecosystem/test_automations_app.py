"""The automations app in a running car with a real mosquitto: a home value fires a rule that actuates the car, an
arrival publishes to the home, a notification goes out, every firing is in the log (also after the app is gone),
and the app's token holds exactly what its rules read and set."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ecosystem.conftest import home_client
from ecosystem.mosquitto import Mosquitto
from evos.app import CarSettings
from evos.car import app_named, local_car, permissions_of
from evos.ecosystem import read_log

HEATING = "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"
LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
RULES = f"""
zones:
  home: {{latitude: 48.1371, longitude: 11.5754, radius_m: 80}}
home:
  tariff: {{topic: test/home/price, type: float}}
rules:
  - name: warm seat when power is cheap
    when: {{becomes: "home.tariff < 0.15"}}
    do:
      - set: {{{HEATING}: 50}}
  - name: garage
    when: {{enters: home}}
    do:
      - publish: {{topic: test/home/garage/set, payload: OPEN}}
      - notify: welcome home
"""


async def _until(check, what: str, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_rules_fire_in_the_running_car(server: Mosquitto, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = CarSettings(mqtt=server.url, automations=str(rules))
    apps = [app_named(name) for name in ("twin", "body", "cabin", "automations")]
    async with (home_client(server, ("test/home/garage/set", "evos/car/notify")) as home,
                local_car(apps, tmp_path, settings) as car):
        perms = await asyncio.to_thread(permissions_of, app_named("automations"), car.broker, settings)
        assert perms.allows("actuate", HEATING) and perms.allows("read", LAT)
        assert not perms.allows("actuate", "Vehicle.Cabin.Seat.Row1.PassengerSide.HeatingCooling")
        assert not perms.allows("read", "Vehicle.Speed")
        before = car.broker.get(HEATING).value

        await home.send("test/home/price", "0.30")  # expensive: nothing
        await home.send("test/home/price", "0.09")  # cheap: the seat warms
        await _until(lambda: car.broker.get(HEATING).value == 50, "the seat heating set by the rule")
        assert before != 50

        car.broker.publish({LAT: 48.1500, LON: 11.5754})  # 1.4 km north
        car.broker.publish({LAT: 48.1372, LON: 11.5755})  # home
        await _until(lambda: "evos/car/notify" in home.latest, "the notification")
        assert home.latest["test/home/garage/set"] == b"OPEN"
        note = json.loads(home.latest["evos/car/notify"])
        assert note["rule"] == "garage" and note["message"] == "welcome home"
        await _until(lambda: len(read_log(tmp_path / "automations.sqlite")) == 2
                     and all(r["outcomes"] for r in read_log(tmp_path / "automations.sqlite")), "the log")
    rows = read_log(tmp_path / "automations.sqlite")
    assert [r["rule"] for r in rows] == ["garage", "warm seat when power is cheap"]
    assert rows[0]["outcomes"] == ["publish done", "notify done"]
    assert rows[1]["outcomes"] == ["set done"] and rows[1]["actions"][0]["targets"] == {HEATING: 50}


WAITING = f"""
zones:
  home: {{latitude: 48.1371, longitude: 11.5754, radius_m: 80}}
publish_wait_s: WAIT
rules:
  - name: garage
    when: {{enters: home}}
    do:
      - publish: {{topic: test/home/garage/set, payload: OPEN, retain: true}}
  - name: warm seat on arrival
    when: {{enters: home}}
    do:
      - set: {{{HEATING}: 50}}
"""


async def test_a_publish_waits_for_the_home_server_a_bounded_time(server: Mosquitto, tmp_path: Path) -> None:
    """The home's server is down when the car arrives: the garage's publish waits for it (the seat does not wait for
    the publish) and goes out once the server is back; with a short wait it fails, logged, and is never sent."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(WAITING.replace("WAIT", "20"))
    settings = CarSettings(mqtt=server.url, automations=str(rules))
    apps = [app_named(name) for name in ("twin", "body", "automations")]
    server.stop()
    log = tmp_path / "automations.sqlite"
    async with local_car(apps, tmp_path, settings) as car:
        car.broker.publish({LAT: 48.1500, LON: 11.5754})
        car.broker.publish({LAT: 48.1372, LON: 11.5755})  # home, the server down
        await _until(lambda: car.broker.get(HEATING).value == 50, "the seat, not held back by the publish")
        await _until(lambda: len(read_log(log)) == 2, "both firings logged")
        garage = next(r for r in read_log(log) if r["rule"] == "garage")
        assert garage["outcomes"] is None  # still waiting
        await asyncio.to_thread(server.start)
        await _until(lambda: next(r for r in read_log(log) if r["rule"] == "garage")["outcomes"], "the publish",
                     timeout_s=20)
        async with home_client(server, ("test/home/garage/set",)) as home:
            await _until(lambda: "test/home/garage/set" in home.latest, "the retained garage command")
        assert home.latest["test/home/garage/set"] == b"OPEN"
    assert next(r for r in read_log(log) if r["rule"] == "garage")["outcomes"] == ["publish done"]


async def test_a_publish_fails_when_the_home_server_stays_away(server: Mosquitto, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WAITING.replace("WAIT", "0.5") + """\
  - name: back online
    when: {becomes: "home.ping = true"}
    do:
      - publish: {topic: test/home/garage/set, payload: PING}
home:
  ping: {topic: test/home/ping, type: bool}
""")
    settings = CarSettings(mqtt=server.url, automations=str(rules))
    server.stop()
    log = tmp_path / "automations.sqlite"
    async with local_car([app_named(n) for n in ("twin", "body", "automations")], tmp_path, settings) as car:
        car.broker.publish({LAT: 48.1500, LON: 11.5754})
        car.broker.publish({LAT: 48.1372, LON: 11.5755})
        await _until(lambda: len(read_log(log)) == 2 and all(r["outcomes"] for r in read_log(log)), "the log")
        await asyncio.to_thread(server.start)
        async with home_client(server, ("test/home/garage/set",)) as home:
            # retained: the app reads it once it is connected again, and says so on the garage's topic
            await home.send("test/home/ping", "true", retain=True)
            await _until(lambda: "test/home/garage/set" in home.latest, "the app back online", timeout_s=40)
        assert [p for t, p, _ in home.seen if t == "test/home/garage/set"] == [b"PING"]  # the OPEN never went out
    garage = next(r for r in read_log(log) if r["rule"] == "garage")
    assert garage["outcomes"] == ["publish failed: the MQTT server was not connected within 0.5 s"]
