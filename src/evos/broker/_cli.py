"""Command-line shells of the broker: run it, and talk to a running one."""

from __future__ import annotations

import asyncio
import json
import signal as os_signal
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from evos._connect import AddressOpt, CaOpt, Connection, TokenFileOpt, TokenOpt
from evos._console import console, err_console, run_async
from evos.broker._access import Guard
from evos.broker._core import Broker, Datapoint
from evos.broker._remote import RemotePort
from evos.broker._server import DEFAULT_ADDRESS, BrokerServer, ServerConfig
from evos.errors import NotPermittedError
from evos.vss import Signal, load_catalog, parse_value

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
VssOpt = Annotated[Path | None, typer.Option(
    "--vss", help="VSS catalog JSON to load instead of the built-in VSS 6.0 (descriptions included).",
    exists=True, dir_okay=False)]
OverlayOpt = Annotated[list[Path] | None, typer.Option(
    "--overlay", help="Overlay file (JSON or vspec-style YAML) that adds or changes signals; repeatable.",
    exists=True, dir_okay=False)]
JwtOpt = Annotated[Path | None, typer.Option(
    "--jwt-public-key", help="PEM public key (RS256) that signs client tokens; turns authorization on.",
    exists=True, dir_okay=False)]
JwtIssuerOpt = Annotated[str | None, typer.Option(
    "--jwt-issuer", envvar="EVOS_JWT_ISSUER",
    help="Accept only client tokens whose issuer (the 'iss' claim) is this (with --jwt-public-key).")]
TlsCertOpt = Annotated[Path | None, typer.Option(
    "--tls-cert", help="PEM server certificate: serve TLS (needs --tls-key).", exists=True, dir_okay=False)]
TlsKeyOpt = Annotated[Path | None, typer.Option(
    "--tls-key", help="PEM private key of --tls-cert.", exists=True, dir_okay=False)]
AuditJournalOpt = Annotated[Path | None, typer.Option(
    "--audit-journal", help="SQLite file to write every actuation to (who asked, what, the outcome) before it is "
                            "carried out; one that cannot be written is refused. 'evos up' keeps one in its data "
                            "directory.", dir_okay=False)]


