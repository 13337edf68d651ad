"""The audit log's writes, for every entrance (the phone API, the centre screen and its assistant): ``audited``
writes a request *before* it is carried out (one that cannot be written is refused and changes nothing) and gives
it its outcome after; a request refused before it could act is one row (``refused``)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from evos.companion._db import AuditEntry, Database
from evos.errors import EvosError, UnavailableError

T = TypeVar("T")

MAX_DETAIL_CHARS = 2000


def _entry(user: str, credential: str, command: str, args: Any, result: str, detail: str, now_s: float) -> AuditEntry:
    return AuditEntry(at=now_s, user=user, credential=credential, command=command,
                      args=json.dumps(args, sort_keys=True, default=str), result=result,
                      detail=detail[:MAX_DETAIL_CHARS])


def requested(session: Session, user: str, credential: str, command: str, args: Any, now_s: float) -> int:
    """Write a request about to be carried out (result ``requested``); its row's id, for ``outcome``."""
    entry = _entry(user, credential, command, args, "requested", "", now_s)
    session.add(entry)
    session.flush()
    return entry.id


def outcome(session: Session, entry_id: int, result: str, detail: str = "") -> None:
    """The result of a request written by ``requested``: ``completed``, ``in_progress`` or the error's code."""
    entry = session.get(AuditEntry, entry_id)
    if entry is not None:
        entry.result, entry.detail = result, detail[:MAX_DETAIL_CHARS]


def refused(session: Session, user: str, credential: str, command: str, args: Any, result: str, detail: str,
            now_s: float) -> None:
    """Write a request refused before anything was done."""
    session.add(_entry(user, credential, command, args, result, detail, now_s))


async def audited(db: Database, who: tuple[str, str], command: str, args: Any, act: Callable[[], Awaitable[T]],
                  result: Callable[[T], str], refusal: str) -> T:
    """Carry out ``act`` with its audit entry: written first (``who``: user and credential), or ``refusal`` ("...
    was not carried out") is raised as UnavailableError and nothing is done; then its outcome, ``result(answer)``
    or the error's code."""
    try:
        entry_id = await db.run(requested, *who, command, args, time.time())
    except Exception as exc:
        raise UnavailableError(f"{refusal}: the audit log cannot be written ({type(exc).__name__})") from exc
    try:
        answer = await act()
    except (EvosError, ValueError) as exc:
        await db.run(outcome, entry_id, getattr(exc, "code", type(exc).__name__), str(exc))
        raise
    await db.run(outcome, entry_id, result(answer))
    return answer
