"""The registry of source kinds, and turning the specs a user writes into sources.

A kind is a row: the prefixes its specs start with, an example for messages,
and where its class lives (``"module:Class"``). The module is imported only
when a spec of that kind is built, so loading the plugin (or parsing an ini
file) never imports docker-py, httpx or the simulator. The class recognises
its own specs: ``Class.from_spec(spec, options)`` parses and validates the
whole spec and raises :class:`~pytest_livecluster.exceptions.SpecError`
naming what is wrong.

Another package adds a kind with :func:`register`, before the specs are
parsed (for example in a ``pytest_configure`` hook); the splitter and the
messages then know it too.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._secrets import display_spec
from ..core.source import Source, SourceOptions
from ..exceptions import SpecError

__all__ = ["Kind", "kinds", "parse_specs", "register", "split_specs"]

Factory = Callable[[str, SourceOptions], Source]


@dataclass(frozen=True)
class Kind:
    """One kind of source: which specs are its own, and how to build one."""

    prefixes: tuple[str, ...]
    example: str
    #: ``"module:Class"`` (imported on first use) or a callable ``(spec, options)``.
    target: str | Factory
    #: Whether the prefix without its colon is a whole spec too (``sim``).
    bare: bool = False

    def owns(self, spec: str) -> bool:
        """Whether ``spec`` is this kind's (a bare kind also owns a misspelling of its word,
        so its own parser says what is wrong)."""
        spec = _lower_scheme(spec)
        return any(spec.startswith(p.rstrip(":") if self.bare else p) for p in self.prefixes)

    def build(self, spec: str, options: SourceOptions) -> Source:
        if callable(self.target):
            return self.target(spec, options)
        module, _, name = self.target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        source: Source = cls.from_spec(spec, options)
        return source


_KINDS: list[Kind] = [
    Kind(("file:",), "file:PATH", "pytest_livecluster.sources.file:FileSource"),
    Kind(("docker:",), "docker:label=KEY=VALUE", "pytest_livecluster.sources.docker:DockerSource"),
    Kind(("swarm:",), "swarm:label=KEY=VALUE", "pytest_livecluster.sources.docker:SwarmSource"),
    Kind(("http://",), "http://HOST:PORT/logs", "pytest_livecluster.sources.http:HttpSource"),
    Kind(("https://",), "https://HOST:PORT/logs", "pytest_livecluster.sources.http:HttpSource"),
    Kind(("sim:",), "sim", "pytest_livecluster.sources.sim:SimSource", bare=True),
]


def register(
    prefixes: str | Iterable[str], example: str, target: str | Factory, *, bare: bool = False
) -> None:
    """Make specs starting with one of ``prefixes`` build sources with ``target``.

    ``target`` is ``"module:Class"`` (a :class:`Source` subclass with a
    ``from_spec(spec, options)`` class method, imported on first use) or a
    factory ``(spec, options) -> Source``. A kind registered later wins over
    an earlier one with the same prefix.
    """
    names = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    if not names or not all(names):
        raise ValueError("a kind of source needs at least one non-empty prefix")
    _KINDS.insert(0, Kind(names, example, target, bare))


def kinds() -> list[str]:
    """Examples of every available kind of spec, for messages."""
    seen: list[str] = []
    for kind in _KINDS:
        if kind.example not in seen:
            seen.append(kind.example)
    return seen


def _spec_start() -> re.Pattern[str]:
    # A comma starts a new spec only when a known kind follows it, so URLs keep theirs.
    alternatives = []
    for kind in _KINDS:
        for prefix in kind.prefixes:
            word = re.escape(prefix.rstrip(":"))
            alternatives.append(rf"{word}(?:$|[:,])" if kind.bare else re.escape(prefix))
    return re.compile(rf",\s*(?=(?:{'|'.join(alternatives)}))", re.IGNORECASE)


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs (commas inside a URL or a spec stay)."""
    return [part.strip() for part in _spec_start().split(text.strip()) if part.strip()]


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
            raise SpecError(f"source {display_spec(source.id)!r} is given twice")
        seen.add(source.id)
    for source in sources:
        source.qualify(sources)
    return sources


def _build(spec: str, options: SourceOptions) -> Source:
    for kind in _KINDS:
        if kind.owns(spec):
            return kind.build(spec, options)
    # Only what display_spec allows: an unknown spec may be a URL with credentials.
    raise SpecError(
        f"unknown source spec {display_spec(spec)!r}; valid kinds: {', '.join(kinds())}"
    )


def _lower_scheme(spec: str) -> str:
    """``spec`` with a URL scheme in lower case (RFC 3986: schemes are case-insensitive)."""
    scheme, sep, rest = spec.partition("://")
    return f"{scheme.lower()}://{rest}" if sep and scheme.isalnum() else spec
