"""The Docker source's errors, and the one place where docker-py, requests and urllib3
errors become ours.

A user never sees a bare docker-py or urllib3 traceback, and the source's threads must
tell an error worth retrying from one that ends a follower; both needs are met by
translating each dependency error once, at the boundary, with the tables below.
Every request the source makes goes through :func:`translate`; a response body that
stops mid-read goes through :func:`broken`. The classes, under the package's own
hierarchy (``pytest_livecluster.exceptions``)::

    SourceError
    ├── Transient            the engine did not answer or a connection broke: retry after a backoff
    ├── Gone                 the container no longer exists: its follower ends
    ├── Closed               the source was closed while a request was being made
    └── SourceUnavailable
        └── Unreadable       the engine refuses a container's (or service's) logs for good

``Transient``, ``Gone`` and ``Closed`` stay inside the source, which acts on them;
``Unreadable`` becomes one of :attr:`DockerSource.failures`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import docker
import requests
import urllib3.exceptions

from ..._retry import retryable_status
from ...exceptions import SourceError, SourceUnavailable
from .frames import DockerFramingError

__all__ = [
    "BODY_ERRORS",
    "DEAD_OR_REMOVED",
    "Closed",
    "Gone",
    "Transient",
    "Unreadable",
    "api_error",
    "broken",
    "translate",
]

# What the engine says, in a 500, of a container whose logs it cannot serve.
_DRIVER_UNREADABLE: Final = "does not support reading"
DEAD_OR_REMOVED: Final = "dead or marked for removal"


class Transient(SourceError):
    """The engine did not answer or a connection broke: try again after a backoff."""


class Gone(SourceError):
    """The container (or service) no longer exists."""


class Unreadable(SourceUnavailable):
    """The engine refuses to serve this container's logs, and will keep refusing."""


class Closed(SourceError):
    """The source was closed while a request was being made."""


_NETWORK_ERRORS: Final = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)

#: What can end the reading of a response body that began well.
BODY_ERRORS: Final = (DockerFramingError, *_NETWORK_ERRORS)

_Translation = Callable[[Any, str], SourceError]

# A request that failed, by the type of what it raised: the first row that matches.
_REQUEST_ERRORS: Final[tuple[tuple[tuple[type[BaseException], ...], _Translation], ...]] = (
    ((SourceError,), lambda exc, what: exc),
    ((docker.errors.NotFound,), lambda exc, what: Gone(f"{what}: not found")),
    (
        (docker.errors.APIError,),
        lambda exc, what: api_error(exc.status_code or 0, str(exc.explanation or exc), what),
    ),
    (
        (*_NETWORK_ERRORS, docker.errors.DockerException),
        lambda exc, what: Transient(f"{what}: {_reason(exc)}"),
    ),
)


def translate(exc: Exception, what: str) -> SourceError:
    """A docker-py, requests or urllib3 error as one of ours, naming what was being done."""
    for types, translation in _REQUEST_ERRORS:
        if isinstance(exc, types):
            return translation(exc, what)
    return SourceError(f"{what}: {type(exc).__name__}: {exc}")


def api_error(status: int, message: str, what: str) -> SourceError:
    """The engine's answer ``status`` with its ``message``, to the request ``what``."""
    text = f"{what}: the engine answered {status} {message!r}"
    if status == 404:
        return Gone(text)
    if status == 501 or _DRIVER_UNREADABLE in message or DEAD_OR_REMOVED in message:
        return Unreadable(text)
    if retryable_status(status):
        return Transient(text)
    return SourceError(text)


def broken(exc: BaseException, what: str) -> Transient:
    """One of :data:`BODY_ERRORS`, raised while reading the body of ``what``."""
    if isinstance(exc, DockerFramingError):
        return Transient(f"{what}: {exc}")
    return Transient(f"{what}: the connection broke ({_reason(exc)})")


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 error chain."""
    for _ in range(8):
        inner = exc.args[-1] if exc.args and isinstance(exc.args[-1], BaseException) else None
        inner = inner or exc.__cause__ or getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    return f"{type(exc).__name__}: {exc}"
