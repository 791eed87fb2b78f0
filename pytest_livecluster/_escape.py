"""Escaping of log-derived text, one function per medium it is shown in.

Owner of: what a log line (or a test id, or a server's error body) may do to
the place it is printed in; owner: used by every layer. Lines come from the
cluster, so they are untrusted: an ANSI sequence could recolour, move the
cursor or clear the terminal, a ``\\r`` overwrite what came before, a bidi
override reorder what a reader sees (CVE-2021-42574, "Trojan Source"), a
Markdown link or table pipe take over a job summary, a Slack ``<!channel>``
page everyone. Every printer passes such text through the function of its
medium; none escapes on its own.

- :func:`terminal`: control characters become visible escapes (``\\x1b``,
  ``\\u202e``); printable text, backslashes included, is unchanged;
- :func:`markdown`: GitHub-flavoured Markdown, also inside a table cell;
  :func:`markdown_code` the same as a code span (ids, patterns);
- :func:`slack`: Slack's mrkdwn;
- :func:`html`: HTML text and (quoted) attribute values, inline SVG's
  ``<text>`` and ``<title>`` included;
- :func:`alertmanager_matcher`: a quoted value in an Alertmanager label
  matcher (a cluster name in the ``filter`` of its API).

:func:`terminal` is idempotent (its output has nothing left to escape), so
text escaped twice for a terminal reads the same. :func:`markdown`,
:func:`slack` and :func:`html` are not (``&`` becomes ``&amp;``, then ``&amp;amp;``): the
printer of that medium calls them once, on the raw text.
"""

from __future__ import annotations

import itertools
import re
from typing import Final

__all__ = ["alertmanager_matcher", "html", "markdown", "markdown_code", "slack", "terminal"]

# Characters a terminal acts on instead of showing: C0 (but \n and \t), DEL, C1.
_CONTROLS: Final = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
# Bidi embeddings, overrides and isolates: they reorder the text around them.
_BIDI: Final = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
# Line and paragraph separators end a line in many viewers, though not in a terminal.
_SEPARATORS: Final = (0x2028, 0x2029)
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_TERMINAL: Final = {c: _visible(c) for c in itertools.chain(_CONTROLS, _BIDI) if c not in (9, 10)}
_ONE_LINE: Final = {c: _visible(c) for c in itertools.chain(_CONTROLS, _BIDI, _SEPARATORS)}

# Markdown: HTML's three by entity; every other character with a meaning by backslash.
_MARKDOWN: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        **{c: "\\" + c for c in "\\`*_{}[]()#+-!|~"},
    }
)
_SLACK: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# HTML: the five characters with a meaning in text or a quoted attribute, by entity; lone
# surrogates (which no UTF-8 page can hold) as visible escapes, like the controls.
_HTML_SPECIAL: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
_SURROGATES: Final = {c: _visible(c) for c in range(0xD800, 0xE000)}
_HTML: Final = str.maketrans({**_TERMINAL, **_SURROGATES, **_HTML_SPECIAL})
_HTML_ONE_LINE: Final = str.maketrans({**_ONE_LINE, **_SURROGATES, **_HTML_SPECIAL})
_BACKTICKS: Final = re.compile("`+")


def terminal(text: str, *, one_line: bool = False) -> str:
    """``text`` safe to print: control, DEL, C1 and bidi characters as visible escapes.

    ``\\n`` and ``\\t`` stay, unless ``one_line``, which also escapes them and
    U+2028/U+2029, so the result is exactly one line. ``\\r`` is always
    escaped: it would let a line overwrite the one before it.
    """
    return text.translate(_ONE_LINE if one_line else _TERMINAL)


def markdown(text: str) -> str:
    """``text`` as literal GitHub-flavoured Markdown on one line, also safe in a table cell.

    No link, image, HTML tag, entity, code span, emphasis or heading can be
    opened, and a ``|`` cannot end a table cell.
    """
    return terminal(text, one_line=True).translate(_MARKDOWN)


def markdown_code(text: str) -> str:
    """``text`` as one GitHub-flavoured Markdown code span, also safe in a table cell.

    Nothing inside a code span is markup, so only its end must be guarded: the
    fence is one backtick longer than the longest run in ``text``, and a ``|``
    is written ``\\|``, since GFM splits table cells before it finds code
    spans (outside a table that backslash shows). Empty text gives ``""``.
    """
    body = terminal(text, one_line=True).replace("|", "\\|")
    if not body:
        return ""
    fence = "`" * (max(map(len, _BACKTICKS.findall(body)), default=0) + 1)
    # A space on each side is stripped again by the parser; it keeps an edge
    # backtick from joining the fence, and edge spaces from being stripped.
    if body.strip(" ") and (body[0] in "` " or body[-1] in "` "):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def slack(text: str) -> str:
    """``text`` for Slack's mrkdwn: terminal escapes, then ``&``, ``<`` and ``>``.

    Those three are the only ones Slack lets a sender escape; they are enough
    to stop links, mentions (``<!channel>``) and user references.
    """
    return terminal(text).translate(_SLACK)


def html(text: str, *, one_line: bool = False) -> str:
    """``text`` as literal HTML: terminal escapes, then ``&``, ``<``, ``>``, ``"`` and ``'``.

    Safe as element text (SVG ``<text>`` and ``<title>`` included) and as a
    quoted attribute value: no tag, entity or attribute can be opened, and
    no control, bidi or lone surrogate character reaches the page (each
    shows as its escape, as :func:`terminal` writes it). ``one_line`` as for
    :func:`terminal`. Not for a URL, a script or a style: nothing here writes
    log text there.
    """
    return text.translate(_HTML_ONE_LINE if one_line else _HTML)


def alertmanager_matcher(text: str) -> str:
    r"""``text`` as the double-quoted value of an Alertmanager label matcher.

    Alertmanager's matcher syntax (``label="value"``, its API's ``filter``)
    reads ``\\``, ``\"`` and ``\n`` in a quoted value; everything else is
    itself, so any cluster name matches exactly that name.
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
