"""How live tests ended, from pytest's reports: what alerting and watch rounds count.

A live test is one that uses the ``cluster`` fixture or carries the ``live``
marker. Its reports are tagged where they are made (``report.livecluster``,
which xdist carries to the controller), so the controller can tell them
apart without the items. A waiting helper's failure leaves its reason (the
last failure of the check, from the exception's fields, never parsed from
its text) in the same tag. A test fails if any phase failed; a skipped test
says nothing either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest

from ..alerts.model import TestOutcome
from ..exceptions import EventuallyFailed

__all__ = ["LIVE_ATTR", "TestTimeline", "headline", "is_live", "outcomes", "tag_report"]

LIVE_ATTR = "livecluster"
_MODULE = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*(?::|$))")


def is_live(item: pytest.Item) -> bool:
    return (
        "cluster" in getattr(item, "fixturenames", ())
        or item.get_closest_marker("live") is not None
    )


def tag_report(
    report: pytest.TestReport, item: pytest.Item, excinfo: pytest.ExceptionInfo[Any] | None = None
) -> None:
    """Mark ``report`` as a live test's, with its alert severity from the marker and,
    when a waiting helper failed it, the helper's reason."""
    if not is_live(item):
        return
    marker = item.get_closest_marker("livecluster")
    severity = marker.kwargs.get("severity") if marker is not None else None
    tag: dict[str, Any] = {"severity": severity}
    # A timeout's first line says only what was awaited; what went wrong is its last failure.
    if excinfo is not None and isinstance(excinfo.value, EventuallyFailed):
        tag["reason"] = excinfo.value.reason
    setattr(report, LIVE_ATTR, tag)


def headline(report: pytest.TestReport) -> tuple[str, str]:
    """The failure in one line, and its whole message.

    The exception's module is dropped; a waiting helper's failure gets its
    reason added (see :func:`tag_report`), since that is what went wrong.
    """
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr or "")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = _MODULE.sub(r"\1", lines[0]) if lines else "failed"
    tag = getattr(report, LIVE_ATTR, None)
    reason = tag.get("reason") if isinstance(tag, dict) else None
    if reason:
        first = f"{first}; {reason}"
    if report.when != "call":
        first = f"error in {report.when}: {first}"
    return first[:300], message


def outcomes(reports: Iterable[pytest.TestReport]) -> list[TestOutcome]:
    """One outcome per live test that passed or failed; skipped tests are left out."""
    by_test: dict[str, dict[str, Any]] = {}
    for report in reports:
        tag = getattr(report, LIVE_ATTR, None)
        if not isinstance(tag, dict):
            continue
        seen = by_test.setdefault(report.nodeid, {"failed": False, "ran": False, "tag": tag})
        if report.failed and not seen["failed"]:
            seen["failed"] = True
            seen["headline"], seen["details"] = headline(report)
        if report.when == "call" and not hasattr(report, "wasxfail") and not report.skipped:
            seen["ran"] = True
    return [
        TestOutcome(
            nodeid,
            failed=seen["failed"],
            headline=seen.get("headline", ""),
            details=seen.get("details", ""),
            severity=seen["tag"].get("severity"),
        )
        for nodeid, seen in by_test.items()
        if seen["failed"] or seen["ran"]
    ]


class TestTimeline:
    """When each live test ran and how it ended: a row per test, its latest run.

    Fed every test report (setup, call, teardown); a test's row starts at its
    setup and ends with its teardown. ``outcome`` is ``failed`` when the call
    failed, ``error`` when setup or teardown did, else ``skipped`` or
    ``passed``. At most :attr:`limit` rows are kept (the latest).
    """

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self._rows: dict[str, dict[str, Any]] = {}

    def note(self, report: pytest.TestReport) -> None:
        if not isinstance(getattr(report, LIVE_ATTR, None), dict):
            return
        start = float(getattr(report, "start", 0.0) or 0.0)
        stop = float(getattr(report, "stop", 0.0) or 0.0)
        row = self._rows.get(report.nodeid)
        if report.when == "setup" or row is None:
            self._rows.pop(report.nodeid, None)  # a rerun (watch mode) moves to the end
            row = self._rows[report.nodeid] = {
                "nodeid": report.nodeid,
                "start": start,
                "stop": stop,
                "outcome": "passed",
                "message": "",
            }
            while len(self._rows) > self.limit:
                del self._rows[next(iter(self._rows))]
        row["stop"] = max(row["stop"], stop)
        if report.failed and row["outcome"] not in ("failed", "error"):
            row["outcome"] = "failed" if report.when == "call" else "error"
            row["message"] = headline(report)[0]
        elif report.skipped and row["outcome"] == "passed":
            row["outcome"] = "skipped"

    def as_list(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._rows.values()]
