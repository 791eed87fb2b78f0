"""Alert delivery against hostile receivers: real loopback servers that trickle
their answer one byte per second, and target URLs with a query or a fragment."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_livecluster.alerts.delivery import Delivery, deliver
from pytest_livecluster.alerts.model import Alert
from pytest_livecluster.alerts.targets import parse_target
from tests.support.receiver import Receiver

#: Far beyond any budget these tests give, far below the 39 s / 100 s of the failure.
HANG_GUARD = 20.0


class Trickler:
    """A loopback HTTP server that answers every request one byte per second.

    ``what="body"``: complete headers promising 100 bytes, then the body byte by
    byte; ``what="header"``: a status line, then a header that never ends.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.stop = threading.Event()
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> Trickler:
        self._accepting.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            self.requests += 1
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                if self.what == "body":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
                while not self.stop.wait(1.0):
                    conn.sendall(b"a")
            except OSError:
                return


def alert() -> Alert:
    labels = {"alertname": "LiveTestFailed", "test": "t"}
    return Alert(labels, {}, "firing", dt.datetime.now(dt.UTC), key="k")


def deliver_guarded(url: str, budget: float) -> Delivery:
    """``deliver`` in a thread, failing (not hanging) if it outlives the guard."""
    results: list[Delivery] = []
    worker = threading.Thread(
        target=lambda: results.append(
            deliver(parse_target(f"webhook+{url}"), [alert()], cluster="", link=None, budget=budget)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(HANG_GUARD)
    assert not worker.is_alive(), (
        f"delivery with a {budget} s budget still ran after {HANG_GUARD} s"
    )
    return results[0]


@pytest.mark.parametrize("what", ["body", "header"])
def test_a_trickling_receiver_is_cut_at_the_deadline(what: str) -> None:
    with Trickler(what) as server:
        result = deliver_guarded(server.url + "/hook", budget=2.0)
    assert server.requests >= 1
    assert not result.ok
    assert result.error is not None
    assert "deadline" in result.error
    assert "deadline" in result.line()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rec:
        yield rec


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        ("/?token=x", "/api/v2/alerts?token=x"),
        ("?token=x", "/api/v2/alerts?token=x"),
        ("/am/?token=x#frag", "/am/api/v2/alerts?token=x"),
        ("/#frag", "/api/v2/alerts"),
        ("/am", "/am/api/v2/alerts"),
    ],
)
def test_alertmanager_api_path_goes_before_the_query(
    receiver: Receiver, suffix: str, path: str
) -> None:
    target = parse_target(f"alertmanager+{receiver.url}{suffix}")
    result = deliver(target, [alert()], cluster="", link=None, budget=5.0)
    assert result.ok, result.line()
    (request,) = receiver.wait_for(1)
    assert (request.method, request.path) == ("POST", path)
    assert isinstance(request.json, list)
    assert request.json[0]["labels"]["test"] == "t"


DAMAGED_DATE = "0001-01-01T00:00:00+23:59"  # a valid ISO date, but before year 1 in UTC


def test_a_ledger_entry_with_an_impossible_date_is_reported_and_replaced(
    pytester: pytest.Pytester, receiver: Receiver
) -> None:
    """A run that finds it says so, drops the entry, fires anew and saves a sane ledger."""
    pytester.makepyfile(test_failing="def test_failing(cluster):\n    assert False\n")
    (pytester.path / "shards.ndjson").write_text('{"blade": {"msg": "Hello World"}}\n')
    labels = {"alertname": "LiveTestFailing", "test": "test_failing.py::test_failing"}
    damaged = {"labels": labels, "since": DAMAGED_DATE, "failures": 3, "firing": True}
    ledger = pytester.path / "ledger.json"
    ledger.write_text(json.dumps({"ledger_version": 1, "alerts": {"k": damaged}}))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--live-cluster=file:shards.ndjson",
        f"--live-alert=webhook+{receiver.url}/hook",
        f"--live-alert-ledger={ledger}",
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "OverflowError" not in output
    result.assert_outcomes(failed=1)
    assert f"alert ledger {ledger}: 1 damaged entry dropped" in output
    fired = [a for body in receiver.bodies() for a in body["alerts"]]
    assert [(a["status"], a["labels"]["test"]) for a in fired] == [
        ("firing", "test_failing.py::test_failing")
    ]
    saved = json.loads(ledger.read_text())["alerts"]
    assert [entry["since"] for entry in saved.values()] != [DAMAGED_DATE]
    assert all(entry["since"].startswith("20") for entry in saved.values())


@pytest.mark.parametrize(
    "since", [DAMAGED_DATE, "9999-12-31T23:59:59-23:59", "2026-01-01T00:00:00", "soon"]
)
def test_a_damaged_entry_is_dropped_and_the_others_kept(tmp_path: Path, since: str) -> None:
    from pytest_livecluster.alerts.ledger import Ledger

    good = {"labels": {"alertname": "A"}, "since": "2026-01-01T00:00:00Z", "firing": True}
    bad = {"labels": {"alertname": "B"}, "since": since, "firing": True}
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"ledger_version": 1, "alerts": {"a": good, "b": bad}}))
    ledger = Ledger(path)
    assert [e.labels["alertname"] for e in ledger.entries.values()] == ["A"]
    assert ledger.load_error is not None
    assert ledger.load_error.startswith(f"alert ledger {path}: 1 damaged entry dropped ('b': ")
    ledger.save()
    assert Ledger(path).load_error is None
