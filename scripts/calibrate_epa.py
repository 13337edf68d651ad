"""Calibrate the twin's shared EPA defaults and cross-validate them (how docs/twin.md's figures were made).

    python scripts/calibrate_epa.py src/evos/twin/data/epa/epa_2022_bev_tests.csv [--check OTHER.csv ...]

Fits five parameters that are the same for every vehicle (drivetrain marginal efficiency, copper-loss
fraction, spin loss, regenerative-braking share, auxiliary load), within physically plausible bounds,
to minimise the median absolute error of predicted vs measured wall energy (SciPy's differential
evolution, seeded); then repeats the fit leaving out one manufacturer at a time and predicts that
manufacturer's rows: the error a vehicle unlike those fitted can expect. ``--check`` predicts other
files (either shape `evos twin validate-epa` reads, e.g. EPA's whole Test Car List of a model year)
with the fitted defaults. Takes about 15 minutes.
"""

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import differential_evolution

from evos.twin import _epa

NAMES = ("efficiency", "copper_loss_fraction", "spin_loss_w", "regen_fraction", "aux_w")
BOUNDS = ((0.88, 0.96), (0.0, 0.08), (0.0, 400.0), (0.6, 0.95), (150.0, 500.0))  # physically plausible


def shared(x: np.ndarray) -> dict:
    drivetrain = replace(_epa.SHARED_DRIVETRAIN, efficiency=x[0], copper_loss_fraction=x[1], spin_loss_w=x[2],
                         regen_fraction=x[3])
    return {"drivetrain": drivetrain, "aux_w": x[4]}


def errors(x: np.ndarray, rows: list) -> np.ndarray:
    """Relative errors (predicted / measured - 1) of every prediction that has a measurement."""
    out = []
    for row, pred in zip(rows, _epa.predict(rows, **shared(x)), strict=True):
        for cycle, measured in row.measured_kwh_100mi.items():
            if measured and not np.isnan(pred[cycle]):
                out.append(pred[cycle] / measured - 1)
    return np.array(out)


def fit(rows: list, iterations: int = 60) -> np.ndarray:
    result = differential_evolution(lambda x: float(np.median(np.abs(errors(x, rows)))), BOUNDS, seed=1,
                                    maxiter=iterations, popsize=15, tol=1e-9, polish=False)
    return result.x


def summary(errs: np.ndarray) -> str:
    ordered = np.sort(np.abs(errs)) * 100
    return (f"median {np.median(ordered):.2f} %, p90 {ordered[int(np.ceil(0.9 * len(ordered))) - 1]:.2f} % "
            f"({len(ordered)} predictions)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="the rows to fit the shared defaults to")
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="other files to predict with them")
    args = parser.parse_args()
    rows = _epa.read_epa_csv(args.csv)
    x = fit(rows)
    print("fitted on all rows:", {n: round(float(v), 4) for n, v in zip(NAMES, x, strict=True)})
    print("  in-sample:", summary(errors(x, rows)))
    for path in args.check:
        print(f"  {path.name}:", summary(errors(x, _epa.read_epa_csv(path))))
    held_out = []
    for make in sorted({r.make.lower() for r in rows}):
        train = [r for r in rows if r.make.lower() != make]
        held_out.extend(errors(fit(train, iterations=25), [r for r in rows if r.make.lower() == make]))
    print("  leave-one-manufacturer-out:", summary(np.array(held_out)))


if __name__ == "__main__":
    main()
