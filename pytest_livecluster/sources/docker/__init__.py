"""``docker:label=KEY=VALUE``: follow every container with that label on one Docker engine.

The engine is the one ``;host=`` names, else ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``
and ``DOCKER_CERT_PATH``), else the local socket. Only read-only endpoints are called:
``/version``, ``/events``, ``/containers/json``, ``/containers/{id}/json`` and
``/containers/{id}/logs``.

Discovery, in this order, so that no container is missed and none is followed twice:

1. Subscribe to ``GET /events`` (type=container, label=KEY=VALUE, ``since=T0``) *before*
   listing: a container started while the list is in flight still arrives as an event.
2. List ``GET /containers/json?all=1`` with the same label and reconcile by container id:
   each container gets one record (name, deduplicator, the last run read to its end) and
   at most one follower thread. Exited containers are read once, with ``follow=0``.
3. Read the events: ``start`` gives the container a follower, or tells the busy one to
   look again; ``create`` does not, since a follow opened before the start ends at once;
   ``destroy`` retires the record.
4. A follower inspects before every request. Running: ``follow=1``. Stopped: one
   ``follow=0`` read, unless that run was already read to its end. Never started: nothing.
   Once each stream has had a line, a request resumes with ``since=`` the deduplicator's
   lowest mark less a small margin, in nine-digit nanoseconds (before that it reads from
   the start); the deduplicator drops whatever comes again.
5. When a follow ends, the follower discards any partial line (a resume sends all its
   pieces again) and inspects. The same run still going: the connection broke, so it
   reconnects after a backoff. The run is over (stopped, waiting for its restart policy,
   or running again): the end of the run is read with ``follow=0``, because the engine
   can end a follow before the run's last output; a last line left without a newline is
   delivered from that read, flagged unterminated. A follow still open a few seconds
   after its container died is taken as stalled (rotation) and cut.
6. Any end of the events stream is an error: reconnect with ``since=<last timeNano>``
   after a backoff, then list and reconcile again, which finds whatever the missed
   events were about.
7. Start-up asks :meth:`DockerSource.caught_up` whether the backlog found at attach is
   read. A container's is once a line stamped at or after its first logs request has
   been delivered (the engine sends a log in order, so everything before it was backlog),
   once nothing came for ``quiet`` seconds, or once its follower has ended.

Log and event bodies are read from the raw HTTP response rather than through
docker-py's helpers, which drop the stdout/stderr distinction, turn a broken connection
into a normal end of iteration and cannot be given a nanosecond ``since``.
:meth:`DockerSource.close` shuts the sockets of open responses down from the closing
thread, which wakes every blocked read at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import docker
import orjson
import requests
import urllib3.exceptions
from docker.transport.unixconn import (
    UnixHTTPAdapter,
    UnixHTTPConnection,
    UnixHTTPConnectionPool,
)
from tenacity import RetryCallState, Retrying, wait_exponential, wait_random

from ...core.ingest import Envelope
from ...core.source import Emit, Source, SourceOptions, SourceState
from ...exceptions import SourceError, SourceUnavailable, SpecError
from .frames import (
    Deduplicator,
    DockerFramingError,
    LogMessage,
    LogStreamDecoder,
    format_since,
)

__all__ = ["DockerSource", "DockerSpec", "parse_spec"]

SPEC_FORM: Final = "docker:label=KEY=VALUE (optionally ;host=tcp://HOST:PORT or ;host=unix:///PATH)"
_HOST_SCHEMES: Final = ("tcp://", "unix://")
_NS: Final = 1_000_000_000
# How far back a resume starts before the mark: a cheap guard against an engine or
# driver that rounds timestamps; the deduplicator drops what the margin sends again.
RESUME_MARGIN_NS: Final = 1_000_000
# Replay buffered events from a little before the start, so none falls between the
# subscription and the list. Live events are delivered whatever ``since`` says.
EVENTS_LOOKBACK_NS: Final = 2 * _NS
# A connection that lasted this long proves the engine healthy: the backoff starts over.
HEALTHY_AFTER_S: Final = 2.0
JOIN_TIMEOUT_S: Final = 1.5
# The engine ends a follow right after its container stops; one still open this long
# after the die event has stalled.
DIE_GRACE_S: Final = 5.0
_POOL_SIZE: Final = 256
_CHUNK: Final = 65536
_NEVER_STARTED: Final = "0001-01-01T00:00:00Z"
_DRIVER_UNREADABLE: Final = "does not support reading"
_DEAD_OR_REMOVED: Final = "dead or marked for removal"


# -- the spec ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DockerSpec:
    """A parsed ``docker:`` spec: the label to select by and, optionally, the engine."""

    key: str
    value: str
    host: str | None = None

    @property
    def label(self) -> str:
        return f"{self.key}={self.value}"

    def __str__(self) -> str:
        host = f";host={self.host}" if self.host else ""
        return f"docker:label={self.label}{host}"


def parse_spec(spec: str) -> DockerSpec:
    """``docker:label=KEY=VALUE[;host=URL]`` -> DockerSpec; SpecError naming what is wrong."""
    if not spec.startswith("docker:"):
        raise _bad_spec(spec, "it does not start with docker:")
    first, *options = spec.removeprefix("docker:").split(";")
    name, eq, label = first.partition("=")
    if name != "label" or not eq:
        raise _bad_spec(spec, "it must start with label=")
    key, eq, value = label.partition("=")
    if not key or not eq or not value or any(ch.isspace() for ch in label):
        raise _bad_spec(spec, f"the label {label!r} is not KEY=VALUE")
    host: str | None = None
    for option in options:
        name, eq, url = option.partition("=")
        if name != "host" or not eq:
            raise _bad_spec(spec, f"{option!r} is not an option (host=URL is the only one)")
        if host is not None:
            raise _bad_spec(spec, "host= is given twice")
        if not any(url.startswith(s) and len(url) > len(s) for s in _HOST_SCHEMES):
            raise _bad_spec(spec, f"the host {url!r} is neither tcp://HOST:PORT nor unix:///PATH")
        host = url
    return DockerSpec(key, value, host)


def _bad_spec(spec: str, why: str) -> SpecError:
    return SpecError(f"bad source spec {spec!r}: {why}; write {SPEC_FORM}")


# -- errors inside the source -------------------------------------------------------------


class _Transient(SourceError):
    """The engine did not answer or a connection broke: try again after a backoff."""


class _Gone(SourceError):
    """The container no longer exists."""


class _Unreadable(SourceUnavailable):
    """The engine refuses to serve this container's logs, and will keep refusing."""


