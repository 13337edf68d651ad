"""The terminals every evos command writes to, its one way of failing with a message, and its event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from evos.errors import EvosError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (exit code 1 by default)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


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
