"""The repository's own pytest set-up, shared by every folder of ``tests/``.

- ``pytester`` for the plugin tests, enabled once here (pytest allows
  ``pytest_plugins`` only in the rootdir's conftest or in test modules).
- The markers the suite uses: ``slow`` (runs only with ``LIVECLUSTER_SLOW=1``)
  and ``engine_restart`` (restarts the Docker engine, so it runs after every
  other test, whatever the file names).
- httpx imports httpcore lazily, with its first client, and keeps a table of
  httpcore's exception classes. pytester restores ``sys.modules`` after each
  test, so an httpcore first imported inside a pytester test would be imported
  again later with new classes the table does not know, and httpx would let
  raw httpcore errors escape. Importing it here, before any test, keeps one copy.

The example live suite (``example_suite/``) has its own ``pytest.ini`` and is
a user's project: it relies on nothing here.
"""

from __future__ import annotations

import os

import httpcore  # noqa: F401
import pytest

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes more than a minute; runs only with LIVECLUSTER_SLOW=1"
    )
    config.addinivalue_line(
        "markers", "engine_restart: restarts the Docker engine; runs after every other test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort: everything else keeps its order, engine restarts go last.
    items.sort(key=lambda item: item.get_closest_marker("engine_restart") is not None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slow") and os.environ.get("LIVECLUSTER_SLOW") != "1":
        pytest.skip("slow test: set LIVECLUSTER_SLOW=1 to run it")
