"""``evos mqtt``: check the bridge's configuration, and remove the car from a home's MQTT server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evos._console import console, fail, run_async
from evos.ecosystem._config import BridgeConfig, bridge_config
from evos.errors import EvosError

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
