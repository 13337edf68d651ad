"""What opens the car, one rule for every entrance: unlocking, opening a door, the trunk, the hood or the charge
flap, and opening a window or the sunroof of a locked car. An entrance that cannot sign a command (the centre
screen, the assistant, gRPC clients, the MQTT bridge without the owner's opt-in) is refused it; the phone's signed
commands (the companion) carry it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from evos.errors import NotPermittedError
from evos.vss import Value

_LOCKS = re.compile(r"Vehicle\.(Cabin\.Door\.Row\d\.\w+|Body\.Trunk\.\w+)\.IsLocked")
_OPENINGS = re.compile(r"Vehicle\.(Cabin\.Door\.Row\d\.\w+|Body\.Trunk\.\w+|Body\.Hood)\.(IsOpen|Position|Switch)")
_WINDOWS = re.compile(r"Vehicle\.Cabin\.(Door\.Row\d\.\w+\.Window|Sunroof)\.(IsOpen|Position|Switch)")
_FLAPS = re.compile(r"Vehicle\.Powertrain\.TractionBattery\.Charging\.ChargingPort\.\w+\.IsFlapOpen")
DRIVER_LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"  # locked or not, the car


def _opens(path: str, value: Value) -> bool:
    """Whether setting ``path`` to ``value`` opens (a door, the trunk, the hood, a window, the sunroof: see
    ``opens_the_car``)."""
    name = path.rsplit(".", 1)[-1]
    if name in ("IsOpen", "IsFlapOpen"):
        return value is True
    if name == "Position":
        return isinstance(value, int | float) and value > 0
    return value in ("OPEN", "ONE_SHOT_OPEN", "TILT_UP")  # a Switch (the sunroof's tilts open)


def can_open(path: str) -> bool:
    """Whether some value of ``path`` unlocks or opens the car (a lock, a door, the trunk, the hood, a window, the
    sunroof, a charging flap)."""
    return any(pattern.fullmatch(path) for pattern in (_LOCKS, _OPENINGS, _WINDOWS, _FLAPS))


def opens_the_car(targets: Mapping[str, Value], locked: bool) -> list[str]:
    """The paths of ``targets`` that open the car (``locked``: its doors are locked now, so a window or the
    sunroof counts)."""
    found = []
    for path, value in targets.items():
        if (_LOCKS.fullmatch(path) and value is False) or (_FLAPS.fullmatch(path) and value is True) or (
                _OPENINGS.fullmatch(path) and _opens(path, value)) or (
                locked and _WINDOWS.fullmatch(path) and _opens(path, value)):
            found.append(path)
    return found


def depends_on_locks(paths: Iterable[str]) -> bool:
    """Whether what ``opens_the_car`` says of these paths depends on the car being locked (a window, the
    sunroof)."""
    return any(_WINDOWS.fullmatch(p) for p in paths)


class SignatureRequiredError(NotPermittedError):
    """What opens the car, asked of an entrance that cannot sign (audited as ``signature_required``)."""

    code = "signature_required"


def refuse_opening(targets: Mapping[str, Value], locked: bool, entrance: str) -> None:
    """Raise SignatureRequiredError when ``targets`` open the car (see ``opens_the_car``), naming the ``entrance``
    that asked ("the centre screen", "gRPC")."""
    opening = opens_the_car(targets, locked)
    if opening:
        raise SignatureRequiredError(
            f"{opening[0]}: {entrance} may not open the car; unlocking and opening take a command signed by a "
            "paired phone key (the phone app, or POST /api/v1/vehicle/commands/unlock ...)", path=opening[0])


__all__ = ["DRIVER_LOCK", "SignatureRequiredError", "can_open", "depends_on_locks", "opens_the_car", "refuse_opening"]
