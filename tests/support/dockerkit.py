"""Helpers for the Docker source tests: the test image, a socket proxy, and collecting lines.

Everything here talks to a real engine. The proxy is a real unix socket in front of the
engine's, so a test can see the requests the source makes and cut its connections.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import itertools
import json
import re
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import docker
from docker.models.containers import Container

from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.sources.docker import DockerSource

T = TypeVar("T", int, bytes)
HERE: Final = Path(__file__).resolve().parent
IMAGE_REPO: Final = "livecluster-test/busybox"
IMAGE_TAG: Final = "1"
IMAGE: Final = f"{IMAGE_REPO}:{IMAGE_TAG}"
BUSYBOX: Final = Path("/usr/bin/busybox")
ENGINE_SOCKET: Final = "/var/run/docker.sock"
# run() must return after close() (pitfall 16, case 21). A hang guard, not a speed limit:
# an open stream has no read timeout, so a close() that did not cut the streams (the
# tests' silent containers print nothing for 600 s) would never return.
STOP_GUARD_S: Final = 30.0
NINE_DIGIT_SINCE: Final = re.compile(r"^\d{10}\.\d{9}$")
_EMBEDDED_TS: Final = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z")


# -- the image -------------------------------------------------------------------------------


def rootfs_tarball(busybox: Path = BUSYBOX) -> bytes:
    """A root filesystem: static busybox, a symlink per applet, and the seqlog script."""
    script = (HERE / "seqlog.sh").read_bytes()
    listing = subprocess.run([str(busybox), "--list"], capture_output=True, check=True, text=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "tmp", "var", "etc"):
            entry = tarfile.TarInfo(name)
            entry.type = tarfile.DIRTYPE
            entry.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(entry)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in listing.stdout.split():
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
        entry = tarfile.TarInfo("bin/seqlog")
        entry.mode = 0o755
        entry.size = len(script)
        tar.addfile(entry, io.BytesIO(script))
    return buf.getvalue()


def image_fingerprint() -> str:
    digest = hashlib.sha256((HERE / "seqlog.sh").read_bytes())
    digest.update(BUSYBOX.read_bytes())
    return digest.hexdigest()[:16]


def ensure_image(client: docker.DockerClient) -> str:
    """Import the test image unless an up-to-date one is there (Docker Hub is not needed)."""
    fingerprint = image_fingerprint()
    try:
        image = client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        image = None
    if image is not None and image.labels.get("livecluster.seqlog") == fingerprint:
        return IMAGE
    client.api.import_image(
        src=rootfs_tarball(),
        repository=IMAGE_REPO,
        tag=IMAGE_TAG,
        changes=[
            "ENV PATH=/bin",
            'CMD ["/bin/seqlog"]',
            f"LABEL livecluster.seqlog={fingerprint}",
        ],
    )
    return IMAGE


# -- sharing the engine with other test sessions ---------------------------------------------


def no_engine(reason: str) -> None:
    """Skip the test, with how to start an engine, because none answers (``reason``);
    under ``CI=true``, where an engine is part of the set-up, fail it instead."""
    __tracebackhide__ = True
    import os

    import pytest

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    message = (
        f"no Docker engine at {where} ({reason}); "
        "start one with `.ci/dockerd.sh install && .ci/dockerd.sh start`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


class EngineLock:
    """An flock held shared by each test session using the engine, exclusive while one
    restarts it. Converting releases first, so two sessions cannot deadlock."""

    PATH: Final = "/tmp/livecluster-docker-engine.lock"

    def __init__(self) -> None:
        self._file = open(self.PATH, "a+")  # noqa: SIM115 - closed in release()

    def share(self, timeout: float = 300) -> None:
        if not self._take(fcntl.LOCK_SH, timeout):
            raise TimeoutError(f"another session held {self.PATH} for {timeout}s")

    def exclusive(self, timeout: float) -> bool:
        return self._take(fcntl.LOCK_EX, timeout)

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()

    def _take(self, mode: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._file, mode | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)


# -- labelled test containers ------------------------------------------------------------------

LABEL_KEY: Final = "livecluster.test"
# Containers a test starts *without* the followed label still carry this one, for cleanup.
OTHER_KEY: Final = "livecluster.test.other"


@dataclass(frozen=True)
class Label:
    """The unique label of one test: its containers carry it, its sources follow it."""

    key: str
    value: str

    def spec(self, host: str | None = None) -> str:
        return f"docker:label={self.key}={self.value}" + (f";host={host}" if host else "")


@dataclass
class Launcher:
    """Creates (and starts) seqlog containers carrying the test's label."""

    engine: docker.DockerClient
    image: str
    label: Label
    made: list[Container] = field(default_factory=list)
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def __call__(
        self,
        env: dict[str, str] | None = None,
        *,
        labelled: bool = True,
        start: bool = True,
        command: list[str] | None = None,
        **kwargs: Any,
    ) -> Container:
        key = LABEL_KEY if labelled else OTHER_KEY
        kwargs.setdefault("stop_signal", "SIGTERM")
        container = self.engine.containers.create(
            self.image,
            command,
            name=f"lc-{self.label.value}-{next(self.numbers)}",
            labels={key: self.label.value},
            environment=env or {},
            detach=True,
            **kwargs,
        )
        self.made.append(container)
        if start:
            container.start()
        return container

    def many(self, count: int, env: dict[str, str], **kwargs: Any) -> list[Container]:
        """``count`` containers started at nearly the same time."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda _: self(env, **kwargs), range(count)))


# -- a proxy in front of the engine's socket ---------------------------------------------------


@dataclass(frozen=True)
class ProxiedRequest:
    """One request line the proxy forwarded (or refused)."""

    conn: int
    method: str
    target: str
    at: float

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def params(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    @property
    def kind(self) -> str:
        path = self.path
        if path.endswith("/events"):
            return "events"
        if path.endswith("/logs"):
            return "logs"
        return "other"


_REQUEST_LINE: Final = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")


class _Pair:
    """A client connection and its upstream connection, pumped by two threads."""

    def __init__(self, number: int, client: socket.socket, upstream: socket.socket) -> None:
        self.number = number
        self.client = client
        self.upstream = upstream
        self.kind = "other"
        self.follow = False
        self.head = b""
        self._lock = threading.Lock()
        self._pumps_left = 2
        self.threads: list[threading.Thread] = []
        self.was_cut = threading.Event()

    def cut(self) -> None:
        self.was_cut.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def pump_done(self) -> bool:
        """Called by each pump as it ends; the last one closes both sockets and says so."""
        with self._lock:
            self._pumps_left -= 1
            last = self._pumps_left == 0
        if last:
            self.client.close()
            self.upstream.close()
        return last


class DockerProxy:
    """A unix-socket proxy in front of the engine that logs requests and cuts on cue.

    ``cut("all")`` shuts every open connection down, as a restarted engine or a broken
    network would; ``cut("events")`` or ``cut("logs")`` only those whose latest request
    went there. ``refuse(kind)`` closes new connections of that kind as soon as their
    request arrives, until ``refuse(None)``. With ``hold_eof`` set, a ``follow=1`` logs
    response the engine ends stays open towards the client, silent and without its last
    chunk, as a stalled follow would.
    """

    def __init__(self, upstream: str = ENGINE_SOCKET) -> None:
        self.upstream = upstream
        self.path = f"/tmp/lc-proxy-{uuid.uuid4().hex[:12]}.sock"
        self.requests: list[ProxiedRequest] = []
        self.refused = 0
        self.hold_eof = False
        self._lock = threading.Lock()
        self._pairs: dict[int, _Pair] = {}
        self._count = 0
        self._refuse: str | None = None
        self._stopped = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._acceptor = threading.Thread(target=self._accept, name="docker-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> DockerProxy:
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            pairs = list(self._pairs.values())
        for pair in pairs:
            pair.cut()
        for pair in pairs:
            for thread in pair.threads:
                thread.join(5)
        Path(self.path).unlink(missing_ok=True)

    def cut(self, kind: str = "all") -> int:
        """Shut down the open connections of ``kind``; how many were cut."""
        with self._lock:
            pairs = [p for p in self._pairs.values() if kind == "all" or p.kind == kind]
        for pair in pairs:
            pair.cut()
        return len(pairs)

    def refuse(self, kind: str | None) -> None:
        with self._lock:
            self._refuse = kind

    def open_connections(self, kind: str = "all") -> int:
        with self._lock:
            return sum(1 for p in self._pairs.values() if kind == "all" or p.kind == kind)

    def reads(self, container_id: str) -> list[ProxiedRequest]:
        """The logs requests that read a container's lines, oldest first: without the
        one-off ``tail=1`` that asks where its backlog ends before the first follow."""
        found = self.logged("logs", contains=f"/containers/{container_id}/")
        return [r for r in found if "tail" not in r.params]

    def logged(self, kind: str | None = None, contains: str = "") -> list[ProxiedRequest]:
        with self._lock:
            requests = list(self.requests)
        return [r for r in requests if (kind is None or r.kind == kind) and contains in r.target]

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                upstream.close()
                client.close()
                continue
            self._open(client, upstream)

    def _open(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self._count += 1
            pair = _Pair(self._count, client, upstream)
            self._pairs[pair.number] = pair
        pair.threads = [
            threading.Thread(target=self._up, args=(pair,), name="docker-proxy-up", daemon=True),
            threading.Thread(target=self._down, args=(pair,), name="docker-proxy-dn", daemon=True),
        ]
        for thread in pair.threads:
            thread.start()

    def _up(self, pair: _Pair) -> None:
        try:
            while data := pair.client.recv(65536):
                if not self._requests_in(pair, data):
                    pair.cut()
                    return
                pair.upstream.sendall(data)
            pair.cut()  # the client closed: HTTP clients never half-close
        except OSError:
            pair.cut()
        finally:
            self._finish(pair)

    def _down(self, pair: _Pair) -> None:
        held = b""
        try:
            while data := pair.upstream.recv(65536):
                if self.hold_eof and pair.follow:
                    # Keep back what may be the body's last chunk ("0\r\n\r\n").
                    data, held = (held + data)[:-5], (held + data)[-5:]
                pair.client.sendall(data)
            if self.hold_eof and pair.follow:
                if held != b"0\r\n\r\n":
                    pair.client.sendall(held)
                pair.was_cut.wait()
                return
            with contextlib.suppress(OSError):
                pair.client.shutdown(socket.SHUT_WR)
        except OSError:
            pair.cut()
        finally:
            self._finish(pair)

    def _finish(self, pair: _Pair) -> None:
        if pair.pump_done():
            with self._lock:
                self._pairs.pop(pair.number, None)

    def _requests_in(self, pair: _Pair, data: bytes) -> bool:
        """Log the request lines in ``data``; False to refuse the connection."""
        pair.head += data
        # The source's requests are GETs without a body: a blank line ends each one.
        while b"\r\n\r\n" in pair.head:
            head, pair.head = pair.head.split(b"\r\n\r\n", 1)
            match = _REQUEST_LINE.match(head.split(b"\r\n", 1)[0])
            if match is None:
                continue
            request = ProxiedRequest(
                pair.number, match[1].decode(), match[2].decode(), time.monotonic()
            )
            with self._lock:
                self.requests.append(request)
                pair.kind = request.kind
                pair.follow = request.kind == "logs" and request.params.get("follow") == "1"
                refused = self._refuse is not None and request.kind == self._refuse
                self.refused += refused
            if refused:
                return False
        return True


# -- collecting what a source emits ------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    raw: bytes
    envelope: Envelope
    received: float

    @property
    def name(self) -> str:
        return self.envelope.source.removeprefix("docker:")

    def json(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        assert isinstance(value, dict), self.raw[:100]
        return value


@dataclass
class Collection:
    """A DockerSource run in a thread, as the collector runs one, keeping every line."""

    source: DockerSource
    lines: list[Line] = field(default_factory=list)
    error: BaseException | None = None
    stopped: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="collection", daemon=True)

    def _run(self) -> None:
        try:
            self.source.run(self.emit)
        except BaseException as exc:
            self.error = exc

    def emit(self, raw: bytes, envelope: Envelope) -> None:
        with self._lock:
            self.lines.append(Line(raw, envelope, time.monotonic()))

    def start(self) -> Collection:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self, name: str | None = None) -> list[Line]:
        with self._lock:
            lines = list(self.lines)
        return [line for line in lines if name is None or line.name == name]

    def wait(
        self, predicate: Callable[[list[Line]], bool], timeout: float, what: str
    ) -> list[Line]:
        """Poll until ``predicate(lines)``; fail naming ``what`` and the source's health."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            lines = self.snapshot()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline or not self.running:
                health = self.source.health.as_dict()
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; {len(lines)} lines "
                    f"({describe(lines)}); error={self.error!r}; health={health}"
                )
            time.sleep(0.05)

    def wait_count(self, count: int, timeout: float, name: str | None = None) -> list[Line]:
        return self.wait(
            lambda lines: sum(1 for x in lines if name is None or x.name == name) >= count,
            timeout,
            f"{count} lines from {name or 'all containers'}",
        )

    def stop(self) -> None:
        """close() the source and assert its run() returned (see STOP_GUARD_S)."""
        if self.stopped:
            return
        self.stopped = True
        self.source.close()
        self._thread.join(STOP_GUARD_S)
        assert not self._thread.is_alive(), (
            f"the source's run() did not return {STOP_GUARD_S} s after close()"
        )


