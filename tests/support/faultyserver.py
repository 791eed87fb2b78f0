"""A ``/logs`` server for tests: writes shards on cue and misbehaves on cue.

It is a :class:`~pytest_livecluster.protocol.server.LogServer` with another request
handler, so buffering, TLS, threads and ``close()`` are the real ones. Each
request takes the next injected :class:`Fault` (none left: it behaves), and
every request is recorded for assertions::

    server = FaultyServer().start()
    server.write({"seq": 1}, {"seq": 2})
    server.inject("close_mid_line", lines=1)   # first request
    server.inject("status", status=503, times=2)  # the next two
    ...
    assert [r.after for r in server.requests] == [None, "1", "1", "1"]

Faults, by name:

``close_mid_line``  send ``lines`` whole lines, then the first half of the next
                    one, then cut the connection (``clean=True``: end the
                    chunked body properly instead, so the client sees an
                    orderly end with an unterminated last line)
``stall``           send ``lines`` whole lines, then nothing at all (no
                    heartbeats) for ``seconds``, then cut the connection
``stall_headers``   accept the request and send nothing, not even headers
``status``          answer ``status`` (503 unless given) ``times`` times, with
                    ``body`` as the text (default: "injected STATUS")
``gap``             start ``skip`` lines later than asked, saying so in
                    ``Log-First-Seq``, as a server whose buffer dropped them
                    (a negative ``skip`` re-sends lines the client has)

``byte_per_chunk=True`` sends every body byte as its own HTTP chunk, so UTF-8
characters arrive split across chunks; ``sse=True`` always answers with
Server-Sent Events (``None``: as the ``Accept`` header asks).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from pytest_livecluster._retry import wait_until
from pytest_livecluster.protocol.server import (
    LogBuffer,
    LogRequestHandler,
    LogServer,
    encode_ndjson,
    encode_sse,
    resume_point,
    wants_sse,
)

__all__ = ["FAULTS", "Fault", "FaultyServer", "Request"]

FAULTS: Final = ("close_mid_line", "stall", "stall_headers", "status", "gap")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour, for one request."""

    name: str
    lines: int = 0
    seconds: float = 30.0
    status: int = 503
    skip: int = 0
    clean: bool = False
    body: str | None = None

    def __post_init__(self) -> None:
        if self.name not in FAULTS:
            raise ValueError(f"unknown fault {self.name!r}; known: {', '.join(FAULTS)}")


@dataclass(frozen=True)
class Request:
    """What a client sent: path, query and headers (names in lower case)."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def after(self) -> str | None:
        values = self.query.get("after")
        return values[-1] if values else None


class FaultyServer(LogServer):
    """A LogServer whose requests can be made to fail, and which records them."""

    def __init__(
        self,
        *,
        byte_per_chunk: bool = False,
        sse: bool | None = None,
        heartbeat: float = 30.0,
        capacity: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(LogBuffer(capacity), heartbeat=heartbeat, **kwargs)
        self.handler_class = _FaultyHandler
        self.byte_per_chunk = byte_per_chunk
        self.sse = sse
        self.chunks_sent = 0
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._lock = threading.Lock()

    def write(self, *shards: dict[str, Any] | str | bytes) -> None:
        """Append shards (dicts are written as compact JSON, non-ASCII kept raw)."""
        for shard in shards:
            if isinstance(shard, dict):
                shard = json.dumps(shard, ensure_ascii=False, separators=(",", ":"))
            self.buffer.append(shard)

    def inject(self, name: str, *, times: int = 1, **options: Any) -> None:
        """Make the next ``times`` requests (after those already planned) fail so."""
        fault = Fault(name, **options)
        with self._lock:
            self._faults.extend([fault] * times)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Wait for ``count`` requests (a hang guard, not a speed limit)."""
        if not wait_until(lambda: len(self.requests) >= count, timeout=timeout, interval=0.01):
            raise AssertionError(f"{len(self.requests)} requests, expected {count}")
        return self.requests

    def _take(self, request: Request) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            return self._faults.pop(0) if self._faults else None


class _FaultyHandler(LogRequestHandler):
    @property
    def faulty(self) -> FaultyServer:
        server = self.log_server
        assert isinstance(server, FaultyServer)
        return server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        request = Request(
            url.path,
            parse_qs(url.query, keep_blank_values=True),
            {name.lower(): value for name, value in self.headers.items()},
        )
        fault = self.faulty._take(request)
        # The client going away mid-answer is what several tests do.
        with contextlib.suppress(OSError):
            self._answer(fault, url.query)
        self.close_connection = True

    def _answer(self, fault: Fault | None, query: str) -> None:
        server = self.faulty
        if fault is not None and fault.name == "status":
            self.send_plain(fault.status, fault.body or f"injected {fault.status}")
            return
        if fault is not None and fault.name == "stall_headers":
            server.closing.wait(fault.seconds)
            self._cut()
            return
        after = resume_point(query, self.headers.get("Last-Event-ID"))
        sse = wants_sse(self.headers.get("Accept", "")) if server.sse is None else server.sse
        first = (
            server.buffer.first_seq if after is None else max(after + 1, server.buffer.first_seq)
        )
        if fault is not None and fault.name == "gap":
            first += fault.skip
        self.start_stream(first, sse)
        self._lines(first - 1, sse, fault)

    def _lines(self, cursor: int, sse: bool, fault: Fault | None) -> None:
        server = self.faulty
        sent = 0
        while not server.closing.is_set():
            if fault is not None and fault.name == "stall" and sent == fault.lines:
                server.closing.wait(fault.seconds)
                self._cut()
                return
            batch = server.buffer.wait_after(cursor, server.heartbeat, stop=server.closing.is_set)
            if not batch:
                if not server.closing.is_set():
                    self._send(b":\n" if sse else b"\n")
                continue
            for seq, line in batch:
                data = encode_sse([(seq, line)]) if sse else encode_ndjson([(seq, line)])
                if fault is not None and fault.name == "close_mid_line" and sent == fault.lines:
                    self._send(data[: len(data) // 2])
                    if fault.clean:
                        self.end_stream()
                    else:
                        self._cut()
                    return
                self._send(data)
                sent += 1
                cursor = seq
        self.end_stream()

    def _send(self, data: bytes) -> None:
        pieces = (
            [data[i : i + 1] for i in range(len(data))] if self.faulty.byte_per_chunk else [data]
        )
        for piece in pieces:
            self.send_chunk(piece)
            self.faulty.chunks_sent += 1

    def _cut(self) -> None:
        """End the connection without finishing the body."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
