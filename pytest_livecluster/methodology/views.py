"""The cluster's logging methodology, read back from the state.

Blades say hello under their own host key, the orchestrator writes intents,
blades answer under ``intents.<id>.resolution.<host>``, scrapers count per
domain under ``item_scraped.<domain>``, spotters add their own host key when
they receive items, and errors sit under ``errors``. :class:`Methodology`
(:mod:`.schema`) holds the key names and the host roles (configurable);
:class:`Views` answers the questions live tests ask: who said hello, what
phase an intent is in and since when, whether a module update landed, the
counts with their loss, and the errors grouped.

Views read the live state and the methodology's projection
(:class:`~.facts.MethodologyFacts`), which keeps what the state alone cannot
tell (who ever said hello, when an intent was first seen) from every shard:
never the journal, which holds only recent lines. The monitor reports; it
never acts.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

# A blade's processes write under host/incarnation keys (the writer kit's scheme); every
# view credits them to the host.
from livecluster.keys import writer_host

from ..core.state import Rejected, State
from ..exceptions import ConfigError
from .facts import MethodologyFacts
from .schema import ROLE_LABEL, Methodology

__all__ = [
    "Counts",
    "ErrorGroup",
    "IntentView",
    "Phase",
    "Views",
    "traceback_groups",
]


class Phase(enum.Enum):
    """How far an intent got, as the seed defines it."""

    NO_ANSWER = "no answer"
    SCRAPER_STARTED = "scraper started, no data received"
    SPOTTER_RECEIVING = "scraper sends, spotter receives"

    def __str__(self) -> str:
        return self.value


ORDER = {Phase.NO_ANSWER: 0, Phase.SCRAPER_STARTED: 1, Phase.SPOTTER_RECEIVING: 2}


@dataclass(frozen=True)
class IntentView:
    """One intent as the state shows it."""

    id: str
    host: str | None
    module: str | None
    kind: str | None
    answered_by: tuple[str, ...]
    scrapers: tuple[str, ...]
    spotters: tuple[str, ...]
    phase: Phase
    first_seen: float | None
    phase_since: float | None
    raw: Mapping[str, Any]

    def in_phase_for(self, now: float | None = None) -> float | None:
        """Seconds the intent has been in its phase (None if no time is known)."""
        if self.phase_since is None:
            return None
        return (time.time() if now is None else now) - self.phase_since

    def age(self, now: float | None = None) -> float | None:
        if self.first_seen is None:
            return None
        return (time.time() if now is None else now) - self.first_seen


@dataclass
class Counts:
    """Counter totals: overall, per scraper and per domain, and the loss to the spotters."""

    total: dict[str, int | float]
    by_scraper: dict[str, dict[str, int | float]]
    by_domain: dict[str, dict[str, int | float]]
    received: int | float
    received_by_spotter: dict[str, int | float]

    @property
    def sent(self) -> int | float:
        return self.total.get("item_sent", 0)

    @property
    def loss(self) -> int | float:
        """Items sent that no spotter reported receiving."""
        return self.sent - self.received

    @property
    def loss_ratio(self) -> float:
        return float(self.loss) / self.sent if self.sent else 0.0


@dataclass
class ErrorGroup:
    """Errors of one kind from one host (and domain), with when and an example."""

    host: str
    type: str
    domain: str | None
    count: int
    first_seen: float | None
    last_seen: float | None
    sample: str

    def key(self) -> tuple[str, str, str]:
        return (self.host, self.type, self.domain or "")


class Views:
    """Questions about the cluster, answered from a :class:`State`.

    ``origin_labels`` returns the labels of where lines come from (Docker
    containers, by envelope source): a host written by a container labelled
    ``livecluster.role`` takes that role, before any pattern is tried.
    ``host_of`` names the host behind an envelope source (the container
    ``web-1`` for ``docker:web-1``), for errors read from unstructured output.
    """

    def __init__(
        self,
        state: State,
        methodology: Methodology | None = None,
        origin_labels: Callable[[], Mapping[str, Mapping[str, str]]] | None = None,
        host_of: Callable[[str], str] | None = None,
    ) -> None:
        self.state = state
        self.m = methodology or Methodology()
        self.facts = facts_of(state, self.m)
        self._origin_labels = origin_labels
        self._host_of = host_of or _same
        self._label_roles: tuple[int, dict[str, str]] = (-1, {})
        self._pattern_roles: dict[str, str | None] = {}  # the patterns never change

    def role_of(self, host: str) -> str | None:
        """The role of ``host``: its container's ``livecluster.role`` label, else the patterns."""
        return self._roles_from_labels().get(host) or self._role_by_pattern(host)

    def _role_by_pattern(self, host: str) -> str | None:
        cache = self._pattern_roles
        if host not in cache:
            if len(cache) >= 100_000:  # host keys are few; a flood of them is not kept
                cache.clear()
            cache[host] = self.m.role_of(host)
        return cache[host]

    def _roles_from_labels(self) -> dict[str, str]:
        """Roles of the host keys written by a source with a ``livecluster.role`` label."""
        if self._origin_labels is None:
            return {}
        version = self.state.version
        if self._label_roles[0] == version:
            return self._label_roles[1]
        by_origin = {
            origin: labels[ROLE_LABEL]
            for origin, labels in self._origin_labels().items()
            if labels.get(ROLE_LABEL)
        }
        roles: dict[str, str] = {}
        if by_origin:
            with self.facts.reading():
                writers = [(host, list(sources)) for host, sources in self.facts.writers.items()]
            for host, sources in writers:
                role = next((by_origin[s] for s in sources if s in by_origin), None)
                if role is not None:
                    roles[host] = role
        self._label_roles = (version, roles)
        return roles

    # -- blades --------------------------------------------------------------------

    def hellos(self) -> dict[str, list[str]]:
        """Hosts that said hello, by role (``None`` role: ``other``).

        A hello is latched: a blade that said it and then wrote another ``msg``
        still said it, however many lines later.
        """
        with self.facts.reading():
            hosts = list(self.facts.hello)
        out: dict[str, list[str]] = {}
        for host in hosts:
            out.setdefault(self.role_of(host) or "other", []).append(host)
        return {role: sorted(hosts) for role, hosts in sorted(out.items())}

    def restarts(self) -> dict[str, int]:
        """Hosts whose ``boot`` value changed, with how many times (restarted blades)."""
        with self.facts.reading():
            return {host: n for host, n in sorted(self.facts.restarts.items()) if n}

    def missing_hellos(self, expected: Iterable[str]) -> list[str]:
        """Expected hosts that never said hello."""
        seen = {h for hosts in self.hellos().values() for h in hosts}
        return sorted(set(expected) - seen)

    # -- intents -------------------------------------------------------------------

    def intent_ids(self) -> list[str]:
        key = self.m.intents_key
        return self.state.read(
            lambda root: (
                sorted(root.get(key, {}), key=_natural) if type(root.get(key)) is dict else []
            )
        )

    def intent(self, iid: str) -> IntentView | None:
        """The intent ``iid``, or ``None`` if the state has no such intent."""
        raw = self.state.get(self.m.intents_key, iid)
        if type(raw) is not dict:
            return None
        times = self.facts.timelines([iid]).get(iid, {})
        return self._view(iid, raw, times, self._roles_from_labels())

    def intents(self) -> list[IntentView]:
        """Every intent the state holds, in natural order of their ids (one copy of them)."""
        every = self.state.get(self.m.intents_key)
        if type(every) is not dict:
            return []
        ids = sorted(every, key=_natural)
        times = self.facts.timelines(ids)
        labels = self._roles_from_labels()
        return [
            self._view(iid, raw, times.get(iid, {}), labels)
            for iid in ids
            if type(raw := every[iid]) is dict
        ]

    def by_phase(self) -> dict[Phase, list[str]]:
        out: dict[Phase, list[str]] = {phase: [] for phase in Phase}
        for view in self.intents():
            out[view.phase].append(view.id)
        return out

    def stale(
        self,
        older_than: float,
        reached: Phase = Phase.SPOTTER_RECEIVING,
        *,
        now: float | None = None,
    ) -> list[IntentView]:
        """Intents first seen more than ``older_than`` s ago that have not reached ``reached``.

        A module update intent (``kind: update``) is never received by a spotter;
        it counts as done once the blade reports the new module. Ages are
        measured at ``now`` (the clock by default; a replay passes its end).
        """
        now = time.time() if now is None else now
        return [
            v
            for v in self.intents()
            if ORDER[v.phase] < ORDER[reached]
            and (v.age(now) or 0) > older_than
            and not (v.kind == "update" and self.module_updated(v.id))
        ]

    def module_updated(self, iid: str) -> bool:
        """Whether the blade the intent names reports the intent's module."""
        view = self.intent(iid)
        if view is None or view.host is None or view.module is None:
            return False
        return bool(self.state.get(view.host, self.m.module_key) == view.module)

    def scraping_started(self, iid: str) -> bool:
        """Whether the intent's scraper answered it (wrote under its resolution)."""
        view = self.intent(iid)
        return view is not None and view.host is not None and view.host in view.answered_by

    def _view(
        self,
        iid: str,
        raw: dict[str, Any],
        times: Mapping[str, float],
        labels: Mapping[str, str],
    ) -> IntentView:
        m = self.m
        resolution = raw.get(m.resolution_key)
        if type(resolution) is dict and resolution:
            answered = tuple(sorted({writer_host(w) for w in resolution}))
            patterns = self._pattern_roles
            scraper_list: list[str] = []
            spotter_list: list[str] = []
            for h in answered:
                role = labels.get(h) or (patterns[h] if h in patterns else self._role_by_pattern(h))
                if role == "scraper":
                    scraper_list.append(h)
                elif role == "spotter":
                    spotter_list.append(h)
            scrapers, spotters = tuple(scraper_list), tuple(spotter_list)
        else:
            answered = scrapers = spotters = ()
        host = raw.get("host")
        first = times.get("")
        if spotters and (scrapers or host in answered):
            phase = Phase.SPOTTER_RECEIVING
            since = min((times[h] for h in spotters if h in times), default=None)
        elif answered:
            phase = Phase.SCRAPER_STARTED
            since = min((times[h] for h in answered if h in times), default=None)
        else:
            phase = Phase.NO_ANSWER
            since = first
        module = raw.get(m.module_key)
        kind = raw.get("kind")
        return IntentView(
            iid,
            host if type(host) is str else None,
            module if type(module) is str else None,
            kind if type(kind) is str else None,
            answered,
            scrapers,
            spotters,
            phase,
            first,
            since,
            raw,
        )

    # -- counting ------------------------------------------------------------------

    def counts(self) -> Counts:
        m = self.m
        total: dict[str, int | float] = dict.fromkeys(m.fields, 0)
        by_scraper: dict[str, dict[str, int | float]] = {}
        by_domain: dict[str, dict[str, int | float]] = {}
        received: dict[str, int | float] = {}

        def read(root: dict[str, Any]) -> None:
            intents = root.get(m.intents_key)
            if type(intents) is not dict:
                return
            for body in intents.values():
                resolution = body.get(m.resolution_key) if type(body) is dict else None
                if type(resolution) is not dict:
                    continue
                for writer, answer in resolution.items():
                    if type(answer) is not dict:
                        continue
                    host = writer_host(writer)
                    n = answer.get(m.received_key)
                    if _number(n):
                        received[host] = received.get(host, 0) + n
                    scraped = answer.get(m.scraped_key)
                    if type(scraped) is not dict:
                        continue
                    for domain, fields in scraped.items():
                        if type(fields) is not dict:
                            continue
                        for name in m.fields:
                            value = fields.get(name)
                            if _number(value):
                                total[name] += value
                                _add(by_scraper, host, name, value)
                                _add(by_domain, domain, name, value)

        self.state.read(read)
        return Counts(total, by_scraper, by_domain, sum(received.values()), received)

    # -- errors --------------------------------------------------------------------

    def errors(self) -> list[ErrorGroup]:
        """Every error the state and the unstructured output show, grouped."""
        groups: dict[tuple[str, str, str], ErrorGroup] = {}
        structured = self._structured_errors()
        unstructured = traceback_groups(self.state.rejected(), self._host_of)
        # Several writers of one host (its processes) report the same errors: one group.
        for group in [*structured, *unstructured]:
            old = groups.get(group.key())
            if old is None:
                groups[group.key()] = group
            else:
                old.count += group.count
                old.last_seen = _max(old.last_seen, group.last_seen)
                old.first_seen = _min(old.first_seen, group.first_seen)
        return sorted(groups.values(), key=lambda g: (-g.count, g.key()))

    def _structured_errors(self) -> list[ErrorGroup]:
        m = self.m
        found: list[ErrorGroup] = []

        def read(root: dict[str, Any]) -> None:
            for key, body in root.items():
                if key == m.intents_key or type(body) is not dict:
                    continue
                errors = body.get(m.errors_key)
                if type(errors) is dict:
                    for kind, info in errors.items():
                        found.append(_structured(writer_host(key), kind, info))
            intents = root.get(m.intents_key)
            if type(intents) is not dict:
                return
            per_domain: dict[tuple[str, str], int] = {}
            for body in intents.values():
                resolution = body.get(m.resolution_key) if type(body) is dict else None
                if type(resolution) is not dict:
                    continue
                for writer, answer in resolution.items():
                    scraped = answer.get(m.scraped_key) if type(answer) is dict else None
                    if type(scraped) is not dict:
                        continue
                    host = writer_host(writer)
                    for domain, fields in scraped.items():
                        n = fields.get(m.errors_key) if type(fields) is dict else None
                        if _number(n) and n:
                            per_domain[(host, domain)] = per_domain.get((host, domain), 0) + int(n)
            for (host, domain), n in per_domain.items():
                found.append(
                    ErrorGroup(
                        host, "scrape error", domain, n, None, None, f"{n} errors on {domain}"
                    )
                )

        self.state.read(read)
        return found


