"""Where evos keeps state: ``--data-dir``, else ``$EVOS_DATA_DIR``, else the user's data directory.

A state file found unusable is never reset in silence: ``open_or_set_aside`` says what is wrong and ``set_aside``
moves it (and its SQLite WAL) to ``<name>.bad-<time>`` beside it, where ``was_set_aside`` sees it later.

One running car owns a data directory at a time: ``claim`` takes an exclusive lock (released by the
operating system even if the process is killed), so two cars never write the same files. Each app of a car
holds a lock of its own too (``claim(dir, "twin")``), so an app started alone never runs beside the same app
of a car on that directory.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import platformdirs

from evos.errors import DataError, UnavailableError

S = TypeVar("S")

ENV_VAR = "EVOS_DATA_DIR"
LOCK_NAME = "evos.lock"


def resolve(data_dir: Path | None) -> Path:
    """The data directory to use (not created)."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(platformdirs.user_data_dir("evos"))


@contextmanager
def claim(data_dir: Path, holder: str = "") -> Iterator[Path]:
    """Create ``data_dir`` if needed and hold its lock (the car's, or app ``holder``'s); UnavailableError if another
    process holds it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = (data_dir / (f"{holder}.lock" if holder else LOCK_NAME)).open("a+")
    except OSError as exc:
        raise UnavailableError(f"data directory {data_dir} cannot be used: {exc.strerror or exc}") from exc
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            who = f"app {holder} of another running evos" if holder else "another running evos"
            raise UnavailableError(f"data directory {data_dir} is in use by {who}") from exc
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield data_dir
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_aside(path: Path) -> Path:
    """Move the state file ``path`` and its SQLite ``-wal``/``-shm`` to ``<name>.bad-<time>``; the new name."""
    aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(aside.with_name(aside.name + suffix))
    return aside


def was_set_aside(path: Path) -> bool:
    """Whether a state file of this name was ever set aside as unusable (``set_aside``) in its directory."""
    return any(path.parent.glob(f"{path.name}.bad-*"))


def open_or_set_aside(path: Path, open_store: Callable[[Path], S], then: str, log: logging.Logger) -> S:
    """``open_store(path)``; when the file is unusable (DataError), say what is wrong and what ``then`` happens (on
    ``log``, ERROR), move it and its WAL aside (``set_aside``) and open a new one: the car starts, the old file kept
    for a look."""
    try:
        return open_store(path)
    except DataError as exc:
        aside = set_aside(path)
        log.error("%s; moved aside to %s: %s", exc, aside.name, then)
        return open_store(path)
