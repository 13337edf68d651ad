"""Drive cycles: the built-in regulatory traces and user CSV files of time and speed (and grade).

A trace with uneven time steps is resampled on its median step (linear interpolation).
A CSV needs a header with a time column (``time_s``, or FASTSim's ``cycSecs``) and a speed column
(``speed_mps``, ``speed_kmh``, ``speed_mph``, or FASTSim's ``cycMps``); ``grade`` (or ``cycGrade``, rise over
run) is optional. Bad files raise CycleFileError naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from evos.errors import DataError

BUILTIN = ("udds", "hwfet", "us06", "wltc3b")
_ALIASES = {"wltc_3b": "wltc3b", "wltc": "wltc3b", "wltp": "wltc3b", "ftp72": "udds", "hwy": "hwfet"}
_TIME = ("time_s", "cycsecs")
_SPEED = {"speed_mps": 1.0, "cycmps": 1.0, "speed_kmh": 1 / 3.6, "speed_mph": 0.44704}
_GRADE = ("grade", "cycgrade")


class CycleFileError(DataError):
    """A drive-cycle file is invalid; the message names the file and the line."""


@dataclass(frozen=True, eq=False)
class Cycle:
    """A speed trace: samples of time (s), speed (m/s) and grade (rise over run)."""

    name: str
    time_s: np.ndarray
    speed_mps: np.ndarray
    grade: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0])

    @property
    def distance_m(self) -> float:
        return float(np.sum((self.speed_mps[1:] + self.speed_mps[:-1]) / 2 * np.diff(self.time_s)))


def load_cycle(name_or_path: str | Path) -> Cycle:
    """A built-in cycle (``udds``, ``hwfet``, ``us06``, ``wltc3b``) or a CSV file."""
    key = str(name_or_path).lower()
    key = _ALIASES.get(key, key)
    if key in BUILTIN:
        text = resources.files("evos.twin").joinpath("data", "cycles", f"{key}.csv").read_text("utf-8")
        return parse_cycle(text, key, key)
    path = Path(name_or_path)
    if not path.exists():
        raise CycleFileError(str(path), None, f"no such file, and not a built-in cycle ({', '.join(BUILTIN)})")
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CycleFileError(str(path), None, f"cannot read file: {exc}") from exc
    return parse_cycle(text, path.stem, str(path))


def parse_cycle(text: str, name: str, source: str) -> Cycle:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise CycleFileError(source, None, "empty file")
    header = [h.strip().lower() for h in rows[0]]
    time_col = next((header.index(h) for h in _TIME if h in header), None)
    speed_col = next(((header.index(h), f) for h, f in _SPEED.items() if h in header), None)
    grade_col = next((header.index(h) for h in _GRADE if h in header), None)
    if time_col is None or speed_col is None:
        raise CycleFileError(source, "line 1", f"header needs a time column ({'/'.join(_TIME)}) and a speed "
                                               f"column ({'/'.join(_SPEED)}); got {rows[0]}")
    times: list[float] = []
    speeds: list[float] = []
    grades: list[float] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            t = float(row[time_col])
            v = float(row[speed_col[0]]) * speed_col[1]
            g = float(row[grade_col]) if grade_col is not None and row[grade_col].strip() else 0.0
        except (ValueError, IndexError):
            raise CycleFileError(source, f"line {number}", f"not a number in {row}") from None
        if not all(math.isfinite(x) for x in (t, v, g)):
            raise CycleFileError(source, f"line {number}", "values must be finite")
        if v < 0:
            raise CycleFileError(source, f"line {number}", f"negative speed {v}")
        if abs(g) > 0.5:
            raise CycleFileError(source, f"line {number}", f"grade {g} is beyond ±0.5 (a fraction, not percent?)")
        if times and t <= times[-1]:
            raise CycleFileError(source, f"line {number}", f"time {t} does not increase")
        times.append(t)
        speeds.append(v)
        grades.append(g)
    if len(times) < 2:
        raise CycleFileError(source, None, "needs at least two samples")
    time_s, speed_mps, grade = np.array(times), np.array(speeds), np.array(grades)
    steps = np.diff(time_s)
    if steps.max() - steps.min() > 1e-6 * steps.max():
        # the battery's filters need a fixed step: resample an uneven trace on its median step
        step = float(np.median(steps))
        grid = np.arange(time_s[0], time_s[-1] + step / 2, step)
        time_s, speed_mps, grade = grid, np.interp(grid, time_s, speed_mps), np.interp(grid, time_s, grade)
    return Cycle(name, time_s, speed_mps, grade)
