"""The alert-test harness, and what a real Alertmanager (0.25) does that alerting relies on.

Every test runs its own Alertmanager (``group_by: ['...']``, ``group_wait: 0s``,
``group_interval: 1s``, ``repeat_interval: 4h``, ``send_resolved: true``) in front
of its own :class:`Receiver`, and posts alerts with plain httpx to
``/api/v2/alerts``. The assertions record Alertmanager's observed behaviour:

* a new firing alert is notified at once (group_wait 0s), exactly once;
* re-posting the same labels (new annotations, same startsAt) only updates the
  stored alert: no new notification before repeat_interval;
* ``endsAt`` <= now resolves it: one "resolved" notification at the group's next
  group_interval tick, and from the moment it is posted the alert is no longer
  listed by ``GET /api/v2/alerts``, whatever the filters;
* a future ``endsAt`` keeps it active until then, and then Alertmanager resolves
  it by itself (no post needed);
* in a notification a firing alert's ``endsAt`` is always the zero time
  ``0001-01-01T00:00:00Z``, even when the poster gave one;
* the API shows times to the millisecond, notifications to the nanosecond.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support import HANG_GUARD, LONG_WAIT
from tests.support.alertmanager import Alertmanager, require_alertmanager
from tests.support.receiver import Receiver

ZERO_TIME = "0001-01-01T00:00:00Z"
GROUP_INTERVAL = 1.0  # seconds, the harness's default
# A "resolved"/re-check notification comes on the group's next tick, about a second
# after the post. It is awaited for HANG_GUARD seconds: no loaded machine is that
# slow, and the other ways it could come (resolve_timeout 5m, repeat_interval 4h)
# are far later. How soon it comes is not asserted.
# Long enough to contain a group_interval tick, for "nothing more arrives" checks.
QUIET = GROUP_INTERVAL + 0.2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _close_to(text: str, moment: dt.datetime, within: float = 0.002) -> bool:
    return abs((_parse(text) - moment).total_seconds()) <= within


def _post(am: Alertmanager, *alerts: dict[str, Any]) -> None:
    response = httpx.post(am.url + "/api/v2/alerts", json=list(alerts), timeout=5.0)
    assert response.status_code == 200, response.text


def _quiet(receiver: Receiver, count: int, seconds: float) -> None:
    """Nothing more arrives within ``seconds``: still exactly ``count`` requests."""
    time.sleep(seconds)
    got = receiver.requests
    assert len(got) == count, [(r.at, r.json) for r in got[count:]]


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true after {timeout} s: {check}"
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def am(receiver: Receiver) -> Iterator[Alertmanager]:
    binary = require_alertmanager()
    with Alertmanager(receiver, binary=binary) as am:
        yield am


def test_firing_alert_is_listed_and_notified_once(am: Alertmanager, receiver: Receiver) -> None:
    labels = {"alertname": "HarnessFiring", "severity": "page", "job": "api"}
    started = _now()
    _post(
        am,
        {
            "labels": labels,
            "annotations": {"summary": "first"},
            "startsAt": _iso(started),
            "generatorURL": "http://livecluster.test/graph",
        },
    )
    returned = _now()

    [listed] = am.alerts()
    assert listed["labels"] == labels
    assert listed["annotations"] == {"summary": "first"}
    assert listed["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert listed["receivers"] == [{"name": "webhook"}]
    assert listed["generatorURL"] == "http://livecluster.test/graph"
    assert _close_to(listed["startsAt"], started)
    # No endsAt given: Alertmanager sets now + resolve_timeout (5m) in its store, "now"
    # being when the post came: between the moment before it and the moment it returned.
    resolve = dt.timedelta(minutes=5)
    ms = dt.timedelta(milliseconds=1)  # the API's precision
    assert started + resolve - ms <= _parse(listed["endsAt"]) <= returned + resolve + ms
    assert am.alerts(filter=['alertname="HarnessFiring"']) == [listed]
    assert am.alerts(filter=['alertname="Other"']) == []

    [request] = receiver.wait_for(1)  # at once: see test_a_new_group_is_notified_at_once
    assert (request.method, request.path) == ("POST", "/am")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Alertmanager/")
    notification = request.json
    group_key = '{}:{alertname="HarnessFiring", job="api", severity="page"}'
    assert notification == {
        "version": "4",
        "receiver": "webhook",
        "status": "firing",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": {"summary": "first"},
        "externalURL": notification["externalURL"],  # http://<hostname>:<port>
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "first"},
                "startsAt": notification["alerts"][0]["startsAt"],
                "endsAt": ZERO_TIME,
                "generatorURL": "http://livecluster.test/graph",
                "fingerprint": listed["fingerprint"],
            }
        ],
    }
    assert _close_to(notification["alerts"][0]["startsAt"], started, within=1e-6)
    assert notification["externalURL"].endswith(f":{am.port}")

    _quiet(receiver, 1, QUIET)


def test_a_new_group_is_notified_at_once() -> None:
    """group_wait 0s: a new group's first notification goes out at once, not on a
    group_interval tick. Here group_interval is LONG_WAIT, and Alertmanager's own default
    group_wait is 30 s, so one that came within 10 s came at once."""
    binary = require_alertmanager()
    with (
        Receiver() as receiver,
        Alertmanager(receiver, binary=binary, group_interval=f"{LONG_WAIT:g}s") as am,
    ):
        _post(am, {"labels": {"alertname": "HarnessAtOnce"}, "startsAt": _iso(_now())})
        [request] = receiver.wait_for(1, timeout=10)
        assert request.json["status"] == "firing"


def test_reposting_the_same_labels_sends_nothing_new(am: Alertmanager, receiver: Receiver) -> None:
    labels = {"alertname": "HarnessRepost"}
    started = _now()
    _post(am, {"labels": labels, "annotations": {"n": "0"}, "startsAt": _iso(started)})
    receiver.wait_for(1)
    [first] = am.alerts()

    # Several group_interval ticks see the same alert again: deduplicated.
    for n in range(1, 5):
        time.sleep(0.5)
        _post(am, {"labels": labels, "annotations": {"n": str(n)}, "startsAt": _iso(started)})
    _quiet(receiver, 1, QUIET)

    # The stored alert is merged: latest annotations, same startsAt and fingerprint.
    [listed] = am.alerts()
    assert listed["annotations"] == {"n": "4"}
    assert listed["startsAt"] == first["startsAt"]
    assert listed["fingerprint"] == first["fingerprint"]
    assert _parse(listed["updatedAt"]) > _parse(first["updatedAt"])
    assert _parse(listed["endsAt"]) > _parse(first["endsAt"])  # resolve_timeout from now
    assert listed["status"]["state"] == "active"
    assert receiver.bodies()[0]["alerts"][0]["annotations"] == {"n": "0"}


def test_ends_at_now_resolves(am: Alertmanager, receiver: Receiver) -> None:
    labels = {"alertname": "HarnessResolve"}
    started = _now()
    alert = {"labels": labels, "annotations": {"summary": "up"}, "startsAt": _iso(started)}
    _post(am, alert)
    receiver.wait_for(1)

    ended = _now()
    _post(am, {**alert, "annotations": {"summary": "down"}, "endsAt": _iso(ended)})
    # Gone from the API at once (before the notification), under every filter:
    # GET /api/v2/alerts never lists an alert whose endsAt has passed.
    assert am.alerts() == []
    everything = {"active": True, "silenced": True, "inhibited": True, "unprocessed": True}
    assert am.alerts(**everything) == []
    assert am.alerts(active=False) == []
    assert am.alerts(filter=['alertname="HarnessResolve"']) == []

    requests = receiver.wait_for(2, timeout=HANG_GUARD)  # on the next group_interval tick
    resolved = requests[1].json
    assert resolved["status"] == "resolved"
    assert resolved["groupKey"] == requests[0].json["groupKey"]
    assert resolved["commonAnnotations"] == {"summary": "down"}
    [item] = resolved["alerts"]
    assert item["status"] == "resolved"
    assert item["labels"] == labels
    assert item["annotations"] == {"summary": "down"}  # the resolving post's
    assert item["generatorURL"] == ""  # the resolving post had none
    assert _close_to(item["startsAt"], started, within=1e-6)
    assert _close_to(item["endsAt"], ended, within=1e-6)

    _quiet(receiver, 2, QUIET)  # resolved is sent once
    assert am.alerts() == []

    # Firing again (same labels, new startsAt): a new firing notification, on the
    # group's next tick (its aggregation group still exists, so not at once).
    _post(am, {**alert, "startsAt": _iso(_now())})
    requests = receiver.wait_for(3, timeout=HANG_GUARD)
    assert requests[2].json["status"] == "firing"
    assert [a["labels"] for a in am.alerts()] == [labels]


def test_resolving_an_alert_never_seen_sends_nothing(am: Alertmanager, receiver: Receiver) -> None:
    start = _now() - dt.timedelta(minutes=1)
    _post(
        am,
        {"labels": {"alertname": "HarnessUnseen"}, "startsAt": _iso(start), "endsAt": _iso(_now())},
    )
    assert am.alerts() == []
    _quiet(receiver, 0, QUIET)


def test_future_ends_at_stays_active(am: Alertmanager, receiver: Receiver) -> None:
    labels = {"alertname": "HarnessFuture"}
    started = _now()
    ends = started + dt.timedelta(hours=1)
    _post(am, {"labels": labels, "startsAt": _iso(started), "endsAt": _iso(ends)})

    [request] = receiver.wait_for(1)
    assert request.json["status"] == "firing"
    # The given endsAt is not passed on while the alert fires.
    assert request.json["alerts"][0]["endsAt"] == ZERO_TIME

    _quiet(receiver, 1, 2 * QUIET)
    [listed] = am.alerts()
    assert listed["status"]["state"] == "active"
    assert _close_to(listed["endsAt"], ends)  # kept as given (to the millisecond)


def test_ends_at_passing_resolves_without_a_post(am: Alertmanager, receiver: Receiver) -> None:
    labels = {"alertname": "HarnessExpiry"}
    ends = _now() + dt.timedelta(seconds=1)
    ends_monotonic = time.monotonic() + 1
    _post(am, {"labels": labels, "startsAt": _iso(_now()), "endsAt": _iso(ends)})
    receiver.wait_for(1)
    assert [a["labels"] for a in am.alerts()] == [labels]

    requests = receiver.wait_for(2, timeout=HANG_GUARD)
    resolved = requests[1].json
    assert resolved["status"] == "resolved"
    assert _close_to(resolved["alerts"][0]["endsAt"], ends, within=1e-6)
    assert requests[1].at >= ends_monotonic - 0.01  # not before endsAt
    assert am.alerts() == []


def test_alertmanager_retries_a_failed_webhook() -> None:
    binary = require_alertmanager()
    with (
        Receiver(statuses=(500, 503, 200)) as receiver,
        Alertmanager(receiver, binary=binary) as am,
    ):
        _post(am, {"labels": {"alertname": "HarnessRetry"}, "startsAt": _iso(_now())})
        requests = receiver.wait_for(3, timeout=HANG_GUARD)
        # The same notification again, after a short backoff (~0.4-0.6 s here), not at
        # once (a lower bound: no loaded machine makes a retry come sooner).
        assert requests[0].body == requests[1].body == requests[2].body
        assert all(b.at - a.at > 0.1 for a, b in itertools.pairwise(requests))
        _quiet(receiver, 3, QUIET)
        assert "Notify success" in am.log()


def test_receiver_answers_as_scripted() -> None:
    with Receiver(statuses=(500, 200)) as receiver, httpx.Client(base_url=receiver.url) as client:
        codes = [client.post("/hook", json={"n": n}).status_code for n in range(3)]
        assert codes == [500, 200, 200]
        assert client.get("/plain?x=1", headers={"X-Test": "yes"}).status_code == 200
        requests = receiver.wait_for(4)
    assert receiver.bodies() == [{"n": 0}, {"n": 1}, {"n": 2}, None]
    assert [(r.method, r.path) for r in requests] == [("POST", "/hook")] * 3 + [
        ("GET", "/plain?x=1")
    ]
    assert requests[3].headers["x-test"] == "yes"
    assert requests[3].body == b""
    assert json.loads(requests[0].body) == {"n": 0}
    assert [r.at for r in requests] == sorted(r.at for r in requests)


def test_receiver_delay_makes_clients_time_out() -> None:
    """``delay`` outlasts a client's timeout, and close() cuts the delay short: a client
    still waiting when the receiver closes gets the connection closed, no answer (one
    after the LONG_WAIT delay would be an HTTP status line)."""
    with Receiver(delay=LONG_WAIT) as receiver:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(receiver.url + "/slow", content=b"not json", timeout=0.2)
        assert receiver.wait_for(1)[0].json is None
        assert receiver.requests[0].body == b"not json"
        waiting = socket.create_connection(("127.0.0.1", receiver.port), timeout=HANG_GUARD)
        waiting.sendall(b"GET /waiting HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        receiver.wait_for(2)
    with waiting:
        assert waiting.recv(1024) == b""


def test_receiver_wait_for_says_what_came() -> None:
    with Receiver() as receiver:
        httpx.post(receiver.url + "/x", json=[1])
        with pytest.raises(AssertionError, match=r"got 1: \[\('POST', '/x', \[1\]\)\]"):
            receiver.wait_for(2, timeout=0.1)
