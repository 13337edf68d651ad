"""``evos automations check|log`` and ``evos up --automations``: what a user sees for a good file, a bad one, and
no log; a bad rules file stops ``evos up`` before any app starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import free_port

BAD = 'rules:\n  - name: x\n    when: {becomes: "Vehicle.Sped > 3"}\n    do: [{set: {Vehicle.Speed: 3}}]\n'
GOOD = ('rules:\n  - name: warm seat\n    when: {becomes: "Vehicle.Speed > 3"}\n'
        '    do: [{set: {Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling: 30}}]\n')


def _evos(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evos", *args], capture_output=True, text=True, timeout=60,
                          env={"EVOS_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_check_says_what_a_good_file_does_and_names_the_mistake_of_a_bad_one(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    good = _evos("automations", "check", str(tmp_path / "good.yaml"), data_dir=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "warm seat" in good.stdout and "1 rules" in good.stdout
    bad = _evos("automations", "check", str(tmp_path / "bad.yaml"), data_dir=tmp_path)
    assert bad.returncode == 1
    assert "rule 'x'" in bad.stderr and "Vehicle.Sped" in bad.stderr and "Vehicle.Speed?" in bad.stderr


def test_log_without_a_log_says_so(tmp_path: Path) -> None:
    result = _evos("automations", "log", data_dir=tmp_path)
    assert result.returncode == 1
    assert "no automations log" in result.stderr
    assert not (tmp_path / "automations.sqlite").exists()


def test_up_with_a_bad_rules_file_stops_before_any_app(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    data = tmp_path / "car"
    result = _evos("up", "--address", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}",
                   "--apps", "twin,automations", "--automations", str(tmp_path / "bad.yaml"), data_dir=data)
    assert result.returncode == 1
    assert "Vehicle.Sped" in result.stderr
    assert "car ready" not in result.stdout
    assert not data.exists()  # a car that did not start makes no data directory
