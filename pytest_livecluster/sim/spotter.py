"""The spotter: receives items from scrapers and logs how many it has per intent.

``POST /items {"intent", "from", "count"}`` counts the items as received for
the intent with the writer kit (each item dropped with probability ``share``
under ``lossy_spotter``, though the scraper is told all went well), which logs
the cumulative ``received`` under the process's writer key.
"""

from __future__ import annotations

from typing import Any

from .control import ApiError
from .node import Node, NodeConfig, Routes, text_field
from .output import Output
from .persist import Saved

__all__ = ["Spotter"]

Json = dict[str, Any]


class Spotter(Node):
    role = "spotter"

    def __init__(self, config: NodeConfig, output: Output, saved: Saved) -> None:
        super().__init__(config, output, saved)
        self._received: dict[str, int] = {}

    def routes(self) -> Routes:
        return {**super().routes(), ("POST", "/items"): self.post_items}

    def post_items(self, body: Json) -> Json:
        iid = text_field(body, "intent")
        sender = text_field(body, "from")
        count = body.get("count")
        if type(count) is not int or count < 0:
            raise ApiError(400, f"'count' must be a whole number >= 0, got {count!r}")
        kept = self._keep(count)
        with self._lock:
            total = self._received[iid] = self._received.get(iid, 0) + kept
        # The writer kit keeps this process's cumulative receipts and writes them.
        self.output.received(iid, kept, sender)
        return {"received": total}

    def _keep(self, count: int) -> int:
        lossy = self.active("lossy_spotter")
        if lossy is None:
            return count
        share = float(lossy["share"])
        return sum(1 for _ in range(count) if self.random() >= share)
