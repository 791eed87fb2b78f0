"""The ``/logs`` endpoint as one object to mount in a web application: WSGI or ASGI.

For a service that already runs a web server, instead of a
:class:`~livecluster.logs.LogServer` on a port of its own::

    from livecluster import Blade, LogBuffer
    from livecluster.apps import logs_asgi_app, logs_wsgi_app

    buffer = LogBuffer(capacity=10_000)
    blade = Blade("scraper-1", stream=sys.stdout, buffer=buffer)  # stdout and /logs alike

    logs = logs_wsgi_app(buffer)   # Flask, Django...: mount it at /logs
    logs = logs_asgi_app(buffer)   # Starlette, FastAPI...: app.mount("/logs", logs)
    ...
    logs.close()                   # ends the open streams (before stopping the server)

Both serve the protocol of :mod:`livecluster.logs` exactly as
:class:`~livecluster.logs.LogServer` does: ``GET /logs?after=N`` streams NDJSON
with ``Log-First-Seq``, ``Log-Last-Seq`` and ``Log-Epoch``, Server-Sent Events
when ``Accept`` prefers ``text/event-stream`` (resuming with
``Last-Event-ID``), an empty line (SSE: ``:``) as a heartbeat every
``heartbeat`` seconds of quiet, and the end of the stream when lines a client
still needed were dropped from the buffer. A request for another path gets
``404`` (``path=None`` serves every path, for a router that already chose),
one with another method ``405``, a bad ``after`` ``400``.

The framing is the server's: an HTTP/1.1 server sends the stream chunked (as
gunicorn, waitress, uvicorn and hypercorn do). ``wsgiref`` answers HTTP/1.0, so
the body ends with the connection; clients never apply an unterminated line,
so that is safe too.

**WSGI**: each open stream holds one of the server's threads (or greenlets)
for as long as the client reads, so serve it with a threaded server, e.g.
``socketserver.ThreadingMixIn`` with ``wsgiref.simple_server.WSGIServer``.

**ASGI**: streams wait on the event loop, no thread each: the buffer calls the
app back when a line is appended (:meth:`LogBuffer.subscribe`). An ASGI server
usually waits for open responses before it stops, so call :meth:`close` (also
done at the lifespan's shutdown) first; uvicorn's ``timeout_graceful_shutdown``
bounds that wait too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Iterable, Iterator, MutableMapping
from typing import Any, Callable

from .logs import (
    EPOCH_HEADER,
    FIRST_SEQ_HEADER,
    LAST_SEQ_HEADER,
    NDJSON,
    SSE,
    Batch,
    LogBuffer,
    encode_ndjson,
    encode_sse,
    resume_point,
    wants_sse,
)

__all__ = ["LogsASGIApp", "LogsWSGIApp", "logs_asgi_app", "logs_wsgi_app", "stream_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]


def stream_headers(buffer: LogBuffer, first: int, sse: bool) -> list[tuple[str, str]]:
    """The headers of a stream whose first line is ``first`` (without the framing ones)."""
    return [
        ("Content-Type", SSE if sse else NDJSON),
        ("Cache-Control", "no-store"),
        # Asks a proxy such as nginx not to buffer the stream.
        ("X-Accel-Buffering", "no"),
        (FIRST_SEQ_HEADER, str(first)),
        # The newest line held now: a client that has read it has read the backlog.
        (LAST_SEQ_HEADER, str(buffer.last_seq)),
        (EPOCH_HEADER, buffer.epoch),
    ]


class _Request:
    """What both apps decide from a request before streaming: an error, or where to start."""

    status = 200
    message = ""
    first = 0
    sse = False


class _App:
    def __init__(
        self, buffer: LogBuffer, *, heartbeat: float = 10.0, path: str | None = "/logs"
    ) -> None:
        if not heartbeat > 0:
            raise ValueError(f"heartbeat must be a positive number of seconds, got {heartbeat!r}")
        #: The lines served.
        self.buffer = buffer
        #: Seconds of quiet after which a stream sends a heartbeat.
        self.heartbeat = heartbeat
        #: The path served (``None``: any).
        self.path = path
        #: Set by :meth:`close`: every stream ends.
        self.closing = threading.Event()

    def close(self) -> None:
        """End every open stream (cleanly, with the end of its body) and every later one."""
        self.closing.set()
        self.buffer.wake()

    def _decide(
        self, method: str, paths: Iterable[str], query: str, accept: str, last_id: str | None
    ) -> _Request:
        request = _Request()
        if self.path is not None and self.path not in paths:
            request.status = 404
            request.message = f"no such path; the logs are at {self.path}"
        elif method not in ("GET",):
            request.status = 405
            request.message = f"method {method} is not allowed; use GET"
        else:
            try:
                after = resume_point(query, last_id)
            except ValueError as exc:
                request.status = 400
                request.message = str(exc)
                return request
            held = self.buffer.first_seq
            request.first = held if after is None else max(after + 1, held)
            request.sse = wants_sse(accept)
        return request


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class LogsWSGIApp(_App):
    """A WSGI application serving ``buffer`` at ``path`` (see the module's docstring).

    :param heartbeat: seconds of quiet after which a stream sends an empty line.
    :param path: the path it answers (``None``: any path it is given).
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        script = environ.get("SCRIPT_NAME", "")
        info = environ.get("PATH_INFO", "")
        request = self._decide(
            environ.get("REQUEST_METHOD", "GET"),
            (info, script + info),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT", ""),
            environ.get("HTTP_LAST_EVENT_ID"),
        )
        if request.status != 200:
            body = (request.message + "\n").encode()
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ]
            if request.status == 405:
                headers.append(("Allow", "GET"))
            start_response(f"{request.status} {_REASONS[request.status]}", headers)
            return [body]
        start_response("200 OK", stream_headers(self.buffer, request.first, request.sse))
        return self._stream(request.first, request.sse)

    def _stream(self, first: int, sse: bool) -> Iterator[bytes]:
        encode = encode_sse if sse else encode_ndjson
        heartbeat = b":\n" if sse else b"\n"
        cursor = first - 1
        # A server sends the headers with the first piece of the body: a heartbeat
        # at once lets the client see the response start without waiting for a line.
        if self.buffer.last_seq <= cursor:
            yield heartbeat
        while True:
            batch = self.buffer.wait_after(cursor, self.heartbeat, stop=self.closing.is_set)
            if self.closing.is_set():
                return
            if not batch:
                yield heartbeat
                continue
            if batch[0][0] != cursor + 1:
                return  # a gap: the client's reconnect shows it in Log-First-Seq
            yield encode(batch)
            cursor = batch[-1][0]


