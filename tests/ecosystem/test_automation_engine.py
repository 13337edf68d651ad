"""The automations engine on timelines (docs/automations.md): each scenario of data/automation_timelines.yaml loads
its rules, starts an Engine on the values known at its start, then updates and ticks it step by step and checks the
firings of each step: which rules, in the file's order, with which actions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from evos.ecosystem import Engine, Notify, Publish, Set, load_rules
from evos.vss import Catalog

TIMELINES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "automation_timelines.yaml").read_text("utf-8"))
Action = Set | Publish | Notify


def payload_text(value: Any) -> str:
    """A publish payload as the rule file wrote it (YAML's true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def action_of(spec: dict[str, Any], defaults: bool) -> Action:
    """The action ``spec`` ({set: ...} | {publish: ...} | {notify: ...}) stands for; with ``defaults`` a publish
    may leave out retain (false) and qos (1), as in a rule file."""
    ((kind, body),) = spec.items()
    if kind == "set":
        return Set(targets=dict(body))
    if kind == "publish":
        retain = body.get("retain", False) if defaults else body["retain"]
        qos = body.get("qos", 1) if defaults else body["qos"]
        return Publish(topic=body["topic"], payload=payload_text(body["payload"]), retain=retain, qos=qos)
    if kind == "notify":
        return Notify(message=body)
    raise AssertionError(f"unknown action {kind!r} in the data")


def actions_in_file(rules_text: str) -> dict[str, tuple[Action, ...]]:
    """Each rule's actions as its `do` list says, by the rule's name."""
    data = yaml.safe_load(rules_text)
    return {rule["name"]: tuple(action_of(spec, defaults=True) for spec in rule["do"]) for rule in data["rules"]}


def test_the_timelines_are_well_formed() -> None:
    ids = [timeline["id"] for timeline in TIMELINES]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    for timeline in TIMELINES:
        assert datetime.fromisoformat(timeline["start"]).tzinfo is not None, timeline["id"]
        names = set(actions_in_file(timeline["rules"]))
        offsets = [step["at_s"] for step in timeline["steps"]]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), timeline["id"]
        for step in timeline["steps"]:
            assert bool(step.get("tick")) != ("changes" in step), (timeline["id"], step)
            assert isinstance(step["expect"], list), (timeline["id"], step)
            for expected in step["expect"]:
                assert (expected if isinstance(expected, str) else expected["rule"]) in names, (timeline["id"], step)


@pytest.mark.parametrize("timeline", TIMELINES, ids=[timeline["id"] for timeline in TIMELINES])
def test_timeline(timeline: dict[str, Any], catalog: Catalog) -> None:
    start = datetime.fromisoformat(timeline["start"])
    declared = actions_in_file(timeline["rules"])
    engine = Engine(load_rules(timeline["rules"], catalog), dict(timeline.get("values") or {}), start)
    for index, step in enumerate(timeline["steps"]):
        now = start + timedelta(seconds=step["at_s"])
        firings = engine.tick(now) if step.get("tick") else engine.update(now, dict(step["changes"]))
        where = f"{timeline['id']}, step {index} (at_s {step['at_s']}, {now.isoformat()})"
        assert isinstance(firings, list), where
        expected = step["expect"]
        names = [entry if isinstance(entry, str) else entry["rule"] for entry in expected]
        assert [firing.rule for firing in firings] == names, where
        for firing, entry in zip(firings, expected, strict=True):
            assert isinstance(firing.trigger, str) and firing.trigger.strip(), where
            assert isinstance(firing.actions, tuple), where
            if isinstance(entry, dict) and "actions" in entry:
                wanted = tuple(action_of(spec, defaults=False) for spec in entry["actions"])
            else:
                wanted = declared[firing.rule]
            assert firing.actions == wanted, where


def test_actions_are_frozen_values() -> None:
    assert Set(targets={"Vehicle.Cabin.Light.IsDomeOn": True}) == Set({"Vehicle.Cabin.Light.IsDomeOn": True})
    assert Set({"Vehicle.Cabin.Light.IsDomeOn": True}) != Set({"Vehicle.Cabin.Light.IsDomeOn": False})
    assert Publish("home/a", "1", False, 1) == Publish(topic="home/a", payload="1", retain=False, qos=1)
    assert Publish("home/a", "1", False, 1) != Publish("home/a", "1", True, 1)
    assert Notify("hello") == Notify(message="hello") != Notify("bye")
    for action in (Set({"Vehicle.Cabin.Light.IsDomeOn": True}), Publish("home/a", "1", False, 1), Notify("hello")):
        assert dataclasses.is_dataclass(action)
        field = dataclasses.fields(action)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(action, field, None)


def test_engines_of_the_same_rules_are_independent(catalog: Catalog) -> None:
    rules = load_rules("rules:\n"
                       "  - name: fast\n"
                       "    when: {becomes: 'Vehicle.Speed > 100'}\n"
                       "    do: [{set: {Vehicle.Body.Lights.Beam.Low.IsOn: true}}]\n", catalog)
    start = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    slow = Engine(rules, {"Vehicle.Speed": 50.0}, start)
    fast = Engine(rules, {"Vehicle.Speed": 150.0}, start)
    later = start + timedelta(seconds=10)
    assert [f.rule for f in slow.update(later, {"Vehicle.Speed": 120.0})] == ["fast"]
    assert fast.update(later, {"Vehicle.Speed": 120.0}) == []  # already true when it started
    assert [f.rule for f in fast.update(later + timedelta(seconds=1), {"Vehicle.Speed": 10.0})] == []
    assert [f.rule for f in fast.update(later + timedelta(seconds=2), {"Vehicle.Speed": 101.0})] == ["fast"]
    assert slow.update(later + timedelta(seconds=3), {"Vehicle.Speed": 130.0}) == []


def test_the_values_given_at_start_are_not_changed(catalog: Catalog) -> None:
    rules = load_rules("rules:\n"
                       "  - name: fast\n"
                       "    when: {becomes: 'Vehicle.Speed > 100'}\n"
                       "    do: [{set: {Vehicle.Body.Lights.Beam.Low.IsOn: true}}]\n", catalog)
    start = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    values = {"Vehicle.Speed": 50.0}
    changes = {"Vehicle.Speed": 120.0}
    engine = Engine(rules, values, start)
    assert [f.rule for f in engine.update(start + timedelta(seconds=1), changes)] == ["fast"]
    assert values == {"Vehicle.Speed": 50.0} and changes == {"Vehicle.Speed": 120.0}
