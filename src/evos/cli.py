"""The ``evos`` command line: run the car (``evos up``), one app, or a tool, and talk to a running car."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer

import evos
from evos._console import console
from evos.adas._cli import app as adas_app
from evos.broker import VehiclePort
from evos.broker._cli import register as register_broker
from evos.cabin import _cli as cabin_cli
from evos.car._cli import register as register_car
from evos.companion._cli import app as users_app
from evos.companion._cli import pair_command
from evos.ecosystem._cli import app as mqtt_app
from evos.ecosystem._cli import automations_app, use_catalog
from evos.twin._cli import app as twin_app
from evos.twin._cli import drive_command
from evos.vss import Catalog

app = typer.Typer(
    name="evos", no_args_is_help=True, rich_markup_mode="rich", add_completion=False,
    help="evos: an open operating system for smart electric cars, on a digital twin.",
)
register_car(app)
register_broker(app)
app.add_typer(twin_app)
app.add_typer(adas_app)
app.add_typer(cabin_cli.app)
app.command("assistant")(cabin_cli.assistant_command)
app.add_typer(users_app)
app.add_typer(mqtt_app)
app.add_typer(automations_app)
app.command("pair")(pair_command)
app.command("drive")(drive_command)


@asynccontextmanager
async def parked_car() -> AsyncIterator[VehiclePort]:
    """A fresh parked car in this process (no data directory): what the assistant asks without --address."""
    from evos.car import app_named, local_car

    apps = [app_named(name) for name in ("twin", "body", "media", "cabin")]
    async with local_car(apps) as car:
        yield car.port


cabin_cli.use_local_car(parked_car)


def _car_catalog() -> Catalog:
    """The catalog of the car with every app (``evos up``'s, whatever it runs)."""
    from evos.car import car_catalog

    return car_catalog()


use_catalog(_car_catalog)


@app.command("version")
def version_command() -> None:
    """Print the evos version."""
    console.print(f"evos {evos.__version__}")
