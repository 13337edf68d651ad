"""The twin's persistent state in the data directory: one SQLite row, written in a transaction.

SQLite commits are atomic, so a crash or ``kill -9`` leaves the last committed state (at most one
save interval old) and never a torn one. A file that is not what it should be (not SQLite, a row with a field
missing or out of range) is a DataError naming what is wrong: the twin opens it with ``evos.datadir.open_or_set_aside``,
which moves it aside (``twin.sqlite.bad-<time>``, for a look) and starts a new one, never resetting it in silence.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from evos.errors import DataError, EvosError
from evos.twin._realtime import TwinState

_RANGES = {"soc": (0.0, 1.0), "latitude_deg": (-90.0, 90.0), "longitude_deg": (-180.0, 180.0),
           "heading_deg": (0.0, 360.0), "battery_temp_c": (-60.0, 100.0), "cabin_temp_c": (-60.0, 100.0),
           "odometer_m": (0.0, math.inf), "consumed_kwh": (0.0, math.inf)}
log = logging.getLogger("evos.twin")
_PERSISTED = ("soc", "battery_temp_c", "cabin_temp_c", "odometer_m", "latitude_deg", "longitude_deg",
              "heading_deg", "consumed_kwh")


class StateStore:
    """Saves and loads the twin's state for one vehicle in ``<data dir>/twin.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved_at_s: float | None = None  # when the state last loaded was saved (epoch seconds)
        # saves run on a worker thread (never two at once), so the event loop does not wait for the disk
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # opens lazily: no error yet
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS twin_state (vehicle TEXT PRIMARY KEY, state TEXT NOT NULL,"
                             " saved_at REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS twin_settings (vehicle TEXT PRIMARY KEY, "
                             "settings TEXT NOT NULL)")
            rows = list(self._db.execute("SELECT vehicle, state, saved_at FROM twin_state"))
            vehicles = [vehicle for (vehicle,) in self._db.execute("SELECT vehicle FROM twin_settings")]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DataError(str(path), None, f"not a usable twin state database: {exc}") from exc
        try:  # every row is checked at open: none is found unusable, and reset, later
            for vehicle, state, saved_at in rows:
                self._state_of(vehicle, state, saved_at)
            for vehicle in vehicles:
                self.load_settings(vehicle)
        except DataError:
            self._db.close()
            raise

    def _state_of(self, vehicle: str, state: str, saved_at: Any) -> TwinState:
        """A row's state; DataError naming the vehicle and what is wrong."""
        try:
            data = json.loads(state)
            values = {key: float(data[key]) for key in _PERSISTED}
            float(saved_at)
        except KeyError as exc:
            raise DataError(str(self.path), f"twin_state[{vehicle}]", f"the field {exc} is missing") from None
        except (ValueError, TypeError) as exc:
            raise DataError(str(self.path), f"twin_state[{vehicle}]", f"unreadable: {exc}") from None
        for key, value in values.items():
            low, high = _RANGES.get(key, (-math.inf, math.inf))
            if not (math.isfinite(value) and low <= value <= high):
                raise DataError(str(self.path), f"twin_state[{vehicle}]", f"{key} = {value} is out of range")
        return TwinState(**values)

    def load(self, vehicle: str) -> TwinState | None:
        """The last saved state of ``vehicle`` (parked), or None if none was saved."""
        row = self._db.execute("SELECT state, saved_at FROM twin_state WHERE vehicle = ?", (vehicle,)).fetchone()
        if row is None:
            return None
        state = self._state_of(vehicle, row[0], row[1])
        self.saved_at_s = float(row[1])
        return state

    def save(self, vehicle: str, state: TwinState, now_s: float) -> None:
        data = {key: getattr(state, key) for key in _PERSISTED}
        with self._db:
            self._db.execute("INSERT INTO twin_state (vehicle, state, saved_at) VALUES (?, ?, ?) "
                             "ON CONFLICT(vehicle) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
                             (vehicle, json.dumps(data), now_s))

    def load_settings(self, vehicle: str) -> dict[str, Any]:
        """The owner's settings last saved for ``vehicle`` (VSS paths and values; unchecked: the caller checks them
        against the catalog), {} if none."""
        row = self._db.execute("SELECT settings FROM twin_settings WHERE vehicle = ?", (vehicle,)).fetchone()
        if row is None:
            return {}
        try:
            settings = json.loads(row[0])
        except ValueError as exc:
            raise DataError(str(self.path), "twin_settings", f"unreadable settings of {vehicle}: {exc}") from exc
        if not isinstance(settings, dict):
            raise DataError(str(self.path), "twin_settings", f"the settings of {vehicle} are not a table")
        return settings

    def save_settings(self, vehicle: str, settings: Mapping[str, Any]) -> None:
        """Replace the owner's settings of ``vehicle``; durable when it returns."""
        with self._db:
            self._db.execute("INSERT INTO twin_settings (vehicle, settings) VALUES (?, ?) "
                             "ON CONFLICT(vehicle) DO UPDATE SET settings = excluded.settings",
                             (vehicle, json.dumps(dict(settings))))

    def close(self) -> None:
        self._db.close()


class StorageFault:
    """Whether a part's saves work, told on its ``path`` signal: ``failed`` logs the reason once and publishes it,
    ``worked`` clears it (a save that fails is tried again later, never the end of the car)."""

    def __init__(self, publish: Callable[[dict[str, Any]], None], path: str, who: str) -> None:
        self._publish, self.path, self.who = publish, path, who
        self.reason = ""  # why the last save failed ("" when saving works)

    def failed(self, exc: BaseException, retry: str) -> None:
        reason = f"saving the state failed: {exc}"
        if reason != self.reason:
            log.error("%s: %s (%s)", self.who, reason, retry)
            self._say(reason)

    def worked(self) -> None:
        if self.reason:
            log.warning("%s: saving the state works again", self.who)
            self._say("")

    def _say(self, reason: str) -> None:
        self.reason = reason
        with contextlib.suppress(EvosError):  # a car shutting down may no longer take it: the log has it
            self._publish({self.path: reason})


__all__ = ["StateStore", "StorageFault"]
