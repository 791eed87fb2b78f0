"""Settings: each command-line flag paired with an ini key, resolved in one place.

Precedence, everywhere: a test's ``livecluster`` marker, then the command
line, then the ini file, then the default. Every bad value raises
:class:`~pytest_livecluster.exceptions.ConfigError` naming the value and what
would be valid; the plugin turns it into ``pytest.UsageError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pytest

from ..alerts import AlertSettings, parse_target
from ..core.ingest import Limits
from ..core.paths import parse_pattern
from ..exceptions import ConfigError
from ..methodology.views import Methodology
from ..sources import SourceOptions, split_specs

__all__ = ["OPTIONS", "Option", "Settings", "TestTiming", "add_options", "resolve"]


@dataclass(frozen=True)
class Option:
    """One setting: its flag (if any), its ini key, its type and its default."""

    dest: str
    ini: str
    help: str
    kind: str = "string"  # string, float, int, linelist
    default: Any = None
    flag: str | None = None
    metavar: str | None = None
    action: str = "store"


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
    Option("name", "livecluster_name", "the cluster's name, in reports and alerts", "string", ""),
    Option(
        "roles",
        "livecluster_roles",
        "host roles, one per line: ROLE = PATTERN[, PATTERN...] (fnmatch globs)",
        "linelist",
        (),
    ),
    Option(
        "keys",
        "livecluster_keys",
        "the methodology's key names, one per line: NAME = KEY (e.g. hello_value = Hello World)",
        "linelist",
        (),
    ),
    Option(
        "orchestrator_url",
        "livecluster_orchestrator_url",
        "the orchestrator's control API, for the orchestrator fixture (the sim provides its own)",
    ),
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
    Option(
        "stale_after",
        "livecluster_stale_after",
        "the report names intents older than this many seconds that are not receiving",
        "float",
        60.0,
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("livecluster", "live tests against a running cluster")
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
    for opt in OPTIONS:
        kind = "string" if opt.kind in ("float", "int") else opt.kind
        default = opt.default if opt.kind != "linelist" else []
        parser.addini(opt.ini, opt.help, type=kind, default=default)  # type: ignore[arg-type]
        if opt.flag:
            group.addoption(
                opt.flag,
                dest=f"livecluster_{opt.dest}",
                action=opt.action,
                default=None,
                metavar=opt.metavar,
                help=f"{opt.help} (ini: {opt.ini})",
            )
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
class TestTiming:
    """The waiting defaults of one test (a marker may change them)."""

    timeout: float
    window: float
    tick: float


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
    counters: tuple[str, ...]
    ttl: Mapping[str, float]
    limits: Limits
    journal_size: int
    source_options: SourceOptions
    name: str
    methodology: Methodology
    stale_after: float
    orchestrator_url: str | None
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
            k: _positive(f"livecluster marker {k}", v)
            for k, v in marker_kwargs.items()
            if k != "severity"
        }
        if "severity" in marker_kwargs:
            _severity("livecluster marker severity", marker_kwargs["severity"])
        return replace(self.timing, **values)


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return number


def _severity(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or not value.strip().isprintable():
        raise ConfigError(f"{name} must be a word such as critical, warning or info, got {value!r}")
    return value.strip()


def _int(name: str, value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return number


def resolve(config: pytest.Config) -> Settings:
    """Read every setting (CLI over ini over default) and validate it."""
    raw = {opt.dest: _raw(config, opt) for opt in OPTIONS}
    flag = config.getoption("livecluster_sources")
    enabled = flag is not None
    text = flag if flag else (raw["sources"] or "")
    specs = tuple(split_specs(text))
    if enabled and not specs:
        raise ConfigError(
            "--live-cluster needs sources: give them as --live-cluster=SPEC[,SPEC...] or in "
            "the ini key livecluster_sources (kinds: docker:label=KEY=VALUE, "
            "http://HOST:PORT/logs, file:PATH, sim)"
        )
    watching = config.getoption("livecluster_watch") is not None
    if watching and not enabled:
        raise ConfigError("--live-watch needs --live-cluster: watch mode re-runs the live tests")
    if config.getoption("livecluster_watch_rounds") is not None and not watching:
        raise ConfigError("--live-watch-rounds needs --live-watch=SECONDS")
    counters = tuple(str(line).strip() for line in raw["counters"] if str(line).strip())
    for pattern in counters:
        parse_pattern(pattern)
    ttl = _ttl_lines(raw["ttl"])

    def positive(dest: str) -> float:
        return _positive(_name(dest), raw[dest])

    return Settings(
        enabled=enabled,
        specs=specs,
        timing=TestTiming(positive("timeout"), positive("window"), positive("tick")),
        settle=positive("settle"),
        settle_quiet=positive("settle_quiet"),
        report=raw["report"] or None,
        record=raw["record"] or None,
        counters=counters,
        ttl=ttl,
        limits=Limits(
            _int(_name("max_line_bytes"), raw["max_line_bytes"]),
            _int(_name("max_depth"), raw["max_depth"]),
        ),
        journal_size=_int(_name("journal_size"), raw["journal_size"]),
        source_options=SourceOptions(
            http_headers=_header_lines(raw["http_headers"]),
            http_ca=raw["http_ca"] or None,
            http_read_timeout=positive("http_read_timeout"),
            max_line_bytes=_int(_name("max_line_bytes"), raw["max_line_bytes"]),
        ),
        name=str(raw["name"] or ""),
        methodology=_methodology(raw["roles"], raw["keys"]),
        stale_after=positive("stale_after"),
        orchestrator_url=raw["orchestrator_url"] or None,
        alerting=_alerting(config, raw) if enabled else None,
        watch=_optional_positive("--live-watch", config.getoption("livecluster_watch")),
        watch_rounds=_optional_int(
            "--live-watch-rounds", config.getoption("livecluster_watch_rounds")
        ),
    )


def _optional_positive(name: str, value: Any) -> float | None:
    return None if value in (None, "") else _positive(name, value)


def _optional_int(name: str, value: Any) -> int | None:
    return None if value in (None, "") else _int(name, value)


def _alerting(config: pytest.Config, raw: Mapping[str, Any]) -> AlertSettings | None:
    texts = [str(t).strip() for t in raw["alerts"] if str(t).strip()]
    if not texts:
        return None
    headers = _header_lines(raw["alert_headers"], "livecluster_alert_headers")
    targets = tuple(parse_target(text, headers) for text in texts)
    ledger = raw["alert_ledger"]
    if ledger:
        path: Path | None = Path(ledger)
    elif getattr(config, "cache", None) is not None:
        path = config.cache.mkdir("livecluster") / "alerts.json"
    else:
        path = None
    expiry = _optional_positive(_name("alert_expiry"), raw["alert_expiry"])
    watch = _optional_positive("--live-watch", config.getoption("livecluster_watch"))
    if expiry is None:
        expiry = max(4 * watch, 300.0) if watch else 24 * 3600.0
    return AlertSettings(
        targets=targets,
        fire_after=_int(_name("alert_after"), raw["alert_after"]),
        severity=_severity(_name("alert_severity"), raw["alert_severity"]),
        silent_after=_optional_positive(_name("alert_silent_after"), raw["alert_silent_after"]),
        ledger=path,
        budget=_positive(_name("alert_timeout"), raw["alert_timeout"]),
        expiry=expiry,
    )


def _name(dest: str) -> str:
    opt = next(o for o in OPTIONS if o.dest == dest)
    return opt.flag or opt.ini


def _raw(config: pytest.Config, opt: Option) -> Any:
    if opt.flag:
        value = config.getoption(f"livecluster_{opt.dest}")
        if value is not None:
            return value
    value = config.getini(opt.ini)
    if value in ("", None, []) and opt.kind != "linelist":
        return opt.default
    return value


def _ttl_lines(lines: Any) -> dict[str, float]:
    ttl: dict[str, float] = {}
    for line in lines:
        text = str(line).strip()
        if not text:
            continue
        pattern, sep, seconds = text.rpartition("=")
        if not sep or not pattern.strip():
            raise ConfigError(f"livecluster_ttl: expected 'PATTERN = SECONDS', got {text!r}")
        parse_pattern(pattern.strip())
        ttl[pattern.strip()] = _positive(
            f"livecluster_ttl for {pattern.strip()!r}", seconds.strip()
        )
    return ttl


KEY_NAMES: Final = (
    "hello_key",
    "hello_value",
    "intents_key",
    "resolution_key",
    "scraped_key",
    "received_key",
    "errors_key",
    "module_key",
)


def _methodology(lines: Any, key_lines: Any = ()) -> Methodology:
    keys: dict[str, str] = {}
    for line in key_lines:
        text = str(line).strip()
        if not text:
            continue
        name, sep, value = text.partition("=")
        if not sep or name.strip() not in KEY_NAMES or not value.strip():
            raise ConfigError(
                f"livecluster_keys: expected 'NAME = KEY' with NAME one of "
                f"{', '.join(KEY_NAMES)}, got {text!r}"
            )
        keys[name.strip()] = value.strip()
    roles: dict[str, tuple[str, ...]] = {}
    for line in lines:
        text = str(line).strip()
        if not text:
            continue
        role, sep, patterns = text.partition("=")
        globs = tuple(p.strip() for p in patterns.split(",") if p.strip())
        if not sep or not role.strip() or not globs:
            raise ConfigError(
                f"livecluster_roles: expected 'ROLE = PATTERN[, PATTERN...]', got {text!r}"
            )
        roles[role.strip()] = globs
    methodology = Methodology(roles=roles) if roles else Methodology()
    return replace(methodology, **keys)  # type: ignore[arg-type]


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
