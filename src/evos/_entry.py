"""The ``evos`` command's entry point: an app's process (``evos app run NAME``, as ``evos up`` starts every app)
loads that command alone, not the whole command line with every part behind it (which would cost each of the
car's processes about a second and tens of MB)."""

from __future__ import annotations

import logging
import sys


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if sys.argv[1:3] == ["app", "run"]:
        from evos.car._cli import app_cli

        app_cli(args=sys.argv[2:], prog_name="evos app")
        return
    from evos.cli import app

    app()
