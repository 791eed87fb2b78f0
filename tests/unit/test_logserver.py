"""The server side of the ``/logs`` protocol: LogBuffer and LogServer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from pytest_livecluster.protocol.server import (
    FIRST_SEQ_HEADER,
    NDJSON,
    SSE,
    LogBuffer,
    LogRequestHandler,
    LogServer,
    encode_sse,
    resume_point,
    wants_sse,
)
from tests.support import HANG_GUARD, returns

TIMEOUT = httpx.Timeout(5.0)


def _filled(count: int, capacity: int = 100) -> LogBuffer:
    buffer = LogBuffer(capacity)
    for n in range(1, count + 1):
        buffer.append(f'{{"n":{n}}}')
    return buffer


def _line(n: int) -> bytes:
    return b'{"n":%d}' % n


@pytest.fixture
def buffer() -> LogBuffer:
    return _filled(5)


@pytest.fixture
def server(buffer: LogBuffer) -> Iterator[LogServer]:
    with LogServer(buffer, heartbeat=0.05) as server:
        yield server


class _Reader:
    """Reads a streaming response by lines (heartbeats included) or by chunks."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes()
        self._rest = b""

    def lines(self, count: int) -> list[bytes]:
        while self._rest.count(b"\n") < count:
            self._rest += next(self._chunks)
        *lines, self._rest = self._rest.split(b"\n", count)
        return lines

    def chunk(self) -> bytes:
        assert not self._rest
        return next(self._chunks)


# -- LogBuffer ---------------------------------------------------------------------------


def test_buffer_numbers_lines_and_drops_the_oldest() -> None:
    buffer = LogBuffer(capacity=3)
    assert (buffer.first_seq, buffer.last_seq) == (1, 0)
    assert [buffer.append(_line(n)) for n in range(1, 6)] == [1, 2, 3, 4, 5]
    assert (buffer.first_seq, buffer.last_seq) == (3, 5)
    assert buffer.lines_after(0) == [(3, _line(3)), (4, _line(4)), (5, _line(5))]
    assert buffer.lines_after(3) == [(4, _line(4)), (5, _line(5))]
    assert buffer.lines_after(5) == []


def test_buffer_append_normalises_and_refuses() -> None:
    buffer = LogBuffer()
    assert buffer.append('{"a":"é\u2028"}\r\n') == 1
    assert buffer.append(b"  \n") is None  # would read as a heartbeat
    assert buffer.append("") is None
    with pytest.raises(ValueError, match="must not contain a newline"):
        buffer.append(b'{"a":1}\n{"b":2}')
    assert buffer.lines_after(0) == [(1, '{"a":"é\u2028"}'.encode())]
    with pytest.raises(ValueError, match="capacity must be a positive integer, got 0"):
        LogBuffer(0)


def test_wait_after_wakes_on_append_without_polling() -> None:
    buffer = LogBuffer()
    woke: list[float] = []

    def waiter() -> None:
        batch = buffer.wait_after(0, timeout=5.0)
        woke.append(time.monotonic())
        assert batch == [(1, _line(1))]

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)
    appended = time.monotonic()
    buffer.append(_line(1))
    thread.join(2)
    assert woke
    assert woke[0] - appended < 0.5


def test_wait_after_returns_on_stop_and_wake() -> None:
    buffer = LogBuffer()
    stop = threading.Event()
    result: list[list[tuple[int, bytes]]] = []
    thread = threading.Thread(target=lambda: result.append(buffer.wait_after(0, 5.0, stop.is_set)))
    thread.start()
    time.sleep(0.05)
    stop.set()
    buffer.wake()
    thread.join(1)
    assert result == [[]]


# -- negotiation and parameters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "sse"),
    [
        ("", False),
        ("*/*", False),
        (SSE, True),
        (f"{NDJSON}, {SSE};q=0.9", False),
        (f"{NDJSON};q=0.5, {SSE}", True),
        (f"{SSE}, {NDJSON}", False),
        ("text/event-stream;q=bad", False),
    ],
)
def test_wants_sse(accept: str, sse: bool) -> None:
    assert wants_sse(accept) is sse


@pytest.mark.parametrize(
    ("query", "last_event_id", "after"),
    [
        ("", None, None),
        ("after=0", None, 0),
        ("after=7", "3", 7),
        ("", " 3 ", 3),
        ("x=1", "", None),
    ],
)
def test_resume_point(query: str, last_event_id: str | None, after: int | None) -> None:
    assert resume_point(query, last_event_id) == after


def test_sse_encoding_keeps_separators_and_splits_raw_cr() -> None:
    assert encode_sse([(4, '{"a":"\u2028"}'.encode()), (5, b'{"b":1}\r')]) == (
        b'id: 4\ndata: {"a":"\xe2\x80\xa8"}\n\nid: 5\ndata: {"b":1}\ndata: \n\n'
    )


# -- LogServer over HTTP -----------------------------------------------------------------


