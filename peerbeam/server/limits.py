"""Token buckets per client address: how often one client may create rooms and join.

Each client key (``chalicelib.addresses.client_key``) has a bucket of ``burst``
tokens refilled at ``per_minute``; a request takes one or is refused with the
seconds until the next token (HTTP 429 with ``Retry-After``). The table of
buckets is bounded: past ``MAX_CLIENTS`` keys the least recently seen are
dropped (which only ever gives a client a fresh, full bucket).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

MAX_CLIENTS = 65536


class TokenBuckets:
    def __init__(self, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(max(1, burst))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> int:
        """0 if ``key`` may go ahead (a token is taken), else whole seconds to wait."""
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0
            else:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self._rate) if self._rate > 0 else 3600
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return wait
