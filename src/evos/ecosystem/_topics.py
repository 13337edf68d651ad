"""The bridge's topics and payloads, pure: a signal's state topic, the path a command topic names, a value as the
text a home reads, and a command's text as a value of its signal.

Signal ``Vehicle.Cabin.HVAC.IsAirConditioningActive`` is published on ``<base>/Vehicle/Cabin/HVAC/
IsAirConditioningActive`` and commanded on the same topic plus ``/set``. Payloads are text: ``true``/``false``,
decimal numbers, strings as they are, arrays as JSON. A command must be in exactly that form, the form the state is
published in: no ``yes``/``ON``/``1`` for a boolean, no ``8_0``, ``0x50``, ``nan`` or non-ASCII digits for a number
(the command line's lenient reading is for people, not for machines that can be wrong).
"""

from __future__ import annotations

import json
import math
import re

from evos.errors import InvalidArgumentError, InvalidValueError
from evos.vss import Kind, Signal, Value, parse_value

SET = "/set"
MAX_COMMAND_BYTES = 1024
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_]")
# the text forms a command's value must have, per kind of datatype (ASCII only: \d would take other scripts' digits)
_FORMS = {
    Kind.BOOL: (re.compile(r"true|false"), "true or false"),
    Kind.INT: (re.compile(r"-?[0-9]+"), "an integer in decimal digits"),
    Kind.FLOAT: (re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"), "a decimal number"),
}


def state_topic(base: str, path: str) -> str:
    return f"{base}/{path.replace('.', '/')}"


def command_topic(base: str, path: str) -> str:
    return state_topic(base, path) + SET


def path_of(base: str, topic: str) -> str:
    """The VSS path a command topic names; InvalidArgumentError when it is not ``<base>/<path levels>/set``."""
    if not topic.startswith(base + "/") or not topic.endswith(SET):
        raise InvalidArgumentError(f"{topic!r} is not a command topic ({base}/<signal path>/set)")
    levels = topic[len(base) + 1:-len(SET)].split("/")
    for level in levels:
        if not level:
            raise InvalidArgumentError(f"{topic!r} has an empty level: a signal path's levels are names")
        odd = _NOT_IN_NAMES.search(level)
        if odd is not None:
            raise InvalidArgumentError(f"{topic!r}: level {level!r} holds {odd.group()!r} (U+{ord(odd.group()):04X}), "
                                       "which no signal's name has (ASCII letters, digits and _)")
        if not _SEGMENT.fullmatch(level):
            raise InvalidArgumentError(f"{topic!r}: level {level!r} does not start with a letter, as names do")
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


def command_text(where: str, payload: bytes, expected: str, path: str | None = None) -> str:
    """A command's payload as its text: not empty, within MAX_COMMAND_BYTES, UTF-8, no NUL, no spaces around it;
    InvalidValueError naming ``where`` (and ``expected``, what the command should hold) otherwise."""
    if not payload:
        raise InvalidValueError(f"{where}: the command is empty (expected {expected})", path=path)
    if len(payload) > MAX_COMMAND_BYTES:
        raise InvalidValueError(f"{where}: the command is {len(payload):,} bytes, over the limit of "
                                f"{MAX_COMMAND_BYTES:,}", path=path)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidValueError(f"{where}: the command is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                path=path) from None
    if "\x00" in text:
        raise InvalidValueError(f"{where}: the command holds a NUL character", path=path)
    if text != text.strip():
        raise InvalidValueError(f"{where}: value {text!r} has spaces around it", path=path)
    return text


def require_form(where: str, kind: Kind, text: str, detail: str = "", path: str | None = None) -> None:
    """InvalidValueError unless ``text`` is a ``kind`` value written exactly as the car publishes one."""
    form, wanted = _FORMS[kind]
    if not form.fullmatch(text):
        raise InvalidValueError(f"{where}: value {text[:60]!r} is not {wanted}{detail}", path=path)


def decode(signal: Signal, payload: bytes) -> Value:
    """A command's payload as a value of ``signal`` (checked against its datatype, range and allowed values);
    InvalidValueError naming what was wrong."""
    datatype = signal.datatype
    text = command_text(signal.path, payload, f"a {datatype.value}", signal.path)
    if datatype.is_array:
        if not text.startswith("["):
            raise InvalidValueError(f"{signal.path}: value {text!r} is not a JSON array (a {datatype.value})",
                                    path=signal.path)
    elif datatype.kind in _FORMS:
        require_form(signal.path, datatype.kind, text, f" (a {datatype.value}, written as the car publishes it)",
                     signal.path)
    return parse_value(signal, text)
