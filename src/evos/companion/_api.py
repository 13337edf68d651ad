"""The HTTP shell: the FastAPI app, its authentication dependencies and the one place errors become HTTP responses.

Every error body is ``{"error": code, "detail": "what was wrong"}``: 400 for refused OAuth grants (RFC 6749 §5.2),
401 without valid token, 403 for a missing scope or a refused signature, 404, 409 when the car refuses in its
current state, 422 for malformed input, 429 over the rate limit (with ``Retry-After``), 503 when no part of the
car serves the actuator.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from evos.broker import Broker
from evos.companion._accounts import OWNER, Principal, authenticate
from evos.companion._config import CompanionConfig
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
from evos.errors import (
    EvosError,
    InvalidArgumentError,
    NotPermittedError,
    RequestError,
    UnavailableError,
    UnknownSignalError,
)

log = logging.getLogger("evos.companion")
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


def _evos_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = error_status(exc)
    headers = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return error_response(status, code, str(exc), headers)


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


@dataclass
class Context:
    """What every route needs: the car's broker, the settings, the database and the rate limiter."""

    broker: Broker
    config: CompanionConfig
    db: Database
    limiter: RateLimiter
    login_limiter: RateLimiter  # password attempts per user name
    show_code: Callable[[str, float], None]  # puts a pairing code on the car's screen


def context(request: Request) -> Context:
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


async def principal_of(ctx: Context, token: str | None) -> Principal:
    """The caller behind a bearer token (rate limited per token); UnauthorizedError without a valid one."""
    if not token:
        raise UnauthorizedError("missing access token: send 'Authorization: Bearer <token>'")
    principal = await ctx.db.run(authenticate, token, time.time())
    rate_limit(ctx, f"token:{principal.token_id}")
    return principal


async def current_principal(ctx: ContextDep, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    return await principal_of(ctx, token)


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``scope``."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise ForbiddenError(f"this token lacks the {scope!r} scope", code="insufficient_scope")
        return principal

    return check


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
    for router in extra_routers:
        app.include_router(router, prefix="/cabin")

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def no_such_endpoint(request: Request, rest: str) -> None:
        raise NotFoundError(f"no API endpoint {request.method} /api/{rest}")

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="web")
    return app
