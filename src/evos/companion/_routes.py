"""The REST and WebSocket routes of the companion API (``/api/v1``), one router per resource."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, create_model
from sqlalchemy import select
from sqlalchemy.orm import Session

from evos.broker import read_journal
from evos.companion import _accounts as accounts
from evos.companion import _audit as audit_log
from evos.companion import _keys as keys
from evos.companion._accounts import Principal
from evos.companion._api import (
    ERRORS,
    Context,
    ContextDep,
    client_host,
    current_principal,
    error_status,
    is_loopback,
    principal_of,
    rate_limit,
    require,
    same_origin,
    verify_token,
)
from evos.companion._config import OWNER, SCOPES
from evos.companion._db import AuditEntry
from evos.companion._errors import CompanionError, ConflictError, ForbiddenError, GrantError, UnauthorizedError
from evos.companion._recorder import list_sessions, list_trips
from evos.companion._vehicle import COMMANDS, Command, command_targets, execute, group_values
from evos.errors import DataError, EvosError

log = logging.getLogger("evos.companion")
API = "/api/v1"
Owner = Annotated[Principal, Depends(require(OWNER))]
Reader = Annotated[Principal, Depends(require("vehicle_data"))]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most recent entries to return.")]
STREAM_RECHECK_S = 1.0  # a live stream checks its token this often: it closes within ~1 s of a revocation


def _printable(text: str) -> str:
    """A name shown in lists: no control characters (PostgreSQL text cannot even hold NUL)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain control characters")
    return text


Label = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_printable)]


# ---- accounts and OAuth 2.0 -------------------------------------------------------------------------------------
class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    scope: str


auth = APIRouter(prefix=API, tags=["accounts"], responses=ERRORS)


@auth.get("/setup")
async def setup_state(ctx: ContextDep) -> dict[str, bool]:
    """Whether the car still needs its owner (the first-run page; never on a car whose accounts were lost)."""
    return {"needs_owner": ctx.first_run and await ctx.db.run(accounts.user_count) == 0}


@auth.post("/setup", status_code=201)
async def setup_owner(ctx: ContextDep, body: Credentials) -> dict[str, str]:
    """Create the owner's account on first run; 409 once the car has one."""
    rate_limit(ctx, "setup")
    if not ctx.first_run:
        raise ConflictError("the car's accounts were lost (its database was set aside as unusable): add the owner "
                            "on the car itself with 'evos users add NAME'", code="accounts_lost")
    user = await ctx.db.run(accounts.add_first_user, body.name, body.password, time.time())
    return {"name": user.name}


@auth.post("/oauth/token", response_model=TokenResponse)
async def token(
    ctx: ContextDep,
    request: Request,
    grant_type: Annotated[str, Form(description="'password' or 'refresh_token'")],
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=accounts.MAX_PASSWORD)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    """OAuth 2.0 token endpoint (RFC 6749): the owner's password grant, and refresh with rotation."""
    now_s = time.time()
    if grant_type == "password":
        if not username or not password:
            raise CompanionError("the password grant needs username and password", code="invalid_request")
        # password guessing is slowed per account name, per client and over the whole car, before any work
        rate_limit(ctx, f"name:{username}", ctx.login_limiter)
        rate_limit(ctx, f"client:{client_host(request)}", ctx.login_limiter)
        rate_limit(ctx, "car", ctx.car_login_limiter)
        user_id, password_hash = await ctx.db.run(accounts.password_hash_of, username, scope)
        matched = await asyncio.get_running_loop().run_in_executor(
            ctx.hasher, accounts.password_matches, password_hash, password)
        return await ctx.db.run(accounts.password_grant, user_id, matched, scope, now_s, ctx.config)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise CompanionError("the refresh_token grant needs refresh_token", code="invalid_request")
        rate_limit(ctx, f"refresh:{accounts.hash_token(refresh_token)}")  # per token: made-up ones lock no one out
        try:
            return await ctx.db.run(accounts.refresh_grant, refresh_token, scope, now_s, ctx.config)
        except GrantError as exc:
            if exc.keep_changes:  # a retired refresh token came back: its whole sign-in was revoked
                ctx.tokens.forget()
            raise
    raise accounts.GrantError(f"grant_type {grant_type!r} is not supported; use 'password' or 'refresh_token'",
                              code="unsupported_grant_type")


