"""What the hostile tests share: planted secrets, the run of a one-test live suite
that collects every output it writes, and the check that none of it leaks."""

from __future__ import annotations

import base64

import pytest

from tests.support.hostile import HostileServer, Reply

__all__ = [
    "API_KEY",
    "PASSWORD",
    "PLANTED",
    "TOKEN",
    "assert_clean",
    "echo_body",
    "run_plugin",
    "serve",
]

PASSWORD = "PASSSECRET789"
TOKEN = "QTOKSECRET000"
API_KEY = "APIKEYSECRET456"
PLANTED = (
    PASSWORD,
    TOKEN,
    API_KEY,
    base64.b64encode(f"bob:{PASSWORD}".encode()).decode().rstrip("="),
)


def serve(servers: list[HostileServer], *replies: Reply) -> HostileServer:
    server = HostileServer(*replies).start()
    servers.append(server)
    return server


def run_plugin(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    """Run the one-test live suite ``t/``; return the result and everything it wrote."""
    pytester.mkpydir("t").joinpath("test_live.py").write_text("def test_live(cluster): pass\n")
    out = pytester.path / "out"
    out.mkdir()
    summary = out / "summary.md"
    pytester._monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(
        "t",
        f"--live-report={out / 'report.json'}",
        f"--live-record={out / 'rec.ndjson'}",
        f"--live-html={out / 'page.html'}",
        f"--junitxml={out / 'junit.xml'}",
        "--live-settle=2",
        *args,
        timeout=120,
    )
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [p.read_text("utf-8", "replace") for p in sorted(out.iterdir())]
    return result, "\n".join(texts)


def assert_clean(everything: str) -> None:
    for secret in PLANTED:
        assert secret not in everything, f"{secret!r} leaked"
    assert "\x1b" not in everything


def echo_body() -> bytes:
    basic = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    return (
        f"denied: Authorization: Basic {basic}; X-Api-Key: {API_KEY}; "
        f"url /logs?token={TOKEN}\x1b[2J"
    ).encode()
