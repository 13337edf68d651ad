"""Frozen dataclasses from parsed data files (TOML, YAML, JSON): every field checked on load.

``from_mapping(cls, data, source, where, error)`` builds ``cls`` from a mapping, converting each field by
its type hint (numbers, booleans, strings, ``Literal``, optionals, tuples, nested dataclasses) and
applying the rule in a field's ``metadata["check"]`` (with its message in ``metadata["rule"]``). Any
problem raises ``error(source, entry, problem)`` naming the file and the field (``battery.gross_kwh``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin, get_type_hints

from evos.errors import DataError, InvalidArgumentError


def rule(predicate: Callable[[Any], bool], message: str) -> dict[str, Any]:
    """Field metadata: a predicate the loaded value must satisfy, and what to say when it does not."""
    return {"check": predicate, "rule": message}


def from_mapping(cls: type, data: Any, source: str, where: str, error: type[DataError],
                 skip: frozenset[str] = frozenset()) -> Any:
    """A ``cls`` from ``data``; unknown, missing, mistyped or out-of-rule fields raise ``error``."""
    if not isinstance(data, Mapping):
        raise error(source, where or None, f"must be a mapping (a table), got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    prefix = f"{where}." if where else ""
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise error(source, prefix + unknown[0], f"unknown field (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        path = prefix + name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise error(source, path, "missing required field")
            continue
        values[name] = convert(hints[name], data[name], source, path, error)
        predicate = f.metadata.get("check")
        if predicate is not None and not predicate(values[name]):
            raise error(source, path, f"{f.metadata['rule']}, got {values[name]!r}")
    try:
        return cls(**values)
    except InvalidArgumentError as exc:
        # the dataclass names its rule as "Class.field: problem": keep the file's path of the entry
        head, _, problem = str(exc).partition(": ")
        field_name = head.rsplit(".", 1)[-1]
        raise error(source, prefix + field_name if field_name in fields else where or None,
                    problem or str(exc)) from None
    except ValueError as exc:
        raise error(source, where or None, str(exc)) from None


def convert(hint: Any, raw: Any, source: str, path: str, error: type[DataError]) -> Any:
    """``raw`` as a value of type ``hint``, or ``error`` naming ``path``."""
    args = get_args(hint)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if raw is None else convert(inner[0], raw, source, path, error)
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise error(source, path, f"must be a number, got {raw!r}")
        return float(raw)
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise error(source, path, f"must be an integer, got {raw!r}")
        return raw
    if hint is bool or hint is str:
        if not isinstance(raw, hint):
            raise error(source, path, f"must be {'true or false' if hint is bool else 'a string'}, got {raw!r}")
        return raw
    if get_origin(hint) is Literal:
        if raw not in args:
            raise error(source, path, f"must be one of {list(args)}, got {raw!r}")
        return raw
    if get_origin(hint) is tuple:
        if not isinstance(raw, list | tuple):
            raise error(source, path, f"must be a list, got {type(raw).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], item, source, f"{path}[{i}]", error) for i, item in enumerate(raw))
        if len(raw) != len(args):
            raise error(source, path, f"must be a list of {len(args)} items, got {len(raw)}")
        return tuple(convert(a, item, source, f"{path}[{i}]", error) for i, (a, item) in enumerate(zip(args, raw,
                                                                                                       strict=True)))
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, raw, source, path, error)  # type: ignore[arg-type]
    raise error(source, path, f"unsupported field type {hint}")
