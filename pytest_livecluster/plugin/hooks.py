"""The pytest entry point: hooks, options, markers and fixtures; the logic lives elsewhere.

Everything that follows the cluster is in :class:`~pytest_livecluster.plugin.run.LiveRun`,
registered only with ``--live-cluster``. pytest loads this module on every
run, so it imports nothing heavy: without ``--live-cluster`` a run costs no
more than reading the options.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import hookspecs
from .config import Settings, add_options, enabled, resolve

if TYPE_CHECKING:
    from ..core.cluster import Cluster
    from .run import LiveRun  # noqa: F401  (named in a string below)

SETTINGS = pytest.StashKey[Settings]()
RUN = pytest.StashKey["LiveRun"]()
SKIP_REASON = "needs --live-cluster"
SHARDS_PROPERTY = "livecluster_shards"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
    from ..methodology import plugin as methodology

    # A plugin of the plugin, through the same hooks any project would use.
    if not pluginmanager.is_registered(methodology):
        pluginmanager.register(methodology, "livecluster-methodology")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: a live test; it runs only with --live-cluster and checks the cluster"
    )
    config.addinivalue_line(
        "markers",
        "livecluster(timeout=None, window=None, tick=None, severity=None): this test's "
        "waiting defaults, and the severity label of its alert",
    )
    from ..exceptions import ConfigError

    try:
        if not enabled(config):
            return
        settings = resolve(config)
        config.stash[SETTINGS] = settings
        from .run import LiveRun

        run = LiveRun(config, settings)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[RUN] = run
    config.pluginmanager.register(run, "livecluster-run")
    config.pluginmanager.register(run.invariants, "livecluster-invariants")
    if settings.watch is not None:
        if run.is_controller or run.is_worker:
            raise pytest.UsageError(
                "--live-watch runs in one process: it cannot be combined with xdist (-n)"
            )
        from .watch import Watch

        config.pluginmanager.register(
            Watch(run, settings.watch, settings.watch_rounds), "livecluster-watch"
        )
    if run.is_controller and config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistController

        config.pluginmanager.register(XdistController(run), "livecluster-xdist")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if RUN in config.stash:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The live cluster: its merged state, waiting helpers, source health and the
    methodology's views (see the README)."""
    run = request.config.stash.get(RUN, None)
    if run is None:
        pytest.skip(SKIP_REASON)
    started: Cluster = run.ensure_started()
    return started


@pytest.fixture(autouse=True)
def _livecluster_test(request: pytest.FixtureRequest) -> Iterator[None]:
    run = request.config.stash.get(RUN, None)
    if run is None or "cluster" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("cluster")
    run.set_cluster_timing(request.node)
    try:
        yield
    finally:
        shards = run.cluster.end_test()
        # One property per test, also when watch mode runs it again.
        properties = request.node.user_properties
        properties[:] = [p for p in properties if p[0] != SHARDS_PROPERTY]
        properties.append((SHARDS_PROPERTY, shards))
