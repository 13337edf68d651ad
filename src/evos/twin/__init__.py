"""The digital twin: a physics model of an electric car that drives cycles, charges and provides signals.

Public API: ``load_vehicle(name_or_path)``, ``load_cycle(name_or_path)``, ``simulate_cycle(vehicle, cycle)``
and ``simulate_batch(vehicles, cycle)``; vehicles and cycles are plain frozen data.
"""

from evos.twin._config import Battery, Body, Charging, Climate, Drivetrain, Motor, RoadLoad, Vehicle, VehicleFileError
from evos.twin._cycles import BUILTIN as BUILTIN_CYCLES
from evos.twin._cycles import Cycle, CycleFileError, load_cycle
from evos.twin._simulate import CycleResult, simulate_batch, simulate_cycle
from evos.twin._vehicles import list_vehicles, load_vehicle

__all__ = [
    "BUILTIN_CYCLES",
    "Battery",
    "Body",
    "Charging",
    "Climate",
    "Cycle",
    "CycleFileError",
    "CycleResult",
    "Drivetrain",
    "Motor",
    "RoadLoad",
    "Vehicle",
    "VehicleFileError",
    "list_vehicles",
    "load_cycle",
    "load_vehicle",
    "simulate_batch",
    "simulate_cycle",
]
