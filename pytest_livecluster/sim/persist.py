"""What a simulated process keeps across a restart, like a container's volume.

A restarted process comes back on the same ports (so its ``/logs`` URL and
control URL stay valid), with the next boot number, the module it had
installed, the faults it was left with and, for the orchestrator, the next
intent number (so intent ids never repeat). Its counters start again from
zero, as a real process's would. The file is replaced atomically
(:func:`pytest_livecluster._files.write_atomic`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._files import write_atomic
from .faults import Table

__all__ = ["Saved", "load", "save"]


@dataclass
class Saved:
    boot: int = 0
    log_port: int = 0
    control_port: int = 0
    module: str | None = None
    faults: Table | None = None
    next_intent: int = 1


def load(path: Path | None) -> Saved | None:
    """The saved state, or None when there is none yet (a first start)."""
    if path is None:
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    known = Saved.__dataclass_fields__
    return Saved(**{key: value for key, value in data.items() if key in known})


def save(path: Path | None, saved: Saved) -> None:
    if path is not None:
        write_atomic(path, json.dumps(asdict(saved)))
