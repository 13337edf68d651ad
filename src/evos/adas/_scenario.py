"""Scenarios: an ego, scripted targets and background traffic on a multi-lane road, as frozen dataclasses and YAML.

Positions are along the road; a target's ``gap_m`` is from the ego's front bumper to the target's rear bumper.
Lanes are numbered relative to the ego's starting lane (0), positive to the left; the ``road`` says how many
lanes there are and which is the ego's (default: 3 lanes of 3.5 m, the ego in the middle one), and its segments.
The file schema is documented in docs/adas.md; a bad file raises :class:`ScenarioFileError` naming the file and
the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evos._records import from_mapping
from evos.adas._lateral import LaneSensorParams
from evos.adas._params import CAR_LENGTH_M, CAR_WIDTH_M, LANE_WIDTH_M, EgoLimits, SensorParams, _check
from evos.adas._road import Road
from evos.adas._traffic import TrafficSpec
from evos.errors import DataError, InvalidArgumentError


class ScenarioFileError(DataError):
    """A scenario file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class TargetAction:
    """A scripted change of a target, fired once when ``at_s`` is reached or the gap shrinks to ``at_gap_m``.

    Longitudinal: accelerate at ``accel_mps2`` (negative: brake) until ``until_speed_mps``. Lateral: move to
    ``to_lane`` (plus ``to_offset_m``) over ``duration_s`` with a smooth (cosine) profile.
    """

    at_s: float | None = None
    at_gap_m: float | None = None
    accel_mps2: float | None = None
    until_speed_mps: float = 0.0
    to_lane: int | None = None
    to_offset_m: float = 0.0
    duration_s: float = 3.0

    def __post_init__(self) -> None:
        if (self.at_s is None) == (self.at_gap_m is None):
            raise InvalidArgumentError("give exactly one trigger (at_s or at_gap_m)")
        if (self.accel_mps2 is None) == (self.to_lane is None):
            raise InvalidArgumentError("give exactly one change (accel_mps2 or to_lane)")
        _check(self, {"until_speed_mps": (0.0, 70.0), "duration_s": (0.1, 30.0), "to_offset_m": (-5.0, 5.0)})
        for name, (lo, hi) in {"at_s": (0.0, 3600.0), "at_gap_m": (-50.0, 500.0),
                               "accel_mps2": (-12.0, 10.0)}.items():
            if getattr(self, name) is not None:
                _check(self, {name: (lo, hi)})


@dataclass(frozen=True)
class TargetSpec:
    """A target vehicle: initial gap and speed, lane and lateral position, size and scripted actions.

    ``overlap_pct`` (Euro NCAP style, -100..100, negative: target offset to the right) sets the lateral offset
    from the share of the ego's width the target covers; otherwise ``offset_m`` (positive left) applies.
    """

    gap_m: float
    speed_mps: float
    name: str = "target"
    lane: int = 0
    offset_m: float = 0.0
    overlap_pct: float | None = None
    width_m: float = CAR_WIDTH_M
    length_m: float = CAR_LENGTH_M
    actions: tuple[TargetAction, ...] = ()

    def __post_init__(self) -> None:
        _check(self, {"gap_m": (-100.0, 1000.0), "speed_mps": (0.0, 70.0), "lane": (-5, 5),
                      "offset_m": (-5.0, 5.0), "width_m": (0.3, 3.0), "length_m": (0.3, 20.0)})
        if self.overlap_pct is not None:
            _check(self, {"overlap_pct": (-100.0, 100.0)})
            if self.overlap_pct == 0:
                raise InvalidArgumentError("TargetSpec.overlap_pct: must not be 0 (give offset_m instead)")

    def lateral_m(self, ego_width_m: float, lane_width_m: float = LANE_WIDTH_M) -> float:
        """Initial lateral position of the target's centre relative to the ego's centre (m, positive left)."""
        if self.overlap_pct is None:
            return self.lane * lane_width_m + self.offset_m
        covered_m = abs(self.overlap_pct) / 100 * ego_width_m
        return self.lane * lane_width_m + math.copysign((ego_width_m + self.width_m) / 2 - covered_m,
                                                        self.overlap_pct)


