"""The companion as an app of the running car: the web app and API on uvicorn, and the trip recorder, on the
vehicle-data port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING

from evos import datadir
from evos.app import App, AppEnv, Grants, everything, paths_in
from evos.broker import VehiclePort
from evos.companion._config import CompanionConfig
from evos.companion._entrance import EntrancePort

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from evos.companion._db import Database

log = logging.getLogger("evos.companion")
LOGIN_RATE_PER_S = 0.2  # password attempts per user name: 10 at once, then one every 5 s (assumed, slows guessing)
LOGIN_BURST = 10
# Password attempts over the whole car, whoever makes them: 20 at once, then one every 5 s (assumed). Each is argon2
# (~0.1 s here, 64 MiB: more than the L3 cache, so it slows every process while it runs, even at idle priority) on a
# pool of one thread, never the database's. At one a second the owner's command p99 under guessing was 49 ms, at one
# every 5 s 18-30 ms (benchmarks/guessing.py); the owner's phone keeps its session by refresh, not by password.
CAR_LOGIN_RATE_PER_S = 0.2
CAR_LOGIN_BURST = 20
# Pairing attempts across all codes and tokens: 5 at once, then one a minute (assumed). Someone who has the owner's
# password but is not at the car then needs ~350 days for even odds of guessing a 6-digit code.
PAIRING_RATE_PER_S = 1 / 60
PAIRING_BURST = 5
# A router the web server mounts under /cabin (the centre screen), made for its port while the server runs.
RouterFactory = Callable[[VehiclePort, AppEnv], AbstractAsyncContextManager["APIRouter"]]


def _lowest_priority() -> None:
    """Run this thread at the lowest CPU priority (Linux's SCHED_IDLE, for this thread alone), so that password
    checks (argon2) use only CPU time that the car's own work leaves."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no sched_setscheduler (not Linux)
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))


class CompanionService:
    """Serves the companion web app and API on ``port`` until stopped; ``routers`` go under ``/cabin``."""

    def __init__(self, port: VehiclePort, config: CompanionConfig, routers: Sequence[APIRouter] = ()) -> None:
        # the web stack (FastAPI, SQLAlchemy, argon2: ~0.7 s) is imported here, not when every evos command starts
        from evos.companion._api import Context, ShownCode, TokenCache, create_app
        from evos.companion._db import sqlite_path
        from evos.companion._ratelimit import RateLimiter
        from evos.companion._routes import ROUTERS
        from evos.companion._vehicle import Momentary, StateView

        self.port = port
        self.config = config
        self.db: Database = self._open_database(config.database_url)
        self._state = StateView(port)
        self._momentary = Momentary(port)
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evos-passwords",
                                          initializer=_lowest_priority)
        ctx = Context(port, config, self.db, RateLimiter(config.rate_per_s, config.rate_burst),
                      RateLimiter(LOGIN_RATE_PER_S, LOGIN_BURST), RateLimiter(CAR_LOGIN_RATE_PER_S, CAR_LOGIN_BURST),
                      self._hasher, RateLimiter(PAIRING_RATE_PER_S, PAIRING_BURST),
                      ShownCode(), self._state, TokenCache(), self._momentary,
                      first_run=not ((path := sqlite_path(config.database_url)) and datadir.was_set_aside(path)))
        self.app: FastAPI = create_app(ctx, ROUTERS, routers)
        # what FastAPI would otherwise build on the first request (a fifth of a second of the event loop's time):
        # the middleware stack and the OpenAPI schema; the service is made off the loop, so this is too
        self.app.middleware_stack = self.app.build_middleware_stack()
        self.app.openapi()
        self.port_number: int | None = None  # the TCP port listened on, once serving (useful with port 0)
        self.started = asyncio.Event()

    @staticmethod
    def _open_database(url: str) -> Database:
        """The companion's database; a SQLite file found unusable is said, set aside and begun anew (and the
        first-run page stays shut: a car whose accounts were lost gets its owner back from the car itself)."""
        from evos.companion._db import Database, sqlite_path

        path = sqlite_path(url)
        if path is None:  # another database: its server's to keep
            return Database(url)
        return datadir.open_or_set_aside(path, lambda _path: Database(url),
                                         "add the owner again with 'evos users add NAME'", log)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve on ``config.host:config.port`` and record trips until ``stop`` is set."""
        from evos.companion._api import listen, uvicorn_server
        from evos.companion._recorder import RecorderTask

        await self._state.start()
        sock = listen(self.config.host, self.config.port)
        self.port_number = sock.getsockname()[1]
        server = uvicorn_server(self.app)
        recorder = asyncio.create_task(RecorderTask(self.port, self.db, self.config.trip_park_s).run(stop))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            # the socket already listens: connections made now wait in its backlog until uvicorn accepts them
            log.warning("web: http://%s:%d/ (phone app), http://%s:%d/cabin/ (centre screen)", self.config.host,
                        self.port_number, self.config.host, self.port_number)
            self.started.set()
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({stopper, serving, recorder}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done & {serving, recorder}:
                task.result()  # a crash of the server or the recorder surfaces here
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            if not stop.is_set():
                recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._momentary.close()
            self.db.close()
            self._hasher.shutdown(wait=False, cancel_futures=True)
            await self._state.stop()
            sock.close()


def companion_app(routers: Sequence[RouterFactory] = (), config: CompanionConfig | None = None) -> App:
    """The companion app, serving ``routers`` under ``/cabin`` (the car's assembly gives it the centre screen).

    ``config``: the companion's settings (default: from the car's settings and data directory)."""

    async def main(port: VehiclePort, env: AppEnv) -> None:
        settings = config or CompanionConfig.for_car(env.settings, env.data_dir)
        async with AsyncExitStack() as stack:
            # the centre screen (and its assistant) acts on the car through the same checks and audit as the phone
            entrance = EntrancePort(port, "centre screen")
            extra = [await stack.enter_async_context(make(entrance, env)) for make in routers]
            # the web stack's imports and the database's opening take a second: off the event loop
            service = await asyncio.to_thread(CompanionService, port, settings, extra)
            entrance.bind(service.db)
            env.instance = service
            running = asyncio.create_task(service.run(env.stop))
            started = asyncio.create_task(service.started.wait())
            await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
            if service.started.is_set():
                env.ready()
            started.cancel()
            await running

    return App(
        name="companion", summary="the owner's phone: web app, remote API, accounts, phone keys, history; the "
        "centre screen's server", partition="comfort", main=main,
        # the phone commands what its owner may (each command checked by scope and signature), reads the state
        grants=Grants(read=everything,
                      actuate=paths_in("Vehicle.Cabin", "Vehicle.Body", "Vehicle.Evos.Cabin",
                                       "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
                                       "Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging",
                                       "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode")),
    )
