"""KUKSA wildcard semantics (the KUKSA databroker's doc/wildcard_matching.md table) on the VSS 6.0 catalog."""

from __future__ import annotations

import pytest

from evos.errors import InvalidArgumentError, UnknownSignalError
from evos.vss import Catalog, compile_pattern

SUNROOF = "Vehicle.Cabin.Sunroof"
SUNROOF_LEAVES = {f"{SUNROOF}.{leaf}" for leaf in
                  ("Position", "Switch", "Shade.Position", "Shade.Switch", "Shade.IsOpen")}

CASES = [
    ("Vehicle.Speed", {"Vehicle.Speed"}),
    (SUNROOF, SUNROOF_LEAVES),
    (f"{SUNROOF}.**", SUNROOF_LEAVES),
    (f"{SUNROOF}.*", {f"{SUNROOF}.Position", f"{SUNROOF}.Switch"}),
    (f"{SUNROOF}.*.Position", {f"{SUNROOF}.Shade.Position"}),
    ("**.Sunroof.*.Position", {f"{SUNROOF}.Shade.Position"}),
    ("*.*.*.*.Position", {f"{SUNROOF}.Shade.Position", "Vehicle.Body.Trunk.Front.Position",
                          "Vehicle.Body.Trunk.Rear.Position"}),
    (f"{SUNROOF}.**.Position", {f"{SUNROOF}.Position", f"{SUNROOF}.Shade.Position"}),
    ("**.Sunroof.**", SUNROOF_LEAVES),
    ("**.Door.*.*.Shade.Position", {f"Vehicle.Cabin.Door.Row{r}.{s}.Shade.Position"
                                    for r in (1, 2) for s in ("DriverSide", "PassengerSide")}),
    ("Vehicle.Cabin.Door.Row1.Driver*.IsOpen", {"Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"}),
]


@pytest.mark.parametrize(("pattern", "expected"), CASES)
def test_pattern_matches_like_kuksa(catalog: Catalog, pattern: str, expected: set[str]) -> None:
    assert {s.path for s in catalog.match(pattern)} == expected


@pytest.mark.parametrize("pattern", ["", "**", "Vehicle", "*"])  # "*": via the branch fallback "*.**"
def test_everything(catalog: Catalog, pattern: str) -> None:
    assert len(catalog.match(pattern)) == len(catalog)


def test_depth_two_leaves(catalog: Catalog) -> None:
    found = {s.path for s in catalog.match("*.*")}
    assert "Vehicle.Speed" in found
    assert all(p.count(".") == 1 for p in found)


def test_branch_fallback_for_star_without_direct_leaves(catalog: Catalog) -> None:
    # Vehicle.Cabin.Door has only branches below it: KUKSA v1 falls back to the whole branch
    assert {s.path for s in catalog.match("Vehicle.Cabin.Door.*")} == {
        s.path for s in catalog.match("Vehicle.Cabin.Door")}


@pytest.mark.parametrize("pattern", ["**.Sunroof", "*.Sunroof", "Vehic", "Vehicle.Cabin.Sunroofs"])
def test_no_match_is_unknown(catalog: Catalog, pattern: str) -> None:
    with pytest.raises(UnknownSignalError, match="unknown"):
        catalog.match(pattern)


@pytest.mark.parametrize("pattern", ["Vehicle.", ".Speed", "Vehicle..Speed", "Vehicle. **", "Vehicle:Speed"])
def test_malformed_pattern(pattern: str) -> None:
    with pytest.raises(InvalidArgumentError, match="malformed pattern"):
        compile_pattern(pattern)
