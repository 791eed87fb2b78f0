"""The ``docker:`` source spec, as a user writes it: ``docker:label=KEY=VALUE[;host=URL]``.

Kept apart from the source so that a bad spec is refused when the command line is
read, naming what is wrong and the form to write, before any engine is contacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..._secrets import display_spec
from ...exceptions import SpecError

__all__ = ["SPEC_FORM", "DockerSpec", "parse_spec"]

SPEC_FORM: Final = "docker:label=KEY=VALUE (optionally ;host=tcp://HOST:PORT or ;host=unix:///PATH)"
_HOST_SCHEMES: Final = ("tcp://", "unix://")


@dataclass(frozen=True, slots=True)
class DockerSpec:
    """A parsed ``docker:`` spec: the label to select by and, optionally, the engine."""

    key: str
    value: str
    host: str | None = None

    @property
    def label(self) -> str:
        return f"{self.key}={self.value}"

    def __str__(self) -> str:
        host = f";host={self.host}" if self.host else ""
        return f"docker:label={self.label}{host}"


def parse_spec(spec: str) -> DockerSpec:
    """``docker:label=KEY=VALUE[;host=URL]`` -> DockerSpec; SpecError naming what is wrong."""
    if not spec.startswith("docker:"):
        raise _bad_spec(spec, "it does not start with docker:")
    first, *options = spec.removeprefix("docker:").split(";")
    name, eq, label = first.partition("=")
    if name != "label" or not eq:
        raise _bad_spec(spec, "it must start with label=")
    key, eq, value = label.partition("=")
    if not key or not eq or not value or any(ch.isspace() for ch in label):
        raise _bad_spec(spec, f"the label {label!r} is not KEY=VALUE")
    host: str | None = None
    for option in options:
        name, eq, url = option.partition("=")
        if name != "host" or not eq:
            raise _bad_spec(spec, f"{name!r} is not an option (host=URL is the only one)")
        if host is not None:
            raise _bad_spec(spec, "host= is given twice")
        if not any(url.startswith(s) and len(url) > len(s) for s in _HOST_SCHEMES):
            shown = display_spec(url)
            raise _bad_spec(spec, f"the host {shown!r} is neither tcp://HOST:PORT nor unix:///PATH")
        host = url
    return DockerSpec(key, value, host)


def _bad_spec(spec: str, why: str) -> SpecError:
    # The spec may hold an engine URL with credentials: show what display_spec allows.
    return SpecError(f"bad source spec {display_spec(spec)!r}: {why}; write {SPEC_FORM}")
