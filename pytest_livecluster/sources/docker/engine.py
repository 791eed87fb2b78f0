"""The connection to one Docker engine, and the few read-only requests the source makes.

The engine is the one ``;host=`` names, else ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``
and ``DOCKER_CERT_PATH``), else the local socket: ``unix://``, ``tcp://`` or ``ssh://``
(one ssh process forwards a local socket to the remote engine's, see :mod:`.tunnel`).
Only read-only endpoints are called: ``/version``, ``/info``, ``/events``,
``/containers/json``, ``/containers/{id}/json``, ``/containers/{id}/logs`` and, for a
swarm, ``/services``, ``/services/{id}``, ``/tasks``, ``/tasks/{id}``,
``/tasks/{id}/logs`` and ``/nodes``.

docker-py provides the connection (unix socket, TCP, TLS from the environment) and the
short requests (version, list, inspect). Log and event bodies are read from the raw
HTTP response rather than through docker-py's helpers, which drop the stdout/stderr
distinction, turn a broken connection into a normal end of iteration and cannot be
given a nanosecond ``since``: those requests are made here, through the public
``requests.Session`` API that docker-py's ``APIClient`` extends, so that their bodies
can be read raw and their sockets shut down from another thread by
:meth:`Engine.cut_all`, which wakes every blocked read at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, Final

import docker
import requests
import urllib3
from docker.transport.unixconn import (
    UnixHTTPAdapter,
    UnixHTTPConnection,
    UnixHTTPConnectionPool,
)

from ..._secrets import redact_url, remember_url
from ..._sockets import shutdown
from ...exceptions import SourceError, SourceUnavailable
from .errors import Closed, api_error, translate
from .spec import DockerSpec
from .tunnel import SshTunnel

__all__ = ["HEALTHY_AFTER_S", "Engine", "Stream"]

# A connection that lasted this long proves the engine healthy: the backoff starts over.
HEALTHY_AFTER_S: Final = 2.0
_POOL_SIZE: Final = 256
_CHUNK: Final = 65536


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


class Stream:
    """One streaming response (events or logs) that another thread can cut."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.opened = time.monotonic()

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; ends at the engine's end of body, raises if it broke.

        The engine sends a log as one HTTP chunk per line; urllib3 hands chunks
        over one at a time, which costs a Python round per line. So a chunked
        body not yet read is de-chunked here from what each socket read brings
        (many lines at once); anything else is read through urllib3.
        """
        buffered = _unread_chunked_body(self._response)
        if buffered is None:
            yield from self._response.raw.stream(_CHUNK, decode_content=False)
        else:
            yield from dechunk(buffered.read1)

    def age(self) -> float:
        """Seconds since the response arrived."""
        return time.monotonic() - self.opened

    def cut(self) -> None:
        """Wake the thread blocked reading this stream. Safe from any thread."""
        sock = _socket_of(self._response)
        if sock is None:
            return
        shutdown(sock)

    def close(self) -> None:
        self._response.close()


def _unread_chunked_body(response: requests.Response) -> Any:
    """The buffered reader under a chunked body nothing has read yet, else None."""
    raw = response.raw
    inner = getattr(raw, "_fp", None)
    reader = getattr(inner, "fp", None)
    if (
        getattr(raw, "chunked", False)
        and getattr(inner, "chunked", False)
        and getattr(inner, "chunk_left", 0) is None  # no chunk started yet
        and callable(getattr(reader, "read1", None))
        and not getattr(raw, "_decoded_buffer", None)
    ):
        return reader
    return None


def dechunk(read1: Any) -> Iterator[bytes]:
    """The data of an HTTP/1.1 chunked body, read with ``read1`` (up to 64 KiB a call):
    each yield is everything one read completed, across as many chunks as it held.

    A body that ends before its last chunk, or framing that is not chunked
    transfer coding, raises :class:`urllib3.exceptions.ProtocolError`, as
    urllib3 itself would.
    """
    buf = b""
    left = 0  # data bytes still due in the current chunk
    crlf = False  # the CRLF after a chunk's data is still due
    while True:
        data = read1(_CHUNK)
        if not data:
            raise urllib3.exceptions.ProtocolError("the response ended before its last chunk")
        buf = buf + data if buf else data
        pos, end = 0, len(buf)
        out: list[bytes] = []
        while True:
            if left:
                take = min(left, end - pos)
                out.append(buf[pos : pos + take])
                pos += take
                left -= take
                if left:
                    break
                crlf = True
            if crlf:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise urllib3.exceptions.ProtocolError("bad chunked framing: data overruns")

                pos += 2
                crlf = False
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if end - pos > 1024:
                    raise urllib3.exceptions.ProtocolError("bad chunked framing: no size line")
                break
            try:
                size = int(buf[pos:nl].split(b";", 1)[0], 16)
            except ValueError:
                raise urllib3.exceptions.ProtocolError(
                    f"bad chunk size {buf[pos:nl][:40]!r}"
                ) from None
            if size < 0:
                raise urllib3.exceptions.ProtocolError(f"bad chunk size {size}")
            pos = nl + 2
            if size == 0:  # the last chunk: what follows is trailers, if anything
                if out:
                    yield b"".join(out)
                return
            left = size
        buf = buf[pos:]
        if out:
            yield out[0] if len(out) == 1 else b"".join(out)


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Engine:
    """The engine's read-only endpoints over one docker-py APIClient.

    Every request is refused with :class:`Closed` once :meth:`cut_all` was called, and
    every error is translated by :func:`translate`.
    """

    def __init__(self, spec: DockerSpec, timeout: float) -> None:
        self._spec = spec
        self._timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()
        self._streams: set[Stream] = set()
        self._closing = False
        self._tunnel: SshTunnel | None = None
        url = spec.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        remember_url(url)
        #: The engine's address as messages show it (no credentials).
        self.url = redact_url(url)

    def connect(self) -> None:
        """Agree on the API version (GET /version), then build the client that uses it."""
        kwargs = docker.utils.kwargs_from_env()
        if self._spec.host:
            kwargs["base_url"] = self._spec.host
        base = str(kwargs.get("base_url", "unix://"))
        if not base.startswith(("unix://", "tcp://", "http", "ssh://")):
            raise SourceUnavailable(
                f"cannot follow the Docker engine at {self.url}: only unix://, tcp:// and "
                "ssh:// engines are supported"
            )
        if base.startswith("ssh://"):
            # One ssh process forwards a local socket to the engine's (see .tunnel).
            self._tunnel = SshTunnel(base, self.url)
            self._tunnel.ensure()
            kwargs["base_url"] = self._tunnel.url
        # docker-py can only be given its API version when a client is built ("auto" asks
        # the engine before the unix adapter could be replaced), so a first client with a
        # placeholder version asks, and the client kept is built with the engine's answer.
        probe = self._client(docker.constants.MINIMUM_DOCKER_API_VERSION, kwargs)
        try:
            version = self._call(probe.version, "GET /version", api_version=False)["ApiVersion"]
        except (SourceError, KeyError, TypeError) as exc:
            raise SourceUnavailable(f"cannot reach the Docker engine at {self.url}: {exc}") from exc
        finally:
            probe.close()
        self._api = self._client(version, kwargs)

    def _client(self, version: str, kwargs: Mapping[str, Any]) -> Any:
        """An APIClient for ``version`` that closes the sockets of failed unix connects."""
        try:
            api = docker.APIClient(
                version=version, timeout=self._timeout, max_pool_size=_POOL_SIZE, **kwargs
            )
        except docker.errors.DockerException as exc:
            raise SourceUnavailable(f"cannot use the Docker engine at {self.url}: {exc}") from exc
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
        # docker-py adds its config file's HttpHeaders to each request it makes itself;
        # on the session they go with the streaming requests made here too.
        api.headers.update(docker.utils.config.load_general_config().get("HttpHeaders") or {})
        return api

    def _call(self, fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
        if self._closing:
            raise Closed(what)
        if self._tunnel is not None:
            self._tunnel.ensure()  # made again if its ssh process ended
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc, what) from exc

    def info(self) -> dict[str, Any]:
        """``GET /info``: the engine's name, its default logging driver, its swarm role."""
        result: dict[str, Any] = self._call(self._api.info, "GET /info")
        return result

    def services(self, label: str) -> list[dict[str, Any]]:
        """Every swarm service with ``label``."""
        result: list[dict[str, Any]] = self._call(
            self._api.services, "GET /services", filters={"label": label}
        )
        return result

    def service(self, sid: str) -> dict[str, Any]:
        """``GET /services/{id}``; :class:`Gone` once the service was removed."""
        result: dict[str, Any] = self._call(
            self._api.inspect_service, f"GET /services/{sid[:12]}", sid
        )
        return result

    def tasks(self, sid: str) -> list[dict[str, Any]]:
        """Every task of the service ``sid``, current and past."""
        result: list[dict[str, Any]] = self._call(
            self._api.tasks, "GET /tasks", filters={"service": sid}
        )
        return result

    def nodes(self) -> list[dict[str, Any]]:
        """Every node of the swarm."""
        result: list[dict[str, Any]] = self._call(self._api.nodes, "GET /nodes")
        return result

    def task(self, tid: str) -> dict[str, Any]:
        """``GET /tasks/{id}``; :class:`Gone` once the task is no longer kept."""
        result: dict[str, Any] = self._call(self._api.inspect_task, f"GET /tasks/{tid[:12]}", tid)
        return result

    def task_logs(self, tid: str, params: Mapping[str, Any], what: str) -> Stream:
        """``GET /tasks/{tid}/logs`` with ``params``, its body to be read raw.

        A task's log, not a service's: on Engine 20.10 a service's log loses lines
        when its tasks have a backlog (7,031 of 9,000 lines in one measured read),
        while each of its tasks' logs, read alone, is whole.
        """
        path = f"/tasks/{urllib.parse.quote(tid, safe='')}/logs"
        return self._stream(what, path, params)

    def list(self, label: str) -> list[dict[str, Any]]:
        """Every container with ``label``, running or not."""
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

    def logs(
        self, cid: str, params: Mapping[str, Any], what: str, *, keep_alive: bool = True
    ) -> Stream:
        """``GET /containers/{cid}/logs`` with ``params``, its body to be read raw.

        ``keep_alive=False`` asks the engine to close the connection after the
        body, for a one-off request whose connection should not linger in the pool.
        """
        path = f"/containers/{urllib.parse.quote(cid, safe='/:')}/logs"
        headers = None if keep_alive else {"Connection": "close"}
        return self._stream(what, path, params, headers)

    def events(self, params: Mapping[str, Any]) -> Stream:
        """``GET /events`` with ``params``, its body to be read raw."""
        return self._stream("GET /events", "/events", params)

    def _stream(
        self,
        what: str,
        path: str,
        params: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> Stream:
        """Open a streaming GET; it is registered, so that cut_all() can end it."""
        api = self._api
        url = f"{api.base_url}/v{api.api_version}{path}"
        extra = {"headers": dict(headers)} if headers else {}
        response = self._call(
            api.get, what, url, params=dict(params), stream=True, timeout=self._timeout, **extra
        )
        if response.status_code != 200:
            try:
                message = _error_message(response)
            finally:
                response.close()
            raise api_error(response.status_code, message, what)
        # The engine answers at once, so the timeout bounded the wait for the headers; the
        # body may be idle for as long as the container is silent: close() ends it instead.
        sock = _socket_of(response)
        if sock is not None:
            sock.settimeout(None)
        stream = Stream(response)
        with self._lock:
            self._streams.add(stream)
            closing = self._closing
        if closing:
            stream.cut()
        return stream

    def release(self, stream: Stream) -> None:
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
        if self._tunnel is not None:
            self._tunnel.close()


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else str(body)[:500]
