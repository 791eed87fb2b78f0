"""The simulated cluster: real processes on 127.0.0.1, followed like any other cluster.

Most checks share one cluster (``live``, a ``sim`` source feeding a State
through a Collector) and switch faults at run time, each on hosts of its own
and off again at the end, so the suite stays well under a minute. Faults given
at start, ``stop()``, the ``sim`` spec and the ``livecluster`` command get
small clusters of their own. The ``Log-Epoch`` extension of the ``/logs``
protocol, which the restarts rely on, is tested first on plain LogServers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from livecluster import writer_host

from pytest_livecluster import SpecError, State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.waiting import eventually
from pytest_livecluster.protocol.server import EPOCH_HEADER, LogBuffer, LogRequestHandler, LogServer
from pytest_livecluster.sim import FAULTS, OrchestratorClient, SimCluster, SimError, parse_faults
from pytest_livecluster.sources import SourceOptions, parse_specs
from pytest_livecluster.sources.http import HttpSource
from pytest_livecluster.sources.sim import SimSource, parse_sim_spec
from tests.support import HANG_GUARD, Runner, returns

COUNTERS = ["intents.*.resolution.*.item_scraped.*", "intents.*.resolution.*.received"]
DOMAINS = ["site1.example", "shop.example", "news.example"]
HOSTS = ["orchestrator", "scraper-1", "scraper-2", "scraper-3", "spotter-1", "spotter-2"]


def _line(n: int, boot: str) -> bytes:
    return b'{"n":%d,"boot":"%s"}' % (n, boot.encode())


def _options() -> SourceOptions:
    return SourceOptions(http_read_timeout=5.0, reconnect_max_wait=0.2)


# -- the Log-Epoch extension ---------------------------------------------------------------


def test_epoch_change_makes_the_source_read_the_restarted_log_from_the_start() -> None:
    old = LogBuffer()
    for n in (1, 2, 3):
        old.append(_line(n, "old"))
    first = LogServer(old, heartbeat=0.2).start()
    source = HttpSource(first.url, _options())
    with Runner(source) as runner:
        runner.wait_lines(3)
        first.close()
        runner.wait_until(lambda: source.health.state == "reconnecting")
        new = LogBuffer()  # a restarted process: numbering from 1, a new epoch
        new.append(_line(1, "new"))
        new.append(_line(2, "new"))
        with LogServer(new, port=first.port, heartbeat=0.2):
            runner.wait_lines(5)
            new.append(_line(3, "new"))
            new.append(_line(4, "new"))
            runner.wait_lines(7)
            runner.stop()
    assert runner.lines == [_line(n, "old") for n in (1, 2, 3)] + [
        _line(n, "new") for n in (1, 2, 3, 4)
    ]
    assert runner.seqs == [1, 2, 3, 1, 2, 3, 4]
    assert old.epoch != new.epoch
    health = source.health
    assert health.gaps == 0
    assert health.reconnects >= 2  # the dropped stream, then the new log
    restarted = [e for e in health.errors if "epoch changed" in e]
    assert restarted == [
        f"{source.id} restarted (epoch changed); reading its new log from the start"
    ]


def test_the_epoch_belongs_to_the_buffer_and_is_sent_with_every_stream() -> None:
    buffer = LogBuffer()
    buffer.append(_line(1, "x"))
    with LogServer(buffer, heartbeat=0.2) as server:
        seen = _epoch_of(server.url)
    with LogServer(buffer, heartbeat=0.2) as server:
        assert _epoch_of(server.url) == seen == buffer.epoch
    assert LogBuffer().epoch != buffer.epoch


def _epoch_of(url: str) -> str | None:
    import httpx

    with httpx.stream("GET", url, timeout=5.0) as response:
        epoch: str | None = response.headers.get(EPOCH_HEADER)
        return epoch


class _NoEpochHandler(LogRequestHandler):
    """An older server: no Log-Epoch header."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword != EPOCH_HEADER:
            super().send_header(keyword, value)


