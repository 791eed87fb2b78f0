"""The HTML report page, as text: its escaper, what it draws, and reports it must survive.

What a browser makes of the page is in ``tests/browser/test_html_page.py``.
"""

from __future__ import annotations

import html
import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_livecluster import _escape
from pytest_livecluster.methodology.html import MAX_LINES, MAX_POINTS, MAX_ROWS, render_html
from tests.support.hostile_text import ATTACKS

START = 1_764_470_000.0
CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# -- _escape.html --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ('"><img src=x onerror=alert(1)>', "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        ("it's & <b>", "it&#x27;s &amp; &lt;b&gt;"),
        ("&amp;", "&amp;amp;"),
        ("\x1b[2J\u202eevil\rOK", "\\x1b[2J\\u202eevil\\rOK"),
        ("nul\x00 del\x7f csi\x9b", "nul\\x00 del\\x7f csi\\x9b"),
        ("two\nlines\tand a tab", "two\nlines\tand a tab"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("unicode é € 😀 ok", "unicode é € 😀 ok"),
    ],
)
def test_html_exact(text: str, expected: str) -> None:
    assert _escape.html(text) == expected


def test_html_one_line() -> None:
    assert _escape.html("a\nb\r\nc\td\u2028<", one_line=True) == "a\\nb\\r\\nc\\td\\u2028&lt;"


@given(st.text())
def test_html_leaves_nothing_active(text: str) -> None:
    out = _escape.html(text)
    assert not set(out) & (set("<>\"'") | (CONTROLS - {"\n", "\t"}) | BIDI)
    assert re.fullmatch(r"([^&]|&(amp|lt|gt|quot|#x27);)*", out, re.DOTALL)
    assert html.unescape(out) == _escape.terminal(text), "it shows what the terminal shows"
    out.encode("utf-8")


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="&<>\"'")))
def test_plain_text_is_left_alone(text: str) -> None:
    assert _escape.html(text) == _escape.terminal(text)


# -- helpers -------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _series(points: int, value: float = 2.0) -> list[float]:
    return [value] * points


def _history(points: int = 60, **series: Any) -> dict[str, Any]:
    base = {
        "collected": {"total": _series(points)},
        "sent": {"total": _series(points), "by": {"scraper": {"scraper-1": _series(points)}}},
        "received": {"total": _series(points), "by": {"spotter": {"spotter-1": _series(points)}}},
    }
    return {"step": 1.0, "start": START, "series": {**base, **series}}


def _polylines(page: str) -> list[str]:
    return re.findall(r'<polyline points="([^"]*)"', page)


# -- what the page is made of --------------------------------------------------------------


def test_the_page_is_one_self_contained_document() -> None:
    page = render_html({"cluster": "staging", "history": _history()})
    assert page.startswith("<!DOCTYPE html>\n<html")
    assert '<meta charset="utf-8">' in page
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "<script" not in page
    for fetching in ("src=", "url(", "@import", "@font-face", "http://", "https://", "<link"):
        assert fetching not in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs
    assert all(h.startswith("#") for h in hrefs)
    assert "<title>Live cluster staging</title>" in page


def test_coordinates_are_rounded_and_each_series_is_one_polyline() -> None:
    history = _history(points=300)
    history["series"]["sent"]["total"] = [float(i % 7) for i in range(300)]
    page = render_html({"history": history})
    lines = _polylines(page)
    assert len(lines) >= 5
    for points in lines:
        for number in re.split(r"[ ,]", points):
            assert re.fullmatch(r"-?\d+(\.\d)?", number), number


def test_flat_stretches_are_drawn_with_their_ends_only() -> None:
    page = render_html({"history": _history(points=700)})
    assert all(len(points.split()) == 2 for points in _polylines(page))


def test_a_long_series_is_summed_into_wider_points() -> None:
    points = 5 * MAX_POINTS
    sent = [float(i % 2) for i in range(points)]
    history = _history(points=points)
    history["series"]["sent"]["total"] = sent
    page = render_html({"history": history})
    assert all(len(p.split()) <= MAX_POINTS for p in _polylines(page))
    assert "sent: max 0.60 items/s, mean 0.50 items/s" in page, (
        "5 points of 0 and 1 summed, per 5 seconds"
    )


def test_the_loss_is_cumulative_sent_minus_received() -> None:
    history = _history(points=4)
    history["series"]["sent"]["total"] = [2, 2, 2, 2]
    history["series"]["received"]["total"] = [2, 0, 0, 2]
    page = render_html({"history": history})
    assert "sent but not received, cumulative: max 4 items, mean 2.50 items" in page