@auth.post("/oauth/revoke")
async def revoke(ctx: ContextDep, token: Annotated[str, Form(max_length=200)]) -> dict[str, str]:
    """Revoke an access or refresh token (RFC 7009; a refresh token revokes its whole sign-in). Always 200."""
    await ctx.db.run(accounts.revoke_token, token, time.time())
    ctx.tokens.forget()
    return {"status": "revoked"}


@auth.get("/me")
async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
    """Who this token belongs to and what it may do."""
    return {"user": principal.user, "scopes": sorted(principal.scopes), "credential": principal.credential,
            "expires_at": principal.expires_at}


class AppTokenRequest(BaseModel):
    name: Label
    scopes: list[str] = Field(min_length=1, description=f"Any of {', '.join(SCOPES)}.")


@auth.post("/tokens", status_code=201)
async def create_token(ctx: ContextDep, principal: Owner, body: AppTokenRequest) -> dict[str, Any]:
    """Give a third-party app a token with the scopes listed (shown this once)."""
    return await ctx.db.run(accounts.create_app_token, principal.user_id, body.name, body.scopes, time.time(),
                            ctx.config)


@auth.get("/tokens")
async def list_tokens(ctx: ContextDep, principal: Owner) -> list[dict[str, Any]]:
    """The third-party app tokens in force."""
    return await ctx.db.run(accounts.list_app_tokens, principal.user_id)


