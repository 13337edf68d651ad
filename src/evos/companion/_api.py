"""The HTTP shell: the FastAPI app, its authentication dependencies and the one place errors become HTTP responses.

Every error body is ``{"error": code, "detail": "what was wrong"}``: 400 for refused OAuth grants (RFC 6749 §5.2),
401 without valid token, 403 for a missing scope or a refused signature, 404, 409 when the car refuses in its
current state, 422 for malformed input, 429 over the rate limit (with ``Retry-After``), 503 when no part of the
car serves the actuator.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection

from evos.broker import VehiclePort
from evos.companion._accounts import Principal, authenticate, hash_token
from evos.companion._config import OWNER, CompanionConfig
from evos.companion._db import Database
from evos.companion._errors import (
    CompanionError,
    ConflictError,
    ForbiddenError,
    GrantError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedError,
)
from evos.companion._ratelimit import RateLimiter
from evos.companion._vehicle import Momentary, StateView
from evos.errors import (
    EvosError,
    InvalidArgumentError,
    NotPermittedError,
    RequestError,
    UnavailableError,
    UnknownSignalError,
)

log = logging.getLogger("evos.companion")
TOKEN_CACHE_S = 2.0  # a verified token is trusted this long without asking the database (assumed, see TokenCache)
TOKEN_CACHE_MAX = 10_000
# Every request body of the API and the centre screen is a few hundred bytes (a signed command, a key, a scene);
# one limit for every route, counted as the bytes stream in (a chunked 250 MiB body once took the car to 1.9 GiB)
MAX_BODY_BYTES = 64 * 1024
# A client's 401 and 429 answers beyond 20 at once and one a second, or the car's beyond 200 at once and 50 a
# second, are answered only after 1-1.5 s (RefusalHold; all assumed: a working app is refused far less often).
REFUSALS_PER_S, REFUSAL_BURST = 1.0, 20
CAR_REFUSALS_PER_S, CAR_REFUSAL_BURST = 50.0, 200
REFUSAL_HOLD_S = 1.0
MAX_HELD_REFUSALS = 256
STATIC = Path(str(resources.files("evos.companion").joinpath("static")))

# error class -> (HTTP status, default code); the first match in this order wins
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (UnauthorizedError, 401, "invalid_token"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (GrantError, 400, "invalid_grant"),
    (RateLimitedError, 429, "rate_limited"),
    (CompanionError, 422, "invalid_request"),
    (UnknownSignalError, 404, "unknown_signal"),
    (InvalidArgumentError, 422, "invalid_value"),
    (NotPermittedError, 409, "refused_by_car"),  # the car's hardware refuses in its present state (door locked...)
    (RequestError, 422, "invalid_request"),
    (UnavailableError, 503, "unavailable"),
)


class ErrorBody(BaseModel):
    error: str
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (401, "No valid access token"), (403, "Token lacks the scope, or the signed envelope is refused"),
        (404, "Not found"), (409, "Refused by the car in its present state"), (422, "Malformed input"),
        (429, "Rate limit exceeded (see Retry-After)"))}


def error_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error code of an evos error."""
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return status, getattr(exc, "code", code) if isinstance(exc, CompanionError) else code
    return 500, "internal_error"


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


class RefusalHold:
    """Paces the refusals of clients that keep being refused: made-up passwords, tokens or refresh tokens, or
    requests over a rate limit. Each 401 and 429 answer spends from its client address's budget and the car's;
    once either is spent, the answer is sent only after 1-1.5 × ``REFUSAL_HOLD_S``. A client that waits for its
    answers, as an HTTP/1.1 client does, then gets about one a second per connection instead of the thousands the
    companion could refuse, which kept its event loop busy and the owner's commands queued behind them (measured:
    50 guessing clients, the owner's command p99 225 ms). The spread keeps many clients from waking at once. At most
    ``MAX_HELD_REFUSALS`` wait at once (each is a sleeping task and an open socket); beyond that they are answered
    at once."""

    def __init__(self) -> None:
        self._client = RateLimiter(REFUSALS_PER_S, REFUSAL_BURST)
        self._car = RateLimiter(CAR_REFUSALS_PER_S, CAR_REFUSAL_BURST)
        self._held = 0

    async def hold(self, client: str, status: int) -> float:
        """For an answer of ``status`` to ``client``: if it is a refusal (401, 429), spend one and wait if over
        budget; the seconds waited."""
        if status not in (401, 429):
            return 0.0
        now_s = time.monotonic()
        over = self._client.take(client, now_s) > 0
        over = self._car.take("car", now_s) > 0 or over  # both spent, whichever is over
        if not over or self._held >= MAX_HELD_REFUSALS:
            return 0.0
        hold_s = REFUSAL_HOLD_S * random.uniform(1.0, 1.5)
        self._held += 1
        try:
            await asyncio.sleep(hold_s)
        finally:
            self._held -= 1
        return hold_s


