"""``http://HOST:PORT/logs`` and ``https://…``: follow a bare service's ``/logs`` endpoint.

The protocol is the one :mod:`pytest_livecluster.protocol.server` serves: NDJSON
lines numbered from ``Log-First-Seq``, or Server-Sent Events whose ``id`` is
the number. The source keeps a cursor (the number of the last line it
delivered) and resumes from it with ``after=`` and ``Last-Event-ID``, so a
reconnect neither repeats nor skips a line; lines the server no longer holds
are reported as a gap in :attr:`~.base.SourceHealth.gaps` and its errors.

A restarted service numbers its lines from 1 again. When the server sends the
optional ``Log-Epoch`` header, the source remembers it; a reconnect that shows
another epoch means a new log, so the source drops that response unread,
forgets its cursor and reconnects at once without ``after`` (counted in
``reconnects``, noted in the errors). Without the header nothing changes: a
resume then waits for the line after the cursor, which a restarted server only
reaches later.

Framing is done on bytes: lines end at ``\\n`` only (for SSE at ``\\r\\n``,
``\\r`` or ``\\n``, as the SSE format says), never at the other characters
``str.splitlines`` knows, which are legal inside JSON strings. Neither httpx's
``iter_lines()`` nor httpx-sse is used: the first splits on U+2028, U+0085 and
friends, and the second decodes text with replacement characters (an invalid
UTF-8 line would reach ingest altered instead of being rejected) and cannot say
how much of an unfinished event it dropped. A line or event cut off by the end
of a response is never delivered; its size goes into an error.

Failures:

- a dropped connection, a read timeout (``options.http_read_timeout``, which
  must exceed the server's heartbeat interval), a body that ended early, 5xx,
  408, 425 and 429 are retried with exponential backoff (the one policy of
  :mod:`pytest_livecluster._retry`, up to ``options.reconnect_max_wait``); the
  backoff starts again once a connection delivered a line;
- a refused connection is retried the same way, since the service may still be
  starting;
- other 4xx, an untrusted TLS certificate, a missing CA bundle or a header whose
  environment variable is unset raise :class:`~..exceptions.SourceUnavailable`.

:meth:`HttpSource.close` interrupts a blocked read by shutting the
connection's socket down from the calling thread (the socket is captured
through httpcore's ``trace`` extension as soon as it is connected), so
:meth:`HttpSource.run` returns at once. Only a TCP connect or TLS handshake in
progress is not interrupted; it is bounded by the connect timeout
(:data:`CONNECT_TIMEOUT`, or the read timeout if shorter).

Header values from ``options.http_headers`` (``env:NAME`` reads the variable
at request time), the password in the URL and its secret-looking query values
are secrets: they are never put into messages, health or reprs, and are masked
in text a server sends back (all by :mod:`pytest_livecluster._secrets`).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import httpx
import tenacity

from .. import _sockets
from .._retry import Retryable, retryable_http_error, retryable_status, retrying
from .._secrets import header_value, origin, redact_url, remember_url, scrub
from ..core.ingest import Envelope
from ..core.source import Emit, Source, SourceOptions, SourceState
from ..exceptions import ConfigError, SourceUnavailable, SpecError
from ..protocol.server import EPOCH_HEADER, FIRST_SEQ_HEADER, LAST_SEQ_HEADER, NDJSON, SSE

__all__ = ["CONNECT_TIMEOUT", "HttpSource"]

CONNECT_TIMEOUT: Final = 5.0
ACCEPT: Final = f"{NDJSON}, {SSE};q=0.9"

_SEQ: Final = re.compile(rb"[0-9]{1,18}")
_EPOCH_MAX: Final = 128
_EPOCH: Final = re.compile(rf"[!-~]{{1,{_EPOCH_MAX}}}")
_HEADER_SHOWN: Final = 20
_HEARTBEATS: Final = (b"", b"\r")
_EXCERPT: Final = 200
_EXCERPT_READ: Final = 4096
_SOCKET_EVENTS: Final = ("connection.connect_tcp.complete", "connection.start_tls.complete")


@dataclass(frozen=True, slots=True)
class _Item:
    """One line from the wire.

    ``seq`` is the server's number for it (an SSE ``id``), or None for "the
    one after the previous"; ``size`` is its length. A line longer than the
    limit keeps only its first ``limit + 1`` bytes in ``raw``: still too long,
    so ingest counts it as ``too_large`` and the recording keeps its start.
    """

    seq: int | None
    raw: bytes
    size: int


class _Framer(Protocol):
    def feed(self, chunk: bytes) -> list[_Item]: ...

    @property
    def pending(self) -> int: ...


class HttpSource(Source):
    """Follows one ``/logs`` endpoint until closed."""

    #: Seconds before the first retry; doubles up to ``options.reconnect_max_wait``.
    first_wait: float = 0.1

    def __init__(self, url: str, options: SourceOptions | None = None) -> None:
        parts = _split(url)
        super().__init__(redact_url(url))
        self.options = options or SourceOptions()
        self._url = httpx.URL(urlunsplit(parts._replace(netloc=_host_part(parts.netloc))))
        self._auth = _basic_auth(parts.username, parts.password)
        remember_url(url)
        #: What the server answered with last: NDJSON or SSE (None before that).
        self.media_type: str | None = None
        self._cursor: int | None = None
        self._next = 1
        # The server's Log-Last-Seq when first attached: the end of the backlog.
        self._backlog_end: int | None = None
        self._taken = 0
        self._repeats_reported = False
        self._epoch: str | None = None
        # Set when a new epoch was seen: reconnect without the backoff.
        self._restarted = False
        # The socket in use, handed from run()'s thread to close()'s.
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: str, options: SourceOptions) -> HttpSource:
        return cls(spec, options)

    @property
    def cursor(self) -> int | None:
        """The number of the last line received, or of the line before the first one a
        response announced; ``after=`` asks for the lines after it. None before any.
        """
        return self._cursor

    def run(self, emit: Emit) -> None:
        try:
            with self._client() as client:
                while not self.closed:
                    self._retrying()(self._attempt, client, emit)
        except SourceUnavailable as exc:
            self.health.state = SourceState.FAILED
            self.health.attached = 0
            self.health.error(str(exc))
            raise
        self.health.state = SourceState.CLOSED
        self.health.attached = 0

    def close(self) -> None:
        super().close()
        with self._lock:
            sock = self._socket
        if sock is not None:
            _sockets.shutdown(sock)

    # -- one connection ---------------------------------------------------------------

    def _attempt(self, client: httpx.Client, emit: Emit) -> None:
        if self.closed:
            return
        before = self._taken
        reason = self._follow(client, emit)
        if self.closed:
            return
        self.health.state = SourceState.RECONNECTING
        self.health.attached = 0
        self.health.reconnects += 1
        self.health.error(self._scrub(reason))
        restarted, self._restarted = self._restarted, False
        if self._taken == before and not restarted:
            raise Retryable(reason)
        # This connection delivered lines or found a new log: reconnect at once,
        # with a fresh backoff.

    def _follow(self, client: httpx.Client, emit: Emit) -> str:
        """Stream one response; return why it ended, or raise SourceUnavailable."""
        try:
            with client.stream(
                "GET", self._request_url(), headers=self._headers(), extensions=self._trace_ext()
            ) as response:
                problem = self._check(response) or self._new_epoch(response)
                return problem if problem is not None else self._read(response, emit)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return self._transport_problem(exc)
        finally:
            with self._lock:
                self._socket = None

    def _check(self, response: httpx.Response) -> str | None:
        """None for a 200; the problem for a status worth retrying; raise for the rest."""
        status = response.status_code
        if status == 200:
            return None
        excerpt = self._scrub(_excerpt(response))[:_EXCERPT]
        message = f"{self.id} answered {status} {response.reason_phrase}"
        if excerpt:
            message += f": {excerpt}"
        if retryable_status(status):
            return message
        raise self._unavailable(message)

    def _seq_header(self, response: httpx.Response, name: str) -> int | None:
        """An optional sequence-number header: None when absent, or noted and None when
        it is not 1 to 18 ASCII digits (``\u00b2`` is a digit to ``str.isdigit``)."""
        text = response.headers.get(name)
        if text is None:
            return None
        raw = text.strip().encode("utf-8", "replace")
        if _SEQ.fullmatch(raw):
            return int(raw)
        self.health.error(
            f"{self.id} sent a {name} header that is not a sequence number "
            f"({_header_excerpt(text)}); ignored"
        )
        return None

    def _new_epoch(self, response: httpx.Response) -> str | None:
        """None to read the response; why to drop it when the server's log is a new one."""
        epoch = response.headers.get(EPOCH_HEADER)
        if epoch is not None and not _EPOCH.fullmatch(epoch):
            self.health.error(
                f"{self.id} sent a {EPOCH_HEADER} header that is not 1 to "
                f"{_EPOCH_MAX} printable ASCII characters ({_header_excerpt(epoch)}); ignored"
            )
            epoch = None
        known, self._epoch = self._epoch, epoch or self._epoch
        if epoch is None or known is None or epoch == known or self._cursor is None:
            return None
        # Asked with after=cursor, the new log would answer from line cursor+1.
        self._cursor = None
        self._next = 1
        self._backlog_end = None
        self._restarted = True
        return f"{self.id} restarted (epoch changed); reading its new log from the start"

    def _read(self, response: httpx.Response, emit: Emit) -> str:
        sse = _media_type(response) == SSE
        self.media_type = SSE if sse else NDJSON
        framer: _Framer = _SseEvents(self._max) if sse else _NdjsonLines(self._max)
        self._attached(response, sse)
        try:
            for chunk in response.iter_bytes():
                for item in framer.feed(chunk):
                    self._take(item, emit)
            reason = f"{self.id} ended the stream"
        except httpx.HTTPError as exc:
            reason = self._describe(exc)
        if framer.pending:
            what = "event" if sse else "line"
            reason += f"; discarded {framer.pending} bytes of an unterminated {what}"
        return reason

    def caught_up(self, quiet: float) -> bool:
        """Read up to the ``Log-Last-Seq`` the server named, or (without one) quiet."""
        backlog = self._backlog_end
        attached = self.health.state is SourceState.ATTACHED
        if attached and backlog is not None and (self._cursor or 0) >= backlog:
            return True
        return super().caught_up(quiet)

    def _attached(self, response: httpx.Response, sse: bool) -> None:
        self.health.state = SourceState.ATTACHED
        self.health.attached = 1
        self._repeats_reported = False
        if self._backlog_end is None:
            self._backlog_end = self._seq_header(response, LAST_SEQ_HEADER)
        first = self._seq_header(response, FIRST_SEQ_HEADER)
        if first is None:
            if not sse and FIRST_SEQ_HEADER not in response.headers:
                self.health.error(
                    f"{self.id} sent no valid {FIRST_SEQ_HEADER} header; "
                    "numbering its lines from the cursor"
                )
            self._next = 1 if self._cursor is None else self._cursor + 1
            return
        if self._cursor is None:
            self._cursor = first - 1
        elif first > self._cursor + 1:
            self._gap(first)
            self._cursor = first - 1
        self._next = first

    # -- lines ------------------------------------------------------------------------

    def _take(self, item: _Item, emit: Emit) -> None:
        cursor = self._cursor
        if item.seq is not None and cursor is not None and item.seq <= cursor:
            # A stale SSE id: skip that event, and go on numbering events without
            # an id from the last line taken, not from the stale id.
            self._next = cursor + 1
            self.health.error(
                f"{self.id} sent an event with id {item.seq}, at or before line {cursor} "
                f"already received; skipped that event ({item.size} bytes)"
            )
            return
        seq = item.seq if item.seq is not None else self._next
        self._next = seq + 1
        if cursor is not None and seq <= cursor:
            self._repeated(seq)
            return
        if cursor is not None and seq > cursor + 1:
            self._gap(seq)
        self._cursor = seq
        self._taken += 1
        if item.size > self._max:
            # Handed on still too long: ingest counts it as too_large and records its start.
            self.health.error(
                f"{self.id}: line {seq} has {item.size} bytes, more than the limit of "
                f"{self._max}; kept its first {len(item.raw)} bytes, counted as too large"
            )
        self.health.line(item.raw)
        emit(item.raw, Envelope(self.id, "stdout", source_seq=seq))

    def _gap(self, seq: int) -> None:
        cursor = self._cursor or 0
        missing = seq - cursor - 1
        self.health.gaps += missing
        self.health.error(
            f"gap: {missing} line(s) of {self.id} lost; asked for lines after {cursor}, "
            f"the server went on with line {seq} (lines {cursor + 1}-{seq - 1} are gone)"
        )

    def _repeated(self, seq: int) -> None:
        if not self._repeats_reported:
            self._repeats_reported = True
            self.health.error(
                f"{self.id} sent line {seq} again (already have up to {self._cursor}); "
                "skipping repeated lines"
            )

    # -- requests ---------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        read = self.options.http_read_timeout
        return httpx.Client(
            verify=self._tls(),
            timeout=httpx.Timeout(read, connect=min(read, CONNECT_TIMEOUT)),
            # A fresh connection per request: every socket passes through the
            # trace hook, so close() can always reach the one in use.
            limits=httpx.Limits(max_keepalive_connections=0),
            # Followed only within the origin (see _refuse_other_origins): the
            # configured headers are secrets for this service alone.
            follow_redirects=True,
            auth=self._auth,
            event_hooks={"request": [self._refuse_other_origins]},
        )

    def _refuse_other_origins(self, request: httpx.Request) -> None:
        """Called before every request, redirects included: stop one leaving the origin."""
        if _origin_of(request.url) != _origin_of(self._url):
            raise self._unavailable(
                f"{_shown_origin(self._url)} redirected to another origin, "
                f"{_shown_origin(request.url)}; not following it (the source's headers "
                "and credentials are for its own origin only)"
            )

    def _tls(self) -> ssl.SSLContext | bool:
        ca = self.options.http_ca
        if ca is None:
            return True
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            message = f"cannot load the CA bundle {ca!r} for {self.id}: {detail}"
            raise self._unavailable(message) from None

    def _request_url(self) -> httpx.URL:
        if self._cursor is None:
            return self._url
        return self._url.copy_set_param("after", str(self._cursor))

    def _headers(self) -> httpx.Headers:
        # Compression in between would hold lines back until its buffer fills.
        headers = httpx.Headers(
            {"Accept": ACCEPT, "Accept-Encoding": "identity", "Cache-Control": "no-store"}
        )
        for name, value in self.options.http_headers.items():
            headers[name] = self._header_value(name, value)
        if self._cursor is not None:
            headers["Last-Event-ID"] = str(self._cursor)
        return headers

    def _header_value(self, name: str, value: str) -> str:
        try:
            return header_value(name, value, what=f"header {name!r} for {self.id}")
        except ConfigError as exc:
            raise self._unavailable(str(exc)) from None

    def _trace_ext(self) -> dict[str, Any]:
        return {"trace": self._trace}

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event not in _SOCKET_EVENTS:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._socket = sock
        if self.closed:  # close() ran before the socket was known
            _sockets.shutdown(sock)

    # -- errors -----------------------------------------------------------------------

    def _transport_problem(self, exc: httpx.HTTPError | httpx.InvalidURL) -> str:
        """Describe a failure before the response; raise if retrying cannot help."""
        verify = _cert_error(exc)
        if verify is not None:
            hint = "give its CA bundle with http_ca" if self.options.http_ca is None else ""
            raise self._unavailable(
                f"the TLS certificate of {self.id} is not trusted: "
                f"{verify.verify_message or verify}" + (f"; {hint}" if hint else "")
            )
        if not retryable_http_error(exc):
            raise self._unavailable(f"cannot follow {self.id}: {self._describe(exc)}")
        return self._describe(exc)

    def _describe(self, exc: httpx.HTTPError | httpx.InvalidURL) -> str:
        if isinstance(exc, httpx.ReadTimeout):
            return f"no data from {self.id} for {self.options.http_read_timeout} s (read timeout)"
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connecting to {self.id} timed out"
        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect to {self.id}: {exc}"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"the connection to {self.id} broke: {exc}"
        return f"{type(exc).__name__} from {self.id}: {exc}"

    def _unavailable(self, message: str) -> SourceUnavailable:
        return SourceUnavailable(self._scrub(message))

    def _scrub(self, text: str) -> str:
        return scrub(text)

    @property
    def _max(self) -> int:
        return self.options.max_line_bytes

    def _retrying(self) -> tenacity.Retrying:
        # No budget: a source retries until it is closed (close() also ends a wait).
        return retrying(
            first_wait=self.first_wait,
            max_wait=self.options.reconnect_max_wait,
            closed=self._closed,
        )


