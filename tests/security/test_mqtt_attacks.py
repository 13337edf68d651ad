"""The MQTT entrance under attack: every hostile or malformed command of data/mqtt_attacks.yaml (written apart from
the bridge, see its README) gets exactly one error reply with the expected code, naming what was wrong, and changes
nothing in the car; a retained one is also cleared from the server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from ecosystem.conftest import BASE, Home, bridged_car, home_client
from ecosystem.mosquitto import Mosquitto
from evos.broker import JOURNAL_NAME, read_journal
from evos.vss import EntryType

ATTACKS = Path(__file__).parent / "data" / "mqtt_attacks.yaml"
REPLY_TIMEOUT_S = 5.0


def payload_of(attack: dict[str, Any]) -> bytes:
    if "payload_hex" in attack:
        return bytes.fromhex(attack["payload_hex"])
    if "payload_repeat" in attack:
        repeat = attack["payload_repeat"]
        return (repeat["text"] * repeat["times"]).encode()
    return str(attack["payload"]).encode()


def verdict(attack: dict[str, Any], replies: list[dict[str, Any]]) -> str | None:
    """What is wrong with the bridge's replies to one attack; None when it answered as expected."""
    if len(replies) != 1:
        return f"{len(replies)} replies: {replies}"
    reply = replies[0]
    if reply["code"] != attack["expect"]:
        return f"code {reply['code']!r}, expected {attack['expect']!r}: {reply['message']}"
    missing = [word for word in attack.get("mentions", []) if word.lower() not in reply["message"].lower()]
    if missing:
        return f"the message does not mention {missing}: {reply['message']}"
    return None


async def retained_commands(server: Mosquitto) -> list[str]:
    """The command topics the server still keeps retained (a fresh subscriber gets them at once)."""
    found: list[str] = []
    async with aiomqtt.Client("127.0.0.1", server.port, identifier="attack-retained-check") as client:
        await client.subscribe(f"{BASE}/#", qos=1)
        try:
            while True:
                message = await asyncio.wait_for(anext(client.messages), 1.0)
                if message.retain and str(message.topic).endswith("/set") and message.payload:
                    found.append(str(message.topic))
        except TimeoutError:
            return found


async def test_every_attack_gets_its_error_and_changes_nothing(mqtt_server: Mosquitto, tmp_path: Path) -> None:
    attacks = yaml.safe_load(ATTACKS.read_text())
    assert len(attacks) == len({a["id"] for a in attacks}) >= 180
    async with (bridged_car(mqtt_server, tmp_path, apps=("twin", "body", "cabin", "adas")) as car,
                home_client(mqtt_server, topics=(f"{BASE}/error",)) as home):
        actuators = [s.path for s in car.broker.catalog.signals.values() if s.entry_type is EntryType.ACTUATOR]
        before = {path: car.value(path) for path in actuators}
        failures: dict[str, str] = {}
        for attack in attacks:
            failure = await attempt(home, attack)
            if failure is not None:
                failures[attack["id"]] = failure
        await asyncio.sleep(0.5)  # a late second reply would show here
        replies = len(home.errors)
        changed = {path: (value, car.value(path)) for path, value in before.items() if car.value(path) != value}
        rows = read_journal(tmp_path / JOURNAL_NAME, limit=10_000)
    assert failures == {}, json.dumps(failures, indent=1, ensure_ascii=False)
    assert replies == len(attacks), "replies beyond one per attack"
    assert changed == {}
    assert [row for row in rows if row["result"] == "completed"] == []
    assert len(rows) == len(attacks)  # each refusal journaled
    assert await retained_commands(mqtt_server) == []


async def attempt(home: Home, attack: dict[str, Any]) -> str | None:
    seen = len(home.errors)
    await home.send(attack["topic"], payload_of(attack), retain=bool(attack.get("retain", False)))
    deadline = asyncio.get_running_loop().time() + REPLY_TIMEOUT_S
    while len(home.errors) == seen:
        if asyncio.get_running_loop().time() > deadline:
            return "no reply"
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    return verdict(attack, [reply for reply in home.errors[seen:] if reply["topic"] == attack["topic"]])
