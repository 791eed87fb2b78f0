"""The registry of source kinds, and turning specs into sources.

Each kind's module calls :func:`register` when it is imported; the package
imports every kind, so :func:`parse_specs` knows them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from ..exceptions import SpecError
from .base import Source, SourceOptions

__all__ = ["kinds", "parse_specs", "register", "split_specs"]

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
