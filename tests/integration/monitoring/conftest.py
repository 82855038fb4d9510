"""Fixtures of the monitoring tests."""

from __future__ import annotations

import pytest

from monitoring import events


@pytest.fixture
async def socket_events(settings):
    """Sockets record events in the background again (tests/testenv.py turns that off), and
    the test waits for every recording before the database is flushed."""
    settings.MONITORING_MAX_PENDING_EVENTS = 100
    yield
    await events.drain()
