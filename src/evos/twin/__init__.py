"""The digital twin: a physics model of an electric car that drives cycles, charges and provides signals.

Library API: ``load_vehicle(name_or_path)``, ``load_cycle(name_or_path)``, ``simulate_cycle(vehicle, cycle)``,
``simulate_batch(vehicles, cycle)``, the real-time ``step(vehicle, state, controls, dt_s)`` and
``parked_runtime_s``, the driver model, and the codec between VSS and the twin's ``Controls``
(``controls_from_vss``); vehicles and cycles are plain frozen data. Apps of the car: ``TWIN_APP`` (the
powertrain, battery, charging and climate) and ``BODY_APP`` (the body hardware), with ``TWIN_OVERLAY``.
"""

from evos.twin._body import BODY_APP, body_load_w
from evos.twin._codec import CONTROL_SIGNALS, LOADS, controls_from_vss
from evos.twin._config import (
    Battery,
    Body,
    Charging,
    Chassis,
    Climate,
    Drivetrain,
    Motor,
    RoadLoad,
    Vehicle,
    VehicleFileError,
)
from evos.twin._cycles import BUILTIN as BUILTIN_CYCLES
from evos.twin._cycles import Cycle, CycleFileError, load_cycle
from evos.twin._provider import OVERLAY as TWIN_OVERLAY
from evos.twin._provider import TWIN_APP
from evos.twin._realtime import (
    DRIVER_MODEL,
    Controls,
    DriverModel,
    TwinState,
    drive_force_limit_n,
    parked_runtime_s,
    step,
)
from evos.twin._simulate import CycleResult, simulate_batch, simulate_cycle
from evos.twin._vehicles import list_vehicles, load_vehicle

__all__ = [
    "BODY_APP",
    "BUILTIN_CYCLES",
    "CONTROL_SIGNALS",
    "DRIVER_MODEL",
    "LOADS",
    "TWIN_APP",
    "TWIN_OVERLAY",
    "Battery",
    "Body",
    "Charging",
    "Chassis",
    "Climate",
    "Controls",
    "Cycle",
    "CycleFileError",
    "CycleResult",
    "DriverModel",
    "Drivetrain",
    "Motor",
    "RoadLoad",
    "TwinState",
    "Vehicle",
    "VehicleFileError",
    "body_load_w",
    "controls_from_vss",
    "drive_force_limit_n",
    "list_vehicles",
    "load_cycle",
    "load_vehicle",
    "parked_runtime_s",
    "simulate_batch",
    "simulate_cycle",
    "step",
]