class LogsASGIApp(_App):
    """An ASGI application serving ``buffer`` at ``path`` (see the module's docstring).

    :param heartbeat: seconds of quiet after which a stream sends an empty line.
    :param path: the path it answers (``None``: any path it is given).

    It also answers the lifespan protocol: its shutdown calls :meth:`close`.
    """

    def __init__(
        self, buffer: LogBuffer, *, heartbeat: float = 10.0, path: str | None = "/logs"
    ) -> None:
        super().__init__(buffer, heartbeat=heartbeat, path=path)
        self._lock = threading.Lock()
        self._wakers: set[Callable[[], None]] = set()

    def close(self) -> None:
        super().close()
        with self._lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise ValueError(f"the /logs app serves HTTP, not {kind!r}")
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = bytes(name).decode("latin-1").lower()
            text = bytes(value).decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        path = scope.get("path", "")
        request = self._decide(
            scope.get("method", "GET"),
            (path, scope.get("root_path", "") + path),
            bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers.get("accept", ""),
            headers.get("last-event-id"),
        )
        if request.status != 200:
            body = (request.message + "\n").encode()
            plain = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            if request.status == 405:
                plain.append((b"allow", b"GET"))
            await send({"type": "http.response.start", "status": request.status, "headers": plain})
            await send({"type": "http.response.body", "body": body})
            return
        await self._stream(request, receive, send)

    async def _stream(self, request: _Request, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        gone = False

        def wake_up() -> None:  # from any thread
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)

        async def watch() -> None:
            nonlocal gone
            try:
                while (await receive()).get("type") != "http.disconnect":
                    pass
            except Exception:  # the server gave up on the request: so do we
                pass
            gone = True
            wake.set()

        unsubscribe = self.buffer.subscribe(wake_up)
        with self._lock:
            self._wakers.add(wake_up)
        watcher = asyncio.ensure_future(watch())
        encode = encode_sse if request.sse else encode_ndjson
        heartbeat = b":\n" if request.sse else b"\n"
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in stream_headers(self.buffer, request.first, request.sse)
        ]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            cursor = request.first - 1
            while not gone and not self.closing.is_set():
                batch: Batch = self.buffer.lines_after(cursor)
                if batch:
                    if batch[0][0] != cursor + 1:
                        break  # a gap: the client's reconnect shows it in Log-First-Seq
                    await send(_body(encode(batch)))
                    cursor = batch[-1][0]
                    continue
                wake.clear()
                if self.buffer.last_seq > cursor:
                    continue  # appended between the look and the clear
                try:
                    await asyncio.wait_for(wake.wait(), self.heartbeat)
                except asyncio.TimeoutError:
                    await send(_body(heartbeat))
            if not gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we wrote
        finally:
            unsubscribe()
            with self._lock:
                self._wakers.discard(wake_up)
            watcher.cancel()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _body(data: bytes) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


def logs_wsgi_app(
    buffer: LogBuffer, *, heartbeat: float = 10.0, path: str | None = "/logs"
) -> LogsWSGIApp:
    """A WSGI application that serves ``buffer``'s lines by the ``/logs`` protocol."""
    return LogsWSGIApp(buffer, heartbeat=heartbeat, path=path)


def logs_asgi_app(
    buffer: LogBuffer, *, heartbeat: float = 10.0, path: str | None = "/logs"
) -> LogsASGIApp:
    """An ASGI application that serves ``buffer``'s lines by the ``/logs`` protocol."""
    return LogsASGIApp(buffer, heartbeat=heartbeat, path=path)
