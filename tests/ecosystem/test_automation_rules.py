"""Loading automation rules (docs/automations.md): every wrong file of data/automations_bad.yaml is refused with an
InvalidArgumentError that names the file, the rule and the field, and nothing is returned; every file of
data/automations_good.yaml, and the spec's own example, loads and runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from evos.app import overlays_of
from evos.car import apps_overlay, car_apps
from evos.ecosystem import Engine, load_rules
from evos.errors import EvosError, InvalidArgumentError
from evos.vss import Catalog, load_catalog

DATA = Path(__file__).parent / "data"
SPEC = Path(__file__).resolve().parents[2] / "docs" / "automations.md"
BAD: list[dict[str, Any]] = yaml.safe_load((DATA / "automations_bad.yaml").read_text("utf-8"))
GOOD: list[dict[str, Any]] = yaml.safe_load((DATA / "automations_good.yaml").read_text("utf-8"))
BY_ID = {case["id"]: case for case in BAD}
NOW = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)  # a Monday


def refused(source: str | Path, catalog: Catalog) -> str:
    """The message of the InvalidArgumentError that loading ``source`` raises."""
    with pytest.raises(InvalidArgumentError) as caught:
        load_rules(source, catalog)
    assert isinstance(caught.value, EvosError)
    message = str(caught.value)
    assert message.strip(), "the error has no message"
    return message


def missing(case: dict[str, Any], message: str) -> list[str]:
    """The substrings of ``case`` that ``message`` lacks."""
    lacking = [word for word in case.get("expect") or [] if word not in message]
    lacking += [word for word in case.get("expect_nocase") or [] if word.casefold() not in message.casefold()]
    return lacking


def spec_example() -> str:
    """The first YAML block of docs/automations.md: the spec's example rule file."""
    blocks = re.findall(r"```yaml\n(.*?)```", SPEC.read_text("utf-8"), flags=re.DOTALL)
    assert blocks, f"{SPEC} has no yaml example"
    return blocks[0]


def test_the_data_sets_are_well_formed() -> None:
    for cases in (BAD, GOOD):
        ids = [case["id"] for case in cases]
        assert len(ids) == len(set(ids)), "duplicate ids"
        for case in cases:
            assert isinstance(case["yaml"], str) and case["yaml"].strip(), case["id"]
    assert len(BAD) >= 40 and len(GOOD) >= 8
    for case in BAD:
        words = [*(case.get("expect") or []), *(case.get("expect_nocase") or [])]
        assert all(isinstance(word, str) and word for word in words), case["id"]
        assert words or case.get("raw"), f"{case['id']}: a wrong file must say what its message names"
        if not case.get("raw"):  # the mistake is in the rules, not in the YAML
            assert isinstance(yaml.safe_load(case["yaml"]), dict), case["id"]
    for case in GOOD:
        assert isinstance(yaml.safe_load(case["yaml"]), dict), case["id"]


@pytest.mark.parametrize("case", BAD, ids=[case["id"] for case in BAD])
def test_a_wrong_file_is_refused_naming_the_mistake(case: dict[str, Any], catalog: Catalog) -> None:
    message = refused(case["yaml"], catalog)
    assert not missing(case, message), f"{case['id']}: {message!r} lacks {missing(case, message)}"


@pytest.mark.parametrize("case", BAD, ids=[case["id"] for case in BAD])
def test_a_wrong_file_given_as_a_path_names_the_file(case: dict[str, Any], catalog: Catalog, tmp_path: Path) -> None:
    file = tmp_path / f"rules-{case['id']}.yaml"
    file.write_text(case["yaml"], encoding="utf-8")
    message = refused(file, catalog)
    assert file.name in message, message
    assert not missing(case, message), f"{case['id']}: {message!r} lacks {missing(case, message)}"


@pytest.mark.parametrize("case", GOOD, ids=[case["id"] for case in GOOD])
def test_a_right_file_loads_and_runs(case: dict[str, Any], catalog: Catalog, tmp_path: Path) -> None:
    rules = load_rules(case["yaml"], catalog)
    engine = Engine(rules, {}, NOW)
    assert engine.tick(NOW + timedelta(seconds=1)) == []  # nothing is known and no `at` time is 08:00:01 UTC
    unrelated = {"Vehicle.Powertrain.TractionBattery.Temperature.Average": 25.0}  # no rule of the files reads it
    assert engine.update(NOW + timedelta(seconds=2), unrelated) == []
    file = tmp_path / "rules.yaml"
    file.write_text(case["yaml"], encoding="utf-8")
    Engine(load_rules(file, catalog), {}, NOW)


def test_the_spec_example_loads(catalog: Catalog) -> None:
    text = spec_example()
    assert "rules:" in text and "ready to leave at 8" in text
    Engine(load_rules(text, catalog), {}, NOW)


def test_the_spec_example_loads_against_the_cars_catalog() -> None:
    """The car checks rules against its full catalog (VSS 6.0 and the apps' overlays), as `evos up` builds it."""
    apps = car_apps()
    full = load_catalog(None, [*overlays_of(apps), apps_overlay(["Broker", *(app.signal_name for app in apps)])])
    Engine(load_rules(spec_example(), full), {}, NOW)


def test_nothing_partial_is_returned(catalog: Catalog) -> None:
    """A file whose first rule is right and whose second is not gives no rules at all, and the error names the
    second rule; the right rule alone loads."""
    text = BY_ID["second-rule-wrong"]["yaml"]
    message = refused(text, catalog)
    assert "broken rule" in message and "Vehicle.Cabin.Light.IsDomeOnn" in message, message
    first_only = text.split("  - name: broken rule")[0]
    assert "fine rule" in first_only and "broken" not in first_only
    Engine(load_rules(first_only, catalog), {}, NOW)


def test_a_mistake_after_a_right_file_does_not_leak_into_it(catalog: Catalog) -> None:
    """Loading is pure: a refused file leaves nothing behind that changes the next load."""
    good = next(case["yaml"] for case in GOOD if case["id"] == "minimal-no-mqtt")
    first = Engine(load_rules(good, catalog), {"Vehicle.Speed": 50.0}, NOW)
    refused(BY_ID["rule-duplicate-names"]["yaml"], catalog)
    again = Engine(load_rules(good, catalog), {"Vehicle.Speed": 50.0}, NOW)
    later = NOW + timedelta(seconds=10)
    assert [f.rule for f in first.update(later, {"Vehicle.Speed": 120.0})] == ["lights when fast"]
    assert [f.rule for f in again.update(later, {"Vehicle.Speed": 120.0})] == ["lights when fast"]


def test_the_unnamed_rule_is_named_by_its_index(catalog: Catalog) -> None:
    action = "    do: [{set: {Vehicle.Cabin.Light.IsDomeOn: true}}]\n"
    text = ("rules:\n"
            "  - name: one\n    when: {becomes: 'Vehicle.Speed > 1'}\n" + action +
            "  - name: two\n    when: {becomes: 'Vehicle.Speed > 2'}\n" + action +
            "  - when: {becomes: 'Vehicle.Speed > 3'}\n" + action)
    assert "rules[2]" in refused(text, catalog)


def test_a_file_that_cannot_be_read_is_named(catalog: Catalog, tmp_path: Path) -> None:
    absent = tmp_path / "absent-rules.yaml"
    assert absent.name in refused(absent, catalog)
    binary = tmp_path / "binary-rules.yaml"
    binary.write_bytes(b"rules: \xff\xfe\x00\n")
    assert binary.name in refused(binary, catalog)