def test_after_starts_with_the_next_line(server: LogServer) -> None:
    with httpx.stream("GET", server.url + "?after=2", timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == NDJSON
        assert response.headers[FIRST_SEQ_HEADER] == "3"
        assert response.headers["transfer-encoding"] == "chunked"
        assert _Reader(response).lines(3) == [_line(3), _line(4), _line(5)]


def test_without_after_from_the_oldest_line_and_new_lines_follow(
    server: LogServer, buffer: LogBuffer
) -> None:
    with httpx.stream("GET", server.url, timeout=TIMEOUT) as response:
        assert response.headers[FIRST_SEQ_HEADER] == "1"
        reader = _Reader(response)
        assert reader.lines(5) == [_line(n) for n in range(1, 6)]
        buffer.append(_line(6))
        while (line := reader.lines(1)[0]) == b"":
            pass  # a heartbeat
        assert line == _line(6)


def test_dropped_lines_show_in_log_first_seq() -> None:
    buffer = _filled(5, capacity=3)
    with (
        LogServer(buffer) as server,
        httpx.stream("GET", server.url + "?after=1", timeout=TIMEOUT) as response,
    ):
        assert response.headers[FIRST_SEQ_HEADER] == "3"
        assert _Reader(response).lines(3) == [_line(3), _line(4), _line(5)]


def test_client_ahead_waits_for_its_next_line(server: LogServer, buffer: LogBuffer) -> None:
    with httpx.stream("GET", server.url + "?after=6", timeout=TIMEOUT) as response:
        assert response.headers[FIRST_SEQ_HEADER] == "7"
        reader = _Reader(response)
        buffer.append(_line(6))
        buffer.append(_line(7))
        while (line := reader.lines(1)[0]) == b"":
            pass  # a heartbeat
        assert line == _line(7)


def test_heartbeats_when_idle(buffer: LogBuffer) -> None:
    with (
        LogServer(buffer, heartbeat=0.05) as server,
        httpx.stream("GET", server.url + "?after=5", timeout=TIMEOUT) as response,
    ):
        started = time.monotonic()
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if len(chunks) == 3:
                break
    assert chunks == [b"\n"] * 3
    assert time.monotonic() - started >= 0.1


def test_sse_with_last_event_id(server: LogServer) -> None:
    headers = {"Accept": SSE, "Last-Event-ID": "3"}
    with httpx.stream("GET", server.url, headers=headers, timeout=TIMEOUT) as response:
        assert response.headers["content-type"] == SSE
        assert response.headers[FIRST_SEQ_HEADER] == "4"
        reader = _Reader(response)
        lines = reader.lines(6)
        chunks = [reader.chunk(), reader.chunk()]
    assert lines == [b"id: 4", b"data: " + _line(4), b"", b"id: 5", b"data: " + _line(5), b""]
    assert chunks == [b":\n", b":\n"]  # SSE heartbeats are comments


@pytest.mark.parametrize(
    ("target", "headers", "status", "message"),
    [
        ("/logs?after=x", {}, 400, "bad after 'x': expected a line number, an integer >= 0"),
        ("/logs?after=-1", {}, 400, "bad after '-1'"),
        ("/logs?after=1&after=2", {}, 400, "after is given 2 times; give it once"),
        ("/logs", {"Last-Event-ID": "abc"}, 400, "bad Last-Event-ID 'abc'"),
        ("/other", {}, 404, "no such path '/other'; the logs are at /logs"),
    ],
)
def test_bad_requests(
    server: LogServer, target: str, headers: dict[str, str], status: int, message: str
) -> None:
    response = httpx.get(server.url.replace("/logs", target), headers=headers, timeout=TIMEOUT)
    assert response.status_code == status
    assert message in response.text


def test_lines_dropped_under_a_connected_client_end_its_stream() -> None:
    sending, release = threading.Event(), threading.Event()

    class Held(LogRequestHandler):
        """Holds the first batch of lines until the test has overfilled the buffer."""

        def send_chunk(self, data: bytes) -> None:
            if data.strip() and not release.is_set():
                sending.set()
                release.wait(5)
            super().send_chunk(data)

    buffer = LogBuffer(capacity=2)
    buffer.append(_line(1))
    server = LogServer(buffer)
    server.handler_class = Held
    with server, httpx.Client(timeout=TIMEOUT) as client:
        with client.stream("GET", server.url) as response:
            assert sending.wait(5)  # line 1 is on its way
            for n in (2, 3, 4):
                buffer.append(_line(n))  # line 2 falls out before it was sent
            release.set()
            body = response.read()  # the body ends instead of skipping from 1 to 3
        with client.stream("GET", server.url + "?after=1") as again:
            first_seq = again.headers[FIRST_SEQ_HEADER]
    assert body == _line(1) + b"\n"
    assert first_seq == "3"


def test_close_ends_streams_and_threads_within_two_seconds(buffer: LogBuffer) -> None:
    before = set(threading.enumerate())
    server = LogServer(buffer, heartbeat=30.0).start()
    outcomes: list[int | httpx.HTTPError] = []

    def follow(headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", server.url, headers=headers, timeout=TIMEOUT) as response:
                outcomes.append(sum(len(chunk) for chunk in response.iter_bytes()))
        except httpx.HTTPError as exc:  # pragma: no cover - reported by the assertion
            outcomes.append(exc)

    readers = [threading.Thread(target=follow, args=(h,)) for h in ({}, {"Accept": SSE})]
    for reader in readers:
        reader.start()
    idle = socket.create_connection(("127.0.0.1", server.port))  # never sends a request
    time.sleep(0.2)
    returns(server.close)  # an idle connection does not hold the server open
    for reader in readers:
        reader.join(HANG_GUARD)
        assert not reader.is_alive()
    idle.close()
    ndjson = sum(len(_line(n)) + 1 for n in range(1, 6))
    sse = len(encode_sse([(n, _line(n)) for n in range(1, 6)]))
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    assert sorted(outcomes) == sorted([ndjson, sse])  # type: ignore[type-var]
    assert set(threading.enumerate()) == before
