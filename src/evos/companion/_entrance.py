"""Entrances to the car other than the phone API (the centre screen and its assistant), on one path with it.

What opens the car — unlocking, opening a door, the trunk, the hood or the charge flap, opening a window of a locked
car — takes a command signed by a paired phone key (``/api/v1/vehicle/commands/unlock``...), whatever the entrance:
here it is refused, saying so. Every actuation an entrance asks for is written to the audit log *before* it is
carried out (one that cannot be written is refused and changes nothing), and its outcome after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from evos.broker import ActuationHandler, Datapoint, Field, VehiclePort
from evos.errors import NotPermittedError, UnavailableError
from evos.openings import DRIVER_LOCK, depends_on_locks, refuse_opening
from evos.vss import Signal, Value

if TYPE_CHECKING:  # the database (SQLAlchemy) is imported with the web stack, not by every evos command
    from evos.companion._db import Database

class EntrancePort:
    """A vehicle-data port for one entrance (``entrance``: who asks, as the audit log names it), on top of the
    companion's own. Reads, subscriptions and metadata pass through; ``actuate`` is checked and audited (see the
    module). The audit log is the companion's database, given by ``bind`` once it is open (before: refused)."""

    def __init__(self, port: VehiclePort, entrance: str) -> None:
        self.port = port
        self.entrance = entrance
        self.name = f"{port.name} ({entrance})"
        self.failure = port.failure  # the companion's port failing is this one failing
        self._db: Database | None = None

    def bind(self, db: Database) -> None:
        self._db = db

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        db = self._db
        if db is None:
            raise UnavailableError(f"the {self.entrance} cannot act yet: the car's audit log is not open")
        checked = await self.port.check(targets)
        locked = (await self.port.get(DRIVER_LOCK)).value is True if depends_on_locks(checked) else False
        from evos.companion import _audit  # the database's models: imported with the web stack, not before

        async def act() -> None:
            refuse_opening(checked, locked, f"the {self.entrance}")
            await self.port.actuate(checked)

        await _audit.audited(db, (self.entrance, f"entrance:{self.entrance}"), "actuate", dict(checked), act,
                             lambda _none: "completed", f"the {self.entrance}'s request was not carried out")

    # --- the rest of the port, as it is ---------------------------------------------------------------------
    async def signals(self, pattern: str = "") -> list[Signal]:
        return await self.port.signals(pattern)

    async def get(self, path: str) -> Datapoint:
        return await self.port.get(path)

    async def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        return await self.port.get_many(paths)

    async def get_targets(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        return await self.port.get_targets(paths)

    async def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        await self.port.publish(values, timestamp_s)

    def publish_nowait(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        self.port.publish_nowait(values, timestamp_s)

    async def check(self, targets: Mapping[str, Any]) -> dict[str, Value]:
        return await self.port.check(targets)

    def subscribe(self, paths: Iterable[str], field: Field = "value", min_interval_s: float = 0.0
                  ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Datapoint]]]:
        return self.port.subscribe(paths, field, min_interval_s)

    async def provide(self, actuators: Iterable[str], handler: ActuationHandler) -> None:
        raise NotPermittedError(f"the {self.entrance} provides no actuators")

    async def close(self) -> None:
        """The companion closes its own port."""
