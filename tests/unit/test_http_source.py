"""The ``http://…/logs`` source against real servers on 127.0.0.1.

Every case checks the exact lines delivered (each once, in order, with its
sequence number) and what the server saw (the ``after`` and ``Last-Event-ID``
of each request), not only that "something arrived".
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_livecluster import SourceUnavailable, SpecError, State
from pytest_livecluster.core.collector import Collector
from pytest_livecluster.core.ingest import Limits, parse_shard
from pytest_livecluster.protocol.server import NDJSON, SSE, LogBuffer, LogServer
from pytest_livecluster.sources import SourceOptions, parse_specs
from pytest_livecluster.sources.http import HttpSource, _SseEvents
from tests.support import HANG_GUARD, LONG_WAIT, Runner, Tls, make_tls, returns
from tests.support.faultyserver import FaultyServer
from tests.support.hostile import HostileServer, Reply, sse_event

# U+2028, U+2029 and U+0085 are legal raw inside JSON strings and are line
# breaks to str.splitlines(); the others are multi-byte UTF-8 to be split.
ODD = "a\u2028b\u2029c\u0085d é € 😀 \u00a0"

MakeServer = Callable[..., FaultyServer]


def shard(n: int, text: str = "x") -> dict[str, Any]:
    return {"seq": n, "text": text}


def wire(n: int, text: str = "x") -> bytes:
    """The bytes FaultyServer.write sends for ``shard(n, text)``."""
    return json.dumps(shard(n, text), ensure_ascii=False, separators=(",", ":")).encode()


def options(**overrides: Any) -> SourceOptions:
    settings: dict[str, Any] = {"http_read_timeout": 5.0, "reconnect_max_wait": 0.5}
    settings.update(overrides)
    return SourceOptions(**settings)


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    servers: list[FaultyServer] = []

    def make(**kwargs: Any) -> FaultyServer:
        server = FaultyServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server(make_server: MakeServer) -> FaultyServer:
    return make_server()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the plain path ---------------------------------------------------------------------


def test_follows_ndjson_every_line_once_in_order(make_server: MakeServer) -> None:
    server = make_server(heartbeat=LONG_WAIT)
    server.write(shard(1), shard(2), shard(3))
    source = HttpSource(server.url, options(http_read_timeout=LONG_WAIT))
    with Runner(source) as runner:
        runner.wait_lines(3)
        server.write(shard(4), shard(5))
        runner.wait_lines(5)
        assert source.health.state == "attached"
        # close() interrupts the read: nothing else would end it for LONG_WAIT.
        runner.stop(within=HANG_GUARD)
    assert runner.lines == [wire(n) for n in range(1, 6)]
    assert [env.source_seq for _, env in runner.emitted] == [1, 2, 3, 4, 5]
    assert {(env.source, env.stream) for _, env in runner.emitted} == {(server.url, "stdout")}
    assert source.media_type == NDJSON
    assert source.cursor == 5
    health = source.health
    assert (health.state, health.lines, health.reconnects, health.gaps) == ("closed", 5, 0, 0)
    assert health.error_count == 0
    [request] = server.requests
    assert request.after is None
    assert request.headers["accept-encoding"] == "identity"


def test_specs_build_http_sources() -> None:
    plain, tls_source = parse_specs("http://127.0.0.1:9/logs,https://example.test/logs")
    assert isinstance(plain, HttpSource)
    assert isinstance(tls_source, HttpSource)
    assert (plain.id, tls_source.id) == ("http://127.0.0.1:9/logs", "https://example.test/logs")
    with pytest.raises(SpecError, match="write http://HOST:PORT/logs"):
        parse_specs("http://")
    with pytest.raises(SpecError, match="bad source spec 'http://h:99999/logs'"):
        parse_specs("http://h:99999/logs")
    # An unencoded "/" cuts the password into a "port": no part of it may show.
    with pytest.raises(SpecError) as info:
        parse_specs("http://bob:pw9x/s3cret@h/logs")
    assert str(info.value) == "bad source spec 'http://***@h/logs': bad host or port"


# -- pitfalls, test cases 23-25 ---------------------------------------------------------


def test_case23_separators_in_strings_one_byte_per_chunk(make_server: MakeServer) -> None:
    server = make_server(byte_per_chunk=True)
    count = 20
    server.write(*(shard(n, ODD * (n % 3 + 1)) for n in range(1, count + 1)))
    expected = [wire(n, ODD * (n % 3 + 1)) for n in range(1, count + 1)]
    with Runner(HttpSource(server.url, options())) as runner:
        lines = runner.wait_lines(count)
        runner.stop()
    assert lines == expected
    assert [parse_shard(line) for line in lines] == [
        shard(n, ODD * (n % 3 + 1)) for n in range(1, count + 1)
    ]
    assert runner.seqs == list(range(1, count + 1))
    # Every byte of the body (lines and newlines) went out as a chunk of its own.
    assert server.chunks_sent == sum(len(line) + 1 for line in expected)


def test_the_one_byte_fault_reaches_httpx_as_one_byte_chunks(make_server: MakeServer) -> None:
    server = make_server(byte_per_chunk=True)
    server.write(shard(1, ODD))
    expected = wire(1, ODD) + b"\n"
    with httpx.stream("GET", server.url, timeout=5) as response:
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if len(chunks) == len(expected):
                break
    assert b"".join(chunks) == expected
    assert {len(chunk) for chunk in chunks} == {1}


@pytest.mark.parametrize("clean", [False, True], ids=["cut", "orderly-end"])
def test_case24_server_closes_mid_line(server: FaultyServer, clean: bool) -> None:
    server.write(shard(1), shard(2), shard(3, ODD))
    server.inject("close_mid_line", lines=2, clean=clean)
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        runner.wait_lines(3)
        server.write(shard(4))
        runner.wait_lines(4)
        runner.stop()
    assert runner.lines == [wire(1), wire(2), wire(3, ODD), wire(4)]
    assert runner.seqs == [1, 2, 3, 4]
    assert [r.after for r in server.requests] == [None, "2"]
    assert [r.headers.get("last-event-id") for r in server.requests] == [None, "2"]
    assert source.health.reconnects == 1
    half = (len(wire(3, ODD)) + 1) // 2
    [error] = source.health.errors
    ending = "ended the stream" if clean else "connection to .* broke"
    assert f"discarded {half} bytes of an unterminated line" in error
    assert re.search(ending, error), error


def test_case25_stall_then_503_twice_backs_off_and_resumes(server: FaultyServer) -> None:
    server.write(shard(1), shard(2), shard(3))
    server.inject("stall", lines=3, seconds=5)
    server.inject("status", status=503, times=2)
    source = HttpSource(server.url, options(http_read_timeout=0.3))
    with Runner(source) as runner:
        runner.wait_lines(3)
        server.write(shard(4), shard(5), shard(6))
        runner.wait_lines(6)
        runner.stop()
    assert runner.lines == [wire(n) for n in range(1, 7)]
    assert runner.seqs == [1, 2, 3, 4, 5, 6]
    requests = server.requests
    assert [r.after for r in requests] == [None, "3", "3", "3"]
    assert [r.headers.get("last-event-id") for r in requests] == [None, "3", "3", "3"]
    # The stall costs the read timeout; then the backoff doubles between the 503s.
    stall, first_wait, second_wait = (b.at - a.at for a, b in itertools.pairwise(requests))
    assert stall >= 0.3
    assert first_wait >= 0.09
    assert second_wait >= 0.18
    health = source.health
    assert (health.reconnects, health.gaps) == (3, 0)
    errors = list(health.errors)
    assert "read timeout" in errors[0]
    assert [("503 Service Unavailable" in e) for e in errors[1:]] == [True, True]


@pytest.mark.parametrize("status", [408, 425, 429])
def test_try_again_later_statuses_are_retried(server: FaultyServer, status: int) -> None:
    """The statuses of ``pytest_livecluster._retry.RETRYABLE_STATUS``, 425 Too Early included."""
    server.write(shard(1), shard(2))
    server.inject("status", status=status)
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        runner.wait_lines(2)
        runner.stop()
    assert runner.error is None
    assert runner.seqs == [1, 2]
    assert [r.after for r in server.requests] == [None, None]
    assert source.health.reconnects == 1
    [error] = source.health.errors
    assert error.startswith(f"{server.url} answered {status} ")


# -- gaps and repeats -------------------------------------------------------------------


def test_gap_in_log_first_seq_is_reported(server: FaultyServer) -> None:
    server.write(*(shard(n) for n in range(1, 11)))
    server.inject("close_mid_line", lines=3)
    server.inject("gap", skip=4)
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        runner.wait_lines(6)
        runner.stop()
    assert runner.seqs == [1, 2, 3, 8, 9, 10]
    assert runner.lines == [wire(n) for n in (1, 2, 3, 8, 9, 10)]
    assert [r.after for r in server.requests] == [None, "3"]
    assert source.health.gaps == 4
    gap = [e for e in source.health.errors if e.startswith("gap")]
    assert gap == [
        f"gap: 4 line(s) of {server.url} lost; asked for lines after 3, "
        "the server went on with line 8 (lines 4-7 are gone)"
    ]


def test_lines_sent_again_are_skipped(server: FaultyServer) -> None:
    server.write(*(shard(n) for n in range(1, 6)))
    server.inject("close_mid_line", lines=3)
    server.inject("gap", skip=-2)
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        runner.wait_lines(5)
        runner.stop()
    assert runner.seqs == [1, 2, 3, 4, 5]
    assert runner.lines == [wire(n) for n in range(1, 6)]
    assert source.health.gaps == 0
    assert any("sent line 2 again" in e for e in source.health.errors)


def test_logserver_buffer_overflow_while_away_shows_as_gap() -> None:
    buffer = LogBuffer(capacity=3)
    for n in (1, 2):
        buffer.append(wire(n))
    first = LogServer(buffer, heartbeat=0.2).start()
    source = HttpSource(first.url, options())
    with Runner(source) as runner:
        runner.wait_lines(2)
        first.close()
        runner.wait_until(lambda: source.health.state == "reconnecting")
        for n in range(3, 9):
            buffer.append(wire(n))
        with LogServer(buffer, port=first.port, heartbeat=0.2):
            runner.wait_lines(5)
            runner.stop()
    assert runner.seqs == [1, 2, 6, 7, 8]
    assert source.health.gaps == 3


# -- Server-Sent Events -----------------------------------------------------------------


def test_sse_resumes_with_last_event_id(make_server: MakeServer) -> None:
    server = make_server(sse=True)
    server.write(shard(1), shard(2, ODD), shard(3, ODD), shard(4))
    server.inject("close_mid_line", lines=2)
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        runner.wait_lines(4)
        server.write(shard(5))
        runner.wait_lines(5)
        runner.stop()
    assert source.media_type == SSE
    assert runner.lines == [wire(1), wire(2, ODD), wire(3, ODD), wire(4), wire(5)]
    assert runner.seqs == [1, 2, 3, 4, 5]
    assert [r.headers.get("last-event-id") for r in server.requests] == [None, "2"]
    assert [r.after for r in server.requests] == [None, "2"]
    [error] = source.health.errors
    assert "bytes of an unterminated event" in error


def test_sse_from_logserver_when_asked_by_accept_header() -> None:
    buffer = LogBuffer()
    buffer.append(wire(1, ODD))
    with LogServer(buffer, heartbeat=0.05) as server:
        source = HttpSource(server.url, options(http_headers={"Accept": SSE}))
        with Runner(source) as runner:
            runner.wait_lines(1)
            time.sleep(0.2)  # heartbeats (SSE comments) go by and are not lines
            buffer.append(wire(2))
            runner.wait_lines(2)
            runner.stop()
    assert source.media_type == SSE
    assert runner.lines == [wire(1, ODD), wire(2)]
    assert runner.seqs == [1, 2]
    assert source.health.error_count == 0


def _events(data: bytes) -> tuple[list[tuple[int | None, bytes | None]], int]:
    """Parse ``data`` one byte at a time; the events and the bytes left pending."""
    events = _SseEvents(max_bytes=1000)
    items = [item for i in range(len(data)) for item in events.feed(data[i : i + 1])]
    return [(item.seq, item.raw) for item in items], events.pending


def test_sse_parsing_splits_on_cr_lf_crlf_only() -> None:
    odd = ODD.encode()
    data = (
        b": heartbeat\r\n\r\n"
        b'id: 7\r\ndata: {"a":"' + odd + b'"}\r\n\r\n'
        b'id: 8\rdata: {"b":\rdata: 1}\r\r'
        b"event: ignored\nid:9\ndata:{}\n\n"
        b'data: {"no":"id"}\n\n'
        b'id: 11\ndata: {"cut":'
    )
    events, pending = _events(data)
    assert events == [
        (7, b'{"a":"' + odd + b'"}'),
        (8, b'{"b":\n1}'),
        (9, b"{}"),
        (None, b'{"no":"id"}'),
    ]
    assert pending == len(b"id: 11\n" + b'data: {"cut":')


# -- authentication and secrets ---------------------------------------------------------


def test_auth_header_from_env_reaches_server_and_is_never_shown(
    make_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = "Bearer first-s3cr3t-token", "Bearer second-s3cr3t-token"
    monkeypatch.setenv("LIVECLUSTER_TEST_TOKEN", first)
    server = make_server()
    server.write(shard(1))
    # The body echoes the header, as some debugging endpoints do.
    server.inject("status", status=503, body=f"upstream saw Authorization: {first}")
    server.inject("close_mid_line", lines=1)
    source = HttpSource(
        server.url, options(http_headers={"Authorization": "env:LIVECLUSTER_TEST_TOKEN"})
    )
    with Runner(source) as runner:
        runner.wait_lines(1)
        monkeypatch.setenv("LIVECLUSTER_TEST_TOKEN", second)  # read again at each request
        server.write(shard(2))
        runner.wait_lines(2)
        runner.stop()
    assert runner.lines == [wire(1), wire(2)]
    seen = [r.headers["authorization"] for r in server.requests]
    assert seen == [first, first, second]
    assert "upstream saw Authorization: ***" in source.health.errors[0]
    shown = "\n".join(
        [repr(source), str(source.health.as_dict()), *source.health.errors, caplog.text]
    )
    captured = capsys.readouterr()
    for secret in ("first-s3cr3t", "second-s3cr3t"):
        assert secret not in shown
        assert secret not in captured.out + captured.err


def test_secret_echoed_in_a_permanent_error_is_masked(
    server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVECLUSTER_TEST_TOKEN", "hunter2-hunter2")
    server.inject("status", status=401, body="bad token hunter2-hunter2")
    source = HttpSource(server.url, options(http_headers={"X-Token": "env:LIVECLUSTER_TEST_TOKEN"}))
    with pytest.raises(SourceUnavailable) as info:
        source.run(lambda raw, envelope: None)
    assert str(info.value) == f"{server.url} answered 401 Unauthorized: bad token ***"
    assert "hunter2" not in " ".join(source.health.errors)


def test_unset_header_variable_is_a_clear_error(
    server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVECLUSTER_NO_SUCH_VAR", raising=False)
    source = HttpSource(server.url, options(http_headers={"X-Key": "env:LIVECLUSTER_NO_SUCH_VAR"}))
    with pytest.raises(SourceUnavailable, match="LIVECLUSTER_NO_SUCH_VAR, which is not set"):
        source.run(lambda raw, envelope: None)
    assert source.health.state == "failed"
    assert server.requests == []


def test_url_credentials_become_basic_auth_and_leave_the_source_id(
    server: FaultyServer,
) -> None:
    server.write(shard(1))
    url = server.url.replace("http://", "http://reader:pa55-w0rd@") + "?token=t0k3n-value&x=1"
    source = HttpSource(url, options())
    with Runner(source) as runner:
        runner.wait_lines(1)
        runner.stop()
    assert source.id == server.url.replace("http://", "http://***@") + "?token=***&x=1"
    assert runner.emitted[0][1].source == source.id
    [request] = server.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        b"reader:pa55-w0rd"
    ).decode("ascii")
    assert request.query == {"token": ["t0k3n-value"], "x": ["1"]}
    assert "pa55" not in repr(source)


# -- https ------------------------------------------------------------------------------


def test_https_with_a_custom_ca(tls: Tls) -> None:
    buffer = LogBuffer()
    buffer.append(wire(1, ODD))
    with LogServer(buffer, heartbeat=LONG_WAIT, ssl_context=tls.server_context()) as server:
        assert server.url.startswith("https://127.0.0.1:")
        source = HttpSource(server.url, options(http_ca=str(tls.ca), http_read_timeout=LONG_WAIT))
        with Runner(source) as runner:
            runner.wait_lines(1)
            buffer.append(wire(2))
            runner.wait_lines(2)
            runner.stop(within=HANG_GUARD)  # close() interrupts a TLS read as well
    assert runner.lines == [wire(1, ODD), wire(2)]


def test_https_default_verification_rejects_an_unknown_ca(tls: Tls) -> None:
    with LogServer(LogBuffer(), ssl_context=tls.server_context()) as server:
        source = HttpSource(server.url, options())
        # At once, no retry loop: a source retries until closed, so a retry loop would
        # never return; and nothing was counted as a reconnect.
        with pytest.raises(SourceUnavailable) as info:
            returns(lambda: source.run(lambda raw, envelope: None))
    assert source.health.reconnects == 0
    message = str(info.value)
    assert message.startswith(f"the TLS certificate of {server.url} is not trusted: ")
    assert "give its CA bundle with http_ca" in message
    assert source.health.state == "failed"


def test_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    source = HttpSource("https://127.0.0.1:9/logs", options(http_ca=str(missing)))
    with pytest.raises(SourceUnavailable, match=f"cannot load the CA bundle '{missing}'"):
        source.run(lambda raw, envelope: None)


# -- closing ----------------------------------------------------------------------------


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def test_close_during_a_blocking_read_returns_and_leaves_no_thread() -> None:
    """No byte would come for LONG_WAIT (heartbeat and read timeout): run() returning
    within the hang guard means close() cut the read."""
    before = _threads()
    with LogServer(LogBuffer(), heartbeat=LONG_WAIT) as server:
        source = HttpSource(server.url, options(http_read_timeout=LONG_WAIT))
        runner = Runner(source).start()
        runner.wait_until(lambda: source.health.state == "attached")
        time.sleep(0.1)  # well inside iter_bytes(), waiting for a byte
        runner.stop(within=HANG_GUARD)
    assert source.health.state == "closed"
    assert source.health.error_count == 0
    assert _threads() == before


def test_close_while_waiting_for_response_headers(server: FaultyServer) -> None:
    server.inject("stall_headers", seconds=LONG_WAIT)
    source = HttpSource(server.url, options(http_read_timeout=LONG_WAIT))
    runner = Runner(source).start()
    server.wait_for_requests(1)
    time.sleep(0.1)
    runner.stop(within=HANG_GUARD)  # the headers would not come for LONG_WAIT
    assert source.health.state == "closed"
    assert len(server.requests) == 1


def test_close_during_backoff(server: FaultyServer) -> None:
    """After the first 503 the source waits LONG_WAIT before it retries: run() returning
    within the hang guard, with no second request, means close() cut the wait."""
    server.inject("status", status=503, times=1000)
    source = HttpSource(server.url, options(reconnect_max_wait=LONG_WAIT))
    source.first_wait = LONG_WAIT
    runner = Runner(source).start()
    runner.wait_until(lambda: source.health.reconnects >= 1)  # now waiting LONG_WAIT
    runner.stop(within=HANG_GUARD)
    assert len(server.requests) == 1


def test_close_before_run_makes_no_request(server: FaultyServer) -> None:
    source = HttpSource(server.url, options())
    source.close()
    source.run(lambda raw, envelope: None)
    assert server.requests == []
    assert source.health.state == "closed"


# -- failures ---------------------------------------------------------------------------


def test_404_is_permanent_and_names_the_url() -> None:
    with LogServer(LogBuffer()) as server:
        url = server.url.replace("/logs", "/nope")
        source = HttpSource(url, options())
        with pytest.raises(SourceUnavailable) as info:
            source.run(lambda raw, envelope: None)
    assert str(info.value) == (
        f"{url} answered 404 Not Found: no such path '/nope'; the logs are at /logs"
    )
    assert source.health.state == "failed"
    assert source.health.reconnects == 0


def test_refused_at_first_keeps_trying_until_the_service_is_up() -> None:
    port = _free_port()
    buffer = LogBuffer()
    buffer.append(wire(1))
    source = HttpSource(f"http://127.0.0.1:{port}/logs", options(reconnect_max_wait=0.2))
    with Runner(source) as runner:
        runner.wait_until(lambda: source.health.reconnects >= 2)
        assert source.health.state == "reconnecting"
        assert "Connection refused" in source.health.errors[0]
        with LogServer(buffer, port=port):
            runner.wait_lines(1)
            assert source.health.state == "attached"
            runner.stop()
    assert runner.lines == [wire(1)]


def test_too_long_line_is_cut_to_stay_too_long_and_counted(server: FaultyServer) -> None:
    """Its first limit + 1 bytes go on: ingest counts it as too_large, a recording keeps it."""
    server.write(shard(1), shard(2, "y" * 300), shard(3))
    source = HttpSource(server.url, options(max_line_bytes=100))
    with Runner(source) as runner:
        runner.wait_lines(3)
        server.write(shard(4))
        runner.wait_lines(4)
        runner.stop()
    assert runner.seqs == [1, 2, 3, 4]
    assert runner.lines[1] == wire(2, "y" * 300)[:101]
    assert [source.health.errors[0]] == [
        f"{server.url}: line 2 has {len(wire(2, 'y' * 300))} bytes, more than the limit "
        "of 100; kept its first 101 bytes, counted as too large"
    ]


class _Busy:
    """Appends a line to ``buffer`` every ``every`` seconds until stopped."""

    def __init__(self, buffer: LogBuffer, every: float = 0.01) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(buffer, every), daemon=True)

    def _run(self, buffer: LogBuffer, every: float) -> None:
        n = 0
        while not self.stop.wait(every):
            n += 1
            buffer.append(json.dumps({"live": n}))

    def __enter__(self) -> _Busy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class _NoLastSeq(LogServer):
    """A server of the protocol's older revision: no ``Log-Last-Seq``."""

    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__(buffer, heartbeat=0.5)
        base = self.handler_class

        class Handler(base):  # type: ignore[valid-type,misc]
            def send_header(self, keyword: str, value: str) -> None:
                if keyword != "Log-Last-Seq":
                    super().send_header(keyword, value)

        self.handler_class = Handler