def test_without_the_epoch_header_a_restart_is_not_detected_as_before() -> None:
    old = LogBuffer()
    for n in (1, 2, 3):
        old.append(_line(n, "old"))
    first = LogServer(old, heartbeat=0.2)
    first.handler_class = _NoEpochHandler
    first.start()
    source = HttpSource(first.url, _options())
    with Runner(source) as runner:
        runner.wait_lines(3)
        first.close()
        runner.wait_until(lambda: source.health.state == "reconnecting")
        new = LogBuffer()
        for n in (1, 2, 3, 4, 5):
            new.append(_line(n, "new"))
        second = LogServer(new, port=first.port, heartbeat=0.2)
        second.handler_class = _NoEpochHandler
        with second:
            runner.wait_lines(5)
            runner.stop()
    # The old behaviour: resumed after line 3, so the new log's lines 1-3 are skipped.
    assert runner.lines[3:] == [_line(4, "new"), _line(5, "new")]
    assert not [e for e in source.health.errors if "epoch" in e]


# -- faults and specs, without processes ---------------------------------------------------


def test_faults_parse_with_their_defaults_and_name_the_valid_ones() -> None:
    assert set(FAULTS) == {
        "silent_scraper",
        "lossy_spotter",
        "failed_update",
        "error_burst",
        "crash_restart",
        "slow_resolution",
    }
    assert parse_faults("lossy_spotter:share=0.5+silent_scraper") == {
        "lossy_spotter": {"host": "spotter-1", "share": 0.5},
        "silent_scraper": {"host": "scraper-1"},
    }
    assert parse_faults(["error_burst:count=2:host=*"]) == {
        "error_burst": {"host": "*", "count": 2}
    }
    with pytest.raises(ValueError, match="unknown fault 'nope'; valid faults: silent_scraper"):
        parse_faults("nope")
    with pytest.raises(ValueError, match=r"has no parameter 'share'; its parameters: host$"):
        parse_faults("silent_scraper:share=1")
    with pytest.raises(ValueError, match="share must be a number from 0 to 1, got '2'"):
        parse_faults("lossy_spotter:share=2")


def test_sim_specs_and_their_errors() -> None:
    [source] = parse_specs("sim")
    assert isinstance(source, SimSource)
    assert source.id == "sim"
    spec = "sim:scrapers=2,spotters=1,faults=lossy_spotter+error_burst:count=2,seed=7"
    assert parse_sim_spec(spec) == {
        "scrapers": 2,
        "spotters": 1,
        "faults": "lossy_spotter+error_burst:count=2",
        "seed": 7,
    }
    sim, recording = parse_specs(f"{spec},file:rec.ndjson")
    assert (sim.id, recording.id) == (spec, "file:rec.ndjson")
    valid = "valid options: scrapers=N, spotters=N, faults=NAME"
    with pytest.raises(SpecError, match=f"bad sim option 'color=red' in 'sim:color=red'; {valid}"):
        parse_specs("sim:color=red")
    with pytest.raises(SpecError, match=r"bad value 'x' for scrapers .* from 1 to 50"):
        parse_specs("sim:scrapers=x")
    with pytest.raises(SpecError, match=r"bad value 'nope' .* valid faults: silent_scraper"):
        parse_specs("sim:faults=nope")
    with pytest.raises(SpecError, match="'seed' is given twice"):
        parse_specs("sim:seed=1,seed=2")
    with pytest.raises(SpecError, match="bad source spec 'simulated'"):
        parse_specs("simulated")


# -- one live cluster for the run-time checks ----------------------------------------------


