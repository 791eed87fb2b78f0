"""Options: each command-line flag paired with an ini key, read with one precedence.

Precedence, everywhere: a test's ``livecluster`` marker, then the command
line, then the ini file, then the default. The plugin's own options and the
methodology's are rows of :class:`Option`, registered and read by the same two
functions. This module imports nothing heavy: pytest loads it on every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["GROUP", "Option", "add_options", "option_name", "raw_value"]

#: The help group every livecluster option is listed under.
GROUP = ("livecluster", "live tests against a running cluster")


@dataclass(frozen=True)
class Option:
    """One setting: its flag (if any), its ini key, its type and its default."""

    dest: str
    ini: str
    help: str
    kind: str = "string"  # string, float, int, linelist
    default: Any = None
    flag: str | None = None
    metavar: str | None = None
    action: str = "store"

    @property
    def name(self) -> str:
        """How messages name it: the flag if it has one, else the ini key."""
        return self.flag or self.ini


def add_options(parser: pytest.Parser, options: Iterable[Option]) -> None:
    """Register each option's ini key, and its flag if it has one."""
    group = parser.getgroup(*GROUP)
    for opt in options:
        kind = "string" if opt.kind in ("float", "int") else opt.kind
        default = opt.default if opt.kind != "linelist" else []
        parser.addini(opt.ini, opt.help, type=kind, default=default)  # type: ignore[arg-type]
        if opt.flag:
            group.addoption(
                opt.flag,
                dest=f"livecluster_{opt.dest}",
                action=opt.action,
                default=None,
                metavar=opt.metavar,
                help=f"{opt.help} (ini: {opt.ini})",
            )


def raw_value(config: pytest.Config, opt: Option) -> Any:
    """The option's value before validation: the flag's, else the ini's, else the default."""
    if opt.flag:
        value = config.getoption(f"livecluster_{opt.dest}")
        if value is not None:
            return value
    value = config.getini(opt.ini)
    if value in ("", None, []) and opt.kind != "linelist":
        return opt.default
    return value


def option_name(options: Iterable[Option], dest: str) -> str:
    """The name messages use for the option ``dest``."""
    return next(o for o in options if o.dest == dest).name
