"""Scene files: declarative YAML that says which actuators a cabin scene sets (schema in docs/cabin.md).

Built-in scenes ship in ``data/scenes``; users add their own as ``<data dir>/scenes/*.yaml`` (a user file
with a built-in's name replaces it). Every file is checked against the broker's catalog: each path
must be an actuator and each value must fit it, so a bad file fails when it is loaded, naming the file
and the field, not halfway through entering the scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from evos.errors import DataError, EvosError
from evos.vss import Catalog, EntryType, Value, compile_pattern, validate

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # the overlay's Vehicle.Evos.Cabin.Scene pattern, less NONE
_KEYS = {"name", "title", "title_zh", "aliases", "requires_parked", "wake_after_min", "reserve_soc_pct", "set",
         "rules"}
_RULE_KEYS = {"hold", "end_when_empty"}


class SceneFileError(DataError):
    """A scene file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Scene:
    """One cabin scene: the actuator values it sets and the rules it runs under."""

    name: str
    title: str
    set: dict[str, Value]
    title_zh: str = ""
    aliases: tuple[str, ...] = ()
    requires_parked: bool = True
    wake_after_s: float | None = None  # the scene ends by itself after this long (a nap's wake-up)
    reserve_soc_pct: float | None = None  # overrides the service's reserve for this scene
    hold: frozenset[str] = field(default_factory=frozenset)  # re-asserted if anyone changes them
    end_when_empty: bool = False  # end when every front seat reports EMPTY
    source: str = ""

    def reserve_pct(self, default_pct: float) -> float:
        """The SoC reserve this scene ends at: its own, or the service's ``default_pct``."""
        return default_pct if self.reserve_soc_pct is None else self.reserve_soc_pct


def builtin_dir() -> Path:
    return Path(str(resources.files("evos.cabin").joinpath("data", "scenes")))


def load_scene(path: Path, catalog: Catalog) -> Scene:
    """Read and check one scene file. Raises SceneFileError naming the file and the field."""
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise SceneFileError(source, None, f"cannot read file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SceneFileError(source, None, f"not valid YAML: {exc}") from exc
    return parse_scene(raw, source, catalog)


def parse_scene(raw: Any, source: str, catalog: Catalog) -> Scene:
    """A Scene from a parsed YAML mapping (``source`` names it in errors)."""
    if not isinstance(raw, dict):
        raise SceneFileError(source, None, "a scene file must be a mapping with 'name' and 'set'")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise SceneFileError(source, unknown[0], f"unknown field (known: {', '.join(sorted(_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SceneFileError(source, "name", f"{name!r} is not a scene name (lowercase letters, digits, _; "
                                             "starts with a letter; at most 32 characters)")
    settings = raw.get("set")
    if not isinstance(settings, dict) or not settings:
        raise SceneFileError(source, "set", "must be a non-empty mapping of VSS actuator path to value")
    checked = {str(p): _check_value(catalog, source, str(p), v) for p, v in settings.items()}
    rules = raw.get("rules") or {}
    if not isinstance(rules, dict) or set(rules) - _RULE_KEYS:
        raise SceneFileError(source, "rules", f"must be a mapping with keys from {sorted(_RULE_KEYS)}")
    hold = rules.get("hold") or []
    if not isinstance(hold, list):
        raise SceneFileError(source, "rules.hold", "must be a list of paths the scene sets")
    for path in hold:
        if path not in checked:
            raise SceneFileError(source, "rules.hold", f"{path!r} is not one of the paths under 'set'")
    requires_parked = _flag(raw, "requires_parked", source, True)
    reclines = sorted(p for p in checked if p.endswith(".Backrest.Recline"))
    if reclines and not requires_parked:  # the assistant's safety rule, for scenes too: no recline while driving
        raise SceneFileError(source, "requires_parked", f"must be true: the scene sets {reclines[0]}, and a seat "
                                                        "may not recline while the car is driving")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise SceneFileError(source, "aliases", "must be a list of words")
    return Scene(
        name=name, title=_text(raw, "title", source, name.capitalize()), set=checked,
        title_zh=_text(raw, "title_zh", source, ""), aliases=tuple(a.lower() for a in aliases),
        requires_parked=requires_parked,
        wake_after_s=_minutes(raw, "wake_after_min", source),
        reserve_soc_pct=_number(raw, "reserve_soc_pct", source, 0, 90),
        hold=frozenset(hold), end_when_empty=_flag(rules, "end_when_empty", source, False), source=source,
    )


def load_scenes(catalog: Catalog, user_dir: Path | None = None) -> dict[str, Scene]:
    """Built-in scenes, then the user's ``*.yaml``/``*.yml`` in ``user_dir`` (same name: the user's wins)."""
    scenes: dict[str, Scene] = {}
    files = sorted(builtin_dir().glob("*.yaml"))
    if user_dir is not None and user_dir.is_dir():
        files += sorted([*user_dir.glob("*.yaml"), *user_dir.glob("*.yml")])
    for path in files:
        scene = load_scene(path, catalog)
        scenes[scene.name] = scene
    return scenes


# What a scene may never set: locks and the openings of doors and trunks go through the owner's signed commands
# (the companion), and the ADAS set points belong to driver assistance. The cabin's token does not grant them.
FORBIDDEN = ("Vehicle.Cabin.Door.*.*.IsLocked", "Vehicle.Cabin.Door.*.*.IsOpen", "Vehicle.Cabin.Door.*.*.Switch",
             "Vehicle.Body.Trunk", "Vehicle.ADAS", "Vehicle.Evos.ADAS")
_FORBIDDEN = tuple(compile_pattern(pattern) for pattern in FORBIDDEN)


def forbidden(path: str) -> bool:
    """Whether a scene may not set ``path`` (``FORBIDDEN``)."""
    return any(matches(path) for matches in _FORBIDDEN)


def _check_value(catalog: Catalog, source: str, path: str, value: Any) -> Value:
    entry = f"set.{path}"
    if forbidden(path):
        raise SceneFileError(source, entry, "a scene may not set locks, doors, the trunk or driver assistance: "
                                            "those go through the owner's signed commands and the ADAS")
    try:
        signal = catalog.get(path)
        if signal.entry_type is not EntryType.ACTUATOR:
            raise SceneFileError(source, entry, f"is a {signal.entry_type.value}, not an actuator: a scene can only "
                                                "set actuators")
        return validate(signal, value)
    except SceneFileError:
        raise
    except EvosError as exc:
        raise SceneFileError(source, entry, str(exc)) from exc


def _text(raw: dict[str, Any], key: str, source: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise SceneFileError(source, key, f"must be text, got {value!r}")
    return value


def _flag(raw: dict[str, Any], key: str, source: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise SceneFileError(source, key, f"must be true or false, got {value!r}")
    return value


def _number(raw: dict[str, Any], key: str, source: str, low: float, high: float) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SceneFileError(source, key, f"must be a number from {low} to {high}, got {value!r}")
    return float(value)


def _minutes(raw: dict[str, Any], key: str, source: str) -> float | None:
    minutes = _number(raw, key, source, 1, 24 * 60)
    return None if minutes is None else minutes * 60.0
