"""The companion as part of the running car: the web app and API on uvicorn, and the trip recorder, on the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from evos.broker import Broker
from evos.companion._config import CompanionConfig

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from evos.companion._db import Database

log = logging.getLogger("evos.companion")
LOGIN_RATE_PER_S = 0.2  # password attempts per user name: 10 at once, then one every 5 s (assumed, slows guessing)
LOGIN_BURST = 10
# Pairing attempts across all codes and tokens: 5 at once, then one a minute (assumed). Someone who has the owner's
# password but is not at the car then needs ~350 days for even odds of guessing a 6-digit code.
PAIRING_RATE_PER_S = 1 / 60
PAIRING_BURST = 5
CODE_SIGNAL = "Vehicle.Evos.Companion.PairingCode"
CODE_EXPIRY_SIGNAL = "Vehicle.Evos.Companion.PairingCodeExpiresAt"


class CompanionService:
    """Serves the companion web app and API for ``broker`` until stopped; ``extra_routers`` go under ``/cabin``."""

    def __init__(self, broker: Broker, config: CompanionConfig, extra_routers: Iterable[APIRouter] = ()) -> None:
        # the web stack (FastAPI, SQLAlchemy, argon2: ~0.7 s) is imported here, not when every evos command starts
        from evos.companion._api import Context, TokenCache, create_app
        from evos.companion._db import Database
        from evos.companion._ratelimit import RateLimiter
        from evos.companion._routes import ROUTERS
        from evos.companion._vehicle import Momentary, StateView

        self.broker = broker
        self.config = config
        self.db: Database = Database(config.database_url)
        self._state = StateView(broker)
        self._momentary = Momentary(broker)
        ctx = Context(broker, config, self.db, RateLimiter(config.rate_per_s, config.rate_burst),
                      RateLimiter(LOGIN_RATE_PER_S, LOGIN_BURST), RateLimiter(PAIRING_RATE_PER_S, PAIRING_BURST),
                      self.show_code, self._state, TokenCache(),
                      self._momentary)
        self.app: FastAPI = create_app(ctx, ROUTERS, extra_routers)
        self.port: int | None = None  # the port listened on, once serving (useful with port 0)
        self.started = asyncio.Event()

    def show_code(self, code: str, expires_at: float) -> None:
        """Put a pairing code on the car's screen (its signal, when the catalog has it) and in the log."""
        if code:
            log.warning("companion: pairing code %s (type it into the phone)", code)
        if CODE_SIGNAL in self.broker.catalog.signals and CODE_EXPIRY_SIGNAL in self.broker.catalog.signals:
            self.broker.set_many({CODE_SIGNAL: code, CODE_EXPIRY_SIGNAL: int(expires_at)})

    async def run(self, stop: asyncio.Event) -> None:
        """Serve on ``config.host:config.port`` and record trips until ``stop`` is set."""
        from evos.companion._api import listen, uvicorn_server
        from evos.companion._recorder import RecorderTask

        sock = listen(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        server = uvicorn_server(self.app)
        recorder = asyncio.create_task(RecorderTask(self.broker, self.db, self.config.trip_park_s).run(stop))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            # the socket already listens: connections made now wait in its backlog until uvicorn accepts them
            log.info("companion: http://%s:%d/", self.config.host, self.port)
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
            self._momentary.close()
            self.db.close()
            self._state.close()
            sock.close()
