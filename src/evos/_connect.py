"""How a command reaches a running car: the options every client command shares, read one way.

A car's broker may require a token (``evos broker --jwt-public-key``) and TLS (``--tls-cert``); every
command that talks to a running car takes ``--address``, ``--token`` or ``--token-file``, and ``--tls-ca``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the broker (and grpc) load only when a command connects: the others start faster
    from evos.broker import RemotePort

AddressOpt = Annotated[str, typer.Option(
    "--address", "-a", envvar="EVOS_BROKER_ADDRESS",
    help="gRPC address of the car's broker, HOST:PORT (or unix:/path).")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", envvar="EVOS_TOKEN", help="JWT bearer token, for a broker with authorization on.")]
TokenFileOpt = Annotated[Path | None, typer.Option(
    "--token-file", help="File holding the JWT bearer token (instead of --token).", exists=True, dir_okay=False)]
CaOpt = Annotated[Path | None, typer.Option(
    "--tls-ca", help="PEM root certificate: connect with TLS and trust this CA.", exists=True, dir_okay=False)]


@dataclass(frozen=True)
class Connection:
    """Where a running car's broker is and how to be let in."""

    address: str
    token: str | None = None
    tls_ca: Path | None = None

    @classmethod
    def of(cls, address: str, token: str | None, token_file: Path | None, tls_ca: Path | None) -> Connection:
        """From the command-line options: the token of ``token_file`` wins over ``token``."""
        if token_file is None:
            return cls(address, token, tls_ca)
        try:
            return cls(address, token_file.read_text("utf-8").strip(), tls_ca)
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read a token from {token_file}: {exc}",
                                     param_hint="--token-file") from None

    def client(self, name: str = "evos cli") -> RemotePort:
        """A port to the car (``async with`` it to connect)."""
        from evos.broker import RemotePort

        return RemotePort(self.address, token=self.token, root_cert=self.tls_ca, name=name)