@dataclass
class Live:
    state: State
    source: SimSource
    cluster: SimCluster
    client: OrchestratorClient

    def wait(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        return eventually(self.state, check, timeout=timeout, tick=0.05)

    def writers(self, iid: str) -> dict[str, Any]:
        """The intent's resolution as written: by writer key (``host/incarnation`` for counts)."""
        found: dict[str, Any] = self.state.get("intents", iid, "resolution", default={})
        return found

    def resolution(self, iid: str) -> dict[str, Any]:
        """The resolution by host: each host's writers' fields together (one process each)."""
        merged: dict[str, Any] = {}
        for writer, fields in self.writers(iid).items():
            merged.setdefault(writer_host(writer), {}).update(fields)
        return merged

    def sent(self, iid: str) -> int:
        return sum(
            counts["item_sent"]
            for writer in self.writers(iid).values()
            for counts in writer.get("item_scraped", {}).values()
        )

    def received(self, iid: str) -> int:
        return sum(writer.get("received", 0) for writer in self.writers(iid).values())

    def settled(self, iid: str, quiet: float = 0.6, timeout: float = 6.0) -> tuple[int, int]:
        """(sent, received) once the intent's counts stopped changing for ``quiet`` s."""
        deadline = time.monotonic() + timeout
        last, since = (-1, -1), time.monotonic()
        while time.monotonic() < deadline:
            counts = (self.sent(iid), self.received(iid))
            if counts != last:
                last, since = counts, time.monotonic()
            elif counts[0] > 0 and time.monotonic() - since >= quiet:
                return counts
            self.state.wait_for_change(self.state.version, 0.05)
        raise AssertionError(f"{iid} did not settle in {timeout} s: {self.resolution(iid)}")

    def hellos(self, host: str) -> list[dict[str, Any]]:
        return [
            entry.shard[host]
            for entry in self.state.journal()
            if entry.shard.get(host, {}).get("msg") == "Hello World"
        ]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    state = State(counters=COUNTERS)
    source = SimSource(scrapers=3, spotters=2, seed=1)
    collector = Collector(state, [source]).start()
    try:
        assert source.started.wait(20)
        assert source.cluster is not None, collector.failures
        with source.cluster.client() as client:
            live = Live(state, source, source.cluster, client)
            live.wait(lambda: all(state.get(host, "msg") == "Hello World" for host in HOSTS))
            yield live
    finally:
        assert collector.close(timeout=HANG_GUARD) == []
    assert collector.failures == []


def test_a_healthy_intent_resolves_through_both_phases(live: Live) -> None:
    iid = live.client.set_intent("scraper-1", "scraper@1.4", spotter="spotter-1")
    intent = live.wait(lambda: live.state.get("intents", iid))
    assert {k: intent[k] for k in ("host", "module", "kind")} == {
        "host": "scraper-1",
        "module": "scraper@1.4",
        "kind": "scrape",
    }
    live.wait(lambda: set(live.resolution(iid)["scraper-1"]["item_scraped"]) == set(DOMAINS))
    live.wait(lambda: live.resolution(iid)["spotter-1"]["received"] > 0)
    sent, received = live.settled(iid)
    resolution = live.resolution(iid)
    assert set(resolution) == {"scraper-1", "spotter-1"}
    # Counts and receipts come from the writer kit, under each process's writer key;
    # the scraper's "started" under its plain host key.
    writers = live.writers(iid)
    assert writers["scraper-1"] == {"started": resolution["scraper-1"]["started"]}
    [counter] = [w for w in writers if w.startswith("scraper-1/")]
    [receiver] = [w for w in writers if w.startswith("spotter-1/")]
    assert set(writers) == {"scraper-1", counter, receiver}
    scraper = resolution["scraper-1"]
    assert isinstance(scraper["started"], float)
    for counts in scraper["item_scraped"].values():
        assert set(counts) == {
            "tries",
            "time_spent",
            "item_collected",
            "item_sent_tries",
            "item_sent",
            "errors",
        }
        assert counts["tries"] == counts["item_collected"] == counts["item_sent"] > 0
        assert counts["errors"] == 0
    assert resolution["spotter-1"] == {"received": received, "from": "scraper-1"}
    assert sent == received
    health = live.source.health
    assert (health.attached, health.state, health.gaps) == (6, "attached", 0)


def test_counts_agree_between_scrapers_and_spotters(live: Live) -> None:
    scrapers = ("scraper-1", "scraper-2", "scraper-3")
    iids = [live.client.set_intent(host, "scraper@1.4") for host in scrapers]
    settled = [live.settled(iid) for iid in iids]
    for sent, received in settled:
        assert sent == received > 0
    # The spotters are chosen in turn, so both took part.
    writers = {host for iid in iids for host in live.resolution(iid)}
    assert {"spotter-1", "spotter-2"} <= writers
    assert sum(s for s, _ in settled) == sum(r for _, r in settled)


def test_silent_scraper_never_answers(live: Live) -> None:
    assert live.client.set_fault("silent_scraper", host="scraper-3") == {
        "silent_scraper": {"host": "scraper-3"}
    }
    try:
        silent = live.client.set_intent("scraper-3", "scraper@1.4")
        control = live.client.set_intent("scraper-2", "scraper@1.4")
        live.settled(control)
        live.wait(lambda: live.state.get("intents", silent, "host") == "scraper-3")
        assert live.resolution(silent) == {}
        table = {"silent_scraper": {"host": "scraper-3"}}
        live.wait(lambda: live.state.get("orchestrator", "faults") == table)
    finally:
        live.client.set_fault("silent_scraper", on=False)
    assert live.client.faults() == {}
    live.wait(lambda: live.state.get("orchestrator", "faults") == {})


def test_lossy_spotter_receives_fewer_than_were_sent(live: Live) -> None:
    live.client.set_fault("lossy_spotter", host="spotter-2", share=0.5)
    try:
        iid = live.client.set_intent("scraper-2", "scraper@1.4", spotter="spotter-2")
        sent, received = live.settled(iid)
    finally:
        live.client.set_fault("lossy_spotter", on=False)
    assert 0 < received < sent


def test_failed_update_keeps_the_module_and_logs_an_error(live: Live) -> None:
    live.client.set_fault("failed_update", host="scraper-2")
    try:
        failed = live.client.update_module("scraper-2", "scraper@1.5")
        good = live.client.update_module("scraper-1", "scraper@1.5")
        error = live.wait(lambda: live.state.get("scraper-2", "errors", "UpdateFailed"))
        live.wait(lambda: live.resolution(good) == {"scraper-1": {"updated": "scraper@1.5"}})
    finally:
        live.client.set_fault("failed_update", on=False)
    assert error["count"] == 1
    assert error["last"] == f"cannot install scraper@1.5 for {failed}: checksum mismatch"
    live.wait(lambda: live.state.get("intents", failed, "kind") == "update")
    assert live.resolution(failed) == {}
    assert live.state.get("scraper-2", "module") == "scraper@1.4"
    assert live.state.get("scraper-1") == {
        "msg": "module updated",
        "boot": 1,
        "module": "scraper@1.5",
    }


def test_error_burst_logs_structured_errors_and_a_traceback(live: Live) -> None:
    live.client.set_fault("error_burst", host="scraper-3", count=5)
    try:
        errors = live.wait(
            lambda: (
                _counts(live.state.get("scraper-3", "errors"))
                == {"FetchTimeout": 2, "ParseError": 2, "ConnectionReset": 1}
                and live.state.get("scraper-3", "errors")
            )
        )
        traceback = live.wait(lambda: _rejected_from(live.state, "sim:scraper-3"))
    finally:
        live.client.set_fault("error_burst", on=False)
    assert errors["FetchTimeout"]["domain"] in DOMAINS
    assert errors["FetchTimeout"]["last"].startswith("GET https://")
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1].startswith("pytest_livecluster.sim.node.SimulatedFetchError: https://")
    assert any(line.startswith('  File "') for line in traceback)