def test_a_busy_server_is_caught_up_once_its_backlog_is_read() -> None:
    buffer = LogBuffer(capacity=20_000)
    for n in range(1, 5001):
        buffer.append(json.dumps({"backlog": n}))
    with LogServer(buffer, heartbeat=0.5).start() as logserver, _Busy(buffer):
        state = State()
        with Collector(state, [HttpSource(logserver.url, options())]) as collector:
            # Only Log-Last-Seq can say so: LONG_WAIT of quiet cannot come within the
            # HANG_GUARD, and never from a busy server.
            behind = collector.wait_caught_up(LONG_WAIT, timeout=HANG_GUARD)
            backlog_read = state.get("backlog")
        assert behind == []
        assert backlog_read == 5000  # the whole backlog, at the moment it said so


def test_without_log_last_seq_a_busy_server_is_never_quiet_enough() -> None:
    buffer = LogBuffer()
    buffer.append(json.dumps({"backlog": 1}))
    with _NoLastSeq(buffer).start() as logserver:
        source = HttpSource(logserver.url, options())
        with Collector(State(), [source]) as collector:
            with _Busy(buffer, every=0.05):
                assert collector.wait_caught_up(0.3, timeout=1.5) == [logserver.url]
            # Once it pauses, the quiet rule says it has read what there was.
            assert collector.wait_caught_up(0.3, timeout=5) == []


