"""The car's commands: ``evos up`` (the supervisor), ``evos apps`` (what runs), ``evos app run NAME`` (one app
alone, against any KUKSA-compatible broker) and ``evos broker`` (the broker alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from evos import datadir
from evos._connect import AddressOpt, CaOpt, Connection, TokenFileOpt, TokenOpt
from evos._console import console, fail, run_async
from evos.app import App, AppEnv, CarSettings, overlays_of, run_app
from evos.broker import DEFAULT_ADDRESS, JOURNAL_NAME, Broker, ServerConfig
from evos.broker._cli import (
    AuditJournalOpt,
    JwtIssuerOpt,
    JwtOpt,
    OverlayOpt,
    TlsCertOpt,
    TlsKeyOpt,
    VssOpt,
    serve,
    serve_command,
)
from evos.car import app_named, car_apps, car_catalog, car_overlays
from evos.car._guard import no_opening
from evos.car._supervisor import ALIVE, APPS, READY, AppKeys, Supervisor, app_socket, notify
from evos.errors import EvosError, InvalidArgumentError
from evos.vss import load_catalog

VehicleOpt = Annotated[str, typer.Option("--vehicle", help="The car: a preset ('evos twin vehicles') or a vehicle "
                                                           "file.")]
PluggedOpt = Annotated[bool, typer.Option("--plugged-in", help="Park it plugged in to a charger.")]
ChargerOpt = Annotated[float, typer.Option("--charger-kw", help="Charger power, kW (up to 22: AC).", min=1, max=500)]
AmbientOpt = Annotated[float, typer.Option("--ambient", help="Ambient temperature, °C.", min=-40, max=55)]
HttpOpt = Annotated[str, typer.Option("--http", envvar="EVOS_HTTP_ADDRESS",
                                      help="HOST:PORT of the web server: the owner's app at /, its API at /api/v1, "
                                           "the cabin's centre screen at /cabin/.")]
DatabaseOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="EVOS_DATABASE_URL",
    help="The companion's database (default: SQLite in the data directory; a postgresql:// URL also works; "
         "'evos users' and 'evos pair' read the same variable).")]
MqttOpt = Annotated[str | None, typer.Option(
    "--mqtt", envvar="EVOS_MQTT",
    help="Join the car to a home's MQTT server: mqtt://[USER[:PASSWORD]@]HOST[:PORT] or mqtts://... (TLS). The "
         "bridge publishes the car's signals and Home Assistant's discovery and takes commands (docs/ecosystem.md).")]
AutomationsOpt = Annotated[Path | None, typer.Option(
    "--automations", help="The owner's automations: a YAML file of rules on the car's and the home's signals "
                          "('evos automations check FILE'; docs/automations.md). Rules that read the home or publish "
                          "use the --mqtt server unless the file names its own.", exists=True, dir_okay=False)]
MqttConfigOpt = Annotated[Path | None, typer.Option(
    "--mqtt-config", help="The MQTT bridge's YAML file: server, signals published, commands taken, opening opt-in "
                          "(docs/ecosystem.md); --mqtt overrides its server.", exists=True, dir_okay=False)]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help=f"Where the car keeps its state (default: ${datadir.ENV_VAR} or the user data dir).",
    file_okay=False)]


def _settings(vehicle: str, plugged_in: bool, charger_kw: float, ambient: float, http: str,
              database_url: str | None, mqtt: str | None = None, mqtt_config: Path | None = None,
              automations: Path | None = None) -> CarSettings:
    host, _, port = http.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail(f"--http {http!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    from evos.twin import load_vehicle

    try:
        load_vehicle(vehicle)
    except EvosError as exc:
        raise fail(str(exc)) from None
    if mqtt is not None or mqtt_config is not None:
        from evos.ecosystem import bridge_config

        try:
            bridge_config(mqtt_config, mqtt)  # a mistake in it is said now, not by the bridge's process later
        except EvosError as exc:
            raise fail(str(exc)) from None
    return CarSettings(vehicle=vehicle, plugged_in=plugged_in, charger_kw=charger_kw, ambient_c=ambient, http=http,
                       database_url=database_url, mqtt=mqtt,
                       mqtt_config=str(mqtt_config.resolve()) if mqtt_config else None,
                       automations=str(automations.resolve()) if automations else None)


def _chosen(names: str | None, settings: CarSettings | None) -> list[App]:
    """The apps ``--apps`` names, in the car's start order: for ``evos up`` (``settings``) all by default, with the
    optional ones that ``settings`` asks for, and those only when it does; for the broker alone (None) any app, all of
    them by default (the broker carries their signals, nothing runs)."""
    if names is None or names.strip() == "all":
        return car_apps(settings, every=settings is None)
    apps = car_apps(every=True)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {app.name for app in apps}
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise typer.BadParameter(f"{unknown[0] if unknown else names!r} is not an app of the car; apps: "
                                 f"{', '.join(a.name for a in apps)} (or all)", param_hint="--apps")
    if settings is not None and "mqtt" in wanted and not settings.bridged:
        raise typer.BadParameter("'mqtt' (the bridge to the home) needs its server: --mqtt URL or --mqtt-config "
                                 "FILE", param_hint="--apps")
    if settings is not None and "automations" in wanted and not settings.automations:
        raise typer.BadParameter("'automations' needs its rules: --automations FILE", param_hint="--apps")
    return [app for app in apps if app.name in wanted]


def up_command(
    address: Annotated[str, typer.Option("--address", "-a", envvar="EVOS_BROKER_ADDRESS",
                                         help="gRPC address of the car's broker, HOST:PORT.")] = DEFAULT_ADDRESS,
    data_dir: DataDirOpt = None,
    vehicle: VehicleOpt = "xiaomi-su7",
    plugged_in: PluggedOpt = False,
    charger_kw: ChargerOpt = 11.0,
    ambient: AmbientOpt = 20.0,
    http: HttpOpt = "127.0.0.1:8000",
    database_url: DatabaseOpt = None,
    apps: Annotated[str | None, typer.Option(
        "--apps", help="Which apps run, comma-separated (default: all): twin, body, adas, media, cabin, "
                       "companion, mqtt with --mqtt or --mqtt-config, automations with --automations.")] = None,
    mqtt: MqttOpt = None,
    mqtt_config: MqttConfigOpt = None,
    automations: AutomationsOpt = None,
    vss: VssOpt = None,
    overlay: OverlayOpt = None,
    jwt_public_key: JwtOpt = None,
    jwt_issuer: JwtIssuerOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Run the car: the broker, and every app in a process of its own, supervised.

    The broker with the VSS 6.0 catalog on ADDRESS (and on a Unix socket for the apps, each with a token of
    only what it may do), then the digital twin (parked), its body hardware, driver assistance, the media
    player, the cabin and the web server (the owner's phone app and the centre screen). A crashed app is
    restarted; Ctrl-C stops them all in order. 'evos apps' lists them."""
    settings = _settings(vehicle, plugged_in, charger_kw, ambient, http, database_url, mqtt, mqtt_config, automations)
    chosen = _chosen(apps, settings)
    directory = datadir.resolve(data_dir)
    every = car_apps(settings)

    async def main() -> None:
        begun = time.monotonic()
        # the catalog, the apps' key and their tokens (which check the owner's rules file) take a while to make: off
        # the event loop; and before the data directory, which a car that cannot start does not make
        catalog = await asyncio.to_thread(load_catalog, vss, [*car_overlays(every), *(overlay or [])])
        keys = await asyncio.to_thread(AppKeys.generate)
        tokens = await asyncio.to_thread(lambda: {app.name: keys.token(app, catalog, settings) for app in chosen})
        with datadir.claim(directory):
            console.print(f"data directory: {directory}", highlight=False)
            socket = app_socket()
            try:
                broker = Broker(catalog)
                config = ServerConfig(address=address, jwt_public_key=jwt_public_key, jwt_issuer=jwt_issuer,
                                      tls_cert=tls_cert, tls_key=tls_key, app_socket=socket, app_key=keys.public_pem,
                                      audit_journal=directory / JOURNAL_NAME)
                supervisor = Supervisor(broker, chosen, f"unix:{socket}", tokens, settings, directory)
                started = asyncio.Event()

                async def announce(stop: asyncio.Event) -> None:
                    """Say when the car is ready (and which apps are not); run until ``stop``."""
                    waiting, stopping = asyncio.create_task(started.wait()), asyncio.create_task(stop.wait())
                    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    if started.is_set():
                        states = {c.app.name: c.state for c in supervisor.children.values()}
                        console.print(f"car ready in {time.monotonic() - begun:.1f} s: "
                                      + ", ".join(f"{n} {s.lower()}" for n, s in states.items()), highlight=False)
                    await stopping

                await serve(broker, config, "evos car",
                            [lambda stop: supervisor.run(stop, started), announce], no_opening(broker))
            finally:
                shutil.rmtree(socket.parent, ignore_errors=True)

    run_async(main())


