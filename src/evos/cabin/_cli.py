"""``evos cabin ...`` (scenes, forecast, media on a running car) and ``evos assistant "text"``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from evos._connect import AddressOpt, CaOpt, Connection, TokenFileOpt, TokenOpt
from evos._console import console, fail, run_async
from evos.broker import DEFAULT_ADDRESS, VehiclePort
from evos.cabin._assistant import READS, Answer, Assistant, act
from evos.cabin._engine import format_duration
from evos.cabin._forecast import INPUTS, forecast
from evos.cabin._media import ACTION, PLAYLIST, POSITION, VOLUME
from evos.cabin._scenes import load_scenes
from evos.cabin._service import (
    OVERLAY,
    REASON,
    REMAINING,
    SCENE,
    STATUS,
    TWIN_VEHICLE,
    body_actuators,
    catalog_of,
    vehicle_for,
)
from evos.errors import EvosError, InvalidArgumentError, UnavailableError, UnknownSignalError
from evos.twin import TWIN_OVERLAY
from evos.vss import Catalog, Value, load_catalog

app = typer.Typer(name="cabin", no_args_is_help=True,
                  help="The smart cabin: scenes (office, cinema, rest, camp, pet, living), energy forecast, media.")

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", file_okay=False,
                                                 help="Data directory whose scenes/ folder holds user scenes.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _catalog() -> Catalog:
    return load_catalog(overlays=[TWIN_OVERLAY, OVERLAY])


# A fresh parked car in this process, as a port: the car's assembly (evos.car) sets it when the CLI is put together.
_local_car: list[Callable[[], AbstractAsyncContextManager[VehiclePort]]] = []


def use_local_car(factory: Callable[[], AbstractAsyncContextManager[VehiclePort]]) -> None:
    """Where the commands get a parked car when no ``--address`` is given (``evos.cli`` sets it)."""
    _local_car[:] = [factory]


@asynccontextmanager
async def _car(car: Connection | None) -> AsyncIterator[VehiclePort]:
    """A port to the running car at ``car``, or to a fresh parked car in this process."""
    if car is not None:
        async with car.client() as client:
            yield client
        return
    if not _local_car:
        raise UnavailableError("no car to ask: give --address of a running car")
    async with _local_car[0]() as port:
        yield port


@app.command("scenes")
def scenes_command(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the scenes: built-in ones and the user's (DATA_DIR/scenes/*.yaml)."""
    try:
        scenes = load_scenes(_catalog(), data_dir / "scenes" if data_dir else None)
    except EvosError as exc:
        raise fail(str(exc)) from None
    rows: list[dict[str, Any]] = [
        {"name": s.name, "title": s.title, "title_zh": s.title_zh, "requires_parked": s.requires_parked,
         "wake_after_min": s.wake_after_s / 60 if s.wake_after_s else None, "settings": len(s.set),
         "holds": sorted(s.hold), "source": s.source}
        for s in scenes.values()]
    if as_json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    table = Table(title="cabin scenes")
    for column in ("name", "title", "parked only", "wake-up", "settings", "holds"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], f"{r['title']} {r['title_zh']}", "yes" if r["requires_parked"] else "no",
                      f"{r['wake_after_min']:.0f} min" if r["wake_after_min"] else "", str(r["settings"]),
                      str(len(r["holds"])))
    console.print(table)


@app.command("enter")
def enter_command(scene: Annotated[str, typer.Argument(help="Scene name (see 'evos cabin scenes').")],
                  address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
                  tls_ca: CaOpt = None) -> None:
    """Enter a scene on the running car (it remembers the cabin and restores it on exit)."""
    car = Connection.of(address, token, token_file, tls_ca)
    run_async(_actuate(car, {SCENE: scene}))
    run_async(_print_status(car))


@app.command("exit")
def exit_command(address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
                 tls_ca: CaOpt = None) -> None:
    """Leave the active scene on the running car (the cabin is restored, manual changes kept)."""
    car = Connection.of(address, token, token_file, tls_ca)
    run_async(_actuate(car, {SCENE: "NONE"}))
    run_async(_print_status(car))


@app.command("status")
def status_command(address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
                   tls_ca: CaOpt = None) -> None:
    """The active scene, its status and the time left to the energy reserve."""
    run_async(_print_status(Connection.of(address, token, token_file, tls_ca)))


@asynccontextmanager
async def _cabin_client(car: Connection) -> AsyncIterator[VehiclePort]:
    """A client of ``car``; UnavailableError saying so when that broker has no cabin (a bare 'evos broker'
    or 'evos broker --apps twin' has none), not an unknown signal or a missing provider."""
    async with car.client() as client:
        try:
            await client.signals(SCENE)
        except UnknownSignalError:
            raise UnavailableError(f"the car at {car.address} has no cabin service (no {SCENE}); the cabin runs "
                                   "in 'evos up'") from None
        yield client


async def _actuate(car: Connection, targets: dict[str, Value]) -> None:
    async with _cabin_client(car) as client:
        await client.actuate(targets)


async def _print_status(car: Connection) -> None:
    async with _cabin_client(car) as client:
        v = {p: dp.value for p, dp in (await client.get_many([SCENE, STATUS, REASON, REMAINING])).items()}
    remaining = v[REMAINING]
    left = f", {format_duration(float(remaining))} to the reserve" \
        if isinstance(remaining, int | float) and v[SCENE] != "NONE" else ""
    console.print(f"scene {v[SCENE]} ({v[STATUS]}){left}: {v[REASON] or ''}", highlight=False)