@auth.delete("/tokens/{app_id}", status_code=204)
async def revoke_app(ctx: ContextDep, principal: Owner, app_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    """Revoke an app's token."""
    await ctx.db.run(accounts.revoke_app_token, principal.user_id, app_id, time.time())
    ctx.tokens.forget()
    return Response(status_code=204)


# ---- phone keys -------------------------------------------------------------------------------------------------
class PairRequest(BaseModel):
    code: str = Field(min_length=1, max_length=12, description="The code the car shows.")
    public_key: str = Field(min_length=1, max_length=100, description="Raw Ed25519 public key, base64url.")
    name: Label = "phone"


key_router = APIRouter(prefix=API, tags=["phone keys"], responses=ERRORS)


@key_router.post("/pairing/codes", status_code=202)
async def start_pairing(ctx: ContextDep, _owner: Owner) -> dict[str, Any]:
    """Ask the car to show a pairing code on its screen (the code is not returned: the car is the proof)."""
    code, expires_at = await ctx.db.run(keys.create_pairing_code, time.time(), ctx.config.pairing_code_lifetime_s,
                                        ctx.config.pairing_code_attempts)
    ctx.shown_code.show(code, expires_at)
    return {"shown_on": "car", "expires_at": expires_at}


@key_router.get("/pairing/screen")
async def pairing_on_screen(ctx: ContextDep, request: Request) -> dict[str, Any]:
    """The pairing code for the car's own screen, which alone may show it: answered to a client on a loopback
    address only (forwarding headers count for nothing); ``code`` is "" when none is being shown."""
    if not is_loopback(client_host(request)):
        raise ForbiddenError("the pairing code is shown on the car's own screen only", code="screen_only")
    return ctx.shown_code.on_screen(time.time())


@key_router.post("/keys", status_code=201)
async def pair(ctx: ContextDep, principal: Owner, body: PairRequest) -> dict[str, Any]:
    """Pair a phone's public key, with the code the car shows (attempts are limited across all codes and tokens)."""
    rate_limit(ctx, "pairing", ctx.pairing_limiter)
    paired = await ctx.db.run(keys.pair_key, principal.user_id, body.code, body.public_key, body.name, time.time())
    ctx.shown_code.show("", 0.0)
    return paired


@key_router.get("/keys")
async def list_keys(ctx: ContextDep, principal: Owner) -> list[dict[str, Any]]:
    """Paired phone keys, revoked ones included (with revoked_at)."""
    return await ctx.db.run(keys.list_keys, principal.user_id)


@key_router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(ctx: ContextDep, principal: Owner,
                     key_id: Annotated[str, Path(pattern=f"^{keys.KEY_ID_RE.pattern}$")]) -> Response:
    await ctx.db.run(keys.revoke_key, principal.user_id, key_id, time.time())
    return Response(status_code=204)


# ---- the vehicle ------------------------------------------------------------------------------------------------
vehicle = APIRouter(prefix=f"{API}/vehicle", tags=["vehicle"], responses=ERRORS)


class VehicleState(BaseModel):
    groups: dict[str, dict[str, Any]] = Field(description="Values by group and field, in VSS units (see the docs).")
    at: float = Field(description="When it was read, seconds since the Unix epoch.")


@vehicle.get("/state", response_model=VehicleState)
async def state(request: Request, principal: Reader) -> Response:
    """The car's state by group (battery, charging, climate, closures, location, drive) in VSS units;
    ``location`` only with the vehicle_location scope; null where the car reports no value."""
    ctx: Context = request.app.state.ctx  # not ContextDep: the hot path spares a dependency level
    groups = ctx.state.groups_json("vehicle_location" in principal.scopes)  # JSON text, rebuilt only on change
    return Response(f'{{"groups":{groups},"at":{time.time()!r}}}', media_type=JSONResponse.media_type)


class CommandResult(BaseModel):
    command: str
    result: str = Field(description="'completed', or 'in_progress' while a motor is still moving")
    values: dict[str, Any] = Field(description="The values the car reports now, by VSS path.")


async def run_command(ctx: ContextDep, principal: Principal, command: Command, body: Any) -> dict[str, Any]:
    """Check and sign-verify one command, write it to the audit log, carry it out and read it back, and write its
    outcome. A command whose audit entry cannot be written is refused before anything changes."""
    key_id = None
    args: Any = body.args.model_dump() if body.args is not None else {}

    def credential() -> str:
        return principal.credential + (f" key:{key_id}" if key_id else "")

    try:
        if command.scope not in principal.scopes:
            raise ForbiddenError(f"this token lacks the {command.scope!r} scope", code="insufficient_scope")
        if command.signed and (body.envelope is None or body.signature is None):
            raise ForbiddenError(f"{command.name} must be signed by a paired phone key: send envelope and "
                                 "signature", code="signature_required")
        if body.envelope is not None:
            if body.signature is None:
                raise ForbiddenError("an envelope needs its signature", code="signature_required")
            args = keys.parse_envelope(body.envelope).args
            checked = command.args.model_validate(args)
            targets = await command_targets(ctx.port, ctx.state.catalog, command, checked)  # before the counter
            envelope = await ctx.db.run(keys.verify_envelope, principal.user_id, command.name, body.envelope,
                                        body.signature, time.time(), ctx.config)
            key_id = envelope.key_id
        else:
            checked = body.args if body.args is not None else command.args.model_validate({})
            targets = await command_targets(ctx.port, ctx.state.catalog, command, checked)
    except (EvosError, ValueError) as exc:
        await ctx.db.run(audit_log.refused, principal.user, credential(), command.name, args,
                         getattr(exc, "code", type(exc).__name__), str(exc), time.time())
        raise

    async def act() -> dict[str, Any]:
        outcome = await execute(ctx.port, targets, ctx.config.command_wait_s)
        if command.momentary_s > 0:
            ctx.momentary.schedule(tuple(targets), command.momentary_s)
        return outcome

    outcome = await audit_log.audited(ctx.db, (principal.user, credential()), command.name, args, act,
                                      lambda answer: str(answer["result"]), f"{command.name} was not carried out")
    return {"command": command.name, **outcome}


def _add_command(command: Command) -> None:
    body_model = create_model(
        f"{command.name.title().replace('_', '')}Request",
        args=(command.args | None, Field(default=None, description="Arguments (unsigned requests).")),  # type: ignore[arg-type]
        envelope=(str | None, Field(default=None, max_length=4096,
                                    description="Signed envelope: canonical JSON text (docs/companion.md).")),
        signature=(str | None, Field(default=None, max_length=200, description="Ed25519 signature, base64url.")),
    )

    async def handler(ctx: ContextDep, principal: Annotated[Principal, Depends(current_principal)],
                      body: Any = None) -> dict[str, Any]:
        return await run_command(ctx, principal, command, body or body_model())

    handler.__annotations__["body"] = body_model | None  # a type made at run time (annotations are strings here)

    vehicle.add_api_route(f"/commands/{command.name}", handler, methods=["POST"], response_model=CommandResult,
                          summary=command.summary, name=command.name,
                          description=f"Needs scope {command.scope}" + ("; signed by a paired key." if command.signed
                                                                         else "."))


for _command in COMMANDS.values():
    _add_command(_command)


@vehicle.websocket("/stream")
async def stream(websocket: WebSocket, access_token: str = "") -> None:
    """Live state: a ``{"type": "state", "groups": ...}`` message, then ``{"type": "update", ...}`` per change.
    Closes with 4401 once the token expires or is revoked (checked every ``STREAM_RECHECK_S``)."""
    ctx: Context = websocket.app.state.ctx
    await websocket.accept()  # accept first, so a refusal can say why (close code 4401/4403 and a reason)
    try:
        if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host")):
            raise ForbiddenError(f"the stream does not open for pages of {websocket.headers['origin']}",
                                 code="cross_origin")
        principal = await principal_of(ctx, access_token)
        if "vehicle_data" not in principal.scopes:
            raise ForbiddenError("this token lacks the 'vehicle_data' scope", code="insufficient_scope")
    except EvosError as exc:
        await ctx.refusals.hold(client_host(websocket), error_status(exc)[0])  # paced as HTTP's refusals
        await websocket.close(code=4401 if isinstance(exc, UnauthorizedError) else 4403, reason=str(exc))
        return
    paths = ctx.state.paths("vehicle_location" in principal.scopes)
    loop = asyncio.get_running_loop()
    changes = ctx.state.changes(paths)  # merged: what changed since the last message, latest value per signal
    receiver = asyncio.create_task(websocket.receive())  # completes when the client goes away
    getter: asyncio.Task[Any] | None = None
    check_at = loop.time() + STREAM_RECHECK_S
    try:
        await websocket.send_json({"type": "state", "groups": group_values(paths, ctx.state.values(paths)),
                                   "at": time.time()})
        while True:
            getter = getter or asyncio.create_task(changes.next())
            done, _ = await asyncio.wait({getter, receiver}, timeout=max(0.0, check_at - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                return
            if loop.time() >= check_at:
                try:
                    await verify_token(ctx, access_token)
                except UnauthorizedError as exc:  # revoked or expired since the stream opened
                    await websocket.close(code=4401, reason=str(exc))
                    return
                check_at = loop.time() + STREAM_RECHECK_S
            if getter not in done:
                continue
            values = getter.result()
            getter = None
            await websocket.send_json({"type": "update", "groups": group_values(paths, values), "at": time.time()})
            await asyncio.sleep(0.1)  # at most 10 messages a second; changes in between are merged
    except WebSocketDisconnect:
        return
    finally:
        changes.close()
        for task in (getter, receiver):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task


# ---- history ----------------------------------------------------------------------------------------------------
history = APIRouter(prefix=API, tags=["history"], responses=ERRORS)


@history.get("/trips")
async def trips(ctx: ContextDep, _reader: Reader, limit: Limit = 50) -> list[dict[str, Any]]:
    """Recorded trips, newest first (distance m, energy kWh, consumption Wh/km, SoC %, max speed km/h)."""
    return await ctx.db.run(list_trips, limit)


@history.get("/charging/sessions")
async def charging_sessions(ctx: ContextDep, _reader: Reader, limit: Limit = 50) -> list[dict[str, Any]]:
    """Recorded charging sessions, newest first (energy added kWh, SoC %, peak power kW)."""
    return await ctx.db.run(list_sessions, limit)


def _audit_entries(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [{"id": e.id, "at": e.at, "user": e.user, "credential": e.credential, "command": e.command,
             "args": json.loads(e.args), "result": e.result, "detail": e.detail, "source": "companion"} for e in rows]


def _journal_entries(path: FilePath | None, limit: int) -> list[dict[str, Any]]:
    if path is None:
        return []
    try:
        return [{**row, "source": "broker"} for row in read_journal(path, limit)]
    except DataError as exc:  # the owner still sees the companion's entries; the broker sets a bad file aside
        log.error("%s", exc)
        return []


@history.get("/audit")
async def audit(ctx: ContextDep, _owner: Owner, limit: Limit = 100) -> list[dict[str, Any]]:
    """Every command sent to the car (who, with which token or key, what, when, the result), newest first: through
    this API and the car's screens (``source: companion``) and over gRPC (``source: broker``, the broker's journal)."""
    own = await ctx.db.run(_audit_entries, limit)
    grpc = await asyncio.to_thread(_journal_entries, ctx.config.broker_journal, limit)
    return sorted([*own, *grpc], key=lambda e: e["at"], reverse=True)[:limit]


ROUTERS = (auth, key_router, vehicle, history)
