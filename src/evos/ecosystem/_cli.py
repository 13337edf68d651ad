"""``evos mqtt``: check the bridge's configuration, and remove the car from a home's MQTT server; ``evos
automations``: check a rules file, read the firings' log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from evos._console import console, fail, run_async
from evos.app import CarSettings
from evos.ecosystem._config import BridgeConfig, bridge_config
from evos.errors import EvosError
from evos.vss import Catalog

app = typer.Typer(name="mqtt", no_args_is_help=True,
                  help="The MQTT bridge to the home (Home Assistant, evcc): 'evos up --mqtt URL' runs it.")
UrlOpt = Annotated[str | None, typer.Option("--mqtt", envvar="EVOS_MQTT",
                                            help="The server: mqtt://[USER[:PASSWORD]@]HOST[:PORT] or mqtts://...")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="The bridge's YAML file (docs/ecosystem.md).",
                                                exists=True, dir_okay=False)]


def _config(config: Path | None, url: str | None) -> BridgeConfig:
    try:
        return bridge_config(config, url)
    except EvosError as exc:
        raise fail(str(exc)) from None


@app.command("check")
def check_command(config: ConfigOpt = None, mqtt: UrlOpt = None) -> None:
    """Check the bridge's configuration and say what it does (nothing is connected)."""
    c = _config(config, mqtt)
    console.print(f"server {c.server} (MQTT {'5' if c.mqtt5 else '3.1.1'}), client id {c.client_id}, base topic "
                  f"{c.base_topic}", highlight=False)
    console.print(f"publishes {len(c.publish)} paths or branches; takes commands for {len(c.commands)}; opening "
                  f"the car over MQTT: {'allowed (the owner opted in)' if c.allow_opening else 'refused'}; "
                  f"Home Assistant discovery: {'on, ' + c.discovery_prefix if c.home_assistant else 'off'}",
                  highlight=False)


@app.command("forget")
def forget_command(config: ConfigOpt = None, mqtt: UrlOpt = None) -> None:
    """Remove the car from the home: clear its Home Assistant device and every retained topic the bridge left
    (run it with the bridge stopped, or it publishes them again)."""
    from evos.ecosystem._bridge import forget

    cleared = run_async(forget(_config(config, mqtt)))
    console.print(f"cleared {len(cleared)} retained topics, Home Assistant's device among them", highlight=False)


automations_app = typer.Typer(name="automations", no_args_is_help=True,
                              help="The owner's automations (docs/automations.md): 'evos up --automations FILE' runs "
                                   "them.")
_catalog_of_the_car: list[Callable[[], Catalog]] = []


def use_catalog(load: Callable[[], Catalog]) -> None:
    """Where ``evos automations check`` gets the car's catalog (the CLI's assembly of the car gives it)."""
    _catalog_of_the_car[:] = [load]


@automations_app.command("check")
def automations_check_command(
    file: Annotated[Path, typer.Argument(help="The rules file.", exists=True, dir_okay=False)],
    mqtt: UrlOpt = None,
) -> None:
    """Check a rules file against the car's catalog and say what each rule does (nothing runs)."""
    from evos.ecosystem._automations import car_server
    from evos.ecosystem._rules import load_rules

    try:
        server = car_server(CarSettings(mqtt=mqtt)) if mqtt else None
        rules = load_rules(file, _catalog_of_the_car[0](), server)
    except EvosError as exc:
        raise fail(str(exc)) from None
    for rule in rules.rules:
        actions = ", ".join(type(a).__name__.lower() for a in rule.actions)
        console.print(f"{rule.name}: when {rule.when.text}{' if ' + rule.only_if.text if rule.only_if else ''} → "
                      f"{actions}", highlight=False)
    console.print(f"{len(rules.rules)} rules; they read {len(rules.reads)} signals and set {len(rules.actuates)}"
                  + (f"; MQTT server {rules.mqtt.server}" if rules.mqtt else ""), highlight=False)


@automations_app.command("log")
def automations_log_command(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="The car's data directory (default: $EVOS_DATA_DIR or the user data dir).",
        file_okay=False)] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule's firings.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many firings, newest first.", min=1, max=100_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
) -> None:
    """The automations' firings: when, which rule, what triggered it, each action and its outcome."""
    from rich.table import Table

    from evos import datadir
    from evos.ecosystem._automations import LOG_NAME, read_log

    try:
        rows = read_log(datadir.resolve(data_dir) / LOG_NAME, rule, limit)
    except EvosError as exc:
        raise fail(str(exc)) from None
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row))
        return
    table = Table("time", "rule", "trigger", "outcomes")
    for row in rows:
        when = dt.datetime.fromtimestamp(row["time_s"]).isoformat(sep=" ", timespec="seconds")
        table.add_row(when, row["rule"], row["trigger"], "; ".join(row["outcomes"] or ["(running)"]))
    console.print(table)
