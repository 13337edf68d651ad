"""The VSS catalog: the shipped VSS 6.0 data, overlays, and clear errors for bad files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evos.errors import CatalogError, UnknownSignalError
from evos.vss import Catalog, Datatype, EntryType, load_catalog
from helpers import shared_file


def test_default_catalog_is_vss_6_0(catalog: Catalog) -> None:
    assert len(catalog) == 1263
    types = Counter(s.entry_type for s in catalog)
    assert types == {EntryType.ACTUATOR: 643, EntryType.SENSOR: 490, EntryType.ATTRIBUTE: 130}
    speed = catalog.get("Vehicle.Speed")
    assert (speed.entry_type, speed.datatype, speed.unit) == (EntryType.SENSOR, Datatype.FLOAT, "km/h")
    # VSS 6.0 changes that bite (notes/peers.md): TraveledDistance uint32 in m, Celsius, HVAC stations
    distance = catalog.get("Vehicle.TraveledDistance")
    assert (distance.datatype, distance.unit) == (Datatype.UINT32, "m")
    hvac = catalog.get("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature")
    assert (hvac.entry_type, hvac.unit) == (EntryType.ACTUATOR, "Celsius")
    soc = catalog.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert (soc.min, soc.max, soc.unit) == (0, 100.0, "percent")
    assert catalog.get("Vehicle.LowVoltageSystemState").allowed == (
        "UNDEFINED", "LOCK", "OFF", "ACC", "ON", "START")
    assert all(s.description == "" for s in catalog)  # the shipped file keeps facts, not texts
    assert {s.id for s in catalog} == set(range(1263))


def test_all_datatypes_present_with_arrays(catalog: Catalog) -> None:
    datatypes = {s.datatype for s in catalog}
    assert {Datatype.STRING_ARRAY, Datatype.FLOAT_ARRAY, Datatype.UINT8_ARRAY} <= datatypes
    assert catalog.get("Vehicle.Diagnostics.DTCList").datatype is Datatype.STRING_ARRAY


def test_shipped_catalog_matches_the_full_vss_file() -> None:
    full = load_catalog(shared_file("data/vss/vss_release_6.0.json"))
    shipped = load_catalog()
    assert list(full.signals) == list(shipped.signals)
    for signal in full:
        assert {k: v for k, v in signal.to_dict().items() if k not in ("description", "comment")} == \
            shipped.get(signal.path).to_dict()
    assert full.get("Vehicle.Speed").description == "Vehicle speed."


def test_unknown_path_suggests_the_close_one(catalog: Catalog) -> None:
    with pytest.raises(UnknownSignalError, match=r"Vehicle\.Sped.*did you mean Vehicle\.Speed"):
        catalog.get("Vehicle.Sped")


def test_json_overlay_adds_changes_and_deletes(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.json"
    overlay.write_text(json.dumps({"Vehicle": {"type": "branch", "children": {
        "Speed": {"max": 250.0},
        "Evos": {"type": "branch", "children": {
            "CabinScene": {"type": "actuator", "datatype": "string", "allowed": ["OFFICE", "CINEMA"]}}},
        "Trailer": {"delete": True},
    }}}))
    catalog = load_catalog(overlays=[overlay])
    assert catalog.get("Vehicle.Speed").max == 250.0
    assert catalog.get("Vehicle.Speed").unit == "km/h"  # untouched keys stay
    assert catalog.get("Vehicle.Evos.CabinScene").allowed == ("OFFICE", "CINEMA")
    assert not [s for s in catalog if s.path.startswith("Vehicle.Trailer.")]
    assert catalog.get("Vehicle.Evos.CabinScene").id == len(catalog) - 1


def test_yaml_overlay_in_vspec_style(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.vspec"
    overlay.write_text(
        "Vehicle.Evos.Assistant.LastUtterance:\n  type: sensor\n  datatype: string\n"
        "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature:\n  min: 15\n  max: 30\n"
    )
    catalog = load_catalog(overlays=[overlay])
    assert catalog.get("Vehicle.Evos.Assistant.LastUtterance").datatype is Datatype.STRING
    hvac = catalog.get("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature")
    assert (hvac.min, hvac.max) == (15, 30)


BAD_OVERLAYS = [
    ("bad.json", "{not json", "not valid JSON"),
    ("bad.yaml", "a: [", "not valid YAML"),
    ("list.json", "[1, 2]", "expected a mapping"),
    ("dtype.yaml", "Vehicle.X:\n  type: sensor\n  datatype: float64\n", "Vehicle.X: datatype 'float64'"),
    ("type.yaml", "Vehicle.X:\n  type: gauge\n  datatype: float\n", "Vehicle.X: type 'gauge'"),
    ("minmax.yaml", "Vehicle.X:\n  type: sensor\n  datatype: uint8\n  min: 10\n  max: 5\n",
     "Vehicle.X: min 10 is greater than max 5"),
    ("allowed.yaml", "Vehicle.X:\n  type: sensor\n  datatype: uint8\n  allowed: [1, 300]\n",
     "Vehicle.X: value 300 is outside the range of uint8"),
    ("default.yaml", "Vehicle.X:\n  type: attribute\n  datatype: string\n  allowed: [A]\n  default: B\n",
     "Vehicle.X: value 'B' is not one of the allowed"),
    ("strmin.yaml", "Vehicle.X:\n  type: sensor\n  datatype: string\n  min: 1\n", "Vehicle.X: min 1 must be a number"),
    ("key.yaml", "Vehicle.X:\n  type: sensor\n  datatype: float\n  unti: km\n", "Vehicle.X: unknown attribute"),
    ("under.yaml", "Vehicle.Speed.Foo:\n  type: sensor\n  datatype: float\n", "parent 'Vehicle.Speed' is a leaf"),
    ("kind.yaml", "Vehicle.Speed:\n  type: branch\n", "Vehicle.Speed: cannot turn a branch into a leaf"),
    ("path.yaml", "'Vehicle..X':\n  type: sensor\n", "Vehicle..X: is not a valid signal path"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_OVERLAYS, ids=[b[0] for b in BAD_OVERLAYS])
def test_bad_overlay_names_file_and_entry(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(overlays=[path])
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.json: cannot read file"):
        load_catalog(tmp_path / "missing.json")


def test_base_catalog_entry_needs_a_type(tmp_path: Path) -> None:
    path = tmp_path / "cat.json"
    path.write_text(json.dumps({"Vehicle": {"type": "branch", "children": {"Speed": {"datatype": "float"}}}}))
    with pytest.raises(CatalogError, match=r"cat\.json: Vehicle\.Speed: missing 'type'"):
        load_catalog(path)


def test_tree_export_loads_back_as_the_same_catalog(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "vss.json"
    path.write_text(json.dumps(catalog.to_tree()))
    again = load_catalog(path)
    assert [(s.id, s.path, s.to_dict()) for s in again] == [(s.id, s.path, s.to_dict()) for s in catalog]


def test_tree_export_puts_an_overlay_leaf_in_its_branch(tmp_path: Path) -> None:
    overlay = {"Vehicle.Cabin.Evos.Glow": {"type": "actuator", "datatype": "uint8", "unit": "percent", "max": 100,
                                          "description": "Ambient light."},
               "Vehicle.Speed": {"max": 250.0}}
    catalog = load_catalog(overlays=[overlay])
    tree = catalog.to_tree()
    cabin = tree["Vehicle"]["children"]["Cabin"]
    assert cabin["type"] == "branch"
    assert cabin["children"]["Evos"] == {"type": "branch", "children": {"Glow": {
        "type": "actuator", "datatype": "uint8", "unit": "percent", "max": 100, "description": "Ambient light."}}}
    assert tree["Vehicle"]["children"]["Speed"]["max"] == 250.0
    path = tmp_path / "vss.json"
    path.write_text(json.dumps(tree))
    again = load_catalog(path)
    assert {s.path: s.to_dict() for s in again} == {s.path: s.to_dict() for s in catalog}
