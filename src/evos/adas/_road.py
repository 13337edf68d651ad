"""The road: parallel lanes along a reference line of straight and constant-curvature segments (Frenet frame).

Everything in the simulator lives in road coordinates: ``s`` along the reference line (m) and ``d`` across it
(m, positive left). The reference line is the centre of the ego's starting lane; lane ``k`` (relative to it,
positive left) has its centre at ``d = k * lane_width_m``. Curvature is positive for a left turn. Before ``s = 0``
and after the last segment the road is straight. ``to_world`` converts to x/y for plots.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from evos.adas._params import LANE_WIDTH_M, _check
from evos.errors import InvalidArgumentError

MIN_RADIUS_M = 20.0


@dataclass(frozen=True)
class Segment:
    """A piece of road: ``length_m`` long with constant curvature (1/m, positive left; 0: straight)."""

    length_m: float
    curvature_per_m: float = 0.0

    def __post_init__(self) -> None:
        _check(self, {"length_m": (0.1, 100_000.0), "curvature_per_m": (-1 / MIN_RADIUS_M, 1 / MIN_RADIUS_M)})


@dataclass(frozen=True)
class Road:
    """``lanes`` lanes of ``lane_width_m``; the ego starts in lane ``ego_lane`` counted from the right (0)."""

    lanes: int = 3
    ego_lane: int = 1
    lane_width_m: float = LANE_WIDTH_M
    segments: tuple[Segment, ...] = ()

    def __post_init__(self) -> None:
        _check(self, {"lanes": (1, 8), "ego_lane": (0, 7), "lane_width_m": (2.0, 6.0)})
        if self.ego_lane >= self.lanes:
            raise InvalidArgumentError(f"Road.ego_lane: must be below lanes ({self.lanes}), got {self.ego_lane}")
        for seg in self.segments:
            inner_radius = 1 / abs(seg.curvature_per_m) - self.lanes * self.lane_width_m if seg.curvature_per_m else 1
            if inner_radius <= 0:
                raise InvalidArgumentError(f"Road.segments: radius {1 / abs(seg.curvature_per_m):g} m is too tight "
                                           f"for {self.lanes} lanes of {self.lane_width_m:g} m")

    @functools.cached_property
    def _ends(self) -> np.ndarray:
        """Where each segment ends (m), with 0 first."""
        return np.cumsum([0.0] + [seg.length_m for seg in self.segments])

    @functools.cached_property
    def _kappa(self) -> np.ndarray:
        """Curvature before the road, of each segment, and after the last (1/m)."""
        return np.array([0.0] + [seg.curvature_per_m for seg in self.segments] + [0.0])

    @property
    def lowest_lane(self) -> int:
        """The rightmost lane, relative to the ego's starting lane (≤ 0)."""
        return -self.ego_lane

    @property
    def highest_lane(self) -> int:
        """The leftmost lane, relative to the ego's starting lane (≥ 0)."""
        return self.lanes - 1 - self.ego_lane

    def has_lane(self, lane: int) -> bool:
        return self.lowest_lane <= lane <= self.highest_lane

    def lane_of(self, d_m: float) -> int:
        """The lane whose centre is nearest to ``d_m``."""
        return round(d_m / self.lane_width_m)

    def curvature(self, s_m: float) -> float:
        """Curvature of the reference line at ``s_m`` (1/m)."""
        if not self.segments:
            return 0.0
        return float(self._kappa[np.searchsorted(self._ends, s_m, side="right")])

    def curvatures(self, s_m: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`curvature`."""
        return self._kappa[np.searchsorted(self._ends, s_m, side="right")]

    @property
    def curved(self) -> bool:
        return any(seg.curvature_per_m for seg in self.segments)

    def to_world(self, s_m: np.ndarray, d_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World x, y (m) of road points: the reference line starts at the origin heading along +x."""
        s = np.asarray(s_m, dtype=float)
        d = np.asarray(d_m, dtype=float)
        x0, y0, th0 = self._segment_starts()
        ends = self._ends
        idx = np.clip(np.searchsorted(ends, s, side="right") - 1, 0, len(self.segments))
        start_s = np.where(s < 0, 0.0, ends[idx])
        idx = np.where(s < 0, 0, idx)
        ds = s - start_s
        kappa = np.where(s < 0, 0.0, self._kappa[idx + 1])
        theta0 = th0[idx]
        safe = np.where(kappa == 0, 1.0, kappa)
        x = np.where(kappa == 0, ds * np.cos(theta0), (np.sin(theta0 + kappa * ds) - np.sin(theta0)) / safe)
        y = np.where(kappa == 0, ds * np.sin(theta0), (np.cos(theta0) - np.cos(theta0 + kappa * ds)) / safe)
        theta = theta0 + kappa * ds
        return x0[idx] + x - d * np.sin(theta), y0[idx] + y + d * np.cos(theta)

    def _segment_starts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y and heading (rad) where each segment (and the straight after the last) begins."""
        xs, ys, ths = [0.0], [0.0], [0.0]
        for seg in self.segments:
            x, y, th, k, length = xs[-1], ys[-1], ths[-1], seg.curvature_per_m, seg.length_m
            if k == 0:
                xs.append(x + length * math.cos(th))
                ys.append(y + length * math.sin(th))
            else:
                xs.append(x + (math.sin(th + k * length) - math.sin(th)) / k)
                ys.append(y + (math.cos(th) - math.cos(th + k * length)) / k)
            ths.append(th + k * length)
        return np.array(xs), np.array(ys), np.array(ths)