def apps_command(address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
                 tls_ca: CaOpt = None,
                 as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
                 ) -> None:
    """The apps of a running car: state, restarts, CPU and memory of each process."""

    async def main() -> dict[str, dict[str, Any]]:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            try:
                signals = await client.signals(APPS)
            except EvosError:
                raise InvalidArgumentError(f"the broker at {address} runs no supervised apps (start the car with "
                                           "'evos up')") from None
            values = await client.get_many([s.path for s in signals])
        apps: dict[str, dict[str, Any]] = {}
        for path, dp in values.items():
            name, field = path[len(APPS) + 1:].split(".", 1)
            apps.setdefault(name, {})[field] = dp.value
        return apps

    apps = run_async(main())
    if as_json:
        print(json.dumps(apps, indent=1))
        return
    table = Table(title="apps of the car")
    for column in ("app", "state", "restarts", "CPU %", "memory MiB", "last error"):
        table.add_column(column)
    for name, v in apps.items():
        cpu, memory = v.get("CpuUsage"), v.get("MemoryUsage")
        table.add_row(name, str(v.get("State") or "n/a"), str(v.get("Restarts") or 0),
                      f"{cpu:.1f}" if isinstance(cpu, float) else "", f"{memory:.0f}" if isinstance(memory, float)
                      else "", str(v.get("LastError") or ""))
    console.print(table)


