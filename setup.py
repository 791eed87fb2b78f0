"""Build: the state engine compiles with mypyc when it can.

The engine is the modules in ENGINE (``pytest_livecluster/core/_native.py``
explains the layout and how a stale build is caught). A build that compiles
also compiles ``_buildinfo`` with a record of the hash of every source it
compiled: mypy's ``--shadow-file`` makes mypyc read that record from ``build/``
instead of the tracked ``_buildinfo.py``, whose empty record stands for "not
compiled" when it runs from source.

Compiling is an optimization: without mypyc, without a C compiler, with
``LIVECLUSTER_PURE_PYTHON=1``, or when mypyc fails, the package stays pure
Python. Only the commands that build (``bdist_wheel``, ``editable_wheel``,
``build_ext``, ...) compile; the metadata and sdist steps do not run mypyc.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

PACKAGE = Path("pytest_livecluster")
# The compiled engine, in import order, named relative to the package; _native.ENGINE and
# the Makefile's COMPILED agree.
ENGINE = ["core._fastpath", "core._paths", "core._state", "methodology._kernels"]
RECORD = PACKAGE / "core" / "_buildinfo.py"
RECORD_BUILT = Path("build", "livecluster", "_buildinfo.py")
# One mypyc shared library for the engine, inside the package rather than at
# the top level of site-packages under a hashed name.
GROUP = "pytest_livecluster.core._engine"
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
IN_PLACE = {"editable_wheel", "develop", "--inplace", "-i"}


class OptionalBuildExt(build_ext):
    """Compiling is an optimization: where it fails the package stays pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any failure leaves the pure modules
            self.warn(f"pytest-livecluster: not compiled, staying pure Python ({exc})")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.warn(f"pytest-livecluster: {ext.name} not compiled ({exc})")


def remove_in_place_builds() -> None:
    """Delete the extension modules an earlier in-place build left in the working tree.

    Python imports an extension before the source beside it; these would
    shadow what this build makes (or, for a pure build, the sources). That
    includes the compiled ``state``, ``paths`` and ``fastpath`` of the layout
    before the engine moved to private modules, and its group library at the
    top of the tree.
    """
    extension = re.compile(r"\.cpython-[^.]*\.(so|pyd)$|\.abi3\.so$|\.pyd$")
    stale = [p for p in Path("pytest_livecluster").rglob("*") if extension.search(p.name)]
    stale += [p for p in Path().glob("*__mypyc.*") if extension.search(p.name)]
    for path in stale:
        path.unlink()


def source(name: str) -> Path:
    return PACKAGE.joinpath(*name.split(".")).with_suffix(".py")


def write_record() -> None:
    hashes = {name: hashlib.sha256(source(name).read_bytes()).hexdigest() for name in ENGINE}
    lines = "".join(f'    "{name}": "{digest}",\n' for name, digest in hashes.items())
    RECORD_BUILT.parent.mkdir(parents=True, exist_ok=True)
    RECORD_BUILT.write_text(
        '"""What this build compiled: the SHA-256 of each source (written by setup.py)."""\n'
        "\n"
        "from __future__ import annotations\n"
        "\n"
        "from typing import Final\n"
        "\n"
        f"SOURCES: Final[dict[str, str]] = {{\n{lines}}}\n"
    )


def ext_modules() -> list[Any]:
    commands = set(sys.argv[1:])
    if not commands & BUILD_COMMANDS:
        return []
    if commands & IN_PLACE:
        remove_in_place_builds()
    if os.environ.get("LIVECLUSTER_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    write_record()
    sources = [str(source(name)) for name in ENGINE]
    shadow = ["--shadow-file", str(RECORD), str(RECORD_BUILT)]
    # mypy reads every module the engine reaches (the package's __init__
    # reaches them all), but only the engine's own errors may stop the compile:
    # the build environment has no tenacity or httpx, and a work-in-progress
    # elsewhere in the package must not make the engine run uncompiled.
    silent = ["--follow-imports=silent"]
    try:
        return mypycify(  # type: ignore[no-any-return]
            [*sources, str(RECORD), *shadow, *silent], opt_level="3", group_name=GROUP
        )
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"pytest-livecluster: not compiled, staying pure Python ({exc})")
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
