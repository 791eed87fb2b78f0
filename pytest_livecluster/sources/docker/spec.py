"""The ``docker:`` and ``swarm:`` source specs, as a user writes them:
``docker:label=KEY=VALUE[;host=URL]`` and ``swarm:label=KEY=VALUE[;host=URL]``.

Kept apart from the source so that a bad spec is refused when the command line is
read, naming what is wrong and the form to write, before any engine is contacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..._secrets import display_spec
from ...exceptions import SpecError

__all__ = ["SPEC_FORM", "SWARM_FORM", "DockerSpec", "parse_spec"]

_HOSTS: Final = "tcp://HOST:PORT, ssh://USER@HOST[:PORT] or unix:///PATH"
SPEC_FORM: Final = f"docker:label=KEY=VALUE (optionally ;host= {_HOSTS})"
SWARM_FORM: Final = f"swarm:label=KEY=VALUE (optionally ;host= {_HOSTS}, a manager)"
_HOST_SCHEMES: Final = ("tcp://", "unix://", "ssh://")
_KINDS: Final = {"docker": SPEC_FORM, "swarm": SWARM_FORM}


@dataclass(frozen=True, slots=True)
class DockerSpec:
    """A parsed ``docker:`` or ``swarm:`` spec: the label to select containers (or
    services) by and, optionally, the engine."""

    key: str
    value: str
    host: str | None = None
    #: ``docker`` (containers) or ``swarm`` (services, through a manager).
    kind: str = "docker"

    @property
    def label(self) -> str:
        return f"{self.key}={self.value}"

    @property
    def engine(self) -> str:
        """A short name of the engine, unique among engines: ``HOST:PORT`` of a
        ``tcp://`` or ``ssh://`` URL (without the user), the socket path of a
        ``unix://`` one, ``local`` without ``host=``."""
        if not self.host:
            return "local"
        scheme, _, rest = self.host.partition("://")
        if scheme == "unix":
            return rest
        authority = rest.split("/", 1)[0]
        return authority.rpartition("@")[2]

    def __str__(self) -> str:
        host = f";host={self.host}" if self.host else ""
        return f"{self.kind}:label={self.label}{host}"


def parse_spec(spec: str, kind: str = "docker") -> DockerSpec:
    """``KIND:label=KEY=VALUE[;host=URL]`` -> DockerSpec; SpecError naming what is wrong.

    ``kind`` is ``docker`` or ``swarm``.
    """
    form = _KINDS[kind]
    if not spec.startswith(f"{kind}:"):
        raise _bad_spec(spec, f"it does not start with {kind}:", form)
    first, *options = spec.removeprefix(f"{kind}:").split(";")
    name, eq, label = first.partition("=")
    if name != "label" or not eq:
        raise _bad_spec(spec, "it must start with label=", form)
    key, eq, value = label.partition("=")
    if not key or not eq or not value or any(ch.isspace() for ch in label):
        raise _bad_spec(spec, f"the label {label!r} is not KEY=VALUE", form)
    host: str | None = None
    for option in options:
        name, eq, url = option.partition("=")
        if name != "host" or not eq:
            raise _bad_spec(spec, f"{name!r} is not an option (host=URL is the only one)", form)
        if host is not None:
            raise _bad_spec(spec, "host= is given twice", form)
        if not any(url.startswith(s) and len(url) > len(s) for s in _HOST_SCHEMES):
            shown = display_spec(url)
            raise _bad_spec(spec, f"the host {shown!r} is none of {_HOSTS}", form)
        host = url
    return DockerSpec(key, value, host, kind)


def _bad_spec(spec: str, why: str, form: str) -> SpecError:
    # The spec may hold an engine URL with credentials: show what display_spec allows.
    return SpecError(f"bad source spec {display_spec(spec)!r}: {why}; write {form}")
