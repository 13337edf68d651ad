"""The bridge's tests: a real mosquitto per test, the car in this process with the bridge as one of its apps, and
a home's MQTT client (aiomqtt) that records what it sees."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ecosystem.mosquitto import Mosquitto, fresh_server
from evos.app import CarSettings
from evos.car import LocalCar, app_named, local_car

BASE = "evos/car"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from fresh_server(tmp_path)


@dataclass
class Home:
    """A home's client on the server: every message it saw, latest per topic, and the bridge's error replies."""

    client: aiomqtt.Client
    latest: dict[str, bytes] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    seen: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def state(self, path_or_topic: str) -> str | None:
        topic = path_or_topic if "/" in path_or_topic else f"{BASE}/" + path_or_topic.replace(".", "/")
        payload = self.latest.get(topic)
        return None if payload is None else payload.decode()

    async def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def command(self, path: str, payload: str) -> None:
        await self.send(f"{BASE}/{path.replace('.', '/')}/set", payload)


@contextlib.asynccontextmanager
async def home_client(server: Mosquitto, topics: tuple[str, ...] = (f"{BASE}/#", "homeassistant/#"),
                      username: str | None = None, password: str | None = None) -> AsyncIterator[Home]:
    async with aiomqtt.Client("127.0.0.1", server.port, identifier=f"home-{id(server)}", username=username,
                              password=password) as client:
        home = Home(client)
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def listen() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                topic = str(message.topic)
                home.seen.append((topic, payload, bool(message.retain)))
                home.latest[topic] = payload
                if topic == f"{BASE}/error":
                    home.errors.append(json.loads(payload))

        task = asyncio.create_task(listen())
        try:
            yield home
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def bridged_car(server: Mosquitto, data_dir: Path, config: Path | None = None, plugged_in: bool = False,
                      apps: tuple[str, ...] = ("twin", "body", "cabin")) -> AsyncIterator[LocalCar]:
    """The parked car (``apps``) and its MQTT bridge, in this process, on ``server`` (or on the server of the
    bridge's ``config`` file)."""
    settings = CarSettings(mqtt=None if config else server.url, mqtt_config=str(config) if config else None,
                           plugged_in=plugged_in)
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    async with local_car([app_named(name) for name in (*apps, "mqtt")], data_dir, settings) as car:
        await asyncio.wait_for(car.app("mqtt").connected.wait(), 10)
        yield car
