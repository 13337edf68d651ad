"""What the car's gRPC entrance refuses: opening the car, which takes a command signed by a paired phone key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evos.broker import Broker, Guard
from evos.openings import DRIVER_LOCK, refuse_opening


def no_opening(broker: Broker) -> Guard:
    """A guard for ``broker``'s gRPC entrance refusing what opens the car (unlocking, a door, the trunk, the hood,
    the charge flap, a window of a locked car), as every entrance that cannot sign does."""

    async def guard(targets: Mapping[str, Any]) -> None:
        refuse_opening(targets, broker.get(DRIVER_LOCK).value is True, "a gRPC client")

    return guard
