"""The plugin's hooks, as a project with its own methodology uses them.

The blades' methodology is itself a plugin of the plugin; these tests check
that a ``conftest.py`` can take its place through the same hooks, and that a
waiting helper's failure reaches the alerts from the exception's fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RECORDING = '{"svc": {"status": "up"}}\n{"svc": {"errors": 2}}\n'


@pytest.fixture
def recording(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "rec.ndjson"
    path.write_text(RECORDING)
    return path


def test_the_fixture_is_the_methodologys_cluster_by_default(
    pytester: pytest.Pytester, recording: Path
) -> None:
    pytester.makepyfile(
        """
        from pytest_livecluster import Cluster, MethodologyCluster

        def test_kind(cluster):
            assert type(cluster) is MethodologyCluster
            assert isinstance(cluster, Cluster)
            assert cluster.eventually(lambda: cluster.get("svc", "status") == "up", timeout=5)
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{recording}")
    result.assert_outcomes(passed=1)


def test_a_conftest_hands_out_its_own_cluster_and_reports_on_it(
    pytester: pytest.Pytester, recording: Path
) -> None:
    pytester.makeconftest(
        """
        from pytest_livecluster import Cluster
        from pytest_livecluster.plugin.report import Section

        class ServiceCluster(Cluster):
            def errors_of(self, service):
                self._watch((service, "errors"))
                return self.state.get(service, "errors", default=0)

        def pytest_livecluster_make_cluster(config, state, collector, timing):
            return ServiceCluster(state, collector, timing)

        def pytest_livecluster_report(config, cluster):
            name = config.getini("livecluster_name")
            return [Section("services", [f"{name}: svc errors {cluster.errors_of('svc')}"])]
        """
    )
    pytester.makeini("[pytest]\nlivecluster_name = shop\n")
    pytester.makepyfile(
        """
        def test_errors(cluster):
            assert type(cluster).__name__ == "ServiceCluster"
            assert not hasattr(cluster, "intents"), "the methodology's views are not there"
            cluster.eventually(lambda: cluster.errors_of("svc") == 0, timeout=0.3)
        """
    )
    result = pytester.runpytest_subprocess(
        f"--live-cluster=file:{recording}", "--live-report=out.json"
    )
    result.assert_outcomes(failed=1)
    # The failure explains the path the subclass's reader watched.
    result.stdout.fnmatch_lines(["*svc.errors*", "*services:*", "*shop: svc errors 2*"])
    report = json.loads((pytester.path / "out.json").read_text())
    titles = [s["title"] for s in report["sections"]]
    assert "services" in titles
    assert "blades that said hello" not in titles


def test_without_the_methodology_plugin_the_fixture_is_a_plain_cluster(
    pytester: pytest.Pytester, recording: Path
) -> None:
    pytester.makepyfile(
        """
        from pytest_livecluster import Cluster

        def test_kind(cluster):
            assert type(cluster) is Cluster
        """
    )
    result = pytester.runpytest_subprocess(
        f"--live-cluster=file:{recording}", "-p", "no:livecluster-methodology"
    )
    result.assert_outcomes(passed=1)


def test_an_eventually_timeout_alerts_with_its_last_failure_read_from_its_fields(
    pytester: pytest.Pytester, recording: Path
) -> None:
    """The headline comes from ``EventuallyFailed.last``, not from parsing its text: a
    check whose own message looks like the helper's wording cannot confuse it."""
    pytester.makeconftest(
        """
        import json
        from pytest_livecluster.plugin.outcomes import headline

        def pytest_runtest_logreport(report):
            if report.failed:
                with open("headlines.json", "a") as f:
                    f.write(json.dumps(headline(report)[0]) + "\\n")
        """
    )
    pytester.makepyfile(
        """
        import itertools
        counter = itertools.count()

        def test_waits(cluster):
            def check():
                n = next(counter)
                assert n > 10**9, f"boom {min(n, 1)}\\nlast failure (at 1 s): decoy"
            cluster.eventually(check, timeout=0.3, tick=0.05)
        """
    )
    result = pytester.runpytest_subprocess(f"--live-cluster=file:{recording}")
    result.assert_outcomes(failed=1)
    [line] = (pytester.path / "headlines.json").read_text().splitlines()
    text = json.loads(line)
    assert text.startswith("EventuallyFailed: eventually: test_waits.<locals>.check")
    assert text.endswith("; AssertionError: boom 1"), text
