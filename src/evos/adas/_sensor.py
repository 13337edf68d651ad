"""Forward object-list sensors: what the controllers see of the world.

The simulator knows the truth (:class:`ObjectTruth`); a sensor turns it into a :class:`SensorFrame` of
:class:`Track` objects — limited in range and field of view, with Gaussian noise from an injected seeded
``numpy.random.Generator`` and a latency of whole steps. Controllers only ever get frames.
"""

from __future__ import annotations

import abc
import functools
import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from evos.adas._params import SensorParams

NOISE_BLOCK = 1024  # rows of noise drawn at once
FEW_OBJECTS = 64  # up to this many objects, per-object Python beats numpy's per-call cost (measured: 13 vs 19 µs
# for 50 objects at the benchmark's traffic density; even near 100)


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


class Track(NamedTuple):
    """One object as the sensor reports it (the ``object_id`` is the tracker's id). A NamedTuple, not a frozen
    dataclass: the sensor builds thousands per simulated second and a tuple is ~4x cheaper to create."""

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
    rear_covered: bool = False  # objects beside and behind are reported too (rear corner radars)


class ObjectSensor(abc.ABC):
    """The interface of a forward object-list sensor; tests and the simulator may plug in any implementation."""

    @abc.abstractmethod
    def measure(self, now_s: float, truth: ObjectTruth, healthy: bool = True) -> SensorFrame:
        """The frame available to the controllers at ``now_s`` (it may describe an earlier instant)."""


def visible(params: SensorParams, truth: ObjectTruth, ego_length_m: float = 4.7) -> np.ndarray:
    """Which objects the sensor covers: ahead within range and field of view (nearest edge counts), or — with
    rear corner radars (``rear_range_m`` > 0) — beside or behind within that range of the ego's rear."""
    r = truth.range_m
    nearest_lateral = np.abs(truth.lateral_m) - truth.width_m / 2  # negative: the object spans the axis (seen)
    ahead = (r > 0) & (r <= params.max_range_m) & (nearest_lateral <= r * _half_fov_tan(params.fov_deg))
    if params.rear_range_m <= 0:
        return ahead
    return ahead | ((r <= 0) & (-r - truth.length_m - ego_length_m <= params.rear_range_m))


@functools.lru_cache(maxsize=16)
def _half_fov_tan(fov_deg: float) -> float:
    return math.tan(math.radians(fov_deg / 2))


class RadarSensor(ObjectSensor):
    """A radar/camera object list with Gaussian noise and a fixed latency of ``params.latency_steps`` calls."""

    def __init__(self, params: SensorParams, rng: np.random.Generator, ego_length_m: float = 4.7) -> None:
        self.params = params
        self.ego_length_m = ego_length_m
        self._rng = rng
        self._pipeline: deque[tuple[tuple[Track, ...], bool]] = deque()  # (tracks, healthy) per step
        self._noise = np.empty((0, 4))
        self._next = 0
        self._sigma = np.array([params.range_noise_m, params.range_rate_noise_mps, params.accel_noise_mps2,
                                params.lateral_noise_m])
        self._sigma_list = self._sigma.tolist()

    def _normal4(self, rows: int) -> np.ndarray:
        """``rows`` × 4 standard normal draws (drawn in blocks: same sequence, far fewer calls)."""
        if self._next + rows > len(self._noise):
            self._noise = np.concatenate([self._noise[self._next:],
                                          self._rng.standard_normal((max(NOISE_BLOCK, rows), 4))])
            self._next = 0
        self._next += rows
        return self._noise[self._next - rows:self._next]

    def _detect(self, truth: ObjectTruth) -> tuple[Track, ...]:
        if len(truth.range_m) <= FEW_OBJECTS:
            return self._tracks_few(truth)
        seen = np.flatnonzero(visible(self.params, truth, self.ego_length_m))
        if len(seen) == 0:
            return ()
        # one array op per column, then plain floats: with a handful of objects numpy's per-call cost dominates
        r_true = truth.range_m[seen]
        noisy = np.stack([r_true, truth.range_rate_mps[seen], truth.range_accel_mps2[seen], truth.lateral_m[seen]],
                         axis=1) + self._normal4(len(seen)) * self._sigma
        ranges = noisy[:, 0]
        if ranges.min() < 0.0:  # noise never puts an object that is ahead behind the front bumper
            np.copyto(ranges, np.maximum(ranges, 0.0), where=r_true > 0)
        ids, widths, lengths = truth.object_id[seen].tolist(), truth.width_m[seen].tolist(), \
            truth.length_m[seen].tolist()
        return tuple(Track(i, r, rr, ra, lat, w, ln) for i, (r, rr, ra, lat), w, ln
                     in zip(ids, noisy.tolist(), widths, lengths, strict=True))

    def _tracks_few(self, truth: ObjectTruth) -> tuple[Track, ...]:
        """``visible`` and the noise of ``_detect`` in plain Python (same draws, same results) for up to
        ``FEW_OBJECTS`` objects, where numpy's per-call cost dominates."""
        p = self.params
        tan, rear_m, max_m, ego_m = _half_fov_tan(p.fov_deg), p.rear_range_m, p.max_range_m, self.ego_length_m
        ranges, lats, widths, lengths = (truth.range_m.tolist(), truth.lateral_m.tolist(), truth.width_m.tolist(),
                                         truth.length_m.tolist())
        seen = [k for k, (r, lat, width, length) in enumerate(zip(ranges, lats, widths, lengths, strict=True))
                if ((r <= max_m and abs(lat) - width / 2 <= r * tan) if r > 0 else
                    (rear_m > 0 and -r - length - ego_m <= rear_m))]
        if not seen:
            return ()
        ids, rates, accels = truth.object_id.tolist(), truth.range_rate_mps.tolist(), truth.range_accel_mps2.tolist()
        s_r, s_rate, s_acc, s_lat = self._sigma_list
        tracks = []
        for k, (n_r, n_rate, n_acc, n_lat) in zip(seen, self._normal4(len(seen)).tolist(), strict=True):
            r = ranges[k]
            noisy_r = r + n_r * s_r
            tracks.append(Track(ids[k], max(noisy_r, 0.0) if r > 0 else noisy_r, rates[k] + n_rate * s_rate,
                                accels[k] + n_acc * s_acc, lats[k] + n_lat * s_lat, widths[k], lengths[k]))
        return tuple(tracks)

    def measure(self, now_s: float, truth: ObjectTruth, healthy: bool = True) -> SensorFrame:
        self._pipeline.append((self._detect(truth) if healthy else (), healthy))
        if len(self._pipeline) <= self.params.latency_steps:
            return SensorFrame(now_s, ())  # still filling the pipeline: nothing reported yet
        tracks, was_healthy = self._pipeline.popleft()
        return SensorFrame(now_s, tracks, was_healthy, self.params.rear_range_m > 0)
