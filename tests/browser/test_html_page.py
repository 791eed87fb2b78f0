"""The HTML report page in a real headless Chromium: what it draws, and what it never does.

Each report is rendered to a file, loaded by the browser, and the DOM the
browser built is read back (``--dump-dom``): the charts, their series and
legends must be there, hostile text from the cluster must be text (escaped
exactly once), and nothing may come from the network. A screenshot of a
fault-like run (a spotter starts dropping halfway; an intent is stuck) is kept
in the artifacts directory for a person to look at.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_livecluster._escape import terminal
from pytest_livecluster.methodology.html import render_html
from tests.support.browser import Chromium, artifacts_dir, require_chromium
from tests.support.hostile_text import ATTACKS

START = 1_764_470_000.0
POINTS = 300
HALF = POINTS // 2

ALLOWED_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "main", "header", "nav", "a"),
    *("h1", "h2", "h3", "p", "span", "div", "b", "pre", "ul", "li", "input", "label"),
    *("figure", "figcaption", "table", "caption", "thead", "tbody", "tr", "th", "td"),
    *("svg", "g", "line", "polyline", "polygon", "path", "rect", "circle", "text", "tspan"),
}
VOID = {"meta", "input", "br", "img", "link", "hr", "wbr", "source", "area", "base", "col"}


# -- reports -------------------------------------------------------------------------------


def _wave(base: float, i: int, phase: float = 0.0) -> int:
    return max(0, round(base + 1.5 * math.sin(i / 7 + phase)))


def _fault_history() -> dict[str, Any]:
    scrapers = {f"scraper-{k}": [_wave(4, i, k) for i in range(POINTS)] for k in (1, 2, 3)}
    sent_total = [sum(s[i] for s in scrapers.values()) for i in range(POINTS)]
    collected = {name: [v + (i % 5 == 0) for i, v in enumerate(s)] for name, s in scrapers.items()}
    domains = {
        f"site{d}.example": [v // 4 + (d == 1) * (v - 4 * (v // 4)) for v in sent_total]
        for d in (1, 2, 3, 4)
    }
    spotter_1 = [v // 2 for v in sent_total]
    spotter_2 = [v - v // 2 if i < HALF else 0 for i, v in enumerate(sent_total)]
    received = [a + b for a, b in zip(spotter_1, spotter_2, strict=True)]
    errors = [0 if i < HALF else 1 + (i % 3 == 0) for i in range(POINTS)]
    lines = {
        "docker:scraper-1": [3 + i % 2 for i in range(POINTS)],
        "docker:spotter-1": [2] * POINTS,
        "docker:spotter-2": [0 if 200 <= i < 230 else 2 for i in range(POINTS)],
        "docker:orchestrator": [1 if i % 10 == 0 else 0 for i in range(POINTS)],
    }
    zeros = [0] * POINTS
    return {
        "step": 1.0,
        "start": START,
        "series": {
            "collected": {
                "total": [sum(s[i] for s in collected.values()) for i in range(POINTS)],
                "by": {"scraper": collected},
            },
            "sent": {"total": sent_total, "by": {"scraper": scrapers, "domain": domains}},
            "received": {
                "total": received,
                "by": {"spotter": {"spotter-1": spotter_1, "spotter-2": spotter_2}},
            },
            "errors": {
                "total": errors,
                "by": {"host": {"spotter-2": errors}, "type": {"QueueFull": errors}},
            },
            "lines": {
                "total": [sum(v[i] for v in lines.values()) for i in range(POINTS)],
                "by": {"source": lines},
            },
            "reconnects": {
                "total": zeros,
                "by": {
                    "source": {"docker:spotter-2": [1 if i == 230 else 0 for i in range(POINTS)]}
                },
            },
            "gaps": {
                "total": zeros,
                "by": {
                    "source": {"docker:spotter-2": [1 if i == 231 else 0 for i in range(POINTS)]}
                },
            },
        },
    }


def _intent(n: int, set_at: float, **extra: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "id": f"i-{n}",
        "kind": "scrape",
        "host": f"scraper-{n % 3 + 1}",
        "set": START + set_at,
        "answered": {f"scraper-{n % 3 + 1}": START + set_at + 3},
        "received": START + set_at + 6,
        "phase": "received",
        "stuck": False,
        "stale": False,
    }
    intent.update(extra)
    return intent


def fault_report() -> dict[str, Any]:
    """A run that goes wrong halfway: spotter-2 stops receiving, intent i-7 is stuck."""
    intents = [_intent(n, 10 + 25 * n) for n in range(11)]
    intents[7] = _intent(7, 185, received=None, phase="sending", stuck=True)
    intents[9] = _intent(9, 240, received=None, answered={}, phase="set", stale=True)
    intents.append(
        {
            "id": "u-1",
            "kind": "update",
            "host": "scraper-2",
            "set": START + 60,
            "answered": {"scraper-2": START + 75},
            "received": None,
            "phase": "updated",
        }
    )
    tests = [
        {
            "nodeid": f"example_suite/test_flow.py::test_step_{k}",
            "start": START + 5 + 48 * k,
            "stop": START + 45 + 48 * k,
            "outcome": "failed" if k == 3 else "passed",
            "message": "AssertionError: spotter-2 received nothing for 30 s" if k == 3 else "",
        }
        for k in range(6)
    ]
    verdict = {
        "name": "no_item_lost",
        "mode": "always",
        "what": "sent - received < 50",
        "verdict": "broken",
        "failed": True,
        "registered_by": "example_suite/conftest.py",
        "checks": 812,
        "event": {
            "at": 152.0,
            "check": 411,
            "reason": "sent - received = 51",
            "shard": {
                "seq": 3001,
                "source": "docker:spotter-2",
                "stream": "stdout",
                "time": START + 199.5,
                "line": "{}",
            },
            "read": {},
        },
        "error": None,
    }
    error_group = {
        "host": "spotter-2",
        "type": "QueueFull",
        "domain": "",
        "count": 215,
        "first_seen": START + HALF,
        "last_seen": START + POINTS,
        "sample": "Traceback (most recent call last):\n  ...\nQueueFull: queue of 1000 is full",
    }
    return {
        "report_version": 1,
        "writer": "pytest-livecluster 0.0.test",
        "generated": "2025-11-30T02:38:20+00:00",
        "cluster": "staging",
        "sources": [_source(name) for name in ("docker:scraper-1", "docker:spotter-2")],
        "state": {
            "version": 9000,
            "lines": 9000,
            "accepted": 8990,
            "rejected": {"invalid_json": 10},
            "bom_stripped": 0,
            "evicted": 0,
            "top_level_keys": 12,
        },
        "counters": {"intents.*.resolution.*.item_scraped.*": 3600},
        "rejected_samples": [],
        "failures": [],
        "workers": {},
        "sections": [
            {"title": "invariants", "lines": ["no_item_lost: broken"], "data": [verdict]},
            {"title": "errors", "lines": ["215 x QueueFull on spotter-2"], "data": [error_group]},
            {
                "title": "counts",
                "lines": ["items sent 3600"],
                "data": {"total": 3600, "received": 3000, "loss": 600},
            },
        ],
        "history": _fault_history(),
        "rates": {
            "window_s": 60,
            "last_minute": {
                "collected": 12.2,
                "sent": 12.0,
                "received": 6.0,
                "by_scraper": {"scraper-1": {"collected": 4.1, "sent": 4.0}},
                "by_spotter": {"spotter-1": {"received": 6.0}, "spotter-2": {"received": 0.0}},
            },
            "run": {"collected": 12.1, "sent": 12.0, "received": 9.0},
        },
        "tests": tests,
        "intents": intents,
    }


def _source(name: str) -> dict[str, Any]:
    return {
        "source": name,
        "state": "following",
        "attached": 1,
        "lines": 600,
        "bytes": 60_000,
        "rejected": 0,
        "reconnects": 1,
        "gaps": 1,
        "last_line_ns": None,
        "silent_for_s": 0.4,
        "errors": 1,
        "last_errors": [f"{name}: connection reset"],
    }


def hostile_report() -> dict[str, Any]:
    """Every attack string as a host, intent id, test id, error sample, source id,
    failure message and section title."""
    report = fault_report()
    series = report["history"]["series"]
    ones = [1] * POINTS
    series["sent"]["by"]["scraper"] = {f"host {a}": ones for a in ATTACKS}
    series["lines"]["by"]["source"] = {f"src {a}": ones for a in ATTACKS}
    report["intents"] = [
        _intent(n, 10 + n, id=f"intent {a}", host=f"host {a}", phase=a)
        for n, a in enumerate(ATTACKS)
    ]
    report["tests"] = [
        {
            "nodeid": f"test {a}",
            "start": START + n,
            "stop": START + n + 5,
            "outcome": "failed",
            "message": f"message {a}",
        }
        for n, a in enumerate(ATTACKS)
    ]
    report["sources"] = [_source(f"src {a}") for a in ATTACKS]
    report["failures"] = [f"failure {a}" for a in ATTACKS]
    report["sections"] = [
        {
            "title": "errors",
            "lines": [],
            "data": [
                {
                    "host": f"host {a}",
                    "type": f"type {a}",
                    "domain": a,
                    "count": 1,
                    "first_seen": START,
                    "last_seen": START + 1,
                    "sample": f"sample {a}",
                }
                for a in ATTACKS
            ],
        },
        *({"title": f"title {a}", "lines": [f"line {a}"], "data": None} for a in ATTACKS),
    ]
    report["cluster"] = f"cluster {ATTACKS[3]}"
    return report


# -- reading the DOM -----------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag and (cls is None or cls in n.attrs.get("class", "").split())
        ]

    def content(self) -> str:
        return "".join(c if isinstance(c, str) else c.content() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)
        if self.stack[-1].tag != "style":
            self.texts.append(data)


@dataclass
class Dom:
    root: Node
    texts: list[str]

    @classmethod
    def parse(cls, html: str) -> Dom:
        builder = _TreeBuilder()
        builder.feed(html)
        builder.close()
        return cls(builder.root, builder.texts)

    def has_text(self, text: str) -> bool:
        return any(text in node for node in self.texts)


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    return Chromium(require_chromium())


def _load(chromium: Chromium, report: dict[str, Any], path: Path) -> Dom:
    path.write_text(render_html(report), encoding="utf-8")
    return Dom.parse(chromium.dump_dom(path))


@pytest.fixture(scope="module")
def fault_dom(chromium: Chromium, tmp_path_factory: pytest.TempPathFactory) -> Dom:
    return _load(chromium, fault_report(), tmp_path_factory.mktemp("html") / "fault.html")


@pytest.fixture(scope="module")
def hostile_dom(chromium: Chromium, tmp_path_factory: pytest.TempPathFactory) -> Dom:
    return _load(chromium, hostile_report(), tmp_path_factory.mktemp("html") / "hostile.html")


def _plots(dom: Dom) -> list[Node]:
    return dom.root.find("svg", "plot")


def _legend_texts(dom: Dom) -> set[str]:
    return {li.content() for ul in dom.root.find("ul", "legend") for li in ul.find("li")}


def _time_ticks(plot: Node) -> list[tuple[str, str]]:
    return [
        (t.attrs["x"], t.content())
        for t in plot.find("text", "tick")
        if t.attrs.get("text-anchor") == "middle"
    ]


# -- the page ------------------------------------------------------------------------------


def test_the_charts_have_a_line_per_series_and_legends(fault_dom: Dom) -> None:
    plots = _plots(fault_dom)
    # throughput, loss, 5 breakdowns, 3 error views, lines, source lanes, intents, tests
    assert len(plots) >= 12
    series = fault_dom.root.find("g", "series")
    assert series, "no series drawn"
    for group in series:
        assert group.find("polyline") or group.find("polygon"), group.content()
    names = {g.find("title")[0].content().split(": ")[0] for g in series}
    assert {"collected", "sent", "received", "scraper-1", "spotter-2", "site1.example"} <= names
    assert {"docker:spotter-2", "all errors", "sent but not received, cumulative"} <= names
    legends = _legend_texts(fault_dom)
    assert {
        "collected",
        "sent",
        "received",
        "spotter-1",
        "spotter-2",
        "stuck, stale or late",
    } <= legends
    assert {"passed", "failed", "silent (no line for longer than usual)"} <= legends


def test_every_time_chart_has_the_same_axis(fault_dom: Dom) -> None:
    axes = [_time_ticks(p) for p in _plots(fault_dom)]
    axes = [ticks for ticks in axes if ticks]
    assert len(axes) >= 12
    assert all(ticks == axes[0] for ticks in axes), "a chart with its own time axis"
    assert [t for _, t in axes[0]][:2] == ["02:33:30", "02:34:00"], "UTC HH:MM:SS"


def test_the_tabs_choose_one_breakdown_without_script(fault_dom: Dom) -> None:
    tabs = fault_dom.root.find("div", "tabs")
    assert len(tabs) == 2, "throughput and errors"
    for group in tabs:
        radios = [c for c in group.elements() if c.tag == "input"]
        panels = [c for c in group.elements() if c.tag == "div"]
        assert len(radios) == len(panels) > 1
        assert sum("checked" in r.attrs for r in radios) == 1
    labels = {c.content() for c in tabs[0].elements() if c.tag == "label"}
    assert {"received per spotter", "sent per scraper", "sent per domain"} <= labels
    assert not fault_dom.root.find("script")


def test_the_stuck_intent_comes_first_and_says_so(fault_dom: Dom) -> None:
    [intents] = [p for p in _plots(fault_dom) if p.attrs["aria-label"] == "intents"]
    rows = intents.find("g", "intent")
    assert len(rows) == 12
    first, second = rows[0].find("text")[0].content(), rows[1].find("text")[0].content()
    assert first == "STUCK i-7"
    assert second == "STALE i-9"
    assert "update u-1" in {r.find("text")[0].content() for r in rows}
    assert "phase sending, stuck" in rows[0].find("title")[0].content()


def test_the_totals_failures_and_invariants_are_shown(fault_dom: Dom) -> None:
    assert fault_dom.root.find("h1")[0].content() == "Live cluster staging"
    cards = {
        c.find("div", "k")[0].content(): c.attrs["class"]
        for c in fault_dom.root.find("div", "card")
    }
    assert cards["live tests (5 passed)"] == "card bad"
    assert cards["invariants"] == "card bad"
    assert cards["intents (of 12)"] == "card bad"
    assert any(k.startswith("items lost") and v == "card bad" for k, v in cards.items())
    assert fault_dom.has_text("AssertionError: spotter-2 received nothing for 30 s")
    assert fault_dom.has_text("sent - received = 51")
    assert fault_dom.has_text("QueueFull: queue of 1000 is full")


def test_no_script_runs_on_the_page_so_it_draws_without_javascript(
    chromium: Chromium, fault_dom: Dom, tmp_path: Path
) -> None:
    # The page has no script, and its CSP stops any that got in: the charts in
    # fault_dom were drawn with none running.
    assert not fault_dom.root.find("script")
    planted = "<script>document.body.setAttribute('data-js', 'ran')</script></main>"
    page = tmp_path / "planted.html"
    page.write_text(render_html(fault_report()).replace("</main>", planted), encoding="utf-8")
    dom = Dom.parse(chromium.dump_dom(page))
    [body] = dom.root.find("body")
    assert "data-js" not in body.attrs, "a script ran despite the page's CSP"
    assert dom.root.find("script"), "the planted script is in the page, and did not run"
    assert len(_plots(dom)) >= 12


def test_a_screenshot_of_a_failing_run_is_kept(chromium: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(fault_report()), encoding="utf-8")
    shot = chromium.screenshot(page, artifacts_dir() / "html-report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- hostile text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["host", "intent", "test", "message", "sample", "src", "failure", "title"]
)
def test_hostile_text_is_shown_as_text_escaped_once(hostile_dom: Dom, prefix: str) -> None:
    multiline = prefix in ("sample", "failure", "message")
    for attack in ATTACKS:
        shown = terminal(f"{prefix} {attack}", one_line=not multiline)
        assert hostile_dom.has_text(shown), f"{shown!r} is not on the page"
    assert not any("&amp;amp;" in t or "&lt;script" in t for t in hostile_dom.texts)
    assert not any(set(t) & {"\x1b", "\u202e", "\r", "\x07"} for t in hostile_dom.texts)


def test_hostile_text_adds_no_element_or_attribute(hostile_dom: Dom) -> None:
    tags = {node.tag for node in hostile_dom.root.walk()} - {"#document"}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    for node in hostile_dom.root.walk():
        for name, value in node.attrs.items():
            assert not name.startswith("on"), (node.tag, name)
            assert "javascript:" not in value.lower(), (node.tag, name, value)
            assert "evil" not in value, (node.tag, name, value)
    assert (
        hostile_dom.root.find("title")[0].content()
        == "Live cluster cluster <script>alert(1)</script>"
    )


@pytest.mark.parametrize("which", ["fault", "hostile"])
def test_nothing_is_fetched_from_the_network(which: str, fault_dom: Dom, hostile_dom: Dom) -> None:
    dom = fault_dom if which == "fault" else hostile_dom
    for node in dom.root.walk():
        for name in ("src", "srcset", "poster", "data", "action", "background", "xlink:href"):
            assert name not in node.attrs, (node.tag, name)
        href = node.attrs.get("href")
        assert href is None or href.startswith("#"), (node.tag, href)
        assert node.tag != "link", node.attrs
    [csp] = [
        m for m in dom.root.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp.attrs["content"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    style = "".join(s.content() for s in dom.root.find("style")).lower()
    for banned in ("url(", "@import", "@font-face", "http:", "https:"):
        assert banned not in style


# -- finding the browser -------------------------------------------------------------------


def test_without_chromium_the_tests_skip_but_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIVECLUSTER_CHROMIUM", str(tmp_path / "no-such-browser"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is not an executable"):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true but .* CI must run the browser"):
        require_chromium()
