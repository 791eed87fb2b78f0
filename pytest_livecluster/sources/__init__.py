"""Sources, and turning the specs a user writes into them.

``--live-cluster=SPEC[,SPEC...]`` takes these kinds (see the README):

======================== ====================================================
``docker:label=KEY=VAL`` every container with that label on the Docker engine
``http://…``, ``https://…`` a bare service's ``/logs`` endpoint
``file:PATH``            replay a recording or an NDJSON file (``-``: stdin)
``sim``                  the embedded simulated cluster
======================== ====================================================

A kind is available once its module registers a factory with
:func:`register`; :func:`parse_specs` names the available kinds when a spec
matches none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from ..exceptions import SpecError
from .base import Emit, Source, SourceHealth, SourceOptions
from .file import FileSource

__all__ = [
    "Emit",
    "FileSource",
    "Source",
    "SourceHealth",
    "SourceOptions",
    "kinds",
    "parse_specs",
    "register",
    "split_specs",
]

Factory = Callable[[str, SourceOptions], Source]

_KINDS: dict[str, tuple[str, Factory]] = {}
# A comma starts a new spec only when a known kind follows it, so URLs keep theirs.
_SPEC_START: Final = re.compile(r",\s*(?=(?:docker:|https?://|file:|sim(?:$|[:,])))")


def register(prefix: str, example: str, factory: Factory) -> None:
    """Make specs starting with ``prefix`` build sources with ``factory``."""
    _KINDS[prefix] = (example, factory)


def kinds() -> list[str]:
    """Examples of every available kind of spec, for messages."""
    return [example for example, _ in _KINDS.values()]


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs (commas inside a URL stay)."""
    return [part.strip() for part in _SPEC_START.split(text.strip()) if part.strip()]


def parse_specs(specs: str | Iterable[str], options: SourceOptions | None = None) -> list[Source]:
    """Build a source for each spec; raise SpecError naming a bad one and the valid kinds."""
    items = split_specs(specs) if isinstance(specs, str) else [s.strip() for s in specs]
    if not items:
        raise SpecError(f"no source given; valid kinds: {', '.join(kinds())}")
    options = options or SourceOptions()
    sources = [_build(spec, options) for spec in items]
    seen: set[str] = set()
    for source in sources:
        if source.id in seen:
            raise SpecError(f"source {source.id!r} is given twice")
        seen.add(source.id)
    return sources


def _build(spec: str, options: SourceOptions) -> Source:
    for prefix, (_, factory) in sorted(_KINDS.items(), key=lambda kv: -len(kv[0])):
        if spec == prefix or spec.startswith(prefix):
            return factory(spec, options)
    raise SpecError(f"unknown source spec {spec!r}; valid kinds: {', '.join(kinds())}")


register("file:", "file:PATH", FileSource.from_spec)