class _Closed(SourceError):
    """The source was closed while a request was being made."""


_NETWORK_ERRORS: Final = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)


def _translate(exc: Exception, what: str) -> SourceError:
    """A docker-py, requests or urllib3 error as one of ours, naming what was being done."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, docker.errors.NotFound):
        return _Gone(f"{what}: no such container")
    if isinstance(exc, docker.errors.APIError):
        return _api_error(exc.status_code or 0, str(exc.explanation or exc), what)
    if isinstance(exc, (*_NETWORK_ERRORS, docker.errors.DockerException)):
        return _Transient(f"{what}: {_reason(exc)}")
    return SourceError(f"{what}: {type(exc).__name__}: {exc}")


def _api_error(status: int, message: str, what: str) -> SourceError:
    text = f"{what}: the engine answered {status} {message!r}"
    if status == 404:
        return _Gone(text)
    if status == 501 or _DRIVER_UNREADABLE in message or _DEAD_OR_REMOVED in message:
        return _Unreadable(text)
    if status >= 500:
        return _Transient(text)
    return SourceError(text)


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 error chain."""
    for _ in range(8):
        inner = exc.args[-1] if exc.args and isinstance(exc.args[-1], BaseException) else None
        inner = inner or exc.__cause__ or getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    return f"{type(exc).__name__}: {exc}"


# -- backoff -------------------------------------------------------------------------------


class _Backoff:
    """Exponential delays with jitter between reconnects, cut short by close()."""

    def __init__(self, closed: threading.Event, max_wait: float) -> None:
        self._closed = closed
        self._wait = wait_exponential(multiplier=0.1, max=max_wait) + wait_random(0, 0.05)
        self._state = RetryCallState(Retrying(), None, (), {})

    def reset(self) -> None:
        self._state.attempt_number = 1

    def pause(self) -> bool:
        """Wait before the next attempt; False if the source was closed meanwhile."""
        delay = self._wait(self._state)
        self._state.attempt_number += 1
        return not self._closed.wait(delay)


# -- HTTP to the engine --------------------------------------------------------------------


class _UnixConnection(UnixHTTPConnection):  # type: ignore[misc]
    """docker-py's, closing its socket when connecting fails.

    docker-py leaves that socket to the garbage collector, so every reconnect attempt
    while the engine restarts would raise a ResourceWarning.
    """

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_socket)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _UnixPool(UnixHTTPConnectionPool):  # type: ignore[misc]
    def _new_conn(self) -> _UnixConnection:
        return _UnixConnection(self.base_url, self.socket_path, self.timeout)