# -- hostile servers (tests.support.hostile) ----------------------------------------------


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileServer]]:
    started: list[HostileServer] = []

    def make(*replies: Reply) -> HostileServer:
        server = HostileServer(*replies).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


def test_a_redirect_to_another_origin_is_not_followed(
    hostile: Callable[..., HostileServer],
) -> None:
    """Secret headers must not reach another origin, nor its lines count as ours."""
    other = hostile(Reply.ndjson(b'{"other": 1}\n', headers={"Log-First-Seq": "1"}, hold=60))
    first = hostile(Reply.redirect(other.url + "?x=1"))
    headers = {"X-Api-Key": "REDIR-Kq81-secret", "PRIVATE-TOKEN": "REDIR-Pz55-secret"}
    source = HttpSource(first.url, options(http_headers=headers))
    with Runner(source) as runner:
        error = runner.wait_done(HANG_GUARD)
    assert isinstance(error, SourceUnavailable)
    assert runner.lines == []
    assert other.requests == []
    assert first.origin in str(error)
    assert other.origin in str(error)
    assert "?x=1" not in str(error)
    assert source.health.state == "failed"


def test_a_redirect_within_the_origin_is_followed_with_the_headers(
    hostile: Callable[..., HostileServer],
) -> None:
    server = hostile(
        Reply.redirect("/logs2"),
        Reply.ndjson(b'{"here": 1}\n', headers={"Log-First-Seq": "1"}, hold=60),
    )
    source = HttpSource(server.url, options(http_headers={"X-Api-Key": "SAME-Wd19-secret"}))
    with Runner(source) as runner:
        assert runner.wait_lines(1) == [b'{"here": 1}']
        runner.stop()
    assert [r.path for r in server.requests[:2]] == ["/logs", "/logs2"]
    assert server.requests[1].headers["x-api-key"] == "SAME-Wd19-secret"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (header, value)
        for header in ("Log-Last-Seq", "Log-First-Seq", "Log-Epoch")
        for value in ("\u00b2", "9" * 5000, "-3", "1e5")
        # Any short printable epoch is valid.
        if not (header == "Log-Epoch" and value in ("-3", "1e5"))
    ],
)
def test_a_malformed_optional_header_is_noted_and_ignored(
    hostile: Callable[..., HostileServer], header: str, value: str
) -> None:
    headers = {header: value}
    if header != "Log-First-Seq":
        headers["Log-First-Seq"] = "1"
    server = hostile(Reply.ndjson(b'{"a": 1}\n{"a": 2}\n', headers=headers, hold=60))
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        assert runner.wait_lines(2) == [b'{"a": 1}', b'{"a": 2}']
        runner.stop()
    assert runner.seqs == [1, 2]
    assert any(header in e and "ignored" in e for e in source.health.errors)
    assert source.health.state != "failed"


