"""Forward object-list sensors: what the controllers see of the world.

The simulator knows the truth (:class:`ObjectTruth`); a sensor turns it into a :class:`SensorFrame` of
:class:`Track` objects — limited in range and field of view, with Gaussian noise from an injected seeded
``numpy.random.Generator`` and a latency of whole steps. Controllers only ever get frames.
"""

from __future__ import annotations

import abc
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from evos.adas._params import SensorParams

NOISE_BLOCK = 1024  # rows of noise drawn at once


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one object relative to the ego (simulator side only)."""

    object_id: int
    range_m: float  # ego front bumper to object rear bumper, along the road
    range_rate_mps: float  # d(range)/dt: negative when closing
    range_accel_mps2: float  # d(range_rate)/dt
    lateral_m: float  # object centre minus ego centre, positive left
    width_m: float


@dataclass(frozen=True)
class Track:
    """One object as the sensor reports it (the ``object_id`` is the tracker's id)."""

    object_id: int
    range_m: float
    range_rate_mps: float
    range_accel_mps2: float
    lateral_m: float
    width_m: float

    def ttc_s(self) -> float:
        """Time to collision at the current closing speed (inf when not closing)."""
        return self.range_m / -self.range_rate_mps if self.range_rate_mps < 0 else math.inf


@dataclass(frozen=True)
class SensorFrame:
    """The sensor output at ``now_s``: tracks and a health flag (a blind or failed sensor is not healthy)."""

    now_s: float
    tracks: tuple[Track, ...] = ()
    healthy: bool = True


class ObjectSensor(abc.ABC):
    """The interface of a forward object-list sensor; tests and the simulator may plug in any implementation."""

    @abc.abstractmethod
    def measure(self, now_s: float, truth: tuple[ObjectTruth, ...], healthy: bool = True) -> SensorFrame:
        """The frame available to the controllers at ``now_s`` (it may describe an earlier instant)."""


def visible(params: SensorParams, obj: ObjectTruth) -> bool:
    """Whether the object is within range and inside the field of view (its nearest edge counts)."""
    if obj.range_m <= 0 or obj.range_m > params.max_range_m:
        return False
    nearest_lateral = max(abs(obj.lateral_m) - obj.width_m / 2, 0.0)
    return math.degrees(math.atan2(nearest_lateral, obj.range_m)) <= params.fov_deg / 2


class RadarSensor(ObjectSensor):
    """A radar/camera object list with Gaussian noise and a fixed latency of ``params.latency_steps`` calls."""

    def __init__(self, params: SensorParams, rng: np.random.Generator) -> None:
        self.params = params
        self._rng = rng
        self._pipeline: deque[SensorFrame] = deque()
        self._noise = np.empty((0, 4))
        self._next = 0

    def _normal4(self) -> np.ndarray:
        """Four standard normal draws (drawn from the generator in blocks: same sequence, far fewer calls)."""
        if self._next >= len(self._noise):
            self._noise = self._rng.standard_normal((NOISE_BLOCK, 4))
            self._next = 0
        self._next += 1
        return self._noise[self._next - 1]

    def _detect(self, now_s: float, truth: tuple[ObjectTruth, ...], healthy: bool) -> SensorFrame:
        p = self.params
        if not healthy:
            return SensorFrame(now_s, (), healthy=False)
        tracks = []
        for obj in truth:
            if not visible(p, obj):
                continue
            n = self._normal4().tolist()
            tracks.append(Track(obj.object_id, max(obj.range_m + p.range_noise_m * n[0], 0.0),
                                obj.range_rate_mps + p.range_rate_noise_mps * n[1],
                                obj.range_accel_mps2 + p.accel_noise_mps2 * n[2],
                                obj.lateral_m + p.lateral_noise_m * n[3], obj.width_m))
        return SensorFrame(now_s, tuple(tracks))

    def measure(self, now_s: float, truth: tuple[ObjectTruth, ...], healthy: bool = True) -> SensorFrame:
        self._pipeline.append(self._detect(now_s, truth, healthy))
        if len(self._pipeline) <= self.params.latency_steps:
            return SensorFrame(now_s, ())  # still filling the pipeline: nothing reported yet
        frame = self._pipeline.popleft()
        return SensorFrame(now_s, frame.tracks, frame.healthy)
