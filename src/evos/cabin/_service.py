"""The cabin as part of the running car: the scene engine and the media service on an in-process broker.

``CabinService`` claims the overlay's cabin actuators (``Vehicle.Evos.Cabin.Scene``, do-not-disturb,
hotspot, screen message) and the media actuators, follows the target requests of every path a scene
sets (to tell the user's manual changes from its own), and at 5 Hz checks the scene's end conditions
(moving, wake-up timer, reserve, empty cabin) and publishes its status and energy forecast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from evos.broker import Broker, Subscription
from evos.cabin._engine import Conditions, SceneEngine, SceneRefusedError
from evos.cabin._forecast import BRIGHTNESS, INPUTS, MEDIA_ACTION, SOC, Forecast, forecast, media_load_w
from evos.cabin._media import MediaLibrary, MediaService
from evos.cabin._scenes import Scene, load_scenes
from evos.errors import EvosError, InvalidArgumentError, UnavailableError
from evos.twin import Vehicle, load_vehicle
from evos.vss import EntryType, Value

ACTUATOR = EntryType.ACTUATOR

log = logging.getLogger("evos.cabin")

OVERLAY = Path(str(resources.files("evos.cabin").joinpath("data", "cabin-overlay.vspec")))
CABIN = "Vehicle.Evos.Cabin"
SCENE, STATUS, REASON = f"{CABIN}.Scene", f"{CABIN}.SceneStatus", f"{CABIN}.SceneReason"
REMAINING, TIMER = f"{CABIN}.SceneRemainingTime", f"{CABIN}.SceneTimerRemaining"
MEDIA_LOAD = f"{CABIN}.MediaLoadPower"
MESSAGE = f"{CABIN}.Screen.Message"
MESSAGE_MAX_CHARS = 500  # what the centre screen can show for passers-by (assumed: a few lines of large text)
FEATURES = (f"{CABIN}.DoNotDisturb", f"{CABIN}.Hotspot.IsEnabled", MESSAGE)
SPEED, GEAR = "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear"
OCCUPANCY = tuple(f"Vehicle.Cabin.Seat.Row1.{side}.OccupancyStatus" for side in ("DriverSide", "PassengerSide"))
TWIN_VEHICLE = "Vehicle.Evos.Twin.Vehicle"
TIME_SCALE = "Vehicle.Evos.Twin.TimeScale"
DEFAULT_VEHICLE = "xiaomi-su7"
RATE_HZ = 5.0
# One signal each of the twin, the body hardware, the media service and this service: once all have values, the
# car in this process has started (``CabinService.ready``).
READY = (SOC, "Vehicle.Powertrain.Range", "Vehicle.Cabin.Seat.Row1.DriverSide.Backrest.Recline", MEDIA_ACTION, STATUS)
FORECAST_EVERY_S = 10.0  # the forecast runs the twin's model (tens of ms): refresh it now and then


@lru_cache(maxsize=8)
def _vehicle(name: str) -> Vehicle:
    return load_vehicle(name)


def vehicle_for(published: Value | None, fallback: str = DEFAULT_VEHICLE) -> Vehicle:
    """The car the twin says it runs (``Vehicle.Evos.Twin.Vehicle``), else ``fallback``."""
    try:
        return _vehicle(str(published)) if published else _vehicle(fallback)
    except EvosError as exc:  # a vehicle file this process cannot read: forecast with the fallback, and say so
        log.warning("cabin: forecasting with %s: the twin's vehicle %r cannot be loaded here: %s", fallback,
                    published, exc)
        return _vehicle(fallback)


class CabinService:
    """Scenes and media on an in-process broker whose catalog carries ``CABIN_OVERLAY``.

    ``data_dir``: user scenes are read from ``data_dir/scenes`` and the media library is ``data_dir/media``
    (``media_dir`` overrides it). ``reserve_soc_pct``: scenes end when the SoC falls to it. ``on_load``: called
    with the media load in W (``media_load_w``) whenever it changes, for the twin's energy budget; the load is
    also published as ``Vehicle.Evos.Cabin.MediaLoadPower``.
    """

    def __init__(self, broker: Broker, data_dir: Path | None = None, reserve_soc_pct: float = 20.0,
                 media_dir: Path | None = None, vehicle: str = DEFAULT_VEHICLE,
                 on_load: Callable[[float], None] | None = None) -> None:
        self.broker = broker
        self.on_load = on_load
        self.scenes = load_scenes(broker.catalog, data_dir / "scenes" if data_dir else None)
        self.engine = SceneEngine(self.scenes, reserve_soc_pct)
        self.library = MediaLibrary(media_dir or (data_dir / "media" if data_dir else None))
        self.vehicle_name = vehicle
        self._forecast: Forecast | None = None
        self._forecast_at = -float("inf")
        self._wall_s = time.monotonic()
        self._car_s = 0.0  # the car's clock: wall time times the twin's time scale
        self._published: dict[str, Value] = {}
        self._targets: Subscription | None = None
        self._scene_paths = tuple(sorted({p for s in self.scenes.values() for p in s.set}))
        self._body_paths = tuple(p for p, s in broker.catalog.signals.items()
                                 if p.startswith(("Vehicle.Cabin.", "Vehicle.Body.")) and s.entry_type is ACTUATOR)
        self.media = MediaService(broker, self.library)
        self._provision = broker.provide([SCENE, *FEATURES], self._on_actuate, check=self._check)

    # --- reading the car --------------------------------------------------------------------------------
    def values(self, paths: tuple[str, ...]) -> dict[str, Value | None]:
        known = [p for p in paths if p in self.broker.catalog.signals]
        return {p: dp.value for p, dp in self.broker.get_many(known).items()}

    def conditions(self, runtime_s: float | None = None) -> Conditions:
        v = self.values((SPEED, GEAR, SOC, *OCCUPANCY))
        occupancy = [v.get(p) for p in OCCUPANCY]
        speed, gear, soc = v.get(SPEED), v.get(GEAR), v.get(SOC)
        return Conditions(
            speed_kmh=float(speed) if isinstance(speed, int | float) else None,
            gear=int(gear) if isinstance(gear, int) else None,
            soc_pct=float(soc) if isinstance(soc, int | float) else None,
            occupied=not all(o == "EMPTY" for o in occupancy), runtime_s=runtime_s)

    def now(self) -> float:
        """The car's time, s: wall time run at the twin's ``Vehicle.Evos.Twin.TimeScale``, so that a scene's
        wake-up timer keeps pace with the twin's battery drain when a test or a demo speeds the car up."""
        wall = time.monotonic()
        scale = self.values((TIME_SCALE,)).get(TIME_SCALE)
        self._car_s += (wall - self._wall_s) * (float(scale) if isinstance(scale, int | float) else 1.0)
        self._wall_s = wall
        return self._car_s

    def vehicle(self) -> Vehicle:
        return vehicle_for(self.values((TWIN_VEHICLE,)).get(TWIN_VEHICLE), self.vehicle_name)

    def forecast(self, name: str | None = None) -> Forecast:
        """Forecast for scene ``name`` (default: the active scene, else the cabin as it is)."""
        active = self.engine.active
        scene: Scene | None = self.engine.scene(name) if name else (active.scene if active else None)
        reserve = self.engine.reserve_for(scene) if scene else self.engine.reserve_soc_pct
        return forecast(self.vehicle(), scene, self.forecast_inputs(), reserve)

    def forecast_inputs(self) -> dict[str, Value | None]:
        """The broker values a forecast starts from: battery, temperatures, climate and every body actuator."""
        return self.values((*INPUTS, *self._body_paths))

    # --- requests ----------------------------------------------------------------------------------------
    def _check(self, batch: dict[str, Any]) -> None:
        message = batch.get(MESSAGE)
        if isinstance(message, str) and len(message) > MESSAGE_MAX_CHARS:
            raise InvalidArgumentError(f"{MESSAGE}: {len(message)} characters, at most {MESSAGE_MAX_CHARS}",
                                       path=MESSAGE)
        name = batch.get(SCENE)
        if name is None or name == "NONE":
            return
        scene = self.engine.scene(name)
        refusal = self.engine.refusal(scene, self.conditions())
        if refusal is not None:
            self.engine.status, self.engine.reason = "REFUSED", refusal
            self._publish_status()
            raise SceneRefusedError(refusal, path=SCENE)
        for path, value in scene.set.items():  # unknown paths, bad values, missing providers: refuse now
            if path not in batch:
                self.broker.check_target(path, value)

    def _on_actuate(self, batch: dict[str, Any]) -> None:
        features = {p: v for p, v in batch.items() if p in FEATURES}
        if features:
            self.broker.set_many(features)
        name = batch.get(SCENE)
        if name is None:
            return
        self._take_targets()  # a manual change requested just before must count as one
        if name == "NONE":
            self._send(self.engine.exit())
        else:
            current = self.values(tuple(self.engine.scene(name).set))
            before = {p: v if v is not None else self.broker.get_target(p).value for p, v in current.items()}
            self._send(self.engine.enter(name, self.now(), before, self.conditions()))
        # a first forecast now, so the status right after entering tells the time left, not 0 or the last scene's;
        # the next tick refreshes it once the scene's settings have reached the hardware
        self._forecast = self.forecast() if self.engine.active else None
        self._forecast_at = -float("inf")
        self._publish_status()

    def _send(self, requests: dict[str, Value]) -> None:
        if not requests:
            return
        try:
            self.broker.batch_actuate(requests)
        except EvosError as exc:
            self.engine.forget(requests)
            self.engine.reason = f"{self.engine.reason}; some settings failed: {exc}"
            log.error("cabin: %s", exc)

    # --- the loop -----------------------------------------------------------------------------------------
    def _publish_status(self) -> None:
        engine = self.engine
        now = self.now()
        values: dict[str, Value] = {
            SCENE: engine.active.scene.name if engine.active else "NONE",
            STATUS: engine.status, REASON: engine.reason,
        }
        # 0 = none: no scene, or a scene without a wake-up timer (a value left over from the last scene misleads)
        timer = engine.timer_remaining_s(now)
        values[TIMER] = int(timer) if timer is not None else 0
        values[REMAINING] = int(self._forecast.runtime_s) if self._forecast and engine.active else 0
        if MEDIA_LOAD in self.broker.catalog.signals:
            values[MEDIA_LOAD] = media_load_w(self.values((MEDIA_ACTION, BRIGHTNESS)))
        changed = {p: v for p, v in values.items() if self._published.get(p) != v}
        if changed:
            self.broker.set_many(changed)
            self._published.update(changed)
        if MEDIA_LOAD in changed and self.on_load is not None:
            self.on_load(float(changed[MEDIA_LOAD]))  # type: ignore[arg-type]

    def _take_targets(self) -> None:
        """Take in the target requests made since the last look (manual changes, or echoes of the engine's)."""
        while self._targets is not None and (batch := self._targets.get_nowait()) is not None:
            for path, dp in batch.items():
                if dp.value is not None:
                    self._send(self.engine.on_target(path, dp.value))

    def step(self) -> None:
        """One tick: take in manual target changes, refresh the forecast, check the end conditions."""
        self._take_targets()
        wall = time.monotonic()
        if self.engine.active is not None and wall - self._forecast_at >= FORECAST_EVERY_S:
            self._forecast = self.forecast()
            self._forecast_at = wall
        runtime = self._forecast.runtime_s if self._forecast and self.engine.active else None
        self._send(self.engine.check(self.now(), self.conditions(runtime)))
        self._publish_status()

    async def ready(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until the twin, the body hardware, the media service and this service have published
        their first values. Raises UnavailableError naming the signals still missing after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while missing := [p for p, v in self.values(READY).items() if v is None]:
            if time.monotonic() > deadline:
                raise UnavailableError(f"the car did not start within {timeout_s:.0f} s: no value yet for "
                                       f"{', '.join(missing)}")
            await asyncio.sleep(0.01)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the scene engine and the media service until ``stop`` is set."""
        self.broker.set_many({p: v for p, v in ((f, False) for f in FEATURES[:2])
                              if self.broker.get(p).value is None})
        self._publish_status()
        paths = tuple(p for p in self._scene_paths if p in self.broker.catalog.signals)
        media = asyncio.create_task(self.media.run(stop))
        try:
            with self.broker.subscribe_paths(paths, field="target") as targets:
                targets.get_nowait()  # the first batch is the targets as they were: not a change
                self._targets = targets
                while not stop.is_set():
                    self.step()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1 / RATE_HZ)
        finally:
            self._targets = None
            if self.engine.active is not None:  # restore the cabin while its hardware is still there
                try:
                    self.broker.batch_actuate(self.engine.exit("the cabin service stopped"))
                except EvosError as exc:
                    log.info("cabin: the cabin could not be restored at shutdown: %s", exc)
            await media
            self._provision.close()
