"""The car: its apps put together, in one process (``local_car``) or each in its own (``Supervisor``, ``evos up``).

``car_apps()`` is the one assembly of the car: the twin, the body hardware, driver assistance, the media player,
the cabin and the companion (with the centre screen on its web server), in the order they start, and, when the
owner asks for them, the MQTT bridge to the home and the automations. The CLI, the
assistant's parked car and the tests all take the car from here. ``app_named`` imports only the app asked for, so
an app's process loads nothing of the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evos.app import App, CarSettings, overlays_of
from evos.car._local import LocalCar, local_car, permissions_of
from evos.car._supervisor import AppKeys, Supervisor, apps_overlay, notify
from evos.errors import InvalidArgumentError
from evos.vss import Catalog, load_catalog

# name -> (module, attribute) of every app of the car, in the order they start
APPS = {
    "twin": ("evos.twin._provider", "TWIN_APP"),
    "body": ("evos.twin._body", "BODY_APP"),
    "adas": ("evos.adas._service", "ADAS_APP"),
    "media": ("evos.cabin._media", "MEDIA_APP"),
    "cabin": ("evos.cabin._service", "CABIN_APP"),
    "companion": ("evos.car._companion", "COMPANION_APP"),
    "mqtt": ("evos.ecosystem._bridge", "MQTT_APP"),
    "automations": ("evos.ecosystem._automations", "AUTOMATIONS_APP"),
}
# run when the owner asks for them (``evos up --mqtt``, ``--automations``), not by default
OPTIONAL = ("mqtt", "automations")


def app_named(name: str) -> App:
    """The car's app ``name``; InvalidArgumentError naming the apps there are."""
    if name not in APPS:
        raise InvalidArgumentError(f"no app {name!r}; the car's apps: {', '.join(APPS)}")
    module, attribute = APPS[name]
    app: App = getattr(importlib.import_module(module), attribute)
    return app


def car_apps(settings: CarSettings | None = None, every: bool = False) -> list[App]:
    """Every app of the car, in the order they start: with the optional ones ``settings`` asks for (the MQTT
    bridge, the automations), or all of them (``every``)."""
    wanted = {"mqtt": settings is not None and settings.bridged,
              "automations": settings is not None and settings.automations is not None}
    return [app_named(name) for name in APPS if every or wanted.get(name, True)]


def car_overlays(apps: list[App]) -> list[Any]:
    """What the car's broker adds to VSS 6.0 for ``apps``: their overlays, and the supervisor's
    ``Vehicle.Evos.Apps.*`` of the broker and each app (``evos up``'s catalog)."""
    return [*overlays_of(apps), apps_overlay(["Broker", *(app.signal_name for app in apps)])]


def car_catalog(vss: Path | None = None, overlays: Iterable[Any] = ()) -> Catalog:
    """The catalog of the car with every app, whatever ``evos up`` runs (``vss`` instead of VSS 6.0, and the
    owner's ``overlays`` on top): what ``evos catalog export`` writes and rules files are checked against."""
    return load_catalog(vss, [*car_overlays(car_apps(every=True)), *overlays])


__all__ = ["APPS", "AppKeys", "LocalCar", "Supervisor", "app_named", "apps_overlay", "car_apps", "car_catalog",
           "car_overlays", "local_car", "notify", "permissions_of"]
