"""The bridge's topics and payloads, pure: a signal's state topic, the path a command topic names, a value as the
text a home reads, and a command's text as a value of its signal.

Signal ``Vehicle.Cabin.HVAC.IsAirConditioningActive`` is published on ``<base>/Vehicle/Cabin/HVAC/
IsAirConditioningActive`` and commanded on the same topic plus ``/set``. Payloads are text: ``true``/``false``,
decimal numbers, strings as they are, arrays as JSON.
"""

from __future__ import annotations

import json
import math
import re

from evos.errors import InvalidArgumentError, InvalidValueError
from evos.vss import Signal, Value, parse_value

SET = "/set"
MAX_COMMAND_BYTES = 1024
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def state_topic(base: str, path: str) -> str:
    return f"{base}/{path.replace('.', '/')}"


def command_topic(base: str, path: str) -> str:
    return state_topic(base, path) + SET


def path_of(base: str, topic: str) -> str:
    """The VSS path a command topic names; InvalidArgumentError when it is not ``<base>/<path levels>/set``."""
    if not topic.startswith(base + "/") or not topic.endswith(SET):
        raise InvalidArgumentError(f"{topic!r} is not a command topic ({base}/<signal path>/set)")
    levels = topic[len(base) + 1:-len(SET)].split("/")
    bad = next((level for level in levels if not _SEGMENT.fullmatch(level)), None)
    if bad is not None:
        raise InvalidArgumentError(f"{topic!r}: {bad!r} is not a level of a signal path (letters, digits and _)")
    return ".".join(levels)


def encode(value: Value) -> bytes:
    """A value as the text a home reads."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, float):
        return (repr(round(value, 6)) if math.isfinite(value) else "null").encode()
    if isinstance(value, tuple | list):
        return json.dumps(list(value)).encode()
    return str(value).encode()


def decode(signal: Signal, payload: bytes) -> Value:
    """A command's payload as a value of ``signal`` (checked against its datatype, range and allowed values);
    InvalidValueError naming what was wrong."""
    if not payload:
        raise InvalidValueError(f"{signal.path}: the command is empty (expected a {signal.datatype.value})",
                                path=signal.path)
    if len(payload) > MAX_COMMAND_BYTES:
        raise InvalidValueError(f"{signal.path}: the command is {len(payload):,} bytes, over the limit of "
                                f"{MAX_COMMAND_BYTES:,}", path=signal.path)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidValueError(f"{signal.path}: the command is not UTF-8 text ({exc.reason} at byte "
                                f"{exc.start})", path=signal.path) from None
    if "\x00" in text:
        raise InvalidValueError(f"{signal.path}: the command holds a NUL character", path=signal.path)
    if text != text.strip():
        raise InvalidValueError(f"{signal.path}: value {text!r} has spaces around it", path=signal.path)
    return parse_value(signal, text)
