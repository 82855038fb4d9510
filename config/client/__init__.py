"""The Python client of the realtime backend: ``from config.client import RealtimeClient``.

See ``config/client/connection.py`` for what it does and ``README.md`` ("Python client").
"""

from config.client.backoff import Breaker, backoff_delay
from config.client.connection import CommandError, RealtimeClient

__all__ = ["Breaker", "CommandError", "RealtimeClient", "backoff_delay"]
