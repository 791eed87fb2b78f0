"""The scraper: scrapes its intent's domains for a while and hands the items to a spotter.

Given ``POST /work {"id", "kind": "scrape", "module", "domains", "spotter"}``
(``spotter`` is the spotter's control URL), it logs ``started``, then 3 to 5
times, 100-250 ms apart, collects 1-4 items per domain, sends them in one
``POST /items`` to the spotter and counts them with the writer kit, which logs
each domain's cumulative counts under the process's writer key. A
healthy intent is done within about 1.5 s; ``slow_resolution`` stretches every
pause, ``silent_scraper`` makes it accept the work and do nothing.
"""

from __future__ import annotations

import time
from typing import Any, Final

from .control import ApiError, call
from .node import Node, text_field

__all__ = ["DEFAULT_DOMAINS", "Scraper"]

Json = dict[str, Any]

DEFAULT_DOMAINS: Final = ("site1.example", "shop.example", "news.example")


class Scraper(Node):
    role = "scraper"

    def post_work(self, body: Json) -> Json:
        if body.get("kind") != "scrape":
            return super().post_work(body)
        iid = text_field(body, "id")
        spotter = text_field(body, "spotter")
        domains = _domains(body.get("domains")) or self.config.domains
        if self.active("silent_scraper") is None:
            self.spawn(self._scrape, iid, domains, spotter)
        return {"accepted": True}

    def _scrape(self, iid: str, domains: tuple[str, ...], spotter: str) -> None:
        if not self.sleep(self.uniform(0.02, 0.06) * self.slowness()):
            return
        self.output.shard(self.shards.started(iid, time.time()))
        for _ in range(self.randint(3, 5)):
            if not self.sleep(self.uniform(0.1, 0.25) * self.slowness()):
                return
            self._round(iid, domains, spotter)

    def _round(self, iid: str, domains: tuple[str, ...], spotter: str) -> None:
        batch = {domain: self.randint(1, 4) for domain in domains}
        sent = self._send(iid, spotter, sum(batch.values()))
        for domain, n in batch.items():
            # The writer kit keeps the cumulative counts of this process and writes them.
            self.output.count(
                iid,
                domain,
                tries=n,
                item_collected=n,
                time_spent=round(n * self.uniform(0.05, 0.3), 3),
                item_sent_tries=n,
                item_sent=n if sent else 0,
                errors=0 if sent else 1,
            )

    def _send(self, iid: str, spotter: str, count: int) -> bool:
        body = {"intent": iid, "from": self.host, "count": count}
        try:
            call("POST", f"{spotter}/items", body, timeout=2.0, retry_for=1.0)
        except (OSError, ApiError) as exc:
            self.record_error("SendFailed", f"cannot send {count} items of {iid}: {exc}")
            return False
        return True


def _domains(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) and d for d in value):
        raise ApiError(400, f"'domains' must be a list of domain names, got {value!r}")
    return tuple(value)