def test_an_over_long_line_is_kept_truncated_and_counted_as_too_large(
    hostile: Callable[..., HostileServer],
) -> None:
    big = b'{"big": "' + b"y" * 2_000_000 + b'"}'
    body = b'{"a": 1}\n' + big + b'\n{"a": 3}\n'
    server = hostile(Reply.ndjson(body, headers={"Log-First-Seq": "1"}, chunk=65536, hold=60))
    # The plugin gives the state and the source the same limit (livecluster_max_line_bytes).
    state = State(limits=Limits(max_line_bytes=1000))
    source = HttpSource(server.url, options(max_line_bytes=1000))
    collector = Collector(state, [source]).start()
    try:
        deadline = time.monotonic() + HANG_GUARD
        while state.stats().lines < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        collector.close()
    stats = state.stats()
    assert stats.lines == 3
    assert stats.accepted == 2
    assert stats.rejected == {"too_large": 1}
    assert any("2000011 bytes" in e for e in source.health.errors)


@pytest.mark.parametrize("sse", [False, True])
def test_framers_keep_the_head_of_an_over_long_line(sse: bool) -> None:
    from pytest_livecluster.sources.http import _NdjsonLines

    framer = _SseEvents(100) if sse else _NdjsonLines(100)
    data = (b"data: " if sse else b"") + b"z" * 500 + (b"\n\n" if sse else b"\n")
    items = [item for i in range(0, len(data), 7) for item in framer.feed(data[i : i + 7])]
    assert len(items) == 1
    assert items[0].raw == b"z" * 101
    assert items[0].size > 100


