"""Fixtures of the plugin's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cueserver import HELLO, CueServer


@pytest.fixture
def server() -> Iterator[CueServer]:
    """A loopback ``/logs`` server that has said one hello, cued by the inner tests."""
    with CueServer(heartbeat=0.2).start() as srv:
        srv.write(HELLO)
        yield srv
