"""The digital twin: a physics model of an electric car that drives cycles, charges and provides signals.

Public API: ``load_vehicle(name_or_path)``, ``load_cycle(name_or_path)``, ``simulate_cycle(vehicle, cycle)``
and ``simulate_batch(vehicles, cycle)``; vehicles and cycles are plain frozen data.
"""

from evos.twin._body import BodyProvider, body_load_w
from evos.twin._config import Battery, Body, Charging, Climate, Drivetrain, Motor, RoadLoad, Vehicle, VehicleFileError
from evos.twin._cycles import BUILTIN as BUILTIN_CYCLES
from evos.twin._cycles import Cycle, CycleFileError, load_cycle
from evos.twin._provider import OVERLAY as TWIN_OVERLAY
from evos.twin._provider import TwinProvider
from evos.twin._realtime import Controls, TwinState, drive_force_limit_n, parked_runtime_s, step
from evos.twin._simulate import CycleResult, simulate_batch, simulate_cycle
from evos.twin._store import StateStore
from evos.twin._vehicles import list_vehicles, load_vehicle

__all__ = [
    "BUILTIN_CYCLES",
    "TWIN_OVERLAY",
    "Battery",
    "Body",
    "BodyProvider",
    "Charging",
    "Climate",
    "Controls",
    "Cycle",
    "CycleFileError",
    "CycleResult",
    "Drivetrain",
    "Motor",
    "RoadLoad",
    "StateStore",
    "TwinProvider",
    "TwinState",
    "Vehicle",
    "VehicleFileError",
    "body_load_w",
    "drive_force_limit_n",
    "list_vehicles",
    "load_cycle",
    "load_vehicle",
    "parked_runtime_s",
    "simulate_batch",
    "simulate_cycle",
    "step",
]
