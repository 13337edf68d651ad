"""The twin's persistent state in the data directory: one SQLite row, written in a transaction.

SQLite commits are atomic, so a crash or ``kill -9`` leaves the last committed state (at most one
save interval old) and never a torn one.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evos.errors import DataError
from evos.twin._realtime import TwinState

_RANGES = {"soc": (0.0, 1.0), "latitude_deg": (-90.0, 90.0), "longitude_deg": (-180.0, 180.0),
           "heading_deg": (0.0, 360.0), "battery_temp_c": (-60.0, 100.0), "cabin_temp_c": (-60.0, 100.0),
           "odometer_m": (0.0, math.inf), "consumed_kwh": (0.0, math.inf)}
_PERSISTED = ("soc", "battery_temp_c", "cabin_temp_c", "odometer_m", "latitude_deg", "longitude_deg",
              "heading_deg", "consumed_kwh")


class StateStore:
    """Saves and loads the twin's state for one vehicle in ``<data dir>/twin.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved_at_s: float | None = None  # when the state last loaded was saved (epoch seconds)
        try:
            # saves run on a worker thread (never two at once), so the event loop does not wait for the disk
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS twin_state (vehicle TEXT PRIMARY KEY, state TEXT NOT NULL,"
                             " saved_at REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS twin_settings (vehicle TEXT PRIMARY KEY, "
                             "settings TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise DataError(str(path), None, f"not a usable twin state database: {exc}") from exc

    def load(self, vehicle: str) -> TwinState | None:
        """The last saved state of ``vehicle`` (parked), or None if none was saved or it is unusable."""
        row = self._db.execute("SELECT state, saved_at FROM twin_state WHERE vehicle = ?", (vehicle,)).fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            values = {key: float(data[key]) for key in _PERSISTED}
        except (ValueError, KeyError, TypeError):
            return None
        if not all(math.isfinite(v) and _RANGES.get(k, (-math.inf, math.inf))[0] <= v <= _RANGES.get(
                k, (-math.inf, math.inf))[1] for k, v in values.items()):
            return None
        self.saved_at_s = float(row[1])
        return TwinState(**values)

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


__all__ = ["StateStore"]