def test_a_breakdown_shows_the_busiest_and_sums_the_rest() -> None:
    scrapers = {f"scraper-{i:02d}": _series(60, float(i)) for i in range(MAX_LINES + 5)}
    history = _history()
    history["series"]["sent"]["by"] = {"scraper": scrapers}
    page = render_html({"history": history})
    assert "scraper-14" in page
    assert "scraper-05" in page
    assert "scraper-04" not in page
    assert "5 more, summed: max 10 items/s" in page


def test_the_time_axis_is_the_same_on_every_chart() -> None:
    report = {
        "history": _history(errors={"total": _series(60)}, lines={"total": _series(60)}),
        "tests": [{"nodeid": "t.py::test", "start": START + 5, "stop": START + 90}],
        "intents": [{"id": "i-1", "set": START - 30, "received": START + 10}],
    }
    page = render_html(report)
    charts = re.findall(r'<svg class="plot".*?</svg>', page, re.DOTALL)
    axes = {
        tuple(re.findall(r'<text class="tick" x="([^"]+)"[^>]*text-anchor="middle">([^<]+)<', c))
        for c in charts
    }
    assert len(charts) >= 6
    assert len(axes) == 1
    [axis] = axes
    assert axis[0][1] == "02:33:00", "from the earliest intent"
    assert axis[-1][1] == "02:34:45", "to the last test"


def test_intents_show_stuck_and_stale_first_and_say_how_many_were_left_out() -> None:
    intents = [
        {"id": f"i-{n}", "set": START + n, "received": START + n + 1, "phase": "received"}
        for n in range(MAX_ROWS + 50)
    ]
    intents.append({"id": "i-stuck", "set": START + 300, "phase": "sending", "stuck": True})
    intents.append({"id": "i-stale", "set": START + 301, "phase": "set", "stale": True})
    late = {"id": "i-late", "set": START + 2, "received": START + 9, "phase": "received"}
    intents.append({**late, "late": True})
    page = render_html({"intents": intents})
    rows = re.findall(r'<g class="intent"><title>intent ([^ ]+) ', page)
    assert len(rows) == MAX_ROWS
    assert rows[:4] == ["i-stuck", "i-stale", "i-late", "i-0"]
    assert "53 more intents not drawn" in page
    assert '<tspan class="warn">STUCK </tspan>' in page
    assert '<tspan class="warn">LATE </tspan>' in page
    assert "1 stuck, 1 stale, 1 late" in page


def test_an_error_sample_is_cut_and_kept_as_preformatted_text() -> None:
    sample = "Traceback\n" + "x" * 5000
    errors = [{"host": "h", "type": "T", "count": 3, "sample": sample, "first_seen": START}]
    page = render_html({"sections": [{"title": "errors", "lines": [], "data": errors}]})
    [pre] = re.findall(r"<pre>(Traceback.*?)</pre>", page, re.DOTALL)
    assert pre.startswith("Traceback\nxxx")
    assert pre.endswith("… (3010 more characters)")
    assert len(pre) < 2100


def test_tests_invariants_and_failures_are_listed() -> None:
    verdict = {
        "name": "no_loss",
        "mode": "always",
        "verdict": "broken",
        "failed": True,
        "what": "x < 1",
        "event": {"reason": "x = 3", "shard": {"time": START + 20}},
    }
    report = {
        "tests": [
            {"nodeid": "a.py::t1", "start": START, "stop": START + 5, "outcome": "passed"},
            {
                "nodeid": "a.py::t2",
                "start": START + 6,
                "stop": START + 9,
                "outcome": "failed",
                "message": "assert 1 == 2",
            },
        ],
        "sections": [{"title": "invariants", "lines": ["no_loss: broken"], "data": [verdict]}],
        "failures": ["docker:web-1: engine went away"],
    }
    page = render_html(report)
    assert "1 failed" in page
    assert "<pre>assert 1 == 2</pre>" in page
    assert "invariant no_loss: broken at 02:33:40: x = 3" in page
    assert "<pre>docker:web-1: engine went away</pre>" in page


# -- size ----------------------------------------------------------------------------------


