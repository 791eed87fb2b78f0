"""``pytest_livecluster._escape``: hostile log text against each medium's escaper.

Exact outputs for a corpus of known attacks; for generated text, the
properties that make an escaper safe (nothing active survives) and faithful
(undoing the escapes gives back the text, plain text is left alone).
"""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_livecluster._escape import markdown, markdown_code, slack, terminal
from pytest_livecluster.alerts import Alerter, AlertSettings, TestOutcome
from pytest_livecluster.alerts.model import Alert
from pytest_livecluster.alerts.targets import slack_text

CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-!|~&<>")
PLAIN = string.ascii_letters + string.digits + string.punctuation + " "

# -- terminal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("before\x1b[2J\x1b[Hafter", "before\\x1b[2J\\x1b[Hafter"),
        (
            "\x1b]8;;http://evil\x07click me\x1b]8;;\x07",
            "\\x1b]8;;http://evil\\x07click me\\x1b]8;;\\x07",
        ),
        ("PASSED\rFAILED", "PASSED\\rFAILED"),
        ("admin\u202e\u2066txt.exe\u2069", "admin\\u202e\\u2066txt.exe\\u2069"),
        ("nul\x00 bell\x07 del\x7f csi\x9b", "nul\\x00 bell\\x07 del\\x7f csi\\x9b"),
        ("two\nlines\tand a tab", "two\nlines\tand a tab"),
        ("unicode é € 😀 ok", "unicode é € 😀 ok"),
    ],
)
def test_terminal_exact(text: str, expected: str) -> None:
    assert terminal(text) == expected


def test_terminal_one_line() -> None:
    assert terminal("a\nb\r\nc\td\u2028e", one_line=True) == "a\\nb\\r\\nc\\td\\u2028e"


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    out = terminal(text)
    assert not (set(out) & (CONTROLS - {"\n", "\t"}))
    assert not (set(out) & BIDI)
    one = terminal(text, one_line=True)
    assert not (set(one) & (CONTROLS | BIDI | {"\u2028", "\u2029"}))
    assert len(one.splitlines()) <= 1


@given(st.text(alphabet=PLAIN + "\n\t"))
def test_plain_text_is_unchanged(text: str) -> None:
    assert terminal(text) == text


@given(st.text())
def test_terminal_is_idempotent(text: str) -> None:
    once = terminal(text)
    assert terminal(once) == once
    assert terminal(terminal(text, one_line=True), one_line=True) == terminal(text, one_line=True)


# -- markdown -----------------------------------------------------------------------------


def unmarkdown(text: str) -> str:
    """Undo :func:`markdown`; fail on any special character it should have escaped."""
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            assert text[i + 1] in MARKDOWN_SPECIAL - set("&<>"), text
            out.append(text[i + 1])
            i += 2
        elif char == "&":
            entity = next(e for e in ("&amp;", "&lt;", "&gt;") if text.startswith(e, i))
            out.append({"&amp;": "&", "&lt;": "<", "&gt;": ">"}[entity])
            i += len(entity)
        else:
            assert char not in MARKDOWN_SPECIAL, text
            out.append(char)
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[click](http://evil.example)", "\\[click\\]\\(http://evil.example\\)"),
        ("![x](http://evil.example/p.png)", "\\!\\[x\\]\\(http://evil.example/p.png\\)"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert\\(1\\)&gt;"),
        ("a | b | c", "a \\| b \\| c"),
        ("``code`` and `more`", "\\`\\`code\\`\\` and \\`more\\`"),
        ("# heading *em* _em_ ~~del~~", "\\# heading \\*em\\* \\_em\\_ \\~\\~del\\~\\~"),
        ("&amp; &#x3C;", "&amp;amp; &amp;\\#x3C;"),
        ("line\nbreak\x1b[2J", "line\\\\nbreak\\\\x1b\\[2J"),
        ("C:\\path", "C:\\\\path"),
    ],
)
def test_markdown_exact(text: str, expected: str) -> None:
    assert markdown(text) == expected


