"""The VSS signal catalog: paths, datatypes, units, ranges and allowed values of every vehicle signal.

evos ships the COVESA VSS 6.0 catalog (see ``data/README.md``); ``load_catalog`` loads it or a user's
file and applies overlays. ``validate`` is the one check of a value against a signal's metadata.
"""

from evos.vss._catalog import Catalog, load_catalog
from evos.vss._model import Datatype, EntryType, Kind, Signal, Value
from evos.vss._patterns import compile_pattern
from evos.vss._validate import MAX_ARRAY_LEN, MAX_STRING_CHARS, parse_value, validate

__all__ = [
    "MAX_ARRAY_LEN",
    "MAX_STRING_CHARS",
    "Catalog",
    "Datatype",
    "EntryType",
    "Kind",
    "Signal",
    "Value",
    "compile_pattern",
    "load_catalog",
    "parse_value",
    "validate",
]