@app.command("forecast")
def forecast_command(
    scene: Annotated[str, typer.Argument(help="Scene name (see 'evos cabin scenes').")],
    address: Annotated[str | None, typer.Option("--address", "-a", "--broker",
                                                help="Running car HOST:PORT (default: a fresh car in this process, "
                                                     "parked).")] = None,
    reserve: Annotated[float, typer.Option("--reserve", min=0, max=90, help="Reserve SoC, %.")] = 20.0,
    as_json: JsonOpt = False, token: TokenOpt = None, token_file: TokenFileOpt = None, tls_ca: CaOpt = None,
) -> None:
    """How long a scene can run from the current SoC down to the reserve ('cinema: 6 h 20 min to 20 %')."""
    car = None if address is None else Connection.of(address, token, token_file, tls_ca)
    result = run_async(_forecast(scene, car, reserve))
    if as_json:
        print(json.dumps({"scene": result.scene, "runtime_s": round(result.runtime_s), "soc_pct": result.soc_pct,
                          "reserve_pct": result.reserve_pct, "ambient_c": result.ambient_c,
                          "cabin_load_w": round(result.cabin_load_w, 1), "media_load_w": round(result.media_load_w, 1),
                          "text": result.text}))
    else:
        console.print(result.text, highlight=False)


async def _forecast(name: str, car: Connection | None, reserve: float) -> Any:
    scenes = load_scenes(_catalog())
    if name not in scenes:
        raise InvalidArgumentError(f"unknown scene {name!r}; scenes: {', '.join(sorted(scenes))}")
    async with _car(car) as port:
        values = await _car_values(port, (*INPUTS, TWIN_VEHICLE))
    return forecast(vehicle_for(values.get(TWIN_VEHICLE)), scenes[name], values, reserve)


media_app = typer.Typer(name="media", no_args_is_help=True, help="The media player of a running car.")
app.add_typer(media_app)


def _media_action(name: str, action: str, summary: str) -> None:
    def command(address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
                tls_ca: CaOpt = None) -> None:
        run_async(_actuate(Connection.of(address, token, token_file, tls_ca), {ACTION: action}))
    command.__doc__ = summary
    media_app.command(name)(command)


for _name, _action, _summary in (("play", "PLAY", "Play."), ("pause", "STOP", "Pause."),
                                 ("next", "SKIP_FORWARD", "Skip to the next track."),
                                 ("previous", "SKIP_BACKWARD", "Back to the previous track (or this one's start).")):
    _media_action(_name, _action, _summary)


@media_app.command("volume")
def media_volume_command(percent: Annotated[int, typer.Argument(min=0, max=100, help="Volume, %.")],
                         address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None,
                         token_file: TokenFileOpt = None, tls_ca: CaOpt = None) -> None:
    """Set the volume."""
    run_async(_actuate(Connection.of(address, token, token_file, tls_ca), {VOLUME: percent}))


@media_app.command("seek")
def media_seek_command(seconds: Annotated[float, typer.Argument(min=0, help="Position in the track, s.")],
                       address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None,
                       token_file: TokenFileOpt = None, tls_ca: CaOpt = None) -> None:
    """Jump to a position in the current track."""
    run_async(_actuate(Connection.of(address, token, token_file, tls_ca), {POSITION: seconds}))


@media_app.command("playlist")
def media_playlist_command(name: Annotated[str, typer.Argument(help="Playlist: 'all' or an .m3u in the library.")],
                           address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None,
                           token_file: TokenFileOpt = None, tls_ca: CaOpt = None) -> None:
    """Play from a playlist."""
    run_async(_actuate(Connection.of(address, token, token_file, tls_ca), {PLAYLIST: name}))


# ---- the assistant ------------------------------------------------------------------------------------------
async def _car_values(port: VehiclePort, paths: tuple[str, ...]) -> dict[str, Value | None]:
    """Values of ``paths`` the car knows, plus every body and cabin actuator (the forecast's load inputs)."""
    catalog = await catalog_of(port)
    wanted = list(dict.fromkeys([*(p for p in paths if p in catalog), *body_actuators(catalog)]))
    return {p: dp.value for p, dp in (await port.get_many(wanted)).items()}


async def _assist(text: str, dry_run: bool, car: Connection | None) -> Answer:
    async with _car(car) as port:
        catalog = await catalog_of(port)  # the car's own, with its apps' overlays: every signal it has, by name
        assistant = Assistant(load_scenes(_catalog()), lambda: vehicle, catalog=catalog)
        values = await _car_values(port, (*READS, *INPUTS, TWIN_VEHICLE, *assistant.paths))
        vehicle = vehicle_for(values.get(TWIN_VEHICLE))
        answer = assistant.answer(text, values)
        return answer if dry_run else await act(port, answer)


def assistant_command(
    text: Annotated[str, typer.Argument(help="What you want, in English or Chinese: \"I'm cold\", \"打开影院模式\".")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be done; actuate nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: intent, actions, reply.")] = False,
    address: Annotated[str | None, typer.Option(
        "--address", "-a", "--broker",
        help="Act on a running car at HOST:PORT (default: a fresh parked car in this process).")] = None,
    token: TokenOpt = None, token_file: TokenFileOpt = None, tls_ca: CaOpt = None,
) -> None:
    """The offline assistant: text in, VSS actions and a reply out (no network)."""
    car = None if address is None else Connection.of(address, token, token_file, tls_ca)
    answer = run_async(_assist(text, dry_run, car))
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    console.print(answer.reply, highlight=False)
    for action in answer.actions:
        console.print(f"  {'would set' if dry_run else 'set'} {action['path']} = {action['value']}", highlight=False)
