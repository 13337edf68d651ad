"""The car's body and cabin hardware: locks, doors, windows, shades, seats, lights, horn, HVAC zones, screens.

``BodyProvider`` claims every actuator under ``Vehicle.Cabin`` and ``Vehicle.Body`` but those the powertrain twin
(``TwinProvider``: climate set points) and the media app (``Vehicle.Cabin.Infotainment.Media``) serve. It carries
requests out like the hardware would: switches and set points take effect at once, motors (windows, shades, seat
adjusters) move toward their target at a fixed rate and publish their position as they go, the horn sounds for half
a second. Requests the hardware would refuse are refused before anything changes: a locked door or trunk cannot be
opened, nor any of them while the car moves, nor may a front seat recline far while it moves. The electric load of
what is switched on (seat heaters, rear defroster, blower, lights) is published as ``Vehicle.Evos.Body.LoadPower``,
which the twin drains from the battery. Positions and switch states persist in ``body.sqlite`` so a restarted car is
as it was left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from evos import datadir
from evos.app import App, AppEnv, Grants, paths_in
from evos.broker import Mirror, VehiclePort
from evos.errors import DataError, EvosError, NotPermittedError, UnavailableError
from evos.twin._codec import ACTUATORS as TWIN_ACTUATORS
from evos.twin._provider import OVERLAY
from evos.twin._store import StorageFault
from evos.vss import Datatype, EntryType, Kind, Signal, Value, compile_pattern, validate

log = logging.getLogger("evos.twin.body")

SERVED_ELSEWHERE = ("Vehicle.Cabin.Infotainment.Media.**",)  # the media app's
LOAD = "Vehicle.Evos.Body.LoadPower"
STORAGE_FAULT = "Vehicle.Evos.Body.StorageFault"
SPEED = "Vehicle.Speed"
BRANCHES = ("Vehicle.Cabin", "Vehicle.Body")
RATE_HZ = 10.0
HORN_S = 0.5  # a honk from the app or a lock confirmation is a short beep (assumed)

# How fast the motors move (units per second). Assumed typical values: a power window travels fully in about 4 s,
# a sunshade in about 8 s, a seat slides at about 20 mm/s and reclines at about 3 degrees/s.
WINDOW_PCT_PER_S = 25.0
SHADE_PCT_PER_S = 12.5
SEAT_MM_PER_S = 20.0
SEAT_DEG_PER_S = 3.0

# Electric loads, W. Tesla Model S measurements by KmanAuto, reported by Teslarati/InsideEVs ("Energy consumption of
# various Tesla heating features", 2017): one seat heater 57 W, rear defroster with mirror heaters 285 W.
SEAT_HEATER_W = 57.0
REAR_DEFROSTER_W = 285.0
# Assumed: a seat's ventilation fans or massage motors about 20 W; the HVAC blower up to 200 W at full speed;
# an interior light zone about 5 W (LED).
SEAT_VENT_W = 20.0
BLOWER_MAX_W = 200.0
LIGHT_W = 5.0

# Where a path starts when nothing was saved (a parked car, locked, windows shut, seats in a driving position).
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    (".IsLocked", True),
    (".Backrest.Recline", 20.0),  # degrees from upright, positive backward (VSS); assumed usual driving posture
    (".Seat.Row1.DriverSide.Position", 150), (".Seat.Row1.PassengerSide.Position", 150),  # mm of rail travel
    ("Intensity", 100),
    (".HMI.Brightness", 80.0),  # assumed: a screen's usual daytime brightness
    (".FanSpeed", 0),
    (".Temperature", 21.0),
)
_RANGES: dict[str, tuple[float, float]] = {  # travel of the seat motors (assumed), where VSS gives no bounds
    ".Backrest.Recline": (-10.0, 60.0),
    ".Seat.Row1.DriverSide.Position": (0.0, 300.0), ".Seat.Row1.PassengerSide.Position": (0.0, 300.0),
}
_OPENINGS = re.compile(r"Vehicle\.Cabin\.Door\.Row\d\.\w+|Vehicle\.Body\.Trunk\.\w+")  # doors and trunks
# A reclined occupant can slide under the lap belt ("submarining"); car makers limit front-seat recline on the move.
MAX_RECLINE_MOVING_DEG = 35.0  # assumed limit: the usual driving posture (20-25°) plus a margin
_SWITCH_TARGETS = {"OPEN": 100, "ONE_SHOT_OPEN": 100, "CLOSE": 0, "ONE_SHOT_CLOSE": 0}


def serves(path: str, signal: Signal) -> bool:
    """Whether the body hardware serves this signal: an actuator under ``Vehicle.Cabin`` or ``Vehicle.Body`` that
    neither the twin nor the media app serves."""
    return (signal.entry_type is EntryType.ACTUATOR and path.startswith(("Vehicle.Cabin.", "Vehicle.Body."))
            and path not in TWIN_ACTUATORS and not any(matches(path) for matches in _ELSEWHERE))


_ELSEWHERE = tuple(compile_pattern(pattern) for pattern in SERVED_ELSEWHERE)


def motion_rate(path: str, signal: Signal) -> float | None:
    """Units per second a motor moves this actuator at, or None when it takes effect at once."""
    name = path.rsplit(".", 1)[-1]
    if signal.datatype.kind in (Kind.INT, Kind.FLOAT) and not signal.datatype.is_array:
        if name == "Position" and signal.unit == "percent":
            return WINDOW_PCT_PER_S if ".Window." in path else SHADE_PCT_PER_S
        if signal.unit == "mm" and "Seat" in path:
            return SEAT_MM_PER_S
        if signal.unit == "degrees" and "Seat" in path:
            return SEAT_DEG_PER_S
    return None


def default_value(path: str, signal: Signal) -> Any:
    """The value of an actuator on a fresh car."""
    for suffix, value in _DEFAULTS:
        if path.endswith(suffix):
            return value
    dt = signal.datatype
    if dt.is_array:
        return []
    if dt is Datatype.BOOLEAN:
        return False
    if dt is Datatype.STRING:
        allowed = signal.allowed or ()
        return "INACTIVE" if "INACTIVE" in allowed else (allowed[0] if allowed else "")
    low = signal.min if signal.min is not None else 0
    return float(max(low, 0)) if dt.kind is Kind.FLOAT else int(max(low, 0))


_LOAD_SUFFIXES = (".HeatingCooling", ".IsRearDefrosterActive", ".FanSpeed", ".IsLightOn", ".IsDomeOn")


def body_load_w(values: Mapping[str, Any]) -> float:
    """The electric load, W, of body and cabin actuators at ``values`` (paths not listed are off)."""
    load_w = 0.0
    for path, value in values.items():
        if path.endswith(".HeatingCooling") and isinstance(value, int | float):
            load_w += SEAT_HEATER_W * value / 100 if value > 0 else SEAT_VENT_W * -value / 100
        elif path.endswith(".IsRearDefrosterActive") and value is True:
            load_w += REAR_DEFROSTER_W
        elif path.endswith(".FanSpeed") and isinstance(value, int | float):
            load_w += BLOWER_MAX_W * (value / 100) ** 3  # fan power grows with the cube of its speed
        elif path.endswith((".IsLightOn", ".IsDomeOn")) and value is True:
            load_w += LIGHT_W
    return load_w


class BodyStore:
    """The body's last values in ``body.sqlite``: one row per path, each save one transaction."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()  # saves run on worker threads (a command's, the periodic one): one at a time
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # opens lazily: no error yet
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a commit is on the disk before a command is answered
            self._db.execute("CREATE TABLE IF NOT EXISTS body (path TEXT PRIMARY KEY, value TEXT NOT NULL)")
            rows = list(self._db.execute("SELECT path, value FROM body"))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DataError(str(path), None, f"not a usable body state database: {exc}") from exc
        self._saved: dict[str, Any] = {}  # read and checked at open: a row found unusable later would reset in silence
        for name, value in rows:
            try:
                self._saved[name] = json.loads(value)
            except (ValueError, TypeError) as exc:
                self._db.close()
                raise DataError(str(path), f"body[{name}]", f"unreadable value: {exc}") from None

    def load(self) -> dict[str, Any]:
        """The saved values (as read at open), by path."""
        return dict(self._saved)

    def save(self, values: Mapping[str, Any]) -> None:
        """Write ``values`` in one transaction, durable when it returns (WAL, synchronous FULL)."""
        rows = [(p, json.dumps(v)) for p, v in values.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO body (path, value) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET "
                                     "value = excluded.value", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class BodyProvider:
    """The body hardware on a vehicle-data port, until stopped (``run``)."""

    def __init__(self, port: VehiclePort, store_path: Path | None = None) -> None:
        self.port = port
        self.store_path = store_path
        self.store: BodyStore | None = None
        self.paths: tuple[str, ...] = ()
        self._signals: dict[str, Signal] = {}
        self._rates: dict[str, float] = {}
        self.values: dict[str, Any] = {}
        self.moving: dict[str, float] = {}  # path -> target of a motor on its way
        self._horn_off_at: float | None = None
        self._wake = asyncio.Event()  # a request came: the motors may have somewhere to go
        self._storage = StorageFault(port.publish_nowait, STORAGE_FAULT, "body")
        self._dirty: dict[str, Any] = {}
        self._speed: Mirror | None = None
        self._load_w: float | None = None

    async def start(self) -> None:
        """Claim the body's actuators, with their values as saved (or a fresh car's), and publish them."""
        found = [s for branch in BRANCHES for s in await self.port.signals(branch)]
        self._signals = {s.path: s for s in found if serves(s.path, s)}
        self.paths = tuple(sorted(self._signals))
        self._rates = {p: r for p in self.paths if (r := motion_rate(p, self._signals[p])) is not None}
        if self.store_path is not None:  # opened and read off the event loop
            self.store = await asyncio.to_thread(datadir.open_or_set_aside, self.store_path, BodyStore,
                                                 "the body's state (locks, windows, seats) begins anew", log)
        saved = self.store.load() if self.store is not None else {}
        for path, signal in self._signals.items():
            self.values[path] = default_value(path, signal)
            if path in saved:
                try:
                    self.values[path] = validate(signal, saved[path])
                except EvosError:  # a value the catalog no longer takes: keep the default
                    log.warning("body: ignoring saved %s = %r", path, saved[path])
        self._speed = await Mirror(self.port, (SPEED,)).start()
        await self.port.provide(self.paths, self._on_actuate)
        self._publish(dict(self.values))
        self.port.publish_nowait({STORAGE_FAULT: ""})

    # --- requests -------------------------------------------------------------------------------------------
    def check(self, batch: Mapping[str, Any]) -> None:
        """Refuse what the hardware would refuse (before anything changes)."""
        speed = self._speed.value(SPEED) if self._speed is not None else None
        moving = isinstance(speed, int | float) and abs(speed) > 0.5
        for path, value in batch.items():
            if moving and path.startswith("Vehicle.Cabin.Seat.Row1.") and path.endswith(".Backrest.Recline") \
                    and float(value) > MAX_RECLINE_MOVING_DEG:
                raise NotPermittedError(f"{path}: a front seat may not recline beyond {MAX_RECLINE_MOVING_DEG:g}° "
                                        "while the car is moving", path=path)
            if not (path.endswith(".IsOpen") and value is True):
                continue
            base = path.rsplit(".", 1)[0]
            if _OPENINGS.fullmatch(base):
                if moving:
                    raise NotPermittedError(f"{path}: cannot open while the car is moving", path=path)
                lock = f"{base}.IsLocked"
                if batch.get(lock, self.values.get(lock)) is True:
                    raise NotPermittedError(f"{path}: locked ({lock} is true); unlock it first", path=path)

    async def _on_actuate(self, batch: dict[str, Value]) -> None:
        """Carry out a request: what takes effect at once (a lock, a light) is on the disk before the request is
        answered, so an acknowledged lock survives a kill; a motor's target starts it moving (its position is saved
        as it moves). A request the hardware refuses, or whose save fails, changes nothing."""
        self.check(batch)
        now: dict[str, Any] = {}
        moves: dict[str, float | None] = {}  # motor position path -> target (None: the motor stops)
        for path, value in batch.items():
            name = path.rsplit(".", 1)[-1]
            position = f"{path.rsplit('.', 1)[0]}.Position"
            if path in self._rates:
                low, high = _RANGES.get(_suffix(path), (-float("inf"), float("inf")))
                moves[path] = min(max(float(value), low), high)  # type: ignore[arg-type]
                continue
            if name == "Switch" and position in self._rates:
                # INACTIVE (or a tilt request the simulated roof does not have): the motor stops
                moves[position] = _SWITCH_TARGETS.get(value)  # type: ignore[arg-type]
            elif name == "IsOpen" and position in self._rates:
                moves[position] = 100 if value else 0
            now[path] = value
        if now and self.store is not None:
            try:
                await asyncio.to_thread(self.store.save, now)
            except sqlite3.Error as exc:
                raise UnavailableError(f"body: cannot save {', '.join(now)}: {exc}; nothing was changed") from exc
        for position, target in moves.items():
            if target is None:
                self.moving.pop(position, None)
            else:
                self.moving[position] = target
        if batch.get("Vehicle.Body.Horn.IsActive") is True:
            self._horn_off_at = time.monotonic() + HORN_S
        self._publish(now)
        self._wake.set()

    # --- the hardware's clock -------------------------------------------------------------------------------
    def tick(self, dt_s: float) -> None:
        """Move the motors by ``dt_s`` and end the honk when due."""
        changes: dict[str, Any] = {}
        for path, target in list(self.moving.items()):
            current = float(self.values[path])
            step = self._rates[path] * dt_s
            new = target if abs(target - current) <= step else current + step * (1 if target > current else -1)
            if new == target:
                del self.moving[path]
            changes[path] = round(new) if self._signals[path].datatype.kind is Kind.INT else new
            base = path.rsplit(".", 1)[0]
            if path.endswith(".Position") and f"{base}.IsOpen" in self.values:
                changes[f"{base}.IsOpen"] = new > 0
            if path not in self.moving and f"{base}.Switch" in self.values:
                changes[f"{base}.Switch"] = "INACTIVE"
        if self._horn_off_at is not None and time.monotonic() >= self._horn_off_at:
            self._horn_off_at = None
            changes["Vehicle.Body.Horn.IsActive"] = False
        if changes:
            self._publish(changes)

    def _publish(self, changes: Mapping[str, Any]) -> None:
        if not changes:
            return
        self.values.update(changes)
        self._dirty.update(changes)
        load_w = body_load_w(self.values)
        if load_w != self._load_w:  # only when something that draws power changed
            self._load_w = load_w
            changes = {**changes, LOAD: load_w}
        self.port.publish_nowait(changes)

    async def save(self) -> None:
        """Save what changed since the last save (off the loop). A save that fails (a full or broken disk) keeps
        the changes for the next try, is logged once and published as ``STORAGE_FAULT``; never the end of the
        car (a command whose own save fails is refused: ``_on_actuate``)."""
        if self.store is None or not self._dirty:
            return
        dirty = self._take_dirty()
        try:
            await asyncio.to_thread(self.store.save, dirty)
        except (sqlite3.Error, OSError) as exc:
            self._dirty = {**dirty, **self._dirty}  # what changed meanwhile is newer
            self._storage.failed(exc, "tried again every second")
            return
        self._storage.worked()

    def _take_dirty(self) -> dict[str, Any]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Publish every actuator's value, then move motors at 10 Hz until ``stop``; save once a second and on exit."""
        await self.start()
        ready()
        last = last_save = time.monotonic()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if self.moving or self._horn_off_at is not None:
                    await asyncio.sleep(1 / RATE_HZ)
                else:  # nothing moves: no clock to run until a request comes (or the next save is due)
                    self._wake.clear()
                    woken = asyncio.create_task(self._wake.wait())
                    await asyncio.wait({woken, stopping}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                    last = time.monotonic()  # a motor starts when it is asked to, not when the car fell quiet
                now = time.monotonic()
                self.tick(now - last)
                last = now
                if now - last_save >= 1.0:
                    await self.save()  # on a worker thread: an fsync must not stall the car
                    last_save = now
        finally:
            stopping.cancel()
            await self.save()
            if self._speed is not None:
                await self._speed.stop()
            if self.store is not None:
                self.store.close()


def _suffix(path: str) -> str:
    return next((s for s in _RANGES if path.endswith(s)), "")


async def _main(port: VehiclePort, env: AppEnv) -> None:
    body = env.instance = BodyProvider(port, env.data_dir / "body.sqlite" if env.data_dir is not None else None)
    await body.run(env.stop, env.ready)


def _served(path: str) -> bool:
    return path.startswith(("Vehicle.Cabin.", "Vehicle.Body.")) and path not in TWIN_ACTUATORS and not any(
        matches(path) for matches in _ELSEWHERE)


BODY_APP = App(
    name="body", summary="the body hardware: locks, doors, windows, shades, seats, lights, horn", partition="vehicle",
    main=_main, overlays=(OVERLAY,),
    grants=Grants(read=paths_in(SPEED), provide=lambda p: _served(p) or p in (LOAD, STORAGE_FAULT), actuate=_served),
)

__all__ = ["BODY_APP", "BodyProvider", "body_load_w", "serves"]