# -- framing ------------------------------------------------------------------------------


class _Splitter:
    """Cuts a byte stream into lines at ``\\n``, holding back the unfinished rest.

    With ``sse`` it first turns ``\\r\\n`` and a lone ``\\r`` into ``\\n`` (also
    a ``\\r\\n`` split across two chunks). Each line comes out as ``(bytes,
    size)``. A line longer than ``max_bytes`` keeps only its first ``keep``
    bytes while it arrives (so a server that never sends a newline cannot
    exhaust memory); ``size`` is then its full length.
    """

    def __init__(self, max_bytes: int, *, sse: bool = False, keep: int | None = None) -> None:
        self._max = max_bytes
        self._keep = max(keep if keep is not None else max_bytes + 1, max_bytes + 1)
        self._sse = sse
        self._buf = bytearray()
        self._head = b""
        self._skipped: int | None = None
        self._after_cr = False

    @property
    def pending(self) -> int:
        return len(self._buf) + (self._skipped or 0)

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        if self._sse:
            chunk = self._normalize(chunk)
        out: list[tuple[bytes, int]] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            out.append(self._finish(chunk[start:end]))
            start = end + 1
        self._hold(chunk[start:])
        return out

    def _normalize(self, chunk: bytes) -> bytes:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _finish(self, piece: bytes) -> tuple[bytes, int]:
        if self._skipped is not None:
            size, self._skipped = self._skipped + len(piece), None
            return self._head + piece[: self._keep - len(self._head)], size
        if self._buf:
            self._buf += piece
            line = bytes(self._buf)
            self._buf.clear()
        else:
            line = piece
        return (line[: self._keep] if len(line) > self._max else line), len(line)

    def _hold(self, rest: bytes) -> None:
        if self._skipped is not None:
            self._skipped += len(rest)
            if len(self._head) < self._keep:
                self._head += rest[: self._keep - len(self._head)]
            return
        self._buf += rest
        if len(self._buf) > self._max:
            self._skipped = len(self._buf)
            self._head = bytes(self._buf[: self._keep])
            self._buf.clear()


