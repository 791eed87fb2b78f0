"""The run report as one self-contained HTML page: charts on a shared time axis.

:func:`render_html` takes the JSON report (what ``RunReport.as_dict()`` gives,
plus the optional ``history``, ``rates``, ``tests`` and ``intents`` keys) and
returns a page that opens from a CI artifact with no network: inline CSS,
inline SVG drawn here, no script, no font, no image, no link out, and a
Content-Security-Policy that forbids fetching anything.

The page, top to bottom:

- a title with the cluster's name and when the report was made, and cards
  that turn red or orange when something needs a look (failed tests, broken
  invariants, stuck or stale intents, lost items, errors, a throughput that
  fell, failed sources);
- **throughput**: items collected, sent and received per second; the items
  lost so far (cumulative sent minus cumulative received) as a red area; a
  breakdown per scraper, spotter and domain, chosen with CSS-only tabs;
- **intents**: a row per intent from set, to a scraper's answer, to a
  spotter's receipt; stuck and stale ones first, in a warning colour;
- **errors** over time, by host, type and domain, and their groups with a sample;
- **sources**: lines per second per source, and a lane per source with its
  silences, reconnects and gaps;
- **tests**: when each live test ran and how it ended, invariants' verdicts;
- the run's totals, the sources' table, failure messages and every other
  section of the report.

Every chart has the same time axis (same scale and margins, UTC HH:MM:SS), so
a failed test lines up with the dip in throughput it caught. Every string
from the report goes through :func:`pytest_livecluster._escape.html`; the
page's own ids and colours never come from it. A malformed report draws less,
never raises: each part of the page is drawn on its own, and a part that
cannot be drawn says so.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from .. import _escape
from .._secrets import scrub

__all__ = ["render_html"]

_T = TypeVar("_T")

#: The most points drawn per series; longer series are summed into wider buckets.
MAX_POINTS: Final = 720
#: The most rows of the intent and test timelines.
MAX_ROWS: Final = 200
#: The most named lines in one breakdown; the rest are summed into one.
MAX_LINES: Final = 10
#: The most source lanes, and error groups in the table.
MAX_LANES: Final = 40
MAX_GROUPS: Final = 100
#: How much of an error sample is shown.
SAMPLE_CHARS: Final = 2000
#: The shortest stretch without a line from a source that is drawn as a silence.
SILENCE_S: Final = 5.0

# One geometry for every chart: the x scale is shared by all of them.
WIDTH: Final = 1200
LEFT: Final = 220
RIGHT: Final = 24
PLOT_W: Final = WIDTH - LEFT - RIGHT
ROW: Final = 16
AXIS_H: Final = 22
PLOT_TOP: Final = 22.0
LABEL_CHARS: Final = 30

_EARLIEST: Final = 946_684_800.0  # 2000-01-01: older "timestamps" are not times
_LATEST: Final = 4_102_444_800.0  # 2100-01-01

PALETTE: Final = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#17becf",
)
GREY: Final = "#8c959f"
DASH: Final = "\u2013"  # an en dash: "no value", and between two times
COLLECTED: Final = "#8c959f"
SENT: Final = "#0969da"
RECEIVED: Final = "#1a7f37"
LOSS: Final = "#cf222e"
WARN: Final = "#e8590c"
WAITING: Final = "#9ecbff"
SCRAPED: Final = "#0969da"
UPDATE: Final = "#8250df"
OUTCOMES: Final = {
    "passed": "#2da44e",
    "failed": "#cf222e",
    "error": "#82071e",
    "skipped": "#afb8c1",
}
VERDICTS: Final = {
    "kept": "#2da44e",
    "satisfied": "#2da44e",
    "holding": "#8c959f",
    "broken": "#cf222e",
    "never satisfied": "#cf222e",
    "error": "#82071e",
}
_TIME_STEPS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


# -- reading the report: every accessor accepts anything -----------------------------------


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _ts(value: object) -> float | None:
    """``value`` as unix seconds, or None when it cannot be a time of this century."""
    number = _num(value)
    return number if number is not None and _EARLIEST <= number <= _LATEST else None


def _str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _values(value: object) -> list[float | None]:
    return [_num(v) for v in _list(value)]


def _section(report: Mapping[str, Any], title: str) -> Mapping[str, Any] | None:
    for section in _list(report.get("sections")):
        if isinstance(section, Mapping) and section.get("title") == title:
            return section
    return None


# -- writing text: the only way report text reaches the page -------------------------------


def _t(value: object, *, one_line: bool = True) -> str:
    """Report text as HTML (text or quoted attribute value)."""
    return _escape.html(scrub(_str(value)), one_line=one_line)


def _short(value: object, limit: int = LABEL_CHARS, *, keep_end: bool = False) -> str:
    """Report text cut to ``limit`` visible characters, as HTML."""
    shown = _escape.terminal(scrub(_str(value)), one_line=True)
    if len(shown) > limit:
        shown = "…" + shown[-(limit - 1) :] if keep_end else shown[: limit - 1] + "…"
    return _escape.html(shown)


def _n(value: float | None) -> str:
    if value is None:
        return DASH
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def _stamp(t: float | None) -> str:
    if t is None:
        return DASH
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# -- the parsed report ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Metric:
    total: list[float | None]
    by: dict[str, dict[str, list[float | None]]]


@dataclass(frozen=True)
class _History:
    start: float
    step: float
    points: int
    metrics: dict[str, _Metric]

    def metric(self, name: str) -> _Metric:
        return self.metrics.get(name) or _Metric([], {})

    def at(self, index: int) -> float:
        return self.start + (index + 0.5) * self.step


@dataclass(frozen=True)
class _Test:
    nodeid: str
    start: float | None
    stop: float | None
    outcome: str
    message: str

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error")


@dataclass(frozen=True)
class _Intent:
    id: str
    kind: str
    host: str
    set: float | None
    answered: list[tuple[str, float]]
    received: float | None
    phase: str
    stuck: bool
    stale: bool
    late: bool = False

    @property
    def first(self) -> float | None:
        times = [
            t for t in (self.set, *(t for _, t in self.answered), self.received) if t is not None
        ]
        return min(times) if times else None


@dataclass(frozen=True)
class _Axis:
    t0: float
    t1: float

    def x(self, t: float) -> float:
        return LEFT + min(max((t - self.t0) / (self.t1 - self.t0), 0.0), 1.0) * PLOT_W

    def ticks(self) -> list[float]:
        span = self.t1 - self.t0
        step = next((s for s in _TIME_STEPS if span / s <= 10), _TIME_STEPS[-1])
        first = math.ceil(self.t0 / step) * step
        count = int((self.t1 - first) // step) + 1
        return [first + i * step for i in range(max(count, 0))]


def _merge_points(values: list[float | None], factor: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(0, len(values), factor):
        chunk = [v for v in values[i : i + factor] if v is not None]
        out.append(sum(chunk) if chunk else None)
    return out


def _parse_metric(raw: Mapping[str, Any]) -> _Metric:
    by = {
        _str(group): {_str(name): _values(values) for name, values in _map(names).items()}
        for group, names in _map(raw.get("by")).items()
    }
    return _Metric(_values(raw.get("total")), {g: names for g, names in by.items() if names})


def _parse_history(raw: object) -> _History | None:
    data = _map(raw)
    start, step = _ts(data.get("start")), _num(data.get("step"))
    if start is None or step is None or step <= 0:
        return None
    metrics = {_str(k): _parse_metric(_map(v)) for k, v in _map(data.get("series")).items()}
    lists = [m.total for m in metrics.values()]
    lists += [v for m in metrics.values() for names in m.by.values() for v in names.values()]
    points = max(map(len, lists), default=0)
    if points > MAX_POINTS:
        factor = math.ceil(points / MAX_POINTS)
        metrics = {
            name: _Metric(
                _merge_points(m.total, factor),
                {
                    g: {n: _merge_points(v, factor) for n, v in names.items()}
                    for g, names in m.by.items()
                },
            )
            for name, m in metrics.items()
        }
        step, points = step * factor, math.ceil(points / factor)
    return _History(start, step, points, metrics)


def _parse_tests(raw: object) -> list[_Test]:
    tests = []
    for item in _list(raw):
        test = _map(item)
        if not test:
            continue
        outcome = _str(test.get("outcome")).lower()
        tests.append(
            _Test(
                _str(test.get("nodeid")),
                _ts(test.get("start")),
                _ts(test.get("stop")),
                outcome,
                _str(test.get("message")),
            )
        )
    return tests


def _parse_intents(raw: object) -> list[_Intent]:
    intents = []
    for item in _list(raw):
        intent = _map(item)
        if not intent:
            continue
        answered = [
            (_str(host), t)
            for host, when in _map(intent.get("answered")).items()
            if (t := _ts(when)) is not None
        ]
        intents.append(
            _Intent(
                _str(intent.get("id")),
                _str(intent.get("kind")),
                _str(intent.get("host")),
                _ts(intent.get("set")),
                sorted(answered, key=lambda pair: pair[1]),
                _ts(intent.get("received")),
                _str(intent.get("phase")),
                intent.get("stuck") is True,
                intent.get("stale") is True,
                intent.get("late") is True,
            )
        )
    return intents


def _invariants(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    section = _section(report, "invariants")
    return [_map(v) for v in _list(section.get("data")) if _map(v)] if section else []


def _invariant_time(verdict: Mapping[str, Any]) -> float | None:
    return _ts(_map(_map(verdict.get("event")).get("shard")).get("time"))


def _make_axis(
    history: _History | None, tests: Sequence[_Test], intents: Sequence[_Intent]
) -> _Axis | None:
    times: list[float] = []
    if history is not None:
        times += [history.start, history.start + max(history.points, 1) * history.step]
    times += [t for test in tests for t in (test.start, test.stop) if t is not None]
    for intent in intents:
        times += [t for t in (intent.set, intent.received) if t is not None]
        times += [t for _, t in intent.answered]
    if not times:
        return None
    t0, t1 = min(times), max(times)
    return _Axis(t0, max(t1, t0 + 1.0))


@dataclass
class _Page:
    """The report, read once, and the ids handed out for the page's own elements."""

    report: Mapping[str, Any]
    history: _History | None
    tests: list[_Test]
    intents: list[_Intent]
    axis: _Axis | None
    ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    @classmethod
    def of(cls, report: Mapping[str, Any]) -> _Page:
        history = _guard(lambda: _parse_history(report.get("history")), None)
        no_tests: list[_Test] = []
        no_intents: list[_Intent] = []
        tests = _guard(lambda: _parse_tests(report.get("tests")), no_tests)
        intents = _guard(lambda: _parse_intents(report.get("intents")), no_intents)
        axis = _guard(lambda: _make_axis(history, tests, intents), None)
        return cls(report, history, tests, intents, axis)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"