def _counts(errors: dict[str, Any] | None) -> dict[str, int]:
    return {kind: detail["count"] for kind, detail in (errors or {}).items()}


def _rejected_from(state: State, source: str) -> list[str]:
    """The rejected lines of ``source``'s traceback; empty until all of it is there."""
    lines = [r.text for r in state.rejected() if r.envelope.source == source]
    starts = [n for n, line in enumerate(lines) if line == "Traceback (most recent call last):"]
    ends = [n for n, line in enumerate(lines) if "SimulatedFetchError:" in line]
    return lines[starts[0] : ends[0] + 1] if starts and ends else []


def test_crash_restart_says_hello_again_and_goes_on(live: Live) -> None:
    before = live.cluster.pids()["scraper-2"]
    live.client.set_fault("crash_restart", host="scraper-2", after=0.1)
    try:
        live.wait(lambda: live.state.get("scraper-2", "boot") == 2, timeout=8)
    finally:
        live.client.set_fault("crash_restart", on=False)
    assert [hello["boot"] for hello in live.hellos("scraper-2")] == [1, 2]
    assert live.cluster.pids()["scraper-2"] != before
    assert live.cluster.restarts()["scraper-2"] == 1
    # The restarted process kept its module and its ports, and works.
    assert live.state.get("scraper-2", "module") == "scraper@1.4"
    iid = live.client.set_intent("scraper-2", "scraper@1.4")
    sent, received = live.settled(iid)
    assert sent == received > 0
    errors = list(live.source.health.errors)
    assert "sim:scraper-2 restarted (epoch changed); reading its new log from the start" in errors
    assert any("scraper-2 exited with status 70; restarted it" in e for e in errors)


