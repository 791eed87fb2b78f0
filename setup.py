"""Build: the state engine's hot modules compile with mypyc when they can."""

from __future__ import annotations

import os
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "pytest_livecluster/core/fastpath.py",
    "pytest_livecluster/core/paths.py",
    "pytest_livecluster/core/state.py",
]


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


def ext_modules() -> list[Any]:
    if os.environ.get("LIVECLUSTER_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    try:
        return mypycify(COMPILED, opt_level="3")  # type: ignore[no-any-return]
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"pytest-livecluster: not compiled, staying pure Python ({exc})")
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
