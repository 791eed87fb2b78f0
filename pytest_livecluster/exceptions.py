"""Every exception pytest-livecluster raises.

Errors from the libraries underneath (orjson, httpx, docker, tenacity) are
translated into these at the boundary, so a user sees one hierarchy::

    LiveClusterError             base of everything below
    ├── ConfigError              a setting, pattern or source spec is wrong
    │   ├── PatternError         a path pattern cannot be parsed
    │   └── SpecError            a source spec names no known kind of source
    ├── RecordingError           a recording file cannot be read
    ├── SimError                 the simulated cluster failed, or refused a request
    ├── SourceError              a source failed while following the cluster
    │   └── SourceUnavailable    a source cannot be reached or read at all
    └── WaitFailed               a waiting helper's check did not behave (also an AssertionError)
        ├── EventuallyFailed     ``eventually`` ran out of time
        └── ConsistentlyFailed   a check that had to hold for a window stopped holding

Each message names the bad value and, where there is a fixed set, the valid
ones. The pytest plugin turns a ``ConfigError`` into ``pytest.UsageError``.
The waiting errors are assertion errors, so pytest shows them as a test's
failure; their fields (checks, first and last failure) are what the alerts and
the report read, never their text.

This module is an owner: every layer imports it, it imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LiveClusterError(Exception):
    """Base class of every pytest-livecluster error."""


class ConfigError(LiveClusterError):
    """A setting, a pattern or a source spec is wrong."""


class PatternError(ConfigError):
    """A path pattern cannot be parsed."""


class SpecError(ConfigError):
    """A source spec names no known kind of source, or is malformed."""


class RecordingError(LiveClusterError):
    """A recording file cannot be read."""


class SimError(LiveClusterError):
    """The simulated cluster failed to start, or its control API refused a request."""


class SourceError(LiveClusterError):
    """A source failed while following the cluster."""


class SourceUnavailable(SourceError):
    """A source cannot be reached or read at all."""


@dataclass(frozen=True)
class Failure:
    """One check that did not pass: when (seconds after the wait began) and why."""

    at: float
    message: str


class WaitFailed(LiveClusterError, AssertionError):
    """A waiting helper's check did not behave as required.

    :attr:`reason` is the failure in one line, without the helper's own words.
    """

    @property
    def reason(self) -> str:
        return str(self).splitlines()[0] if str(self) else type(self).__name__


class EventuallyFailed(WaitFailed):
    """``eventually`` ran out of time: ``checks`` ran, ``first`` and ``last`` failed."""

    def __init__(
        self, message: str, *, checks: int, first: Failure | None, last: Failure | None
    ) -> None:
        super().__init__(message)
        self.checks = checks
        self.first = first
        self.last = last

    @property
    def reason(self) -> str:
        """The last failure (what was still wrong at the end), else the first."""
        failure = self.last or self.first
        if failure is None:
            return super().reason
        return failure.message.splitlines()[0] if failure.message else super().reason


class ConsistentlyFailed(WaitFailed):
    """A check that had to hold for a window stopped holding ``at`` seconds in.

    ``version`` is the state's version the check failed on; ``cause`` the
    check's own failure (an assertion's message, or what it returned).
    """

    def __init__(
        self, message: str, *, at: float, version: int, cause: str = "", shard: Any = None
    ) -> None:
        super().__init__(message)
        self.at = at
        self.version = version
        self.cause = cause
        #: The journal entry of the shard that broke it (``None``: at the start or a tick).
        self.shard = shard

    @property
    def reason(self) -> str:
        return self.cause.splitlines()[0] if self.cause else super().reason
