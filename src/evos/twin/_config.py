"""Vehicle configuration: frozen dataclasses (SI units in the names) and their loading from TOML/YAML.

A vehicle file has tables ``[body]`` or ``[road_load]``, ``[[motors]]``, ``[drivetrain]``, ``[battery]``,
``[charging]``, ``[climate]`` and top-level ``name``; every field is checked on load and a bad one
raises VehicleFileError naming the file and the field (``su7.toml: battery.gross_kwh: must be > 0``).
Real-world figures carry their source in a ``sources`` table or as comments in the file.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from evos._records import convert, from_mapping, rule
from evos.errors import DataError

LBF_N = 4.4482216152605  # newtons per pound-force
MPH_MPS = 0.44704  # metres per second per mile per hour
LB_KG = 0.45359237  # kilograms per pound
G_MPS2 = 9.80665  # standard gravity
AIR_DENSITY_KG_M3 = 1.2  # at 20 °C, 1013 hPa (the density SAE J2263 coast-downs are corrected to)

Chemistry = Literal["NMC", "LFP"]
Axle = Literal["front", "rear"]


class VehicleFileError(DataError):
    """A vehicle file is invalid; the message names the file and the field."""


def _increasing(points: Any) -> bool:
    return len(points) >= 2 and all(b[0] > a[0] for a, b in itertools.pairwise(points))


POSITIVE = rule(lambda v: v > 0, "must be > 0")
FRACTION = rule(lambda v: 0 < v <= 1, "must be in (0, 1]")
NON_NEGATIVE = rule(lambda v: v >= 0, "must be >= 0")
EFFICIENCY_MAP = rule(lambda p: p is None or (_increasing(p) and all(0 <= x <= 1 and 0 < y <= 1 for x, y in p)),
                      "needs at least two points with increasing x, loads in [0, 1] and efficiencies in (0, 1]")
DC_CURVE = rule(lambda p: _increasing(p) and all(0 <= x <= 100 and 0 <= y <= 1 for x, y in p),
                "needs at least two points with increasing x, SoC in [0, 100] % and power fractions in [0, 1]")


@dataclass(frozen=True)
class RoadLoad:
    """Coast-down road load F = f0 + f1 v + f2 v² (N, v in m/s) on the flat, at test mass."""

    f0_n: float = field(metadata=NON_NEGATIVE)
    f1_n_per_mps: float = 0.0
    f2_n_per_mps2: float = field(default=0.0, metadata=NON_NEGATIVE)

    @classmethod
    def from_epa(cls, a_lbf: float, b_lbf_per_mph: float, c_lbf_per_mph2: float) -> RoadLoad:
        """From EPA target coefficients (F = A + B v + C v², lbf with v in mph)."""
        return cls(a_lbf * LBF_N, b_lbf_per_mph * LBF_N / MPH_MPS, c_lbf_per_mph2 * LBF_N / MPH_MPS**2)


@dataclass(frozen=True)
class Body:
    """Body data: masses, aerodynamic drag and rolling resistance."""

    curb_mass_kg: float = field(metadata=POSITIVE)
    drag_coefficient: float = field(metadata=POSITIVE)
    frontal_area_m2: float = field(metadata=POSITIVE)
    rolling_resistance: float = field(default=0.0085, metadata=POSITIVE)  # typical EV tyre, unitless
    payload_kg: float = field(default=136.0, metadata=NON_NEGATIVE)  # 300 lb: driver + EPA test load
    rotating_inertia_factor: float = field(default=0.03, metadata=NON_NEGATIVE)  # wheels, motor, gear

    @property
    def mass_kg(self) -> float:
        return self.curb_mass_kg + self.payload_kg

    def road_load(self, air_density_kg_m3: float = AIR_DENSITY_KG_M3) -> RoadLoad:
        return RoadLoad(
            f0_n=self.rolling_resistance * self.mass_kg * G_MPS2,
            f2_n_per_mps2=0.5 * air_density_kg_m3 * self.drag_coefficient * self.frontal_area_m2,
        )


@dataclass(frozen=True)
class Motor:
    """One traction motor with its inverter and reduction gear, on one axle."""

    peak_power_kw: float = field(metadata=POSITIVE)
    peak_torque_nm: float = field(metadata=POSITIVE)
    axle: Axle = "rear"
    max_speed_rpm: float = field(default=16000.0, metadata=POSITIVE)
    gear_ratio: float = field(default=9.0, metadata=POSITIVE)


@dataclass(frozen=True)
class Drivetrain:
    """Losses of motor + inverter + gear, shared by all motors (see docs/twin.md for the calibration).

    Loss at mechanical power P (W) and motor count n: ``P_spin + (1/eta - 1)|P| + k_cu P²/P_peak`` where
    ``P_spin = n * spin_loss_w * v/v_ref`` grows with speed (bearing, windage, iron losses).
    """

    wheel_radius_m: float = field(default=0.34, metadata=POSITIVE)
    # Defaults calibrated over the EPA 2022 BEV tests (scripts/calibrate_epa.py, docs/twin.md).
    efficiency: float = field(default=0.9255, metadata=FRACTION)  # marginal efficiency, wheel<->DC bus
    copper_loss_fraction: float = field(default=0.0773, metadata=NON_NEGATIVE)  # extra loss at peak power
    spin_loss_w: float = field(default=201.3, metadata=NON_NEGATIVE)  # per motor at 100 km/h
    regen_fraction: float = field(default=0.7911, metadata=FRACTION)  # share of braking the motor takes
    regen_fade_mps: float = field(default=2.0, metadata=NON_NEGATIVE)  # regen fades out below this
    # optional measured map: [[fraction of peak power, efficiency], ...]; replaces `efficiency` and
    # `copper_loss_fraction` (the spin loss still applies), as FASTSim's motor efficiency maps do
    efficiency_map: tuple[tuple[float, float], ...] | None = field(default=None, metadata=EFFICIENCY_MAP)
    tyre_grip: float = field(default=1.0, metadata=POSITIVE)  # road friction coefficient (dry)


@dataclass(frozen=True)
class Battery:
    """Traction battery pack: cells in series/parallel with an equivalent circuit (R0 + one RC pair)."""

    chemistry: Chemistry
    gross_kwh: float = field(metadata=POSITIVE)
    usable_fraction: float = field(default=0.95, metadata=FRACTION)
    cells_series: int = field(default=108, metadata=POSITIVE)
    cells_parallel: int = field(default=1, metadata=POSITIVE)  # pack resistance = cell R · s / p
    cell_r0_ohm: float = field(default=0.0005, metadata=POSITIVE)  # per cell at 25 °C (large-format cell)
    cell_r1_ohm: float = field(default=0.0003, metadata=NON_NEGATIVE)  # pack DCIR ~77 mΩ at 96s1p

    @property
    def pack_r0_ohm(self) -> float:
        return self.cell_r0_ohm * self.cells_series / self.cells_parallel

    @property
    def pack_r1_ohm(self) -> float:
        return self.cell_r1_ohm * self.cells_series / self.cells_parallel
    cell_tau_s: float = field(default=20.0, metadata=POSITIVE)  # R1·C1
    max_discharge_kw: float = field(default=300.0, metadata=POSITIVE)
    max_charge_kw: float = field(default=150.0, metadata=POSITIVE)
    heat_capacity_j_per_k: float = field(default=4.0e5, metadata=POSITIVE)  # pack, lumped
    # pack to ambient with liquid cooling running (about 1.5 kW removed at 20 K above ambient)
    thermal_resistance_k_per_w: float = field(default=0.015, metadata=POSITIVE)
    # heater for battery conditioning (electric = heat). Assumed: 7 kW warms a 400 kJ/K pack from -10 to 35 °C
    # in about 45 min, in line with the 30-45 min Tesla's battery preconditioning is reported to take in the cold
    heater_kw: float = field(default=7.0, metadata=NON_NEGATIVE)

    @property
    def usable_kwh(self) -> float:
        return self.gross_kwh * self.usable_fraction


@dataclass(frozen=True)
class Charging:
    """On-board AC charger and DC fast charging (power curve over state of charge)."""

    ac_max_kw: float = field(default=11.0, metadata=POSITIVE)
    charger_efficiency: float = field(default=0.90, metadata=FRACTION)  # AC wall -> DC battery
    dc_max_kw: float = field(default=150.0, metadata=POSITIVE)
    dc_curve: tuple[tuple[float, float], ...] = field(
        default=((0.0, 1.0), (50.0, 1.0), (80.0, 0.55), (100.0, 0.1)), metadata=DC_CURVE)


@dataclass(frozen=True)
class Climate:
    """Cabin heating/cooling and constant auxiliary loads."""

    heat_pump: bool = True
    aux_w: float = field(default=300.0, metadata=NON_NEGATIVE)  # low-voltage loads, screens, pumps
    heater_max_kw: float = field(default=7.0, metadata=POSITIVE)
    cabin_ua_w_per_k: float = field(default=120.0, metadata=POSITIVE)  # cabin heat loss coefficient


@dataclass(frozen=True)
class Chassis:
    """The car's geometry and brakes, as the twin, driver assistance and the scenario engine all use them."""

    wheelbase_m: float = field(default=2.9, metadata=POSITIVE)  # typical mid-size car when the file gives none
    length_m: float = field(default=4.8, metadata=POSITIVE)
    width_m: float = field(default=1.9, metadata=POSITIVE)  # without mirrors
    max_brake_mps2: float = field(default=9.0, metadata=POSITIVE)  # full brake pedal: the tyre limit, dry asphalt
    coast_regen_mps2: float = field(default=0.5, metadata=NON_NEGATIVE)  # both pedals released: gentle regen