app_cli = typer.Typer(name="app", no_args_is_help=True, help="One app of the car, alone.")


@app_cli.callback()
def app_group() -> None:
    """One app of the car, alone (a group even with one command: ``evos app run`` is started by itself too)."""


@app_cli.command("run")
def app_run_command(
    name: Annotated[str, typer.Argument(help="The app: twin, body, adas, media, cabin, companion, mqtt or "
                                             "automations.")],
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None, data_dir: DataDirOpt = None, vehicle: VehicleOpt = "xiaomi-su7",
    plugged_in: PluggedOpt = False, charger_kw: ChargerOpt = 11.0, ambient: AmbientOpt = 20.0,
    http: HttpOpt = "127.0.0.1:8000", database_url: DatabaseOpt = None, mqtt: MqttOpt = None,
    mqtt_config: MqttConfigOpt = None, automations: AutomationsOpt = None,
) -> None:
    """Run one app against a broker (evos's, or any KUKSA-compatible one carrying the app's signals: 'evos broker
    --apps NAME'), until Ctrl-C. 'evos up' runs each app this way."""
    try:
        app = app_named(name)
    except InvalidArgumentError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    settings = _settings(vehicle, plugged_in, charger_kw, ambient, http, database_url, mqtt, mqtt_config, automations)
    car = Connection.of(address, token, token_file, tls_ca)
    directory = datadir.resolve(data_dir)
    run_async(_run_one(app, car, settings, directory))
    # the app saved and closed what it keeps: skip the interpreter's teardown of every module (about half a second
    # for the companion's web stack), so that the car stops within its bound
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def _run_one(app: App, car: Connection, settings: CarSettings, directory: Path) -> None:
    import signal

    logging.getLogger("evos").setLevel(logging.INFO)  # an app's process says what it does (its supervisor shows it)
    env = AppEnv(settings, directory, on_ready=_ready)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, env.stop.set)
    beat = asyncio.create_task(_alive(env.stop))
    try:
        with datadir.claim(directory, app.name):
            async with car.client(name=app.name) as port:
                await port.signals()  # every signal's metadata, once: publishing then needs no request for it
                await run_app(app, port, env)
    finally:
        beat.cancel()
    if not os.environ.get("EVOS_SUPERVISED"):
        console.print(f"{app.name} stopped", style="dim")


