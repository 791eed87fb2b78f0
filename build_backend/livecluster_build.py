"""The build backend: setuptools, asking for mypy only when the build will compile.

``pyproject.toml`` names this module (through ``backend-path``) rather than
setuptools' own backend for one reason: mypy (with mypyc) is what compiles
the state engine, and nothing else needs it. Listed in ``[build-system]
requires`` it would be installed into every build environment, by every
installer of the sdist, even where nothing can compile. Here it is asked for
(PEP 517's ``get_requires_for_build_wheel`` and ``..._editable``) only when:

* ``LIVECLUSTER_PURE_PYTHON`` is not set (setting it asks for a pure build);
* a C compiler is there to build what mypyc writes (on Windows, where
  setuptools finds MSVC itself, it is assumed).

Without mypy ``setup.py`` builds pure Python, as it does when compiling fails.
Every hook, this one included, is otherwise setuptools' own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sysconfig

from setuptools import build_meta
from setuptools.build_meta import (
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

# mypyc (1.17: mypycify's group_name), and orjson for the types of what it compiles.
COMPILE_REQUIRES = ["mypy>=1.17", "orjson>=3.9"]

ConfigSettings = dict[str, str | list[str]] | None


def compiling() -> bool:
    """Whether this build will try to compile the engine."""
    if os.environ.get("LIVECLUSTER_PURE_PYTHON"):
        return False
    if os.name == "nt":
        return True
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = shlex.split(compiler)
    return bool(words) and shutil.which(words[0]) is not None


def _compile_requires() -> list[str]:
    return COMPILE_REQUIRES if compiling() else []


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    return [*build_meta.get_requires_for_build_wheel(config_settings), *_compile_requires()]


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
    return [*build_meta.get_requires_for_build_editable(config_settings), *_compile_requires()]