class _UnixAdapter(UnixHTTPAdapter):  # type: ignore[misc]
    def get_connection(self, url: Any, proxies: Any = None) -> _UnixPool:
        with self.pools.lock:
            pool: _UnixPool | None = self.pools.get(url)
            if pool is None:
                pool = _UnixPool(url, self.socket_path, self.timeout, maxsize=self.max_pool_size)
                self.pools[url] = pool
        return pool


class _Stream:
    """One streaming response (events or logs) that another thread can cut."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.opened = time.monotonic()

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; ends at the engine's end of body, raises if it broke."""
        yield from self._response.raw.stream(_CHUNK, decode_content=False)

    def cut(self) -> None:
        """Wake the thread blocked reading this stream. Safe from any thread."""
        sock = _socket_of(self._response)
        if sock is None:
            return
        # The base method, so that a TLS socket is shut down at the TCP level too;
        # OSError: its reader closed it first.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self._response.close()


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Engine:
    """The engine's read-only endpoints over one docker-py APIClient.

    docker-py provides the connection (unix socket, TCP, TLS from the environment);
    the streaming requests are made here, so that their bodies can be read raw and
    their sockets shut down by :meth:`cut_all`.
    """

    def __init__(self, spec: DockerSpec, timeout: float) -> None:
        self._spec = spec
        self._timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()
        self._streams: set[_Stream] = set()
        self._closing = False
        self.url = spec.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def connect(self) -> None:
        """Build the client and agree on the API version (GET /version)."""
        kwargs = docker.utils.kwargs_from_env()
        if self._spec.host:
            kwargs["base_url"] = self._spec.host
        if not str(kwargs.get("base_url", "unix://")).startswith(("unix://", "tcp://", "http")):
            # An ssh:// stream cannot be shut down from another thread, so close() could hang.
            raise SourceUnavailable(
                f"cannot follow the Docker engine at {self.url}: only unix:// and tcp:// "
                "engines are supported"
            )
        try:
            # A placeholder version, so that no request is made before the unix adapter
            # is replaced; the engine's own version is asked for just below.
            api = docker.APIClient(
                version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                timeout=self._timeout,
                max_pool_size=_POOL_SIZE,
                **kwargs,
            )
        except docker.errors.DockerException as exc:
            raise SourceUnavailable(f"cannot use the Docker engine at {self.url}: {exc}") from exc
        self._api = api
        adapter = api.adapters.get("http+docker://")
        if isinstance(adapter, UnixHTTPAdapter):
            api.mount(
                "http+docker://",
                _UnixAdapter(
                    "http+unix://" + adapter.socket_path,
                    self._timeout,
                    max_pool_size=_POOL_SIZE,
                ),
            )
            adapter.close()
        try:
            version = self._call(api.version, "GET /version", api_version=False)["ApiVersion"]
        except (SourceError, KeyError, TypeError) as exc:
            raise SourceUnavailable(f"cannot reach the Docker engine at {self.url}: {exc}") from exc
        # docker-py keeps the negotiated version here; "auto" would have set it the same way.
        api._version = version

    def _call(self, fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
        if self._closing:
            raise _Closed(what)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, what) from exc

    def list(self, label: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            self._api.containers,
            "GET /containers/json",
            all=True,
            filters={"label": [label]},
        )
        return result

    def inspect(self, cid: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._api.inspect_container, f"GET /containers/{cid[:12]}/json", cid
        )
        return result

    def stream(self, what: str, path: str, arg: str | None, params: Mapping[str, Any]) -> _Stream:
        """Open a streaming GET; it is registered, so that cut_all() can end it."""
        api = self._api
        url = api._url(path, arg) if arg is not None else api._url(path)
        response = self._call(api._get, what, url, params=dict(params), stream=True)
        if response.status_code != 200:
            try:
                message = _error_message(response)
            finally:
                response.close()
            raise _api_error(response.status_code, message, what)
        # The engine answers at once, so the timeout bounded the wait for the headers; the
        # body may be idle for as long as the container is silent: close() ends it instead.
        sock = _socket_of(response)
        if sock is not None:
            sock.settimeout(None)
        stream = _Stream(response)
        with self._lock:
            self._streams.add(stream)
            closing = self._closing
        if closing:
            stream.cut()
        return stream

    def release(self, stream: _Stream) -> None:
        with self._lock:
            self._streams.discard(stream)
        stream.close()

    def cut_all(self) -> None:
        """Shut down every open stream and refuse new requests. Safe from any thread."""
        with self._lock:
            self._closing = True
            streams = list(self._streams)
        for stream in streams:
            stream.cut()

    def close(self) -> None:
        self.cut_all()
        if self._api is not None:
            self._api.close()


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else str(body)[:500]