def test_a_long_run_with_many_series_stays_small() -> None:
    points = MAX_POINTS

    def noisy(seed: int) -> list[float]:
        return [float((i * 7919 + seed * 104729) % 13) for i in range(points)]

    names = {f"scraper-{i}": noisy(i) for i in range(10)}
    domains = {f"site{i}.example": noisy(100 + i) for i in range(10)}
    sources = {f"docker:blade-{i}": noisy(200 + i) for i in range(10)}
    series = {
        "collected": {"total": noisy(1), "by": {"scraper": names, "domain": domains}},
        "sent": {"total": noisy(2), "by": {"scraper": names, "domain": domains}},
        "received": {"total": noisy(3), "by": {"spotter": dict(list(names.items())[:5])}},
        "errors": {"total": noisy(4), "by": {"host": names, "type": domains, "domain": domains}},
        "lines": {"total": noisy(5), "by": {"source": sources}},
        "reconnects": {"total": noisy(6), "by": {"source": sources}},
        "gaps": {"total": noisy(7), "by": {"source": sources}},
    }
    intents = [
        {
            "id": f"i-{n}",
            "set": START + n,
            "answered": {"scraper-1": START + n + 2},
            "received": START + n + 4,
            "stuck": n % 50 == 0,
        }
        for n in range(600)
    ]
    tests = [
        {
            "nodeid": f"t.py::test_{n}",
            "start": START + n,
            "stop": START + n + 3,
            "outcome": "passed",
        }
        for n in range(300)
    ]
    report = {
        "history": {"step": 1.0, "start": START, "series": series},
        "intents": intents,
        "tests": tests,
    }
    size = len(render_html(report).encode())
    assert size < 3_000_000, f"{size:,} bytes"


# -- hostile and malformed reports ---------------------------------------------------------


def _hostile_report() -> dict[str, Any]:
    ones = _series(30, 1.0)
    history = _history(points=30)
    history["series"]["sent"]["by"] = {"scraper": {f"host {a}": ones for a in ATTACKS}}
    history["series"]["lines"] = {
        "total": ones,
        "by": {"source": {f"src {a}": ones for a in ATTACKS}},
    }
    return {
        "cluster": ATTACKS[3],
        "generated": ATTACKS[4],
        "writer": ATTACKS[5],
        "history": history,
        "intents": [
            {
                "id": f"intent {a}",
                "host": a,
                "phase": a,
                "kind": a,
                "set": START,
                "answered": {a: START + 1},
                "stuck": True,
            }
            for a in ATTACKS
        ],
        "tests": [
            {"nodeid": f"test {a}", "outcome": a, "message": a, "start": START, "stop": START + 2}
            for a in ATTACKS
        ],
        "sources": [{"source": f"src {a}", "state": a, "last_errors": [a]} for a in ATTACKS],
        "failures": [f"failure {a}" for a in ATTACKS],
        "counters": dict.fromkeys(ATTACKS, 1),
        "state": {"rejected": dict.fromkeys(ATTACKS, 1)},
        "rejected_samples": [{"source": a, "stream": a, "reason": a, "text": a} for a in ATTACKS],
        "workers": dict.fromkeys(ATTACKS, 1),
        "rates": {"last_minute": {"by_scraper": {a: {"sent": 1.0} for a in ATTACKS}}},
        "sections": [
            {
                "title": "errors",
                "lines": [],
                "data": [
                    {"host": a, "type": a, "domain": a, "sample": a, "count": 1} for a in ATTACKS
                ],
            },
            {
                "title": "invariants",
                "lines": [],
                "data": [
                    {
                        "name": a,
                        "mode": a,
                        "verdict": a,
                        "what": a,
                        "error": a,
                        "event": {"reason": a, "shard": {"time": START + 1}},
                    }
                    for a in ATTACKS
                ],
            },
            *({"title": f"title {a}", "lines": [f"line {a}"]} for a in ATTACKS),
        ],
    }


def test_hostile_text_never_becomes_markup() -> None:
    page = render_html(_hostile_report())
    for raw in ("<script", "<img", "<iframe", "</svg><iframe", "\x1b", "\u202e", "\r", "\x07"):
        assert raw not in page
    parsed = _parse(page)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "image", "use"}
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert "javascript:" not in (value or ""), (tag, name, value)
            assert name not in ("src", "srcset"), (tag, name)
    texts = "\x00".join(parsed.texts)
    for attack in ATTACKS:
        assert _escape.terminal(attack, one_line=True) in texts