def _guard(make: Callable[[], _T], default: _T) -> _T:
    try:
        return make()
    except Exception:
        return default


# -- drawing: charts -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    label: str  # report text, not yet escaped
    values: list[float | None]
    colour: str
    dash: str = ""
    width: float = 1.6
    area: bool = False


def _svg(height: float, label: str, body: str) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {_f(height)}" role="img" '
        f'aria-label="{label}">{body}</svg>'
    )


def _time_grid(axis: _Axis, top: float, bottom: float) -> str:
    parts = [
        f'<line class="frame" x1="{LEFT}" y1="{_f(bottom)}" x2="{WIDTH - RIGHT}" '
        f'y2="{_f(bottom)}"/>'
    ]
    for t in axis.ticks():
        x = _f(axis.x(t))
        parts.append(f'<line class="grid" x1="{x}" y1="{_f(top)}" x2="{x}" y2="{_f(bottom)}"/>')
        parts.append(
            f'<text class="tick" x="{x}" y="{_f(bottom + 15)}" text-anchor="middle">'
            f"{_clock(t)}</text>"
        )
    return "".join(parts)


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value)


def _tick_text(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}" if value >= 1 or value == 0 else f"{value:.2g}"


def _y_grid(ymax: float, top: float, bottom: float, unit: str) -> str:
    parts = []
    for i in range(5):
        value = ymax * i / 4
        y = _f(bottom - (bottom - top) * i / 4)
        if i:
            parts.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end">'
            f"{_tick_text(value)}</text>"
        )
    parts.append(f'<text class="unit" x="{LEFT - 6}" y="10" text-anchor="end">{unit}</text>')
    return "".join(parts)


