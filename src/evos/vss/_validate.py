"""Validation of values against VSS metadata: the one function every interface uses.

``validate(signal, value)`` returns the value in its canonical Python form (arrays become tuples, ints
given for float signals become floats) or raises :class:`InvalidValueError` naming the path, the value
and the rule it broke. ``parse_value`` turns command-line text into a value of the signal's datatype.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from evos.errors import InvalidValueError
from evos.vss._model import FLOAT32_MAX, Datatype, Kind, Scalar, Signal, Value

# Longest array the broker accepts for a signal without a fixed `arraysize` (elements).
MAX_ARRAY_LEN = 4096
# Longest string value (characters): far above any value of the car's own (names, URIs, messages, a hand-over's
# JSON), far below what one value could cost every reader (a 10 MB model name once made each state read 10.5 MB).
MAX_STRING_CHARS = 4096
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(signal: Signal, value: Any, rule: str) -> InvalidValueError:
    return InvalidValueError(f"{signal.path}: value {_show(value)} {rule}", path=signal.path)


def _check_scalar(signal: Signal, datatype: Datatype, value: Any) -> Scalar:
    kind = datatype.kind
    value_type = type(value)
    if kind is Kind.FLOAT:
        if value_type is float:
            number = value
        elif value_type is int:
            try:
                number = float(value)
            except OverflowError:
                raise _fail(signal, value, f"is outside the range of {datatype.value}") from None
        else:
            raise _fail(signal, value, f"is {value_type.__name__}, expected a number ({datatype.value})")
        if not math.isfinite(number):
            raise _fail(signal, value, f"is not a finite number ({datatype.value})")
        if datatype is Datatype.FLOAT and abs(number) > FLOAT32_MAX:
            raise _fail(signal, value, "is outside the range of a 32-bit float")
    elif kind is Kind.INT:
        if value_type is not int:
            raise _fail(signal, value, f"is {value_type.__name__}, expected an integer ({datatype.value})")
        low, high = datatype.int_bounds  # type: ignore[misc]
        if not low <= value <= high:
            raise _fail(signal, value, f"is outside the range of {datatype.value} [{low}, {high}]")
        number = value
    elif kind is Kind.BOOL:
        if value_type is not bool:
            raise _fail(signal, value, f"is {value_type.__name__}, expected a boolean")
        return value
    else:
        if value_type is not str:
            raise _fail(signal, value, f"is {value_type.__name__}, expected a string")
        if len(value) > MAX_STRING_CHARS:
            raise _fail(signal, f"<{len(value):,} characters>", f"is longer than the limit of {MAX_STRING_CHARS:,} "
                        "characters")
        if signal.pattern is not None and _regex(signal.pattern).fullmatch(value) is None:
            raise _fail(signal, value, f"does not match the pattern {signal.pattern!r}")
        if signal.allowed is not None and value not in signal.allowed:
            raise _fail(signal, value, f"is not one of the allowed values {list(signal.allowed)}")
        return value
    if signal.min is not None and number < signal.min:
        raise _fail(signal, value, f"is below the minimum {signal.min}")
    if signal.max is not None and number > signal.max:
        raise _fail(signal, value, f"is above the maximum {signal.max}")
    if signal.allowed is not None and number not in signal.allowed:
        raise _fail(signal, value, f"is not one of the allowed values {list(signal.allowed)}")
    return number


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate_element(signal: Signal, value: Any) -> Scalar:
    """Check one element (a scalar of the signal's element datatype), e.g. an entry of ``allowed``."""
    return _check_scalar(signal, signal.datatype.element, value)


def validate(signal: Signal, value: Any) -> Value:
    """Check ``value`` against ``signal``'s datatype, range, allowed values and array size.

    Returns the canonical value (tuple for arrays, float for float/double signals).
    Raises InvalidValueError naming the path, the value and the broken rule.
    """
    datatype = signal.datatype
    if not datatype.is_array:
        if value is None:
            raise _fail(signal, value, "is missing")
        return _check_scalar(signal, datatype, value)
    if not isinstance(value, list | tuple):
        raise _fail(signal, value, f"is {type(value).__name__}, expected an array ({datatype.value})")
    limit = signal.arraysize if signal.arraysize is not None else MAX_ARRAY_LEN
    if signal.arraysize is not None and len(value) != signal.arraysize:
        raise _fail(signal, f"<{len(value)} elements>", f"must have exactly {signal.arraysize} elements")
    if len(value) > limit:
        raise _fail(signal, f"<{len(value)} elements>", f"is longer than the limit of {limit} elements")
    element = datatype.element
    return tuple(_check_scalar(signal, element, item) for item in value)


def parse_value(signal: Signal, text: str) -> Value:
    """Parse command-line text into a value of ``signal``'s datatype, then validate it.

    Scalars: ``true``/``false`` for booleans, decimal numbers, strings as given. Arrays: a JSON array
    (``[1, 2]``) or comma-separated items (``a,b``).
    """
    datatype = signal.datatype
    if datatype.is_array:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise _fail(signal, text, f"is not a JSON array: {exc.msg}") from exc
            if not isinstance(items, list):
                raise _fail(signal, text, "is not a JSON array")
            return validate(signal, items)
        parts = [p.strip() for p in stripped.split(",")] if stripped else []
        return validate(signal, [_parse_scalar(signal, datatype.element, p) for p in parts])
    return validate(signal, _parse_scalar(signal, datatype, text))


def _parse_scalar(signal: Signal, datatype: Datatype, text: str) -> Scalar:
    kind = datatype.kind
    if kind is Kind.STRING:
        return text
    if kind is Kind.BOOL:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _fail(signal, text, "is not a boolean (use true or false)")
    try:
        return int(text, 10) if kind is Kind.INT else float(text)
    except ValueError as exc:
        raise _fail(signal, text, f"is not a valid {datatype.value}") from exc
