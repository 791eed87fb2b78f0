"""Reading back what the kit wrote: lines replayed into the plugin's state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pytest_livecluster import State
from pytest_livecluster.methodology.views import Counts, Views

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "writer"
COUNTERS = ("intents.*.resolution.*.item_scraped.*", "intents.*.resolution.*.received")
#: How long a test waits for something that happens in well under a second.
PATIENCE = 60.0


def complete_lines(path: Path) -> list[bytes]:
    """The lines of ``path`` that end with a newline (a writer may be mid-line)."""
    data = path.read_bytes() if path.exists() else b""
    return data.split(b"\n")[:-1]


def replay(lines: Iterable[bytes | str]) -> State:
    """A fresh state fed every line; each must be accepted."""
    state = State(counters=COUNTERS)
    Views(state)  # the views' projection must see every line
    for line in lines:
        assert state.ingest(line), line
    return state


def replay_files(*paths: Path) -> State:
    return replay(line for path in paths for line in complete_lines(path))


def counts(state: State) -> Counts:
    """The counter totals the plugin's views read."""
    return Views(state).counts()


def sent(state: State) -> int | float:
    return counts(state).sent


def by_scraper(state: State) -> dict[str, dict[str, int | float]]:
    return counts(state).by_scraper


def writers(lines: Iterable[bytes | str], intent: str = "i-1") -> dict[str, list[Any]]:
    """Per writer key under ``intents.<intent>.resolution``: its answers, in line order."""
    found: dict[str, list[Any]] = {}
    for line in lines:
        shard = json.loads(line)
        resolution = shard.get("intents", {}).get(intent, {}).get("resolution", {})
        for writer, answer in resolution.items():
            found.setdefault(writer, []).append(answer)
    return found


def wait_for(check: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