@dataclass(frozen=True)
class Vehicle:
    """A vehicle for the twin. ``body`` or ``road_load`` (with ``test_mass_kg``) defines the road load."""

    name: str
    motors: tuple[Motor, ...]
    battery: Battery
    body: Body | None = None
    road_load: RoadLoad | None = None
    test_mass_kg: float | None = None
    drivetrain: Drivetrain = Drivetrain()
    charging: Charging = Charging()
    climate: Climate = Climate()
    chassis: Chassis = Chassis()
    max_speed_kmh: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)  # provenance, not a property

    def __post_init__(self) -> None:
        if (self.body is None) == (self.road_load is None):
            raise ValueError("give exactly one of body or road_load")
        if self.road_load is not None and self.test_mass_kg is None:
            raise ValueError("road_load needs test_mass_kg")
        if not self.motors:
            raise ValueError("at least one motor is needed")

    @property
    def mass_kg(self) -> float:
        """Test mass (kg): curb mass plus payload, or the given test mass."""
        return self.body.mass_kg if self.body is not None else float(self.test_mass_kg)  # type: ignore[arg-type]

    @property
    def inertial_mass_kg(self) -> float:
        """Mass plus the equivalent mass of rotating parts."""
        factor = self.body.rotating_inertia_factor if self.body is not None else 0.0
        return self.mass_kg * (1 + factor)

    @property
    def resistance(self) -> RoadLoad:
        return self.body.road_load() if self.body is not None else self.road_load  # type: ignore[return-value]

    @property
    def peak_power_kw(self) -> float:
        return sum(m.peak_power_kw for m in self.motors)