def test_only_the_pages_own_links_and_bold_exist() -> None:
    page = render_html(_hostile_report())
    parsed = _parse(page)
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert links == [
        f"#{a}"
        for a in ("throughput", "intents", "errors", "sources", "tests", "totals", "sections")
    ]


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"cluster": "only a name"},
        {"state": {"lines": 3}},
        {"history": "x"},
        {"history": None},
        {"history": {"step": 0, "start": START, "series": {}}},
        {"history": {"step": -1, "start": START}},
        {"history": {"step": 1, "start": "yesterday"}},
        {"history": {"step": 1, "start": 0, "series": {"sent": {"total": [1, 2]}}}},
        {"history": {"step": 1, "start": START, "series": "x"}},
        {"history": {"step": 1, "start": START, "series": {"sent": "x", "received": [1]}}},
        {"history": {"step": 1, "start": START, "series": {"sent": {"total": []}}}},
        {"history": {"step": math.nan, "start": START, "series": {}}},
        {"history": {"step": 1, "start": math.inf, "series": {}}},
        {"history": {"step": True, "start": START, "series": {}}},
        {
            "history": _history(
                points=5,
                sent={
                    "total": [1, None, math.nan, math.inf, "2", [], {}, -3],
                    "by": {"scraper": {"a": [1], "b": None, "c": "x"}, "domain": "x"},
                },
                received={"total": [1, 2, 3], "by": None},
                errors={"total": [None] * 5, "by": {"host": {"h": [0, 0]}}},
                lines={
                    "total": [0] * 9,
                    "by": {"source": {"s": [0, None, 3, 0, 0, 0, 0, 0, 0, 0]}},
                },
                reconnects={"total": [], "by": {"source": {"s": [1, "x", None]}}},
                gaps=None,
            )
        },
        {"tests": "x"},
        {"tests": [None, 1, "x", {"nodeid": None, "start": "now", "stop": math.nan}]},
        {"tests": [{"nodeid": "t", "start": START + 5, "stop": START}]},
        {"tests": [{"nodeid": "t", "stop": START}], "history": _history()},
        {"intents": {"i-1": {}}},
        {"intents": [None, {"id": None, "answered": "x", "set": "x", "stuck": "yes"}]},
        {"intents": [{"id": 7, "answered": {"h": None, "g": START}, "received": math.nan}]},
        {"intents": [{"id": "i", "kind": "update", "set": START}]},
        {"rates": "x"},
        {"rates": {"last_minute": {"received": math.nan, "sent": None}, "run": "x"}},
        {"rates": {"last_minute": {"received": 1, "by_scraper": {"a": None}, "by_spotter": 3}}},
        {"sources": [None, "x", {"source": None, "lines": "many", "last_errors": "boom"}]},
        {"sources": {"a": 1}},
        {"state": "x", "counters": [1, 2], "failures": "boom", "workers": [1]},
        {"state": {"rejected": "x", "lines": math.nan}, "counters": {"a": None, "b": math.inf}},
        {"rejected_samples": [None, {"text": None}]},
        {"sections": "x"},
        {"sections": [None, {"title": None, "lines": "abc"}, {"lines": [None, 1, {}]}]},
        {"sections": [{"title": "errors", "data": [None, {"count": "x", "first_seen": 1e300}]}]},
        {"sections": [{"title": "errors", "data": {"host": "h"}}]},
        {"sections": [{"title": "invariants", "data": [None, {"event": "x"}, {"failed": 1}]}]},
        {"sections": [{"title": "counts", "data": {"loss": "x", "total": None}}]},
        {"sections": [{"title": "counts", "data": {"loss": 5, "total": 0}}]},
        {"generated": None, "writer": 3, "cluster": ["a"], "report_version": "x"},
    ],
)
def test_a_malformed_report_draws_less_and_never_raises(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "could not be drawn" not in page, "each part copes on its own"
    page.encode("utf-8")


def test_not_a_mapping_at_all() -> None:
    assert render_html([]).startswith("<!DOCTYPE html>")  # type: ignore[arg-type]
    assert render_html(None).startswith("<!DOCTYPE html>")  # type: ignore[arg-type]


def test_a_part_that_cannot_be_drawn_says_so_and_the_rest_is_drawn() -> None:
    class Odd(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            if key == "rates":
                raise RuntimeError("unreadable")
            return super().get(key, default)

    page = render_html(Odd(cluster="c", history=_history()))
    assert "could not be drawn (RuntimeError)" in page
    assert "Items per second, whole cluster" in page