async def _evos_error(request: Request, exc: Exception) -> JSONResponse:
    status, code = error_status(exc)
    detail, headers = str(exc), {}
    held_s = await request.app.state.ctx.refusals.hold(client_host(request), status)
    if isinstance(exc, RateLimitedError):
        wait_s = max(1, math.ceil(exc.retry_after_s - held_s))  # whole seconds, at least one
        detail, headers["Retry-After"] = f"too many requests; retry in {wait_s} s", str(wait_s)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return error_response(status, code, detail, headers)


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("companion: unexpected error", exc_info=exc)
    return error_response(500, "internal_error", f"the car could not answer: {type(exc).__name__} (logged)")


def describe_validation(errors: Iterable[Any]) -> str:
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    return error_response(422, "invalid_request", describe_validation(exc.errors()))


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


class TokenCache:
    """Access tokens verified in the last ``ttl_s`` seconds (by SHA-256), so a request needs no database query.

    Every revocation made through this server calls ``forget``, which empties the cache at once. A revocation
    made outside it (``evos users remove`` on the command line, another server on the same database) takes
    effect within ``ttl_s``. A token is never trusted past its own expiry.
    """

    def __init__(self, ttl_s: float = TOKEN_CACHE_S) -> None:
        self.ttl_s = ttl_s
        self.generation = 0  # advanced by forget(): a check begun before a revocation must not be cached after it
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, token: str, now_s: float) -> Principal | None:
        key = hash_token(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, checked_s = entry
        if now_s - checked_s > self.ttl_s or now_s >= principal.expires_at:
            del self._entries[key]
            return None
        return principal

    def put(self, token: str, principal: Principal, now_s: float, generation: int) -> None:
        """Remember a principal verified at ``now_s`` by a check that began at ``generation``."""
        if generation != self.generation:
            return
        if len(self._entries) >= TOKEN_CACHE_MAX:
            self._entries.clear()
        self._entries[hash_token(token)] = (principal, now_s)

    def forget(self) -> None:
        """Drop every verified token (a token, a sign-in or an app was revoked)."""
        self._entries.clear()
        self.generation += 1


@dataclass
class ShownCode:
    """The pairing code the car shows, held in the companion's memory: never a broker signal, never in an answer
    to the phone; only the car's own screen reads it (``GET /api/v1/pairing/screen`` from a loopback address)
    and the car's log has it (``evos up`` in a terminal, a car without a screen)."""

    code: str = ""
    expires_at: float = 0.0

    def show(self, code: str, expires_at: float) -> None:
        if code:
            log.warning("companion: pairing code %s (type it into the phone)", code)
        self.code, self.expires_at = code, expires_at

    def on_screen(self, now_s: float) -> dict[str, Any]:
        live = bool(self.code) and self.expires_at > now_s
        return {"code": self.code if live else "", "expires_at": int(self.expires_at) if live else 0}


@dataclass
class Context:
    """What every route needs: the car's port and state view, the settings, the database, the token cache and
    the rate limiters."""

    port: VehiclePort
    config: CompanionConfig
    db: Database
    limiter: RateLimiter
    login_limiter: RateLimiter  # password attempts per user name, and per client address
    car_login_limiter: RateLimiter  # password attempts over the whole car (one key: "car")
    hasher: Executor  # the password checks' own pool (argon2): bounded, and off the database's thread
    pairing_limiter: RateLimiter  # pairing attempts, all codes and tokens together (one key: "pairing")
    shown_code: ShownCode  # the pairing code on the car's screen
    state: StateView
    tokens: TokenCache
    momentary: Momentary  # switches to turn off again (flash lights)
    first_run: bool = True  # the first-run page may make an owner (False once the car's accounts were lost)
    refusals: RefusalHold = field(default_factory=RefusalHold)  # how 401 and 429 answers are paced


async def context(request: Request) -> Context:  # async: FastAPI runs a plain def dependency on a thread
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(context)]
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/oauth/token", auto_error=False, scopes={
    "vehicle_data": "Read the car's state, trips and charging sessions",
    "vehicle_location": "Read where the car is",
    "vehicle_cmds": "Send commands (lock, climate, trunk, windows, ...)",
    "charging_cmds": "Start and stop charging, set the charge limit",
    OWNER: "The owner's own session: app tokens, phone keys, audit log"})


def rate_limit(ctx: Context, key: str, limiter: RateLimiter | None = None) -> None:
    wait_s = (limiter or ctx.limiter).take(key, time.monotonic())
    if wait_s > 0:
        raise RateLimitedError(f"too many requests; retry in {wait_s:.1f} s", wait_s)


async def verify_token(ctx: Context, token: str | None) -> Principal:
    """The principal behind an access token (from the cache or the database); UnauthorizedError if not valid."""
    if not token:
        raise UnauthorizedError("missing access token: send 'Authorization: Bearer <token>'")
    now_s = time.time()
    principal = ctx.tokens.get(token, now_s)
    if principal is None:
        generation = ctx.tokens.generation
        principal = await ctx.db.run(authenticate, token, now_s)
        ctx.tokens.put(token, principal, now_s, generation)
    return principal


