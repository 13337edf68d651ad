"""The centre screen's view of the car: what it shows and does, on a vehicle-data port.

It runs in the web server's process (``centre_screen`` gives the router ``evos.companion`` mounts at ``/cabin``)
and talks to the car only through the port: the values it shows come from a mirror, scenes and actuations go to
their apps, and a forecast or an answer of the assistant (which may forecast) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evos.app import AppEnv
from evos.broker import Mirror, VehiclePort
from evos.cabin._assistant import READS, Answer, Assistant, act
from evos.cabin._engine import SceneEngine
from evos.cabin._forecast import INPUTS, Forecast, forecast
from evos.cabin._media import HANDOVER, MEDIA
from evos.cabin._scenes import Scene, load_scenes
from evos.cabin._service import (
    DEFAULT_VEHICLE,
    REASON,
    REMAINING,
    SCENE,
    STATUS,
    TIMER,
    TWIN_VEHICLE,
    body_actuators,
    catalog_of,
    vehicle_for,
)
from evos.twin import Vehicle
from evos.vss import Value

if TYPE_CHECKING:
    from fastapi import APIRouter

MEDIA_PATHS = (f"{MEDIA}.Played.Track", f"{MEDIA}.Played.Artist", f"{MEDIA}.Played.Album", f"{MEDIA}.Played.URI",
               f"{MEDIA}.Played.Source", f"{MEDIA}.Action", "Vehicle.Evos.Cabin.Media.Position",
               "Vehicle.Evos.Cabin.Media.Duration", "Vehicle.Evos.Cabin.Media.Kind",
               "Vehicle.Evos.Cabin.Media.VideoResolution")
STATE_PATHS = (
    SCENE, STATUS, REASON, REMAINING, TIMER, "Vehicle.Evos.Cabin.DoNotDisturb", "Vehicle.Evos.Cabin.Hotspot.IsEnabled",
    "Vehicle.Evos.Cabin.Screen.Message", "Vehicle.Cabin.HVAC.IsAirConditioningActive", *MEDIA_PATHS, *READS,
    *(f"Vehicle.Cabin.Seat.Row1.{side}.HeatingCooling" for side in ("DriverSide", "PassengerSide")),
)


@dataclass(frozen=True)
class Handover:
    """The phone's track to take over (``Vehicle.Evos.Cabin.Media.Handover``)."""

    uri: str
    position_s: float
    title: str = ""
    artist: str = ""
    album: str = ""
    duration_s: float = 0.0


class CentreScreen:
    """The centre screen on a vehicle-data port; ``start()`` before use, ``stop()`` after."""

    def __init__(self, port: VehiclePort, data_dir: Path | None = None, reserve_soc_pct: float = 20.0,
                 vehicle: str = DEFAULT_VEHICLE) -> None:
        self.port = port
        self.data_dir = data_dir
        self.vehicle_name = vehicle
        self.scenes: dict[str, Scene] = {}
        self.engine = SceneEngine({}, reserve_soc_pct)  # for the scenes' reserves (the cabin app runs them)
        self.assistant = Assistant({}, self.vehicle, reserve_soc_pct)
        self._mirror: Mirror | None = None
        self._body_paths: tuple[str, ...] = ()

    async def start(self) -> None:
        catalog = await catalog_of(self.port)
        def load() -> tuple[dict[str, Scene], Assistant]:  # scene files and the assistant's language data: a thread's
            scenes = load_scenes(catalog, self.data_dir / "scenes" if self.data_dir else None)
            return scenes, Assistant(scenes, self.vehicle, self.engine.reserve_soc_pct, catalog=catalog)

        self.scenes, self.assistant = await asyncio.to_thread(load)
        self.engine = SceneEngine(self.scenes, self.engine.reserve_soc_pct)
        self._body_paths = body_actuators(catalog)
        wanted = dict.fromkeys((*STATE_PATHS, *INPUTS, *READS, *self._body_paths, TWIN_VEHICLE))
        self._mirror = await Mirror(self.port, [p for p in wanted if p in catalog]).start()

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()

    def values(self, paths: tuple[str, ...]) -> dict[str, Value | None]:
        assert self._mirror is not None, "start() first"
        return self._mirror.values(paths)

    def vehicle(self) -> Vehicle:
        return vehicle_for(self.values((TWIN_VEHICLE,)).get(TWIN_VEHICLE), self.vehicle_name)

    def _inputs(self) -> dict[str, Value | None]:
        return self.values((*INPUTS, *self._body_paths, *READS))

    async def forecast(self, name: str) -> Forecast:
        """The forecast for scene ``name`` (InvalidArgumentError naming the scenes if there is none)."""
        scene = self.engine.scene(name)
        reserve = self.engine.reserve_for(scene)
        return await asyncio.to_thread(forecast, self.vehicle(), scene, self._inputs(), reserve)

    async def enter(self, name: str) -> dict[str, Value | None]:
        """Ask the cabin to enter (or leave, ``NONE``) a scene; the scene signals after it answered."""
        await self.port.actuate({SCENE: name})
        return {p: dp.value for p, dp in (await self.port.get_many((SCENE, STATUS, REASON))).items()}

    async def actuate(self, targets: dict[str, Any]) -> None:
        await self.port.actuate(targets)

    async def ask(self, text: str, dry_run: bool) -> Answer:
        """The assistant's answer to ``text`` (carried out unless ``dry_run``)."""
        named = await self.port.get_many(self.assistant.paths)  # every signal it may name: read when asked
        values = {**{p: dp.value for p, dp in named.items()}, **self._inputs()}
        answer = await asyncio.to_thread(self.assistant.answer, text, values)
        return answer if dry_run else await act(self.port, answer)

    async def handover(self, handover: Handover) -> dict[str, Value | None]:
        """Hand the phone's track over to the car's media player; what it plays then."""
        await self.port.actuate({HANDOVER: json.dumps(handover.__dict__)})
        return {p: dp.value for p, dp in (await self.port.get_many(MEDIA_PATHS)).items()}


@asynccontextmanager
async def centre_screen(port: VehiclePort, env: AppEnv) -> AsyncIterator[APIRouter]:
    """The centre screen's router (for the web server of ``evos.companion``), for as long as the context lasts."""
    def router() -> APIRouter:  # the web stack's import and its routes' models take a while: off the event loop
        from evos.cabin._web import cabin_router

        return cabin_router(screen)

    screen = CentreScreen(port, env.data_dir, vehicle=env.settings.vehicle)
    await screen.start()
    try:
        yield await asyncio.to_thread(router)
    finally:
        await screen.stop()
