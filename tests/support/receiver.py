"""A loopback HTTP receiver for webhook tests: records requests, answers as scripted.

Every request (any method, any path) is recorded, then answered with the next
scripted status; once the script is used up the last status is kept::

    with Receiver(statuses=(500, 200)) as receiver:
        httpx.post(receiver.url + "/am", json={"a": 1})  # -> 500
        httpx.post(receiver.url + "/am", json={"a": 2})  # -> 200, and so on
        receiver.wait_for(2)
        assert receiver.bodies() == [{"a": 1}, {"a": 2}]

``delay`` makes every answer wait that many seconds first (to test client
timeouts); :meth:`Receiver.close` cuts such waits short.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ReceivedRequest", "Receiver"]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it came: ``json`` is the parsed body, or None if it was not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers as told."""

    def __init__(self, statuses: Iterable[int] = (200,), *, delay: float = 0.0) -> None:
        self.statuses: tuple[int, ...] = tuple(statuses)
        if not self.statuses:
            raise ValueError("statuses must not be empty")
        self.delay = delay
        self._requests: list[ReceivedRequest] = []
        self._answered = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"receiver :{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._requests)

    def bodies(self) -> list[Any]:
        """The JSON bodies of all requests so far (None for those that were not JSON)."""
        return [request.json for request in self.requests]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests came; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(r.method, r.path, r.json) for r in self._requests]
                    raise AssertionError(
                        f"waited {timeout} s for {count} requests, got {len(got)}: {got!r}"
                    )
                self._cond.wait(left)
            return list(self._requests)

    def _record(self, request: ReceivedRequest) -> int:
        """Keep the request; return the status to answer it with."""
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
            status = self.statuses[min(self._answered, len(self.statuses) - 1)]
            self._answered += 1
            return status


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        receiver: Receiver,
    ) -> None:
        super().__init__(address, handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        receiver = server.receiver
        body = self._read_body()
        parsed: Any = None
        if body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        status = receiver._record(
            ReceivedRequest(
                self.command,
                self.path,
                {name.lower(): value for name, value in self.headers.items()},
                body,
                parsed,
            )
        )
        if receiver.delay > 0 and receiver._closing.wait(receiver.delay):
            self.close_connection = True
            return
        answer = json.dumps({"status": status}).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass
