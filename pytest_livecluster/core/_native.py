"""Which build of the state engine runs: the compiled one, or its source.

The build (``setup.py``) compiles the engine, the modules in :data:`ENGINE`
(the core's ``_fastpath``, ``_paths`` and ``_state``, and the per-shard
kernels of the methodology's projections), with mypyc; the extension modules
land beside their sources, in the working tree for an editable install.
Python imports an extension before a source of the same name, so an edited
source would silently run as its stale compiled twin. To rule that out, the
build compiles one more module with the engine, ``_buildinfo``, whose
``SOURCES`` maps each compiled module to the SHA-256 of the source it was
compiled from. mypyc puts all of one build's modules in one
shared library, so that record always describes the compiled code beside it.

The public modules that front the engine (:mod:`.state`, :mod:`.paths`,
:mod:`.fastpath`; the methodology's projections import :mod:`.state` before
their kernels) import this module before the engine, and it decides once
per process:

=================================  ============================================
the compiled build is there and    the compiled engine runs
every source matches its record
(or is absent, as in an install
without ``.py`` files)
a source no longer matches, or a   the engine runs from source, and one
compiled module is missing         ``RuntimeWarning`` names the changed file
                                   and the command that rebuilds
no compiled build                  the engine runs from source, silently
``LIVECLUSTER_PURE_PYTHON=1``      the engine runs from source, whatever is
                                   built (to debug or measure the source)
=================================  ============================================

A stale build falls back rather than failing because the source is the truth:
running it is always correct, only slower, and a developer who edited the
engine wants the edit to run now. The warning says why it is slower, and CI
asserts that the compiled engine is what runs (``tests/unit/test_compiled.py``).
It is all or nothing: mypyc binds the compiled modules to each other (a call
from one to another is a C call), so one stale module means none of them runs
compiled.

The choice is made before the engine is first imported, so the engine is
imported through the modules above, never first by its own name; when it was,
what is loaded stays, and a stale build only warns.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar

__all__ = [
    "COMPILED",
    "ENGINE",
    "PURE_PYTHON_ENV",
    "REASON",
    "SourceFinder",
    "mypyc_attr",
    "source_hash",
    "stale_sources",
]

#: The top package, and the folder it is in.
PACKAGE: Final = __name__.split(".")[0]
ROOT: Final = Path(__file__).resolve().parents[1]
# What setup.py compiles (and the Makefile's COMPILED list), in import order, named
# relative to the top package.
ENGINE: Final = ("core._fastpath", "core._paths", "core._state", "methodology._kernels")
RECORD: Final = "core._buildinfo"
PURE_PYTHON_ENV: Final = "LIVECLUSTER_PURE_PYTHON"
REBUILD: Final = (
    "Rebuild it with `make install` (or `pip install -e .`), or set "
    f"{PURE_PYTHON_ENV}=1 to run the source without this warning."
)

_C = TypeVar("_C", bound=type)

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr
else:

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_C], _C]:
        """mypyc reads this class decorator when it compiles; from source it does nothing.

        It lives here, in a module that is never compiled, so that the engine
        needs no ``mypy_extensions`` at run time.
        """
        return lambda cls: cls


def source_path(name: str, root: Path = ROOT) -> Path:
    """The source of the compiled module ``name`` (``"core._state"``) under ``root``."""
    return root.joinpath(*name.split(".")).with_suffix(".py")


def source_hash(path: Path) -> str:
    """The SHA-256 of a source file's bytes, as the build records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_sources(record: Mapping[str, str], root: Path = ROOT) -> list[str]:
    """What makes a compiled build recorded as ``record`` unfit to run; empty if nothing.

    ``record`` maps each compiled module to the hash of its source at build
    time. A module whose source is not under ``root`` (the top package's
    folder) is taken as built from what is installed.
    """
    problems = []
    for name in sorted(set(ENGINE) - set(record)):
        problems.append(f"{source_path(name, Path())} was not compiled by this build")
    for name in sorted(set(record) & set(ENGINE)):
        source = source_path(name, root)
        if source.is_file() and source_hash(source) != record[name]:
            problems.append(f"{source} changed since it was compiled")
    return problems


class SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the engine's modules from their ``.py`` files, even with extensions beside them.

    ``sources`` maps full module names to their files; by default, every
    module of :data:`ENGINE` and the record, under :data:`PACKAGE`.
    """

    def __init__(self, sources: Mapping[str, Path] | None = None) -> None:
        if sources is None:
            sources = {f"{PACKAGE}.{name}": source_path(name) for name in (*ENGINE, RECORD)}
        self._sources = dict(sources)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        source = self._sources.get(fullname)
        if source is None or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _is_extension(spec: importlib.machinery.ModuleSpec | None) -> bool:
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def _record() -> dict[str, str] | None:
    """The compiled build's record, or ``None`` if there is no compiled build."""
    name = f"{PACKAGE}.{RECORD}"
    if not _is_extension(importlib.util.find_spec(name)):
        return None
    try:
        module: Any = importlib.import_module(name)
    except ImportError:  # built for another interpreter, or its shared library is gone
        return None
    return dict(module.SOURCES)


def _choose() -> tuple[bool, str]:
    if os.environ.get(PURE_PYTHON_ENV):
        return False, f"{PURE_PYTHON_ENV} is set"
    compiled = [_is_extension(importlib.util.find_spec(f"{PACKAGE}.{name}")) for name in ENGINE]
    record = _record()
    if record is None:
        if any(compiled):
            return False, "stale: compiled modules without the record of their build"
        return False, "not compiled"
    problems = stale_sources(record)
    missing = [name for name, ext in zip(ENGINE, compiled, strict=True) if not ext]
    problems += [f"{name} has no compiled module" for name in missing]
    if problems:
        return False, "stale: " + "; ".join(problems)
    return True, "compiled"


def _loaded() -> list[ModuleType]:
    return [m for name in ENGINE if (m := sys.modules.get(f"{PACKAGE}.{name}")) is not None]


def _start() -> tuple[bool, str]:
    compiled, reason = _choose()
    loaded = _loaded()
    if loaded:  # the engine was imported by name before this module could choose
        compiled = all(_is_extension(m.__spec__) for m in loaded)
        if reason.startswith("stale"):
            warnings.warn(
                f"pytest-livecluster: the compiled state engine is {reason}, and it was "
                f"imported before it could be replaced by its source. {REBUILD}",
                RuntimeWarning,
                stacklevel=3,
            )
        return compiled, reason if compiled else "imported from source"
    if not compiled:
        sys.meta_path.insert(0, SourceFinder())
    if reason.startswith("stale"):
        warnings.warn(
            f"pytest-livecluster: the compiled state engine is {reason}; running its "
            f"source instead, which is slower. {REBUILD}",
            RuntimeWarning,
            stacklevel=3,
        )
    return compiled, reason


#: Whether the compiled engine runs, and why (``"compiled"``, ``"not compiled"``,
#: ``"stale: ..."``, or that the environment asked for the source).
COMPILED, REASON = _start()
