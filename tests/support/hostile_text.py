"""Text an attacker could put in a host name, an intent id, a test id or a log line.

The corpus every printer of log-derived text is tested against: ANSI and
OSC 8 sequences, bidi overrides, markup, attribute breakouts and script URLs.
"""

from __future__ import annotations

from typing import Final

from tests.unit.test_escape import HOSTILE_HEADLINE, HOSTILE_ID
from tests.unit.test_report import HOSTILE

__all__ = ["ATTACKS", "HOSTILE", "HOSTILE_HEADLINE", "HOSTILE_ID"]

ATTACKS: Final = (
    HOSTILE,
    HOSTILE_ID,
    HOSTILE_HEADLINE,
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</svg><iframe src=//evil>",
    "\u202eevil",
    "\x1b[2Jclear",
    "javascript:alert(document.domain)",
    "a &amp; b &lt;i&gt; 'q' \"dq\"",
)
