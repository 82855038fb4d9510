"""config/logfilters.py: channels-redis's cancelled clean-up is one WARNING line, without the
tracebacks; everything else the layer logs passes as it is."""

from __future__ import annotations

import asyncio
import logging
import sys

from config.logfilters import CancelledCleanup


def record_of(message: str, error: BaseException | None) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise error
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "channels_redis.pubsub", logging.ERROR, __file__, 1, message, (), exc_info
    )


def test_a_cancelled_cleanup_is_a_warning_without_traceback():
    record = record_of("Unexpected exception while cleaning-up channel:", asyncio.CancelledError())

    assert CancelledCleanup().filter(record)

    assert (record.levelno, record.levelname, record.exc_info) == (logging.WARNING, "WARNING", None)
    assert "drops the subscription" in record.getMessage()


def test_any_other_error_keeps_its_level_and_traceback():
    for record in (
        record_of("Unexpected exception while cleaning-up channel:", ConnectionError("gone")),
        record_of("Something else:", asyncio.CancelledError()),
    ):
        assert CancelledCleanup().filter(record)
        assert record.levelno == logging.ERROR and record.exc_info is not None


def test_the_filter_is_on_the_pubsub_logger():
    filters = logging.getLogger("channels_redis.pubsub").filters
    assert any(isinstance(f, CancelledCleanup) for f in filters)
