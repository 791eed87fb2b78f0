"""How live tests ended, from pytest's reports: what alerting and watch rounds count.

A live test is one that uses the ``cluster`` fixture or carries the ``live``
marker. Its reports are tagged where they are made (``report.livecluster``,
which xdist carries to the controller), so the controller can tell them
apart without the items. A test fails if any phase failed; a skipped test
says nothing either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest

from ..alerts import TestOutcome

__all__ = ["LIVE_ATTR", "headline", "is_live", "outcomes", "tag_report"]

LIVE_ATTR = "livecluster"
_MODULE = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*(?::|$))")
_WAIT_FAILURE = re.compile(r"^(first|last) failure \(at [^)]*\): (.*)$")


def is_live(item: pytest.Item) -> bool:
    return (
        "cluster" in getattr(item, "fixturenames", ())
        or item.get_closest_marker("live") is not None
    )


def tag_report(report: pytest.TestReport, item: pytest.Item) -> None:
    """Mark ``report`` as a live test's, with its alert severity from the marker."""
    if not is_live(item):
        return
    marker = item.get_closest_marker("livecluster")
    severity = marker.kwargs.get("severity") if marker is not None else None
    setattr(report, LIVE_ATTR, {"severity": severity})


def headline(report: pytest.TestReport) -> tuple[str, str]:
    """The failure in one line, and its whole message.

    The exception's module is dropped; a waiting helper's timeout gets its
    last (or only) failure added, since that is what went wrong.
    """
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr or "")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = _MODULE.sub(r"\1", lines[0]) if lines else "failed"
    reasons: dict[str, str] = {}
    for line in lines:
        if match := _WAIT_FAILURE.match(line):
            reasons[match[1]] = match[2]
    reason = reasons.get("last") if reasons.get("last") != "the same" else None
    reason = reason or reasons.get("first")
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