def _runs(points: Iterable[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Contiguous stretches of known values, each without its redundant flat points."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
            continue
        run = runs[-1]
        if len(run) >= 2 and run[-1][1] == y and run[-2][1] == y:
            run[-1] = (x, y)
        else:
            run.append((x, y))
    return [run for run in runs if run]


def _coords(run: Sequence[tuple[float, float]]) -> str:
    if len(run) == 1:
        run = [run[0], run[0]]
    return " ".join(f"{_f(x)},{_f(y)}" for x, y in run)


def _series_shape(line: _Line, run: list[tuple[float, float]], base: float) -> str:
    if line.area:
        edge = [(run[0][0], base), *run, (run[-1][0], base)]
        return (
            f'<polygon points="{_coords(edge)}" fill="{line.colour}" fill-opacity="0.18"/>'
            f'<polyline points="{_coords(run)}" fill="none" stroke="{line.colour}" '
            f'stroke-width="{line.width}" stroke-linejoin="round"/>'
        )
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    return (
        f'<polyline points="{_coords(run)}" fill="none" stroke="{line.colour}" '
        f'stroke-width="{line.width}" stroke-linejoin="round" stroke-linecap="round"{dash}/>'
    )


def _summary(values: Sequence[float | None], unit: str) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "no data"
    return f"max {_n(max(known))} {unit}, mean {_n(sum(known) / len(known))} {unit}"


def _line_chart(
    page: _Page, lines: Sequence[_Line], *, unit: str, height: int = 200, extra: str = ""
) -> str:
    history, axis = page.history, page.axis
    assert history is not None
    assert axis is not None
    top, bottom = PLOT_TOP, float(height - AXIS_H)
    peak = max((v for line in lines for v in line.values if v is not None), default=0.0)
    ymax = _nice(peak)

    def y(value: float) -> float:
        return bottom - (bottom - top) * max(min(value / ymax, 1.0), 0.0)

    body = [_time_grid(axis, top, bottom), _y_grid(ymax, top, bottom, _t(unit))]
    for line in lines:
        points = (
            (axis.x(history.at(i)), None if v is None else y(v)) for i, v in enumerate(line.values)
        )
        shapes = "".join(_series_shape(line, run, bottom) for run in _runs(points))
        title = f"{_t(line.label)}: {_summary(line.values, _t(unit))}"
        body.append(f'<g class="series"><title>{title}</title>{shapes}</g>')
    body.append(extra)
    return _svg(height, _t(unit), "".join(body))


def _swatch(line: _Line) -> str:
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    return (
        f'<svg class="sw" viewBox="0 0 24 10" width="24" height="10" aria-hidden="true">'
        f'<line x1="1" y1="5" x2="23" y2="5" stroke="{line.colour}" '
        f'stroke-width="{max(line.width, 2.5)}"{dash}/></svg>'
    )


def _legend(lines: Sequence[_Line]) -> str:
    items = "".join(f"<li>{_swatch(line)}{_t(line.label)}</li>" for line in lines)
    return f'<ul class="legend">{items}</ul>'


def _key(entries: Sequence[tuple[str, str]]) -> str:
    """A legend of coloured boxes: (colour, the page's own text)."""
    items = "".join(
        f'<li><svg class="sw" viewBox="0 0 14 10" width="14" height="10" aria-hidden="true">'
        f'<rect width="14" height="10" rx="2" fill="{colour}"/></svg>{text}</li>'
        for colour, text in entries
    )
    return f'<ul class="legend">{items}</ul>'


def _figure(caption: str, svg: str, legend: str = "", note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return (
        f'<figure class="chart"><figcaption>{caption}</figcaption>{svg}{legend}{note_html}</figure>'
    )


def _tabs(page: _Page, panels: Sequence[tuple[str, str]]) -> str:
    """CSS-only tabs: one radio button per panel; the checked one's panel shows."""
    if not panels:
        return ""
    name = page.new_id("tabs")
    inputs = []
    for i, (label, _) in enumerate(panels):
        ident = page.new_id("tab")
        checked = " checked" if i == 0 else ""
        inputs.append(
            f'<input type="radio" name="{name}" id="{ident}"{checked}>'
            f'<label for="{ident}">{label}</label>'
        )
    bodies = "".join(f'<div class="panel">{body}</div>' for _, body in panels)
    return f'<div class="tabs">{"".join(inputs)}{bodies}</div>'


def _rates(values: Sequence[float | None], step: float) -> list[float | None]:
    return [None if v is None else v / step for v in values]


def _ranked(
    names: Mapping[str, list[float | None]], step: float, *, dashes: Sequence[str] = ("",)
) -> list[_Line]:
    """The busiest :data:`MAX_LINES` series as lines, the rest summed into one."""
    order = sorted(names, key=lambda n: (-sum(v or 0.0 for v in names[n]), n))
    lines = [
        _Line(name, _rates(names[name], step), PALETTE[i % len(PALETTE)], dashes[i % len(dashes)])
        for i, name in enumerate(order[:MAX_LINES])
    ]
    rest = order[MAX_LINES:]
    if rest:
        length = max(len(names[n]) for n in rest)
        summed: list[float | None] = [
            sum(names[n][i] or 0.0 for n in rest if i < len(names[n])) for i in range(length)
        ]
        lines.append(_Line(f"{len(rest)} more, summed", _rates(summed, step), GREY, "2 3"))
    return lines


def _cumulative(values: Sequence[float | None]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value or 0.0
        out.append(total)
    return out


# -- the page's parts ----------------------------------------------------------------------


def _header(page: _Page) -> str:
    report = page.report
    cluster = _str(report.get("cluster"))
    name = f' <span class="mono">{_t(cluster)}</span>' if cluster else ""
    facts = [f"report generated {_t(report.get('generated')) or DASH}"]
    if report.get("writer"):
        facts.append(_t(report.get("writer")))
    if page.axis is not None:
        axis = page.axis
        facts.append(
            f"from {_stamp(axis.t0)} to {_clock(axis.t1)} UTC ({_duration(axis.t1 - axis.t0)})"
        )
    nav = "".join(
        f'<a href="#{anchor}">{text}</a>'
        for anchor, text in (
            ("throughput", "throughput"),
            ("intents", "intents"),
            ("errors", "errors"),
            ("sources", "sources"),
            ("tests", "tests"),
            ("totals", "totals"),
            ("sections", "sections"),
        )
    )
    return (
        f"<header><h1>Live cluster{name}</h1>"
        f'<p class="meta">{" · ".join(facts)}</p><nav>{nav}</nav></header>'
    )


def _card(value: str, label: str, tone: str) -> str:
    return (
        f'<div class="card {tone}"><div class="v">{value}</div><div class="k">{label}</div></div>'
    )


def _rate(rates: Mapping[str, Any], window: str, name: str) -> float | None:
    return _num(_map(rates.get(window)).get(name))


def _loss_total(page: _Page) -> tuple[float, float] | None:
    counts = _section(page.report, "counts")
    data = _map(counts.get("data")) if counts else {}
    sent, loss = _num(data.get("total")), _num(data.get("loss"))
    if loss is not None:
        return loss, sent or 0.0
    if page.history is None:
        return None
    sent_total = sum(v or 0.0 for v in page.history.metric("sent").total)
    received_total = sum(v or 0.0 for v in page.history.metric("received").total)
    if not sent_total and not received_total:
        return None
    return sent_total - received_total, sent_total


def _cards(page: _Page) -> str:
    report = page.report
    cards = []
    if page.tests:
        failed = sum(t.failed for t in page.tests)
        passed = sum(t.outcome == "passed" for t in page.tests)
        cards.append(
            _card(f"{failed} failed", f"live tests ({passed} passed)", "bad" if failed else "ok")
        )
    invariants = _invariants(report)
    if invariants:
        broken = sum(v.get("failed") is True for v in invariants)
        cards.append(_card(f"{broken} broken", "invariants", "bad" if broken else "ok"))
    if page.intents:
        stuck = sum(i.stuck for i in page.intents)
        stale = sum(i.stale and not i.stuck for i in page.intents)
        late = sum(i.late and not (i.stuck or i.stale) for i in page.intents)
        tone = "bad" if stuck else "warn" if stale or late else "ok"
        text = f"{stuck} stuck, {stale} stale" + (f", {late} late" if late else "")
        cards.append(_card(text, f"intents (of {len(page.intents)})", tone))
    loss = _loss_total(page)
    if loss is not None:
        lost, sent = loss
        share = f" ({lost / sent:.1%} of sent)" if sent else ""
        cards.append(_card(_n(lost), f"items lost{share}", "bad" if lost > 0 else "ok"))
    errors = _error_total(page)
    if errors is not None:
        cards.append(_card(_n(errors), "errors", "warn" if errors else "ok"))
    cards += _rate_card(_map(report.get("rates")))
    failures = _list(report.get("failures"))
    if failures:
        cards.append(_card(str(len(failures)), "failed sources", "bad"))
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def _rate_card(rates: Mapping[str, Any]) -> list[str]:
    now, run = _rate(rates, "last_minute", "received"), _rate(rates, "run", "received")
    sent = _rate(rates, "last_minute", "sent")
    if now is None:
        return []
    window = _num(rates.get("window_s"))
    tone = "ok"
    if sent and now < 0.8 * sent:
        tone = "bad"
    elif run and now < 0.5 * run:
        tone = "warn"
    over = f"last {_n(window)} s" if window else "last minute"
    versus = f" (sent {_n(sent)}/s)" if sent is not None else ""
    return [_card(f"{_n(now)}/s", f"received, {over}{versus}", tone)]


def _error_total(page: _Page) -> float | None:
    section = _section(page.report, "errors")
    if section is not None:
        counts = [_num(_map(g).get("count")) for g in _list(section.get("data"))]
        return sum(c or 0.0 for c in counts)
    if page.history is not None and "errors" in page.history.metrics:
        return sum(v or 0.0 for v in page.history.metric("errors").total)
    return None


def _no_time(what: str) -> str:
    return f'<p class="empty">No {what} over time in this report.</p>'


def _failure_marks(page: _Page, top: float, bottom: float) -> str:
    axis = page.axis
    assert axis is not None
    marks = []
    for test in page.tests:
        when = test.stop or test.start
        if not test.failed or when is None:
            continue
        x = _f(axis.x(when))
        marks.append(
            f'<g class="mark"><title>{_t(test.nodeid)} {_t(test.outcome)} at {_clock(when)}'
            f'</title><line x1="{x}" y1="{_f(top)}" x2="{x}" y2="{_f(bottom)}" '
            f'stroke="{LOSS}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<path d="M{x},{_f(top)} l-5,-9 h10 z" fill="{LOSS}"/></g>'
        )
    return "".join(marks)


def _throughput(page: _Page) -> str:
    history = page.history
    head = '<h2 id="throughput">Throughput</h2>'
    if history is None or page.axis is None:
        return head + _no_time("throughput")
    step = history.step
    lines = [
        _Line("collected", _rates(history.metric("collected").total, step), COLLECTED, "5 3"),
        _Line("sent", _rates(history.metric("sent").total, step), SENT, width=2.2),
        _Line("received", _rates(history.metric("received").total, step), RECEIVED, width=2.2),
    ]
    lines = [line for line in lines if line.values]
    out = [head]
    if lines:
        height = 240
        marks = _failure_marks(page, PLOT_TOP, float(height - AXIS_H))
        svg = _line_chart(page, lines, unit="items/s", height=height, extra=marks)
        note = "Red dashed lines: a live test failed then." if marks else ""
        out.append(_figure("Items per second, whole cluster", svg, _legend(lines), note))
    out.append(_loss_chart(page))
    out.append(_breakdowns(page, ("received", "sent", "collected"), "items/s"))
    return "".join(out)


def _loss_chart(page: _Page) -> str:
    history = page.history
    assert history is not None
    sent, received = history.metric("sent").total, history.metric("received").total
    if not sent and not received:
        return ""
    sent_sum, received_sum = _cumulative(sent), _cumulative(received)
    length = max(len(sent_sum), len(received_sum))
    # Received ahead of sent (a scraper's lines read late) is no loss.
    loss: list[float | None] = [
        max(
            (sent_sum[min(i, len(sent_sum) - 1)] if sent_sum else 0.0)
            - (received_sum[min(i, len(received_sum) - 1)] if received_sum else 0.0),
            0.0,
        )
        for i in range(length)
    ]
    line = _Line("sent but not received, cumulative", loss, LOSS, width=1.8, area=True)
    svg = _line_chart(page, [line], unit="items", height=150)
    caption = 'Items lost <span class="sub">(cumulative sent minus cumulative received)</span>'
    return _figure(caption, svg, _legend([line]))


def _breakdowns(page: _Page, metrics: Sequence[str], unit: str) -> str:
    history = page.history
    assert history is not None
    panels = []
    for metric in metrics:
        for group, names in history.metric(metric).by.items():
            lines = _ranked(names, history.step)
            label = f"{_t(metric)} per {_t(group)}"
            svg = _line_chart(page, lines, unit=unit, height=200)
            panels.append((label, _figure(label.capitalize(), svg, _legend(lines))))
    return _tabs(page, panels)


# -- intents -------------------------------------------------------------------------------


def _intent_order(intent: _Intent) -> tuple[int, float]:
    rank = 0 if intent.stuck else 1 if intent.stale else 2 if intent.late else 3
    return rank, intent.first if intent.first is not None else math.inf


def _bar(axis: _Axis, start: float, end: float, y: float, colour: str, height: float) -> str:
    x1, x2 = axis.x(start), axis.x(end)
    width = max(x2 - x1, 2.0)
    return (
        f'<rect x="{_f(x1)}" y="{_f(y - height / 2)}" width="{_f(width)}" '
        f'height="{_f(height)}" rx="2" fill="{colour}"/>'
    )


def _intent_row(axis: _Axis, intent: _Intent, y: float) -> str:
    warn = intent.stuck or intent.stale or intent.late
    tag = "STUCK " if intent.stuck else "STALE " if intent.stale else "LATE " if intent.late else ""
    update = intent.kind == "update"
    label = (
        f'<text class="lane" x="{LEFT - 6}" y="{_f(y)}" dy="4" text-anchor="end">'
        + (f'<tspan class="warn">{tag}</tspan>' if tag else "")
        + ('<tspan class="upd">update </tspan>' if update else "")
        + f"{_short(intent.id, LABEL_CHARS - len(tag) - (7 if update else 0))}</text>"
    )
    parts = [label]
    if warn:
        parts.insert(
            0,
            f'<rect class="warnrow" x="0" y="{_f(y - ROW / 2)}" width="{WIDTH}" height="{ROW}"/>',
        )
    start = intent.set if intent.set is not None else intent.first
    if start is not None:
        parts.append(_intent_bars(axis, intent, start, y, warn, update))
    title = (
        f"intent {_t(intent.id)} ({_t(intent.kind) or 'scrape'}, host {_t(intent.host) or DASH}): "
        f"phase {_t(intent.phase) or DASH}"
        + (", stuck" if intent.stuck else "")
        + (", stale" if intent.stale else "")
        + (", late" if intent.late else "")
        + (f", set {_clock(intent.set)}" if intent.set else "")
        + "".join(f", {_t(host)} answered {_clock(t)}" for host, t in intent.answered)
        + (f", received {_clock(intent.received)}" if intent.received else "")
    )
    return f'<g class="intent"><title>{title}</title>{"".join(parts)}</g>'


def _intent_bars(
    axis: _Axis, intent: _Intent, start: float, y: float, warn: bool, update: bool
) -> str:
    answered = intent.answered[0][1] if intent.answered else None
    end = intent.received if intent.received is not None else axis.t1
    parts = []
    if update:
        stop = answered if answered is not None else axis.t1
        colour = WARN if warn else UPDATE
        parts.append(_bar(axis, start, stop, y, colour, 6 if answered else 10))
    elif answered is None:
        parts.append(_bar(axis, start, end, y, WARN if warn else WAITING, 10))
    else:
        parts.append(_bar(axis, start, answered, y, WAITING, 10))
        parts.append(_bar(axis, answered, end, y, WARN if warn else SCRAPED, 10))
    for _, when in intent.answered:
        x = _f(axis.x(when))
        parts.append(
            f'<line x1="{x}" y1="{_f(y - 7)}" x2="{x}" y2="{_f(y + 7)}" stroke="#1f2328" '
            'stroke-width="1.5"/>'
        )
    if intent.received is not None:
        parts.append(
            f'<circle cx="{_f(axis.x(intent.received))}" cy="{_f(y)}" r="4.5" '
            f'fill="{RECEIVED}" stroke="#fff" stroke-width="1"/>'
        )
    return "".join(parts)


def _intents(page: _Page) -> str:
    head = '<h2 id="intents">Intents</h2>'
    if not page.intents:
        return head + '<p class="empty">No intents in this report.</p>'
    if page.axis is None:
        return head + _no_time("intent")
    ordered = sorted(page.intents, key=_intent_order)
    shown, left_out = ordered[:MAX_ROWS], len(ordered) - MAX_ROWS
    top = 8.0
    height = top + len(shown) * ROW + AXIS_H + 4
    bottom = top + len(shown) * ROW + 4
    rows = "".join(
        _intent_row(page.axis, intent, top + ROW * (i + 0.5)) for i, intent in enumerate(shown)
    )
    svg = _svg(height, "intents", _time_grid(page.axis, top, bottom) + rows)
    key = _key(
        [
            (WAITING, "set, waiting for the scraper"),
            (SCRAPED, "scraper answered, on the way to a spotter"),
            (RECEIVED, "received by a spotter (dot)"),
            (WARN, "stuck, stale or late"),
            (UPDATE, "module update"),
            ("#1f2328", "a host answered (tick)"),
        ]
    )
    note = (
        f"{left_out} more intents not drawn (stuck, stale and late ones come first)."
        if left_out > 0
        else ""
    )
    caption = f'One row per intent <span class="sub">({len(page.intents)} intents)</span>'
    return head + _figure(caption, svg, key, note)


# -- errors --------------------------------------------------------------------------------


def _errors(page: _Page) -> str:
    out = ['<h2 id="errors">Errors</h2>']
    history = page.history
    if history is not None and page.axis is not None and "errors" in history.metrics:
        metric = history.metric("errors")
        total = _Line("all errors", _rates(metric.total, history.step), LOSS, width=2.0)
        panels = [("all errors", _figure("Errors per second", _errors_chart(page, [total]), ""))]
        for group, names in metric.by.items():
            lines = _ranked(names, history.step)
            label = f"by {_t(group)}"
            svg = _errors_chart(page, lines)
            panels.append((label, _figure(f"Errors per second, {label}", svg, _legend(lines))))
        out.append(_tabs(page, panels))
    out.append(_error_table(page.report))
    return "".join(out)


def _errors_chart(page: _Page, lines: Sequence[_Line]) -> str:
    return _line_chart(page, lines, unit="errors/s", height=170)


def _error_table(report: Mapping[str, Any]) -> str:
    section = _section(report, "errors")
    groups = [_map(g) for g in _list(section.get("data")) if _map(g)] if section else []
    if not groups:
        return '<p class="empty">No error groups in this report.</p>'
    rows = "".join(_error_row(group) for group in groups[:MAX_GROUPS])
    more = len(groups) - MAX_GROUPS
    note = f'<p class="note">{more} more error groups not listed.</p>' if more > 0 else ""
    return (
        "<table><thead><tr><th>host</th><th>type</th><th>domain</th>"
        '<th class="n">count</th><th>first seen</th><th>last seen</th><th>sample</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>{note}"
    )


def _error_row(group: Mapping[str, Any]) -> str:
    sample = _str(group.get("sample"))
    if len(sample) > SAMPLE_CHARS:
        sample = sample[:SAMPLE_CHARS] + f"… ({len(sample) - SAMPLE_CHARS} more characters)"
    return (
        f'<tr><td class="mono">{_t(group.get("host"))}</td>'
        f'<td class="wrap">{_t(group.get("type"))}</td>'
        f'<td class="mono">{_t(group.get("domain"))}</td>'
        f'<td class="n">{_n(_num(group.get("count")))}</td>'
        f'<td class="t">{_stamp(_ts(group.get("first_seen")))}</td>'
        f'<td class="t">{_stamp(_ts(group.get("last_seen")))}</td>'
        f"<td><pre>{_t(sample, one_line=False)}</pre></td></tr>"
    )


# -- sources -------------------------------------------------------------------------------


def _sources(page: _Page) -> str:
    out = ['<h2 id="sources">Sources</h2>']
    history = page.history
    if history is not None and page.axis is not None and "lines" in history.metrics:
        lines_metric = history.metric("lines")
        per_source = lines_metric.by.get("source", {})
        lines = _ranked(per_source, history.step)
        if lines_metric.total:
            total = _Line("all sources", _rates(lines_metric.total, history.step), "#1f2328")
            lines.insert(0, total)
        svg = _line_chart(page, lines, unit="lines/s", height=180)
        out.append(_figure("Lines per second, by source", svg, _legend(lines)))
        out.append(_source_lanes(page, per_source))
    out.append(_source_table(page.report))
    return "".join(out)


def _source_lanes(page: _Page, per_source: Mapping[str, list[float | None]]) -> str:
    history, axis = page.history, page.axis
    assert history is not None
    assert axis is not None
    reconnects = history.metric("reconnects").by.get("source", {})
    gaps = history.metric("gaps").by.get("source", {})
    names = sorted({*per_source, *reconnects, *gaps})
    if not names:
        return ""
    shown = names[:MAX_LANES]
    top = 8.0
    bottom = top + len(shown) * ROW + 4
    rows = []
    for i, name in enumerate(shown):
        y = top + ROW * (i + 0.5)
        rows.append(
            _source_lane(
                page, name, per_source.get(name, []), reconnects.get(name), gaps.get(name), y
            )
        )
    svg = _svg(bottom + AXIS_H, "source lanes", _time_grid(axis, top, bottom) + "".join(rows))
    key = _key(
        [
            ("#aceebb", "lines arrived"),
            ("#ffaba8", "silent (no line for longer than usual)"),
            (WARN, "reconnect (triangle)"),
            ("#82071e", "gap in sequence (bar)"),
        ]
    )
    more = len(names) - len(shown)
    note = f"{more} more sources not drawn." if more > 0 else ""
    return _figure("Each source: silences, reconnects and gaps", svg, key, note)


def _usual_silence(values: Sequence[float | None], step: float) -> int:
    """How many empty points in a row make a silence: more than 5 s, and more than
    twice the source's usual pause (a source that writes every 10 s is not silent)."""
    active = [i for i, value in enumerate(values) if value]
    pauses = sorted(b - a - 1 for a, b in itertools.pairwise(active))
    usual = pauses[len(pauses) // 2] if pauses else 0
    return max(math.ceil(SILENCE_S / step), 2 * usual + 1)


def _activity(values: Sequence[float | None], silence: int) -> list[bool | None]:
    """Per point: lines came (or a usual pause), silent, or unknown (None)."""
    states: list[bool | None] = [None if v is None else v > 0 for v in values]
    i = 0
    while i < len(states):
        j = i
        while j < len(states) and states[j] is False:
            j += 1
        if j - i < silence:
            states[i:j] = [True] * (j - i)
        i = max(j, i + 1)
    return states


def _stretches(states: Sequence[bool | None]) -> Iterator[tuple[int, int, bool]]:
    """(first, end, active) for each run of equal known states."""
    start, state = 0, None
    for i, now in enumerate([*states, None]):
        if now != state:
            if state is not None:
                yield start, i, state
            start, state = i, now


def _source_lane(
    page: _Page,
    name: str,
    lines: Sequence[float | None],
    reconnects: Sequence[float | None] | None,
    gaps: Sequence[float | None] | None,
    y: float,
) -> str:
    history, axis = page.history, page.axis
    assert history is not None
    assert axis is not None
    edge = history.start
    parts = [
        f'<text class="lane" x="{LEFT - 6}" y="{_f(y)}" dy="4" text-anchor="end">'
        f"{_short(name, keep_end=True)}</text>"
    ]
    silences = 0
    states = _activity(lines, _usual_silence(lines, history.step))
    for first, end, active in _stretches(states):
        t1, t2 = edge + first * history.step, edge + end * history.step
        silences += not active
        colour = "#aceebb" if active else "#ffaba8"
        parts.append(_bar(axis, t1, t2, y, colour, 10))
    parts.append(_event_marks(page, reconnects, y, "triangle"))
    parts.append(_event_marks(page, gaps, y, "bar"))
    total = sum(v or 0.0 for v in lines)
    title = (
        f"{_t(name)}: {_n(total)} lines, {silences} silent stretches, "
        f"{_n(sum(v or 0.0 for v in reconnects or ()))} reconnects, "
        f"{_n(sum(v or 0.0 for v in gaps or ()))} gaps"
    )
    return f'<g class="lane"><title>{title}</title>{"".join(parts)}</g>'


def _event_marks(page: _Page, values: Sequence[float | None] | None, y: float, shape: str) -> str:
    history, axis = page.history, page.axis
    assert history is not None
    assert axis is not None
    if not values:
        return ""
    path = []
    for i, value in enumerate(values):
        if value:
            x = _f(axis.x(history.at(i)))
            if shape == "triangle":
                path.append(f"M{x},{_f(y - 7)} l5,9 h-10 z")
            else:
                path.append(f"M{x},{_f(y - 8)} v16")
    if not path:
        return ""
    if shape == "triangle":
        return f'<path d="{" ".join(path)}" fill="{WARN}" stroke="#fff" stroke-width="0.8"/>'
    return f'<path d="{" ".join(path)}" stroke="#82071e" stroke-width="3"/>'


def _source_table(report: Mapping[str, Any]) -> str:
    sources = [_map(s) for s in _list(report.get("sources")) if _map(s)]
    if not sources:
        return '<p class="empty">No sources in this report.</p>'
    numbers = ("lines", "bytes", "rejected", "reconnects", "gaps", "errors")
    head = "".join(f'<th class="n">{key}</th>' for key in numbers)
    rows = []
    for source in sources:
        cells = "".join(f'<td class="n">{_n(_num(source.get(k)))}</td>' for k in numbers)
        last = _list(source.get("last_errors"))
        rows.append(
            f'<tr><td class="mono">{_t(source.get("source"))}</td>'
            f'<td class="t">{_t(source.get("state"))}</td>{cells}'
            f'<td class="n">{_n(_num(source.get("silent_for_s")))} s</td>'
            f'<td class="wrap">{_t(last[-1]) if last else ""}</td></tr>'
        )
    return (
        f"<table><thead><tr><th>source</th><th>state</th>{head}"
        '<th class="n">silent for</th><th>last error</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# -- tests and invariants ------------------------------------------------------------------


def _tests(page: _Page) -> str:
    out = ['<h2 id="tests">Tests and invariants</h2>']
    timed = [t for t in page.tests if t.start is not None or t.stop is not None]
    verdicts = [(v, _invariant_time(v)) for v in _invariants(page.report)]
    timed_verdicts = [(v, t) for v, t in verdicts if t is not None]
    if page.axis is not None and (timed or timed_verdicts):
        out.append(_test_chart(page, timed, timed_verdicts))
    elif page.tests:
        out.append(_no_time("test"))
    out.append(_failed_tests(page.tests))
    out.append(_invariant_table([v for v, _ in verdicts]))
    return "".join(out)


def _test_chart(
    page: _Page, tests: Sequence[_Test], verdicts: Sequence[tuple[Mapping[str, Any], float]]
) -> str:
    axis = page.axis
    assert axis is not None
    chosen = sorted(tests, key=lambda t: (not t.failed, t.start or t.stop or 0.0))[:MAX_ROWS]
    shown = sorted(chosen, key=lambda t: t.start or t.stop or 0.0)
    top = 8.0
    rows_count = len(shown) + len(verdicts)
    bottom = top + rows_count * ROW + 4
    rows = [_test_row(axis, test, top + ROW * (i + 0.5)) for i, test in enumerate(shown)]
    rows += [
        _verdict_row(axis, verdict, when, top + ROW * (len(shown) + i + 0.5))
        for i, (verdict, when) in enumerate(verdicts)
    ]
    svg = _svg(bottom + AXIS_H, "tests", _time_grid(axis, top, bottom) + "".join(rows))
    key = _key([(colour, outcome) for outcome, colour in OUTCOMES.items()])
    more = len(tests) - len(shown)
    note = f"{more} more tests not drawn (failed ones come first)." if more > 0 else ""
    if verdicts:
        note += " Diamonds: the shard that decided an invariant."
    return _figure("When each live test ran", svg, key, note.strip())


def _test_row(axis: _Axis, test: _Test, y: float) -> str:
    start = test.start if test.start is not None else test.stop
    stop = test.stop if test.stop is not None else test.start
    assert start is not None
    assert stop is not None
    colour = OUTCOMES.get(test.outcome, GREY)
    cls = "lane bad" if test.failed else "lane"
    title = f"{_t(test.nodeid)}: {_t(test.outcome) or DASH}, {_clock(start)}{DASH}{_clock(stop)}"
    if test.message:
        title += f": {_t(test.message)}"
    return (
        f"<g><title>{title}</title>"
        f'<text class="{cls}" x="{LEFT - 6}" y="{_f(y)}" dy="4" text-anchor="end">'
        f"{_short(_test_label(test.nodeid), keep_end=True)}</text>"
        f"{_bar(axis, start, max(stop, start), y, colour, 10)}</g>"
    )


def _test_label(nodeid: str) -> str:
    """The node id without the directories of its file."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def _verdict_row(axis: _Axis, verdict: Mapping[str, Any], when: float, y: float) -> str:
    name, state = verdict.get("name"), _str(verdict.get("verdict"))
    colour = VERDICTS.get(state, GREY)
    x = axis.x(when)
    reason = _t(_map(verdict.get("event")).get("reason"))
    return (
        f"<g><title>invariant {_t(name)}: {_t(state)} at {_clock(when)}"
        f"{': ' + reason if reason else ''}</title>"
        f'<text class="lane inv" x="{LEFT - 6}" y="{_f(y)}" dy="4" text-anchor="end">'
        f"{_short(name, LABEL_CHARS - 2)} ◆</text>"
        f'<path d="M{_f(x)},{_f(y - 6)} l6,6 l-6,6 l-6,-6 z" fill="{colour}"/></g>'
    )


def _failed_tests(tests: Sequence[_Test]) -> str:
    failed = [t for t in tests if t.failed or t.message]
    if not failed:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{_t(t.nodeid)}</td>'
        f'<td><span class="badge{" bad" if t.failed else ""}">{_t(t.outcome)}</span></td>'
        f"<td><pre>{_t(t.message, one_line=False)}</pre></td></tr>"
        for t in failed[:MAX_ROWS]
    )
    return (
        "<h3>Test failures</h3><table><thead><tr><th>test</th><th>outcome</th>"
        f"<th>message</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _invariant_table(verdicts: Sequence[Mapping[str, Any]]) -> str:
    if not verdicts:
        return ""
    rows = []
    for verdict in verdicts:
        state = _str(verdict.get("verdict"))
        reason = _map(verdict.get("event")).get("reason") or verdict.get("error")
        tone = "bad" if verdict.get("failed") is True else "ok"
        rows.append(
            f'<tr class="{tone}"><td class="mono">{_t(verdict.get("name"))}</td>'
            f"<td>{_t(verdict.get('mode'))}</td><td><b>{_t(state)}</b></td>"
            f'<td class="wrap">{_t(verdict.get("what"))}</td>'
            f'<td class="wrap">{_t(reason)}</td></tr>'
        )
    return (
        "<h3>Invariants</h3><table><thead><tr><th>invariant</th><th>mode</th>"
        "<th>verdict</th><th>check</th><th>why</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# -- totals and the rest -------------------------------------------------------------------


def _totals(page: _Page) -> str:
    report = page.report
    out = ['<h2 id="totals">Totals</h2>', '<div class="cols">']
    out.append(_state_table(_map(report.get("state"))))
    out.append(_rates_table(_map(report.get("rates"))))
    out.append(_counter_table(_map(report.get("counters"))))
    out.append("</div>")
    out.append(_rates_breakdown(_map(report.get("rates"))))
    out.append(_failures(report))
    out.append(_rejected(report))
    return "".join(out)


def _pairs_table(caption: str, rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th class="wrap">{k}</th><td class="n">{v}</td></tr>' for k, v in rows)
    return f"<table><caption>{caption}</caption><tbody>{body}</tbody></table>" if body else ""


def _state_table(state: Mapping[str, Any]) -> str:
    rows = [
        (label, _n(_num(state.get(key))))
        for key, label in (
            ("lines", "lines read"),
            ("accepted", "shards accepted"),
            ("version", "state version"),
            ("evicted", "evicted"),
            ("top_level_keys", "top-level keys"),
        )
        if key in state
    ]
    rejected = _map(state.get("rejected"))
    rows += [(f"rejected: {_t(reason)}", _n(_num(n))) for reason, n in rejected.items()]
    return _pairs_table("State", rows)


def _rates_table(rates: Mapping[str, Any]) -> str:
    if not rates:
        return ""
    window = _num(rates.get("window_s"))
    last = f"last {_n(window)} s" if window else "last minute"
    rows = "".join(
        f"<tr><th>{name}</th>"
        f'<td class="n">{_n(_rate(rates, "last_minute", name))}</td>'
        f'<td class="n">{_n(_rate(rates, "run", name))}</td></tr>'
        for name in ("collected", "sent", "received")
    )
    return (
        f'<table><caption>Items per second</caption><thead><tr><th></th><th class="n">{last}'
        f'</th><th class="n">whole run</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _rates_breakdown(rates: Mapping[str, Any]) -> str:
    out = []
    for key, who in (("by_scraper", "scraper"), ("by_spotter", "spotter")):
        names = sorted(
            {*_map(_map(rates.get("last_minute")).get(key)), *_map(_map(rates.get("run")).get(key))}
        )
        if not names:
            continue
        fields = ("collected", "sent") if who == "scraper" else ("received",)
        head = "".join(f'<th class="n">{f}, last</th><th class="n">{f}, run</th>' for f in fields)
        rows = []
        for name in names[:MAX_GROUPS]:
            now = _map(_map(_map(rates.get("last_minute")).get(key)).get(name))
            run = _map(_map(_map(rates.get("run")).get(key)).get(name))
            cells = "".join(
                f'<td class="n">{_n(_num(now.get(f)))}</td>'
                f'<td class="n">{_n(_num(run.get(f)))}</td>'
                for f in fields
            )
            rows.append(f'<tr><td class="mono">{_t(name)}</td>{cells}</tr>')
        out.append(
            f"<table><caption>Per {who}, items per second</caption><thead><tr><th>{who}</th>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return f'<div class="cols">{"".join(out)}</div>' if out else ""


def _counter_table(counters: Mapping[str, Any]) -> str:
    rows = [(f'<span class="mono">{_t(k)}</span>', _n(_num(v))) for k, v in counters.items()]
    return _pairs_table("Counters", rows[:MAX_GROUPS])


def _failures(report: Mapping[str, Any]) -> str:
    failures = _list(report.get("failures"))
    if not failures:
        return ""
    items = "".join(f"<li><pre>{_t(f, one_line=False)}</pre></li>" for f in failures)
    return f'<h3>Failed sources</h3><ul class="failures">{items}</ul>'


def _rejected(report: Mapping[str, Any]) -> str:
    samples = [_map(s) for s in _list(report.get("rejected_samples")) if _map(s)]
    if not samples:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{_t(s.get("source"))}</td><td>{_t(s.get("stream"))}</td>'
        f"<td>{_t(s.get('reason'))}</td><td><pre>{_t(_str(s.get('text'))[:SAMPLE_CHARS])}"
        "</pre></td></tr>"
        for s in samples
    )
    return (
        "<h3>Lines the state did not take</h3><table><thead><tr><th>source</th>"
        f"<th>stream</th><th>reason</th><th>text</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _sections(page: _Page) -> str:
    blocks = []
    for item in _list(page.report.get("sections")):
        section = _map(item)
        lines = [line for line in _list(section.get("lines")) if line is not None]
        if not section or not lines:
            continue
        items = "".join(f"<li>{_t(line)}</li>" for line in lines)
        blocks.append(f'<h3 class="mono">{_t(section.get("title"))}</h3><ul>{items}</ul>')
    workers = _map(page.report.get("workers"))
    if workers:
        items = "".join(f"<li>{_t(w)}: {_n(_num(n))} lines</li>" for w, n in workers.items())
        blocks.append(f"<h3>Workers (each followed the cluster)</h3><ul>{items}</ul>")
    if not blocks:
        return ""
    return '<h2 id="sections">Report sections</h2>' + "".join(blocks)


# -- the document --------------------------------------------------------------------------

_PARTS: Final[tuple[tuple[str, Callable[[_Page], str]], ...]] = (
    ("summary", _cards),
    ("throughput", _throughput),
    ("intents", _intents),
    ("errors", _errors),
    ("sources", _sources),
    ("tests", _tests),
    ("totals", _totals),
    ("sections", _sections),
)

_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_TAB_RULES: Final = "".join(
    f".tabs>input:nth-of-type({i}):checked~.panel:nth-of-type({i}){{display:block}}"
    for i in range(1, 25)
)

_CSS: Final = (
    """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1244px;margin:0 auto;padding:16px 20px 48px}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:18px;margin:30px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#59636e;margin:0 0 6px}
nav a{margin-right:14px;color:#0969da;text-decoration:none}
.mono,pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 4px}
.card{background:#fff;border:1px solid #d0d7de;border-left:7px solid #8c959f;border-radius:6px;
padding:8px 14px;min-width:150px}
.card.ok{border-left-color:#2da44e}
.card.warn{border-left-color:#e8590c;background:#fff4e6}
.card.bad{border-left-color:#cf222e;background:#ffebe9}
.card .v{font-size:21px;font-weight:650}
.card .k{color:#59636e;font-size:12px}
figure.chart{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:10px 0;padding:8px 0}
figcaption{font-weight:600;padding:0 14px 2px}
.sub{font-weight:400;color:#59636e}
svg.plot{display:block;width:100%;height:auto;overflow:visible}
svg .grid{stroke:#eaeef2;stroke-width:1}
svg .frame{stroke:#8c959f;stroke-width:1}
svg .tick,svg .unit{font-size:11px;fill:#59636e}
svg .unit{font-style:italic}
svg .lane{font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#1f2328}
svg .lane.bad{fill:#cf222e;font-weight:700}
svg .lane.inv{fill:#59636e}
svg .warn{fill:#e8590c;font-weight:700}
svg .upd{fill:#8250df;font-weight:700}
svg .warnrow{fill:#fff4e6}
.legend{list-style:none;margin:4px 0 0;padding:0 14px 0 18.3%;display:flex;flex-wrap:wrap;
gap:4px 18px;font-size:12px}
.legend li{display:flex;align-items:center;gap:6px}
.note,.empty{color:#59636e;margin:4px 14px 0 18.3%;font-size:12px}
.empty{margin:6px 0}
.cols{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0 10px;max-width:100%}
caption{text-align:left;font-weight:600;padding:2px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
td.mono,.wrap{overflow-wrap:anywhere}
.t{white-space:nowrap}
thead th{background:#f6f8fa}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.bad td{background:#ffebe9}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;max-height:18em;overflow:auto;font-size:12px}
ul.failures pre{color:#82071e}
.badge{font-weight:600}
.badge.bad{color:#cf222e}
.tabs{margin:6px 0}
.tabs>input{position:absolute;opacity:0;pointer-events:none}
.tabs>label{display:inline-block;padding:3px 12px;margin:4px 6px 0 0;border:1px solid #d0d7de;
border-radius:14px;background:#fff;cursor:pointer;font-size:13px}
.tabs>input:checked+label{background:#0969da;border-color:#0969da;color:#fff}
.tabs>input:focus-visible+label{outline:2px solid #0969da;outline-offset:2px}
.tabs>.panel{display:none}
"""
    + _TAB_RULES
)


def _part(page: _Page, name: str, draw: Callable[[_Page], str]) -> str:
    try:
        return draw(page)
    except Exception as exc:
        return f'<p class="empty">The {name} part could not be drawn ({type(exc).__name__}).</p>'


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page (see the module's docstring)."""
    data = report if isinstance(report, Mapping) else {}
    page = _Page.of(data)
    cluster = _str(data.get("cluster"))
    title = f"Live cluster {_t(cluster)}" if cluster else "Live cluster report"
    body = _part(page, "header", _header) + "".join(
        _part(page, name, draw) for name, draw in _PARTS
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{title}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