def test_slow_resolution_takes_much_longer(live: Live) -> None:
    live.client.set_fault("slow_resolution", host="scraper-1", factor=10)
    try:
        start = time.monotonic()
        fast = live.client.set_intent("scraper-2", "scraper@1.4")
        slow = live.client.set_intent("scraper-1", "scraper@1.4")
        fast_first = _first_counts(live, fast, "scraper-2", start)
        slow_first = _first_counts(live, slow, "scraper-1", start)
        fast_sent, _ = live.settled(fast)
        assert live.sent(slow) < fast_sent
    finally:
        live.client.set_fault("slow_resolution", on=False)
    # Healthy: the first counts within 20-60 ms + 100-250 ms; slow: ten times that.
    assert fast_first < slow_first
    assert slow_first >= 1.2


def _first_counts(live: Live, iid: str, host: str, start: float) -> float:
    """Seconds from ``start`` until ``host`` logged counts for ``iid``."""
    live.wait(lambda: live.resolution(iid)[host]["item_scraped"], timeout=6)
    return time.monotonic() - start


# -- their own clusters --------------------------------------------------------------------


def test_stop_leaves_no_process_behind() -> None:
    me = psutil.Process()
    with SimCluster(scrapers=1, spotters=1) as sim:
        pids = set(sim.pids().values())
        assert len(pids) == 3
        assert pids <= {child.pid for child in me.children(recursive=True)}
        assert sorted(sim.log_urls) == ["orchestrator", "scraper-1", "spotter-1"]
        workdir = sim.workdir
        assert workdir is not None
        # Nothing on stderr (no warning, no traceback) in a healthy start.
        assert [(workdir / f"{host}.stderr").read_text() for host in sim.log_urls] == ["", "", ""]
        returns(sim.stop, what="SimCluster.stop()")  # the with block's exit stops it again
    assert not pids & {child.pid for child in me.children(recursive=True)}
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    assert not workdir.exists()


def test_faults_at_start_through_the_spec_and_a_prompt_close() -> None:
    state = State()
    [source] = parse_specs("sim:scrapers=1,spotters=1,faults=error_burst:count=2+silent_scraper")
    assert isinstance(source, SimSource)
    collector = Collector(state, [source]).start()
    try:
        assert source.started.wait(20)
        assert source.cluster is not None
        burst = {"FetchTimeout": 1, "ParseError": 1}
        eventually(state, lambda: _counts(state.get("scraper-1", "errors")) == burst, timeout=5)
        with source.cluster.client() as client:
            assert client.faults() == {
                "error_burst": {"host": "scraper-1", "count": 2},
                "silent_scraper": {"host": "scraper-1"},
            }
            assert client.hosts() == {
                "orchestrator": ["orchestrator"],
                "scraper": ["scraper-1"],
                "spotter": ["spotter-1"],
            }
            unknown = "unknown host 'scraper-9'; blades: scraper-1, spotter-1"
            with pytest.raises(SimError, match=unknown):
                client.set_intent("scraper-9", "scraper@1.4")
            with pytest.raises(SimError, match="unknown fault 'nope'; valid faults"):
                client.set_fault("nope")
        pids = set(source.cluster.pids().values())
    finally:
        stuck = collector.close(timeout=HANG_GUARD)
    assert stuck == []
    assert collector.failures == []
    assert source.health.state == "closed"
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_close_while_the_cluster_starts_abandons_the_start() -> None:
    """The start is cancelled, not waited out: no cluster ever ran (a start that went on
    would have set one), and nothing is left behind."""
    before = set(psutil.Process().children(recursive=True))
    source = SimSource(scrapers=3, spotters=2)
    collector = Collector(State(), [source]).start()
    time.sleep(0.1)
    assert collector.close(timeout=HANG_GUARD) == []
    assert (collector.failures, source.health.state) == ([], "closed")
    assert source.started.is_set()
    assert source.cluster is None
    assert set(psutil.Process().children(recursive=True)) <= before


def test_livecluster_state_sim_prints_every_hello(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("livecluster")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "pytest_livecluster.cli"]
    command = [*program, "state", "sim", "--until-idle", "2"]
    done = subprocess.run(command, capture_output=True, timeout=30, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    state = json.loads(done.stdout)
    assert sorted(state) == HOSTS
    for host in HOSTS:
        assert state[host]["msg"] == "Hello World"
        assert state[host]["boot"] == 1
    assert b"6 lines from 1 source(s): 6 accepted, 0 rejected" in done.stderr