# -- per-container state ---------------------------------------------------------------------


@dataclass(eq=False)
class _Container:
    """What the source knows about one container, across restarts and reconnects."""

    id: str
    name: str
    dedup: Deduplicator = field(default_factory=Deduplicator)
    tty: bool | None = None  # known from the first inspect
    # The follower thread that owns this container; ``kick``: a start came, look again.
    owner: threading.Thread | None = None
    kick: bool = False
    # (StartedAt, FinishedAt) of the last run read to its end: not to be read again.
    drained: tuple[str, str] | None = None
    gone: bool = False
    unreadable: bool = False
    # The follow being read, and the check that it ends after the container died.
    stream: _Stream | None = None
    stall_check: threading.Timer | None = None
    # For caught_up(): when the first logs request was sent (wall clock, as the engine
    # stamps lines), when a response or line last came (monotonic), and whether a line
    # stamped at or after that request has been delivered.
    asked_ns: int | None = None
    heard: float | None = None
    caught: bool = False

    def answered(self) -> None:
        """A logs request was answered: quiet is counted from now."""
        self.heard = time.monotonic()

    def delivered(self, ts_ns: int) -> None:
        """A line stamped ``ts_ns`` has been emitted."""
        self.heard = time.monotonic()
        if self.asked_ns is not None and ts_ns >= self.asked_ns:
            self.caught = True

    def caught_up(self, now: float, quiet: float) -> bool:
        """Whether the backlog found at the first request is read (see DockerSource)."""
        if self.owner is None or self.caught:
            return True  # no follower (ended, or never started), or past the backlog
        return self.heard is not None and now - self.heard >= quiet


@dataclass(frozen=True, slots=True)
class _Run:
    """What an inspect says about the container's current run."""

    running: bool
    started: str
    finished: str
    tty: bool
    driver: str
    options: tuple[tuple[str, str], ...]
    removing: bool

    @property
    def log_options(self) -> str:
        options = "".join(f", {k}={v}" for k, v in self.options)
        return f"logging driver {self.driver}{options}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.started, self.finished)

    @property
    def never_started(self) -> bool:
        return self.started.startswith(_NEVER_STARTED[:4])


def _run_of(info: Mapping[str, Any]) -> _Run:
    state = info.get("State") or {}
    log_config = (info.get("HostConfig") or {}).get("LogConfig") or {}
    status = state.get("Status", "")
    return _Run(
        # The engine reports Running during a restart policy's delay: that run is over.
        running=bool(state.get("Running")) and not state.get("Restarting"),
        started=str(state.get("StartedAt", _NEVER_STARTED)),
        finished=str(state.get("FinishedAt", "")),
        tty=bool((info.get("Config") or {}).get("Tty")),
        driver=str(log_config.get("Type", "?")),
        options=tuple(
            sorted((str(k), str(v)) for k, v in (log_config.get("Config") or {}).items())
        ),
        # A dead container stays: reading it tells whether its logs are lost.
        removing=status == "removing",
    )


@dataclass
class _Read:
    """How one logs request ended."""

    clean: bool
    lasted: float
    error: str | None = None


# -- the source ------------------------------------------------------------------------------


