"""xdist: the controller collects each worker's report, source silences and invariants.

Registered only when xdist is present and the run is its controller; workers
write no files and print no summaries, the controller does it once.
"""

from __future__ import annotations

from typing import Any

from ..alerts.model import SourceObservation
from .invariants import Judged
from .run import LiveRun

__all__ = ["XdistController"]


class XdistController:
    """Receives the workers' reports; registered only where xdist is present."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        data = output.get("livecluster")
        if data is not None:
            name = getattr(getattr(node, "gateway", None), "id", None) or output.get("workerid")
            self.run.worker_reports[str(name)] = data
        for seen in output.get("livecluster_sources", ()):
            self.run.worker_sources.append(SourceObservation(**seen))
        judged = output.get("livecluster_invariants")
        if judged:
            self.run.worker_invariants.append([Judged.from_dict(data) for data in judged])
