"""A real car for the cabin tests: the broker with the VSS catalog and both overlays, the twin, the body hardware
and the cabin service, running in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from cabin.media_files import make_library, make_videos
from evos.broker import Broker
from evos.cabin import CABIN_OVERLAY, CabinService
from evos.twin import TWIN_OVERLAY, BodyProvider, Controls, TwinProvider, load_vehicle
from evos.vss import load_catalog


@dataclass
class Car:
    broker: Broker
    twin: TwinProvider
    cabin: CabinService
    stop: asyncio.Event

    def value(self, path: str) -> object:
        return self.broker.get(path).value

    def target(self, path: str) -> object:
        return self.broker.get_target(path).value


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(overlays=[TWIN_OVERLAY, CABIN_OVERLAY])


@pytest.fixture
async def car(catalog, tmp_path: Path) -> AsyncIterator[Car]:
    broker = Broker(catalog)
    twin = TwinProvider(broker, load_vehicle("xiaomi-su7"), None, Controls(ambient_c=10.0), vehicle_ref="xiaomi-su7")
    body = BodyProvider(broker, None, on_load=twin.set_cabin_load)
    make_library(tmp_path / "media")
    make_videos(tmp_path / "media")  # films for the cinema scene
    cabin = CabinService(broker, tmp_path, on_load=partial(twin.set_cabin_load, source="media"))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(app.run(stop)) for app in (twin, body, cabin)]
    await cabin.ready()
    yield Car(broker, twin, cabin, stop)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
