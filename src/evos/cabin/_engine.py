"""The scene engine's pure core: which actuator values to request when a scene starts, runs and ends.

No broker, no clock: the shell (``_service``) passes the current values, the time ``now_s`` and the car's
conditions in, and carries the returned ``{path: value}`` requests out.

Rules (also in docs/cabin.md):
- Entering remembers the value every path of the scene had before (current value, else last target;
  a path with neither is not restored) and exiting restores them.
- Entering a scene while another is active leaves the first (its values restored, except where the
  new scene sets the same path) and enters the second; the restore point is what the car had before
  the first scene.
- A manual change of a path the scene set (a target request the engine did not make) is the user's:
  it is kept on exit instead of being overwritten. Paths listed in the scene's ``rules.hold`` are the
  exception: the engine requests the scene's value again (pet mode keeps the climate on).
- A scene with ``requires_parked`` refuses to start unless the car is parked (speed 0 and the gear in
  P or N, or unknown), and ends (restoring) as soon as the car moves.
- A scene ends by itself when its wake-up timer runs out, when the SoC reaches the reserve, and (with
  ``end_when_empty``) when every front seat reports EMPTY. It warns when less than ``warn_s`` of
  energy is left above the reserve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from evos.cabin._scenes import Scene
from evos.errors import InvalidArgumentError, NotPermittedError
from evos.vss import Value

PARK_GEAR = 126  # VSS SelectedGear: 0 = neutral, 126 = park, 127 = drive
NEUTRAL_GEAR = 0
STANDSTILL_KMH = 0.5


class SceneRefusedError(NotPermittedError):
    """A scene cannot start now (the car is moving); the message says why."""


@dataclass(frozen=True)
class Conditions:
    """What the engine needs to know about the car (None: not available)."""

    speed_kmh: float | None = None
    gear: int | None = None
    soc_pct: float | None = None
    occupied: bool = True  # any front seat not reporting EMPTY
    runtime_s: float | None = None  # energy forecast: time left down to the reserve


def not_parked_reason(cond: Conditions) -> str | None:
    """Why the car does not count as parked, or None if it is."""
    if cond.speed_kmh is not None and abs(cond.speed_kmh) > STANDSTILL_KMH:  # negative: reversing
        return f"the car is moving ({abs(cond.speed_kmh):.0f} km/h)"
    if cond.gear is not None and cond.gear not in (PARK_GEAR, NEUTRAL_GEAR):
        return "the car is in gear (shift to P first)"
    return None


def same(a: Value | None, b: Value | None) -> bool:
    """Equal values, floats compared as the broker stores them (32-bit)."""
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return a == b


@dataclass
class Active:
    """A running scene and what the engine remembers about it."""

    scene: Scene
    started_s: float
    saved: dict[str, Value]  # value before the scene, per path it sets
    kept: set[str] = field(default_factory=set)  # paths the user changed during the scene


class SceneEngine:
    """State machine of the cabin scene (one active scene at most)."""

    def __init__(self, scenes: Mapping[str, Scene], reserve_soc_pct: float = 20.0, warn_s: float = 1800.0) -> None:
        if not 0 <= reserve_soc_pct < 100:
            raise ValueError(f"reserve_soc_pct must be in [0, 100), got {reserve_soc_pct}")
        self.scenes = dict(scenes)
        self.reserve_soc_pct = reserve_soc_pct
        self.warn_s = warn_s
        self.active: Active | None = None
        self.status = "IDLE"
        self.reason = ""
        self._echoes: dict[str, list[Value]] = {}  # requests made, whose target updates are still to come

    def scene(self, name: str) -> Scene:
        try:
            return self.scenes[name]
        except KeyError:
            raise InvalidArgumentError(
                f"unknown scene {name!r}; scenes: {', '.join(sorted(self.scenes))}", path=None) from None

    def reserve_for(self, scene: Scene) -> float:
        return scene.reserve_pct(self.reserve_soc_pct)

    def refusal(self, scene: Scene, cond: Conditions) -> str | None:
        """Why ``scene`` may not start under ``cond``, or None if it may."""
        moving = not_parked_reason(cond) if scene.requires_parked else None
        if moving is not None:
            return f"{scene.name} needs the car parked: {moving}"
        reserve = self.reserve_for(scene)
        if cond.soc_pct is not None and cond.soc_pct <= reserve:
            return f"{scene.name} cannot start: the battery is at {cond.soc_pct:.0f} %, at or below the " \
                   f"{reserve:.0f} % reserve"
        return None

    def enter(self, name: str, now_s: float, current: Mapping[str, Value | None], cond: Conditions
              ) -> dict[str, Value]:
        """Requests that start scene ``name``; raises SceneRefusedError (and changes nothing) if it may not."""
        scene = self.scene(name)
        refusal = self.refusal(scene, cond)
        if refusal is not None:
            self.status, self.reason = "REFUSED", refusal
            raise SceneRefusedError(refusal)
        before = dict(current)
        requests: dict[str, Value] = {}
        if self.active is not None:
            restore = self._restore(self.active)
            before.update(restore)
            requests.update({p: v for p, v in restore.items() if p not in scene.set})
        saved = {p: v for p in scene.set if (v := before.get(p)) is not None}
        requests.update(scene.set)
        self.active = Active(scene, now_s, saved)
        self.status, self.reason = "ACTIVE", f"{scene.name} started"
        return self._issue(requests)

    def exit(self, reason: str = "", ended: bool = False) -> dict[str, Value]:
        """Requests that leave the active scene (restore); ``ended``: it ended by itself (status ENDED)."""
        if self.active is None:
            return {}
        name = self.active.scene.name
        requests = self._restore(self.active)
        self.active = None
        self.status = "ENDED" if ended else "IDLE"
        self.reason = f"{name} {'ended' if ended else 'left'}{': ' + reason if reason else ''}"
        return self._issue(requests)

    def on_target(self, path: str, value: Value) -> dict[str, Value]:
        """A target request seen on the broker; returns requests to re-assert a held path."""
        echoes = self._echoes.get(path)
        if echoes:
            for i, issued in enumerate(echoes):
                if same(issued, value):
                    del echoes[i]
                    return {}
        active = self.active
        if active is None or path not in active.scene.set or same(active.scene.set[path], value):
            return {}
        if path in active.scene.hold:
            self.reason = f"{active.scene.name} holds {path.rsplit('.', 2)[-2]}.{path.rsplit('.', 1)[-1]}"
            return self._issue({path: active.scene.set[path]})
        active.kept.add(path)
        return {}

    def check(self, now_s: float, cond: Conditions) -> dict[str, Value]:
        """Requests to end the active scene if one of its end conditions holds (else {}), and the warning."""
        active = self.active
        if active is None:
            return {}
        scene = active.scene
        reserve = self.reserve_for(scene)
        moving = not_parked_reason(cond) if scene.requires_parked else None
        if moving is not None:
            return self.exit(f"{moving}; the cabin was restored", ended=True)
        if scene.wake_after_s is not None and now_s - active.started_s >= scene.wake_after_s:
            return self.exit(f"wake-up timer ({scene.wake_after_s / 60:.0f} min)", ended=True)
        if cond.soc_pct is not None and cond.soc_pct <= reserve:
            return self.exit(f"the battery reached the {reserve:.0f} % reserve", ended=True)
        if scene.end_when_empty and not cond.occupied:
            return self.exit("the cabin is empty", ended=True)
        if cond.runtime_s is not None and cond.runtime_s < self.warn_s:
            self.reason = f"warning: {format_duration(cond.runtime_s)} left to the {reserve:.0f} % reserve"
        return {}

    def timer_remaining_s(self, now_s: float) -> float | None:
        active = self.active
        if active is None or active.scene.wake_after_s is None:
            return None
        return max(active.scene.wake_after_s - (now_s - active.started_s), 0.0)

    def _restore(self, active: Active) -> dict[str, Value]:
        return {p: v for p, v in active.saved.items() if p not in active.kept}

    def _issue(self, requests: dict[str, Value]) -> dict[str, Value]:
        for path, value in requests.items():
            self._echoes.setdefault(path, []).append(value)
        return requests

    def forget(self, requests: Mapping[str, Value]) -> None:
        """The shell could not send ``requests``: expect no target updates for them."""
        for path, value in requests.items():
            echoes = self._echoes.get(path, [])
            if value in echoes:
                echoes.remove(value)


def format_duration(seconds: float) -> str:
    """'6 h 20 min', '45 min' (rounded down to the minute)."""
    minutes = int(max(seconds, 0) // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
