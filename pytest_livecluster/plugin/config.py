"""The plugin's settings: its options (see :mod:`.options`), resolved and validated once.

Precedence, everywhere: a test's ``livecluster`` marker, then the command
line, then the ini file, then the default. Every bad value raises
:class:`~pytest_livecluster.exceptions.ConfigError` naming the value and what
would be valid; the plugin turns it into ``pytest.UsageError``. Numbers are
parsed by :mod:`pytest_livecluster._values`, one rule for every door: seconds
(markers included) above 0 and up to 30 days, counts from 1 to 10 000 000,
``livecluster_max_line_bytes`` up to 1 GiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from .._values import positive_int, positive_seconds, ttl_rule
from ..exceptions import ConfigError
from .options import GROUP, Option, option_name, raw_value
from .options import add_options as _add_options

if TYPE_CHECKING:
    from ..alerts import AlertSettings
    from ..core.ingest import Limits
    from ..core.source import SourceOptions
    from ..core.waiting import TestTiming

__all__ = ["OPTIONS", "Settings", "add_options", "enabled", "resolve"]


OPTIONS: Final = (
    Option("sources", "livecluster_sources", "source specs, comma-separated", flag=None),
    Option(
        "timeout",
        "livecluster_timeout",
        "default eventually() timeout in seconds",
        "float",
        30.0,
        "--live-timeout",
        "SECONDS",
    ),
    Option(
        "window",
        "livecluster_window",
        "default consistently() window in seconds",
        "float",
        5.0,
        "--live-window",
        "SECONDS",
    ),
    Option(
        "tick",
        "livecluster_tick",
        "seconds between re-checks when the state does not change",
        "float",
        1.0,
        "--live-tick",
        "SECONDS",
    ),
    Option(
        "settle",
        "livecluster_settle_timeout",
        "how long start-up may spend attaching sources and reading their backlog",
        "float",
        30.0,
        "--live-settle",
        "SECONDS",
    ),
    Option(
        "settle_quiet",
        "livecluster_settle_quiet",
        "a source that cannot tell where its backlog ends has read it after this long "
        "without a line",
        "float",
        0.3,
    ),
    Option(
        "report",
        "livecluster_report",
        "write the run report as JSON to PATH",
        "string",
        None,
        "--live-report",
        "PATH",
    ),
    Option(
        "html",
        "livecluster_html",
        "write the run report as one self-contained HTML page to PATH",
        "string",
        None,
        "--live-html",
        "PATH",
    ),
    Option(
        "record",
        "livecluster_record",
        "write every line the run read to PATH (a recording)",
        "string",
        None,
        "--live-record",
        "PATH",
    ),
    Option("counters", "livecluster_counters", "counter patterns, one per line", "linelist", ()),
    Option("ttl", "livecluster_ttl", "TTL lines: PATTERN = SECONDS", "linelist", ()),
    Option(
        "http_headers",
        "livecluster_http_headers",
        "headers for /logs requests, one per line: Name: value (env:VAR reads a variable)",
        "linelist",
        (),
    ),
    Option("http_ca", "livecluster_http_ca", "CA bundle to verify https /logs endpoints"),
    Option(
        "http_read_timeout",
        "livecluster_http_read_timeout",
        "seconds without a byte before a /logs stream is reopened",
        "float",
        30.0,
    ),
    Option(
        "max_line_bytes",
        "livecluster_max_line_bytes",
        "longer lines are rejected",
        "int",
        1024 * 1024,
    ),
    Option("max_depth", "livecluster_max_depth", "deeper lines are rejected", "int", 64),
    Option("journal_size", "livecluster_journal_size", "lines kept in the journal", "int", 10_000),
    Option(
        "journal_bytes",
        "livecluster_journal_bytes",
        "bytes of lines kept in the journal at most",
        "int",
        64 * 1024 * 1024,
    ),
    Option("name", "livecluster_name", "the cluster's name, in reports and alerts", "string", ""),
    Option(
        "alerts",
        "livecluster_alerts",
        "send alerts to TARGET: alertmanager+http://HOST:PORT, webhook+https://URL, "
        "KIND+env:VARIABLE (repeatable; ini: one per line)",
        "linelist",
        (),
        "--live-alert",
        "TARGET",
        "append",
    ),
    Option(
        "alert_after",
        "livecluster_alert_after",
        "a test fires its alert after failing this many runs (or watch rounds) in a row",
        "int",
        1,
        "--live-alert-after",
        "N",
    ),
    Option(
        "alert_severity",
        "livecluster_alert_severity",
        "the severity label of alerts; a test's marker livecluster(severity=...) overrides it",
        "string",
        "warning",
    ),
    Option(
        "alert_silent_after",
        "livecluster_alert_silent_after",
        "a source that sends no line for this many seconds fires an alert (default: off)",
        "float",
        None,
    ),
    Option(
        "alert_ledger",
        "livecluster_alert_ledger",
        "where alert state is kept between runs (default: pytest's cache directory)",
        "string",
        None,
        "--live-alert-ledger",
        "PATH",
    ),
    Option(
        "alert_headers",
        "livecluster_alert_headers",
        "headers for alert requests, one per line: Name: value (env:VAR reads a variable)",
        "linelist",
        (),
    ),
    Option(
        "alert_timeout",
        "livecluster_alert_timeout",
        "seconds one target's delivery may take, retries included",
        "float",
        10.0,
    ),
    Option(
        "alert_expiry",
        "livecluster_alert_expiry",
        "Alertmanager ends a firing alert no run has refreshed for this many seconds "
        "(default: 24 h; in watch mode 4 rounds, at least 5 min)",
        "float",
        None,
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    group.addoption(
        "--live-cluster",
        dest="livecluster_sources",
        nargs="?",
        const="",
        default=None,
        metavar="SPEC,...",
        help="run live tests against these sources (without a value: the ini key "
        "livecluster_sources): docker:label=K=V, http://HOST:PORT/logs, file:PATH, sim",
    )
    _add_options(parser, OPTIONS)
    group.addoption(
        "--live-watch",
        dest="livecluster_watch",
        default=None,
        metavar="SECONDS",
        help="watch mode: keep following the cluster and re-run the live tests every SECONDS "
        "until Ctrl-C",
    )
    group.addoption(
        "--live-watch-rounds",
        dest="livecluster_watch_rounds",
        default=None,
        metavar="N",
        help="watch mode: stop after N rounds",
    )


@dataclass(frozen=True)
class Settings:
    """Everything the plugin needs, validated."""

    enabled: bool
    specs: tuple[str, ...]
    timing: TestTiming
    settle: float
    settle_quiet: float
    report: str | None
    record: str | None
    html: str | None
    counters: tuple[str, ...]
    ttl: Mapping[str, float]
    limits: Limits
    journal_size: int
    journal_bytes: int
    source_options: SourceOptions
    name: str
    alerting: AlertSettings | None = None
    watch: float | None = None
    watch_rounds: int | None = None

    def timing_for(self, marker_kwargs: Mapping[str, Any]) -> TestTiming:
        """The test's timing after its ``livecluster`` marker."""
        unknown = sorted(set(marker_kwargs) - {"timeout", "window", "tick", "severity"})
        if unknown:
            raise ConfigError(
                f"livecluster marker: unknown argument(s) {', '.join(unknown)}; "
                "valid: timeout, window, tick, severity"
            )
        values = {
            k: positive_seconds(f"livecluster marker {k}", v)
            for k, v in marker_kwargs.items()
            if k != "severity"
        }
        if "severity" in marker_kwargs:
            _severity("livecluster marker severity", marker_kwargs["severity"])
        return replace(self.timing, **values)