def _ready() -> None:
    """Tell the supervisor the app is up. What it made to start (modules, catalog, web stack) stays for its life:
    moved out of the garbage collector's sight, so that its passes stay short (the control loop's deadline)."""
    import gc

    gc.freeze()
    notify(READY)


async def _alive(stop: asyncio.Event) -> None:
    """Tell the supervisor once a second that this app's event loop runs; stop the app (saving what it keeps) when
    the supervisor is gone (killed: its apps must not run on without it, holding the car's data)."""
    supervisor = os.getppid()
    while not stop.is_set():
        if os.environ.get("EVOS_SUPERVISED") and os.getppid() != supervisor:
            logging.getLogger("evos.car").error("the car's supervisor is gone: stopping")
            stop.set()
            return
        notify(ALIVE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def broker_command(
    address: Annotated[str, typer.Option("--address", "-a", envvar="EVOS_BROKER_ADDRESS",
                                         help="Listen on HOST:PORT (port 0 picks a free one).")] = DEFAULT_ADDRESS,
    vss: VssOpt = None,
    overlay: OverlayOpt = None,
    jwt_public_key: JwtOpt = None,
    jwt_issuer: JwtIssuerOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    audit_journal: AuditJournalOpt = None,
    apps: Annotated[str | None, typer.Option(
        "--apps", help="Add the signals these apps need (comma-separated, or all), to run them against this broker "
                       "with 'evos app run NAME'.")] = None,
) -> None:
    """Run the vehicle data broker alone (KUKSA-compatible gRPC, kuksa.val.v1 and v2)."""
    overlays: list[Any] = [*(overlays_of(_chosen(apps, None)) if apps else []), *(overlay or [])]
    serve_command("evos broker", address, vss, overlays, jwt_public_key, jwt_issuer, tls_cert, tls_key, audit_journal)


catalog_cli = typer.Typer(name="catalog", no_args_is_help=True, help="The car's signal catalog.")


@catalog_cli.command("export")
def catalog_export_command(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write to this file (default: standard output).", dir_okay=False)] = None,
    vss: VssOpt = None,
    overlay: OverlayOpt = None,
) -> None:
    """Write the catalog 'evos up' serves, every app's signals included (VSS 6.0 plus evos' overlays, the apps'
    Vehicle.Evos.Apps.* and any --overlay), as a VSS JSON tree: the format of 'vss-tools export json', which
    Velocitas' model generator (gen-model) and --vss read."""
    try:
        text = json.dumps(car_catalog(vss, overlay or ()).to_tree(), indent=1, ensure_ascii=False) + "\n"
    except EvosError as exc:
        raise fail(str(exc)) from None
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise fail(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    console.print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the car's commands to the evos CLI."""
    app.command("up")(up_command)
    app.command("apps")(apps_command)
    app.add_typer(app_cli)
    app.add_typer(catalog_cli)
    app.command("broker")(broker_command)