def _structured(host: str, kind: str, info: Any) -> ErrorGroup:
    if type(info) is dict:
        count = info.get("count", 1)
        domain = info.get("domain")
        sample = str(info.get("last", ""))
    else:
        count, domain, sample = (info if _number(info) else 1), None, str(info)
    return ErrorGroup(
        host,
        kind,
        domain if isinstance(domain, str) else None,
        int(count) if _number(count) else 1,
        None,
        None,
        sample[:300],
    )


_TB_START = re.compile(r"^Traceback \(most recent call last\):")
_TB_LAST = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b)(?::\s*(.*))?$"
)


def traceback_groups(
    rejected: Sequence[Rejected], host_of: Callable[[str], str] | None = None
) -> list[ErrorGroup]:
    """Unstructured stderr output, a multi-line traceback counted as one error.

    Lines of one source's stderr are read in order: a traceback runs from its
    ``Traceback (most recent call last):`` line to the exception line; any
    other stderr line is an error of type ``stderr`` on its own. ``host_of``
    names the host behind an envelope source (by default the source itself).
    """
    host_of = host_of or _same
    groups: dict[tuple[str, str, str], ErrorGroup] = {}
    open_tb: dict[str, list[Rejected]] = {}
    for item in rejected:
        if item.envelope.stream != "stderr":
            continue
        source = item.envelope.source
        host = host_of(source)
        text = item.text.rstrip()
        if _TB_START.match(text):
            open_tb[source] = [item]
            continue
        if source in open_tb:
            open_tb[source].append(item)
            last = _TB_LAST.match(text)
            if last is None:
                continue
            lines = open_tb.pop(source)
            sample = "\n".join(r.text.rstrip() for r in lines)
            _group(groups, host, last.group(1), item, sample)
            continue
        if text:
            _group(groups, host, "stderr", item, text)
    for source, lines in open_tb.items():  # a traceback still being written
        _group(groups, host_of(source), "traceback", lines[-1], "\n".join(r.text for r in lines))
    return list(groups.values())


