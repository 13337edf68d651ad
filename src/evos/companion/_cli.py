"""Command-line shells of the companion: ``evos users`` (accounts) and ``evos pair`` (a pairing code for a phone)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from evos import datadir
from evos._console import console, fail
from evos.companion._config import DB_NAME, CompanionConfig, default_database_url
from evos.errors import EvosError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The database and account modules (SQLAlchemy, argon2: ~0.5 s to import) are imported inside the commands, so that
# registering these commands costs every other evos command nothing.

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help=f"Where the car keeps its state (default: ${datadir.ENV_VAR} or the user data dir).",
    file_okay=False)]
DatabaseOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="EVOS_DATABASE_URL",
    help="SQLAlchemy URL of the companion database (default: SQLite companion.sqlite in the data dir; "
         "postgresql+psycopg://... accepted).")]

T = TypeVar("T")
app = typer.Typer(name="users", no_args_is_help=True, help="The car's owner accounts (for the phone app and API).")


def _with_db(data_dir: Path | None, database_url: str | None, action: Callable[[Session], T],
             create: bool = True) -> T:
    """Run ``action`` in a session of the companion database. ``create=False`` (reading, removing): a data
    directory without a database is an error, not a new empty database in a mistyped folder."""
    from evos.companion._db import Database

    try:
        directory = datadir.resolve(data_dir)
        if database_url is None and not create and not (directory / DB_NAME).is_file():
            raise fail(f"{directory}: no accounts here (no {DB_NAME}); create the owner with 'evos users add NAME "
                       f"--data-dir {directory}'")
        if database_url is None:
            directory.mkdir(parents=True, exist_ok=True)
        db = Database(database_url or default_database_url(directory))
    except (EvosError, OSError) as exc:
        raise fail(str(exc)) from None
    try:
        return db.call(action)
    except EvosError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()


@app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ @ -).")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (first line) instead of prompting.")] = False,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create an account (the first one is the car's owner)."""
    from evos.companion import _accounts as accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _with_db(data_dir, database_url, lambda s: accounts.add_user(s, name, password, time.time()))
    console.print(f"user [bold]{name}[/] added", highlight=False)


@app.command("list")
def list_command(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List the accounts."""
    from evos.companion import _accounts as accounts

    rows = _with_db(data_dir, database_url,
                    lambda s: [(u.name, u.created_at) for u in accounts.list_users(s)], create=False)
    table = Table("name", "created")
    for user_name, created_at in rows:
        table.add_row(user_name, datetime.fromtimestamp(created_at).isoformat(timespec="seconds"))
    console.print(table)


@app.command("remove")
def remove_command(
    name: Annotated[str, typer.Argument(help="The user to remove (with their tokens and phone keys).")],
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Remove an account, its tokens and its phone keys."""
    from evos.companion import _accounts as accounts

    _with_db(data_dir, database_url, lambda s: accounts.remove_user(s, name), create=False)
    console.print(f"user [bold]{name}[/] removed", highlight=False)


def pair_command(
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    lifetime: Annotated[float, typer.Option("--lifetime", help="How long the code works, seconds.",
                                            min=10, max=3600)] = 300.0,
) -> None:
    """Show a pairing code for a phone: type it into the app's "Pair this phone" screen."""
    from evos.companion._keys import create_pairing_code

    attempts = CompanionConfig.pairing_code_attempts
    code, expires_at = _with_db(data_dir, database_url,
                                lambda s: create_pairing_code(s, time.time(), lifetime, attempts))
    until = datetime.fromtimestamp(expires_at).strftime("%H:%M:%S")
    console.print(f"pairing code: [bold]{code}[/] (valid until {until})", highlight=False)
