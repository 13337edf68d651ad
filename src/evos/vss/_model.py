"""VSS signal metadata: datatypes, entry types and the leaf ``Signal``.

Datatypes are those of the VSS specification (``uint8`` ... ``double``, ``string``, ``boolean`` and their
``[]`` arrays); the integer bounds are the datatype's own, the signal's ``min``/``max`` narrow them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

Scalar = bool | int | float | str
Value = Scalar | tuple[Scalar, ...]

# Largest finite IEEE-754 binary32 value: VSS `float` is single precision.
FLOAT32_MAX = 3.4028234663852886e38


class Kind(enum.Enum):
    """The family of a datatype's elements, which decides which Python values it accepts."""

    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"


class Datatype(enum.Enum):
    """A VSS datatype. ``value`` is the name used in VSS files (``"uint8"``, ``"float[]"``)."""

    BOOLEAN = "boolean"
    STRING = "string"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    FLOAT = "float"
    DOUBLE = "double"
    BOOLEAN_ARRAY = "boolean[]"
    STRING_ARRAY = "string[]"
    INT8_ARRAY = "int8[]"
    INT16_ARRAY = "int16[]"
    INT32_ARRAY = "int32[]"
    INT64_ARRAY = "int64[]"
    UINT8_ARRAY = "uint8[]"
    UINT16_ARRAY = "uint16[]"
    UINT32_ARRAY = "uint32[]"
    UINT64_ARRAY = "uint64[]"
    FLOAT_ARRAY = "float[]"
    DOUBLE_ARRAY = "double[]"

    # Filled in below for every member (plain attributes: validation reads them for every value).
    is_array: bool
    element: Datatype  # the scalar datatype of the elements (itself for scalars)
    kind: Kind
    int_bounds: tuple[int, int] | None  # inclusive (min, max) of an integer datatype


_INT_BOUNDS = {
    Datatype.INT8: (-(2**7), 2**7 - 1),
    Datatype.INT16: (-(2**15), 2**15 - 1),
    Datatype.INT32: (-(2**31), 2**31 - 1),
    Datatype.INT64: (-(2**63), 2**63 - 1),
    Datatype.UINT8: (0, 2**8 - 1),
    Datatype.UINT16: (0, 2**16 - 1),
    Datatype.UINT32: (0, 2**32 - 1),
    Datatype.UINT64: (0, 2**64 - 1),
}
_KIND = {
    Datatype.BOOLEAN: Kind.BOOL,
    Datatype.STRING: Kind.STRING,
    Datatype.FLOAT: Kind.FLOAT,
    Datatype.DOUBLE: Kind.FLOAT,
    **dict.fromkeys(_INT_BOUNDS, Kind.INT),
}
for _member in Datatype:
    _member.is_array = _member.value.endswith("[]")
    _member.element = Datatype(_member.value.removesuffix("[]"))
    _member.kind = _KIND[_member.element]
    _member.int_bounds = _INT_BOUNDS.get(_member.element)


class EntryType(enum.Enum):
    """What a leaf is: measured by the car (sensor), commanded (actuator) or fixed (attribute)."""

    SENSOR = "sensor"
    ACTUATOR = "actuator"
    ATTRIBUTE = "attribute"


@dataclass(frozen=True, slots=True)
class Signal:
    """Metadata of one VSS leaf.

    ``id`` is the numeric id the broker uses on the wire (KUKSA v2 ``SignalID.id``); ``min``/``max``
    and ``allowed`` restrict values (for arrays: each element); ``arraysize`` fixes an array's length.
    """

    path: str
    id: int
    entry_type: EntryType
    datatype: Datatype
    unit: str | None = None
    min: int | float | None = None
    max: int | float | None = None
    allowed: tuple[Scalar, ...] | None = None
    default: Value | None = None
    arraysize: int | None = None
    pattern: str | None = None
    description: str = ""
    comment: str = ""
    deprecation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The signal in the shape of a VSS JSON leaf (for export and display)."""
        out: dict[str, Any] = {"type": self.entry_type.value, "datatype": self.datatype.value}
        for key in ("unit", "min", "max", "arraysize", "pattern"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.default is not None:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        for key in ("description", "comment", "deprecation"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out