@dataclass(frozen=True)
class EgoSpec:
    """The ego car: vehicle preset, initial speed, which functions are on, and the driver's brake presses."""

    speed_mps: float
    vehicle: str = "xiaomi-su7"
    acc: bool = False
    set_speed_mps: float | None = None  # ACC set speed; default: the initial speed
    time_gap_s: float = 1.8
    aeb: bool = True
    lane_centring: bool = False  # highway pilot: ACC + lane centring (+ lane changes on request)
    auto_lane_change: bool = False  # ... and it overtakes slower traffic by itself
    lane_change_requests: tuple[tuple[float, int], ...] = ()  # [time_s, +1 left / -1 right]: the indicator stalk
    brake_pedal: tuple[tuple[float, float], ...] = ()  # [start_s, end_s] windows the driver brakes
    steering_torque: tuple[tuple[float, float], ...] = ()  # [start_s, end_s] windows the driver steers
    driver_brake_mps2: float = 3.0  # how hard the driver brakes in those windows
    limits: EgoLimits = field(default_factory=EgoLimits)

    def __post_init__(self) -> None:
        _check(self, {"speed_mps": (0.0, 70.0), "time_gap_s": (1.0, 2.5), "driver_brake_mps2": (0.0, 12.0)})
        for i, (_, direction) in enumerate(self.lane_change_requests):
            if direction not in (-1, 1):
                raise InvalidArgumentError(f"EgoSpec.lane_change_requests: entry {i} direction must be 1 (left) or "
                                           f"-1 (right), got {direction!r}")
        if self.auto_lane_change and not self.lane_centring:
            raise InvalidArgumentError("EgoSpec.auto_lane_change: needs lane_centring: true")
        if self.set_speed_mps is not None:
            _check(self, {"set_speed_mps": (0.0, 60.0)})

    @property
    def pilot(self) -> bool:
        """Whether the highway pilot (ACC + lateral functions) drives, rather than ACC alone or the driver."""
        return self.lane_centring


@dataclass(frozen=True)
class Scenario:
    """One test: ego, targets, duration and rate, sensor and seed; ``end_when_matched`` ends a run as Euro NCAP
    does once AEB has braked and the ego is no faster than the object ahead, or once the ego stands still behind it."""

    name: str
    ego: EgoSpec
    targets: tuple[TargetSpec, ...] = ()
    duration_s: float = 20.0
    rate_hz: float = 100.0
    seed: int = 0
    sensor: SensorParams = field(default_factory=SensorParams)
    lane_sensor: LaneSensorParams = field(default_factory=LaneSensorParams)
    road: Road = field(default_factory=Road)
    traffic: TrafficSpec = field(default_factory=TrafficSpec)
    sensor_fault: tuple[tuple[float, float], ...] = ()  # [start_s, end_s] windows the sensor reports a fault
    end_when_matched: bool = False
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)  # suite bookkeeping (test, speeds, ...)

    def __post_init__(self) -> None:
        _check(self, {"duration_s": (0.1, 3600.0), "rate_hz": (10.0, 200.0)})
        for i, target in enumerate(self.targets):
            lanes = [target.lane] + [a.to_lane for a in target.actions if a.to_lane is not None]
            if not all(self.road.has_lane(lane) for lane in lanes):
                raise InvalidArgumentError(f"Scenario.targets: target {i} uses a lane outside the road's "
                                           f"{self.road.lowest_lane}..{self.road.highest_lane} (relative to the ego)")


# ---- loading ----------------------------------------------------------------------------------------
def scenario_from_mapping(data: Any, source: str) -> Scenario:
    """Build and check a Scenario from parsed YAML; ScenarioFileError names the bad field."""
    scenario: Scenario = from_mapping(Scenario, data, source, "", ScenarioFileError, skip=frozenset({"tags"}))
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario YAML file; ScenarioFileError (a DataError) names the file and the field."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioFileError(str(path), None, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioFileError(str(path), None, f"not valid YAML: {exc}") from exc
    return scenario_from_mapping(data if data is not None else {}, str(path))