class DockerSource(Source):
    """Every container with one label on one Docker engine, including later ones.

    ``api_timeout`` bounds the engine's answer to the short requests (version, list,
    inspect) and the wait for a stream's headers; an open stream has no read timeout.
    ``die_grace_s`` is how long a follow may stay open after its container died before
    it is taken as stalled. ``resume_margin_ns`` is how far before the mark a resume
    starts.
    :attr:`failures` lists containers whose logs the engine refuses to serve.
    """

    def __init__(
        self,
        spec: DockerSpec | str,
        options: SourceOptions | None = None,
        *,
        api_timeout: float = 30.0,
        resume_margin_ns: int = RESUME_MARGIN_NS,
        die_grace_s: float = DIE_GRACE_S,
    ) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        super().__init__(str(self.spec))
        self._options = options or SourceOptions()
        self._margin = resume_margin_ns
        self._engine = _Engine(self.spec, api_timeout)
        self._emit: Emit | None = None
        self._lock = threading.Lock()  # containers, threads, health counters
        self._emit_lock = threading.Lock()  # emit and line counts, one line at a time
        self._containers: dict[str, _Container] = {}
        self._threads: set[threading.Thread] = set()
        self._failures: list[str] = []
        self._labels: dict[str, dict[str, str]] = {}
        self._fatal: BaseException | None = None
        self._last_event_ns: int | None = None
        self._die_grace = die_grace_s
        self._timers: set[threading.Timer] = set()
        self._listed = False  # the containers found at attach have their followers

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> DockerSource:
        return cls(parse_spec(spec), options)

    @property
    def failures(self) -> tuple[str, ...]:
        """Why some containers' lines cannot be collected; the collector fails the session."""
        with self._lock:
            return tuple(self._failures)

    def labels(self) -> dict[str, dict[str, str]]:
        """Each followed container's labels, keyed by the source id its lines carry."""
        with self._lock:
            return {origin: dict(labels) for origin, labels in self._labels.items()}

    def caught_up(self, quiet: float) -> bool:
        """Whether every followed container's backlog is read; cheap, from any thread.

        A container's backlog is read once a line stamped at or after the follower's
        first logs request has been delivered, once nothing came for ``quiet`` seconds
        since the request was answered or the last line, or once its follower ended.
        Never before the first list of containers has been reconciled.
        """
        if self.closed or self.health.state is SourceState.FAILED:
            return True
        if not self._listed:
            return False
        now = time.monotonic()
        with self._lock:
            return all(c.caught_up(now, quiet) for c in self._containers.values())

    def close(self) -> None:
        super().close()
        self._engine.cut_all()

    # -- the discovery thread (run) ------------------------------------------------------------

    def run(self, emit: Emit) -> None:
        self._emit = emit
        try:
            if self.closed:
                return
            try:
                self._engine.connect()
            except _Closed:
                return
            self._discover()
            if self._fatal is not None:
                raise SourceError(f"{self.id}: {self._fatal}") from self._fatal
        except BaseException:
            self.health.state = SourceState.FAILED
            raise
        finally:
            self._stop()

    def _discover(self) -> None:
        since = time.time_ns() - EVENTS_LOOKBACK_NS
        backoff = _Backoff(self._closed, self._options.reconnect_max_wait)
        while not self.closed:
            started = time.monotonic()
            try:
                self._follow_events(since)
                error = "the events stream ended"
            except _Closed:
                return
            except SourceError as exc:
                error = str(exc)
            if self.closed:
                return
            self._note(f"{error}; reconnecting")
            self._count_reconnect()
            self.health.state = SourceState.RECONNECTING
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff.reset()
            if not backoff.pause():
                return
            since = self._last_event_ns or since

    def _follow_events(self, since_ns: int) -> None:
        filters = orjson.dumps({"type": ["container"], "label": [self.spec.label]})
        params = {"since": format_since(since_ns), "filters": filters.decode()}
        stream = self._engine.stream("GET /events", "/events", None, params)
        try:
            self._reconcile()
            self.health.state = SourceState.ATTACHED
            for event in _events(stream):
                self._on_event(event)
        except DockerFramingError as exc:
            raise _Transient(f"GET /events: {exc}") from exc
        except _NETWORK_ERRORS as exc:
            raise _Transient(f"GET /events: the connection broke ({_reason(exc)})") from exc
        finally:
            self._engine.release(stream)

    def _reconcile(self) -> None:
        """List the labelled containers and make sure each has the follower it needs."""
        listed = self._engine.list(self.spec.label)
        seen: set[str] = set()
        for item in listed:
            cid = str(item.get("Id", ""))
            names = item.get("Names") or [cid[:12]]
            seen.add(cid)
            container = self._track(cid, str(names[0]).lstrip("/"))
            if item.get("State") != "created":
                self._ensure_follower(container)
        with self._lock:
            for container in list(self._containers.values()):
                if container.id not in seen:
                    container.gone = True
                    self._forget(container)
        self._listed = True

    def _on_event(self, event: Mapping[str, Any]) -> None:
        time_nano = event.get("timeNano")
        if isinstance(time_nano, int):
            self._last_event_ns = time_nano
        actor = event.get("Actor") or {}
        cid = str(event.get("id") or actor.get("ID") or "")
        action = str(event.get("Action") or event.get("status") or "")
        name = str((actor.get("Attributes") or {}).get("name") or cid[:12])
        if not cid:
            return
        if action == "start":
            self._ensure_follower(self._track(cid, name))
        elif action == "rename":
            self._track(cid, name).name = name
        elif action == "die":
            self._expect_end(cid)
        elif action == "destroy":
            with self._lock:
                container = self._containers.get(cid)
                if container is not None:
                    container.gone = True
                    self._forget(container)

    def _expect_end(self, cid: str) -> None:
        """The engine should now end the container's follow: check a little later."""
        with self._lock:
            container = self._containers.get(cid)
            stream = container.stream if container is not None else None
            if container is None or stream is None or self.closed:
                return
            timer = threading.Timer(self._die_grace, self._end_stalled, (container, stream))
            timer.name = f"livecluster-docker-stall-{container.name}"
            timer.daemon = True
            self._timers.add(timer)
            container.stall_check = timer
        timer.start()

    def _end_stalled(self, container: _Container, stream: _Stream) -> None:
        """A follow still open after its container died has stalled (its log file was
        rotated away, pitfall 15): cut it, so the follower reads the rest without follow."""
        with self._lock:
            self._timers.discard(threading.current_thread())
            stalled = container.stream is stream and not self.closed
        if stalled:
            self._note(
                f"container {container.name}: its follow was still open {self._die_grace:g}s "
                "after the container stopped; reading the rest without follow"
            )
            stream.cut()

    def _forget(self, container: _Container) -> None:
        """Drop a removed container's record once no follower holds it (lock held)."""
        if container.gone and container.owner is None:
            self._containers.pop(container.id, None)

    def _track(self, cid: str, name: str) -> _Container:
        with self._lock:
            container = self._containers.get(cid)
            if container is None or container.gone:
                # A destroyed id never comes back, but a reconcile may mark one gone early.
                container = self._containers[cid] = container or _Container(cid, name)
                container.gone = False
            return container

    def _ensure_follower(self, container: _Container) -> None:
        with self._lock:
            if container.gone or container.unreadable or self.closed:
                return
            if container.owner is not None:
                container.kick = True
                return
            thread = threading.Thread(
                target=self._follower,
                args=(container,),
                name=f"livecluster-docker-{container.name}",
                daemon=True,
            )
            container.owner = thread
            container.kick = False
            self.health.attached += 1
            self._threads.add(thread)
        thread.start()

    def _stop(self) -> None:
        self._closed.set()
        self._engine.cut_all()
        with self._lock:
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        with self._lock:
            threads = [*self._threads, *timers]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self._note(f"followers still busy at close: {', '.join(stuck)}")
        self._engine.close()
        with self._lock:
            self.health.attached = 0
        if self.health.state is not SourceState.FAILED:
            self.health.state = SourceState.CLOSED

    # -- follower threads -----------------------------------------------------------------------

    def _follower(self, container: _Container) -> None:
        backoff = _Backoff(self._closed, self._options.reconnect_max_wait)
        me = threading.current_thread()
        try:
            while self._keep_following(container):
                try:
                    again = self._follow_step(container, backoff)
                except _Gone:
                    container.gone = True
                    again = False
                if not again and self._release(container):
                    return
        except _Closed:
            pass
        except BaseException as exc:  # a bug, or emit() failing: end the whole source
            if not self.closed:
                self._fatal = exc
                self._note(f"container {container.name}: follower failed: {exc!r}")
                self.close()
        finally:
            with self._lock:
                if container.owner is me:
                    container.owner = None
                self._forget(container)
                self.health.attached = max(0, self.health.attached - 1)
                self._threads.discard(me)

    def _keep_following(self, container: _Container) -> bool:
        with self._lock:
            container.kick = False
            return not (self.closed or container.gone or container.unreadable)

    def _release(self, container: _Container) -> bool:
        """Give the container up unless a start came meanwhile; True if given up."""
        with self._lock:
            if container.kick and not self.closed:
                return False
            container.owner = None
            return True

    def _follow_step(self, container: _Container, backoff: _Backoff) -> bool:
        """Inspect, then make the one request the state calls for; True to look again now."""
        run = self._inspect(container, backoff)
        if run is None:
            return not container.gone
        try:
            if run.running:
                return self._follow_run(container, run, backoff)
            if run.never_started or container.drained == run.key:
                return False
            return self._read_stopped(container, run, backoff)
        except _Unreadable as exc:
            self._unreadable(container, run, exc)
            return False

    def _inspect(self, container: _Container, backoff: _Backoff) -> _Run | None:
        """The current run; None if the container is gone or (after a backoff) unreachable."""
        try:
            info = self._engine.inspect(container.id)
        except _Gone:
            container.gone = True
            return None
        except _Closed:
            raise
        except SourceError as exc:  # the engine is down, or answered oddly: try again
            self._note(f"container {container.name}: {exc}")
            backoff.pause()
            return None
        name = str(info.get("Name") or "").lstrip("/")
        if name:
            container.name = name
        labels = (info.get("Config") or {}).get("Labels") or {}
        with self._lock:
            self._labels[f"docker:{container.name}"] = {str(k): str(v) for k, v in labels.items()}
        run = _run_of(info)
        if container.tty is None:
            container.tty = run.tty
            # A TTY has no stderr: waiting for a stderr line would rule every resume out.
            streams = ("stdout",) if run.tty else ("stdout", "stderr")
            container.dedup = Deduplicator(streams=streams)
        if run.removing:
            container.gone = True
            return None
        return run

    def _read_stopped(self, container: _Container, run: _Run, backoff: _Backoff) -> bool:
        """One ``follow=0`` read of a stopped container, to the end of its last run."""
        decoder = self._decoder(run)
        result = self._read(container, run, decoder, follow=False)
        if not result.clean:
            decoder.finish(exited=False)
            self._note(f"container {container.name}: {result.error}; reading again")
            self._count_reconnect()
            backoff.pause()
            return True
        # Only a run that is still over has a final partial line: had the container
        # started again meanwhile, the read's last piece could be a line the new run is
        # still writing, which the next follow delivers whole.
        after = self._inspect(container, backoff)
        if not container.gone and (after is None or after.key != run.key):
            decoder.finish(exited=False)
            return True
        self._deliver_all(container, decoder.finish(exited=True))
        container.drained = run.key
        backoff.reset()
        return False

    def _follow_run(self, container: _Container, run: _Run, backoff: _Backoff) -> bool:
        """``follow=1`` until the stream ends; then see whether the run ended with it."""
        decoder = self._decoder(run)
        result = self._read(container, run, decoder, follow=True)
        # A partial line left at the end of a follow is never delivered from it: the
        # engine can end a follow before the run's last, unterminated output (measured:
        # 2 runs in 5), so a run's end is always read again with follow=0.
        decoder.finish(exited=False)
        if self.closed:
            return False
        after = self._inspect(container, backoff)
        if container.gone:
            if not result.clean:
                self._note(f"container {container.name}: removed before its logs were all read")
            return False
        if after is not None and (not after.running or after.started != run.started):
            backoff.reset()
            return True  # the run is over: read its end, then follow the next one
        error = result.error or "the follow ended while the container still ran"
        self._note(f"container {container.name}: {error}; reconnecting")
        self._count_reconnect()
        if result.lasted >= HEALTHY_AFTER_S:
            backoff.reset()
        backoff.pause()
        return True

    def _decoder(self, run: _Run) -> LogStreamDecoder:
        return LogStreamDecoder(tty=run.tty, max_line_bytes=self._options.max_line_bytes)

    def _read(
        self, container: _Container, run: _Run, decoder: LogStreamDecoder, *, follow: bool
    ) -> _Read:
        """One logs request, fed through ``decoder`` and the deduplicator, to its end."""
        watch = _RotationWatch(container, run, self._resume_marks(container))
        container.dedup.begin_replay()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
        since = container.dedup.resume_since_ns()
        if since is not None:
            params["since"] = format_since(max(0, since - self._margin))
        what = f"GET /containers/{container.name}/logs"
        if container.asked_ns is None:
            container.asked_ns = time.time_ns()
        try:
            stream = self._engine.stream(what, "/containers/{0}/logs", container.id, params)
        except (_Gone, _Unreadable, _Closed):
            raise
        except SourceError as exc:
            return _Read(clean=False, lasted=0.0, error=str(exc))
        container.answered()
        if follow:
            container.stream = stream
        try:
            for chunk in stream.chunks():
                for msg in decoder.feed(chunk):
                    if self._check(watch, msg):
                        self._deliver(container, msg)
        except DockerFramingError as exc:
            return _Read(clean=False, lasted=_age(stream), error=f"{what}: {exc}")
        except _NETWORK_ERRORS as exc:
            error = f"{what}: the connection broke ({_reason(exc)})"
            return _Read(clean=False, lasted=_age(stream), error=error)
        finally:
            self._followed(container)
            self._engine.release(stream)
            if watch.episodes > 1:
                self._note(f"container {container.name}: {watch.episodes} possible gaps in {what}")
        return _Read(clean=True, lasted=_age(stream))

    def _followed(self, container: _Container) -> None:
        """The follow ended: no stall to check for any more."""
        with self._lock:
            container.stream = None
            timer, container.stall_check = container.stall_check, None
            if timer is not None:
                timer.cancel()
                self._timers.discard(timer)

    def _resume_marks(self, container: _Container) -> dict[str, int]:
        return {name: int(s["mark_ns"]) for name, s in container.dedup.state().items()}

    def _check(self, watch: _RotationWatch, msg: LogMessage) -> bool:
        """Whether to deliver ``msg``; a rotation gap goes into the health."""
        episodes = watch.episodes
        keep = watch.see(msg)
        if watch.episodes != episodes:
            with self._lock:
                self.health.gaps += 1
                if episodes == 0 and watch.first is not None:
                    self.health.error(watch.first)
        return keep

    def _deliver_all(self, container: _Container, messages: list[LogMessage]) -> None:
        for msg in messages:
            self._deliver(container, msg)

    def _deliver(self, container: _Container, msg: LogMessage) -> None:
        if msg.stream == "system":
            text = msg.line.decode("utf-8", "replace").strip()
            self._note(f"container {container.name}: the engine reported: {text}")
            return
        if not container.dedup.admit(msg):
            return
        if msg.truncated:
            size = len(msg.line) + msg.truncated
            self._note(
                f"container {container.name}: a {msg.stream} line of {size} bytes was cut "
                f"to its first {len(msg.line)} (max_line_bytes)"
            )
        envelope = Envelope(
            f"docker:{container.name}",
            msg.stream,
            origin_ns=msg.ts_ns,
            unterminated=msg.unterminated,
        )
        emit = self._emit
        assert emit is not None  # set by run() before any follower starts
        with self._emit_lock:
            self.health.line(msg.line)
            emit(msg.line, envelope)
        container.delivered(msg.ts_ns)

    def _unreadable(self, container: _Container, run: _Run, exc: _Unreadable) -> None:
        """Record a container whose logs the engine will not serve: a failure, never 0 lines."""
        if _DEAD_OR_REMOVED in str(exc) and self._being_removed(container):
            container.gone = True
            self._note(f"container {container.name}: removed before its logs were all read")
            return
        message = (
            f"container {container.name}: the engine cannot serve its logs "
            f"(logging driver {run.driver!r}): {exc}; none of its lines are collected"
        )
        with self._lock:
            container.unreadable = True
            self._failures.append(message)
            self.health.error(message)

    def _being_removed(self, container: _Container) -> bool:
        try:
            info = self._engine.inspect(container.id)
        except _Gone:
            return True
        except _Transient:
            return False
        return _run_of(info).removing

    # -- health ---------------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        with self._lock:
            self.health.error(message)

    def _count_reconnect(self) -> None:
        with self._lock:
            self.health.reconnects += 1