def test_sse_events_without_an_id_after_a_stale_id_are_not_skipped(
    hostile: Callable[..., HostileServer],
) -> None:
    server = hostile(
        Reply.sse(
            sse_event('{"n": 1}', 1),
            sse_event('{"n": 2}', 2),
            sse_event('{"n": 3}', 3),
            sse_event('{"stale": 1}', 1),
            sse_event('{"n": 4}'),
            sse_event('{"n": 5}'),
            hold=60,
        )
    )
    source = HttpSource(server.url, options())
    with Runner(source) as runner:
        lines = runner.wait_lines(5)
        runner.stop()
    assert lines == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}', b'{"n": 4}', b'{"n": 5}']
    assert runner.seqs == [1, 2, 3, 4, 5]
    assert any("id 1" in e and "skipped" in e for e in source.health.errors)


def test_an_error_body_echoing_credentials_is_masked(
    hostile: Callable[..., HostileServer],
) -> None:
    """Masked before the excerpt is cut: no start of a secret shows at the cut (200)."""
    basic = base64.b64encode(b"bob:ECHO-Hn44-password").decode()
    body = ("x" * 191 + f" ECHO-Hn44-password Authorization: Basic {basic}").encode()
    server = hostile(Reply(403, {"Content-Type": "text/plain"}, body))
    source = HttpSource(server.url_with("bob:ECHO-Hn44-password"), options())
    with Runner(source) as runner:
        error = runner.wait_done(HANG_GUARD)
    assert isinstance(error, SourceUnavailable)
    text = str(error) + " ".join(source.health.errors)
    assert "403" in text
    assert "ECHO-Hn4" not in text
    assert basic[:12] not in text
