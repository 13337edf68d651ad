"""`evos users` and `evos pair`: accounts and pairing codes in the companion database of a data directory."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from companion.car import PASSWORD, PhoneKey, grant_password
from evos.companion._cli import app, pair_command
from evos.companion._config import CompanionConfig
from evos.companion._db import Database
from evos.companion._errors import GrantError
from evos.companion._keys import pair_key

runner = CliRunner()


def test_users_add_list_remove(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["add", "alice", "--password-stdin", *data], input=f"{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    config = CompanionConfig.for_data_dir(tmp_path)
    db = Database(config.database_url)
    try:
        tokens = db.call(grant_password, "alice", PASSWORD, None, time.time(), config)
        assert tokens["access_token"].startswith("evat_")
        again = runner.invoke(app, ["add", "alice", "--password-stdin", *data], input=f"{PASSWORD}\n")
        assert again.exit_code == 1 and "already exists" in again.output
        short = runner.invoke(app, ["add", "bob", "--password-stdin", *data], input="short\n")
        assert short.exit_code == 1 and "8 to 1024 characters" in short.output
        listed = runner.invoke(app, ["list", *data])
        assert "alice" in listed.output and "bob" not in listed.output
        assert runner.invoke(app, ["remove", "alice", *data]).exit_code == 0
        with pytest.raises(GrantError):
            db.call(grant_password, "alice", PASSWORD, None, time.time(), config)
        missing = runner.invoke(app, ["remove", "alice", *data])
        assert missing.exit_code == 1 and "no user named 'alice'" in missing.output
    finally:
        db.close()


def test_pair_shows_a_code_that_pairs_a_key_once(tmp_path: Path) -> None:
    assert runner.invoke(app, ["add", "owner", "--password-stdin", "--data-dir", str(tmp_path)],
                         input=f"{PASSWORD}\n").exit_code == 0
    pair_app = typer.Typer()
    pair_app.command()(pair_command)
    shown = runner.invoke(pair_app, ["--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    match = re.search(r"pairing code: (\d{6})", shown.output)
    assert match is not None
    db = Database(CompanionConfig.for_data_dir(tmp_path).database_url)
    try:
        paired = db.call(pair_key, 1, match.group(1), PhoneKey().public_b64, "phone", time.time())
        assert len(paired["id"]) == 22
    finally:
        db.close()


def test_a_database_url_that_is_not_one_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--database-url", "nonsense://x"])
    assert result.exit_code == 1 and "not a usable database URL" in result.output


def test_reading_accounts_of_a_folder_without_a_car_fails_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "cra"  # a mistyped --data-dir
    for args in (["list"], ["remove", "alice"]):
        result = runner.invoke(app, [*args, "--data-dir", str(typo)])
        message = " ".join(result.output.split())  # the console wraps long lines
        assert result.exit_code == 1 and "no accounts here" in message and "'evos users add NAME" in message, message
    assert not typo.exists()
