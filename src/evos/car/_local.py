"""The car in one process: every app on its own ``LocalPort`` of one in-process broker, with the same
permissions its token would carry in ``evos up`` (the tests, and the parked car the assistant asks when no
running car is given).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evos.app import App, AppEnv, CarSettings, overlays_of, run_app
from evos.broker import Broker, LocalPort, Permissions, parse_scope
from evos.errors import UnavailableError
from evos.vss import load_catalog

READY_TIMEOUT_S = 30.0  # a loaded 2-core machine starts the whole car in well under this


def permissions_of(app: App, broker: Broker, settings: CarSettings | None = None) -> Permissions:
    """What ``app`` may do on ``broker``'s catalog (in a car started with ``settings``): the scope its token would
    carry, parsed the same way."""
    grants = app.grants_for(settings or CarSettings(), broker.catalog)
    return Permissions(grants=parse_scope(grants.scope(broker.catalog)), subject=app.name)


@dataclass
class LocalCar:
    """A running car in this process: its broker, its apps, and a port for whoever drives it (all permissions:
    the test's, or the user's, own hands on the car)."""

    broker: Broker
    settings: CarSettings
    data_dir: Path | None
    port: LocalPort
    apps: dict[str, App] = field(default_factory=dict)
    envs: dict[str, AppEnv] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _ports: dict[str, LocalPort] = field(default_factory=dict)

    def app(self, name: str) -> Any:
        """The object an app runs (``TwinProvider``, ``CabinService``...), as its main made it."""
        return self.envs[name].instance

    def value(self, path: str) -> Any:
        return self.broker.get(path).value

    def _launch(self, app: App, permissions: Permissions) -> asyncio.Event:
        ready = asyncio.Event()
        port = LocalPort(self.broker, app.name, permissions)
        self._ports[app.name] = port
        self.apps[app.name] = app
        self.envs[app.name] = env = AppEnv(self.settings, self.data_dir, on_ready=ready.set)
        self.tasks[app.name] = asyncio.create_task(run_app(app, port, env), name=f"app {app.name}")
        return ready

    async def start_app(self, app: App) -> None:
        """Start ``app`` (again); returns once it is ready."""
        permissions = await asyncio.to_thread(permissions_of, app, self.broker)
        await _started(self, {app.name: self._launch(app, permissions)})

    async def stop_app(self, name: str) -> None:
        """Stop app ``name`` as the car would (its ``stop`` event), waiting (bounded) for it to finish."""
        self.envs[name].stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.tasks[name]), 10)
        await self._ports[name].close()


@asynccontextmanager
async def local_car(apps: Sequence[App], data_dir: Path | None = None, settings: CarSettings | None = None,
                    overlays: Iterable[Any] = ()) -> AsyncIterator[LocalCar]:
    """Run ``apps`` on one in-process broker until the context ends; waits (bounded) until every app is ready.
    ``overlays``: more signals for the catalog (files or mappings), beside those the apps need.

    Raises UnavailableError naming the apps not ready in time, or the error of an app that failed starting.
    """
    # reading the catalog and working out each app's permissions take a while: off the event loop
    catalog = await asyncio.to_thread(load_catalog, None, [*overlays_of(apps), *overlays])
    broker = Broker(catalog)
    permissions = await asyncio.to_thread(lambda: [permissions_of(app, broker, settings) for app in apps])
    car = LocalCar(broker, settings or CarSettings(), data_dir, LocalPort(broker, "driver"))
    try:
        await _started(car, {app.name: car._launch(app, perms) for app, perms in zip(apps, permissions, strict=True)})
        yield car
    finally:
        for name in reversed(list(car.tasks)):  # the cabin restores the cabin while the body hardware is there
            await car.stop_app(name)
        await car.port.close()


async def _started(car: LocalCar, ready: dict[str, asyncio.Event]) -> None:
    waits = {name: asyncio.create_task(event.wait()) for name, event in ready.items()}
    pending: set[asyncio.Task[Any]] = {*waits.values(), *(car.tasks[name] for name in ready)}
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    try:
        while any(not e.is_set() for e in ready.values()):
            done, pending = await asyncio.wait(pending, timeout=max(deadline - asyncio.get_running_loop().time(), 0),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            for name in ready:
                if car.tasks[name] in done:
                    car.tasks[name].result()  # an app that failed while starting: its error
                    raise UnavailableError(f"app {name} stopped before it was ready")
    finally:
        for wait in waits.values():
            wait.cancel()
    missing = [name for name, event in ready.items() if not event.is_set()]
    if missing:
        raise UnavailableError(f"the car did not start within {READY_TIMEOUT_S:.0f} s: not ready: {', '.join(missing)}")
