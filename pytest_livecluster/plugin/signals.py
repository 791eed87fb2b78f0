"""Signals: SIGTERM ends a run as Ctrl-C does. The one owner of the plugin's signal handlers.

A CI job that times out, a service manager stopping a watch, ``kill PID``:
each sends SIGTERM, whose default action ends the process at once, without
pytest's session end (no JSON report, no JUnit XML, no alerts, a recording
cut short). While a run with ``--live-cluster`` is in progress, SIGTERM
instead raises :class:`KeyboardInterrupt` in the main thread, so pytest's own
interrupt path runs ``pytest_sessionfinish`` and every file is written.

Only the main thread can install a handler; elsewhere (a run inside a thread)
nothing is installed. The previous handler is put back when the run ends, so
a second SIGTERM during the session's end acts as it did before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["install_sigterm_interrupt", "sigterm_interrupts"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_sigterm_interrupt() -> Callable[[], None]:
    """Make SIGTERM raise KeyboardInterrupt; return what puts the previous handler back.

    Outside the main thread this installs nothing and returns a no-op. The
    returned callable may be called more than once.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: Any = signal.signal(signal.SIGTERM, _interrupt)
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            signal.signal(signal.SIGTERM, previous)

    return restore


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """For the duration of the block, SIGTERM stops the main thread as Ctrl-C does."""
    restore = install_sigterm_interrupt()
    try:
        yield
    finally:
        restore()
