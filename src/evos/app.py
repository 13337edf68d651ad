"""An app of the car: what every part (twin, body, ADAS, cabin, media, companion, and later ones) is to the car.

An ``App`` names its entry point ``main(port, env)``, the signals it needs in the catalog (``overlays``), and
what it may do (``grants``, least privilege: the cabin cannot actuate ADAS or the door locks). ``evos up``'s
supervisor starts each app as its own process on a ``RemotePort`` with a token of exactly these grants;
``evos.car.local_car`` runs the same apps in one process on ``LocalPort``s with the same permissions; and
``evos app run NAME --address ...`` runs one alone against any KUKSA-compatible broker.

``main`` runs until ``env.stop`` is set, calling ``env.ready()`` once it serves (its actuators claimed, its
first values published). It talks to the car only through the port. ``run_app`` is the shell: it stops the
app when its port breaks, and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from evos.broker import VehiclePort
from evos.errors import InvalidArgumentError
from evos.vss import Catalog, EntryType

log = logging.getLogger("evos.app")
Partition = Literal["vehicle", "safety", "comfort"]  # hardware the car must have; driver assistance; the rest


@dataclass(frozen=True)
class CarSettings:
    """What the owner chose when starting the car (``evos up``'s options), given to every app."""

    vehicle: str = "xiaomi-su7"  # a preset name or a vehicle file
    plugged_in: bool = False
    charger_kw: float = 11.0
    ambient_c: float = 20.0
    http: str = "127.0.0.1:8000"  # HOST:PORT of the web server (the phone app and the centre screen)
    database_url: str | None = None  # the companion's database (default: SQLite in the data directory)
    mqtt: str | None = None  # the MQTT bridge's server URL (``evos up --mqtt``); with mqtt_config, the bridge runs
    mqtt_config: str | None = None  # the MQTT bridge's YAML file
    automations: str | None = None  # the automations' rules file (``evos up --automations``); with it, they run

    @property
    def bridged(self) -> bool:
        """Whether the owner asked for the MQTT bridge."""
        return self.mqtt is not None or self.mqtt_config is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CarSettings:
        """The settings from ``to_json``'s text; InvalidArgumentError naming an unknown or missing field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"car settings are not JSON: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known) if isinstance(data, dict) else ["(not an object)"]
        if unknown:
            raise InvalidArgumentError(f"car settings: unknown field {unknown[0]!r}; fields: "
                                       f"{', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class Grants:
    """What an app may do, as predicates over the catalog's signals: read, publish (provide), actuate or claim
    actuators (actuate). ``scope(catalog)`` writes it as a KUKSA scope string of as few patterns as it takes."""

    read: Callable[[str], bool] = field(default=lambda path: False)
    provide: Callable[[str], bool] = field(default=lambda path: False)
    actuate: Callable[[str], bool] = field(default=lambda path: False)

    def scope(self, catalog: Catalog) -> str:
        parts: list[str] = []
        for action in ("read", "provide", "actuate"):
            allowed = getattr(self, action)
            # an actuate grant covers actuators only: a branch is granted whole when all its actuators are
            candidates = {s.path for s in catalog if action != "actuate" or s.entry_type is EntryType.ACTUATOR}
            granted = {p for p in candidates if allowed(p)}
            if granted == candidates == set(catalog.signals):
                parts.append(action)  # everything: the shortest grant
                continue
            parts.extend(f"{action}:{pattern}" for pattern in cover(catalog, granted, candidates))
        return " ".join(parts)


def paths_in(*prefixes_or_paths: str) -> Callable[[str], bool]:
    """A predicate: the path is one of these, or under one of these branches."""
    exact = frozenset(prefixes_or_paths)
    branches = tuple(p + "." for p in prefixes_or_paths)
    return lambda path: path in exact or path.startswith(branches)


def everything(_path: str) -> bool:
    return True


def cover(catalog: Catalog, allowed: set[str], candidates: set[str] | None = None) -> list[str]:
    """The fewest branch paths and leaf paths that grant exactly the ``allowed`` among ``candidates`` (default:
    every signal). A branch path in a KUKSA scope grants every leaf under it, so a branch is used only when every
    candidate under it is allowed."""
    if not allowed:
        return []
    below: dict[str, list[str]] = {}  # branch -> candidate leaves under it
    for path in catalog.signals:
        if candidates is not None and path not in candidates:
            continue
        parts = path.split(".")
        for i in range(1, len(parts)):
            below.setdefault(".".join(parts[:i]), []).append(path)
    patterns: list[str] = []

    def visit(branch: str) -> None:
        leaves = below[branch]
        if all(p in allowed for p in leaves):
            patterns.append(branch)
            return
        children = sorted({p[len(branch) + 1:].split(".", 1)[0] for p in leaves})
        for child in children:
            path = f"{branch}.{child}"
            if path in below:
                visit(path)
            elif path in allowed:
                patterns.append(path)

    for root in sorted({p.split(".", 1)[0] for p in below if "." not in p}):
        visit(root)
    return patterns


@dataclass
class AppEnv:
    """What the car gives an app besides its port: its data directory, the car's settings, when to stop and how
    to say it is ready."""

    settings: CarSettings
    data_dir: Path | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    on_ready: Callable[[], None] = lambda: None
    is_ready: bool = False
    instance: Any = None  # the app's own object (a TwinProvider...), set by its main: for tests and debugging

    def ready(self) -> None:
        if not self.is_ready:
            self.is_ready = True
            self.on_ready()


Main = Callable[[VehiclePort, AppEnv], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class App:
    """One app of the car (see the module docstring)."""

    name: str  # lower case, as in `evos apps` and `evos up --apps`
    summary: str
    partition: Partition
    main: Main
    grants: Grants
    overlays: tuple[Path, ...] = ()
    # grants that follow from the owner's settings (the automations: what their rules read and set), else ``grants``
    grants_of: Callable[[CarSettings, Catalog], Grants] | None = None

    def grants_for(self, settings: CarSettings, catalog: Catalog) -> Grants:
        """What the app may do in a car started with ``settings``."""
        return self.grants if self.grants_of is None else self.grants_of(settings, catalog)

    @property
    def signal_name(self) -> str:
        """The name of the app's branch of state signals (``Vehicle.Evos.Apps.<Name>``)."""
        return "".join(word.capitalize() for word in self.name.replace("-", "_").split("_"))


async def run_app(app: App, port: VehiclePort, env: AppEnv) -> None:
    """Run ``app`` until ``env.stop`` is set; raises the error that stopped it early (its own, or its port's)."""
    task = asyncio.create_task(app.main(port, env), name=f"app {app.name}")
    stopping = asyncio.create_task(env.stop.wait())
    try:
        waits: set[asyncio.Future[Any]] = {task, stopping, port.failure}
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if port.failure in done and not port.failure.cancelled():
            env.stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            port.failure.result()  # raises the port's error
        await task
        if not env.stop.is_set():
            raise RuntimeError(f"app {app.name} returned before it was asked to stop")
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def overlays_of(apps: Iterable[App]) -> list[Path]:
    """Every overlay the apps need, each once, in order."""
    return list(dict.fromkeys(path for app in apps for path in app.overlays))


__all__ = ["App", "AppEnv", "CarSettings", "Grants", "Partition", "cover", "everything", "overlays_of", "paths_in",
           "run_app"]