async def principal_of(ctx: Context, token: str | None) -> Principal:
    """The caller behind a bearer token (rate limited per token); UnauthorizedError without a valid one."""
    principal = await verify_token(ctx, token)
    rate_limit(ctx, f"token:{principal.token_id}")
    return principal


async def current_principal(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    """A dependency: the caller behind the bearer token. It reads the context itself rather than through
    ``ContextDep``: every level of dependencies costs FastAPI time on each request (measured: 17 % of a state read)."""
    return await principal_of(request.app.state.ctx, token)


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``scope``."""

    async def check(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
        principal = await principal_of(request.app.state.ctx, token)
        if scope not in principal.scopes:
            raise ForbiddenError(f"this token lacks the {scope!r} scope", code="insufficient_scope")
        return principal

    return check


# The web app loads nothing but its own files, with no inline script or style, so the policy can be strict: an
# injected <script> or inline handler would not run. Swagger UI (/api/docs) is FastAPI's page from a CDN with an
# inline script; it gets the other headers but no policy (it is a developer's page and holds no token of its own).
CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                     (b"referrer-policy", b"no-referrer"))
_NO_STORE = (b"cache-control", b"no-store")  # API answers hold tokens and the car's state (RFC 6749 §5.1)
_NO_CSP_PATHS = ("/api/docs",)


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response (a plain ASGI layer: Starlette's
    ``BaseHTTPMiddleware`` would cost each state read a task and a queue)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = list(_SECURITY_HEADERS)
        if not path.startswith(_NO_CSP_PATHS):
            extra.append((b"content-security-policy", CSP.encode()))
        if path.startswith("/api/"):
            extra.append(_NO_STORE)

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 on every route, whether it says its length
    (``Content-Length``) or streams it (chunked): the bytes are counted as they come in, and reading stops at the
    limit (the app is told the client left, and what it would answer is dropped)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send, f"a request body of {length.decode(errors='replace')[:20]} bytes")
            return
        received = 0
        over = False

        async def counted() -> dict[str, Any]:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: dict[str, Any]) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over:
            await self._refuse(send, f"a request body of over {received:,} bytes")

    async def _refuse(self, send: Any, what: str) -> None:
        response = error_response(413, "payload_too_large", f"{what}: at most {self.max_bytes:,} bytes")
        await response({"type": "http"}, None, send)  # type: ignore[arg-type]


def client_host(connection: HTTPConnection) -> str:
    """The address a request or WebSocket came from ("" when the server cannot tell): the connection's, never a
    header's."""
    return connection.client.host if connection.client is not None else ""


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a browser's ``Origin`` header names the server it connects to (``Host``); no Origin (not a
    browser: a third-party app, a script) counts as same. Refuses cross-site WebSocket hijacking."""
    if origin is None:
        return True
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or name the server listens on) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


async def _cabin_api_owner_only(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> None:
    """On a non-loopback address the centre screen's API (``/cabin/api/...``) needs an owner token; its page and
    static files still load (they hold no car data)."""
    if request.url.path.startswith("/cabin/api/"):
        principal = await principal_of(request.app.state.ctx, token)
        if OWNER not in principal.scopes:
            raise ForbiddenError("the cabin API needs the owner's token on this address", code="insufficient_scope")


def create_app(ctx: Context, routers: Iterable[APIRouter], extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    """The companion app: API routers, ``extra_routers`` under ``/cabin``, and the web app at ``/``."""
    app = FastAPI(title="evos companion API", version="1", docs_url="/api/docs", redoc_url=None,
                  description="The owner's phone and third-party apps: the car's state, commands, phone keys, "
                              "trips and charging sessions. See docs/companion.md.")
    app.state.ctx = ctx
    app.add_exception_handler(EvosError, _evos_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    for router in routers:
        app.include_router(router)
    guard = [] if is_loopback(ctx.config.host) else [Depends(_cabin_api_owner_only)]
    for router in extra_routers:
        app.include_router(router, prefix="/cabin", dependencies=guard)

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def no_such_endpoint(request: Request, rest: str) -> None:
        raise NotFoundError(f"no API endpoint {request.method} /api/{rest}")

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="web")
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=ctx.config.trusted_hosts(), www_redirect=False)
    app.add_middleware(SecurityHeaders)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the car (``evos up``) handles SIGINT/SIGTERM and sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_server(app: FastAPI) -> uvicorn.Server:
    """A uvicorn server for ``app`` in the running event loop (serve it with ``server.serve(sockets=[...])``)."""
    return _Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                  ws="websockets-sansio"))


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); UnavailableError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP (not 0): asyncio then sets TCP_NODELAY on accepted connections; without it Nagle's
    # algorithm meets delayed ACKs and every keep-alive request waits ~40 ms (measured here)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UnavailableError(f"companion web server cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock
