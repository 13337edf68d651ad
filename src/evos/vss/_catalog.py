"""The signal catalog: loading the VSS JSON export, applying overlays, looking signals up.

A catalog file is the JSON that VSS tools export (``{"Vehicle": {"type": "branch", "children": {...}}}``).
An overlay is a JSON file of the same shape or a YAML file in the vspec overlay style, whose keys are
dotted paths (``Vehicle.Cabin.Foo: {type: sensor, datatype: float}``) or nested ``children``. An overlay
entry adds a leaf, changes metadata of an existing one (only the keys it gives), or removes a node and
everything under it with ``delete: true``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from evos.errors import CatalogError, InvalidValueError, UnknownSignalError
from evos.vss._model import Datatype, EntryType, Kind, Signal
from evos.vss._patterns import compile_pattern
from evos.vss._validate import validate, validate_element

DEFAULT_CATALOG = "vss-6.0.json"
_LEAF_TYPES = {t.value for t in EntryType}
_NODE_TYPES = _LEAF_TYPES | {"branch"}
_KNOWN_KEYS = {
    "type", "datatype", "unit", "min", "max", "allowed", "default", "arraysize", "pattern",
    "description", "comment", "deprecation", "children", "uuid", "delete", "instances", "fka", "deprecated",
}


@dataclass(frozen=True)
class _Entry:
    """A node's raw attributes and the file that last defined them (for error messages)."""

    attrs: dict[str, Any]
    source: str


