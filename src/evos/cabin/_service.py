"""The cabin as an app of the running car: the scene engine on the vehicle-data port.

``CabinService`` claims the overlay's cabin actuators (``Vehicle.Evos.Cabin.Scene``, do-not-disturb, hotspot,
screen message), follows the target requests of every path a scene sets (to tell the user's manual changes from
its own), and at 5 Hz checks the scene's end conditions (moving, wake-up timer, reserve, empty cabin) and publishes
its status and energy forecast. Entering a scene is checked at once (a scene that may not start now is refused,
its reason published); its settings then go out as one actuation, answered once they did, and what the car
refused of them is told in ``SceneReason``. The forecast runs off the event loop, cached by its inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from evos.app import App, AppEnv, Grants, everything, paths_in
from evos.broker import Datapoint, Mirror, VehiclePort
from evos.cabin._engine import Conditions, SceneEngine, SceneRefusedError, same
from evos.cabin._forecast import INPUTS, SOC, Forecast, forecast
from evos.cabin._scenes import Scene, forbidden, load_scenes
from evos.errors import EvosError, InvalidArgumentError
from evos.twin import Vehicle, load_vehicle
from evos.vss import Catalog, EntryType, Value

log = logging.getLogger("evos.cabin")

OVERLAY = Path(str(resources.files("evos.cabin").joinpath("data", "cabin-overlay.vspec")))
CABIN = "Vehicle.Evos.Cabin"
SCENE, STATUS, REASON = f"{CABIN}.Scene", f"{CABIN}.SceneStatus", f"{CABIN}.SceneReason"
REMAINING, TIMER = f"{CABIN}.SceneRemainingTime", f"{CABIN}.SceneTimerRemaining"
SCENES = f"{CABIN}.Scenes"
MESSAGE = f"{CABIN}.Screen.Message"
MESSAGE_MAX_CHARS = 500  # what the centre screen can show for passers-by (assumed: a few lines of large text)
FEATURES = (f"{CABIN}.DoNotDisturb", f"{CABIN}.Hotspot.IsEnabled", MESSAGE)
SPEED, GEAR = "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear"
OCCUPANCY = tuple(f"Vehicle.Cabin.Seat.Row1.{side}.OccupancyStatus" for side in ("DriverSide", "PassengerSide"))
TWIN_VEHICLE = "Vehicle.Evos.Twin.Vehicle"
TIME_SCALE = "Vehicle.Evos.Twin.TimeScale"
DEFAULT_VEHICLE = "xiaomi-su7"
RATE_HZ = 5.0
FORECAST_EVERY_S = 10.0  # the active scene's forecast is refreshed this often (a cached one costs nothing)


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


async def catalog_of(port: VehiclePort) -> Catalog:
    """The catalog as the car's broker serves it (its metadata), for checking scene files against."""
    return Catalog({s.path: s for s in await port.signals()})


def body_actuators(catalog: Catalog) -> tuple[str, ...]:
    """The body and cabin actuators: what a scene may change and the forecast counts the loads of."""
    return tuple(p for p, s in catalog.signals.items()
                 if p.startswith(("Vehicle.Cabin.", "Vehicle.Body.")) and s.entry_type is EntryType.ACTUATOR)


def conditions_of(values: dict[str, Value | None], runtime_s: float | None = None) -> Conditions:
    """The engine's view of the car from its signals (``SPEED``, ``GEAR``, ``SOC``, ``OCCUPANCY``)."""
    occupancy = [values.get(p) for p in OCCUPANCY]
    speed, gear, soc = values.get(SPEED), values.get(GEAR), values.get(SOC)
    return Conditions(
        speed_kmh=float(speed) if isinstance(speed, int | float) else None,
        gear=int(gear) if isinstance(gear, int) else None,
        soc_pct=float(soc) if isinstance(soc, int | float) else None,
        occupied=not all(o == "EMPTY" for o in occupancy), runtime_s=runtime_s)


