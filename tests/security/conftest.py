"""Fixtures of the attack suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from companion.car import Car, start_car
from ecosystem.mosquitto import Mosquitto, fresh_server


@pytest.fixture
async def car(tmp_path: Path) -> AsyncIterator[Car]:
    """The car in-process, its companion on 127.0.0.1 and the cabin's centre screen under ``/cabin`` (for the
    files that have no ``car`` of their own)."""
    car = await start_car(tmp_path, cabin=True)
    try:
        yield car
    finally:
        await car.shutdown()


@pytest.fixture
def mqtt_server(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh mosquitto on 127.0.0.1 for the MQTT entrance's attacks."""
    yield from fresh_server(tmp_path)
