"""The faults the simulated cluster can be given, and the table that tracks them.

A fault is written ``NAME`` or ``NAME:KEY=VALUE[:KEY=VALUE...]``, for example
``lossy_spotter:share=0.5:host=spotter-2``; several are joined with ``+``
(``silent_scraper+error_burst``). Every fault takes ``host``, the process it
hits (``*`` for every process it can hit); the defaults are in
:data:`FAULTS`. A table maps each fault that is on to its complete parameters,
defaults filled in, and is what ``GET /faults`` answers.

``error_burst`` and ``crash_restart`` act once each time they are switched on
(at start or through the API); the others hold while they are on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "FAULTS",
    "ONE_SHOT",
    "FaultBook",
    "Params",
    "Table",
    "check_fault",
    "format_faults",
    "hits",
    "parse_faults",
]

Params = dict[str, str | int | float]
Table = dict[str, Params]

FAULTS: Final[dict[str, str]] = {
    "silent_scraper": "a scraper (host=, default scraper-1) never answers the intents it is given",
    "lossy_spotter": (
        "a spotter (host=, default spotter-1) drops a share of the items it receives "
        "(share=, default 0.3), so received < sent"
    ),
    "failed_update": (
        "module updates fail on a blade (host=, default every blade): it logs an UpdateFailed "
        "error and keeps its module"
    ),
    "error_burst": (
        "a process (host=, default scraper-1) logs a burst of structured errors (count=, "
        "default 5) and a Python traceback on stderr, once per switch-on"
    ),
    "crash_restart": (
        "a process (host=, default scraper-1) exits abruptly (after=, default 0.2 s) and its "
        "supervisor restarts it; it says hello again with the next boot number; once per "
        "switch-on"
    ),
    "slow_resolution": (
        "scrapers (host=, default every scraper) resolve intents factor= (default 10) times slower"
    ),
}

#: Faults that act once each time they are switched on.
ONE_SHOT: Final = frozenset({"error_burst", "crash_restart"})


@dataclass(frozen=True)
class _Spec:
    roles: frozenset[str]
    host: str
    numbers: Mapping[str, tuple[float, float, float]]  # name: (default, lowest, highest)
    integers: frozenset[str] = frozenset()


_ANY: Final = frozenset({"orchestrator", "scraper", "spotter"})
_SPECS: Final[dict[str, _Spec]] = {
    "silent_scraper": _Spec(frozenset({"scraper"}), "scraper-1", {}),
    "lossy_spotter": _Spec(frozenset({"spotter"}), "spotter-1", {"share": (0.3, 0.0, 1.0)}),
    "failed_update": _Spec(frozenset({"scraper", "spotter"}), "*", {}),
    "error_burst": _Spec(_ANY, "scraper-1", {"count": (5, 1, 1000)}, frozenset({"count"})),
    "crash_restart": _Spec(_ANY, "scraper-1", {"after": (0.2, 0.0, 3600.0)}),
    "slow_resolution": _Spec(frozenset({"scraper"}), "*", {"factor": (10.0, 0.01, 1000.0)}),
}


def check_fault(name: str, params: Mapping[str, object]) -> Params:
    """The complete parameters of fault ``name``; ValueError naming what is wrong."""
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown fault {name!r}; valid faults: {', '.join(FAULTS)}")
    valid = ["host", *spec.numbers]
    out: Params = {"host": spec.host}
    out.update({key: default for key, (default, _, _) in spec.numbers.items()})
    for key, value in params.items():
        if key not in valid:
            raise ValueError(
                f"fault {name!r} has no parameter {key!r}; its parameters: {', '.join(valid)}"
            )
        out[key] = _host(name, value) if key == "host" else _number(name, key, value, spec)
    return out


def _host(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"fault {name!r}: host must be a host name or '*', got {value!r}")
    return value


def _number(name: str, key: str, value: object, spec: _Spec) -> int | float:
    _, low, high = spec.numbers[key]
    number = _to_number(value)
    # NaN fails the comparison too.
    if number is None or not low <= number <= high:
        raise ValueError(
            f"fault {name!r}: {key} must be a number from {low:g} to {high:g}, got {value!r}"
        )
    if key in spec.integers:
        if number != int(number):
            raise ValueError(f"fault {name!r}: {key} must be a whole number, got {value!r}")
        return int(number)
    return float(number)


def _to_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def hits(name: str, params: Mapping[str, object], host: str, role: str) -> bool:
    """Whether fault ``name`` with ``params`` affects process ``host`` of ``role``."""
    spec = _SPECS[name]
    target = params.get("host", spec.host)
    return role in spec.roles and target in ("*", host)


def parse_faults(items: str | Iterable[str]) -> Table:
    """``"a+b:k=v"`` or ``["a", "b:k=v"]`` as a table; ValueError naming a bad item."""
    parts = items.split("+") if isinstance(items, str) else list(items)
    table: Table = {}
    for part in (p.strip() for p in parts):
        if not part:
            continue
        name, *pairs = part.split(":")
        params: dict[str, str] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key:
                raise ValueError(f"bad fault parameter {pair!r} in {part!r}: write KEY=VALUE")
            params[key] = value
        table[name] = check_fault(name, params)
    return table


class FaultBook:
    """The faults that are on, with their parameters. Thread-safe."""

    def __init__(self, table: Mapping[str, Params] | None = None) -> None:
        self._lock = threading.Lock()
        self._table: Table = {name: dict(params) for name, params in (table or {}).items()}

    def switch(self, name: str, on: bool, params: Mapping[str, object]) -> Params | None:
        """Switch ``name`` on (returning its checked parameters) or off (returning None)."""
        checked = check_fault(name, params) if on else None
        with self._lock:
            if checked is None:
                self._table.pop(name, None)
            else:
                self._table[name] = checked
        return checked

    def get(self, name: str) -> Params | None:
        with self._lock:
            params = self._table.get(name)
            return None if params is None else dict(params)

    def active(self, name: str, host: str, role: str) -> Params | None:
        """The parameters of ``name`` if it is on and affects this process."""
        params = self.get(name)
        return params if params is not None and hits(name, params, host, role) else None

    def table(self) -> Table:
        with self._lock:
            return {name: dict(params) for name, params in self._table.items()}


def format_faults(table: Mapping[str, Mapping[str, object]]) -> str:
    """A table in the form :func:`parse_faults` reads."""
    return "+".join(
        ":".join([name, *(f"{key}={value}" for key, value in params.items())])
        for name, params in table.items()
    )
