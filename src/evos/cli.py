"""The ``evos`` command line: run the car (``evos up``) or one part, and talk to a running car."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

import evos
from evos import datadir
from evos._console import console, fail
from evos.adas import ADAS_OVERLAY, AdasService
from evos.adas._cli import app as adas_app
from evos.broker import DEFAULT_ADDRESS, Broker
from evos.broker._cli import JwtOpt, OverlayOpt, TlsCertOpt, TlsKeyOpt, VssOpt, register, serve_command
from evos.cabin import CABIN_OVERLAY, CabinService, cabin_router
from evos.cabin._cli import app as cabin_app
from evos.cabin._cli import assistant_command
from evos.companion import COMPANION_OVERLAY, CompanionConfig, CompanionService
from evos.companion._cli import app as users_app
from evos.companion._cli import pair_command
from evos.errors import EvosError
from evos.twin import TWIN_OVERLAY, BodyProvider, Controls, StateStore, TwinProvider, load_vehicle
from evos.twin._cli import app as twin_app
from evos.twin._cli import drive_command

app = typer.Typer(
    name="evos", no_args_is_help=True, rich_markup_mode="rich", add_completion=False,
    help="evos: an open operating system for smart electric cars, on a digital twin.",
)
register(app)
app.add_typer(twin_app)
app.add_typer(adas_app)
app.add_typer(cabin_app)
app.command("assistant")(assistant_command)
app.add_typer(users_app)
app.command("pair")(pair_command)
app.command("drive")(drive_command)


@app.command("up")
def up_command(
    address: Annotated[str, typer.Option("--address", "-a", envvar="EVOS_BROKER_ADDRESS",
                                         help="gRPC address of the car's broker, HOST:PORT.")] = DEFAULT_ADDRESS,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help=f"Where the car keeps its state (default: ${datadir.ENV_VAR} or the user data dir).",
        file_okay=False)] = None,
    vehicle: Annotated[str, typer.Option("--vehicle", help="The car: a preset ('evos twin vehicles') or a vehicle "
                                                           "file.")] = "xiaomi-su7",
    plugged_in: Annotated[bool, typer.Option("--plugged-in", help="Park it plugged in to a charger.")] = False,
    charger_kw: Annotated[float, typer.Option("--charger-kw", help="Charger power, kW (up to 22: AC).",
                                              min=1, max=500)] = 11.0,
    ambient: Annotated[float, typer.Option("--ambient", help="Ambient temperature, °C.", min=-40, max=55)] = 20.0,
    http: Annotated[str, typer.Option("--http", envvar="EVOS_HTTP_ADDRESS",
                                      help="HOST:PORT of the web server: the owner's app at /, its API at /api/v1, "
                                           "the cabin's centre screen at /cabin/.")] = "127.0.0.1:8000",
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="EVOS_DATABASE_URL",
        help="The companion's database (default: SQLite in the data directory; a postgresql:// URL also works; "
             "'evos users' and 'evos pair' read the same variable).")] = None,
    vss: VssOpt = None,
    overlay: OverlayOpt = None,
    jwt_public_key: JwtOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Run the whole car in one process: broker, digital twin, body, driver assistance, cabin and web server.

    The broker with the VSS 6.0 catalog, the digital twin (parked), its body
    hardware (locks, windows, seats, lights...), driver assistance (cruise
    control on the broker), the cabin (scenes, media) and the web server (the
    owner's phone app and the centre screen)."""
    try:
        car = load_vehicle(vehicle)
    except EvosError as exc:
        raise fail(str(exc)) from None
    controls = Controls(charger_connected=plugged_in, charger_kw=charger_kw, ambient_c=ambient)
    http_host, _, http_port = http.rpartition(":")
    if not http_host or not http_port.isdigit() or not 0 <= int(http_port) <= 65535:
        raise fail(f"--http {http!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    directory = datadir.resolve(data_dir)

    def apps(broker: Broker, held: Path | None) -> list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]]:
        home = held or directory  # the data directory, now locked by this car
        twin = TwinProvider(broker, car, StateStore(home / "twin.sqlite"), controls, vehicle_ref=vehicle)
        body = BodyProvider(broker, home / "body.sqlite", on_load=twin.set_cabin_load)
        console.print(f"twin: {car.name}, SoC {twin.state.soc * 100:.0f} %, odometer "
                      f"{twin.state.odometer_m / 1e3:.1f} km, {'plugged in' if plugged_in else 'parked'}",
                      highlight=False)
        cabin = CabinService(broker, home, on_load=partial(twin.set_cabin_load, source="media"))
        adas = AdasService(broker)
        config = CompanionConfig(database_url=database_url or CompanionConfig.for_data_dir(home).database_url,
                                 host=http_host, port=int(http_port))
        companion = CompanionService(broker, config, extra_routers=[cabin_router(cabin)])

        async def announce(stop: asyncio.Event) -> None:
            """Print the web address once it listens (the real port when --http gives 0); run until ``stop``."""
            started, stopping = asyncio.create_task(companion.started.wait()), asyncio.create_task(stop.wait())
            await asyncio.wait({started, stopping}, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if companion.started.is_set():
                console.print(f"web: http://{http_host}:{companion.port}/ (phone app), "
                              f"http://{http_host}:{companion.port}/cabin/ (centre screen)", highlight=False)
            await stopping

        return [twin.run, body.run, cabin.run, adas.run, companion.run, announce]

    serve_command("evos car", address, vss, [TWIN_OVERLAY, CABIN_OVERLAY, ADAS_OVERLAY, COMPANION_OVERLAY,
                                             *(overlay or [])],
                  jwt_public_key, tls_cert, tls_key, directory, apps)


@app.command("version")
def version_command() -> None:
    """Print the evos version."""
    console.print(f"evos {evos.__version__}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
