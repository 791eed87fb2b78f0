"""The run report as a page: the JSON report's content, arranged for :mod:`.html`.

The page shows the report's sections (totals, sources, errors, invariants,
failures) and, on one time axis, what the methodology's sections carry: the
history's series and the current rates (section ``throughput``), the intents'
timeline (section ``intents``) and the tests' timeline (the report's
``tests``). The live run, ``livecluster report --html`` and the watch rounds
all render through :func:`render_page`, from the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["page_data", "render_page"]


def page_data(report: Mapping[str, Any]) -> dict[str, Any]:
    """``report`` with the sections' series lifted to the keys the page draws."""
    data = dict(report)
    sections = report.get("sections")
    for section in sections if isinstance(sections, list) else []:
        if not isinstance(section, Mapping) or not isinstance(section.get("data"), Mapping):
            continue
        title, content = section.get("title"), section["data"]
        if title == "throughput":
            data.setdefault("history", content.get("history"))
            data.setdefault("rates", content.get("rates"))
        elif title == "intents":
            data.setdefault("intents", content.get("timeline"))
    return data


def render_page(report: Mapping[str, Any]) -> str:
    """The self-contained HTML page of a JSON report."""
    from .html import render_html

    return render_html(page_data(report))
