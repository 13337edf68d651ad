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
    """Ground truth of the objects around the ego (simulator side only): arrays with one entry per object."""

    object_id: np.ndarray
    range_m: np.ndarray  # ego front bumper to object rear bumper, along the road (negative: beside or behind)
    range_rate_mps: np.ndarray  # d(range)/dt: negative when closing
    range_accel_mps2: np.ndarray  # d(range_rate)/dt
    lateral_m: np.ndarray  # object centre minus ego centre, positive left
    width_m: np.ndarray
    length_m: np.ndarray

    @classmethod
    def of(cls, *rows: tuple[int, float, float, float, float, float, float]) -> ObjectTruth:
        """From rows (id, range, range rate, range accel, lateral, width, length)."""
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        return cls(np.array(cols[0], dtype=np.int64), *(np.array(c, dtype=float) for c in cols[1:]))


@dataclass(frozen=True)
class Track:
    """One object as the sensor reports it (the ``object_id`` is the tracker's id)."""

    object_id: int
    range_m: float
    range_rate_mps: float
    range_accel_mps2: float
    lateral_m: float
    width_m: float
    length_m: float = 4.7

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
    def measure(self, now_s: float, truth: ObjectTruth, healthy: bool = True) -> SensorFrame:
        """The frame available to the controllers at ``now_s`` (it may describe an earlier instant)."""


def visible(params: SensorParams, truth: ObjectTruth, ego_length_m: float = 4.7) -> np.ndarray:
    """Which objects the sensor covers: ahead within range and field of view (nearest edge counts), or — with
    rear corner radars (``rear_range_m`` > 0) — beside or behind within that range of the ego's rear."""
    r = truth.range_m
    nearest_lateral = np.maximum(np.abs(truth.lateral_m) - truth.width_m / 2, 0.0)
    ahead = (r > 0) & (r <= params.max_range_m) & (nearest_lateral <= r * math.tan(math.radians(params.fov_deg / 2)))
    if params.rear_range_m <= 0:
        return ahead
    return ahead | ((r <= 0) & (-r - truth.length_m - ego_length_m <= params.rear_range_m))


class RadarSensor(ObjectSensor):
    """A radar/camera object list with Gaussian noise and a fixed latency of ``params.latency_steps`` calls."""

    def __init__(self, params: SensorParams, rng: np.random.Generator, ego_length_m: float = 4.7) -> None:
        self.params = params
        self.ego_length_m = ego_length_m
        self._rng = rng
        self._pipeline: deque[SensorFrame] = deque()
        self._noise = np.empty((0, 4))
        self._next = 0

    def _normal4(self, rows: int) -> np.ndarray:
        """``rows`` × 4 standard normal draws (drawn in blocks: same sequence, far fewer calls)."""
        if self._next + rows > len(self._noise):
            self._noise = np.concatenate([self._noise[self._next:],
                                          self._rng.standard_normal((max(NOISE_BLOCK, rows), 4))])
            self._next = 0
        self._next += rows
        return self._noise[self._next - rows:self._next]

    def _detect(self, now_s: float, truth: ObjectTruth, healthy: bool) -> SensorFrame:
        p = self.params
        if not healthy:
            return SensorFrame(now_s, (), healthy=False)
        seen = np.flatnonzero(visible(p, truth, self.ego_length_m))
        if len(seen) == 0:
            return SensorFrame(now_s)
        n = self._normal4(len(seen))
        rng = truth.range_m[seen]
        rng = np.where(rng > 0, np.maximum(rng + p.range_noise_m * n[:, 0], 0.0), rng + p.range_noise_m * n[:, 0])
        cols = (truth.object_id[seen].tolist(), rng.tolist(),
                (truth.range_rate_mps[seen] + p.range_rate_noise_mps * n[:, 1]).tolist(),
                (truth.range_accel_mps2[seen] + p.accel_noise_mps2 * n[:, 2]).tolist(),
                (truth.lateral_m[seen] + p.lateral_noise_m * n[:, 3]).tolist(),
                truth.width_m[seen].tolist(), truth.length_m[seen].tolist())
        return SensorFrame(now_s, tuple(Track(*row) for row in zip(*cols, strict=True)))

    def measure(self, now_s: float, truth: ObjectTruth, healthy: bool = True) -> SensorFrame:
        self._pipeline.append(self._detect(now_s, truth, healthy))
        if len(self._pipeline) <= self.params.latency_steps:
            return SensorFrame(now_s, ())  # still filling the pipeline: nothing reported yet
        frame = self._pipeline.popleft()
        return SensorFrame(now_s, frame.tracks, frame.healthy)
