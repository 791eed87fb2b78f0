"""Every blade is up: it said hello, and it stays up."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_livecluster.methodology import MethodologyCluster

pytestmark = pytest.mark.live


def test_every_blade_said_hello(cluster: MethodologyCluster, hosts: dict[str, list[str]]) -> None:
    expected = [host for role_hosts in hosts.values() for host in role_hosts]
    for attempt in cluster.eventually():
        with attempt:
            missing = cluster.missing_hellos(expected)
            assert not missing, f"never said hello: {', '.join(missing)}"


def test_no_blade_restarted(cluster: MethodologyCluster, at_start: dict[str, Any]) -> None:
    boots: dict[str, Any] = at_start["boots"]

    def same_boots() -> bool:
        now = {host: cluster.get(host, "boot") for host in boots}
        changed = [f"{h} (boot {boots[h]} -> {now[h]})" for h in boots if now[h] != boots[h]]
        assert not changed, f"restarted since the run began: {', '.join(changed)}"
        return True

    cluster.consistently(same_boots, for_=3, what="no blade restarts")
