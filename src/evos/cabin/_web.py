"""The centre screen: a FastAPI router with the cabin's JSON API and its landscape page (plain JS/CSS).

``cabin_router(screen)`` serves, relative to where it is mounted (``/cabin`` in ``evos up``):
``GET /`` the page, ``GET /static/{file}``, ``GET /api/state``, ``GET /api/scenes``,
``GET /api/forecast/{scene}``, ``POST /api/scene``, ``POST /api/actuate``, ``POST /api/assistant`` and
``POST /api/media/handover``. evos errors map to HTTP codes in one place (``_http_error``). Every route is async
and talks to the car through the screen's port (``CentreScreen``), never from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from evos.cabin._engine import format_duration
from evos.cabin._screen import STATE_PATHS, CentreScreen
from evos.cabin._screen import Handover as HandoverRequest
from evos.errors import EvosError, NotPermittedError, RequestError, UnavailableError, UnknownSignalError
from evos.vss import Value

STATIC = Path(str(resources.files("evos.cabin").joinpath("data", "static")))
_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
WRITABLE = ("Vehicle.Cabin.", "Vehicle.Evos.Cabin.")  # what the screen may actuate directly


class SceneRequest(BaseModel):
    name: str = Field(description="Scene name, or NONE to leave the scene.")


class AssistantRequest(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    dry_run: bool = False


class Handover(BaseModel):
    uri: str = Field(min_length=1, max_length=2048,
                     description="The track's URI on the phone (or a file:// URI in the library).")
    position_s: float = Field(description="Where the phone was in the track, s (checked by the media service).")
    title: str = Field(default="", max_length=500)
    artist: str = Field(default="", max_length=500)
    album: str = Field(default="", max_length=500)
    duration_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class _CheckedRoute(APIRoute):
    """Words validation errors itself (422): FastAPI's own 422 echoes the input, and an input such as NaN cannot be
    written as JSON, which turned into a 500. (The size of a body is the web server's to limit: it counts every
    route's streamed bytes.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise HTTPException(422, "; ".join(
                    f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
                )) from None

        return checked


def _http_error(exc: EvosError) -> HTTPException:
    if isinstance(exc, UnknownSignalError):
        return HTTPException(404, str(exc))
    if isinstance(exc, NotPermittedError):
        return HTTPException(409, str(exc))  # the request is fine but the car's state forbids it now
    if isinstance(exc, RequestError):
        return HTTPException(400, str(exc))
    if isinstance(exc, UnavailableError):
        return HTTPException(503, str(exc))
    return HTTPException(500, str(exc))


def cabin_router(screen: CentreScreen) -> APIRouter:
    """The centre screen's routes for ``screen`` (include it under any prefix; the page uses relative URLs)."""
    router = APIRouter(route_class=_CheckedRoute)

    @router.get("", include_in_schema=False)
    async def bare(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url.path + "/")

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in _FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(STATIC / name, media_type=_FILES[name])

    @router.get("/api/state")
    async def state() -> dict[str, Value | None]:
        """Current values of the signals the screen shows."""
        return screen.values(STATE_PATHS)

    @router.get("/api/scenes")
    async def scenes() -> list[dict[str, Any]]:
        return [{"name": s.name, "title": s.title, "title_zh": s.title_zh, "requires_parked": s.requires_parked,
                 "reserve_pct": screen.engine.reserve_for(s)} for s in screen.scenes.values()]

    @router.get("/api/forecast/{name}")
    async def scene_forecast(name: str) -> dict[str, Any]:
        try:
            result = await screen.forecast(name)
        except EvosError as exc:
            raise _http_error(exc) from exc
        return {"scene": result.scene, "runtime_s": round(result.runtime_s), "text": result.text,
                "summary": f"{format_duration(result.runtime_s)} to {result.reserve_pct:.0f} %",
                "reserve_pct": result.reserve_pct, "soc_pct": result.soc_pct}

    @router.post("/api/scene")
    async def enter(request: SceneRequest) -> dict[str, Value | None]:
        try:
            return await screen.enter(request.name)
        except EvosError as exc:
            raise _http_error(exc) from exc

    @router.post("/api/actuate")
    async def actuate(targets: Annotated[dict[str, Any], Body(description="{VSS path: value}")]) -> dict[str, str]:
        outside = [p for p in targets if not p.startswith(WRITABLE)]
        if outside:
            raise HTTPException(403, f"{outside[0]}: the cabin screen may only actuate cabin signals")
        try:
            await screen.actuate(targets)
        except EvosError as exc:
            raise _http_error(exc) from exc
        return {"status": "ok"}

    @router.post("/api/assistant")
    async def ask(request: AssistantRequest) -> dict[str, Any]:
        return (await screen.ask(request.text, request.dry_run)).to_json()

    @router.post("/api/media/handover")
    async def handover(request: Handover) -> dict[str, Value | None]:
        try:
            return await screen.handover(HandoverRequest(request.uri, request.position_s, request.title,
                                                         request.artist, request.album, request.duration_s))
        except EvosError as exc:
            raise _http_error(exc) from exc

    return router
