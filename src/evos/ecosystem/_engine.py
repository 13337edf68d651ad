"""When the automations' rules fire: a pure core fed with values and the time (docs/automations.md).

``Engine(rules, values, now)`` takes what is known at start (VSS paths and ``home.NAME`` to values; absent or None:
unknown) as the baseline: a rule whose condition already holds does not fire until it turns false and true again.
``update(now, changes)`` and ``tick(now)`` return the rules that fire, in the file's order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evos.ecosystem._rules import LATITUDE, LONGITUDE, Action, At, Becomes, Rule, Rules

EARTH_RADIUS_M = 6_371_008.8  # the mean radius of the WGS 84 ellipsoid (IUGG), for the haversine distance
MAX_CATCH_UP_DAYS = 8  # an `at` looks this far back for a time it passed (a week and a day)


@dataclass(frozen=True)
class Firing:
    rule: str
    trigger: str
    actions: tuple[Action, ...]


def distance_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance on the mean Earth sphere (haversine)."""
    lat1, lat2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dlat, dlon = lat2 - lat1, math.radians(lon2_deg - lon1_deg)
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass
class _State:
    held: bool = False  # the condition held at the last step
    since: dt.datetime | None = None  # when it turned true, while waiting to fire (for_s)
    fired_at: dt.datetime | None = None


class Engine:
    def __init__(self, rules: Rules, values: Mapping[str, Any], now: dt.datetime) -> None:
        self.rules = rules
        self._values: dict[str, Any] = {}
        self._apply(values)
        self._last = now
        self._states = [_State() for _ in rules.rules]
        for rule, state in zip(rules.rules, self._states, strict=True):
            if isinstance(rule.when, Becomes):
                state.held = rule.when.condition.holds(self._values)

    def _apply(self, changes: Mapping[str, Any]) -> None:
        self._values.update(changes)
        if LATITUDE in changes or LONGITUDE in changes:  # a zone not yet known is unknown, as an absent value
            lat, lon = self._values.get(LATITUDE), self._values.get(LONGITUDE)
            for name, zone in self.rules.zones.items():
                inside = None if lat is None or lon is None else (
                    distance_m(lat, lon, zone.latitude_deg, zone.longitude_deg) <= zone.radius_m)
                self._values[f"zone.{name}"] = inside

    def update(self, now: dt.datetime, changes: Mapping[str, Any]) -> list[Firing]:
        """New values (only what changed) at ``now``; the rules that fire."""
        self._apply(changes)
        return self._step(now)

    def tick(self, now: dt.datetime) -> list[Firing]:
        """Time passed to ``now``; the rules that fire (``at``, and ``for_s`` holds that ran out)."""
        return self._step(now)

    def _step(self, now: dt.datetime) -> list[Firing]:
        fired: list[Firing] = []
        for rule, state in zip(self.rules.rules, self._states, strict=True):
            when = rule.when
            due = False
            if isinstance(when, Becomes):
                holds = when.condition.holds(self._values)
                if holds and not state.held:
                    state.since = now
                elif not holds:
                    state.since = None
                state.held = holds
                if state.since is not None and (now - state.since).total_seconds() >= when.for_s:
                    state.since = None
                    due = True
            else:
                due = self._passed(when, now)
            if due and self._may_fire(rule, state, now):
                state.fired_at = now
                fired.append(Firing(rule.name, when.text, rule.actions))
        self._last = now
        return fired

    def _may_fire(self, rule: Rule, state: _State, now: dt.datetime) -> bool:
        if state.fired_at is not None and (now - state.fired_at).total_seconds() < rule.cooldown_s:
            return False
        return rule.only_if is None or rule.only_if.holds(self._values)

    def _passed(self, when: At, now: dt.datetime) -> bool:
        """Whether a time of ``when`` on one of its days lies in (last step, now]."""
        zone = self.rules.timezone
        last, current = (self._last.astimezone(zone), now.astimezone(zone)) if zone else (
            self._last.astimezone(), now.astimezone())
        day = max(last.date(), current.date() - dt.timedelta(days=MAX_CATCH_UP_DAYS))
        while day <= current.date():
            moment = dt.datetime.combine(day, when.time, tzinfo=current.tzinfo if zone is None else zone)
            if day.weekday() in when.days and last < moment <= current:
                return True
            day += dt.timedelta(days=1)
        return False
