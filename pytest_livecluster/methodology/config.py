"""The methodology's settings: its ini keys, resolved and validated once.

``livecluster_roles`` and ``livecluster_keys`` make the vocabulary of
:mod:`.schema` fit a cluster; ``livecluster_stale_after`` is how old an intent
may be before the report names it; ``livecluster_orchestrator_url`` is where
the ``orchestrator`` fixture sends its requests when no source knows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

import pytest

from .._values import positive_seconds
from ..exceptions import ConfigError
from ..plugin.options import Option, option_name, raw_value
from .schema import KEY_NAMES, Methodology

__all__ = ["OPTIONS", "MethodologySettings", "resolve"]

OPTIONS: Final = (
    Option(
        "roles",
        "livecluster_roles",
        "host roles, one per line: ROLE = PATTERN[, PATTERN...] (fnmatch globs)",
        "linelist",
        (),
    ),
    Option(
        "keys",
        "livecluster_keys",
        "the methodology's key names, one per line: NAME = KEY (e.g. hello_value = Hello World)",
        "linelist",
        (),
    ),
    Option(
        "orchestrator_url",
        "livecluster_orchestrator_url",
        "the orchestrator's control API, for the orchestrator fixture (the sim provides its own)",
    ),
    Option(
        "stale_after",
        "livecluster_stale_after",
        "the report names intents older than this many seconds that are not receiving",
        "float",
        60.0,
    ),
)


@dataclass(frozen=True)
class MethodologySettings:
    """The vocabulary and roles, the stale age and the orchestrator's address."""

    methodology: Methodology
    stale_after: float
    orchestrator_url: str | None


def resolve(config: pytest.Config) -> MethodologySettings:
    """Read the methodology's ini keys and validate them (ConfigError if bad)."""
    raw = {opt.dest: raw_value(config, opt) for opt in OPTIONS}
    return MethodologySettings(
        methodology=methodology(raw["roles"], raw["keys"]),
        stale_after=positive_seconds(option_name(OPTIONS, "stale_after"), raw["stale_after"]),
        orchestrator_url=str(raw["orchestrator_url"] or "") or None,
    )


def methodology(role_lines: Any = (), key_lines: Any = ()) -> Methodology:
    """A :class:`Methodology` from ``livecluster_roles`` and ``livecluster_keys`` lines."""
    keys: dict[str, str] = {}
    for line in key_lines:
        text = str(line).strip()
        if not text:
            continue
        name, sep, value = text.partition("=")
        if not sep or name.strip() not in KEY_NAMES or not value.strip():
            raise ConfigError(
                f"livecluster_keys: expected 'NAME = KEY' with NAME one of "
                f"{', '.join(KEY_NAMES)}, got {text!r}"
            )
        keys[name.strip()] = value.strip()
    roles: dict[str, tuple[str, ...]] = {}
    for line in role_lines:
        text = str(line).strip()
        if not text:
            continue
        role, sep, patterns = text.partition("=")
        globs = tuple(p.strip() for p in patterns.split(",") if p.strip())
        if not sep or not role.strip() or not globs:
            raise ConfigError(
                f"livecluster_roles: expected 'ROLE = PATTERN[, PATTERN...]', got {text!r}"
            )
        roles[role.strip()] = globs
    base = Methodology(roles=roles) if roles else Methodology()
    return dataclasses.replace(base, **keys)  # type: ignore[arg-type]
