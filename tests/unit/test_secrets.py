"""``pytest_livecluster._secrets``: ``env:`` resolution, the registry, masking, URL display.

The registry is process-wide and only grows, so every test registers values
of its own that no other test (or message) contains.
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_livecluster._secrets import (
    MASK,
    display_spec,
    origin,
    redact_url,
    remember,
    remember_url,
    resolve_env,
    scrub,
    scrub_data,
)
from pytest_livecluster.exceptions import ConfigError

# -- env: --------------------------------------------------------------------------------


def test_env_values_are_read_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_SECRETS_SET", "Bearer env-Q7vX-resolved")
    assert resolve_env("env:LC_SECRETS_SET", what="header 'A'") == "Bearer env-Q7vX-resolved"
    assert scrub("server said: Bearer env-Q7vX-resolved!") == f"server said: {MASK}!"


def test_values_without_the_prefix_are_returned_unchanged_and_not_remembered() -> None:
    assert resolve_env("plain-Kz81-literal", what="x") == "plain-Kz81-literal"
    assert resolve_env("Env:NOT_A_REF", what="x") == "Env:NOT_A_REF"
    assert scrub("plain-Kz81-literal") == "plain-Kz81-literal"


def test_an_unset_variable_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LC_SECRETS_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        resolve_env("env:LC_SECRETS_UNSET", what="header 'X-Token' for http://h/logs")
    assert str(info.value) == (
        "header 'X-Token' for http://h/logs names the environment variable "
        "LC_SECRETS_UNSET, which is not set"
    )


@pytest.mark.parametrize("value", ["", "  \t"])
def test_an_empty_variable_is_a_config_error_without_its_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LC_SECRETS_EMPTY", value)
    with pytest.raises(ConfigError) as info:
        resolve_env("env:LC_SECRETS_EMPTY", what="--live-alert: webhook+env:LC_SECRETS_EMPTY")
    assert str(info.value) == (
        "--live-alert: webhook+env:LC_SECRETS_EMPTY names the environment variable "
        "LC_SECRETS_EMPTY, which is empty"
    )


# -- scrub --------------------------------------------------------------------------------


def test_a_remembered_value_is_masked_inside_longer_text() -> None:
    remember("hunter2-A1b2")
    assert scrub("login failed for hunter2-A1b2hunter2-A1b2 twice") == (
        f"login failed for {MASK} twice"
    )
    assert scrub("nothing to hide") == "nothing to hide"


def test_the_percent_encoded_form_is_masked_too() -> None:
    secret = "p@ss w/rd&Zq9=+"
    remember(secret)
    encoded = quote(secret, safe="")
    assert encoded != secret
    assert scrub(f"GET /logs?k={encoded} failed") == f"GET /logs?k={MASK} failed"
    lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)
    assert lower_hex != encoded
    assert scrub(f"GET /logs?k={lower_hex}") == f"GET /logs?k={MASK}"
    assert scrub("k=" + quote(secret, safe="/")) == f"k={MASK}"


def test_basic_auth_base64_of_a_remembered_password_is_masked() -> None:
    remember("PASSSECRET789")
    token = base64.b64encode(b"bob:PASSSECRET789").decode()
    assert scrub(f"echo: Authorization: Basic {token}\n") == (
        f"echo: Authorization: Basic {MASK}\n"
    )
    # Any user name, and without the padding.
    other = base64.b64encode(b"someone-else:PASSSECRET789").decode().rstrip("=")
    assert scrub(f"Basic {other}") == f"Basic {MASK}"
    # Base64 of something else is left alone.
    innocent = base64.b64encode(b"bob:not-the-password").decode()
    assert scrub(f"Basic {innocent}") == f"Basic {innocent}"


def test_longest_first_and_overlaps_leave_no_part_visible() -> None:
    remember("tok-Wq3", "tok-Wq3-and-more", "abcdWq9", "Wq9efgh")
    assert scrub("x tok-Wq3-and-more y tok-Wq3 z") == f"x {MASK} y {MASK} z"
    # Two overlapping secrets: one mark over both, neither tail shows.
    assert scrub("[abcdWq9efgh]") == f"[{MASK}]"


def test_short_values_are_ignored() -> None:
    remember("ab1", "", "x")
    assert scrub("ab1 x and y") == "ab1 x and y"


def test_remember_from_many_threads() -> None:
    values = [f"thread-secret-{n:03d}-Vb" for n in range(64)]
    threads = [threading.Thread(target=remember, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert scrub(" ".join(values)) == " ".join([MASK] * len(values))


def test_remember_url_registers_the_password_and_secret_query_values() -> None:
    remember_url("https://reader:pw%2FRk7-x@h.example/logs?api_key=K3y-Zz90&page=12345")
    assert scrub("pw/Rk7-x pw%2FRk7-x K3y-Zz90 page=12345") == f"{MASK} {MASK} {MASK} page=12345"
    remember_url("http://u:pa/ss?Ym#8@host/logs")
    assert scrub("rejected pa/ss?Ym#8") == f"rejected {MASK}"


# -- redact_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h:8080/logs", "http://h:8080/logs"),
        ("http://bob:pw-1@h:8080/logs", "http://***@h:8080/logs"),
        ("https://bob@h/logs", "https://***@h/logs"),
        ("http://h/logs?token=abc&x=1", "http://h/logs?token=***&x=1"),
        ("http://h/logs?api_key=abc&password=p&x=", "http://h/logs?api_key=***&password=***&x="),
        (
            "http://h/logs?X-Amz-Signature=abc&access%5Ftoken=t",
            "http://h/logs?X-Amz-Signature=***&access%5Ftoken=***",
        ),
        ("HTTPS://Bob:PW@Host.Example/logs?TOKEN=a", "https://***@Host.Example/logs?TOKEN=***"),
        ("redis+tls://u:pw@cache:6380/0?auth=x", "redis+tls://***@cache:6380/0?auth=***"),
        ("http://h/logs#access_token=abc", "http://h/logs"),
        ("http://[::1]:8080/logs?session=s", "http://[::1]:8080/logs?session=***"),
        ("http://h/logs?email=a@b.example&token=t", "http://h/logs?email=a@b.example&token=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "password", ["pa/ss", "pa?ss", "pa#ss", "p/a?s#s", "p@ss/w?rd#1", "12/34", "x:y"]
)
def test_a_password_with_unencoded_delimiters_never_leaks(password: str) -> None:
    url = f"http://bob:{password}@logs.example:8080/logs?x=1"
    assert redact_url(url) == "http://***@logs.example:8080/logs?x=1"
    assert origin(url) == "http://logs.example:8080"


@given(st.text())
def test_any_password_is_masked_whole(password: str) -> None:
    url = f"http://user:{password}@host.example:8080/x?token=t"
    assert redact_url(url) == "http://***@host.example:8080/x?token=***"
    assert origin(url) == "http://host.example:8080"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "://",
        "http://",
        "http://[::1",
        "http://h:port/x",
        "@@@",
        "?token=",
        "#",
        "\x00",
    ],
)
def test_odd_input_never_raises(garbage: str) -> None:
    assert isinstance(redact_url(garbage), str)
    assert isinstance(origin(garbage), str)


@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    redact_url(text)
    origin(text)


# -- origin -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/services/T0/B0/XYZ?x=1#f", "https://hooks.example.com"),
        ("http://alice:pw@am:9093/api", "http://am:9093"),
        ("HTTP://Host:80", "http://Host:80"),
        ("http://h:/x", "http://h"),
        ("http://[fe80::1%25eth0]:9/", "http://[fe80::1%25eth0]:9"),
        ("foo://h/x", "foo://h"),
        ("http://h:port/x", ""),
        ("mailto:someone@example.com", ""),
        ("not a url", ""),
        ("", ""),
    ],
)
def test_origin(url: str, expected: str) -> None:
    assert origin(url) == expected


# -- display_spec and scrub_data -----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("http://bob:DSPEC-Aa11@127.0.0.1:8080/logs?token=DSPEC-Tt22", "http://127.0.0.1:8080"),
        ("HTTP://bob:DSPEC-Aa11@h/logs", "http://h"),
        ("htps://bob:DSPEC-Aa11@h/x?token=DSPEC-Tt22", "htps://h"),
        ("http://bob:pa/ss?w#rd@h:1/logs", "http://h:1"),
        ("https://", "https://…"),
        (
            "docker:label=K=V;host=tcp://user:DSPEC-Aa11@h:2376",
            "docker:label=K=V;host=tcp://h:2376",
        ),
        (
            "docker:label=a=b;host=unix:///var/run/d.sock",
            "docker:label=a=b;host=unix:///var/run/d.sock",
        ),
        (
            "swarm:label=K=V;host=tcp://user:DSPEC-Aa11@manager:2376",
            "swarm:label=K=V;host=tcp://manager:2376",
        ),
        ("docker:label=K=V;host=ssh://ops@h:2222", "docker:label=K=V;host=ssh://h:2222"),
        ("file:/tmp/rec.ndjson", "file:/tmp/rec.ndjson"),
        ("sim", "sim"),
        ("bob:DSPEC-Aa11@h/logs", "bob:…"),
    ],
)
def test_display_spec_shows_nothing_that_may_be_a_secret(spec: str, shown: str) -> None:
    assert display_spec(spec) == shown


@given(st.text())
def test_display_spec_never_raises(spec: str) -> None:
    assert isinstance(display_spec(spec), str)


def test_scrub_data_masks_every_string_and_key() -> None:
    remember("SDATA-Vv33-secret")
    basic = base64.b64encode(b"u:SDATA-Vv33-secret").decode()
    data = {"a": ["x SDATA-Vv33-secret", (f"Basic {basic}", 3)], "SDATA-Vv33-secret": None}
    assert scrub_data(data) == {"a": [f"x {MASK}", (f"Basic {MASK}", 3)], MASK: None}
    assert data["a"][0] == "x SDATA-Vv33-secret", "the input is not changed"


def test_a_one_letter_user_name_masks_nothing_inside_words() -> None:
    remember_url("http://n:ONELETTER-Pw77@h/logs")
    assert scrub("wrong version number") == "wrong version number"
    assert scrub("n:ONELETTER-Pw77") == f"n:{MASK}"


# -- the writers mask what they write ------------------------------------------------------


def test_report_ledger_and_alert_bodies_mask_remembered_secrets(tmp_path: Path) -> None:
    """A failure, a rejected line or a section quoting a secret (or its basic-auth
    base64) is masked in the terminal lines, the Markdown, the JSON, the ledger file
    and the alert bodies."""
    import datetime as dt

    from pytest_livecluster import State
    from pytest_livecluster.alerts.ledger import Ledger
    from pytest_livecluster.alerts.model import Alert
    from pytest_livecluster.alerts.targets import Target
    from pytest_livecluster.plugin.report import Section, build_report

    secret = "WRITERS-Jj61-secret"
    remember(secret)
    basic = base64.b64encode(f"u:{secret}".encode()).decode()
    quoted = f"server said: Basic {basic} and {secret}"
    state = State()
    state.ingest(quoted.encode())
    report = build_report(
        state, None, cluster="c", counters=(), sections=[Section(quoted, [quoted])]
    )
    report.failures.append(quoted)
    texts = [*report.terminal_lines(), report.markdown(), repr(report.as_dict())]
    ledger = Ledger(tmp_path / "ledger.json")
    now = dt.datetime.now(dt.UTC)
    ledger.failing({"alertname": "t", "test": "t"}, {"summary": quoted}, now)
    ledger.save()
    texts.append((tmp_path / "ledger.json").read_text())
    alert = Alert({"alertname": "t"}, {"summary": quoted}, "firing", now)
    for kind in ("webhook", "alertmanager"):
        target = Target(kind, "http://127.0.0.1:9/", "http://127.0.0.1:9/")
        texts.append(repr(target.body([alert], cluster="c", link=None)))
    for text in texts:
        assert secret not in text
        assert basic[:16] not in text
