"""A real car for the cabin tests: the twin, the body hardware, the media player and the cabin, each an app on its
own port of one broker (with the permissions its token would carry in ``evos up``), in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cabin.media_files import make_library, make_videos
from evos.app import CarSettings
from evos.broker import Broker
from evos.cabin import CABIN_APP, CABIN_OVERLAY, MEDIA_APP, CabinService, MediaService
from evos.car import LocalCar, local_car
from evos.twin import BODY_APP, TWIN_APP, TWIN_OVERLAY
from evos.vss import load_catalog


@dataclass
class Car:
    local: LocalCar

    @property
    def broker(self) -> Broker:
        return self.local.broker

    @property
    def twin(self) -> Any:
        return self.local.app("twin")

    @property
    def cabin(self) -> CabinService:
        cabin: CabinService = self.local.app("cabin")
        return cabin

    @property
    def media(self) -> MediaService:
        media: MediaService = self.local.app("media")
        return media

    def value(self, path: str) -> object:
        return self.broker.get(path).value

    def target(self, path: str) -> object:
        return self.broker.get_target(path).value


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(overlays=[TWIN_OVERLAY, CABIN_OVERLAY])


@pytest.fixture
async def car(tmp_path: Path) -> AsyncIterator[Car]:
    make_library(tmp_path / "media")
    make_videos(tmp_path / "media")  # films for the cinema scene
    async with local_car([TWIN_APP, BODY_APP, MEDIA_APP, CABIN_APP], tmp_path, CarSettings(ambient_c=10.0)) as local:
        yield Car(local)
