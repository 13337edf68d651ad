"""The ``evos`` command line: run the car (``evos up``) or one part, and talk to a running car."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

import evos
from evos import datadir
from evos.broker import DEFAULT_ADDRESS
from evos.broker._cli import JwtOpt, OverlayOpt, TlsCertOpt, TlsKeyOpt, VssOpt, console, register, serve_command
from evos.twin._cli import app as twin_app

app = typer.Typer(
    name="evos", no_args_is_help=True, rich_markup_mode="rich", add_completion=False,
    help="evos: an open operating system for smart electric cars, on a digital twin.",
)
register(app)
app.add_typer(twin_app)


@app.command("up")
def up_command(
    address: Annotated[str, typer.Option("--address", "-a", envvar="EVOS_BROKER_ADDRESS",
                                         help="gRPC address of the car's broker, HOST:PORT.")] = DEFAULT_ADDRESS,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help=f"Where the car keeps its state (default: ${datadir.ENV_VAR} or the user data dir).",
        file_okay=False)] = None,
    vss: VssOpt = None,
    overlay: OverlayOpt = None,
    jwt_public_key: JwtOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Run the whole car in one process on embedded defaults (for now: the broker with the VSS 6.0 catalog)."""
    serve_command("evos car", address, vss, overlay, jwt_public_key, tls_cert, tls_key, datadir.resolve(data_dir))


@app.command("version")
def version_command() -> None:
    """Print the evos version."""
    console.print(f"evos {evos.__version__}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
