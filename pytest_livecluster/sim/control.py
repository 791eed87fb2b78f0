"""The small JSON-over-HTTP control API of every simulated process, server and client side.

A process registers handlers by method and path; a handler takes the request's
JSON object and returns the response's, or raises :class:`ApiError` for a
4xx/5xx answer ``{"error": message}``. The server binds 127.0.0.1 only.

:func:`call` is the client the processes use among themselves (the standard
library's urllib: a blade needs nothing else); the test-facing client is
:class:`~pytest_livecluster.methodology.client.OrchestratorClient`.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self, TypeVar

import tenacity

from .._retry import retrying

__all__ = ["HOST", "ApiError", "ControlServer", "Handler", "bind_retrying", "call"]

HOST: Final = "127.0.0.1"
Json = dict[str, Any]
Handler = Callable[[Json], Json]
T = TypeVar("T")

logger = logging.getLogger(__name__)

_MAX_BODY: Final = 1024 * 1024
# A port still taken or a peer restarting is back within a second or so.
_FIRST_WAIT: Final = 0.05
_MAX_WAIT: Final = 0.5
# Loopback only: a proxy from the environment must not see these requests.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiError(Exception):
    """An error answer: ``status`` and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlServer:
    """Serves the registered handlers on ``127.0.0.1:port`` (0: any free port)."""

    def __init__(self, routes: dict[tuple[str, str], Handler], port: int = 0) -> None:
        self.routes = routes
        self._httpd = bind_retrying(lambda: _Httpd(self, port))
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"control:{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()


def bind_retrying(bind: Callable[[], T], seconds: float = 3.0) -> T:
    """``bind()``, retried while its port is still taken (a restart on the same port)."""
    return _retrying_os_errors(seconds)(bind)


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ControlServer, port: int) -> None:
        self.owner = owner
        super().__init__((HOST, port), _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Httpd

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            handler = self._handler(method)
            self._answer(200, handler(self._body()))
        except ApiError as exc:
            self._answer(exc.status, {"error": exc.message})
        except Exception as exc:  # a bug must answer 500, not drop the connection
            logger.exception("control: %s %s failed", method, self.path)
            self._answer(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _handler(self, method: str) -> Handler:
        path = self.path.partition("?")[0]
        routes = self.server.owner.routes
        handler = routes.get((method, path))
        if handler is not None:
            return handler
        allowed = sorted(m for m, p in routes if p == path)
        if allowed:
            raise ApiError(405, f"{method} {path} is not allowed; use {', '.join(allowed)}")
        known = ", ".join(sorted({f"{m} {p}" for m, p in routes}))
        raise ApiError(404, f"no such endpoint {method} {path}; endpoints: {known}")

    def _body(self) -> Json:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ApiError(413, f"the body has {length} bytes, more than {_MAX_BODY}")
        if not length:
            return {}
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _answer(self, status: int, body: Json) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("control: " + format, *args)


def call(
    method: str, url: str, body: Json | None = None, *, timeout: float = 2.0, retry_for: float = 0.0
) -> Json:
    """One JSON request; retried for ``retry_for`` s while the peer refuses connections.

    Raises :class:`ApiError` for an error answer (never retried) and
    :class:`OSError` when the peer cannot be reached.
    """
    return _retrying_os_errors(retry_for)(_call_once, method, url, body, timeout)


def _retrying_os_errors(budget: float) -> tenacity.Retrying:
    return retrying(
        first_wait=_FIRST_WAIT,
        max_wait=_MAX_WAIT,
        budget=budget,
        retry_if=lambda exc: isinstance(exc, OSError),
    )


def _call_once(method: str, url: str, body: Json | None, timeout: float) -> Json:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            answer: Json = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        with exc:
            raise ApiError(exc.code, _error_text(exc.read())) from None


def _error_text(data: bytes) -> str:
    try:
        return str(json.loads(data)["error"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()
