"""A hostile ``/logs`` server on loopback: answers exactly what a test scripts.

Where :class:`~tests.support.faultyserver.FaultyServer` is a well-behaved
server that fails on cue, this one speaks no protocol of its own: every
request gets the next scripted :class:`Reply` (the last one repeats), with
any status, headers and body bytes, sent whole or a few bytes at a time. It
is for what a server could send to hurt a client: odd headers, redirects,
echoed credentials, control bytes, over-long lines, SSE ids out of order::

    server = HostileServer(
        Reply(301, {"Location": other.url}),
        Reply.ndjson(b'{"a": 1}\\n', headers={"Log-Last-Seq": "\\u00b2"}),
    ).start()
    ...
    assert server.requests[0].headers["x-api-key"] == "..."
    server.close()

After the body the connection is held open for ``Reply.hold`` seconds (so a
client does not reconnect in a loop while the test looks), then closed; a
body without ``Content-Length`` ends with the connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from pytest_livecluster._retry import wait_until

__all__ = ["HostileServer", "Reply", "Request", "sse_event"]

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Send the body this many bytes at a time (None: at once), ``delay`` s apart.
    chunk: int | None = None
    delay: float = 0.0
    #: Seconds to keep the connection open after the body (the server's close ends it).
    hold: float = 0.0

    @classmethod
    def ndjson(cls, body: bytes, *, headers: Mapping[str, str] | None = None, **kw: Any) -> Reply:
        return cls(200, {"Content-Type": NDJSON, **(headers or {})}, body, **kw)

    @classmethod
    def sse(cls, *events: bytes, headers: Mapping[str, str] | None = None, **kw: Any) -> Reply:
        return cls(200, {"Content-Type": SSE, **(headers or {})}, b"".join(events), **kw)

    @classmethod
    def redirect(cls, location: str, status: int = 301) -> Reply:
        return cls(status, {"Location": location, "Content-Length": "0"})


def sse_event(data: bytes | str, id: int | str | None = None) -> bytes:
    """One SSE event: an optional ``id:`` field and one ``data:`` field."""
    raw = data.encode() if isinstance(data, str) else data
    head = b"" if id is None else f"id: {id}\n".encode()
    return head + b"data: " + raw + b"\n\n"


@dataclass(frozen=True)
class Request:
    """What a client sent: path, query and headers (names in lower case)."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class HostileServer:
    """Answers each request with the next scripted reply (or ``script(request)``)."""

    def __init__(
        self,
        *replies: Reply,
        script: Callable[[Request], Reply] | None = None,
        path: str = "/logs",
    ) -> None:
        if not replies and script is None:
            replies = (Reply.ndjson(b""),)
        self._replies = list(replies)
        self._script = script
        self.path = path
        self.closing = threading.Event()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = self

        class Handler(_Handler):
            hostile = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hostile-server", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    def url_with(self, userinfo: str = "", query: str = "") -> str:
        """The URL with credentials and a query written in, as a user would."""
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}{self.path}" + (f"?{query}" if query else "")

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[Request]:
        """Wait for ``count`` requests (a hang guard, not a speed limit)."""
        if not wait_until(lambda: len(self.requests) >= count, timeout=timeout, interval=0.01):
            raise AssertionError(f"{len(self.requests)} requests, expected {count}")
        return self.requests

    def close(self) -> None:
        self.closing.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._script is not None:
                return self._script(request)
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]


class _Handler(BaseHTTPRequestHandler):
    hostile: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        request = Request(
            url.path,
            parse_qs(url.query, keep_blank_values=True),
            {name.lower(): value for name, value in self.headers.items()},
        )
        reply = self.hostile._next(request)
        with contextlib.suppress(OSError):
            self._answer(reply)
        self.close_connection = True

    def _answer(self, reply: Reply) -> None:
        self.send_response_only(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in _pieces(reply.body, reply.chunk):
            self.wfile.write(piece)
            self.wfile.flush()
            if reply.delay and self.hostile.closing.wait(reply.delay):
                break
        if reply.hold:
            self.hostile.closing.wait(reply.hold)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _pieces(body: bytes, size: int | None) -> Iterable[bytes]:
    if size is None or size <= 0:
        return [body] if body else []
    return (body[i : i + size] for i in range(0, len(body), size))