@given(st.text())
def test_markdown_escapes_everything_and_loses_nothing(text: str) -> None:
    out = markdown(text)
    assert "\n" not in out
    assert "\r" not in out
    assert unmarkdown(out) == terminal(text, one_line=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("staging", "`staging`"),
        ("intents.*.resolution", "`intents.*.resolution`"),
        ("a | b", "`a \\| b`"),
        ("`x` and ``y``", "``` `x` and ``y`` ```"),
        (" padded ", "`  padded  `"),
        ("   ", "`   `"),
        ("<b>[x](y)&amp;", "`<b>[x](y)&amp;`"),
        ("two\nlines\x1b[2J", "`two\\nlines\\x1b[2J`"),
        ("", ""),
    ],
)
def test_markdown_code_exact(text: str, expected: str) -> None:
    assert markdown_code(text) == expected


@given(st.text(min_size=1))
def test_markdown_code_is_one_closed_code_span(text: str) -> None:
    out = markdown_code(text)
    fence = out[: len(out) - len(out.lstrip("`"))]
    inner = out[len(fence) : len(out) - len(fence)]
    assert out.endswith(fence)
    # No backtick run inside is as long as the fence, so the span cannot close early.
    assert "`" * len(fence) not in inner
    assert "\n" not in out
    # Every pipe is escaped, so a table cell cannot end inside it.
    assert "|" not in inner.replace("\\|", "")


# -- slack --------------------------------------------------------------------------------


def test_slack_exact() -> None:
    assert slack("<!channel> & <http://evil|click> *b*\x1b[2J\nnext") == (
        "&lt;!channel&gt; &amp; &lt;http://evil|click&gt; *b*\\x1b[2J\nnext"
    )


@given(st.text())
def test_slack_has_no_raw_angle_brackets_and_loses_nothing(text: str) -> None:
    out = slack(text)
    assert "<" not in out
    assert ">" not in out
    restored = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert restored == terminal(text)
    assert all(out.startswith(("&amp;", "&lt;", "&gt;"), i) for i, c in enumerate(out) if c == "&")


# -- where alerts print it ----------------------------------------------------------------

HOSTILE_ID = "t.py::test_x[\x1b[2J<!channel>]"
HOSTILE_HEADLINE = "boom \x1b]8;;http://evil\x07here\rOK\u202e"


def test_the_slack_text_of_an_alert_is_escaped() -> None:
    labels = {"alertname": "LiveTestFailing", "test": HOSTILE_ID}
    alert = Alert(labels, {"summary": HOSTILE_HEADLINE}, "firing", dt.datetime.now(dt.UTC))
    text = slack_text([alert], cluster="<b>&", link=None)
    assert text.splitlines() == [
        "pytest-livecluster on *&lt;b&gt;&amp;*: 1 firing",
        ":red_circle: FIRING `t.py::test_x[\\x1b[2J&lt;!channel&gt;]`: "
        "boom \\x1b]8;;http://evil\\x07here\\rOK\\u202e",
    ]


def test_alert_annotations_and_report_lines_are_terminal_safe() -> None:
    alerter = Alerter(AlertSettings(targets=()), cluster="staging")
    failed = TestOutcome(HOSTILE_ID, True, headline=HOSTILE_HEADLINE, details="tb\n\x1b[31mE\x9b")
    alerter.round([failed])
    [entry] = alerter.ledger.firing()
    assert entry.annotations["summary"] == terminal(
        f"{HOSTILE_ID} failed: {HOSTILE_HEADLINE}", one_line=True
    )
    assert entry.annotations["description"] == "tb\n\\x1b[31mE\\x9b"
    lines = alerter.report_lines()
    assert "fired t.py::test_x[\\x1b[2J<!channel>]" in lines
    assert not any(set(line) & (CONTROLS | BIDI) for line in lines)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("staging", '"staging"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb", '"a\\nb"'),
        ("", '""'),
    ],
)
def test_alertmanager_matcher_quotes_what_its_syntax_reads(text: str, quoted: str) -> None:
    from pytest_livecluster._escape import alertmanager_matcher

    assert alertmanager_matcher(text) == quoted
