"""The terminals every evos command writes to, its one way of failing with a message, its event loop, and its
plotting."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from evos.errors import EvosError, InvalidArgumentError, NotPermittedError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)
LOOP_DEBUG = "EVOS_LOOP_DEBUG"  # =1: asyncio's debug mode, and an error for every callback over 100 ms of CPU
SLOW_CALLBACK_S = 0.1
SLOW_CALLBACK = "slow callback"  # the start of what watch_callbacks logs (tests look for it)
loop_log = logging.getLogger("evos.loop")


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (exit code 1 by default)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def quiet_debug_mode() -> None:
    """Make asyncio's debug mode cheap enough to time callbacks by: in debug mode every future records where it was
    made, with source lines, and ``linecache`` checks each source file of the stack on disk every time (tens of
    microseconds a file, slower in a sandbox); the car's files do not change while it runs, so skip the check. The
    origin of coroutines is not recorded either. What debug mode is for here, the timing of every callback, stays."""
    import linecache
    import sys

    linecache.checkcache = lambda filename=None: None
    sys.set_coroutine_origin_tracking_depth(0)


def watch_callbacks(threshold_s: float = SLOW_CALLBACK_S) -> None:
    """Log (``evos.loop``, ERROR, starting ``SLOW_CALLBACK``) every callback of an asyncio loop in this process that
    used more than ``threshold_s`` of CPU: work that blocks the loop. CPU, not wall-clock time, because on a loaded
    machine a callback also waits for the processor (asyncio's debug mode reports that, as a warning). The cyclic
    garbage collector's passes are not counted against the callback they fall in (they strike wherever memory is
    allocated, and the log line names their share; an app freezes its startup objects to keep them short). Wraps
    ``asyncio.Handle._run``, as aiodebug does; a diagnostic for tests and ``EVOS_LOOP_DEBUG``, not for a car."""
    import gc
    import threading
    from asyncio import events

    run = events.Handle._run
    if getattr(run, "__wrapped__", None) is not None:
        return  # already watched
    collecting = threading.local()

    def on_collect(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting.start_s = time.thread_time()
        elif (start_s := getattr(collecting, "start_s", None)) is not None:
            collecting.total_s = getattr(collecting, "total_s", 0.0) + time.thread_time() - start_s
            collecting.start_s = None

    def timed(handle: events.Handle) -> None:
        cpu_s, wall_s, gc_s = time.thread_time(), time.perf_counter(), getattr(collecting, "total_s", 0.0)
        run(handle)
        gc_s = getattr(collecting, "total_s", 0.0) - gc_s
        cpu_s = time.thread_time() - cpu_s - gc_s
        if cpu_s > threshold_s:
            # a task's step: name the task and where it is
            task = getattr(getattr(handle, "_callback", None), "__self__", None)
            loop_log.error("%s: %s used %.3f s of CPU (%.3f s in all, %.3f s of it collecting garbage)",
                           SLOW_CALLBACK, task if isinstance(task, asyncio.Task) else handle, cpu_s,
                           time.perf_counter() - wall_s, gc_s)

    gc.callbacks.append(on_collect)
    timed.__wrapped__ = run  # type: ignore[attr-defined]
    events.Handle._run = timed  # type: ignore[method-assign,assignment]


async def _slow_callbacks_logged(main: Coroutine[Any, Any, T]) -> T:
    quiet_debug_mode()
    watch_callbacks()
    asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK_S
    return await main


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
    """Run a coroutine (on uvloop where installed), turning evos errors into a one-line message and exit 1.

    With ``EVOS_LOOP_DEBUG=1`` it runs on asyncio's own loop in debug mode, which logs (``asyncio``, WARNING)
    every callback that held the loop longer than ``SLOW_CALLBACK_S``, and ``watch_callbacks`` logs (``evos.loop``,
    ERROR) every one that used that much CPU: the tests run the car so and fail on one.
    """
    try:
        if os.environ.get(LOOP_DEBUG) == "1":
            return asyncio.run(_slow_callbacks_logged(main), debug=True)
        try:
            import uvloop
        except ImportError:  # not on this platform
            return asyncio.run(main)
        return uvloop.run(main)
    except EvosError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
