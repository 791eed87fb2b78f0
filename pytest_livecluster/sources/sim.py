"""``sim``: start the embedded simulated cluster and follow every process's ``/logs``.

Spec: ``sim``, or ``sim:OPTION=VALUE[,OPTION=VALUE...]`` with

=================================== ===============================================
``scrapers=N``, ``spotters=N``      how many blades of each role (default 3 and 2)
``faults=NAME[:K=V...][+NAME...]``  faults on from the start, e.g.
                                    ``faults=lossy_spotter:share=0.5+error_burst``
``seed=N``                          the seed of every random choice (default 0)
``domains=NAME[+NAME...]``          the domains scrapers scrape
``mode=process|docker``             processes (default) or labelled Docker containers
=================================== ===============================================

A comma starts a new spec only before a known kind (``file:``, ``http://``...),
so the options' commas stay inside this one.

:meth:`SimSource.run` starts a :class:`~pytest_livecluster.sim.SimCluster`
(exposed as :attr:`SimSource.cluster`, with :attr:`SimSource.started` set
once it runs), then hands the collector an :class:`~.http.HttpSource` per
process to follow (``emit.follow``), whose lines carry the source id
``sim:HOST``. Their health is summed into this source's when it is read
(``attached`` counts the endpoints followed), their errors and the
supervisor's restarts are copied into it. :meth:`close` stops the followers
and the cluster; ``run`` returns within two seconds. The orchestrator's
control API is named in :meth:`SimSource.endpoints`.

In ``mode=docker`` one :class:`~.docker.DockerSource` follows the run's
containers (``docker:label=livecluster.sim=RUN``) instead; its lines carry the
source id ``docker:CONTAINER`` (``lcsim-RUN-HOST``). In either mode
:meth:`SimSource.host_of` names the process behind a line's source (``HOST``),
so errors read from stderr are grouped under the host the process logs as.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from .._retry import Deadline
from ..core.source import Feed, Followed, Source, SourceHealth, SourceOptions, SourceState
from ..exceptions import SourceUnavailable, SpecError
from ..sim import DEFAULT_DOMAINS, FAULTS, SimCluster, SimError, parse_faults
from ..sim.cluster import MAX_BLADES, MODES
from .docker import DockerSource
from .http import HttpSource

__all__ = ["SimSource", "parse_sim_spec"]

OPTIONS: Final = (
    "scrapers=N",
    "spotters=N",
    "faults=NAME[:KEY=VALUE...][+NAME...]",
    "seed=N",
    "domains=NAME[+NAME...]",
    "mode=process|docker",
)
# A local process restarts within a second; no need for the default backoff cap.
_RECONNECT_MAX_WAIT: Final = 1.0
_JOIN: Final = 1.0


class SimSource(Source):
    """Runs a simulated cluster and follows it."""

    def __init__(
        self,
        spec: str = "sim",
        options: SourceOptions | None = None,
        *,
        scrapers: int = 3,
        spotters: int = 2,
        faults: str | Iterable[str] = (),
        seed: int = 0,
        domains: Iterable[str] = DEFAULT_DOMAINS,
        mode: str = "process",
    ) -> None:
        super().__init__(spec)
        self.options = options or SourceOptions()
        #: The running cluster, once :attr:`started` is set (None if it could not start).
        self.cluster: SimCluster | None = None
        #: Set once :meth:`run` has started the cluster, or failed to.
        self.started = threading.Event()
        self._make_cluster: Callable[[], SimCluster] = lambda: SimCluster(
            scrapers, spotters, faults, seed, domains=domains, mode=mode
        )
        self._followers: list[Source] = []
        self._running: list[Followed] = []
        self._expected_attached = 0
        self._refresh_lock = threading.Lock()
        self._seen_errors: dict[str, int] = {}
        self._seen_events = 0

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> SimSource:
        return cls(spec, options, **parse_sim_spec(spec))

    def run(self, emit: Feed) -> None:
        cluster = self._start()
        if cluster is None:
            return
        try:
            self._follow(cluster, emit)
            self._closed.wait()
        finally:
            self._shut_down(cluster)

    def caught_up(self, quiet: float) -> bool:
        """Every process's log (or container's) has been read to what it held at attach."""
        if self._health.state.ended:
            return True
        followers = list(self._followers)
        return bool(followers) and all(f.caught_up(quiet) for f in followers)

    def close(self) -> None:
        super().close()
        for follower in list(self._followers):
            follower.close()

    # -- running -----------------------------------------------------------------------

    def _start(self) -> SimCluster | None:
        try:
            cluster = self._make_cluster().start(cancel=self._closed)
        except SimError as exc:
            self.started.set()
            if self.closed:
                self._health.state = SourceState.CLOSED
                return None
            self._health.state = SourceState.FAILED
            raise SourceUnavailable(
                f"{self.id}: the simulated cluster did not start: {exc}"
            ) from None
        self.cluster = cluster
        self.started.set()
        return cluster

    def labels(self) -> dict[str, dict[str, str]]:
        """The labels of the containers followed in docker mode (none in process mode)."""
        found: dict[str, dict[str, str]] = {}
        for follower in list(self._followers):
            if isinstance(follower, DockerSource):
                found.update(follower.labels())
        return found

    def endpoints(self) -> dict[str, str]:
        """The orchestrator's control API, once the cluster runs."""
        cluster = self.cluster
        return {} if cluster is None else {"orchestrator": cluster.orchestrator_url}

    def host_of(self, origin: str) -> str | None:
        """``sim:HOST`` is the process ``HOST``; in docker mode, ``docker:lcsim-RUN-HOST`` is
        ``HOST`` too, the name the process logs under, not its container's."""
        if origin.startswith("sim:"):
            return origin.removeprefix("sim:")
        cluster = self.cluster
        for follower in list(self._followers):
            name = follower.host_of(origin)
            if name is not None:
                host = cluster.host_of_container(name) if cluster is not None else None
                return host or name
        return None

    def _follow(self, cluster: SimCluster, emit: Feed) -> None:
        options = dataclasses.replace(
            self.options,
            http_headers={},
            http_ca=None,
            reconnect_max_wait=min(self.options.reconnect_max_wait, _RECONNECT_MAX_WAIT),
        )
        followers: list[Source]
        if cluster.mode == "docker":
            followers = [DockerSource(cluster.docker_spec, options)]
        else:
            followers = []
            for host, url in cluster.log_urls.items():
                http = HttpSource(url, options)
                http.id = http.health.source = f"sim:{host}"
                followers.append(http)
        self._expected_attached = len(cluster.log_urls)
        for follower in followers:
            self._followers.append(follower)
            self._running.append(emit.follow(follower))
        if self.closed:  # close() ran before the followers existed
            self.close()

    def _shut_down(self, cluster: SimCluster) -> None:
        for follower in self._followers:
            follower.close()
        deadline = Deadline(_JOIN)
        for running in self._running:
            running.join(deadline.remaining())
        cluster.stop()
        self.current_health()
        self._health.attached = 0
        failed = any(f.health.state is SourceState.FAILED for f in self._followers)
        self._health.state = SourceState.FAILED if failed else SourceState.CLOSED

    # -- health ------------------------------------------------------------------------

    def current_health(self) -> SourceHealth:
        """This source's health: the sum of its followers', with their errors and restarts."""
        with self._refresh_lock:
            self._refresh()
        return self._health

    def _refresh(self) -> None:
        followers = list(self._followers)
        health = self._health
        if health.state.ended or not followers:
            return
        health.attached = sum(f.health.attached for f in followers)
        health.lines = sum(f.health.lines for f in followers)
        health.bytes = sum(f.health.bytes for f in followers)
        health.reconnects = sum(f.health.reconnects for f in followers)
        health.gaps = sum(f.health.gaps for f in followers)
        last = [f.health.last_line_ns for f in followers if f.health.last_line_ns is not None]
        health.last_line_ns = max(last, default=None)
        attached = health.attached >= self._expected_attached
        health.state = SourceState.ATTACHED if attached else SourceState.RECONNECTING
        for follower in followers:
            self._copy_errors(follower)
        self._copy_events()

    def _copy_errors(self, follower: Source) -> None:
        seen = self._seen_errors.get(follower.id, 0)
        count = follower.health.error_count
        if count > seen:
            for message in list(follower.health.errors)[-(count - seen) :]:
                self._health.error(message)
        self._seen_errors[follower.id] = count

    def _copy_events(self) -> None:
        if self.cluster is None:
            return
        events = list(self.cluster.events)
        for event in events[self._seen_events :]:
            self._health.error(f"{self.id}: {event}")
        self._seen_events = len(events)


