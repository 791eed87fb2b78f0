"""The kit on its own: installed where pytest is not, and on the oldest Python it supports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._support import PATIENCE, WRITER, replay, writers

SMOKE = Path(__file__).with_name("_smoke.py")


def _python39() -> str | None:
    """A Python 3.9 interpreter on this machine (pyenv's, or python3.9 on the PATH), if any."""
    pyenv = Path(os.path.expanduser("~/.pyenv/versions"))
    found = sorted(pyenv.glob("3.9.*/bin/python3.9")) if pyenv.is_dir() else []
    for candidate in [*map(str, found), shutil.which("python3.9")]:
        if not candidate:
            continue
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=PATIENCE,
            ).stdout.strip()
        except OSError:
            continue
        if version == "(3, 9)":
            return candidate
    return None


def _run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 3,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
    )


def _check_smoke_output(result: subprocess.CompletedProcess[str], kit_under: Path) -> None:
    assert result.returncode == 0, result.stderr
    assert f"kit: {kit_under}" in result.stderr
    lines = result.stdout.splitlines()
    state = replay(lines)
    found = writers(lines)
    finals = sorted(a[-1]["item_scraped"]["site1.example"]["item_sent"] for a in found.values())
    assert finals == ([5, 4100] if hasattr(os, "fork") else [4100])
    assert state.total("intents.*.resolution.*.item_scraped.*.item_sent") == sum(finals)
    assert state.get("scraper-1", "status") == "served"


def test_the_kit_installs_and_runs_without_pytest(tmp_path: Path) -> None:
    """Installs the kit into a fresh virtual environment and runs a program with it there.

    Checks that ``writer/`` is a distribution of its own that installs offline
    (``--no-deps --no-build-isolation --no-index``: no dependency, and the build
    needs only setuptools, which is fetched from the index only when the
    environment's cannot build a wheel), that the environment then has no
    pytest (the kit never brings it), and that a program counting from
    threads, tasks and a forked child, and serving ``/logs``, runs there with
    the installed copy and prints shards the plugin replays to the right totals.
    """
    source = tmp_path / "writer"
    shutil.copytree(WRITER, source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    venv = tmp_path / "venv"
    created = _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    # A wheel build needs setuptools 70.1+ (or the wheel package): an older
    # Python's venv comes with an older one, a newer Python's with none.
    builds = "import setuptools.command.bdist_wheel"
    if _run(python, "-c", builds, cwd=tmp_path).returncode != 0:
        got = _run(python, "-m", "pip", "install", "-q", "setuptools>=70.1", cwd=tmp_path)
        assert got.returncode == 0, got.stderr
    installed = _run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        source,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    check = (
        "import livecluster, importlib.util, sys; "
        "sys.exit(importlib.util.find_spec('pytest') is not None)"
    )
    assert _run(python, "-c", check, cwd=tmp_path).returncode == 0, "pytest is importable"

    result = _run(python, SMOKE, cwd=tmp_path)
    site = _run(python, "-c", "import livecluster; print(livecluster.__file__)", cwd=tmp_path)
    kit = Path(site.stdout.strip())
    assert venv in kit.parents
    _check_smoke_output(result, kit)


def test_the_kit_runs_on_python_3_9(tmp_path: Path) -> None:
    """The same program on Python 3.9, the oldest the kit supports, from the source tree.

    In development mode (``-X dev``), where a deprecation warning would show.
    """
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter on this machine (python3.9 or pyenv's 3.9.18)")
    result = subprocess.run(
        [python, "-X", "dev", SMOKE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PATIENCE * 3,
        env={**os.environ, "PYTHONPATH": str(WRITER)},
    )
    _check_smoke_output(result, WRITER / "livecluster" / "__init__.py")
    assert "Warning" not in result.stderr, result.stderr


def test_importing_the_kit_loads_no_server() -> None:
    """A blade that only writes to stdout never loads the HTTP server, asyncio or ssl."""
    code = (
        "import sys, livecluster; b = livecluster.Blade('scraper-1'); b.hello(); b.close(); "
        "print(sorted(m for m in ('http.server', 'asyncio', 'ssl', 'livecluster.logs') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
