"""The terminals every evos command writes to, and its one way of failing with a message."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (exit code 1 by default)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)