# -- the spec ------------------------------------------------------------------------------


def parse_sim_spec(spec: str) -> dict[str, Any]:
    """The keyword arguments of :class:`SimSource` that ``spec`` gives; SpecError if bad."""
    if spec == "sim":
        return {}
    if not spec.startswith("sim:") or spec == "sim:":
        raise SpecError(
            f"bad source spec {spec!r}: write sim or sim:OPTION=VALUE[,...]; {_valid()}"
        )
    found: dict[str, Any] = {}
    for item in spec.removeprefix("sim:").split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        parse = _PARSERS.get(key)
        if parse is None or not eq:
            raise SpecError(f"bad sim option {item.strip()!r} in {spec!r}; {_valid()}")
        if key in found:
            raise SpecError(f"sim option {key!r} is given twice in {spec!r}")
        try:
            found[key] = parse(value)
        except ValueError as exc:
            raise SpecError(f"bad value {value!r} for {key} in {spec!r}: {exc}") from None
    return found


def _valid() -> str:
    return f"valid options: {', '.join(OPTIONS)}"


def _count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_BLADES:
        raise ValueError(f"expected a whole number from 1 to {MAX_BLADES}")
    return int(value)


def _seed(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _faults(value: str) -> str:
    if not value:
        raise ValueError(f"expected NAME[+NAME...]; valid faults: {', '.join(FAULTS)}")
    parse_faults(value)  # raises ValueError naming the bad fault and the valid ones
    return value


def _domains(value: str) -> tuple[str, ...]:
    domains = tuple(d.strip() for d in value.split("+"))
    if not all(domains):
        raise ValueError("expected NAME[+NAME...]")
    return domains


def _mode(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"expected {' or '.join(MODES)}")
    return value


_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    "scrapers": _count,
    "spotters": _count,
    "faults": _faults,
    "seed": _seed,
    "domains": _domains,
    "mode": _mode,
}