Collect = Callable[..., Collection]
"""The ``collect`` fixture: starts a DockerSource on the test's label (see conftest)."""


def follower_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("livecluster-docker-")]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# -- checking sequence numbers ----------------------------------------------------------------


def seqs(
    lines: Iterable[Line],
    name: str,
    *,
    stream: str | None = None,
    s: str | None = None,
    boot: int | None = None,
) -> list[int]:
    """The seq numbers of seqlog lines from one container, optionally of one stream/boot."""
    out = []
    for line in lines:
        if line.name != name or (stream is not None and line.envelope.stream != stream):
            continue
        record = line.json()
        if (s is None or record["s"] == s) and (boot is None or record["boot"] == boot):
            out.append(int(record["seq"]))
    return out


def multiset_problems(got: Iterable[T], expected: Iterable[T]) -> str:
    """'' if ``got`` is exactly ``expected`` as a multiset, else what is missing or extra."""
    have, want = Counter(got), Counter(expected)
    missing = sorted((want - have).elements(), key=repr)
    extra = sorted((have - want).elements(), key=repr)
    if not missing and not extra:
        return ""
    return f"missing {_runs(missing)}; duplicated or unexpected {_runs(extra)}"


def _runs(values: list[T]) -> str:
    if not values:
        return "none"
    shown = ", ".join(repr(v) if isinstance(v, bytes) else str(v) for v in values[:20])
    return f"{len(values)} ({shown}{', ...' if len(values) > 20 else ''})"