class _NdjsonLines:
    """NDJSON: one line per item; empty lines are heartbeats."""

    def __init__(self, max_bytes: int) -> None:
        self._lines = _Splitter(max_bytes)

    @property
    def pending(self) -> int:
        return self._lines.pending

    def feed(self, chunk: bytes) -> list[_Item]:
        return [
            _Item(None, line, size)
            for line, size in self._lines.feed(chunk)
            if line not in _HEARTBEATS
        ]


class _SseEvents:
    """Server-Sent Events: one item per event with data; ``id`` is its number.

    Comments (heartbeats), ``event`` and ``retry`` are ignored; several
    ``data`` fields are joined with ``\\n``, as the SSE format says.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        # An over-long "data: " line keeps enough for max_bytes + 1 bytes of its value.
        self._lines = _Splitter(max_bytes, sse=True, keep=max_bytes + 1 + len(b"data: "))
        self._data: list[bytes] = []
        self._size = 0
        self._dropped = 0  # the size of an over-long event's data, 0 for none
        self._head = b""  # its first max_bytes + 1 bytes
        self._id: int | None = None
        self._taken = 0  # bytes of the event so far, for the "discarded" count

    @property
    def pending(self) -> int:
        return self._lines.pending + self._taken

    def feed(self, chunk: bytes) -> list[_Item]:
        out: list[_Item] = []
        for line, size in self._lines.feed(chunk):
            if not line:
                self._dispatch(out)
            elif not line.startswith(b":"):
                self._field(line, size)
                self._taken += size + 1
        return out

    def _field(self, line: bytes, size: int) -> None:
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"id":
            self._id = int(value) if size <= self._max and _SEQ.fullmatch(value) else None
        elif name == b"data":
            # size - len(line): the bytes of an over-long line that were not kept.
            value_size = len(value) + size - len(line)
            if self._dropped:
                self._dropped += value_size + 1
                return
            self._data.append(value)
            self._size += value_size + 1
            if self._size - 1 > self._max:  # the joined data is too long
                self._head = b"\n".join(self._data)[: self._max + 1]
                self._dropped = self._size - 1
                self._data.clear()
                self._size = 0

    def _dispatch(self, out: list[_Item]) -> None:
        if self._dropped:
            out.append(_Item(self._id, self._head, self._dropped))
        elif self._data:
            data = b"\n".join(self._data)
            out.append(_Item(self._id, data, len(data)))
        self._data.clear()
        self._size = self._dropped = self._taken = 0
        self._head = b""
        self._id = None


# -- helpers ------------------------------------------------------------------------------


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError as exc:  # a bad port or IPv6 address
        raise SpecError(f"bad source spec {redact_url(url)!r}: {_url_problem(exc)}") from None
    if not usable:
        raise SpecError(
            f"bad source spec {redact_url(url)!r}: write http://HOST:PORT/logs or https://…"
        )
    return parts


def _url_problem(exc: ValueError) -> str:
    # urlsplit's other messages quote the netloc or port, which may be part of
    # a password written with an unencoded "/" (user:pa/ss@host).
    text = str(exc)
    return text if text.startswith(("Port out of range", "Invalid IPv6")) else "bad host or port"


def _host_part(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def _basic_auth(username: str | None, password: str | None) -> httpx.BasicAuth | None:
    if username is None and password is None:
        return None
    return httpx.BasicAuth(unquote(username or ""), unquote(password or ""))


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower()


def _header_excerpt(text: str) -> str:
    """A header value for a message: escaped, and its start only."""
    shown = ascii(text[:_HEADER_SHOWN])
    return shown + (
        f" and {len(text) - _HEADER_SHOWN} more characters" if len(text) > _HEADER_SHOWN else ""
    )


def _origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _shown_origin(url: httpx.URL) -> str:
    return origin(str(url)) or f"{url.scheme}://…"


def _excerpt(response: httpx.Response) -> str:
    """The start of an error body, on one line."""
    # Read more than is shown: the caller masks secrets first, then cuts to _EXCERPT.
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= _EXCERPT_READ:
                break
    except httpx.HTTPError:
        pass
    return " ".join(data[:_EXCERPT_READ].decode("utf-8", "replace").split())


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
