"""Bounded waits for the cabin tests, generous enough for a loaded 2-core CI machine: what they wait for takes
milliseconds, so the bound only decides how long a broken test takes to fail, never whether a working one passes."""

from __future__ import annotations

from collections.abc import Callable

import helpers

BOUND_S = 20.0


async def eventually(predicate: Callable[[], object], timeout_s: float = BOUND_S) -> None:
    """``helpers.eventually`` with the cabin tests' bound."""
    await helpers.eventually(predicate, timeout_s)