def _group(
    groups: dict[tuple[str, str, str], ErrorGroup],
    host: str,
    kind: str,
    item: Rejected,
    sample: str,
) -> None:
    when = (item.envelope.origin_ns or item.recv_ns) / 1e9
    key = (host, kind, "")
    group = groups.get(key)
    if group is None:
        groups[key] = ErrorGroup(host, kind, None, 1, when, when, sample[:1000])
    else:
        group.count += 1
        group.last_seen = when


def _same(source: str) -> str:
    return source


def _number(value: Any) -> TypeGuard[int | float]:
    return (type(value) is int or type(value) is float) and value == value


def _add(table: dict[str, dict[str, int | float]], key: str, name: str, value: int | float) -> None:
    row = table.setdefault(key, {})
    row[name] = row.get(name, 0) + value


_DIGITS = re.compile(r"(\d+)")
_NATURAL: dict[str, list[Any]] = {}  # ids recur on every call: their keys are kept


def _natural(text: str) -> list[Any]:
    key = _NATURAL.get(text)
    if key is None:
        if len(_NATURAL) >= 200_000:
            _NATURAL.clear()
        key = _NATURAL[text] = [int(p) if p.isdigit() else p for p in _DIGITS.split(text)]
    return key


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def facts_of(state: State, methodology: Methodology) -> MethodologyFacts:
    """The state's methodology projection for these key names, registered if new.

    A projection must see every shard: on a state that already took lines
    and has none, this is a :class:`~pytest_livecluster.exceptions.ConfigError`.
    """
    facts = MethodologyFacts(methodology)
    for projection in state.projections():
        if isinstance(projection, MethodologyFacts) and projection.keys == facts.keys:
            return projection
    try:
        state.add_projection(facts)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}; make the views (or the cluster) before the state takes lines"
        ) from None
    return facts
