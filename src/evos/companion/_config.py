"""Settings of the companion service: where it listens, where it keeps its data, token lifetimes, limits.

Light on purpose (standard library only): every ``evos`` command imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evos.app import CarSettings

DB_NAME = "companion.sqlite"
# Scopes after the Tesla Fleet API's (vehicle_device_data, vehicle_location, vehicle_cmds, vehicle_charging_cmds).
SCOPES = ("vehicle_data", "vehicle_location", "vehicle_cmds", "charging_cmds")
OWNER = "owner"  # the owner's own sessions: manage app tokens, phone keys, pairing, the audit log
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def default_database_url(data_dir: Path) -> str:
    """The SQLite database the companion keeps in a car's data directory."""
    return f"sqlite:///{data_dir / DB_NAME}"


@dataclass(frozen=True)
class CompanionConfig:
    """How the companion web app and remote API run. Checked once at construction (ValueError names the field).

    Lifetimes are in seconds. The rate limit is a token bucket per API token: ``rate_per_s`` requests per
    second on average, bursts of up to ``rate_burst``.
    """

    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_lifetime_s: float = 15 * 60  # assumed: short-lived (minutes), refreshed by the app
    refresh_token_lifetime_s: float = 30 * 24 * 3600
    app_token_lifetime_s: float = 365 * 24 * 3600  # third-party app tokens, until revoked
    pairing_code_lifetime_s: float = 5 * 60
    pairing_code_attempts: int = 5  # wrong codes before a pairing code is spent (1e-6 guess odds each)
    envelope_max_lifetime_s: float = 5 * 60  # a signed command may not be valid longer than this
    rate_per_s: float = 10.0
    rate_burst: int = 30
    command_wait_s: float = 2.0  # how long a command waits for the car to report the new values
    trip_park_s: float = 60.0  # a trip ends after standing still this long
    # names the web app is reached by besides the loopback ones and the address it listens on: any other Host header
    # is refused (a DNS-rebinding page sends its own name)
    allowed_hosts: tuple[str, ...] = ()
    # the car's broker journal (actuations that came in over gRPC), shown in the audit log with the companion's own
    broker_journal: Path | None = None

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ValueError("database_url must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        for name in ("access_token_lifetime_s", "refresh_token_lifetime_s", "app_token_lifetime_s",
                     "pairing_code_lifetime_s", "envelope_max_lifetime_s", "rate_per_s", "command_wait_s",
                     "trip_park_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.rate_burst < 1:
            raise ValueError(f"rate_burst must be >= 1, got {self.rate_burst}")
        if self.pairing_code_attempts < 1:
            raise ValueError(f"pairing_code_attempts must be >= 1, got {self.pairing_code_attempts}")

    def trusted_hosts(self) -> list[str]:
        """The Host names the web app serves: loopback, the listening address, ``allowed_hosts``; listening on every
        interface, also this machine's names and addresses."""
        names = {*LOOPBACK_NAMES, *self.allowed_hosts}
        if self.host in WILDCARD_HOSTS:
            import socket

            import psutil

            names |= {socket.gethostname(), socket.getfqdn()}
            names |= {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs
                      if a.family in (socket.AF_INET, socket.AF_INET6)}
        else:
            names.add(self.host)
        # an IPv6 address comes in a Host header in brackets ([::1]:8000)
        return sorted({(f"[{n}]" if ":" in n else n).lower() for n in names})

    @classmethod
    def for_data_dir(cls, data_dir: Path, **changes: object) -> CompanionConfig:
        """The default configuration keeping its database in ``data_dir``."""
        return cls(database_url=default_database_url(data_dir), **changes)  # type: ignore[arg-type]

    @classmethod
    def for_car(cls, settings: CarSettings, data_dir: Path | None) -> CompanionConfig:
        """The configuration of a car's companion: its web address and database from the car's settings (default:
        SQLite in ``data_dir``). ValueError for an address that is not HOST:PORT."""
        host, _, port = settings.http.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"http address {settings.http!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
        if settings.database_url is None and data_dir is None:
            raise ValueError("the companion needs a database: give a data directory or a database URL")
        url = settings.database_url or default_database_url(data_dir)  # type: ignore[arg-type]
        from evos.broker import JOURNAL_NAME  # the car's broker keeps it in the car's data directory

        journal = data_dir / JOURNAL_NAME if data_dir is not None else None
        return cls(database_url=url, host=host.strip("[]"), port=int(port), broker_journal=journal)
