"""Shared set-up of the test suite.

httpx imports httpcore lazily, with its first client, and keeps a table of
httpcore's exception classes. pytester restores ``sys.modules`` after each
test, so an httpcore first imported inside a pytester test would be imported
again later with new classes the table does not know, and httpx would let raw
httpcore errors escape. Importing it here, before any test, keeps one copy.
"""

from __future__ import annotations

import httpcore  # noqa: F401