class CabinService:
    """Scenes on a vehicle-data port whose car carries ``CABIN_OVERLAY``.

    ``data_dir``: user scenes are read from ``data_dir/scenes``. ``reserve_soc_pct``: scenes end when the SoC
    falls to it. ``vehicle``: the car to forecast for when the twin does not name one.
    """

    def __init__(self, port: VehiclePort, data_dir: Path | None = None, reserve_soc_pct: float = 20.0,
                 vehicle: str = DEFAULT_VEHICLE) -> None:
        self.port = port
        self.data_dir = data_dir
        self.reserve_soc_pct = reserve_soc_pct
        self.vehicle_name = vehicle
        self.scenes: dict[str, Scene] = {}
        self.engine = SceneEngine({}, reserve_soc_pct)
        self._inputs: Mirror | None = None
        self._forecast: Forecast | None = None
        self._forecasting: asyncio.Task[None] | None = None
        self._forecast_at = -float("inf")
        self._wall_s = time.monotonic()
        self._car_s = 0.0  # the car's clock: wall time times the twin's time scale
        self._published: dict[str, Value] = {}
        self._targets: asyncio.Queue[dict[str, Datapoint]] = asyncio.Queue()  # target requests seen, to take in
        self._last_targets: dict[str, Value] = {}  # the last target taken in, per scene path
        self._last_target_s: dict[str, float] = {}  # and when it was requested (an older one seen later: stale)
        self._changing = asyncio.Lock()  # one scene transition at a time
        self._outgoing: asyncio.Queue[dict[str, Value]] = asyncio.Queue()  # the engine's requests, in order
        self._scene_paths: tuple[str, ...] = ()
        self._body_paths: tuple[str, ...] = ()

    # --- reading the car --------------------------------------------------------------------------------
    def values(self, paths: tuple[str, ...]) -> dict[str, Value | None]:
        assert self._inputs is not None, "start() first"
        return self._inputs.values(paths)

    def conditions(self, runtime_s: float | None = None) -> Conditions:
        return conditions_of(self.values((SPEED, GEAR, SOC, *OCCUPANCY)), runtime_s)

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
        """Forecast for scene ``name`` (default: the active scene, else the cabin as it is); blocks for as long
        as the model runs (tens of ms, nothing when cached): call it off the event loop."""
        active = self.engine.active
        scene: Scene | None = self.engine.scene(name) if name else (active.scene if active else None)
        reserve = self.engine.reserve_for(scene) if scene else self.engine.reserve_soc_pct
        return forecast(self.vehicle(), scene, self.forecast_inputs(), reserve)

    def forecast_inputs(self) -> dict[str, Value | None]:
        """The values a forecast starts from: battery, temperatures, controls and every body actuator."""
        return self.values((*INPUTS, *self._body_paths))

    # --- requests ----------------------------------------------------------------------------------------
    def _on_actuate(self, batch: dict[str, Any]) -> Awaitable[None] | None:
        """Carry out a request for the cabin's actuators: a scene to enter (or ``NONE``: leave it) is answered once
        its settings went out (what the car refused of them is told in ``SceneReason``)."""
        message = batch.get(MESSAGE)
        if isinstance(message, str) and len(message) > MESSAGE_MAX_CHARS:
            raise InvalidArgumentError(f"{MESSAGE}: {len(message)} characters, at most {MESSAGE_MAX_CHARS}",
                                       path=MESSAGE)
        name = batch.get(SCENE)
        if name is not None and name != "NONE":
            scene = self.engine.scene(name)  # an unknown scene: refused, naming the scenes there are
            refusal = self.engine.refusal(scene, self.conditions())
            if refusal is not None:
                self.engine.status, self.engine.reason = "REFUSED", refusal
                self._publish_status()
                raise SceneRefusedError(refusal, path=SCENE)
        features = {p: v for p, v in batch.items() if p in FEATURES}
        if features:
            self.port.publish_nowait(features)
        return None if name is None else self._transition(name)

    async def _transition(self, name: str) -> None:
        """Enter scene ``name`` (``NONE``: leave the scene) and send its settings."""
        async with self._changing:
            # the targets requested before this request count first: a manual change just before leaving is kept
            targets = await self.port.get_targets(self._scene_paths)
            self._take_targets({p: dp for p, dp in targets.items() if dp.value is not None})
            if name == "NONE":
                requests = self.engine.exit()
            else:  # what the car has now (asked of the broker: a mirror may be a moment behind)
                current = await self.port.get_many(self.engine.scene(name).set)
                before = {p: dp.value if dp.value is not None else self._last_targets.get(p)
                          for p, dp in current.items()}
                requests = self.engine.enter(name, self.now(), before, self.conditions())
            self._forecast = None
            await self._carry_out(requests)
            if self.engine.active is not None:  # the status right after entering tells the time left, not 0
                try:
                    self._forecast = await asyncio.to_thread(self.forecast)
                except EvosError as exc:
                    log.warning("cabin: no forecast for %s: %s", name, exc)
                self._forecast_at = time.monotonic()
            self._publish_status()

    def _send(self, requests: dict[str, Value]) -> None:
        """Queue the engine's requests for the sender (the loop's: held paths, a scene that ended)."""
        if requests:
            self._outgoing.put_nowait(requests)

    async def _carry_out(self, requests: dict[str, Value]) -> None:
        """Send the engine's requests; what the car refuses is forgotten and said."""
        if not requests:
            return
        try:
            await self.port.actuate(requests)
        except EvosError as exc:
            self.engine.forget(requests)
            self.engine.reason = f"{self.engine.reason}; some settings failed: {exc}"
            log.error("cabin: %s", exc)
            self._publish_status()

    async def _sender(self) -> None:
        """Carry the engine's queued requests out, in order; then say the status they lead to (a scene that ended
        is ENDED once its restore went out, not before)."""
        while True:
            await self._carry_out(await self._outgoing.get())
            self._publish_status()

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
        changed = {p: v for p, v in values.items() if self._published.get(p) != v}
        if changed:
            self.port.publish_nowait(changed)
            self._published.update(changed)

    def _take_targets(self, snapshot: dict[str, Datapoint] | None = None) -> None:
        """Take in target requests (those the follower saw since the last look, then the broker's ``snapshot``):
        manual changes, or echoes of the engine's own. A target taken in already (the same value again), or one
        older than a target taken in (the follower is behind a snapshot), is not a new request."""
        batches = []
        while not self._targets.empty():
            batches.append(self._targets.get_nowait())
        if snapshot is not None:
            batches.append(snapshot)
        for batch in batches:
            for path, dp in batch.items():
                value, requested_s = dp.value, dp.timestamp_s
                assert value is not None
                if path in self._last_targets and (same(self._last_targets[path], value) or (
                        requested_s is not None and requested_s < self._last_target_s.get(path, requested_s))):
                    continue
                self._remember_target(path, dp)
                active = self.engine.active
                kept = active is not None and path in active.kept
                self._send(self.engine.on_target(path, value))
                if active is not None and not kept and path in active.kept:
                    log.info("cabin: %s set to %r by hand during %s: kept when it ends", path, value, active.scene.name)

    def _remember_target(self, path: str, dp: Datapoint) -> None:
        assert dp.value is not None
        self._last_targets[path] = dp.value
        if dp.timestamp_s is not None:
            self._last_target_s[path] = dp.timestamp_s

    async def _follow_targets(self) -> None:
        async with self.port.subscribe(self._scene_paths, field="target") as updates:
            first = True
            async for batch in updates:
                targets = {p: dp for p, dp in batch.items() if dp.value is not None}
                if first:  # the targets as they were: not changes
                    for path, dp in targets.items():
                        self._remember_target(path, dp)
                    first = False
                elif targets:
                    self._targets.put_nowait(targets)

    def _refresh_forecast(self) -> None:
        """Start a new forecast of the active scene off the event loop, when one is due."""
        wall = time.monotonic()
        if self.engine.active is None or wall - self._forecast_at < FORECAST_EVERY_S or (
                self._forecasting is not None and not self._forecasting.done()):
            return
        self._forecast_at = wall
        name = self.engine.active.scene.name

        async def run() -> None:
            try:
                result = await asyncio.to_thread(self.forecast, name)
            except EvosError as exc:
                log.warning("cabin: no forecast for %s: %s", name, exc)
                return
            if self.engine.active is not None and self.engine.active.scene.name == name:
                self._forecast = result
                self._publish_status()

        self._forecasting = asyncio.create_task(run(), name="cabin forecast")

    def step(self) -> None:
        """One tick: take in manual target changes, refresh the forecast, check the end conditions."""
        self._take_targets()
        self._refresh_forecast()
        runtime = self._forecast.runtime_s if self._forecast and self.engine.active else None
        ending = self.engine.check(self.now(), self.conditions(runtime))
        self._send(ending)
        if not ending:  # else the sender says it, once the restore went out
            self._publish_status()

    async def start(self) -> None:
        """Load the scenes against the car's catalog, follow the inputs and claim the cabin's actuators."""
        catalog = await catalog_of(self.port)
        self.scenes = await asyncio.to_thread(load_scenes, catalog, self.data_dir / "scenes" if self.data_dir else None)
        self.engine = SceneEngine(self.scenes, self.reserve_soc_pct)
        self._body_paths = body_actuators(catalog)
        self._scene_paths = tuple(sorted({p for s in self.scenes.values() for p in s.set if p in catalog}))
        wanted = (*INPUTS, *self._body_paths, *self._scene_paths, SPEED, GEAR, *OCCUPANCY, TWIN_VEHICLE, TIME_SCALE)
        self._inputs = await Mirror(self.port, [p for p in dict.fromkeys(wanted) if p in catalog]).start()
        await self.port.provide([SCENE, *FEATURES], self._on_actuate)
        defaults: dict[str, Value] = {p: False for p in FEATURES[:2] if (await self.port.get(p)).value is None}
        self.port.publish_nowait({**defaults, SCENES: tuple(sorted(self.scenes))})
        self._publish_status()

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Run the scene engine until ``stop`` is set; restore the cabin on the way out."""
        await self.start()
        tasks = [asyncio.create_task(self._follow_targets(), name="cabin targets"),
                 asyncio.create_task(self._sender(), name="cabin requests")]
        ready()
        try:
            while not stop.is_set():
                self.step()
                for task in tasks:
                    if task.done():
                        task.result()  # a follower that failed: the app stops and says why
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1 / RATE_HZ)
        finally:
            if self.engine.active is not None:  # restore the cabin while its hardware is still there
                try:
                    await self.port.actuate(self.engine.exit("the cabin service stopped"))
                except EvosError as exc:
                    log.info("cabin: the cabin could not be restored at shutdown: %s", exc)
            for task in tasks:
                task.cancel()
            if self._forecasting is not None:
                self._forecasting.cancel()
            if self._inputs is not None:
                await self._inputs.stop()


def _may_set(path: str) -> bool:
    return path.startswith(("Vehicle.Cabin.", "Vehicle.Body.", "Vehicle.Evos.Cabin.")) and not forbidden(path)


async def _main(port: VehiclePort, env: AppEnv) -> None:
    cabin = CabinService(port, env.data_dir, vehicle=env.settings.vehicle)
    env.instance = cabin
    await cabin.run(env.stop, env.ready)


CABIN_APP = App(
    name="cabin", summary="the smart cabin: scenes and their energy forecasts", partition="comfort",
    main=_main, overlays=(OVERLAY,),
    grants=Grants(read=everything, provide=paths_in(SCENE, SCENES, STATUS, REASON, REMAINING, TIMER, *FEATURES),
                  actuate=lambda p: _may_set(p) or p in (SCENE, *FEATURES)),
)
