"""A deterministic generator of realistic shard lines, for benchmarks and soak tests.

The lines follow the cluster's logging methodology (see
``/work/shared/design/architecture.md``):

* every blade (and the orchestrator) says ``{"<host>": {"msg": "Hello World"}}``
  when it starts, and now and then again (a restart);
* the orchestrator sets intents:
  ``{"intents": {"<id>": {"host": "<scraper>", "module": "<name@version>"}}}``;
* the scrapers handling an intent report, per domain, cumulative and growing
  counts under ``intents.<id>.resolution.<scraper>.item_scraped.<domain>``
  (``tries``, ``time_spent``, ``item_collected``, ``item_sent_tries``,
  ``item_sent``, ``errors``), and their state under
  ``intents.<id>.resolution.<scraper>.state``;
* the spotters receiving the items report ``{"received": n}`` (cumulative)
  under ``intents.<id>.resolution.<spotter>``;
* blades update ``{"<host>": {"msg": "..."}}`` and report errors as
  ``{"<host>": {"errors": {"<type>": {"count": n, "last": "text"}}}}``.

Everything comes from one seeded :class:`random.Random`, so the same arguments
give the same bytes. The stream is lazy: :func:`generate` returns a
:class:`ShardStream` that yields one line (``bytes``, no newline) at a time.

**Expected totals.** The stream keeps, for every writer key
``(intent, scraper, domain)``, the last cumulative value it emitted. Because
the values only grow, the last one is also the maximum, which is what a
counter (a G-Counter merging by ``max``) must hold; so
:meth:`ShardStream.expected_total` is the exact value ``State.total`` must
return for :func:`counter_pattern` ``(field)`` after the lines emitted so far,
computed without looking at any state. When an intent retires, its last values
are folded into running totals and forgotten, so the generator's own memory
stays bounded however long the stream runs.

``time_spent`` is a float, but always a multiple of ``1/1024`` s: sums of such
values are exact in binary floating point (far below 2**53 quanta), so the
total does not depend on the order of summation and can be compared with ``==``.

**Intent pool.** With ``intent_pool=None`` a fixed set of
:data:`DEFAULT_INTENTS` intents is set up at the start and written for the
whole stream. With ``intent_pool=P`` at most ``P`` intents are active; every
``rotate_every`` lines the oldest one retires (its primary scraper says
``"state": "done"``; nothing is ever written under it again) and a new one is
set. Every intent is then written only within a bounded window of lines
(:attr:`ShardStream.max_span`, about ``P * rotate_every``): a TTL longer than
that window evicts retired intents and never a live one. (Strictly, a live
intent survives as long as the TTL exceeds the longest quiet stretch between
two writes under it, :attr:`ShardStream.max_gap`.)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import orjson

__all__ = [
    "BLADES",
    "COUNTERS",
    "DEFAULT_INTENTS",
    "DOMAINS",
    "FIELDS",
    "ORCHESTRATOR",
    "SCRAPERS",
    "SPOTTERS",
    "ShardStream",
    "counter_pattern",
    "generate",
]

COUNTERS: Final = ["intents.*.resolution.*.item_scraped.*"]

FIELDS: Final = (
    "tries",
    "time_spent",
    "item_collected",
    "item_sent_tries",
    "item_sent",
    "errors",
)
_TRIES, _TIME, _COLLECTED, _SENT_TRIES, _SENT, _ERRORS = range(len(FIELDS))

ORCHESTRATOR: Final = "orchestrator"
SCRAPERS: Final = tuple(f"scraper-{i}" for i in range(1, 11))
SPOTTERS: Final = tuple(f"spotter-{i}" for i in range(1, 6))
BLADES: Final = (*SCRAPERS, *SPOTTERS)
DOMAINS: Final = (
    "site1.example",
    "site2.example",
    "shop.example.com",
    "news.example.org",
    "blog.example.net",
    "catalog.example.com",
    "api.example.io",
    "m.example.com",
    "forum.example.org",
    "docs.example.dev",
    "store.example.co.uk",
    "img.example.net",
    "search.example.com",
    "wiki.example.org",
    "jobs.example.com",
    "events.example.de",
    "travel.example.fr",
    "market.example.jp",
    "media.example.tv",
    "static.example.cdn",
)
MODULES: Final = ("scraper@1.4", "scraper@1.5", "scraper@2.0")
ERRORS: Final = {
    "TimeoutError": "timed out after 30s fetching https://{domain}/page/{n}",
    "ConnectionResetError": "connection reset by peer while reading https://{domain}/",
    "HTTPError": "503 Service Unavailable from https://{domain}/api/items?page={n}",
    "ParseError": "unexpected token at line {n} of https://{domain}/sitemap.xml",
    "SendError": "spotter did not acknowledge batch {n} within 5s",
}
DEFAULT_INTENTS: Final = 64
TIME_QUANTUM: Final = 1024  # time_spent is a whole number of 1/1024 s

# Share of each kind of line in the steady stream (intent set-up and
# retirement lines come on top, at the rotation rate).
_MIX: Final = (
    ("scraper", 0.60),
    ("spotter", 0.17),
    ("msg", 0.12),
    ("state", 0.06),
    ("error", 0.045),
    ("hello", 0.005),
)


def counter_pattern(field_name: str) -> str:
    """The pattern whose total is the sum of ``field_name`` over every writer key."""
    if field_name not in FIELDS:
        raise ValueError(f"unknown counter field {field_name!r}; one of {FIELDS}")
    return f"intents.*.resolution.*.item_scraped.*.{field_name}"


@dataclass(slots=True)
class _Intent:
    iid: str
    scrapers: tuple[str, ...]  # the first one is the intent's host
    spotters: tuple[str, ...]
    domains: tuple[str, ...]
    first: int  # index of the first line written under the intent
    last: int  # index of the last one
    # (scraper, domain) -> cumulative values in FIELDS order (time_spent in quanta)
    counters: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)


class ShardStream:
    """A lazy, deterministic stream of shard lines with their expected totals.

    Iterate it once to get the lines. :meth:`expected_total` may be called at
    any time and reflects the lines yielded so far.
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        intent_pool: int | None = None,
        rotate_every: int = 100,
    ) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        if intent_pool is not None and intent_pool < 1:
            raise ValueError("intent_pool must be a positive integer or None")
        if rotate_every < 1:
            raise ValueError("rotate_every must be >= 1")
        self.n = n
        self.seed = seed
        self.intent_pool = intent_pool
        self.rotate_every = rotate_every
        self.emitted = 0  # lines yielded so far
        self.intents_created = 0
        self.intents_retired = 0
        self._rng = random.Random(seed)
        self._active: list[_Intent] = []
        self._retired_totals = [0] * len(FIELDS)
        self._retired_max_span = 0
        self.max_gap = 0  # most lines between two consecutive writes under one intent
        self._error_counts: dict[tuple[str, str], int] = {}
        self._started = False
        kinds, weights = zip(*_MIX, strict=True)
        self._kinds: tuple[str, ...] = kinds
        self._cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))]

    # -- verification ----------------------------------------------------------

    def expected_total(self, field_name: str) -> int | float:
        """Sum over every (intent, scraper, domain) of the last ``field_name`` emitted."""
        if field_name not in FIELDS:
            raise ValueError(f"unknown counter field {field_name!r}; one of {FIELDS}")
        i = FIELDS.index(field_name)
        total = self._retired_totals[i]
        for intent in self._active:
            for values in intent.counters.values():
                total += values[i]
        return total / TIME_QUANTUM if i == _TIME else total

    def expected_totals(self) -> dict[str, int | float]:
        """:meth:`expected_total` for every field, keyed by field name."""
        return {name: self.expected_total(name) for name in FIELDS}

    @property
    def max_span(self) -> int:
        """The most lines between the first and the last write under any one intent."""
        live = (i.last - i.first for i in self._active)
        return max(self._retired_max_span, *live, 0)

    @property
    def active_intents(self) -> int:
        return len(self._active)

    # -- the stream ------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise RuntimeError("a ShardStream can be iterated only once")
        self._started = True
        return self._lines()

    def _lines(self) -> Iterator[bytes]:
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        pending: list[dict[str, object]] = []
        for host in (ORCHESTRATOR, *BLADES):
            pending.append({host: {"msg": "Hello World"}})
        pool = self.intent_pool if self.intent_pool is not None else DEFAULT_INTENTS
        for _ in range(pool):
            pending.append(self._create())
        pending.reverse()  # popped from the end
        rotate = self.intent_pool is not None
        every = self.rotate_every
        since_rotation = 0
        while self.emitted < self.n:
            since_rotation += 1
            if rotate and since_rotation >= every and not pending:
                since_rotation = 0
                pending.append(self._create())
                pending.append(self._retire())  # popped first
            shard = pending.pop() if pending else self._next_shard()
            self.emitted += 1
            # orjson.dumps returns a bytes object that keeps a ~4 KiB allocation
            # whatever its length; slicing gives an exact-size copy, like a line
            # split from a stream (and without its newline).
            yield dumps(shard, option=newline)[:-1]

    def _next_shard(self) -> dict[str, object]:
        rng = self._rng
        kind = rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        if kind == "scraper":
            return self._scraper_update()
        if kind == "spotter":
            return self._spotter_receipt()
        if kind == "msg":
            return self._msg()
        if kind == "state":
            intent = self._touch(rng.choice(self._active))
            scraper = rng.choice(intent.scrapers)
            state = rng.choice(("scraping", "scraping", "scraping", "backoff", "paused"))
            return _under(intent.iid, scraper, {"state": state})
        if kind == "error":
            return self._error()
        return {rng.choice((ORCHESTRATOR, *BLADES)): {"msg": "Hello World"}}

    def _touch(self, intent: _Intent) -> _Intent:
        gap = self.emitted - intent.last
        if gap > self.max_gap:
            self.max_gap = gap
        intent.last = self.emitted
        return intent

    def _create(self) -> dict[str, object]:
        rng = self._rng
        self.intents_created += 1
        iid = f"i-{self.intents_created:06d}-{rng.getrandbits(24):06x}"
        helpers = rng.choices((0, 1, 2), weights=(6, 3, 1))[0]
        scrapers = tuple(rng.sample(SCRAPERS, 1 + helpers))
        spotters = tuple(rng.sample(SPOTTERS, rng.choice((1, 1, 2))))
        domains = tuple(rng.sample(DOMAINS, rng.randint(2, 8)))
        intent = _Intent(iid, scrapers, spotters, domains, self.emitted, self.emitted)
        self._active.append(intent)
        return {"intents": {iid: {"host": scrapers[0], "module": rng.choice(MODULES)}}}

    def _retire(self) -> dict[str, object]:
        intent = self._touch(self._active.pop(0))
        self.intents_retired += 1
        totals = self._retired_totals
        for values in intent.counters.values():
            for i, v in enumerate(values):
                totals[i] += v
        self._retired_max_span = max(self._retired_max_span, intent.last - intent.first)
        return _under(intent.iid, intent.scrapers[0], {"state": "done"})

    def _scraper_update(self) -> dict[str, object]:
        rng = self._rng
        intent = self._touch(rng.choice(self._active))
        # The host does most of the work; helpers less.
        scraper = intent.scrapers[0] if rng.random() < 0.6 else rng.choice(intent.scrapers)
        k = 1 if rng.random() < 0.8 else min(len(intent.domains), rng.randint(2, 3))
        report: dict[str, object] = {}
        for domain in rng.sample(intent.domains, k):
            values = intent.counters.get((scraper, domain))
            if values is None:
                values = intent.counters[(scraper, domain)] = [0] * len(FIELDS)
            tries = rng.randint(1, 3)
            collected = rng.randint(0, 8 * tries)
            sent = collected if rng.random() < 0.9 else rng.randint(0, collected)
            values[_TRIES] += tries
            values[_TIME] += rng.randint(50, 4000)
            values[_COLLECTED] += collected
            values[_SENT_TRIES] += sent + rng.choice((0, 0, 0, 1, 2))
            values[_SENT] += sent
            values[_ERRORS] += rng.random() < 0.05
            report[domain] = {
                "tries": values[_TRIES],
                "time_spent": values[_TIME] / TIME_QUANTUM,
                "item_collected": values[_COLLECTED],
                "item_sent_tries": values[_SENT_TRIES],
                "item_sent": values[_SENT],
                "errors": values[_ERRORS],
            }
        return _under(intent.iid, scraper, {"item_scraped": report})

    def _spotter_receipt(self) -> dict[str, object]:
        rng = self._rng
        intent = self._touch(rng.choice(self._active))
        spotter = rng.choice(intent.spotters)
        received = intent.received[spotter] = intent.received.get(spotter, 0) + rng.randint(1, 25)
        return _under(intent.iid, spotter, {"received": received})

    def _msg(self) -> dict[str, object]:
        rng = self._rng
        host = rng.choice((ORCHESTRATOR, *BLADES))
        n = rng.randint(1, 500)
        if host == ORCHESTRATOR:
            text = f"{len(self._active)} intents active, {self.intents_retired} done"
        elif host in SPOTTERS:
            text = f"received {n} items in the last minute"
        else:
            text = f"scraped {n} items from {rng.choice(DOMAINS)}"
        return {host: {"msg": text}}

    def _error(self) -> dict[str, object]:
        rng = self._rng
        host = rng.choice(BLADES)
        kind = rng.choice(tuple(ERRORS))
        count = self._error_counts[(host, kind)] = self._error_counts.get((host, kind), 0) + 1
        text = ERRORS[kind].format(domain=rng.choice(DOMAINS), n=rng.randint(1, 999))
        return {host: {"errors": {kind: {"count": count, "last": text}}}}


def _under(iid: str, host: str, value: dict[str, object]) -> dict[str, object]:
    return {"intents": {iid: {"resolution": {host: value}}}}


def generate(
    n: int, *, seed: int = 0, intent_pool: int | None = None, rotate_every: int = 100
) -> ShardStream:
    """A lazy stream of ``n`` shard lines; see the module docstring.

    ``list(generate(n))`` materializes the lines; iterate the stream directly to
    keep only one line at a time in memory.
    """
    return ShardStream(n, seed=seed, intent_pool=intent_pool, rotate_every=rotate_every)


if __name__ == "__main__":  # pragma: no cover - a quick look at the data
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    pool = int(sys.argv[2]) if len(sys.argv) > 2 else None
    stream = generate(count, intent_pool=pool)
    for line in stream:
        sys.stdout.write(line.decode() + "\n")
    sys.stderr.write(f"expected totals: {stream.expected_totals()}\n")
