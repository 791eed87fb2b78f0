"""Helpers for tests of live sources: run one in a thread, make TLS files.

:class:`Runner` runs :meth:`Source.run` on a thread of its own, keeps every
emitted line, and checks on :meth:`Runner.stop` that ``close()`` made the
thread end. Like the collector, it runs the sources a source hands to
``emit.follow`` (the simulated cluster's processes) on threads of their own,
into the same list; their errors are in :attr:`Runner.child_errors`.
:func:`make_tls` writes a throw-away CA and a server certificate for
127.0.0.1 with the ``openssl`` command. :func:`returns` runs a call under a
hang guard.

Nothing here measures how long something took (speed is for the benchmarks
under ``benchmarks/``): a test checks what happened, and that a call returned
at all. A test of "X ends the wait" makes the other way out :data:`LONG_WAIT`
long and guards at :data:`HANG_GUARD`, half of it, so only a real bug, never
a loaded machine, fails it.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from pytest_livecluster.core.ingest import Envelope
from pytest_livecluster.sources import Source

__all__ = ["HANG_GUARD", "LONG_WAIT", "Runner", "Tls", "make_tls", "returns"]

T = TypeVar("T")

#: A wait that the code under test must cut short or avoid (a timeout, a tick, a
#: heartbeat, a backoff, a server's delay): a test sets it this long...
LONG_WAIT = 60.0
#: ...and fails when the call has not returned after this many seconds: far longer
#: than a healthy call takes on any loaded machine, far shorter than LONG_WAIT.
HANG_GUARD = LONG_WAIT / 2


def returns(call: Callable[[], T], *, within: float = HANG_GUARD, what: str = "") -> T:
    """Run ``call`` on a thread of its own and fail if it has not returned after
    ``within`` seconds; return its value, or re-raise what it raised.

    A hang guard, not a speed limit: the test passes however slow the machine is,
    unless the call waits for something it should not (make that wait LONG_WAIT).
    """
    __tracebackhide__ = True
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"returns {what or call!r}", daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"{what or call!r} did not return within {within} s"
    if failure:
        raise failure[0]
    return outcome[0]


class Runner:
    """Runs a source on a thread and collects what it emits."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.emitted: list[tuple[bytes, Envelope]] = []
        self.error: BaseException | None = None
        self.children: list[Runner] = []
        self._cond = threading.Condition()
        self._done = False
        self.thread = threading.Thread(target=self._run, name=f"runner {source.id}", daemon=True)

    def start(self) -> Runner:
        self.thread.start()
        return self

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.source.close()
        self.thread.join(5)

    @property
    def lines(self) -> list[bytes]:
        with self._cond:
            return [raw for raw, _ in self.emitted]

    @property
    def seqs(self) -> list[int | None]:
        with self._cond:
            return [envelope.source_seq for _, envelope in self.emitted]

    def wait_lines(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """Wait until ``count`` lines came; fail (showing the health) if not."""
        self.wait_until(lambda: len(self.emitted) >= count, timeout, f"{count} lines")
        return self.lines

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    break
                self._cond.wait(min(left, 0.02))
            if condition():
                return
        raise AssertionError(
            f"waited {timeout} s for {what or condition}: {len(self.emitted)} lines, "
            f"error {self.error!r}, health {self.source.health.as_dict()}"
        )

    def wait_done(self, timeout: float = 5.0) -> BaseException | None:
        """Wait for run() to end by itself; return what it raised."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"run() still going after {timeout} s"
        return self.error

    def stop(self, within: float = 15.0) -> None:
        """close() the source; assert run() returned, without error.

        ``within`` is a hang guard, not a speed limit. A test that close() must cut a
        wait short makes that wait LONG_WAIT (a read timeout, a heartbeat, a backoff)
        and passes ``within=HANG_GUARD``: run() returning at all is the check.
        """
        self.source.close()
        self.thread.join(within)
        assert not self.thread.is_alive(), f"run() did not return {within} s after close()"
        assert self.error is None, f"run() raised {self.error!r}"

    @property
    def child_errors(self) -> list[BaseException]:
        return [child.error for child in self.children if child.error is not None]

    def __call__(self, raw: bytes, envelope: Envelope, /) -> None:
        with self._cond:
            self.emitted.append((raw, envelope))
            self._cond.notify_all()

    def follow(self, source: Source, /) -> threading.Thread:
        child = Runner(source)
        child.emitted = self.emitted
        child._cond = self._cond
        self.children.append(child)
        return child.start().thread

    def _run(self) -> None:
        try:
            self.source.run(self)
        except BaseException as exc:
            self.error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()


@dataclass(frozen=True)
class Tls:
    """A CA certificate, and a certificate and key it signed for 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_tls(directory: Path) -> Tls:
    """Write a CA and a server certificate into ``directory`` (skips without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates")
    version = subprocess.run([openssl, "version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.skip(f"openssl does not work: {version.stderr.strip()}")
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key = directory / "ca.key"
    csr = directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        openssl,
        "req",
        "-x509",
        *ec,
        "-keyout",
        ca_key,
        "-out",
        tls.ca,
        "-days",
        "2",
        "-subj",
        "/CN=livecluster test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    _openssl(openssl, "req", *ec, "-keyout", tls.key, "-out", csr, "-subj", "/CN=127.0.0.1")
    _openssl(
        openssl,
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        tls.ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        tls.cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    )
    return tls


def _openssl(openssl: str, *args: str | Path) -> None:
    result = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")