async def serve(broker: Broker, config: ServerConfig, banner: str,
                apps: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
                guard: Guard | None = None) -> None:
    """Serve until SIGINT/SIGTERM, running ``apps`` (each given the stop event) beside the server; ``guard``: see
    ``BrokerServer``."""
    server = BrokerServer(broker, config, guard)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (os_signal.SIGINT, os_signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not server.access.enabled:
        err_console.print(Panel(
            "[bold]Authorization is OFF.[/] Any client that reaches this address can read, publish and "
            "actuate every signal. Start with --jwt-public-key FILE to require tokens.",
            title="WARNING", border_style="bold red"))
    tls = "TLS" if config.tls_cert else "plaintext"
    console.print(f"[bold green]{banner}[/] listening on [bold]{server.address}[/] ({tls}, "
                  f"{len(broker.catalog)} signals, KUKSA kuksa.val.v1 + v2)", highlight=False)
    tasks = [asyncio.create_task(app(stop)) for app in apps]
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        console.print("stopping", style="dim")
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
    # what failed while stopping is an error too, not dropped
    failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    if failures:
        raise failures[0]


def serve_command(banner: str, address: str, vss: Path | None, overlay: Sequence[Any] | None,
                  jwt_public_key: Path | None, jwt_issuer: str | None, tls_cert: Path | None,
                  tls_key: Path | None, audit_journal: Path | None = None) -> None:
    """Run a broker server from command-line options until SIGINT/SIGTERM."""

    async def main() -> None:
        config = ServerConfig(address=address, jwt_public_key=jwt_public_key, jwt_issuer=jwt_issuer,
                              tls_cert=tls_cert, tls_key=tls_key, audit_journal=audit_journal)
        await serve(Broker(load_catalog(vss, overlay or ())), config, banner)

    run_async(main())


def _show(value: Any) -> str:
    if value is None:
        return "[dim]n/a[/]"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def signals_command(
    pattern: Annotated[str, typer.Argument(help="Path, branch or wildcard pattern, e.g. 'Vehicle.Cabin.**'.")] = "",
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None, as_json: JsonOpt = False,
) -> None:
    """List signals of a running broker with type, datatype, unit and current value."""

    async def main() -> None:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            found = await client.signals(pattern)
            try:
                values = await client.get_many([s.path for s in found])
            except NotPermittedError as exc:  # metadata is public, values need `read`
                err_console.print(f"[yellow]values not shown:[/] {exc}", highlight=False)
                values = {s.path: Datapoint(None) for s in found}
        if as_json:
            print(json.dumps([{**s.to_dict(), "path": s.path, "value": _plain(values[s.path].value)} for s in found],
                             indent=1))
            return
        table = Table(title=f"{len(found)} signals")
        for column in ("path", "type", "datatype", "unit", "value"):
            table.add_column(column, overflow="fold")
        for s in found:
            table.add_row(s.path, s.entry_type.value, s.datatype.value, s.unit or "", _show(values[s.path].value))
        console.print(table)

    run_async(main())


def get_command(
    paths: Annotated[list[str], typer.Argument(help="Signal paths to read.")],
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None, as_json: JsonOpt = False,
) -> None:
    """Read current values of signals ('n/a' for a signal never set)."""

    async def main() -> None:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            values = await client.get_many(paths)
        if as_json:
            print(json.dumps({p: {"value": _plain(dp.value), "timestamp_s": dp.timestamp_s}
                              for p, dp in values.items()}))
            return
        for path, dp in values.items():
            console.print(f"{path} = {_show(dp.value)}", highlight=False)

    run_async(main())


async def _parse(client: RemotePort, path: str, text: str) -> Any:
    signal: Signal = await client.signal(path)
    return parse_value(signal, text)


def set_command(
    path: Annotated[str, typer.Argument(help="Signal path.")],
    value: Annotated[str, typer.Argument(help="Value as text: 42, 21.5, true, 'text', [1,2] for arrays.")],
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None,
) -> None:
    """Publish the current value of a signal (as a provider would; needs 'provide' permission)."""

    async def main() -> None:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            await client.publish({path: await _parse(client, path, value)}, wait=True)
        console.print(f"{path} = {value}", highlight=False)

    run_async(main())


def actuate_command(
    path: Annotated[str, typer.Argument(help="Actuator path.")],
    value: Annotated[str, typer.Argument(help="Target value as text: 42, 21.5, true, 'text', [1,2].")],
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None,
) -> None:
    """Ask the car to move an actuator to a target value (fails if no provider serves it)."""

    async def main() -> None:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            await client.actuate({path: await _parse(client, path, value)})
        console.print(f"{path} -> {value} (sent to its provider)", highlight=False)

    run_async(main())


def watch_command(
    pattern: Annotated[str, typer.Argument(help="Path, branch or wildcard pattern to watch.")],
    address: AddressOpt = DEFAULT_ADDRESS, token: TokenOpt = None, token_file: TokenFileOpt = None,
    tls_ca: CaOpt = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", help="Stop after this many seconds (default: until Ctrl-C).", min=0)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each update as a JSON line, no table.")] = False,
) -> None:
    """Watch signals change live (a table refreshed on every update)."""

    async def main() -> None:
        async with Connection.of(address, token, token_file, tls_ca).client() as client:
            paths = [s.path for s in await client.signals(pattern)]
            latest: dict[str, Datapoint] = {}

            def table() -> Table:
                t = Table(title=f"{pattern or 'all'}: {len(paths)} signals")
                for column in ("path", "value", "age s"):
                    t.add_column(column)
                now = time.time()
                for path in paths:
                    dp = latest.get(path, Datapoint(None))
                    age = f"{now - dp.timestamp_s:.1f}" if dp.timestamp_s else ""
                    t.add_row(path, _show(dp.value), age)
                return t

            async def consume(live: Live | None) -> None:
                async with client.subscribe(paths) as updates:
                    async for batch in updates:
                        latest.update(batch)
                        if live is not None:
                            live.update(table())
                        else:
                            print(json.dumps({p: _plain(dp.value) for p, dp in batch.items()}), flush=True)

            try:
                if as_json:
                    await asyncio.wait_for(consume(None), duration)
                else:
                    with Live(table(), console=console, refresh_per_second=8) as live:
                        await asyncio.wait_for(consume(live), duration)
            except TimeoutError:
                pass

    run_async(main())


def register(app: typer.Typer) -> None:
    """Add the commands that talk to a running broker to the evos CLI (``evos broker`` itself is the car's: it
    knows the apps' signals)."""
    app.command("signals")(signals_command)
    app.command("get")(get_command)
    app.command("set")(set_command)
    app.command("actuate")(actuate_command)
    app.command("watch")(watch_command)


__all__ = ["register", "serve", "serve_command"]
