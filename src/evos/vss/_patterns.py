"""KUKSA path patterns, with the KUKSA databroker's wildcard semantics (its ``doc/wildcard_matching.md``).

- A pattern without ``*`` matches that leaf, or every leaf under it if it names a branch
  (``Vehicle.Cabin`` is ``Vehicle.Cabin.**``). ``""`` matches everything.
- ``*`` matches within one segment: ``Vehicle.Cabin.Door.*.*.IsOpen``, ``Vehicle.Cabin.Seat.Row1.*.Is*``.
  A trailing ``.*`` matches the direct leaf children only.
- ``**`` as a whole segment matches zero or more segments: ``Vehicle.**.IsOpen``.
- Malformed: empty segments (``Vehicle..Speed``, a leading or trailing dot), whitespace, ``:``; refused: a pattern
  over ``MAX_PATTERN_CHARS`` characters or with more than ``MAX_WILDCARD_SEGMENTS`` segments holding a ``*``.

Matching goes segment by segment, in time linear in the path's segments times the pattern's (no regular expression
that can backtrack: ``Vehicle.**.**.**.**.**.**.**.**.IsOpen.Nope`` once took a regex 8 s per catalog).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from evos.errors import InvalidArgumentError

_BAD_CHARS = re.compile(r"[\s:]")
MAX_PATTERN_CHARS = 512  # VSS 6.0's longest path has 87 characters
MAX_WILDCARD_SEGMENTS = 8


def _glob(segment: str) -> Callable[[str], bool]:
    """A predicate for one segment name: ``*`` matches any run of characters (segments hold no dots). Greedy
    left-to-right search for the pieces between the stars: linear in the name."""
    if "*" not in segment:
        return segment.__eq__
    first, *middle, last = segment.split("*")

    def matches(name: str) -> bool:
        end = len(name) - len(last)
        if end < len(first) or not name.startswith(first) or not name.endswith(last):
            return False
        at = len(first)
        for piece in middle:
            found = name.find(piece, at, end)
            if found < 0:
                return False
            at = found + len(piece)
        return True

    return matches


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate telling whether a leaf path matches ``pattern``.

    Raises InvalidArgumentError naming the pattern and what is wrong with it if it is malformed or too big.
    """
    if pattern in ("", "**"):
        return lambda _path: True
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidArgumentError(f"pattern of {len(pattern)} characters: at most {MAX_PATTERN_CHARS}")
    parts = pattern.split(".")
    if any(not part for part in parts) or _BAD_CHARS.search(pattern):
        raise InvalidArgumentError(
            f"malformed pattern {pattern!r}: segments must be non-empty and without spaces or ':'"
        )
    if "*" not in pattern:  # a leaf, or everything under a branch
        branch = pattern + "."
        return lambda path: path == pattern or path.startswith(branch)
    wild = sum("*" in part for part in (parts[:-1] if parts[-1] == "**" else parts))  # a trailing ** costs nothing
    if wild > MAX_WILDCARD_SEGMENTS:
        raise InvalidArgumentError(f"pattern {pattern[:80]!r}: {wild} segments with wildcards, at most "
                                   f"{MAX_WILDCARD_SEGMENTS}")
    globs = [None if part == "**" else _glob(part) for part in parts]
    if None not in globs:  # as many segments as the pattern has
        def fixed(path: str) -> bool:
            names = path.split(".")
            return len(names) == len(globs) and all(g(n) for g, n in zip(globs, names, strict=True))  # type: ignore[misc]
        return fixed
    return _with_double_stars(globs)


def _with_double_stars(globs: list[Callable[[str], bool] | None]) -> Callable[[str], bool]:
    """A matcher for segment predicates where ``None`` is ``**`` (zero or more whole segments): the set of pattern
    positions reachable after each segment of the path (an NFA run, no backtracking)."""
    end = len(globs)

    def closure(states: set[int]) -> set[int]:
        for i in sorted(states):  # ascending: a run of ``**`` is followed to its end
            j = i
            while j < end and globs[j] is None:
                j += 1
                states.add(j)
        return states

    start = closure({0})

    def matches(path: str) -> bool:
        states = start
        for name in path.split("."):
            after = set()
            for i in states:
                if i == end:
                    continue
                glob = globs[i]
                if glob is None:
                    after.add(i)  # ``**`` takes this segment and may take more
                elif glob(name):
                    after.add(i + 1)
            if not after:
                return False
            states = closure(after)
        return end in states

    return matches
