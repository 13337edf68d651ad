"""The committed sdv.databroker.v1 modules are what scripts/gen_sdv_v1.py makes of the vendored protos (nobody
edited them by hand, and they were regenerated after the protos changed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "evos" / "broker" / "sdv_v1"


def test_the_generated_modules_are_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_sdv_v1", ROOT / "scripts" / "gen_sdv_v1.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.generate(tmp_path)
    made = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in PACKAGE.glob("*_pb2*"))
    assert made == committed
    for name in made:
        assert (tmp_path / name).read_text() == (PACKAGE / name).read_text(), f"{name}: not what the script makes"
