"""The terminals every evos command writes to, its one way of failing with a message, its event loop, and its
plotting."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from evos.errors import EvosError, InvalidArgumentError, NotPermittedError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (exit code 1 by default)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def check_outputs(*paths: Path | None) -> None:
    """Fail before any work when an output file (``--json``, ``--plot``, ``--csv``) cannot be written: its folder
    is missing or not writable. ``None`` (option not given) is skipped; the options refuse folders themselves."""
    for path in paths:
        if path is None:
            continue
        folder = path.resolve().parent
        if not folder.is_dir():
            raise fail(InvalidArgumentError(f"{path}: the folder {folder} does not exist"))
        if not os.access(folder, os.W_OK):
            raise fail(NotPermittedError(f"{path}: the folder {folder} is not writable"))


def pyplot() -> Any:
    """matplotlib's pyplot drawing to files only (the Agg backend: no display needed), loaded when a command
    first plots: matplotlib takes a while to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine (on uvloop where installed), turning evos errors into a one-line message and exit 1."""
    try:
        try:
            import uvloop
        except ImportError:  # not on this platform
            return asyncio.run(main)
        return uvloop.run(main)
    except EvosError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