def _age(stream: _Stream) -> float:
    return time.monotonic() - stream.opened


class _RotationWatch:
    """Spots lines that log rotation took away, from timestamps alone, in one connection.

    A resume asks for ``since`` at or before each stream's mark, so the engine must
    send the line at the mark again: if a stream's first line is later, the file that
    held it was rotated away, and lines after it may have gone too. Within one
    connection a stream's timestamps never go backwards, except when the engine's
    follow reader loses its place in a rotating file (moby/moby#39235), which in
    measurements came with many lines skipped. Each such episode counts as a gap; the
    lines lost in between cannot be counted: only a writer's own sequence numbers can.
    """

    def __init__(self, container: _Container, run: _Run, marks: dict[str, int]) -> None:
        self._container = container
        self._run = run
        self._marks = marks
        self._top: dict[str, int] = {}
        self._behind: set[str] = set()
        self.episodes = 0
        self.first: str | None = None

    def see(self, msg: LogMessage) -> bool:
        """Note ``msg``; False if the engine is sending again what this connection already
        sent (it went back), including lines at the highest timestamp: drop those."""
        stream, ts = msg.stream, msg.ts_ns
        if stream == "system":
            return True
        top = self._top.get(stream)
        if top is None:
            self._top[stream] = ts
            mark = self._marks.get(stream)
            if mark is not None and ts > mark:
                self._gap(stream, "a resume did not start at the last line read")
            return True
        if ts > top:
            self._top[stream] = ts
            self._behind.discard(stream)
            return True
        if ts < top and stream not in self._behind:
            self._behind.add(stream)
            self._gap(stream, "the engine went back to older lines mid-stream")
        # At the top and not behind: a line repeated at one timestamp, for the deduplicator.
        return stream not in self._behind

    def _gap(self, stream: str, what: str) -> None:
        self.episodes += 1
        if self.first is None:
            self.first = (
                f"container {self._container.name}: possible gap in {stream}: {what}, so its "
                f"log file was rotated under the reader ({self._run.log_options}); lines may "
                "be lost"
            )


def _events(stream: _Stream) -> Iterator[dict[str, Any]]:
    """The JSON objects of an events body, one a line, however the chunks fall."""
    pending = b""
    for chunk in stream.chunks():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _Transient(f"GET /events: not JSON: {line[:200]!r}") from exc
            if isinstance(event, dict):
                yield event
