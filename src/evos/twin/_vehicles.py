"""Vehicle presets shipped with evos (``data/vehicles/*.toml``) and loading by name or path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evos.twin._config import Vehicle, VehicleFileError, read_vehicle_file


def _preset_dir() -> Path:
    return Path(str(resources.files("evos.twin").joinpath("data", "vehicles")))


def list_vehicles() -> list[str]:
    """Names of the presets (file names without ``.toml``)."""
    return sorted(p.stem for p in _preset_dir().glob("*.toml"))


def load_vehicle(name_or_path: str | Path) -> Vehicle:
    """A preset by name (``tesla-model-3-rwd-2022``) or a vehicle file (TOML or YAML)."""
    preset = _preset_dir() / f"{name_or_path}.toml"
    if preset.exists():
        return read_vehicle_file(preset)
    path = Path(name_or_path)
    if path.suffix.lower() in (".toml", ".yaml", ".yml") or path.exists():
        return read_vehicle_file(path)
    raise VehicleFileError(str(name_or_path), None,
                           f"not a preset ({', '.join(list_vehicles())}) and not a vehicle file")
