"""Accounts and OAuth 2.0 tokens: owners with argon2 password hashes, access/refresh tokens with rotation, app tokens.

Every function takes an open SQLAlchemy session (one transaction, see ``_db.Database``) and the current time
``now_s``; none touches the clock or the network. Tokens are random 256-bit strings given to the client once; the
database keeps only their SHA-256 (a token's entropy makes a slow hash unnecessary, unlike passwords).

Refresh rotation (OAuth 2.0 Security Best Current Practice, RFC 9700): each refresh returns a new refresh token and
retires the old one; presenting a retired refresh token again means it leaked, so the whole family (every token of that
login) is revoked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from evos.companion._config import OWNER, SCOPES, CompanionConfig
from evos.companion._db import App, Token, User
from evos.companion._errors import CompanionError, ConflictError, GrantError, NotFoundError, UnauthorizedError

NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_hasher = PasswordHasher()  # argon2id with argon2-cffi's defaults (the RFC 9106 low-memory profile)


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist (made once, on first use: it takes ~0.1 s)."""
    return _hasher.hash("evos-no-such-user")


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the user, the token (and app) it came with, and what that token may do."""

    user_id: int
    user: str
    token_id: int
    app_id: int | None
    scopes: frozenset[str]
    expires_at: float

    @property
    def credential(self) -> str:
        return f"app:{self.app_id}" if self.app_id is not None else f"token:{self.token_id}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise CompanionError(f"user name {name!r} must be 1-64 letters, digits or . _ @ -", code="invalid_name")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise CompanionError(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}",
                             code="invalid_password")
    return password


# ---- users --------------------------------------------------------------------------------------------------
def user_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def add_user(session: Session, name: str, password: str, now_s: float) -> User:
    """Create an account; ConflictError if the name is taken."""
    check_name(name)
    check_password(password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise ConflictError(f"user {name!r} already exists", code="user_exists")
    user = User(name=name, password_hash=_hasher.hash(password), created_at=now_s)
    session.add(user)
    session.flush()
    return user


def add_first_user(session: Session, name: str, password: str, now_s: float) -> User:
    """Create the owner from the first-run page: refused once any account exists."""
    if user_count(session) > 0:
        raise ConflictError("the car already has an owner; sign in instead", code="already_set_up")
    return add_user(session, name, password, now_s)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def remove_user(session: Session, name: str) -> None:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    session.delete(user)


# ---- OAuth grants -------------------------------------------------------------------------------------------
def parse_scopes(text: str | None, allowed: tuple[str, ...]) -> frozenset[str]:
    """Space-separated scopes (all of ``allowed`` when empty); GrantError naming an unknown one."""
    requested = frozenset((text or "").split())
    unknown = sorted(requested - set(allowed))
    if unknown:
        raise GrantError(f"unknown scope {unknown[0]!r}; allowed: {' '.join(allowed)}", code="invalid_scope")
    return requested or frozenset(allowed)


def _new_token(session: Session, kind: str, user_id: int, scopes: frozenset[str], family: str, now_s: float,
               lifetime_s: float, app_id: int | None = None) -> tuple[str, Token]:
    token = ("evat_" if kind == "access" else "evrt_") + secrets.token_urlsafe(32)
    row = Token(token_hash=hash_token(token), kind=kind, user_id=user_id, app_id=app_id, family=family,
                scopes=" ".join(sorted(scopes)), created_at=now_s, expires_at=now_s + lifetime_s)
    session.add(row)
    return token, row


def _issue(session: Session, user_id: int, scopes: frozenset[str], family: str, now_s: float,
           config: CompanionConfig) -> dict[str, Any]:
    access, _ = _new_token(session, "access", user_id, scopes, family, now_s, config.access_token_lifetime_s)
    refresh, _ = _new_token(session, "refresh", user_id, scopes, family, now_s, config.refresh_token_lifetime_s)
    return {"access_token": access, "token_type": "Bearer", "expires_in": int(config.access_token_lifetime_s),
            "refresh_token": refresh, "scope": " ".join(sorted(scopes))}


def password_hash_of(session: Session, name: str, scope: str | None) -> tuple[int | None, str]:
    """The first step of the password grant (in the database): the account of ``name`` and the hash to check the
    password against; an unknown account gets a dummy hash (the same work, so timing tells no names). A name no
    account can have (PostgreSQL text cannot even hold NUL) is not looked up. The scope is checked here, first."""
    parse_scopes(scope, (*SCOPES, OWNER))
    user = session.scalar(select(User).where(User.name == name)) if NAME_RE.fullmatch(name) else None
    return (user.id, user.password_hash) if user is not None else (None, _dummy_hash())


def password_matches(password_hash: str, password: str) -> bool:
    """The second step (argon2, ~0.5 s of CPU: on its own bounded pool, never on the database's thread)."""
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def password_grant(session: Session, user_id: int | None, matched: bool, scope: str | None, now_s: float,
                   config: CompanionConfig) -> dict[str, Any]:
    """The last step: sign the owner in (a new token family, access + refresh), or GrantError."""
    if user_id is None or not matched or session.get(User, user_id) is None:
        raise GrantError("wrong user name or password")
    return _issue(session, user_id, parse_scopes(scope, (*SCOPES, OWNER)), secrets.token_hex(16), now_s, config)


def refresh_grant(session: Session, refresh_token: str, scope: str | None, now_s: float,
                  config: CompanionConfig) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; the old one is retired, and reusing a retired one revokes all."""
    row = session.scalar(select(Token).where(Token.token_hash == hash_token(refresh_token), Token.kind == "refresh"))
    if row is None or row.revoked_at is not None or row.expires_at <= now_s:
        raise GrantError("refresh token is unknown, expired or revoked")
    # conditional update: of two requests racing with the same refresh token (two processes on one PostgreSQL
    # database), the second waits on the first one's row lock, then finds the token retired
    retired = session.execute(update(Token).where(Token.id == row.id, Token.rotated_at.is_(None))
                              .values(rotated_at=now_s).execution_options(synchronize_session=False))
    if retired.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, row.family, now_s)
        raise GrantError("refresh token was already used: every token of this sign-in is now revoked",
                         keep_changes=True)
    granted = frozenset(row.scopes.split())
    scopes = parse_scopes(scope, tuple(sorted(granted))) if scope else granted  # raising undoes the retirement
    return _issue(session, row.user_id, scopes, row.family, now_s, config)


def revoke_family(session: Session, family: str, now_s: float) -> None:
    session.execute(update(Token).where(Token.family == family, Token.revoked_at.is_(None)).values(revoked_at=now_s))


def revoke_token(session: Session, token: str, now_s: float) -> None:
    """Revoke a token (RFC 7009): a refresh token takes its whole family with it. Unknown tokens are ignored."""
    row = session.scalar(select(Token).where(Token.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return
    if row.kind == "refresh":
        revoke_family(session, row.family, now_s)
    else:
        row.revoked_at = now_s


def authenticate(session: Session, token: str, now_s: float) -> Principal:
    """The principal behind an access token; UnauthorizedError if it is unknown, expired or revoked."""
    row = session.scalar(select(Token).where(Token.token_hash == hash_token(token)))
    if row is None or row.kind != "access":
        raise UnauthorizedError("access token is not valid")
    if row.revoked_at is not None:
        raise UnauthorizedError("access token was revoked")
    if row.expires_at <= now_s:
        raise UnauthorizedError("access token has expired; refresh it")
    user = session.get(User, row.user_id)
    if user is None:  # pragma: no cover - the user's tokens are deleted with it (ON DELETE CASCADE)
        raise UnauthorizedError("access token belongs to a removed user")
    return Principal(user.id, user.name, row.id, row.app_id, frozenset(row.scopes.split()), row.expires_at)


# ---- third-party app tokens ---------------------------------------------------------------------------------
def _app_json(app: App) -> dict[str, Any]:
    return {"id": app.id, "name": app.name, "scopes": app.scopes.split(), "created_at": app.created_at}


def create_app_token(session: Session, user_id: int, name: str, scopes: list[str], now_s: float,
                     config: CompanionConfig) -> dict[str, Any]:
    """A token for a third-party app with the given scopes (not ``owner``); the token is shown this once."""
    granted = parse_scopes(" ".join(scopes), SCOPES) if scopes else None
    if granted is None:
        raise CompanionError("an app token needs at least one scope", code="invalid_scope")
    app = App(user_id=user_id, name=name, scopes=" ".join(sorted(granted)), created_at=now_s)
    session.add(app)
    session.flush()
    token, row = _new_token(session, "access", user_id, granted, f"app{app.id}", now_s, config.app_token_lifetime_s,
                            app_id=app.id)
    return {**_app_json(app), "access_token": token, "expires_at": row.expires_at}


def list_app_tokens(session: Session, user_id: int) -> list[dict[str, Any]]:
    apps = session.scalars(select(App).where(App.user_id == user_id, App.revoked_at.is_(None)).order_by(App.id))
    return [_app_json(app) for app in apps]


def revoke_app_token(session: Session, user_id: int, app_id: int, now_s: float) -> None:
    app = session.get(App, app_id)
    if app is None or app.user_id != user_id or app.revoked_at is not None:
        raise NotFoundError(f"no app token with id {app_id}")
    app.revoked_at = now_s
    revoke_family(session, f"app{app.id}", now_s)
