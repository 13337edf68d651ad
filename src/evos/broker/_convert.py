"""Conversions between evos values/metadata and the KUKSA protobuf messages (v1 and v2).

Protobuf stays here and in the servicers; the core sees plain Python values. The wire field used for
a value follows the signal's datatype as KUKSA does: 8/16/32-bit signed ints travel as ``int32``,
unsigned as ``uint32``, arrays in their ``*_array`` wrappers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v2 import types_pb2 as t2

from evos.broker._core import Datapoint
from evos.errors import InvalidValueError
from evos.vss import Datatype, EntryType, Kind, Signal, Value

MAX_TIMESTAMP_S = 253_402_300_799  # 9999-12-31T23:59:59Z, the protobuf Timestamp limit
_FIELD = {
    Datatype.BOOLEAN: "bool",
    Datatype.STRING: "string",
    Datatype.INT8: "int32",
    Datatype.INT16: "int32",
    Datatype.INT32: "int32",
    Datatype.INT64: "int64",
    Datatype.UINT8: "uint32",
    Datatype.UINT16: "uint32",
    Datatype.UINT32: "uint32",
    Datatype.UINT64: "uint64",
    Datatype.FLOAT: "float",
    Datatype.DOUBLE: "double",
}
# wire field of each datatype (arrays: "<element>_array")
WIRE_FIELD = {
    dt: (_FIELD[dt.element] + "_array" if dt.is_array else _FIELD[dt]) for dt in Datatype
}
_V2_ARRAY = {
    "string_array": t2.StringArray, "bool_array": t2.BoolArray, "int32_array": t2.Int32Array,
    "int64_array": t2.Int64Array, "uint32_array": t2.Uint32Array, "uint64_array": t2.Uint64Array,
    "float_array": t2.FloatArray, "double_array": t2.DoubleArray,
}
_V1_ARRAY = {
    "string_array": t1.StringArray, "bool_array": t1.BoolArray, "int32_array": t1.Int32Array,
    "int64_array": t1.Int64Array, "uint32_array": t1.Uint32Array, "uint64_array": t1.Uint64Array,
    "float_array": t1.FloatArray, "double_array": t1.DoubleArray,
}
V2_DATATYPE = {dt: t2.DataType.Value("DATA_TYPE_" + dt.name) for dt in Datatype}
V1_DATATYPE = {dt: t1.DataType.Value("DATA_TYPE_" + dt.name) for dt in Datatype}
V2_ENTRY_TYPE = {et: t2.EntryType.Value("ENTRY_TYPE_" + et.name) for et in EntryType}
V1_ENTRY_TYPE = {et: t1.EntryType.Value("ENTRY_TYPE_" + et.name) for et in EntryType}


def _float32(raw: float) -> float:
    """A float32 from the wire as the shortest decimal that is the same float32 (0.1, not 0.10000000149)."""
    return float(str(np.float32(raw)))


def unwrap(message: Any, oneof: str, path: str) -> Any:
    """The Python value a message carries in its ``oneof`` (float32 as its shortest decimal, arrays as lists)."""
    field = message.WhichOneof(oneof)
    if field is None:
        raise InvalidValueError(f"{path}: no value given", path=path)
    raw = getattr(message, field)
    if field == "float_array":
        return [_float32(x) for x in raw.values]
    if field.endswith("_array"):
        return list(raw.values)
    if field == "float":
        return _float32(raw)
    return raw


def value_from_v2(message: t2.Value, path: str) -> Any:
    """Python value carried by a v2 ``Value`` (validated later against the signal)."""
    return unwrap(message, "typed_value", path)


def value_from_v1(message: t1.Datapoint, path: str) -> Any:
    """Python value carried by a v1 ``Datapoint``."""
    return unwrap(message, "value", path)


def timestamp_from(message: Any, path: str) -> float | None:
    """Seconds since the epoch from a Datapoint's timestamp, or None if it has none.

    Raises InvalidValueError for a timestamp outside 1970-01-01 .. 9999-12-31 or with bad nanos.
    """
    if not message.HasField("timestamp"):
        return None
    stamp = message.timestamp
    if not 0 <= stamp.seconds <= MAX_TIMESTAMP_S or not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidValueError(
            f"{path}: timestamp {stamp.seconds} s {stamp.nanos} ns is outside 1970-01-01..9999-12-31", path=path)
    return float(stamp.seconds + stamp.nanos * 1e-9)


def _stamp(timestamp_s: float) -> Timestamp:
    seconds = math.floor(timestamp_s)
    return Timestamp(seconds=seconds, nanos=min(int((timestamp_s - seconds) * 1e9), 999_999_999))


def value_to_v2(datatype: Datatype, value: Value) -> t2.Value:
    field = WIRE_FIELD[datatype]
    if datatype.is_array:
        return t2.Value(**{field: _V2_ARRAY[field](values=value)})
    return t2.Value(**{field: value})


def datapoint_to_v2(datatype: Datatype, datapoint: Datapoint) -> t2.Datapoint:
    """A v2 Datapoint; a not-available value becomes an empty Datapoint (no value, no timestamp)."""
    if datapoint.value is None:
        return t2.Datapoint()
    return t2.Datapoint(timestamp=_stamp(datapoint.timestamp_s or 0.0), value=value_to_v2(datatype, datapoint.value))


def datapoint_to_v1(datatype: Datatype, datapoint: Datapoint) -> t1.Datapoint:
    if datapoint.value is None:
        return t1.Datapoint()
    field = WIRE_FIELD[datatype]
    value: Any = _V1_ARRAY[field](values=datapoint.value) if datatype.is_array else datapoint.value
    return t1.Datapoint(timestamp=_stamp(datapoint.timestamp_s or 0.0), **{field: value})


def metadata_to_v2(signal: Signal) -> t2.Metadata:
    meta = t2.Metadata(
        path=signal.path, id=signal.id, data_type=V2_DATATYPE[signal.datatype],
        entry_type=V2_ENTRY_TYPE[signal.entry_type], description=signal.description,
        comment=signal.comment, deprecation=signal.deprecation, unit=signal.unit or "",
    )
    element = signal.datatype.element
    if signal.min is not None:
        meta.min.CopyFrom(value_to_v2(element, _as_kind(element, signal.min)))
    if signal.max is not None:
        meta.max.CopyFrom(value_to_v2(element, _as_kind(element, signal.max)))
    if signal.allowed is not None:
        array_type = Datatype(element.value + "[]")
        meta.allowed_values.CopyFrom(value_to_v2(array_type, signal.allowed))
    return meta


def metadata_to_v1(signal: Signal) -> t1.Metadata:
    meta = t1.Metadata(
        data_type=V1_DATATYPE[signal.datatype], entry_type=V1_ENTRY_TYPE[signal.entry_type],
        description=signal.description, comment=signal.comment, deprecation=signal.deprecation,
        unit=signal.unit or "",
    )
    getattr(meta, signal.entry_type.value).SetInParent()
    restriction = _v1_restriction(signal)
    if restriction is not None:
        meta.value_restriction.CopyFrom(restriction)
    return meta


def _v1_restriction(signal: Signal) -> t1.ValueRestriction | None:
    if signal.min is None and signal.max is None and signal.allowed is None:
        return None
    element = signal.datatype.element
    kind = element.kind
    allowed = list(signal.allowed or ())
    if kind is Kind.STRING:
        return t1.ValueRestriction(string=t1.ValueRestrictionString(allowed_values=allowed))
    if kind is Kind.BOOL:
        return None
    limits: dict[str, Any] = {"allowed_values": allowed}
    if signal.min is not None:
        limits["min"] = _as_kind(element, signal.min)
    if signal.max is not None:
        limits["max"] = _as_kind(element, signal.max)
    if kind is Kind.FLOAT:
        return t1.ValueRestriction(floating_point=t1.ValueRestrictionFloat(**limits))
    bounds = element.int_bounds
    if bounds is not None and bounds[0] < 0:
        return t1.ValueRestriction(signed=t1.ValueRestrictionInt(**limits))
    return t1.ValueRestriction(unsigned=t1.ValueRestrictionUint(**limits))


def _as_kind(datatype: Datatype, number: int | float) -> Value:
    return float(number) if datatype.kind is Kind.FLOAT else int(number)
