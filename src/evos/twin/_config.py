"""Vehicle configuration: frozen dataclasses (SI units in the names) and their loading from TOML/YAML.

A vehicle file has tables ``[body]`` or ``[road_load]``, ``[[motors]]``, ``[drivetrain]``, ``[battery]``,
``[charging]``, ``[climate]`` and top-level ``name``; every field is checked on load and a bad one
raises VehicleFileError naming the file and the field (``su7.toml: battery.gross_kwh: must be > 0``).
Real-world figures carry their source in a ``sources`` table or as comments in the file.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

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


def _positive(value: float) -> bool:
    return value > 0


def _fraction(value: float) -> bool:
    return 0 < value <= 1


def _non_negative(value: float) -> bool:
    return value >= 0


def _efficiency_pairs(points: Any) -> bool:
    return points is None or all(0 <= x <= 1 and 0 < y <= 1 for x, y in points)


def _curve_pairs(points: Any) -> bool:
    return all(0 <= x <= 100 and 0 <= y <= 1 for x, y in points)


_RULES = {_positive: "must be > 0", _fraction: "must be in (0, 1]", _non_negative: "must be >= 0",
          _efficiency_pairs: "needs loads in [0, 1] and efficiencies in (0, 1]",
          _curve_pairs: "needs SoC in [0, 100] % and power fractions in [0, 1]"}


def check(rule: Any) -> Any:
    """Field metadata: a predicate the value must satisfy."""
    return {"check": rule}


@dataclass(frozen=True)
class RoadLoad:
    """Coast-down road load F = f0 + f1 v + f2 v² (N, v in m/s) on the flat, at test mass."""

    f0_n: float = field(metadata=check(_non_negative))
    f1_n_per_mps: float = 0.0
    f2_n_per_mps2: float = field(default=0.0, metadata=check(_non_negative))

    @classmethod
    def from_epa(cls, a_lbf: float, b_lbf_per_mph: float, c_lbf_per_mph2: float) -> RoadLoad:
        """From EPA target coefficients (F = A + B v + C v², lbf with v in mph)."""
        return cls(a_lbf * LBF_N, b_lbf_per_mph * LBF_N / MPH_MPS, c_lbf_per_mph2 * LBF_N / MPH_MPS**2)


@dataclass(frozen=True)
class Body:
    """Body data: masses, aerodynamic drag and rolling resistance."""

    curb_mass_kg: float = field(metadata=check(_positive))
    drag_coefficient: float = field(metadata=check(_positive))
    frontal_area_m2: float = field(metadata=check(_positive))
    rolling_resistance: float = field(default=0.0085, metadata=check(_positive))  # typical EV tyre, unitless
    payload_kg: float = field(default=136.0, metadata=check(_non_negative))  # 300 lb: driver + EPA test load
    rotating_inertia_factor: float = field(default=0.03, metadata=check(_non_negative))  # wheels, motor, gear

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

    peak_power_kw: float = field(metadata=check(_positive))
    peak_torque_nm: float = field(metadata=check(_positive))
    axle: Axle = "rear"
    max_speed_rpm: float = field(default=16000.0, metadata=check(_positive))
    gear_ratio: float = field(default=9.0, metadata=check(_positive))


@dataclass(frozen=True)
class Drivetrain:
    """Losses of motor + inverter + gear, shared by all motors (see docs/twin.md for the calibration).

    Loss at mechanical power P (W) and motor count n: ``P_spin + (1/eta - 1)|P| + k_cu P²/P_peak`` where
    ``P_spin = n * spin_loss_w * v/v_ref`` grows with speed (bearing, windage, iron losses).
    """

    wheel_radius_m: float = field(default=0.34, metadata=check(_positive))
    # Defaults calibrated over the EPA 2022 BEV tests (scripts/calibrate_epa.py, docs/twin.md).
    efficiency: float = field(default=0.92, metadata=check(_fraction))  # marginal efficiency, wheel<->DC bus
    copper_loss_fraction: float = field(default=0.01, metadata=check(_non_negative))  # extra loss at peak power
    spin_loss_w: float = field(default=175.0, metadata=check(_non_negative))  # per motor at 100 km/h
    regen_fraction: float = field(default=0.78, metadata=check(_fraction))  # share of braking the motor takes
    regen_fade_mps: float = field(default=2.0, metadata=check(_non_negative))  # regen fades out below this
    # optional measured map: [[fraction of peak power, efficiency], ...]; replaces `efficiency` and
    # `copper_loss_fraction` (the spin loss still applies), as FASTSim's motor efficiency maps do
    efficiency_map: tuple[tuple[float, float], ...] | None = field(default=None, metadata=check(_efficiency_pairs))
    tyre_grip: float = field(default=1.0, metadata=check(_positive))  # road friction coefficient (dry)


@dataclass(frozen=True)
class Battery:
    """Traction battery pack: cells in series/parallel with an equivalent circuit (R0 + one RC pair)."""

    chemistry: Chemistry
    gross_kwh: float = field(metadata=check(_positive))
    usable_fraction: float = field(default=0.95, metadata=check(_fraction))
    cells_series: int = field(default=108, metadata=check(_positive))
    cells_parallel: int = field(default=1, metadata=check(_positive))  # pack resistance = cell R · s / p
    cell_r0_ohm: float = field(default=0.0005, metadata=check(_positive))  # per cell at 25 °C (large-format cell)
    cell_r1_ohm: float = field(default=0.0003, metadata=check(_non_negative))  # pack DCIR ~77 mΩ at 96s1p

    @property
    def pack_r0_ohm(self) -> float:
        return self.cell_r0_ohm * self.cells_series / self.cells_parallel

    @property
    def pack_r1_ohm(self) -> float:
        return self.cell_r1_ohm * self.cells_series / self.cells_parallel
    cell_tau_s: float = field(default=20.0, metadata=check(_positive))  # R1·C1
    max_discharge_kw: float = field(default=300.0, metadata=check(_positive))
    max_charge_kw: float = field(default=150.0, metadata=check(_positive))
    heat_capacity_j_per_k: float = field(default=4.0e5, metadata=check(_positive))  # pack, lumped
    # pack to ambient with liquid cooling running (about 1.5 kW removed at 20 K above ambient)
    thermal_resistance_k_per_w: float = field(default=0.015, metadata=check(_positive))

    @property
    def usable_kwh(self) -> float:
        return self.gross_kwh * self.usable_fraction


@dataclass(frozen=True)
class Charging:
    """On-board AC charger and DC fast charging (power curve over state of charge)."""

    ac_max_kw: float = field(default=11.0, metadata=check(_positive))
    charger_efficiency: float = field(default=0.90, metadata=check(_fraction))  # AC wall -> DC battery
    dc_max_kw: float = field(default=150.0, metadata=check(_positive))
    dc_curve: tuple[tuple[float, float], ...] = field(
        default=((0.0, 1.0), (50.0, 1.0), (80.0, 0.55), (100.0, 0.1)), metadata=check(_curve_pairs))


@dataclass(frozen=True)
class Climate:
    """Cabin heating/cooling and constant auxiliary loads."""

    heat_pump: bool = True
    aux_w: float = field(default=300.0, metadata=check(_non_negative))  # low-voltage loads, screens, pumps
    heater_max_kw: float = field(default=7.0, metadata=check(_positive))
    cabin_ua_w_per_k: float = field(default=120.0, metadata=check(_positive))  # cabin heat loss coefficient


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
    "charging": Charging, "climate": Climate,
}


def _convert(cls: type, data: Any, source: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise VehicleFileError(source, where, f"must be a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise VehicleFileError(source, f"{where}.{sorted(unknown)[0]}", f"unknown field (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        path = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise VehicleFileError(source, path, "missing required field")
            continue
        values[name] = _value(hints[name], data[name], source, path)
        rule = f.metadata.get("check")
        if rule is not None and not rule(values[name]):
            raise VehicleFileError(source, path, f"{_RULES[rule]}, got {values[name]!r}")
    return cls(**values)


def _value(hint: Any, raw: Any, source: str, path: str) -> Any:
    optional = [a for a in get_args(hint) if a is not type(None)] if type(None) in get_args(hint) else None
    if optional is not None and len(optional) == 1:
        return None if raw is None else _value(optional[0], raw, source, path)
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise VehicleFileError(source, path, f"must be a number, got {raw!r}")
        return float(raw)
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise VehicleFileError(source, path, f"must be an integer, got {raw!r}")
        return raw
    if hint is bool:
        if not isinstance(raw, bool):
            raise VehicleFileError(source, path, f"must be true or false, got {raw!r}")
        return raw
    if getattr(hint, "__origin__", None) is Literal:
        if raw not in get_args(hint):
            raise VehicleFileError(source, path, f"must be one of {list(get_args(hint))}, got {raw!r}")
        return raw
    if hint == tuple[tuple[float, float], ...]:
        try:
            points = tuple((float(a), float(b)) for a, b in raw)
        except (TypeError, ValueError):
            raise VehicleFileError(source, path, "must be a list of [x, y] pairs") from None
        if len(points) < 2 or any(b[0] <= a[0] for a, b in itertools.pairwise(points)):
            raise VehicleFileError(source, path, "needs at least two points with increasing x")
        return points
    raise VehicleFileError(source, path, f"unsupported field type {hint}")


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
            kwargs[key] = _value(float, data[key], source, key)
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
