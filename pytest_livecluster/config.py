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
from typing import Any, Final

import pytest

from .exceptions import ConfigError
from .ingest import Limits
from .paths import parse_pattern
from .sources import SourceOptions, split_specs
from .views import Methodology

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
        "the backlog counts as read once no line arrived for this long",
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
                default=None,
                metavar=opt.metavar,
                help=f"{opt.help} (ini: {opt.ini})",
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

    def timing_for(self, marker_kwargs: Mapping[str, Any]) -> TestTiming:
        """The test's timing after its ``livecluster`` marker."""
        unknown = sorted(set(marker_kwargs) - {"timeout", "window", "tick"})
        if unknown:
            raise ConfigError(
                f"livecluster marker: unknown argument(s) {', '.join(unknown)}; "
                "valid: timeout, window, tick"
            )
        values = {k: _positive(f"livecluster marker {k}", v) for k, v in marker_kwargs.items()}
        return replace(self.timing, **values)


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return number


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


def _header_lines(lines: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        text = str(line).strip()
        if not text:
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            # Never echo the value: it may be a secret.
            raise ConfigError(
                f"livecluster_http_headers: expected 'Name: value' or 'Name: env:VAR', "
                f"got a line starting {text[:12]!r}"
            )
        headers[name.strip()] = value.strip()
    return headers
