"""Authorization compatible with the KUKSA databroker's JWT scheme.

Clients send ``authorization: Bearer <JWT>``; the token is signed RS256 with the key whose public half
the broker was given (``--jwt-public-key``). Its ``scope`` claim is a space-separated list of grants
``ACTION[:PATTERN]``, ACTION one of ``read``, ``actuate``, ``provide`` (``create`` is accepted and
ignored: evos does not create signals at run time); without a pattern the grant covers every signal.
Patterns are KUKSA path patterns (``Vehicle.Cabin.*``). ``actuate`` and ``provide`` also allow
reading the signals they cover, as in KUKSA. Tokens must carry ``exp`` and the audience ``kuksa.val``, and,
where the broker is given one (``--jwt-issuer``), name its issuer (``iss``); the apps' tokens on the Unix socket
must name ``APP_ISSUER``.
Publishing values needs ``provide``; actuating and claiming actuators as a provider need ``actuate``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evos.errors import InvalidArgumentError, NotPermittedError, UnauthenticatedError
from evos.vss import compile_pattern

T = TypeVar("T")
Action = Literal["read", "actuate", "provide"]
_ACTIONS = ("read", "actuate", "provide", "create")
AUDIENCE = "kuksa.val"  # KUKSA databroker tokens must name this audience
APP_ISSUER = "evos-supervisor"  # the issuer of the tokens `evos up` mints for its apps (the Unix socket takes no other)
LEEWAY_S = 60  # clock skew allowed on `exp`, as KUKSA's decoder
# an action is also allowed by these grants
_IMPLIED_BY: dict[str, tuple[str, ...]] = {
    "read": ("read", "actuate", "provide"),
    "actuate": ("actuate",),
    "provide": ("provide",),
}


@dataclass(frozen=True)
class Permissions:
    """What one token allows: per action, predicates over paths."""

    grants: dict[str, tuple[Callable[[str], bool], ...]] = field(default_factory=dict)
    subject: str = ""
    expires_s: float | None = None  # when the token stops being accepted (`exp` + leeway, epoch seconds)
    everywhere: frozenset[str] = field(init=False)  # actions granted on every path (the fast path)

    def __post_init__(self) -> None:
        object.__setattr__(self, "everywhere", frozenset(
            action for action, implied_by in _IMPLIED_BY.items()
            if any(_everything in self.grants.get(grant, ()) for grant in implied_by)))

    def allows(self, action: Action, path: str) -> bool:
        if action in self.everywhere:
            return True
        return any(match(path) for grant in _IMPLIED_BY[action] for match in self.grants.get(grant, ()))

    def check_fresh(self) -> None:
        """Raise UnauthenticatedError once the token has expired (long-lived streams check each message)."""
        if self.expires_s is not None and time.time() > self.expires_s:
            raise UnauthenticatedError("token expired")

    async def until_expiry(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, or raise UnauthenticatedError when the token expires first (a stream waiting for its
        next message ends at the expiry, not at the next message after it)."""
        if self.expires_s is None:
            return await awaitable
        self.check_fresh()
        try:  # a timer on this task, not a task per message (wait_for's): it runs for every message of a stream
            async with asyncio.timeout(self.expires_s - time.time()):
                return await awaitable
        except TimeoutError:
            raise UnauthenticatedError("token expired") from None

    async def expiring(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """``items``, until the token expires (then UnauthenticatedError, even while no item comes)."""
        iterator = aiter(items)
        while True:
            try:
                item = await self.until_expiry(anext(iterator))
            except StopAsyncIteration:
                return
            yield item

    def check(self, action: Action, path: str) -> None:
        """Raise NotPermittedError naming the action and path unless the token grants it."""
        if not self.allows(action, path):
            raise NotPermittedError(f"{path}: permission denied: the token does not grant '{action}'")


def _everything(_path: str) -> bool:
    return True


ALLOW_ALL = Permissions(grants=dict.fromkeys(("read", "actuate", "provide"), (_everything,)))


def parse_scope(scope: str) -> dict[str, tuple[Callable[[str], bool], ...]]:
    """Grants from a KUKSA scope string; raises InvalidArgumentError on an unknown action or bad pattern."""
    grants: dict[str, list[Callable[[str], bool]]] = {}
    for item in scope.split():
        action, colon, pattern = item.partition(":")
        if action not in _ACTIONS:
            raise InvalidArgumentError(f"scope {item!r}: unknown action {action!r} (use {', '.join(_ACTIONS)})")
        if colon and not pattern:
            raise InvalidArgumentError(f"scope {item!r}: empty path pattern after ':'")
        grants.setdefault(action, []).append(compile_pattern(pattern) if pattern else _everything)
    return {action: tuple(preds) for action, preds in grants.items()}


class TokenVerifier:
    """Checks bearer tokens against one RS256 public key and turns them into Permissions."""

    def __init__(self, public_key_pem: str, leeway_s: float = LEEWAY_S, issuer: str | None = None) -> None:
        self.leeway_s = leeway_s
        self.issuer = issuer  # when given, a token must name it as its `iss`
        try:
            key = serialization.load_pem_public_key(public_key_pem.encode())
        except ValueError as exc:
            raise InvalidArgumentError(f"JWT public key is not a PEM public key: {exc}") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidArgumentError("JWT public key must be an RSA key (tokens are RS256)")
        self._key = key

    @classmethod
    def from_file(cls, path: str | Path, issuer: str | None = None) -> TokenVerifier:
        try:
            return cls(Path(path).read_text("utf-8"), issuer=issuer)
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read JWT public key {path}: {exc.strerror or exc}") from exc
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{path}: {exc}") from None

    def verify(self, authorization: str | None) -> Permissions:
        """Permissions of an ``authorization`` header value; UnauthenticatedError if missing or invalid."""
        if not authorization:
            raise UnauthenticatedError("authorization required: send 'authorization: Bearer <JWT>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("malformed authorization header: expected 'Bearer <JWT>'")
        try:
            claims = jwt.decode(
                token.strip(), self._key, algorithms=["RS256"], audience=AUDIENCE, leeway=self.leeway_s,
                issuer=self.issuer, options={"require": ["exp", "scope", *(["iss"] if self.issuer else [])]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthenticatedError("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from exc
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise UnauthenticatedError("invalid token: 'scope' must be a space-separated string")
        try:
            return Permissions(grants=parse_scope(scope), subject=str(claims.get("sub", "")),
                               expires_s=float(claims["exp"]) + self.leeway_s)
        except InvalidArgumentError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from exc