@dataclass
class Catalog:
    """All leaf signals by path and by numeric id, in catalog order."""

    signals: dict[str, Signal]
    by_id: dict[int, Signal] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {s.id: s for s in self.signals.values()}

    def __len__(self) -> int:
        return len(self.signals)

    def __iter__(self) -> Iterator[Signal]:
        return iter(self.signals.values())

    def __contains__(self, path: object) -> bool:
        return path in self.signals

    def get(self, path: str) -> Signal:
        """The leaf at ``path``; UnknownSignalError (with a suggestion) if there is none."""
        try:
            return self.signals[path]
        except KeyError:
            raise UnknownSignalError(self._unknown_message(path), path=path) from None

    def by_signal_id(self, signal_id: int) -> Signal:
        try:
            return self.by_id[signal_id]
        except KeyError:
            raise UnknownSignalError(f"unknown signal id {signal_id}") from None

    def match(self, pattern: str) -> list[Signal]:
        """Leaves matched by a KUKSA-style pattern (see ``evos.vss.compile_pattern``), in catalog order.

        A pattern that matches nothing is retried as ``pattern + ".**"`` (KUKSA v1's branch fallback).

        Raises InvalidArgumentError for a malformed pattern, UnknownSignalError if nothing matches.
        """
        if pattern in self.signals:
            return [self.signals[pattern]]
        matches = compile_pattern(pattern)
        found = [s for s in self.signals.values() if matches(s.path)]
        if not found and not pattern.startswith("**") and not pattern.endswith(".**") and pattern:
            # KUKSA's branch fallback: `Vehicle.Body.*` with no direct leaves means the whole branch
            matches = compile_pattern(pattern + ".**")
            found = [s for s in self.signals.values() if matches(s.path)]
        if not found:
            raise UnknownSignalError(self._unknown_message(pattern, what="pattern"))
        return found

    def to_tree(self) -> dict[str, Any]:
        """The catalog as a VSS JSON tree (the shape of ``vss-tools export json``, which ``load_catalog`` reads and
        Velocitas' model generator takes): branches ``{"type": "branch", "children": {...}}``, leaves as
        ``Signal.to_dict``. Children are in catalog order, so an overlay's leaf joins its branch."""
        tree: dict[str, Any] = {}
        for signal in self.signals.values():
            *branches, leaf = signal.path.split(".")
            level = tree
            for name in branches:
                level = level.setdefault(name, {"type": "branch", "children": {}})["children"]
            level[leaf] = signal.to_dict()
        return tree

    def _unknown_message(self, path: str, what: str = "signal") -> str:
        close = difflib.get_close_matches(path, self.signals, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        if what == "pattern" and "*" not in path:
            what = "signal or branch"
        return f"unknown {what} {path!r}: nothing in the catalog matches it{hint}"


def load_catalog(path: str | Path | None = None, overlays: Iterable[str | Path | Mapping[str, Any]] = ()) -> Catalog:
    """Load a catalog file (default: the VSS 6.0 catalog shipped with evos) and apply overlays in order (files, or
    mappings shaped like a vspec-style YAML overlay's content).

    Raises CatalogError naming the file and entry when a file or an entry is invalid.
    """
    if path is None:
        text = resources.files("evos.vss").joinpath("data", DEFAULT_CATALOG).read_text("utf-8")
        source = f"<evos default catalog {DEFAULT_CATALOG}>"
        tree = _parse_json(text, source)
    else:
        source = str(path)
        tree = _read_file(Path(path))
    entries: dict[str, _Entry] = {}
    _merge(entries, _flatten(tree, source), source, base=True)
    for overlay in overlays:
        if isinstance(overlay, Mapping):
            _merge(entries, _flatten(dict(overlay), "<overlay>"), "<overlay>", base=False)
            continue
        overlay_source = str(overlay)
        _merge(entries, _flatten(_read_file(Path(overlay)), overlay_source), overlay_source, base=False)
    return _build(entries)


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CatalogError(str(path), None, f"cannot read file: {exc.strerror or exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml", ".vspec"):
        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise CatalogError(str(path), None, f"not valid YAML: {exc}") from exc
    return _parse_json(text, str(path))


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(source, None, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc


def _flatten(tree: Any, source: str) -> dict[str, dict[str, Any]]:
    """Nodes by dotted path, from a nested tree or a mapping of dotted keys (or a mix)."""
    if not isinstance(tree, Mapping):
        raise CatalogError(source, None, "expected a mapping of signal paths at the top level")
    out: dict[str, dict[str, Any]] = {}

    def walk(path: str, node: Any) -> None:
        if not isinstance(node, Mapping):
            raise CatalogError(source, path, f"expected a mapping of attributes, got {type(node).__name__}")
        attrs = {k: v for k, v in node.items() if k != "children"}
        out[path] = attrs
        children = node.get("children")
        if children is None:
            return
        if not isinstance(children, Mapping):
            raise CatalogError(source, path, "'children' must be a mapping")
        for name, child in children.items():
            walk(f"{path}.{name}", child)

    for key, node in tree.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise CatalogError(source, str(key), "is not a valid signal path")
        walk(key, node)
    return out


def _merge(entries: dict[str, _Entry], nodes: dict[str, dict[str, Any]], source: str, base: bool) -> None:
    for path, attrs in nodes.items():
        unknown = set(attrs) - _KNOWN_KEYS
        if unknown:
            raise CatalogError(source, path, f"unknown attribute(s) {sorted(unknown)}")
        if attrs.get("delete"):
            prefix = path + "."
            for existing in [p for p in entries if p == path or p.startswith(prefix)]:
                del entries[existing]
            continue
        if path in entries and not base:
            merged = {**entries[path].attrs, **attrs}
            if "type" in attrs and (attrs["type"] == "branch") != (entries[path].attrs.get("type") == "branch"):
                raise CatalogError(source, path, "cannot turn a branch into a leaf or a leaf into a branch")
            entries[path] = _Entry(merged, source)
        elif "type" not in attrs:
            if base or "datatype" in attrs:
                raise CatalogError(source, path, "missing 'type' (branch, sensor, actuator or attribute)")
            # an overlay may leave intermediate branches implicit
            entries[path] = _Entry({**attrs, "type": "branch"}, source)
        else:
            entries[path] = _Entry(dict(attrs), source)


def _build(entries: dict[str, _Entry]) -> Catalog:
    signals: dict[str, Signal] = {}
    for path, entry in entries.items():
        node_type = entry.attrs.get("type")
        if node_type not in _NODE_TYPES:
            raise CatalogError(entry.source, path, f"type {node_type!r} is not one of {sorted(_NODE_TYPES)}")
        if node_type == "branch":
            continue
        parent = path.rpartition(".")[0]
        if parent in entries and entries[parent].attrs.get("type") != "branch":
            raise CatalogError(entry.source, path, f"parent {parent!r} is a leaf, not a branch")
        signals[path] = _signal(path, len(signals), entry)
    return Catalog(signals=signals)


def _signal(path: str, signal_id: int, entry: _Entry) -> Signal:
    attrs, source = entry.attrs, entry.source
    try:
        datatype = Datatype(attrs.get("datatype"))
    except ValueError:
        known = ", ".join(d.value for d in Datatype)
        raise CatalogError(source, path, f"datatype {attrs.get('datatype')!r} is not a VSS datatype ({known})") \
            from None
    kind = datatype.kind
    bounds: dict[str, int | float | None] = {}
    for key in ("min", "max"):
        raw = attrs.get(key)
        if raw is not None and (kind not in (Kind.INT, Kind.FLOAT) or isinstance(raw, bool)
                                or not isinstance(raw, int | float)):
            raise CatalogError(source, path, f"{key} {raw!r} must be a number on a numeric datatype")
        bounds[key] = raw
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise CatalogError(source, path, f"min {low} is greater than max {high}")
    allowed = attrs.get("allowed")
    if allowed is not None and not isinstance(allowed, list | tuple):
        raise CatalogError(source, path, "'allowed' must be a list")
    arraysize = attrs.get("arraysize")
    if arraysize is not None and (not datatype.is_array or not isinstance(arraysize, int) or arraysize < 0):
        raise CatalogError(source, path, "'arraysize' must be a non-negative integer on an array datatype")
    bare = Signal(
        path=path, id=signal_id, entry_type=EntryType(attrs["type"]), datatype=datatype,
        unit=_text(attrs, "unit", source, path) or None, min=low, max=high,
        arraysize=arraysize, pattern=_text(attrs, "pattern", source, path) or None,
        description=_text(attrs, "description", source, path), comment=_text(attrs, "comment", source, path),
        deprecation=_text(attrs, "deprecation", source, path),
    )
    try:
        allowed_values = None if allowed is None else tuple(validate_element(bare, v) for v in allowed)
        signal = replace(bare, allowed=allowed_values)
        default = attrs.get("default")
        return signal if default is None else replace(signal, default=validate(signal, default))
    except InvalidValueError as exc:
        raise CatalogError(source, path, str(exc).removeprefix(f"{path}: ")) from None


def _text(attrs: Mapping[str, Any], key: str, source: str, path: str) -> str:
    value = attrs.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogError(source, path, f"{key} must be a string, got {type(value).__name__}")
    return value
