"""Calibrate the twin's shared EPA defaults and cross-validate them (how docs/twin.md's figures were made).

    python scripts/calibrate_epa.py ../shared/data/epa/epa_2022_bev_tests.csv

Fits five parameters that are the same for every vehicle (drivetrain marginal efficiency, copper-loss
fraction, spin loss, regenerative-braking share, auxiliary load), within physically plausible bounds,
to minimise the median absolute error of predicted vs measured wall energy; then repeats the fit
leaving out one manufacturer at a time and predicts that manufacturer's rows: the error a vehicle
unlike those fitted can expect. Takes a few minutes.
"""

import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from evos.twin import _epa

NAMES = ("efficiency", "copper_loss_fraction", "spin_loss_w", "regen_fraction", "aux_w")
LOW = (0.88, 0.0, 0.0, 0.6, 150.0)  # physically plausible bounds (docs/twin.md)
HIGH = (0.96, 0.08, 400.0, 0.95, 500.0)


def shared(x: np.ndarray) -> dict:
    drivetrain = replace(_epa.SHARED_DRIVETRAIN, efficiency=x[0], copper_loss_fraction=x[1], spin_loss_w=x[2],
                         regen_fraction=x[3])
    return {"drivetrain": drivetrain, "aux_w": x[4]}


def residuals(x: np.ndarray, rows: list) -> np.ndarray:
    out = []
    for row, pred in zip(rows, _epa.predict(rows, **shared(x)), strict=True):
        for cycle, measured in row.measured_kwh_100mi.items():
            if measured:
                out.append(np.log(pred[cycle] / measured))
    return np.array(out)


def median_error(x: np.ndarray, rows: list) -> float:
    return float(np.median(np.abs(np.exp(residuals(x, rows)) - 1)))


def fit(rows: list, samples: int = 120, refinements: int = 80) -> np.ndarray:
    """Minimise the median absolute error: seeded random search in the bounds, then local refinement."""
    rng = np.random.default_rng(1)
    low, high = np.array(LOW), np.array(HIGH)
    best_x = low + (high - low) * rng.random(5)
    best = median_error(best_x, rows)
    for _ in range(samples - 1):
        x = low + (high - low) * rng.random(5)
        if (error := median_error(x, rows)) < best:
            best, best_x = error, x
    for _ in range(refinements):
        x = np.clip(best_x + (high - low) * 0.05 * rng.standard_normal(5), low, high)
        if (error := median_error(x, rows)) < best:
            best, best_x = error, x
    return best_x


def summary(errors: list[float]) -> str:
    ordered = sorted(abs(e) * 100 for e in errors)
    return f"median {statistics.median(ordered):.2f} %, p90 {ordered[int(np.ceil(0.9 * len(ordered))) - 1]:.2f} %"


def main(path: str) -> None:
    rows = _epa.read_epa_csv(Path(path))
    x = fit(rows)
    print("fitted on all rows:", dict(zip(NAMES, np.round(x, 4), strict=True)))
    print("  in-sample:", summary(list(np.exp(residuals(x, rows)) - 1)))
    held_out: list[float] = []
    for make in sorted({r.make.lower() for r in rows}):
        train = [r for r in rows if r.make.lower() != make]
        test = [r for r in rows if r.make.lower() == make]
        held_out.extend(np.exp(residuals(fit(train), test)) - 1)
    print("  leave-one-manufacturer-out:", summary(held_out))


if __name__ == "__main__":
    main(sys.argv[1])
