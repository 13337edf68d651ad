"""The audit log's writes, for every entrance (the phone API, the centre screen and its assistant): a request is
written *before* it is carried out (``requested``; one that cannot be written is refused and changes nothing) and
given its outcome after (``outcome``); a request refused before it could act is one row (``refused``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from evos.companion._db import AuditEntry

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
