"""KUKSA path patterns, with the KUKSA databroker's wildcard semantics (its ``doc/wildcard_matching.md``).

- A pattern without ``*`` matches that leaf, or every leaf under it if it names a branch
  (``Vehicle.Cabin`` is ``Vehicle.Cabin.**``). ``""`` matches everything.
- ``*`` matches within one segment: ``Vehicle.Cabin.Door.*.*.IsOpen``, ``Vehicle.Cabin.Seat.Row1.*.Is*``.
  A trailing ``.*`` matches the direct leaf children only.
- ``**`` as a whole segment matches zero or more segments: ``Vehicle.**.IsOpen``.
- Malformed: empty segments (``Vehicle..Speed``, a leading or trailing dot), whitespace, ``:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from evos.errors import InvalidArgumentError

_BAD_CHARS = re.compile(r"[\s:]")


def _segment_regex(segment: str) -> str:
    return "[^.]*".join(re.escape(piece) for piece in segment.split("*"))


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate telling whether a leaf path matches ``pattern``.

    Raises InvalidArgumentError naming the pattern and what is wrong with it if it is malformed.
    """
    if pattern in ("", "**"):
        return lambda _path: True
    parts = pattern.split(".")
    if any(not part for part in parts) or _BAD_CHARS.search(pattern):
        raise InvalidArgumentError(
            f"malformed pattern {pattern!r}: segments must be non-empty and without spaces or ':'"
        )
    regex = ""
    for index, part in enumerate(parts):
        if part == "**":
            # zero or more whole segments, with their separating dots
            regex += r"(?:[^.]+\.)*" if index == 0 else r"(?:\.[^.]+)*"
        else:
            leading_double_star = index == 1 and parts[0] == "**"
            regex += ("" if index == 0 or leading_double_star else r"\.") + _segment_regex(part)
    if "*" not in pattern:
        regex += r"(?:\.[^.]+)*"  # a branch includes everything under it
    compiled = re.compile(regex)
    return lambda path: compiled.fullmatch(path) is not None