# ---- loading ----------------------------------------------------------------------------------------
_SECTIONS: dict[str, type] = {
    "body": Body, "road_load": RoadLoad, "drivetrain": Drivetrain, "battery": Battery,
    "charging": Charging, "climate": Climate, "chassis": Chassis,
}


def _convert(cls: type, data: Any, source: str, where: str) -> Any:
    return from_mapping(cls, data, source, where, VehicleFileError)


def vehicle_from_mapping(data: Mapping[str, Any], source: str) -> Vehicle:
    """Build and check a Vehicle from parsed file content; VehicleFileError names the bad field."""
    allowed = {"name", "motors", "test_mass_kg", "max_speed_kmh", "sources", *_SECTIONS}
    unknown = set(data) - allowed
    if unknown:
        raise VehicleFileError(source, sorted(unknown)[0], f"unknown section (known: {', '.join(sorted(allowed))})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise VehicleFileError(source, "name", "missing or not a string")
    motors = data.get("motors")
    if not isinstance(motors, list) or not motors:
        raise VehicleFileError(source, "motors", "needs at least one [[motors]] entry")
    parts = {key: _convert(cls, data[key], source, key) for key, cls in _SECTIONS.items() if key in data}
    kwargs: dict[str, Any] = {
        "name": name,
        "motors": tuple(_convert(Motor, m, source, f"motors[{i}]") for i, m in enumerate(motors)),
        **parts,
    }
    for key in ("test_mass_kg", "max_speed_kmh"):
        if key in data:
            kwargs[key] = convert(float, data[key], source, key, VehicleFileError)
            if kwargs[key] <= 0:
                raise VehicleFileError(source, key, "must be > 0")
    if "sources" in data:
        if not isinstance(data["sources"], Mapping):
            raise VehicleFileError(source, "sources", "must be a table of field = source text")
        kwargs["sources"] = {str(k): str(v) for k, v in data["sources"].items()}
    if "battery" not in kwargs:
        raise VehicleFileError(source, "battery", "missing required section")
    try:
        vehicle = Vehicle(**kwargs)
    except ValueError as exc:
        raise VehicleFileError(source, None, str(exc)) from None
    if not road_load_is_positive(vehicle.resistance):
        raise VehicleFileError(source, "road_load" if vehicle.road_load else "body",
                               "the road load must be positive at every speed (check f0, f1, f2)")
    return vehicle


def road_load_is_positive(road_load: RoadLoad) -> bool:
    """True if F = f0 + f1 v + f2 v² > 0 from walking pace to 250 km/h."""
    speeds = [0.5 + 0.5 * i for i in range(140)]
    return all(road_load.f0_n + road_load.f1_n_per_mps * v + road_load.f2_n_per_mps2 * v * v > 0 for v in speeds)


def read_vehicle_file(path: Path) -> Vehicle:
    """Load a vehicle from a TOML or YAML file."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise VehicleFileError(str(path), None, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise VehicleFileError(str(path), None, f"not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    return vehicle_from_mapping(data or {}, str(path))