def assert_exact(lines: Iterable[Line], name: str, count: int, **which: Any) -> None:
    """Exactly seq 0..count-1, each once, for the container (and stream/boot) given."""
    __tracebackhide__ = True
    problems = multiset_problems(seqs(lines, name, **which), range(count))
    assert not problems, f"{name} {which}: {problems}"


def assert_contiguous(lines: Iterable[Line], name: str, **which: Any) -> int:
    """seq 0..max, each once, with at least one line; returns how many."""
    __tracebackhide__ = True
    got = seqs(lines, name, **which)
    assert got, f"{name} {which}: no lines"
    problems = multiset_problems(got, range(max(got) + 1))
    assert not problems, f"{name} {which}: {problems}"
    return len(got)


def describe(lines: Iterable[Line]) -> str:
    """Per container, stream and boot: how many seqlog lines, and what is off."""
    groups: dict[tuple[str, str, Any], list[int]] = {}
    odd: list[bytes] = []
    for line in lines:
        try:
            record = line.json()
            key = (line.name, line.envelope.stream, record.get("boot"))
            groups.setdefault(key, []).append(int(record["seq"]))
        except (ValueError, KeyError, TypeError, AssertionError):
            odd.append(line.raw[:80])
    parts = [
        f"{name} {stream} boot {boot}: {len(got)}, "
        f"{multiset_problems(got, range(max(got) + 1)) or 'contiguous'}"
        for (name, stream, boot), got in sorted(groups.items(), key=repr)
    ]
    if odd:
        parts.append(f"not seqlog lines: {odd[:3]}")
    return "; ".join(parts)


def has_embedded_timestamp(raw: bytes) -> bool:
    return _EMBEDDED_TS.search(raw) is not None
