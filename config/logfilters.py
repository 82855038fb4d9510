"""Log filters of LOGGING (config/settings.py).

channels-redis's pub/sub layer logs ERROR with two tracebacks when a consumer's unsubscribe is
itself cancelled ("Unexpected exception while cleaning-up channel"): Daphne ends a consumer still
cleaning up after --application-close-timeout, which under overload is routine (handshakes that
time out in a burst: 1,650 such lines in RELIABILITY L2 at full scale). The subscription it
leaves is dropped by the consumer itself (config/realtime/consumer.py ``_forget_channel``), so the
line is one WARNING, without the tracebacks that would read as a crash.
"""

from __future__ import annotations

import asyncio
import logging

CLEANUP_MESSAGE = "cleaning-up channel"


class CancelledCleanup(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError) and CLEANUP_MESSAGE in record.getMessage():
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = (
                "a pub/sub unsubscribe was cancelled (the consumer ended while cleaning up); "
                "the consumer drops the subscription itself"
            )
            record.args, record.exc_info, record.exc_text = (), None, None
        return True
