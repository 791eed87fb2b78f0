"""The server side of the bare ``/logs`` protocol, with nothing but the standard library.

A service keeps its recent log lines in a :class:`LogBuffer` and serves them
with a :class:`LogServer` (its own threads and port)::

    buffer = LogBuffer(capacity=10_000)
    server = LogServer(buffer, port=8080).start()
    buffer.append('{"scraper-1": {"msg": "Hello World"}}')
    ...
    server.close()

or, inside a web application it already runs, with the WSGI or ASGI app of
:mod:`livecluster.apps` mounted at ``/logs``. A :class:`~livecluster.Blade`
given ``buffer=`` writes every line it logs into the buffer, so the service
serves exactly what it logs. This module is the one copy of the server side:
``pytest_livecluster.protocol.server`` re-exports it. It runs on Python 3.9+.

The protocol (see "The bare /logs protocol" in the architecture notes):

- ``GET /logs?after=SEQ`` answers ``application/x-ndjson``, one line per
  shard, starting with line ``SEQ+1``; without ``after`` it starts with the
  oldest line still held. ``Log-First-Seq`` names the first line sent, so a
  client that asked for ``after=N`` and sees a larger number knows lines were
  dropped in between.
- A request whose ``Accept`` header prefers ``text/event-stream`` gets Server-Sent
  Events instead (``id:`` is the sequence number, ``data:`` the line), and may
  resume with ``Last-Event-ID`` as well as ``after``.
- ``Log-Last-Seq`` (optional) names the newest line held when the response
  started: a client that has read it has read the backlog, however busy the
  service is; without it, a client counts the backlog as read after a pause.
- The response stays open; new lines follow as they are appended, and an empty
  line (an SSE comment, ``:``) is sent as a heartbeat when nothing happened for
  ``heartbeat`` seconds, so clients can use a read timeout above it.

Framing: the body uses HTTP/1.1 chunked transfer encoding (one chunk per batch
of lines, ``Connection: close``). Unlike a close-delimited HTTP/1.0 body, this
lets a client tell a stream the server ended (terminating chunk) from a
connection that broke in the middle.

If lines a connected client still needs are dropped from a full buffer while it
is connected, the server ends that stream: the client's reconnect with
``after=`` then shows the gap in ``Log-First-Seq``, instead of the stream
silently skipping numbers (NDJSON lines carry no numbers of their own).

Numbers start at 1 in every process, so a restarted service numbers its lines
from 1 again, and a client resuming with ``after=N`` would wait for line
``N+1`` and silently miss the new process's first ``N`` lines. Every stream
therefore carries ``Log-Epoch``, a random token drawn once per
:class:`LogBuffer`, that is per numbering (see :attr:`LogBuffer.epoch`): a
client that sees the token change between two connections knows it reached a
new log and reads it from the start, without ``after``. A new
:class:`LogServer` on the same buffer keeps the epoch, since the numbering
goes on (lines it dropped meanwhile still show as a gap). The header is optional and backward
compatible: a client ignores its absence (an older server) and an older client
ignores its presence, both then behaving as before it existed.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import ssl

__all__ = [
    "EPOCH_HEADER",
    "FIRST_SEQ_HEADER",
    "LAST_SEQ_HEADER",
    "NDJSON",
    "SSE",
    "LogBuffer",
    "LogRequestHandler",
    "LogServer",
    "encode_ndjson",
    "encode_sse",
    "resume_point",
    "wants_sse",
]

NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"
FIRST_SEQ_HEADER: Final = "Log-First-Seq"
LAST_SEQ_HEADER: Final = "Log-Last-Seq"
EPOCH_HEADER: Final = "Log-Epoch"

Batch = list[tuple[int, bytes]]
"""``(sequence number, line)`` pairs, in order."""

logger = logging.getLogger(__name__)

_Server = TypeVar("_Server", bound="LogServer")

_SEQ: Final = re.compile(r"[0-9]{1,18}")
# Bounds a client that never sends its request or never reads its response.
_SOCKET_TIMEOUT: Final = 30.0
# How long close() lets streams end cleanly before cutting their sockets.
_GRACE: Final = 0.5
_CLOSE_DEADLINE: Final = 2.0


class LogBuffer:
    """The most recent ``capacity`` lines, numbered 1, 2, 3... Thread-safe.

    Appending wakes every handler waiting in :meth:`wait_after`, so streaming
    costs nothing while the service is quiet.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self._lines: collections.deque[bytes] = collections.deque(maxlen=capacity)
        self._last = 0
        self._cond = threading.Condition()
        self._listeners: tuple[Callable[[], object], ...] = ()
        #: Sent as ``Log-Epoch``: tells this numbering from that of a restarted process.
        self.epoch = secrets.token_hex(8)

    @property
    def capacity(self) -> int:
        """The most lines held; appending more drops the oldest."""
        return self._lines.maxlen or 0

    @property
    def last_seq(self) -> int:
        """The number of the newest line (0 before the first)."""
        with self._cond:
            return self._last

    @property
    def first_seq(self) -> int:
        """The number of the oldest line held (``last_seq + 1`` while empty)."""
        with self._cond:
            return self._first()

    def append(self, line: bytes | str) -> int | None:
        """Add one line and return its number.

        One trailing ``\\n`` (or ``\\r\\n``) is removed. A blank line gets no
        number and is not stored, because on the wire it would read as a
        heartbeat. A line with a ``\\n`` inside raises :class:`ValueError`.
        """
        raw = _clean(line)
        if raw is None:
            return None
        with self._cond:
            self._lines.append(raw)
            self._last += 1
            self._cond.notify_all()
            seq, listeners = self._last, self._listeners
        _notify(listeners)
        return seq

    def extend(self, lines: Iterable[bytes | str]) -> int | None:
        """Add several lines at once: a reader sees all of them or none.

        Each line is treated as by :meth:`append`; returns the number of the last.
        """
        raws = [raw for raw in map(_clean, lines) if raw is not None]
        with self._cond:
            self._lines.extend(raws)
            self._last += len(raws)
            self._cond.notify_all()
            seq, listeners = self._last, self._listeners
        if raws:
            _notify(listeners)
        return seq if raws else None

    def lines_after(self, seq: int) -> Batch:
        """Every line held whose number is above ``seq``."""
        with self._cond:
            return self._after(seq)

    def wait_after(self, seq: int, timeout: float, stop: Callable[[], bool] | None = None) -> Batch:
        """Like :meth:`lines_after`, but wait up to ``timeout`` s for a line.

        Returns an empty batch on timeout, or as soon as ``stop()`` is true
        after :meth:`wake`.
        """

        def ready() -> bool:
            return self._last > seq or (stop is not None and stop())

        with self._cond:
            self._cond.wait_for(ready, timeout)
            if stop is not None and stop():
                return []
            return self._after(seq)

    def wake(self) -> None:
        """Make every :meth:`wait_after` re-check its ``stop`` (and call the listeners)."""
        with self._cond:
            self._cond.notify_all()
            listeners = self._listeners
        _notify(listeners)

    def subscribe(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener()`` after every :meth:`append`, :meth:`extend` and :meth:`wake`.

        For a reader that cannot block in :meth:`wait_after` (an ``asyncio``
        loop): the listener runs in the thread that appended, outside the
        buffer's lock, so it must be quick (``loop.call_soon_threadsafe``);
        what it raises is logged and dropped. Returns the function that
        unsubscribes it.
        """

        def unsubscribe() -> None:
            with self._cond:
                self._listeners = tuple(fn for fn in self._listeners if fn is not listener)

        with self._cond:
            self._listeners = (*self._listeners, listener)
        return unsubscribe

    def _first(self) -> int:
        return self._last - len(self._lines) + 1

    def _after(self, seq: int) -> Batch:
        first = self._first()
        start = max(seq + 1, first)
        held = itertools.islice(self._lines, start - first, None)
        return [(start + offset, line) for offset, line in enumerate(held)]


def _notify(listeners: tuple[Callable[[], object], ...]) -> None:
    for listener in listeners:
        try:
            listener()
        except Exception:
            logger.debug("logbuffer: a listener failed", exc_info=True)


def _clean(line: bytes | str) -> bytes | None:
    """A line as the buffer keeps it, or ``None`` for a blank one (see :meth:`LogBuffer.append`)."""
    raw = line.encode() if isinstance(line, str) else bytes(line)
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if b"\n" in raw:
        raise ValueError("a log line must not contain a newline")
    return raw if raw.strip() else None


def wants_sse(accept: str) -> bool:
    """True when an ``Accept`` header prefers Server-Sent Events to NDJSON."""
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        quality[media] = max(quality.get(media, 0.0), q)
    return quality.get(SSE, 0.0) > quality.get(NDJSON, 0.0)


def encode_ndjson(batch: Batch) -> bytes:
    """Lines as an NDJSON body fragment."""
    return b"".join(line + b"\n" for _, line in batch)


def encode_sse(batch: Batch) -> bytes:
    """Lines as Server-Sent Events, each with its number as ``id``.

    SSE ends a field at ``\\r`` too, so a line with a raw ``\\r`` is sent as
    several ``data:`` fields, which a client joins with ``\\n`` (JSON reads
    both as white space; neither can occur raw inside a JSON string).
    """
    parts = []
    for seq, line in batch:
        data = b"".join(b"data: " + piece + b"\n" for piece in line.split(b"\r"))
        parts.append(b"id: %d\n%s\n" % (seq, data))
    return b"".join(parts)


class LogServer:
    """Serves a :class:`LogBuffer` at ``/logs`` on its own threads.

    ``ssl_context`` (a server-side :class:`ssl.SSLContext`) serves https.
    """

    handler_class: type[LogRequestHandler]

    def __init__(
        self,
        buffer: LogBuffer,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat: float = 10.0,
        *,
        path: str = "/logs",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not heartbeat > 0:
            raise ValueError(f"heartbeat must be a positive number of seconds, got {heartbeat!r}")
        self.buffer = buffer
        self.host = host
        self.port = port
        self.heartbeat = heartbeat
        self.path = path
        self.ssl_context = ssl_context
        self.closing = threading.Event()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None
        self.handler_class = LogRequestHandler

    def start(self: _Server) -> _Server:
        """Bind and start serving; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        self._httpd = _Httpd(self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"logserver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Where the logs are, e.g. ``http://127.0.0.1:8080/logs`` (also after close())."""
        if self._thread is None:
            raise RuntimeError("the server is not started")
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.path}"

    def close(self) -> None:
        """End every open stream and stop serving, within about two seconds."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        deadline = time.monotonic() + _CLOSE_DEADLINE
        self.closing.set()
        self.buffer.wake()
        httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        httpd.end_connections(deadline)
        httpd.server_close()

    def __enter__(self: _Server) -> _Server:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._thread is not None else "not started"
        return f"<LogServer {where}>"


class _Httpd(ThreadingHTTPServer):
    """Keeps track of its handler threads and sockets, so close() can end them."""

    daemon_threads = True

    def __init__(self, owner: LogServer) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in owner.host else socket.AF_INET
        self._lock = threading.Lock()
        self._handlers: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()
        super().__init__((owner.host, owner.port), owner.handler_class)

    def process_request(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: object,
    ) -> None:
        assert isinstance(request, socket.socket)
        thread = threading.Thread(
            target=self._serve_one,
            args=(request, client_address),
            name=f"logserver:{self.owner.port}:conn",
            daemon=True,
        )
        with self._lock:
            self._handlers.add(thread)
            self._connections.add(request)
        thread.start()

    def _serve_one(self, request: socket.socket, client_address: object) -> None:
        connection = request
        try:
            request.settimeout(_SOCKET_TIMEOUT)
            if self.owner.ssl_context is not None:
                # The handshake runs here, not in accept(), so one slow client
                # cannot hold up the others.
                connection = self.owner.ssl_context.wrap_socket(request, server_side=True)
                self._swap(request, connection)
            self.finish_request(connection, client_address)
        except (OSError, ValueError) as exc:
            logger.debug("logserver: connection from %s ended: %s", client_address, exc)
        finally:
            self.shutdown_request(connection)
            with self._lock:
                self._connections.discard(connection)
                self._handlers.discard(threading.current_thread())

    def _swap(self, old: socket.socket, new: socket.socket) -> None:
        with self._lock:
            self._connections.discard(old)
            self._connections.add(new)

    def end_connections(self, deadline: float) -> None:
        """Let woken streams finish, then cut the sockets of the rest."""
        self._join(min(deadline, time.monotonic() + _GRACE))
        with self._lock:
            sockets = list(self._connections)
        for sock in sockets:
            _shutdown(sock)
        self._join(deadline)
        with self._lock:
            left = len(self._handlers)
        if left:
            logger.warning("logserver: %d connection thread(s) did not end in time", left)

    def _join(self, deadline: float) -> None:
        with self._lock:
            threads = list(self._handlers)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("logserver: error serving %s", client_address, exc_info=True)


class LogRequestHandler(BaseHTTPRequestHandler):
    """Serves ``GET /logs``. Subclass it and set :attr:`LogServer.handler_class` to vary it.

    The helpers (:meth:`start_stream`, :meth:`send_chunk`, :meth:`end_stream`,
    :meth:`send_plain`) write the protocol's framing.
    """

    protocol_version = "HTTP/1.1"
    server: _Httpd

    @property
    def log_server(self) -> LogServer:
        """The :class:`LogServer` this handler serves for."""
        return self.server.owner

    def do_GET(self) -> None:
        """Answer ``GET``: a stream of the logs, or a plain-text error."""
        owner = self.log_server
        url = urlsplit(self.path)
        if url.path != owner.path:
            self.send_plain(404, f"no such path {url.path!r}; the logs are at {owner.path}")
            return
        try:
            after = resume_point(url.query, self.headers.get("Last-Event-ID"))
        except ValueError as exc:
            self.send_plain(400, str(exc))
            return
        try:
            self.stream_logs(after, wants_sse(self.headers.get("Accept", "")))
        except OSError as exc:
            logger.debug("logserver: stream to %s ended: %s", self.client_address, exc)
        self.close_connection = True

    def stream_logs(self, after: int | None, sse: bool) -> None:
        """Send the lines after ``after`` and then each new one, until the server closes."""
        owner = self.log_server
        buffer = owner.buffer
        held = buffer.first_seq
        first = held if after is None else max(after + 1, held)
        self.start_stream(first, sse)
        encode = encode_sse if sse else encode_ndjson
        heartbeat = b":\n" if sse else b"\n"
        cursor = first - 1
        while True:
            batch = buffer.wait_after(cursor, owner.heartbeat, stop=owner.closing.is_set)
            if owner.closing.is_set():
                break
            if not batch:
                self.send_chunk(heartbeat)
                continue
            if batch[0][0] != cursor + 1:
                break  # see the module docstring: the reconnect reveals the gap
            self.send_chunk(encode(batch))
            cursor = batch[-1][0]
        self.end_stream()

    def start_stream(self, first: int, sse: bool) -> None:
        """The status line and headers of a stream whose first line is ``first``."""
        self.send_response(200)
        self.send_header("Content-Type", SSE if sse else NDJSON)
        self.send_header("Cache-Control", "no-store")
        # Asks a proxy such as nginx not to buffer the stream.
        self.send_header("X-Accel-Buffering", "no")
        self.send_header(FIRST_SEQ_HEADER, str(first))
        # The newest line held now: a client that has read it has read the backlog.
        self.send_header(LAST_SEQ_HEADER, str(self.log_server.buffer.last_seq))
        self.send_header(EPOCH_HEADER, self.log_server.buffer.epoch)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        """One chunk of the chunked body."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        """The terminating chunk: the server ended the stream (not a broken connection)."""
        self.wfile.write(b"0\r\n\r\n")

    def send_plain(self, status: int, message: str) -> None:
        """A complete ``text/plain`` response (errors)."""
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Access lines go to this module's logger at debug level, not to stderr."""
        logger.debug("logserver: %s " + format, self.client_address[0], *args)


def _shutdown(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways, waking the thread blocked on it; never raises.

    The file descriptor stays open (its reader closes it), so it cannot be reused.
    """
    # socket.socket.shutdown even for an SSLSocket: SSLSocket.shutdown() would
    # also drop its TLS object under the feet of the thread still reading.
    # OSError: the peer or the reader got there first; the connection is gone.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def resume_point(query: str, last_event_id: str | None) -> int | None:
    """The ``after`` of a request (or its ``Last-Event-ID``); None for "from the oldest".

    Raises :class:`ValueError` naming the bad value.
    """
    values = parse_qs(query, keep_blank_values=True).get("after", [])
    if len(values) > 1:
        raise ValueError(f"after is given {len(values)} times; give it once")
    if values:
        name, raw = "after", values[0]
    elif last_event_id is not None and last_event_id.strip():
        name, raw = "Last-Event-ID", last_event_id.strip()
    else:
        return None
    if _SEQ.fullmatch(raw) is None:
        raise ValueError(f"bad {name} {raw!r}: expected a line number, an integer >= 0")
    return int(raw)
