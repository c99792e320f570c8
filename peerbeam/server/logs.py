"""Logs that a client cannot flood: at most so many lines per client and per kind.

Every line a client can cause (an access-log line, a refused request, a closed
connection) is keyed by the client (the ``client`` attribute the server puts on
its records) or, for lines without one (asyncio's "out of file descriptors",
a handler's failure), by the logger and message template. Each key may log a
burst of ``BURST`` lines and then one line per ``1 / RATE`` seconds; the next
line that gets through says how many were dropped meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

BURST = 60.0
RATE = 2.0  # lines per second after the burst
MAX_KEYS = 4096


class PerClientLimit(logging.Filter):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        # key -> (tokens, updated, suppressed)
        self._keys: OrderedDict[object, tuple[float, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        client = getattr(record, "client", None)
        key: object = ("client", client) if client is not None else (record.name, record.msg)
        now = self._clock()
        with self._lock:
            tokens, updated, suppressed = self._keys.pop(key, (BURST, now, 0))
            tokens = min(BURST, tokens + (now - updated) * RATE)
            if tokens < 1:
                self._keys[key] = (tokens, now, suppressed + 1)
                admit = False
            else:
                self._keys[key] = (tokens - 1, now, 0)
                admit = True
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        if admit and suppressed:
            record.msg = f"{record.msg} [{suppressed} similar lines suppressed]"
        return admit


def install(*names: str) -> None:
    """Put one limit on every handler of the root logger and of the named loggers (those
    that do not propagate: Chalice's app logger). Call after the handlers exist."""
    limit = PerClientLimit()
    for logger in [logging.getLogger(), *(logging.getLogger(name) for name in names)]:
        for handler in logger.handlers:
            handler.addFilter(limit)
