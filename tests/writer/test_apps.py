"""The ``/logs`` endpoint as a WSGI app (wsgiref) and an ASGI app (uvicorn), read by the plugin.

A blade writes into a LogBuffer; the app serves it; the plugin's HTTP source
follows it through a Collector. Every line must arrive once, in order,
whether written before the client connected or while it follows.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from livecluster import Blade, LogBuffer
from livecluster.apps import LogsASGIApp, LogsWSGIApp, logs_asgi_app, logs_wsgi_app
from livecluster.logs import EPOCH_HEADER, FIRST_SEQ_HEADER, LAST_SEQ_HEADER, NDJSON, SSE

from pytest_livecluster import State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.sources import parse_specs

from ._support import COUNTERS, PATIENCE, counts, wait_for

TIMEOUT = httpx.Timeout(PATIENCE)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgi_server(app: LogsWSGIApp) -> Iterator[int]:
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        app.close()
        server.shutdown()
        thread.join()
        server.server_close()


@contextmanager
def asgi_server(app: LogsASGIApp) -> Iterator[int]:
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started
        yield sock.getsockname()[1]
    finally:
        app.close()  # ends the open streams, which uvicorn waits for
        server.should_exit = True
        thread.join()
        sock.close()


Server = Callable[[LogBuffer], Any]


def _wsgi(buffer: LogBuffer) -> Any:
    return wsgi_server(logs_wsgi_app(buffer, heartbeat=0.2))


def _asgi(buffer: LogBuffer) -> Any:
    return asgi_server(logs_asgi_app(buffer, heartbeat=0.2))


SERVERS = [pytest.param(_wsgi, id="wsgi"), pytest.param(_asgi, id="asgi")]


@pytest.mark.parametrize("serve", SERVERS)
def test_the_plugin_follows_every_line_once(serve: Server) -> None:
    buffer = LogBuffer(capacity=10_000)
    blade = Blade("scraper-1", buffer=buffer, interval=0.05)
    blade.hello()
    for i in range(500):
        blade.count("i-1", f"site{i % 5}.example", item_sent=1)
    blade.flush()
    with serve(buffer) as port:
        state = State(counters=COUNTERS)
        counts(state)  # the views' projection, before the first line
        collector = Collector(state, parse_specs(f"http://127.0.0.1:{port}/logs")).start()
        try:
            assert collector.wait_caught_up(0.3, timeout=PATIENCE) == []
            for i in range(1500):  # while the plugin follows
                blade.count("i-1", f"site{i % 5}.example", item_sent=1)
                if i % 300 == 0:
                    blade.log(progress=i)
            blade.log(status="done")
            blade.close()
            wait_for(lambda: state.stats().lines >= buffer.last_seq, "every line")
        finally:
            assert collector.close() == []
    held = [line for _, line in buffer.lines_after(0)]
    assert len(held) == buffer.last_seq  # nothing dropped from the buffer
    assert state.stats().lines == len(held)
    assert [entry.raw for entry in state.journal()] == held
    assert state.get("scraper-1", "status") == "done"
    assert counts(state).sent == 2000
    assert counts(state).by_scraper["scraper-1"]["item_sent"] == 2000
    assert not collector.failures


@pytest.mark.parametrize("serve", SERVERS)
def test_the_stream_speaks_the_protocol(serve: Server) -> None:
    buffer = LogBuffer(capacity=10_000)
    for n in range(1, 4):
        buffer.append(f'{{"n":{n}}}')
    with serve(buffer) as port, httpx.Client(timeout=TIMEOUT) as client:
        url = f"http://127.0.0.1:{port}/logs"
        with client.stream("GET", url, params={"after": "1"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == NDJSON
            assert response.headers[FIRST_SEQ_HEADER] == "2"
            assert response.headers[LAST_SEQ_HEADER] == "3"
            assert response.headers[EPOCH_HEADER] == buffer.epoch
            assert _read(response, 3) == [b'{"n":2}', b'{"n":3}', b""]  # then a heartbeat
            buffer.append('{"n":4}')
            assert _lines(response).next_shard() == b'{"n":4}'

        sse = {"Accept": f"{SSE}, {NDJSON};q=0.5", "Last-Event-ID": "2"}
        with client.stream("GET", url, headers=sse) as response:
            assert response.headers["content-type"] == SSE
            assert response.headers[FIRST_SEQ_HEADER] == "3"
            text = b"\n".join(_read(response, 6))
            assert b"id: 3\ndata: " + b'{"n":3}' in text
            assert b"id: 4\ndata: " + b'{"n":4}' in text

        assert client.get(f"http://127.0.0.1:{port}/other").status_code == 404
        assert client.get(url, params={"after": "x"}).status_code == 400
        assert client.post(url).status_code == 405


_READERS: dict[int, _Lines] = {}


def _lines(response: httpx.Response) -> _Lines:
    reader = _READERS.get(id(response))
    if reader is None or reader.response is not response:
        reader = _READERS[id(response)] = _Lines(response)
    return reader


def _read(response: httpx.Response, count: int) -> list[bytes]:
    """The next ``count`` lines of a streamed body (an empty one is a heartbeat)."""
    return _lines(response).take(count)


class _Lines:
    """Reads a streamed body by lines, split on ``\\n`` only."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.iter_raw()
        self._rest = b""

    def take(self, count: int) -> list[bytes]:
        while self._rest.count(b"\n") < count:
            self._rest += next(self._chunks)
        *lines, self._rest = self._rest.split(b"\n", count)
        return lines

    def next_shard(self) -> bytes:
        """The next line that is not a heartbeat."""
        while True:
            (line,) = self.take(1)
            if line:
                return line

    def rest(self) -> bytes:
        """Everything until the body ends."""
        return self._rest + b"".join(self._chunks)


def test_close_ends_open_streams_cleanly() -> None:
    buffer = LogBuffer()
    buffer.append('{"n":1}')
    app = logs_wsgi_app(buffer, heartbeat=30)
    with (
        wsgi_server(app) as port,
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"http://127.0.0.1:{port}/logs") as response,
    ):
        assert _read(response, 1) == [b'{"n":1}']
        app.close()  # with a 30 s heartbeat, only close() ends the wait
        assert _lines(response).rest() == b""  # the body ends, with nothing more


def test_a_buffer_calls_its_listeners_until_they_unsubscribe() -> None:
    buffer = LogBuffer()
    calls: list[int] = []
    unsubscribe = buffer.subscribe(lambda: calls.append(buffer.last_seq))
    buffer.subscribe(lambda: 1 / 0)  # a failing listener is dropped, the others still run
    buffer.append('{"n":1}')
    buffer.extend(['{"n":2}', '{"n":3}'])
    buffer.append("")  # blank: no line, no call
    buffer.wake()
    unsubscribe()
    buffer.append('{"n":4}')
    assert calls == [1, 3, 3]