def _severity(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or not value.strip().isprintable():
        raise ConfigError(f"{name} must be a word such as critical, warning or info, got {value!r}")
    return value.strip()


def enabled(config: pytest.Config) -> bool:
    """Whether the run follows a cluster (``--live-cluster``); checks the flags that need it.

    Cheap on purpose: a run without ``--live-cluster`` reads no other setting.
    """
    on = config.getoption("livecluster_sources") is not None
    watching = config.getoption("livecluster_watch") is not None
    if watching and not on:
        raise ConfigError("--live-watch needs --live-cluster: watch mode re-runs the live tests")
    if config.getoption("livecluster_watch_rounds") is not None and not watching:
        raise ConfigError("--live-watch-rounds needs --live-watch=SECONDS")
    return on


def resolve(config: pytest.Config) -> Settings:
    """Read every setting (CLI over ini over default) and validate it."""
    from ..core.ingest import Limits
    from ..core.paths import parse_pattern
    from ..core.source import SourceOptions
    from ..core.waiting import TestTiming
    from ..sources.registry import split_specs

    raw = {opt.dest: raw_value(config, opt) for opt in OPTIONS}
    on = enabled(config)
    flag = config.getoption("livecluster_sources")
    text = flag if flag else (raw["sources"] or "")
    specs = tuple(split_specs(text))
    if on and not specs:
        raise ConfigError(
            "--live-cluster needs sources: give them as --live-cluster=SPEC[,SPEC...] or in "
            "the ini key livecluster_sources (kinds: docker:label=KEY=VALUE, "
            "http://HOST:PORT/logs, file:PATH, sim)"
        )
    counters = tuple(str(line).strip() for line in raw["counters"] if str(line).strip())
    for pattern in counters:
        parse_pattern(pattern)
    ttl = _ttl_lines(raw["ttl"])

    def positive(dest: str) -> float:
        return positive_seconds(_name(dest), raw[dest])

    return Settings(
        enabled=on,
        specs=specs,
        timing=TestTiming(positive("timeout"), positive("window"), positive("tick")),
        settle=positive("settle"),
        settle_quiet=positive("settle_quiet"),
        report=_output_path(_name("report"), raw["report"]) if on else raw["report"] or None,
        record=_record_path(raw["record"], specs) if on else raw["record"] or None,
        html=_html_path(raw["html"], raw["report"], raw["record"], specs)
        if on
        else raw["html"] or None,
        counters=counters,
        ttl=ttl,
        limits=Limits(
            _max_line_bytes(raw["max_line_bytes"]),
            positive_int(_name("max_depth"), raw["max_depth"]),
        ),
        journal_size=positive_int(_name("journal_size"), raw["journal_size"]),
        journal_bytes=positive_int(
            _name("journal_bytes"), raw["journal_bytes"], maximum=MAX_LINE_BYTES * 16
        ),
        source_options=SourceOptions(
            http_headers=_header_lines(raw["http_headers"]),
            http_ca=raw["http_ca"] or None,
            http_read_timeout=positive("http_read_timeout"),
            max_line_bytes=_max_line_bytes(raw["max_line_bytes"]),
        ),
        name=str(raw["name"] or ""),
        alerting=_alerting(config, raw) if on else None,
        watch=_optional_seconds("--live-watch", config.getoption("livecluster_watch")),
        watch_rounds=_optional_int(
            "--live-watch-rounds", config.getoption("livecluster_watch_rounds")
        ),
    )


#: The longest line ``livecluster_max_line_bytes`` may allow: 1 GiB.
MAX_LINE_BYTES: Final = 1 << 30


def _max_line_bytes(value: Any) -> int:
    return positive_int(_name("max_line_bytes"), value, maximum=MAX_LINE_BYTES)


def _optional_seconds(name: str, value: Any) -> float | None:
    return None if value in (None, "") else positive_seconds(name, value)


def _optional_int(name: str, value: Any) -> int | None:
    return None if value in (None, "") else positive_int(name, value)


def _alerting(config: pytest.Config, raw: Mapping[str, Any]) -> AlertSettings | None:
    texts = [str(t).strip() for t in raw["alerts"] if str(t).strip()]
    if not texts:
        return None
    from ..alerts import AlertSettings, parse_target  # alerting imports httpx: only when on

    headers = _header_lines(raw["alert_headers"], "livecluster_alert_headers")
    targets = tuple(parse_target(text, headers) for text in texts)
    ledger = raw["alert_ledger"]
    if ledger:
        path: Path | None = Path(ledger)
        _output_path(_name("alert_ledger"), ledger)
    elif getattr(config, "cache", None) is not None:
        path = config.cache.mkdir("livecluster") / "alerts.json"
    else:
        path = None
    expiry = _optional_seconds(_name("alert_expiry"), raw["alert_expiry"])
    watch = _optional_seconds("--live-watch", config.getoption("livecluster_watch"))
    if expiry is None:
        expiry = max(4 * watch, 300.0) if watch else 24 * 3600.0
    return AlertSettings(
        targets=targets,
        fire_after=positive_int(_name("alert_after"), raw["alert_after"]),
        severity=_severity(_name("alert_severity"), raw["alert_severity"]),
        silent_after=_optional_seconds(_name("alert_silent_after"), raw["alert_silent_after"]),
        ledger=path,
        budget=positive_seconds(_name("alert_timeout"), raw["alert_timeout"]),
        expiry=expiry,
    )


def _output_path(name: str, value: Any) -> str | None:
    """A path the user chose for a file the run writes, checked now (one rule: ``_files``)."""
    if not value:
        return None
    from .._files import check_writable

    check_writable(str(value), name)
    return str(value)


def _html_path(value: Any, report: Any, record: Any, specs: tuple[str, ...]) -> str | None:
    """``--live-html``: writable, and none of the run's other files or its recordings."""
    html = _output_path(_name("html"), value)
    if html is None:
        return None
    from .._files import same_file

    others = [(_name("report"), report), (_name("record"), record)]
    others += [(f"the replayed recording {spec.strip()!r}", _replayed(spec)) for spec in specs]
    for what, other in others:
        if other and other != "-" and same_file(str(other), html):
            raise ConfigError(
                f"{_name('html')}: {html!r} is also {what}: writing the page there would "
                "overwrite it; write the page to another path"
            )
    return html


def _record_path(value: Any, specs: tuple[str, ...]) -> str | None:
    """``--live-record``: writable, and not a recording this run replays (it would be wiped)."""
    from .._files import same_file

    record = _output_path(_name("record"), value)
    if record is None:
        return None
    for spec in specs:
        replayed = _replayed(spec)
        if replayed and replayed != "-" and same_file(replayed, record):
            raise ConfigError(
                f"{_name('record')}: {record!r} is the recording this run replays "
                f"({spec.strip()!r}): recording onto it would wipe it; record to another path"
            )
    return record


def _replayed(spec: str) -> str:
    """The path a ``file:`` source spec replays ("" for other kinds)."""
    spec = spec.strip()
    return spec.removeprefix("file:") if spec.startswith("file:") else ""


def _name(dest: str) -> str:
    return option_name(OPTIONS, dest)


def _ttl_lines(lines: Any) -> dict[str, float]:
    rules = [ttl_rule("livecluster_ttl", str(line).strip()) for line in lines if str(line).strip()]
    return dict(rules)


def _header_lines(lines: Any, key: str = "livecluster_http_headers") -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        text = str(line).strip()
        if not text:
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            # Never echo the value: it may be a secret.
            raise ConfigError(
                f"{key}: expected 'Name: value' or 'Name: env:VAR', "
                f"got a line starting {text[:12]!r}"
            )
        headers[name.strip()] = value.strip()
    return headers
