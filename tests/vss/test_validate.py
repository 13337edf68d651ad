"""Validation of values against VSS metadata: hand cases and properties (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evos.errors import InvalidValueError
from evos.vss import MAX_ARRAY_LEN, Catalog, Datatype, EntryType, Signal, parse_value, validate


def sig(datatype: Datatype, **kw: object) -> Signal:
    return Signal(path="Vehicle.Test", id=0, entry_type=EntryType.SENSOR, datatype=datatype, **kw)  # type: ignore[arg-type]


INT_TYPES = [d for d in Datatype if not d.is_array and d.int_bounds is not None]


@pytest.mark.parametrize(("datatype", "value", "rule"), [
    (Datatype.UINT8, 256, "outside the range of uint8"),
    (Datatype.UINT8, -1, "outside the range of uint8"),
    (Datatype.INT8, 128, "outside the range of int8"),
    (Datatype.UINT8, 1.5, "expected an integer"),
    (Datatype.UINT8, True, "expected an integer"),
    (Datatype.FLOAT, "1", "expected a number"),
    (Datatype.FLOAT, math.nan, "not a finite number"),
    (Datatype.FLOAT, 1e39, "32-bit float"),
    (Datatype.BOOLEAN, 1, "expected a boolean"),
    (Datatype.STRING, 5, "expected a string"),
    (Datatype.STRING_ARRAY, "a", "expected an array"),
    (Datatype.UINT8_ARRAY, [1, 300], "outside the range of uint8"),
    (Datatype.FLOAT, None, "is missing"),
])
def test_rejects_with_path_value_and_rule(datatype: Datatype, value: object, rule: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        validate(sig(datatype), value)
    assert str(info.value).startswith("Vehicle.Test: value ")
    assert rule in str(info.value)
    assert info.value.path == "Vehicle.Test"


def test_catalog_limits(catalog: Catalog) -> None:
    soc = catalog.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert validate(soc, 80) == 80.0
    assert isinstance(validate(soc, 80), float)
    with pytest.raises(InvalidValueError, match="above the maximum 100"):
        validate(soc, 100.5)
    state = catalog.get("Vehicle.LowVoltageSystemState")
    with pytest.raises(InvalidValueError, match="not one of the allowed values"):
        validate(state, "HALF")


def test_oversize_arrays() -> None:
    with pytest.raises(InvalidValueError, match=f"longer than the limit of {MAX_ARRAY_LEN}"):
        validate(sig(Datatype.FLOAT_ARRAY), [0.0] * (MAX_ARRAY_LEN + 1))
    with pytest.raises(InvalidValueError, match="exactly 3 elements"):
        validate(sig(Datatype.FLOAT_ARRAY, arraysize=3), [1.0, 2.0])
    assert validate(sig(Datatype.FLOAT_ARRAY, arraysize=3), [1, 2, 3]) == (1.0, 2.0, 3.0)


@given(st.sampled_from(INT_TYPES), st.integers(min_value=-(2**65), max_value=2**65))
def test_integers_accepted_exactly_within_datatype_bounds(datatype: Datatype, value: int) -> None:
    low, high = datatype.int_bounds  # type: ignore[misc]
    if low <= value <= high:
        assert validate(sig(datatype), value) == value
    else:
        with pytest.raises(InvalidValueError):
            validate(sig(datatype), value)


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_floats_accepted_exactly_within_min_max(value: float, low: float, span: float) -> None:
    signal = sig(Datatype.DOUBLE, min=low, max=low + span)
    if math.isfinite(value) and low <= value <= low + span:
        assert validate(signal, value) == value
    else:
        with pytest.raises(InvalidValueError):
            validate(signal, value)


@given(st.lists(st.text(max_size=5), max_size=8), st.lists(st.text(max_size=5), min_size=1, max_size=4))
def test_allowed_string_arrays_check_every_element(values: list[str], allowed: list[str]) -> None:
    signal = sig(Datatype.STRING_ARRAY, allowed=tuple(allowed))
    if all(v in allowed for v in values):
        assert validate(signal, values) == tuple(values)
    else:
        with pytest.raises(InvalidValueError, match="allowed values"):
            validate(signal, values)


@given(st.sampled_from([d for d in Datatype if not d.is_array]), st.data())
def test_parse_round_trips_valid_values(datatype: Datatype, data: st.DataObject) -> None:
    signal = sig(datatype)
    if datatype.int_bounds is not None:
        low, high = datatype.int_bounds
        value: object = data.draw(st.integers(low, high))
    elif datatype is Datatype.BOOLEAN:
        value = data.draw(st.booleans())
    elif datatype is Datatype.STRING:
        value = data.draw(st.text(max_size=10))
    else:
        value = data.draw(st.floats(-1e30, 1e30))
    text = str(value).lower() if isinstance(value, bool) else str(value)
    assert parse_value(signal, text) == value


def test_parse_arrays() -> None:
    assert parse_value(sig(Datatype.UINT8_ARRAY), "[1, 2, 3]") == (1, 2, 3)
    assert parse_value(sig(Datatype.STRING_ARRAY), "a, b") == ("a", "b")
    assert parse_value(sig(Datatype.STRING_ARRAY), "") == ()
    with pytest.raises(InvalidValueError, match="not a JSON array"):
        parse_value(sig(Datatype.UINT8_ARRAY), "[1, 2")
    with pytest.raises(InvalidValueError, match="not a boolean"):
        parse_value(sig(Datatype.BOOLEAN), "maybe")
