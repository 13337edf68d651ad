"""``evos catalog export``: the catalog the car serves, as a VSS JSON tree that loads back (and that Velocitas'
model generator reads: tests/ecosystem/test_velocitas.py); and ``evos broker --apps`` for the optional apps."""

from __future__ import annotations

import json
from pathlib import Path

from evos.car import car_apps, car_overlays
from evos.vss import load_catalog
from helpers import evos, free_port, start, stop, wait_listening


def test_export_writes_the_whole_car_catalog_that_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "car.json"
    result = evos("catalog", "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    exported = load_catalog(out)
    car = load_catalog(None, car_overlays(car_apps(every=True)))
    assert {s.path: s.to_dict() for s in exported} == {s.path: s.to_dict() for s in car}
    # VSS 6.0, the apps' overlays (cabin scenes, the twin's driver) and the supervisor's states of every app
    for path in ("Vehicle.Speed", "Vehicle.Evos.Cabin.Scene", "Vehicle.Evos.Twin.Driver.TargetSpeed",
                 "Vehicle.Evos.Apps.Broker.State", "Vehicle.Evos.Apps.Automations.State"):
        assert path in exported
    assert len(exported) > len(load_catalog())


def test_export_to_stdout_with_an_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("Vehicle.Evos.Mine.Glow:\n  type: actuator\n  datatype: uint8\n")
    result = evos("catalog", "export", "--overlay", str(overlay))
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    assert tree["Vehicle"]["children"]["Evos"]["children"]["Mine"]["children"]["Glow"] == {
        "type": "actuator", "datatype": "uint8"}


def test_export_names_a_bad_overlay_and_an_unwritable_file(tmp_path: Path) -> None:
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("Vehicle.Evos.Mine.Glow:\n  type: actuator\n  datatype: uint9\n")
    bad = evos("catalog", "export", "--overlay", str(overlay), "--out", str(tmp_path / "car.json"))
    assert bad.returncode == 1
    assert "bad.yaml" in bad.stderr and "uint9" in bad.stderr
    assert not (tmp_path / "car.json").exists()
    unwritable = evos("catalog", "export", "--out", str(tmp_path / "missing" / "car.json"))
    assert unwritable.returncode == 1
    assert "cannot write" in unwritable.stderr and "missing" in unwritable.stderr


def test_broker_alone_takes_the_optional_apps(tmp_path: Path) -> None:
    """The bridge and the automations need their settings to run, not to be carried by a broker."""
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--apps", "cabin,mqtt,automations", "--address", address)
    try:
        wait_listening(proc, address)
        scene = evos("get", "Vehicle.Evos.Cabin.Scene", "--address", address)
    finally:
        stop(proc)
    assert scene.returncode == 0, scene.stderr
    unknown = evos("broker", "--apps", "mqtt,radio")
    assert unknown.returncode == 2 and "'radio' is not an app of the car" in unknown.stderr
